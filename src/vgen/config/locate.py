"""Find vgen's config dir: packaged inside the wheel (``vgen/conf``) or the repo's ``conf/``."""

from __future__ import annotations

from pathlib import Path

from vgen.errors import VgenError

_PACKAGE_DIR = Path(__file__).resolve().parents[1]


def config_dir() -> Path:
    """``vgen/conf`` in an installed wheel, else ``<repo>/conf`` for a source checkout (editable install)."""
    for candidate in (_PACKAGE_DIR / "conf", _PACKAGE_DIR.parents[1] / "conf"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise VgenError(f"vgen's config dir was not found (looked in {_PACKAGE_DIR / 'conf'} and the repo's conf/)")
