"""vgen.matte on a phone photo: Pillow-written JPEG with an EXIF orientation and a mask drawn on the
photo as viewers show it (upright)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from conftest import run_vgen


def test_a_photo_with_exif_rotation_is_matted_upright(tmp_path: Path):
    stored = np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)  # landscape pixels
    photo = Image.fromarray(stored)
    exif = photo.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to view": shown 64 wide, 96 high
    photo.save(tmp_path / "portrait.jpg", exif=exif, quality=95)
    mask = np.zeros((96, 64), np.uint8)
    mask[20:60, 10:50] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    result = run_vgen("input.video=portrait.jpg", "input.mask=mask.png", "matte/backend=guided",
                      "hydra.run.dir=run", module="vgen.matte", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    alpha = np.asarray(Image.open(tmp_path / "run" / "mask_outputs" / "portrait_alpha.png").convert("L"))
    assert alpha.shape == (96, 64)
    assert alpha[30:50, 20:40].min() > 200 and alpha[70:, :].max() < 50  # the subject where the mask put it


def test_a_clips_csv_saved_by_excel_with_a_bom_and_crlf(tmp_path: Path):
    from media_fixtures import make_media

    media = make_media(tmp_path)
    (tmp_path / "clips.csv").write_bytes(f"\ufeffvideo,mask\r\n{media['clip'].name},{media['mask_video'].name}\r\n".encode())
    result = run_vgen("input.csv=clips.csv", "matte/backend=guided", "dry_run=true", module="vgen.matte", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert str(media["clip"]) in result.stdout


def test_a_second_run_into_the_same_run_dir_keeps_the_first_runs_files(tmp_path: Path):
    """``hydra.run.dir=fixed`` twice: the second run's outputs get new names, so every manifest row still
    points at the bytes it recorded (they were overwritten: encodes differ run to run)."""
    import hashlib
    import json

    from media_fixtures import make_media

    media = make_media(tmp_path)
    for _ in range(2):
        result = run_vgen(f"input.video={media['clip']}", f"input.mask={media['mask_video']}", "matte/backend=guided",
                          "hydra.run.dir=run", module="vgen.matte", cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
    rows = [json.loads(line) for line in (tmp_path / "run" / "manifests" / "run_history.jsonl").read_text().splitlines()]
    paths = [artifact["path"] for row in rows for artifact in row["artifacts"]]
    assert len(rows) == 2 and len(set(paths)) == len(paths)
    for row in rows:
        for artifact in row["artifacts"]:
            data = (tmp_path / "run" / artifact["path"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == artifact["sha256"], artifact["path"]
