"""``vgen-ctl`` / ``python -m vgen.ctl``: drive a running queue (status, pause, resume, abort, clear, enqueue).

Connection: ``--run-dir DIR`` (reads ``DIR/control.json``) or ``--host/--port/--token``. Prints the
reply JSON. Exit codes: 0 ok, 1 no answer (no server, refused, timeout), 2 error reply or bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

from vgen.control.client import send_command
from vgen.control.connection import Connection, control_file, read_connection
from vgen.control.protocol import COMMANDS

EXIT_OK, EXIT_NO_ANSWER, EXIT_ERROR = 0, 1, 2


def _generation_keys() -> dict[str, type]:
    from vgen.jobs.expand import GENERATION_KEYS

    return {key: {"int": int, "float": float}.get(kind, str) for key, kind in GENERATION_KEYS.items()}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vgen-ctl", description="Control a running vgen queue.")
    parser.add_argument("--run-dir", help="run directory of the queue (reads its control.json)")
    parser.add_argument("--host", help="control server host (with --port and --token)")
    parser.add_argument("--port", type=int)
    parser.add_argument("--token")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the reply (default 10)")
    commands = parser.add_subparsers(dest="cmd", required=True, metavar="{" + ",".join(COMMANDS) + "}")
    for cmd in COMMANDS:
        sub = commands.add_parser(cmd, help=f"{cmd} the queue" if cmd != "status" else "show the queue status")
        if cmd == "enqueue":
            sub.add_argument("--job", help="job keys as a JSON object (flags below override its keys)")
            for key, kind in _generation_keys().items():
                sub.add_argument(f"--{key.replace('_', '-')}", dest=key, type=kind, default=None)
    return parser


def _connection(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Connection:
    if args.run_dir:
        return read_connection(args.run_dir)
    if args.host is None or args.port is None or args.token is None:
        parser.error("give --run-dir DIR, or all of --host, --port and --token")
    return Connection(host=args.host, port=args.port, token=args.token)


def _job(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, Any]:
    job: dict[str, Any] = {}
    if args.job:
        try:
            job = json.loads(args.job)
        except json.JSONDecodeError as exc:
            parser.error(f"--job: invalid JSON ({exc.msg})")
        if not isinstance(job, dict):
            parser.error("--job: expected a JSON object")
    job.update({key: getattr(args, key) for key in _generation_keys() if getattr(args, key) is not None})
    if "prompt" not in job:
        parser.error("enqueue: --prompt (or a prompt in --job) is required")
    return job


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    job = _job(args, parser) if args.cmd == "enqueue" else None
    try:
        connection = _connection(args, parser)
    except FileNotFoundError:
        print(f"vgen-ctl: no control server for {args.run_dir} ({control_file(args.run_dir)} not found: "
              "the run has ended or was started without control.enabled=true)", file=sys.stderr)
        return EXIT_NO_ANSWER
    except (OSError, ValueError, KeyError) as exc:
        print(f"vgen-ctl: cannot read {control_file(args.run_dir)}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    try:
        reply = send_command(connection, args.cmd, job=job, timeout=args.timeout)
    except OSError as exc:
        print(f"vgen-ctl: no answer from {connection.host}:{connection.port}: {exc}", file=sys.stderr)
        return EXIT_NO_ANSWER
    print(json.dumps(reply, indent=2, ensure_ascii=False))
    return EXIT_OK if reply.get("ok") is True else EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
