"""The report page: one self-contained HTML file (its CSS and JS inlined, media linked by relative
paths), laid out as the sections of :mod:`vgen.report.layout`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape
from importlib import resources
from typing import Any, Sequence

from vgen.report.collect import Entry, ReportSource
from vgen.report.layout import Section


@dataclass
class MediaView:
    """How one artifact appears in its entry."""

    kind: str  # video, image, audio or file
    href: str  # the artifact, relative to the report
    src: str | None = None  # what a <video> plays: the artifact or its h264 preview
    poster: str | None = None
    note: str | None = None  # why a video shows only its poster, or that a preview plays
    asset_files: tuple = ()  # report_assets files the view links to (poster, preview)
    aspect: str | None = None  # "W / H": the box keeps its shape before anything has loaded

    def drop_failed(self, failed: set) -> None:
        """Forget assets ffmpeg could not make (the view falls back to a link or the poster)."""
        for name, file in zip(("poster", "src"), self.asset_files):
            if file in failed:
                setattr(self, name, None)


def attr(value: Any) -> str:
    return escape(str(value), quote=True)


def lora_text(entry: Entry) -> str:
    loras = entry.job.get("loras") or (entry.config.get("lora") or {}).get("loras") or []
    parts = []
    for lora in loras:
        parts.append(f"{lora.get('name')} × {lora.get('weight', 1.0)}" if isinstance(lora, dict) else str(lora))
    preset = (entry.config.get("lora") or {}).get("preset")
    return ", ".join(parts) + (f" (preset {preset})" if preset else "") if parts or preset else "none"


def model_text(entry: Entry) -> str:
    model = (entry.row or {}).get("inputs", {}).get("model") or {}
    name = model.get("name") or (entry.config.get("model") or {}).get("name") or "?"
    return f"{name} ({model['snapshot']})" if model.get("snapshot") else name


def timings_text(entry: Entry) -> str:
    timings = (entry.row or {}).get("timings") or {}
    shown = [f"{name[:-2]} {timings[name]:.2f}s" for name in ("load_s", "generate_s", "persist_s") if name in timings]
    return ", ".join(shown) or "-"


def prompts(entry: Entry) -> tuple[str, str | None]:
    inputs = (entry.row or {}).get("inputs", {})
    return inputs.get("prompt") or entry.job.get("prompt") or "", inputs.get("enhanced_prompt")


def coords_text(coords: dict[str, str]) -> str:
    return " · ".join(f"{key}={value}" for key, value in coords.items())


def entry_label(entry: Entry, axes_keys: Sequence[str]) -> str:
    shown = {key: entry.coords[key] for key in axes_keys if key in entry.coords}
    index = (entry.row or {}).get("job_index")
    job = f"job {index}" if index is not None else "point"
    return f"{coords_text(shown)} · {job}" if shown else job


def render_media(view: MediaView) -> str:
    note = f'<p class="note">{escape(view.note)}</p>' if view.note else ""
    if view.kind == "video" and view.src:
        # A placeholder (the poster, linking to the video) that page.js turns into a <video> as it comes
        # near the viewport: hundreds of <video controls> elements take seconds to lay out.
        poster = f' data-poster="{attr(view.poster)}"' if view.poster else ""
        style = f' style="aspect-ratio: {view.aspect}"' if view.aspect else ""
        image = f'<img loading="lazy" src="{attr(view.poster)}" alt="video">' if view.poster else "video"
        return (f'<div class="player" data-src="{attr(view.src)}"{poster}{style}>'
                f'<a href="{attr(view.src)}">{image}</a></div>{note}')
    if view.kind in ("video", "image") and view.poster:
        return (f'<a href="{attr(view.href)}"><img loading="lazy" src="{attr(view.poster)}" alt="{attr(view.kind)}">'
                f'</a>{note}')
    if view.kind == "audio":
        wave = f'<img loading="lazy" class="wave" src="{attr(view.poster)}" alt="waveform">' if view.poster else ""
        return f'{wave}<audio controls preload="none" src="{attr(view.src or view.href)}"></audio>'
    link_note = f" ({escape(view.note)})" if view.note else ""
    return f'<p class="note"><a href="{attr(view.href)}">{escape(view.href.rsplit("/", 1)[-1])}</a>{link_note}</p>'


def render_entry(index: int, entry: Entry, views: list[MediaView], label: str) -> str:
    prompt, enhanced = prompts(entry)
    ok = entry.status == "success"
    rows = [("prompt", prompt)]
    if enhanced:
        rows.append(("enhanced", enhanced))
    rows += [("seed", entry.job.get("seed", "-")), ("LoRAs", lora_text(entry)), ("model", model_text(entry)),
             ("time", timings_text(entry)), ("status", entry.status)]
    info = "".join(f"<dt>{escape(name)}</dt><dd>{escape(str(value))}</dd>" for name, value in rows)
    error = f'<pre class="error">{escape(entry.error)}</pre>' if entry.error else ""
    search = " ".join(text for text in (prompt, enhanced) if text).lower()
    return (
        f'<article class="entry {"ok" if ok else "bad"}" id="e{index}" data-status="{attr(entry.status)}" '
        f'data-search="{attr(search)}" data-label="{attr(label)}">'
        f'<div class="media">{"".join(render_media(view) for view in views)}</div>{error}'
        f'<dl>{info}</dl>'
        f'<label class="pick"><input type="checkbox" class="compare-pick" value="e{index}"> compare</label>'
        f"</article>"
    )


def render_section(section: Section, rendered: list[str], entries: list[Entry]) -> str:
    title = f"<h2>{escape(coords_text(section.title))}</h2>" if section.title else ""
    if not section.is_grid:
        cells = "".join(f'<div class="cell">{"".join(rendered[i] for i in cell.entries)}</div>' for cell in section.cells)
        return f'<section class="group">{title}<div class="list">{cells}</div></section>'
    cols, rows = section.cols, section.rows
    out = [f'<section class="group">{title}<div class="grid" style="--cols:{len(cols.values)}">',
           f'<div class="corner">{escape(rows.key) + " ↓ / " if rows else ""}{escape(cols.key)} →</div>']
    out += [f'<div class="colhead">{escape(value)}</div>' for value in cols.values]
    for cell_index, cell in enumerate(section.cells):
        if cell_index % len(cols.values) == 0:
            out.append(f'<div class="rowhead">{escape(cell.row) if rows else ""}</div>')
        bad = any(entries[i].status != "success" for i in cell.entries)
        content = "".join(rendered[i] for i in cell.entries) or '<p class="note">not run</p>'
        out.append(f'<div class="cell{" bad" if bad else ""}" data-row="{attr(cell.row or "")}" '
                   f'data-col="{attr(cell.col)}">{content}</div>')
    out.append("</div></section>")
    return "".join(out)


def status_counts(entries: list[Entry]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry.status] = counts.get(entry.status, 0) + 1
    return dict(sorted(counts.items()))


def script_json(value: Any) -> str:
    """JSON safe inside a <script> element: every ``<`` escaped, so neither ``</script>`` nor ``<!--<script>``
    (which would make the parser swallow the next script) can occur in it."""
    return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c")


def render_page(source: ReportSource, sections: list[Section], views: list[list[MediaView]],
                compare: dict[str, Any], contact_sheet: str | None) -> str:
    axes_keys = [axis.key for axis in source.axes]
    rendered = [render_entry(i, entry, views[i], entry_label(entry, axes_keys)) for i, entry in enumerate(source.entries)]
    counts = status_counts(source.entries)
    options = "".join(f'<option value="{attr(status)}">{escape(status)} ({count})</option>'
                      for status, count in counts.items())
    axes = "; ".join(f"{axis.key}: {', '.join(axis.values)}" for axis in source.axes) or "none"
    sheet = f' · <a href="{attr(contact_sheet)}">contact sheet</a>' if contact_sheet else ""
    package = resources.files("vgen.report")
    css = package.joinpath("page.css").read_text(encoding="utf-8")
    js = package.joinpath("page.js").read_text(encoding="utf-8")
    summary = ", ".join(f"{count} {status}" for status, count in counts.items()) or "no jobs"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>vgen {escape(source.kind)} report: {escape(source.directory.name)}</title>
<style>{css}</style></head>
<body>
<header>
<h1>vgen {escape(source.kind)} · {escape(str(source.directory))}</h1>
<p class="summary">{len(source.entries)} entries: {escape(summary)} · axes: {escape(axes)}{sheet}</p>
<div class="controls">
<label>status <select id="status-filter"><option value="">all</option>{options}</select></label>
<label>search prompts <input id="search" type="search" placeholder="text in a prompt"></label>
<span id="shown"></span>
<span class="hint">tick “compare” on two entries to see them side by side</span>
</div>
</header>
<section id="compare" hidden><h2>Compare <button id="compare-close" type="button">close</button></h2>
<div class="sides"></div><table class="diff"><thead><tr><th>key</th><th>A</th><th>B</th></tr></thead><tbody></tbody></table>
</section>
<main>{"".join(render_section(section, rendered, source.entries) for section in sections)}</main>
<script type="application/json" id="compare-data">{script_json(compare)}</script>
<script>{js}</script>
</body></html>
"""
