"""Job expansion: sources, repeats, deterministic ids, validation naming the key."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from vgen.errors import ConfigError
from vgen.jobs.expand import expand_jobs, read_prompts_file

DEFAULTS = dict(prompt="", negative_prompt="", height=64, width=64, num_frames=9, steps=4, guidance_scale=5.0,
                fps=16, seed=42)
MODEL = SimpleNamespace(name="tiny_wan", size_multiple=16, frame_multiple=4)


def queue(jobs=(), prompts_file=None, repeats=1, default_jobs=()):
    return SimpleNamespace(jobs=list(jobs), prompts_file=prompts_file, repeats=repeats, default_jobs=list(default_jobs))


def test_job_ids_are_deterministic_and_distinct():
    first = expand_jobs(queue([{"prompt": "a"}, {"prompt": "b", "steps": 2}]), DEFAULTS, MODEL)
    second = expand_jobs(queue([{"prompt": "a"}, {"prompt": "b", "steps": 2}]), DEFAULTS, MODEL)
    assert [j.job_id for j in first] == [j.job_id for j in second]
    assert first[0].job_id != first[1].job_id
    assert first[1].settings["steps"] == 2 and first[0].settings["steps"] == 4


def test_identical_jobs_get_suffixed_ids():
    jobs = expand_jobs(queue([{"prompt": "same"}, {"prompt": "same"}]), DEFAULTS, MODEL)
    assert jobs[1].job_id == jobs[0].job_id + "-2"


def test_repeats_multiply_and_vary_seed():
    jobs = expand_jobs(queue([{"prompt": "a", "repeats": 2}], repeats=2), DEFAULTS, MODEL)
    assert len(jobs) == 4
    assert [j.settings["seed"] for j in jobs] == [42, 43, 44, 45]
    assert len({j.job_id for j in jobs}) == 4


def test_repeated_seeds_stay_below_2_to_the_32():
    jobs = expand_jobs(queue([{"prompt": "a", "seed": 2**32 - 1, "repeats": 2}]), DEFAULTS, MODEL)
    assert [j.settings["seed"] for j in jobs] == [2**32 - 1, 0]


def test_random_seed_kept_as_request():
    jobs = expand_jobs(queue([{"prompt": "a", "seed": -1, "repeats": 2}]), DEFAULTS, MODEL)
    assert [j.settings["seed"] for j in jobs] == [-1, -1]
    assert jobs[0].job_id != jobs[1].job_id


@pytest.mark.parametrize(
    "job,needle",
    [({"prompt": "a", "stepz": 3}, "queue.jobs[0].stepz"), ({"prompt": "a", "steps": "3"}, "queue.jobs[0].steps"),
     ({"prompt": ""}, "queue.jobs[0].prompt"), ({"prompt": "a", "height": True}, "height")],
)
def test_bad_jobs_name_the_key(job, needle):
    with pytest.raises(ConfigError, match=None) as info:
        expand_jobs(queue([job]), DEFAULTS, MODEL)
    assert needle in str(info.value)


def test_prompts_files(tmp_path):
    (tmp_path / "p.txt").write_text("# comment\nfirst prompt\n\nsecond prompt\n")
    (tmp_path / "p.jsonl").write_text('{"prompt": "j1", "seed": 3}\n{"prompt": "j2"}\n')
    (tmp_path / "p.csv").write_text("prompt,seed,guidance_scale\nc1,5,2.5\nc2,,\n")
    assert [j["prompt"] for j in read_prompts_file(tmp_path / "p.txt")] == ["first prompt", "second prompt"]
    assert read_prompts_file(tmp_path / "p.jsonl")[0] == {"prompt": "j1", "seed": 3}
    assert read_prompts_file(tmp_path / "p.csv") == [{"prompt": "c1", "seed": 5, "guidance_scale": 2.5}, {"prompt": "c2"}]
    jobs = expand_jobs(queue([{"prompt": "inline"}], prompts_file=str(tmp_path / "p.csv")), DEFAULTS, MODEL)
    assert [j.prompt for j in jobs] == ["inline", "c1", "c2"]
    assert jobs[1].settings["seed"] == 5


def test_prompts_file_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="queue.prompts_file: file not found"):
        read_prompts_file(tmp_path / "missing.txt")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\nnot json\n')
    with pytest.raises(ConfigError, match=r"bad.jsonl:2"):
        read_prompts_file(bad)
    (tmp_path / "bad.csv").write_text("prompt,steps\nx,many\n")
    with pytest.raises(ConfigError, match="steps"):
        read_prompts_file(tmp_path / "bad.csv")


def test_empty_queue_is_an_error():
    with pytest.raises(ConfigError, match="no jobs"):
        expand_jobs(queue([]), DEFAULTS, MODEL)


@pytest.mark.parametrize(
    "key,bad",
    [("steps", 0), ("steps", 10_001), ("num_frames", 0), ("num_frames", 10), ("num_frames", 4097), ("height", -64),
     ("width", 65), ("width", 8192), ("fps", 0), ("fps", 1000), ("guidance_scale", float("nan")),
     ("guidance_scale", float("inf")), ("guidance_scale", -1.0), ("seed", 2**32), ("seed", -2)],
)
def test_impossible_values_name_the_field_and_the_job(key, bad):
    """A job's own value is named by the job; a default's by ``generation.<key>`` and the job it broke."""
    with pytest.raises(ConfigError) as own:
        expand_jobs(queue([{"prompt": "ok"}, {"prompt": "a", key: bad}]), DEFAULTS, MODEL)
    assert str(own.value).startswith(f"queue.jobs[1].{key}={bad!r}: ")
    with pytest.raises(ConfigError) as default:
        expand_jobs(queue([{"prompt": "a"}]), {**DEFAULTS, key: bad}, MODEL)
    assert str(default.value).startswith(f"generation.{key}={bad!r} (job queue.jobs[0]): ")


def test_bounds_are_inclusive_and_seed_minus_one_draws():
    job = {"prompt": "a", "steps": 10_000, "num_frames": 1025, "height": 4096, "width": 16, "fps": 240,
           "guidance_scale": 0.0, "seed": 2**32 - 1}
    assert expand_jobs(queue([job, {"prompt": "b", "seed": -1}]), DEFAULTS, MODEL)[0].settings["seed"] == 2**32 - 1


def test_prompts_file_values_are_checked_too(tmp_path):
    (tmp_path / "p.jsonl").write_text('{"prompt": "ok"}\n{"prompt": "x", "guidance_scale": NaN}\n')
    with pytest.raises(ConfigError, match=r"p.jsonl\[1\].guidance_scale=nan"):
        expand_jobs(queue(prompts_file=str(tmp_path / "p.jsonl")), DEFAULTS, MODEL)


def test_default_jobs_run_only_when_nothing_else_is_queued(tmp_path):
    demo = [{"prompt": "demo one"}, {"prompt": "demo two"}]
    assert [j.prompt for j in expand_jobs(queue(default_jobs=demo), DEFAULTS, MODEL)] == ["demo one", "demo two"]
    (tmp_path / "p.txt").write_text("mine\n")
    assert [j.prompt for j in expand_jobs(queue(prompts_file=str(tmp_path / "p.txt"), default_jobs=demo),
                                          DEFAULTS, MODEL)] == ["mine"]
    assert [j.prompt for j in expand_jobs(queue([{"prompt": "inline"}], default_jobs=demo), DEFAULTS, MODEL)] == ["inline"]


@pytest.mark.parametrize("name,content", [("empty.txt", b""), ("comments.txt", b"# one\n\n   \n# two\n"),
                                          ("blank.jsonl", b"\n\n"), ("header.csv", b"prompt,seed\n")])
def test_a_prompts_file_without_jobs_is_an_error(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ConfigError, match=f"queue.prompts_file: .*{name} holds no jobs"):
        read_prompts_file(tmp_path / name)


@pytest.mark.parametrize("name,content,where", [
    ("latin1.txt", "first\nsecond\ncaf\xe9 au lait\n".encode("latin-1"), r"latin1.txt:3: not UTF-8 text \(byte 0xe9 at column 4\)"),
    ("binary.txt", b"ok line\n\x00\x01\x02\x03\n", r"binary.txt:2: NUL byte"),
    ("bad.jsonl", b'{"prompt": "a"}\n{"prompt": "\xff"}\n', r"bad.jsonl:2: not UTF-8"),
    ("png.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", r"png.csv:1: not UTF-8"),
])
def test_binary_or_non_utf8_prompts_files_name_the_line(tmp_path, name, content, where):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ConfigError, match=where):
        read_prompts_file(tmp_path / name)


def test_a_byte_order_mark_is_not_part_of_the_first_prompt(tmp_path):
    (tmp_path / "bom.csv").write_bytes("prompt,seed\nfirst,3\n".encode("utf-8-sig"))
    assert read_prompts_file(tmp_path / "bom.csv") == [{"prompt": "first", "seed": 3}]
