"""vgen.report end to end: the report a real sweep writes, opened in headless Chromium over file://.

The sweep is seed (1, 2) x guidance (3, 5) on the tiny model. Its second job is a still with the
Wan2GP preset named after the seed: ``p1`` has no LoRAs (an image in the cell), ``p2``'s LoRA fits no
layer of the model, so that job fails at run time (a failed job: the red entry). Browser checks need Debian's ``chromium`` and
``chromium-driver`` (.ci/run installs them); without them the browser tests skip, except in CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest

from conftest import REPO_ROOT, run_vgen
from vgen.media.probe import probe

pytestmark = pytest.mark.slow
SWEEP = ["-m", "generation.seed=1,2", "generation.guidance_scale=3,5", "+experiment=tiny_smoke", "runtime.progress=false",
         'queue.jobs=[{prompt: smoke test one},{prompt: a still frame, num_frames: 1, lora_preset: "p${generation.seed}"}]']
ARTIFACTS_DIR = Path(os.environ.get("VGEN_TEST_ARTIFACTS", REPO_ROOT / "test-artifacts"))


class Links(HTMLParser):
    """Every URL the page refers to (src, href, poster, data-poster)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.urls += [value for name, value in attrs if name in ("src", "href", "poster", "data-poster") and value]


def page_urls(page: Path) -> list[str]:
    parser = Links()
    parser.feed(page.read_text())
    return parser.urls


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    import json

    from lora_fixtures import make_unfitting_lora_file

    work = tmp_path_factory.mktemp("report-sweep")
    loras = work / "loras"
    make_unfitting_lora_file(loras / "unfit.safetensors")
    (loras / "p1.lset").write_text(json.dumps({"loras": [], "loras_mult": ""}))
    (loras / "p2.lset").write_text(json.dumps({"loras": ["unfit.safetensors"], "loras_mult": "1"}))
    result = run_vgen(*SWEEP, f"lora.dirs=[{loras}]", f"hydra.sweep.dir={work / 'sweep'}", cwd=work, timeout=600)
    assert result.returncode == 1, result.stderr[-3000:]  # the seed-2 points each have a failed job
    return work / "sweep"


@pytest.fixture(scope="module")
def copied_sweep(sweep, tmp_path_factory) -> Path:
    """The sweep folder copied elsewhere (and the original moved away): the report must still work."""
    copy = tmp_path_factory.mktemp("elsewhere") / "copied sweep"
    shutil.copytree(sweep, copy)
    return copy


def test_sweep_writes_its_report_with_posters_and_a_contact_sheet(sweep):
    from PIL import Image

    assert (sweep / "report.html").is_file() and (sweep / "report.png").is_file()
    posters = sorted((sweep / "report_assets" / "posters").glob("*.jpg"))
    assert len(posters) == 6  # 4 videos + 2 stills; failed jobs have none
    for poster in posters:
        with Image.open(poster) as image:
            assert image.format == "JPEG" and image.width <= 320
    with Image.open(sweep / "report.png") as sheet:
        assert sheet.width >= 4 * 200 and sheet.height >= 2 * 112  # laid out like the grid: 2 rows of 2 x 2


def test_report_links_are_relative_and_resolve_after_copying(copied_sweep):
    page = copied_sweep / "report.html"
    text = page.read_text()
    assert "http://" not in text and "https://" not in text and str(copied_sweep.parent) not in text.split("<main>")[1]
    urls = page_urls(page)
    assert len({url for url in urls if url.endswith(".mp4")}) == 4
    for url in urls:
        assert not url.startswith(("/", "file:", "http")), url
        assert (copied_sweep / unquote(url)).is_file(), url


def test_rewriting_the_report_reuses_cached_posters(copied_sweep):
    posters = {path: path.stat().st_mtime_ns for path in (copied_sweep / "report_assets" / "posters").iterdir()}
    result = subprocess.run([sys.executable, "-m", "vgen.report", str(copied_sweep)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert {path: path.stat().st_mtime_ns for path in (copied_sweep / "report_assets" / "posters").iterdir()} == posters
    urls = page_urls(copied_sweep / "report.html")  # the copy's own points, not the original's
    assert urls and not [url for url in urls if url.startswith("..")]


def test_a_corrupt_artifact_gets_no_poster_and_the_rest_of_the_report_stands(sweep, tmp_path):
    copy = tmp_path / "sweep"
    shutil.copytree(sweep, copy, ignore=shutil.ignore_patterns("report*"))
    (broken,) = (copy / "0" / "videos").glob("*.mp4")
    broken.write_bytes(broken.read_bytes()[:200])  # truncated by another tool after the run
    result = subprocess.run([sys.executable, "-m", "vgen.report", str(copy)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "report: no poster-video for" in result.stderr and broken.name in result.stderr
    assert len(list((copy / "report_assets" / "posters").glob("*.jpg"))) == 5
    assert not [path for path in (copy / "report_assets").rglob("*") if "partial" in path.name]
    text = (copy / "report.html").read_text()
    assert f'<div class="player" data-src="0/videos/{broken.name}" style' in text  # no poster, still playable link


def test_report_disabled_writes_none(tmp_path):
    result = run_vgen("-m", "generation.seed=1", "report.enabled=false", "+experiment=tiny_smoke", "runtime.progress=false",
                      "queue.jobs=[{prompt: one}]", f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "sweep" / "multirun_summary.jsonl").is_file()
    assert not list(tmp_path.rglob("report*"))


@pytest.fixture(scope="module")
def h265_run(tmp_path_factory) -> Path:
    """A single run in h265/mkv, which browsers cannot play, with previews on."""
    work = tmp_path_factory.mktemp("report-h265")
    result = run_vgen("output=mkv_h265", "report.previews=true", "+experiment=tiny_smoke", "runtime.progress=false",
                      "queue.jobs=[{prompt: one in h265}]", f"hydra.run.dir={work / 'run'}", cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    return work / "run"


def test_unplayable_video_plays_its_h264_preview_and_without_previews_shows_the_poster(h265_run, tmp_path):
    (preview,) = (h265_run / "report_assets" / "previews").glob("*.mp4")
    (stream,) = probe(preview)["streams"]
    assert (stream["codec_name"], stream["pix_fmt"]) == ("h264", "yuv420p")
    assert f'data-src="report_assets/previews/{preview.name}"' in (h265_run / "report.html").read_text()
    copy = tmp_path / "run"
    shutil.copytree(h265_run, copy, ignore=shutil.ignore_patterns("report*"))
    result = subprocess.run([sys.executable, "-m", "vgen.report", str(copy)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    text = (copy / "report.html").read_text()
    assert 'class="player"' not in text and "browsers do not play h265 (hevc) in .mkv: poster only" in text
    assert not (copy / "report_assets" / "previews").exists()


# ------------------------------------------------------------------------------------------ browser


@pytest.fixture(scope="module")
def browser():
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver_path:
        message = "needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--autoplay-policy=no-user-gesture-required", "--window-size=1400,1100"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    yield driver
    driver.quit()


PLAY_ALL = """
const done = arguments[arguments.length - 1];
const videos = Array.from(document.querySelectorAll("main video"));
Promise.all(videos.map((video) => new Promise((resolve) => {
  const report = () => resolve({src: video.currentSrc, readyState: video.readyState,
                                error: video.error && video.error.code});
  video.addEventListener("loadeddata", report, {once: true});
  video.addEventListener("error", report, {once: true});
  video.play().catch((error) => resolve({src: video.src, readyState: video.readyState, error: String(error)}));
  setTimeout(report, 15000);
}))).then(done);
"""


def test_browser_shows_the_grid_plays_the_videos_and_compares(browser, copied_sweep):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get((copied_sweep / "report.html").as_uri())
    cells = browser.find_elements(By.CSS_SELECTOR, ".grid .cell")
    assert sorted((c.get_attribute("data-row"), c.get_attribute("data-col")) for c in cells) == [
        ("1", "3"), ("1", "5"), ("2", "3"), ("2", "5")]
    assert [len(c.find_elements(By.CSS_SELECTOR, "article.entry")) for c in cells] == [2, 2, 2, 2]
    images = browser.find_elements(By.CSS_SELECTOR, "main img")  # the two stills (seed 1), inline
    assert [cell.get_attribute("data-row") for cell in cells for _ in cell.find_elements(By.TAG_NAME, "img")] == ["1", "1"]
    WebDriverWait(browser, 20).until(lambda _: all(browser.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth > 0", image) for image in images))
    # Videos near the viewport (here: all) become <video> elements that load nothing before play;
    # after play() every one has data and no error.
    WebDriverWait(browser, 20).until(lambda _: len(browser.find_elements(By.CSS_SELECTOR, "main video")) == 4)
    assert browser.execute_script(
        "return Array.from(document.querySelectorAll('main video')).map(v => [v.readyState, v.preload, v.muted,"
        " v.loop, v.controls, v.getAttribute('poster').startsWith('report_assets/posters/')])") == [
        [0, "none", True, True, True, True]] * 4
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    time.sleep(1)  # for the picture only: Chromium's media controls show a spinner while they set up
    browser.save_screenshot(str(ARTIFACTS_DIR / "report_sweep.png"))
    played = browser.execute_async_script(PLAY_ALL)
    assert len(played) == 4 and all(v["readyState"] >= 2 and v["error"] is None for v in played), played

    # The seed-2 row: red cells whose failed entry shows the model's error.
    for cell in cells:
        bad = "bad" in cell.get_attribute("class").split()
        assert bad == (cell.get_attribute("data-row") == "2")
        if bad:
            error = cell.find_element(By.CSS_SELECTOR, "article.entry.bad .error").text
            assert "unfit.safetensors: cannot load it" in error and "made for another model size or family" in error

    # Filters: by status, then by words in the prompt.
    shown = lambda: [e.get_attribute("id") for e in browser.find_elements(By.CSS_SELECTOR, "article.entry") if e.is_displayed()]
    browser.execute_script("const s = document.getElementById('status-filter'); s.value = 'error';"
                           "s.dispatchEvent(new Event('change'));")
    assert len(shown()) == 2
    browser.execute_script("const s = document.getElementById('status-filter'); s.value = '';"
                           "s.dispatchEvent(new Event('change'));")
    browser.find_element(By.ID, "search").send_keys("still")
    assert len(shown()) == 4
    browser.find_element(By.ID, "search").clear()
    browser.execute_script("document.getElementById('search').dispatchEvent(new Event('input'))")
    assert len(shown()) == 8

    # Compare the first video of seed 1 at guidance 3 and at guidance 5.
    first = {(c.get_attribute("data-row"), c.get_attribute("data-col")): c for c in cells}
    for key in (("1", "3"), ("1", "5")):
        box = first[key].find_element(By.CSS_SELECTOR, "article.entry input.compare-pick")
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
        box.click()
    panel = browser.find_element(By.ID, "compare")
    assert panel.is_displayed()
    keys = [row.get_attribute("data-key") for row in panel.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert "generation.guidance_scale" in keys and "job.guidance_scale" in keys and "generation.seed" not in keys
    row = panel.find_element(By.CSS_SELECTOR, 'tbody tr[data-key="generation.guidance_scale"]')
    assert [cell.text for cell in row.find_elements(By.TAG_NAME, "td")] == ["generation.guidance_scale", "3.0", "5.0"]
    assert len(panel.find_elements(By.CSS_SELECTOR, ".sides article")) == 2
    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(ARTIFACTS_DIR / "report_sweep_compare.png"))


def test_browser_plays_the_h264_preview_of_an_h265_video(browser, h265_run):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get((h265_run / "report.html").as_uri())
    WebDriverWait(browser, 20).until(lambda _: browser.find_elements(By.CSS_SELECTOR, "main video"))
    played = browser.execute_async_script(PLAY_ALL)
    assert len(played) == 1 and "/report_assets/previews/" in played[0]["src"], played
    assert played[0]["readyState"] >= 2 and played[0]["error"] is None, played
