// vgen report: lazy posters, filters, and the compare view. No network, no libraries.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("compare-data").textContent);

  // Each video is a placeholder (its poster) until it comes near the viewport; then it becomes a
  // <video> that still loads nothing until played (preload="none"). 500 <video controls> elements
  // would take seconds to lay out.
  function makeVideo(player) {
    const video = document.createElement("video");
    for (const name of ["controls", "loop", "muted", "playsinline"]) video.setAttribute(name, "");
    video.muted = true;
    video.preload = "none";
    if (player.dataset.poster) video.poster = player.dataset.poster;
    video.style.aspectRatio = player.style.aspectRatio;
    video.src = player.dataset.src;
    player.replaceWith(video);
    return video;
  }
  const players = document.querySelectorAll("main .player");
  if ("IntersectionObserver" in window) {
    const observer = new IntersectionObserver((seen) => {
      for (const item of seen) {
        if (item.isIntersecting) { observer.unobserve(item.target); makeVideo(item.target); }
      }
    }, { rootMargin: "600px" });
    players.forEach((player) => observer.observe(player));
  } else {
    players.forEach(makeVideo);
  }

  // Filters: by status and by text in the prompts.
  const statusFilter = document.getElementById("status-filter");
  const search = document.getElementById("search");
  const shown = document.getElementById("shown");
  const entries = Array.from(document.querySelectorAll("article.entry"));
  function applyFilters() {
    const status = statusFilter.value;
    const words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    let count = 0;
    for (const entry of entries) {
      const visible = (!status || entry.dataset.status === status) &&
        words.every((word) => entry.dataset.search.includes(word));
      entry.hidden = !visible;
      count += visible ? 1 : 0;
    }
    document.querySelectorAll(".cell").forEach((cell) => {
      const inside = cell.querySelectorAll("article.entry");
      cell.classList.toggle("filtered", inside.length > 0 && !Array.from(inside).some((e) => !e.hidden));
    });
    shown.textContent = count + " of " + entries.length + " shown";
  }
  statusFilter.addEventListener("change", applyFilters);
  search.addEventListener("input", applyFilters);
  applyFilters();

  // Compare: the last two ticked entries side by side, with the config keys whose values differ.
  const panel = document.getElementById("compare");
  let picked = [];
  const absent = data.absent;
  const valueOf = (id, key) => (key in data.values[id] ? data.values[id][key] : absent);
  function renderCompare() {
    const sides = panel.querySelector(".sides");
    const body = panel.querySelector("tbody");
    sides.textContent = "";
    body.textContent = "";
    if (picked.length < 2) { panel.hidden = true; return; }
    for (const [letter, id] of [["A", picked[0]], ["B", picked[1]]]) {
      const original = document.getElementById(id);
      const side = document.createElement("div");
      const title = document.createElement("h3");
      title.textContent = letter + ": " + original.dataset.label;
      const copy = original.cloneNode(true);
      copy.removeAttribute("id");
      copy.hidden = false;
      copy.querySelector(".pick").remove();
      copy.querySelectorAll(".player").forEach(makeVideo);
      side.append(title, copy);
      sides.append(side);
    }
    const differing = data.keys.filter((key) => valueOf(picked[0], key) !== valueOf(picked[1], key));
    for (const key of differing) {
      const row = body.insertRow();
      row.dataset.key = key;
      for (const text of [key, valueOf(picked[0], key), valueOf(picked[1], key)]) row.insertCell().textContent = text;
    }
    if (!differing.length) body.insertRow().insertCell().textContent = "no config differences";
    panel.hidden = false;
  }
  document.querySelectorAll("input.compare-pick").forEach((box) => box.addEventListener("change", () => {
    picked = picked.filter((id) => id !== box.value);
    if (box.checked) picked.push(box.value);
    while (picked.length > 2) {
      document.querySelector('input.compare-pick[value="' + picked.shift() + '"]').checked = false;
    }
    renderCompare();
  }));
  document.getElementById("compare-close").addEventListener("click", () => {
    picked.forEach((id) => { document.querySelector('input.compare-pick[value="' + id + '"]').checked = false; });
    picked = [];
    renderCompare();
  });
})();
