"""The control protocol: one JSON object per line each way.

Request: ``{"token": T, "cmd": C, ...}`` with C in :data:`COMMANDS` (``enqueue`` also takes
``"job": {...}``). Reply: ``{"ok": true, ...}`` or ``{"ok": false, "error": MESSAGE}``.
"""

from __future__ import annotations

import hmac
import json
import re
from dataclasses import dataclass, field
from typing import Any

MAX_LINE_BYTES = 64 * 1024
MAX_DEPTH = 16  # nesting of arrays/objects in a request (a job is two levels deep)
_SURROGATE = re.compile("[\ud800-\udfff]")
COMMANDS = ("status", "pause", "resume", "abort", "clear", "enqueue")


class ProtocolError(Exception):
    """A request that must be refused (its message goes into the error reply)."""


@dataclass(frozen=True)
class Request:
    cmd: str
    job: dict[str, Any] = field(default_factory=dict)


def parse_request(line: bytes, token: str) -> Request:
    """Decode and authenticate one request line; ProtocolError says what is wrong."""
    if len(line) > MAX_LINE_BYTES:
        raise ProtocolError(f"request longer than {MAX_LINE_BYTES} bytes")
    try:
        message = json.loads(line, parse_constant=_reject_constant)
    except RecursionError:
        raise ProtocolError(f"malformed request: nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # invalid UTF-8 or JSON, NaN/Infinity, an integer too long to convert
        reason = str(exc).split(":")[0]
        raise ProtocolError(f"malformed request: expected one JSON object per line ({reason})") from None
    if not isinstance(message, dict):
        raise ProtocolError("malformed request: expected a JSON object")
    _check_values(message)
    given = message.get("token")
    if not isinstance(given, str) or not hmac.compare_digest(given.encode(), token.encode()):
        raise ProtocolError("invalid token")
    cmd = message.get("cmd")
    if cmd not in COMMANDS:
        raise ProtocolError(f"unknown command {cmd!r} (expected one of {', '.join(COMMANDS)})")
    job = message.get("job", {})
    if cmd == "enqueue" and (not isinstance(job, dict) or not job):
        raise ProtocolError('enqueue needs "job": an object of job keys with at least "prompt"')
    return Request(cmd=cmd, job=job if cmd == "enqueue" else {})


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _check_values(value: Any, depth: int = 0) -> None:
    """Refuse what parses but would break later: deep nesting, text that is not valid Unicode."""
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    if isinstance(value, list):
        if depth >= MAX_DEPTH:
            raise ProtocolError(f"malformed request: nested deeper than {MAX_DEPTH} levels")
        for item in value:
            _check_values(item, depth + 1)
    elif isinstance(value, str) and _SURROGATE.search(value):
        raise ProtocolError("malformed request: text with a lone surrogate (not valid Unicode)")


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"


def ok_reply(**fields: Any) -> dict[str, Any]:
    return {"ok": True, **fields}


def error_reply(message: str) -> dict[str, Any]:
    return {"ok": False, "error": message}
