"""Several clips in one ``python -m vgen.matte`` run: ``input.videos`` / ``input.csv``, one queue,
the models loaded once, one manifest row per clip."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import manifest_validator, read_manifest, run_vgen
from media_fixtures import make_media, write_video
from test_matte_app import FAST_H264, check_refused, run_in_process
from vgen.errors import ConfigError
from vgen.hashing import file_sha256
from vgen.matte.clips import clip_inputs, clip_stems

UNSET = "???"  # what OmegaConf.to_container gives for the mandatory input.video when it is not set


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict:
    return make_media(tmp_path_factory.mktemp("matte_clips"))


def node(**keys) -> dict:
    """An ``input`` node as the app sees it: every key present, unset ones null."""
    base = {"video": UNSET, "videos": None, "csv": None, "mask": None, "start_frame": 0, "end_frame": None,
            "mask_channel": None, "points": None, "box": None, "objects": None, "prompt_frame": None}
    return {**base, **keys}


def test_videos_share_the_input_keys_and_a_clip_mapping_overrides_them(tmp_path):
    clips = clip_inputs(node(videos=["a.mp4", {"video": "b.mp4", "mask": None, "box": [0, 0, 4, 4]}],
                             mask="m.png", end_frame=8))
    assert [clip["video"] for clip in clips] == [str(Path("a.mp4").absolute()), str(Path("b.mp4").absolute())]
    assert (clips[0]["mask"], clips[0]["box"], clips[0]["end_frame"]) == (str(Path("m.png").absolute()), None, 8)
    assert (clips[1]["mask"], clips[1]["box"], clips[1]["end_frame"]) == (None, [0, 0, 4, 4], 8)
    (single,) = clip_inputs(node(video="c.mp4", points=[[1, 1, 1]]))
    assert single["video"] == str(Path("c.mp4").absolute()) and single["points"] == [[1, 1, 1]]


def test_csv_paths_are_relative_to_the_file_and_an_empty_mask_cell_is_shared(tmp_path):
    table = tmp_path / "sub" / "clips.csv"
    table.parent.mkdir()
    table.write_text("video,mask\none.mp4,one.png\n\n/abs/two.mp4,\n")
    first, second = clip_inputs(node(csv=str(table), mask="shared.png"))
    assert (first["video"], first["mask"]) == (str(table.parent / "one.mp4"), str(table.parent / "one.png"))
    assert (second["video"], second["mask"]) == ("/abs/two.mp4", str(Path("shared.png").absolute()))


@pytest.mark.parametrize(
    "keys, table, message",
    [
        ({}, None, r"input\.video: give one of input\.video=CLIP, input\.videos=\[CLIP, \.\.\.\] or input\.csv=FILE$"),
        ({"video": "a.mp4", "videos": ["b.mp4"]}, None, r"\(got input\.video, input\.videos\)"),
        ({"videos": []}, None, r"input\.videos: expected a non-empty list"),
        ({"videos": ["a.mp4", {"mask": "m.png"}]}, None, r"input\.videos\[1\]: expected a path or a mapping with a video"),
        ({"videos": [{"video": "a.mp4", "radius": 3}]}, None, r"input\.videos\[0\]: unknown key\(s\) radius"),
        ({}, "", r"input\.csv: .*clips\.csv is empty"),
        ({}, "video,mask\n", r"input\.csv: .*clips\.csv has a header but no clip"),
        ({}, "clip,mask\na.mp4,b.png\n", r"input\.csv: .*the header must name the columns video"),
        ({}, "video,mask\na.mp4\n", r"input\.csv: .*clips\.csv line 2: expected 2 cells, got 1"),
        ({}, "video,mask\n\n ,b.png\n", r"input\.csv: .*clips\.csv line 3: the video cell is empty"),
    ],
)
def test_bad_clip_lists_are_config_errors_naming_the_key(tmp_path, keys, table, message):
    if table is not None:
        (tmp_path / "clips.csv").write_text(table)
        keys = {**keys, "csv": str(tmp_path / "clips.csv")}
    with pytest.raises(ConfigError, match=message):
        clip_inputs(node(**keys))


def test_missing_csv_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"input\.csv: cannot read .*nope\.csv"):
        clip_inputs(node(csv=str(tmp_path / "nope.csv")))


def test_clip_stems_never_collide():
    assert clip_stems(["/a/clip.mp4", "/b/clip.mkv", "/c/clip_2.mp4", "/d/other.mp4", "/a/clip.mp4"]) == [
        "clip", "clip_2", "clip_2_2", "other", "clip_3"]


@pytest.mark.slow
def test_three_clips_one_queue_models_loaded_once_one_row_each(media, tmp_path):
    """Three clips from a CSV (the same video twice, with its own and with the shared mask, and a
    silent copy of its start) through the default tiny backend: each model loads once, each clip
    gets its own row and output names."""
    write_video(tmp_path / "short.mkv", media["frames"][:6])
    table = tmp_path / "clips.csv"
    table.write_text(f"video,mask\n{media['clip']},{media['mask']}\n{media['clip']},\nshort.mkv,{media['mask']}\n")
    run_dir = tmp_path / "run"
    result = run_vgen(f"input.csv={table}", f"input.mask={media['mask_video']}", "input.end_frame=4", "device=cpu",
                      *FAST_H264, f"hydra.run.dir={run_dir}", module="vgen.matte", cwd=tmp_path,
                      env={"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    loads = re.findall(r"loaded (\w+) from (\S+)", result.stderr)
    assert sorted(loads) == [("Sam2VideoModel", "builtin:tiny_sam2"), ("VitMatteForImageMatting", "builtin:tiny_vitmatte"),
                             ("VitMatteImageProcessorPil", "builtin:tiny_vitmatte")]
    rows = read_manifest(run_dir)
    assert [row["job_index"] for row in rows] == [0, 1, 2] and len({row["run_id"] for row in rows}) == 1
    assert all(row["status"] == "success" for row in rows) and len({row["job_id"] for row in rows}) == 3
    assert [row["inputs"]["request"]["mask"] for row in rows] == [str(media["mask"]), str(media["mask_video"]),
                                                                   str(media["mask"])]
    for row in rows:
        assert not list(manifest_validator().iter_errors(row))
        for artifact in row["artifacts"]:
            assert file_sha256(run_dir / artifact["path"]) == artifact["sha256"]
    alphas = [next(a["path"] for a in row["artifacts"] if a["role"] == "mask_alpha") for row in rows]
    assert alphas == ["mask_outputs/clip_alpha.mkv", "mask_outputs/clip_2_alpha.mkv", "mask_outputs/short_alpha.mkv"]


def test_a_bad_later_clip_exits_2_before_anything_is_written(media, tmp_path):
    run_dir = tmp_path / "run"
    result = run_vgen(f"input.videos=[{media['clip']},{media['clip']},{tmp_path / 'nope.mp4'}]",
                      f"input.mask={media['mask_video']}", "matte/backend=guided", f"hydra.run.dir={run_dir}",
                      module="vgen.matte", cwd=tmp_path)
    check_refused(result, run_dir, r"video: file not found: .*nope\.mp4")


def test_a_clip_that_fails_gets_its_error_row_and_the_queue_goes_on(media, tmp_path):
    """A directory where the second clip's foreground goes (a real write fault): its row says error,
    the first and third clips succeed, the exit code is 1."""
    run_dir = tmp_path / "run"
    (run_dir / "mask_outputs" / "clip_2_foreground.mp4").mkdir(parents=True)
    code = run_in_process(run_dir, f"input.videos=[{media['clip']},{media['clip']},{media['clip']}]",
                          f"input.mask={media['mask_video']}", "matte/backend=guided", "input.end_frame=4",
                          "output.retries=0", *FAST_H264)
    assert code == 1
    rows = read_manifest(run_dir)
    assert [(row["job_index"], row["status"]) for row in rows] == [(0, "success"), (1, "error"), (2, "success")]
    assert rows[1]["artifacts"] == [] and "clip_2_foreground" in rows[1]["error"]["message"]
    assert (run_dir / "mask_outputs" / "clip_3_alpha.mkv").is_file()
