"""``python -m vgen.inspect FILE [--images DIR]``: print the vgen metadata stored with a media file.

Reads what was embedded in a video/image/audio/zip file, or its ``FILE.json`` sidecar, and prints
it as JSON (indent 2). ``--images DIR`` also writes the embedded source images there as PNGs.
Exit code 2 for a missing file or a file without vgen metadata.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vgen.errors import VgenError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vgen.inspect", description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path, help="a video/image/audio/zip file vgen wrote, or its .json sidecar")
    parser.add_argument("--images", type=Path, metavar="DIR", help="write embedded source images into DIR")
    args = parser.parse_args(argv)

    from vgen.media.metadata_io import read_metadata, read_source_images

    try:
        metadata = read_metadata(args.file)
        if args.images is not None:
            images = read_source_images(args.file)
            args.images.mkdir(parents=True, exist_ok=True)
            for name, data in images.items():
                target = args.images / f"{Path(name).name}.png"
                target.write_bytes(data)
                print(f"wrote {target}", file=sys.stderr)
            if not images:
                print(f"{args.file}: no embedded source images", file=sys.stderr)
    except VgenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(metadata, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
