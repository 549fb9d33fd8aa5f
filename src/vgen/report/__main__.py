"""``python -m vgen.report DIR``: write report.html, report_assets/ and report.png into a run or sweep dir.

Exit codes: 0 written, 1 writing failed (a full disk), 2 DIR is not a vgen run or sweep dir.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vgen.errors import VgenError
from vgen.report import write_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vgen.report", description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="a run dir (manifests/run_history.jsonl) or a sweep dir "
                        "(multirun_summary.jsonl)")
    parser.add_argument("--previews", action="store_true",
                        help="write a small h264 preview of every video a browser cannot play (h265, ProRes, ...)")
    parser.add_argument("--no-contact-sheet", action="store_true", help="skip report.png")
    args = parser.parse_args(argv)
    try:
        page = write_report(args.directory, previews=args.previews, contact_sheet=not args.no_contact_sheet)
    except VgenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a full disk or a read-only dir while writing the report
        print(f"error: cannot write the report into {args.directory}: {exc.strerror} ({exc.filename})", file=sys.stderr)
        return 1
    print(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
