"""Run and sweep reports: ``report.html`` (a self-contained gallery), ``report_assets/`` (posters,
previews) and ``report.png`` (a contact sheet) written into a run dir or a sweep dir.

``python -m vgen.report DIR`` writes one by hand; vgen writes one after every run and every multirun
unless ``report.enabled=false``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from vgen.diff import ABSENT, comparable_config, flatten
from vgen.report.assets import ASSETS_DIR_NAME, make_assets, playback_problem, poster_task, preview_task
from vgen.report.collect import Entry, ReportSource, collect
from vgen.report.contact_sheet import MAX_COLUMNS, Tile, write_contact_sheet
from vgen.report.layout import grid_sections
from vgen.report.page import MediaView, prompts, render_page

log = logging.getLogger(__name__)
REPORT_HTML_NAME = "report.html"
CONTACT_SHEET_NAME = "report.png"


def relative_url(path: Path, base: Path) -> str:
    return quote(Path(os.path.relpath(path, base)).as_posix())


def compare_data(entries: list[Entry]) -> dict[str, Any]:
    """Per entry, its flattened config (as ``vgen.diff`` compares runs) plus its resolved job, kept
    only for the keys whose values are not the same in every entry: the compare view lists those
    that differ between the two chosen entries."""
    flat = [{key: json.dumps(value, ensure_ascii=False, default=str)  # shown as JSON, as Python wrote it
             for key, value in flatten({**comparable_config(entry.config), "job": entry.job}).items()}
            for entry in entries]
    keys: dict[str, None] = {}
    for mapping in flat:
        keys.update(dict.fromkeys(mapping))
    varying = [key for key in sorted(keys) if len({mapping.get(key, ABSENT) for mapping in flat}) > 1]
    values = {f"e{index}": {key: mapping[key] for key in varying if key in mapping} for index, mapping in enumerate(flat)}
    return {"absent": ABSENT, "keys": varying, "values": values}


def plan_media(source: ReportSource, previews: bool) -> tuple[list[list[MediaView]], list, list[list[Path | None]]]:
    """Each entry's media views, the asset tasks they need, and each entry's poster files."""
    assets_dir = source.directory / ASSETS_DIR_NAME
    views: list[list[MediaView]] = []
    posters: list[list[Path | None]] = []
    tasks = []
    for entry in source.entries:
        entry_views, entry_posters = [], []
        for artifact in entry.artifacts:
            path = entry.run_dir / artifact["path"]
            href = relative_url(path, source.directory)
            kind = artifact.get("kind") if artifact.get("kind") in ("video", "image", "audio") else "file"
            if not path.is_file():
                entry_views.append(MediaView("file", href, note="file missing"))
                continue
            task = poster_task(assets_dir, artifact, path)
            if task:
                tasks.append(task)
            poster = relative_url(task.target, source.directory) if task else None
            entry_posters.append(task.target if task else None)
            size = artifact.get("width"), artifact.get("height")
            aspect = f"{size[0]} / {size[1]}" if all(size) else None
            view = MediaView(kind, href, src=href, poster=poster, asset_files=(task and task.target,), aspect=aspect)
            if kind == "video":
                problem = playback_problem(artifact)
                if problem and previews:
                    preview = preview_task(assets_dir, artifact, path)
                    tasks.append(preview)
                    view.src = relative_url(preview.target, source.directory)
                    view.asset_files += (preview.target,)
                    view.note = f"{problem}: playing a small h264 preview (original: {path.name})"
                elif problem:
                    view.src = None
                    view.note = f"{problem}: poster only (report.previews=true writes a playable preview)"
            entry_views.append(view)
        views.append(entry_views)
        posters.append(entry_posters)
    return views, tasks, posters


def contact_tiles(source: ReportSource, order: list[int], posters: list[list[Path | None]]) -> list[Tile]:
    tiles = []
    for index in order:
        entry = source.entries[index]
        # Short keys ("seed=1 guidance_scale=3"): captions are a tile wide.
        first = " ".join(f"{axis.key.rsplit('.', 1)[-1]}={entry.coords[axis.key]}"
                         for axis in source.axes if axis.key in entry.coords)
        prompt = prompts(entry)[0]
        caption = f"{first or prompt}\n{entry.status}" + (f" · {prompt}" if first else "")
        poster = next((p for p in posters[index] if p is not None), None)
        tiles.append(Tile(poster, caption, entry.status != "success"))
    return tiles


def sheet_columns(sections: list) -> int | None:
    """The contact sheet follows a single grid (its columns x entries per cell) when that fits."""
    if len(sections) != 1 or not sections[0].is_grid:
        return None
    per_cell = max(len(cell.entries) for cell in sections[0].cells) or 1
    columns = len(sections[0].cols.values) * per_cell
    return columns if columns <= MAX_COLUMNS else None


def write_atomic(target: Path, text: str) -> None:
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def write_report(directory: str | Path, *, previews: bool = False, contact_sheet: bool = True) -> Path:
    """Write ``report.html`` (+ assets, + ``report.png``) into a run or sweep dir; returns the page."""
    source = collect(directory)
    sections = grid_sections([entry.coords for entry in source.entries], source.axes)
    views, tasks, posters = plan_media(source, previews)
    failed = set(make_assets(tasks))
    for entry_views in views:
        for view in entry_views:
            view.drop_failed(failed)
    order = [index for section in sections for cell in section.cells for index in cell.entries]
    sheet = None
    if contact_sheet:
        sheet = write_contact_sheet(contact_tiles(source, order, posters), source.directory / CONTACT_SHEET_NAME,
                                    columns=sheet_columns(sections))
    page = source.directory / REPORT_HTML_NAME
    html = render_page(source, sections, views, compare_data(source.entries), sheet and sheet.name)
    write_atomic(page, html)
    return page


def write_report_after_run(directory: str | Path, report_cfg: Any) -> None:
    """The automatic report at the end of a run or multirun: a failure is logged, never fatal."""
    if not report_cfg.enabled:
        return
    try:
        page = write_report(directory, previews=bool(report_cfg.previews))
    except Exception as error:  # noqa: BLE001 - the run's results stand without their report
        log.warning("Report not written for %s: %s: %s", directory, type(error).__name__, error)
        return
    log.info("Report: %s", page)
