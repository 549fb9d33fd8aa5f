"""Send one control request and read its reply line."""

from __future__ import annotations

import json
import socket
from typing import Any

from vgen.control.connection import Connection
from vgen.control.protocol import encode

MAX_REPLY_BYTES = 16 * 1024 * 1024  # a status reply lists pending prompts, which may be long


def send_command(connection: Connection, cmd: str, *, job: dict[str, Any] | None = None,
                 timeout: float = 10.0) -> dict[str, Any]:
    """The server's reply; OSError (refused, timeout, closed without a reply) when none came."""
    request: dict[str, Any] = {"token": connection.token, "cmd": cmd}
    if job is not None:
        request["job"] = job
    with socket.create_connection((connection.host, connection.port), timeout=timeout) as sock:
        sock.sendall(encode(request))
        with sock.makefile("rb") as stream:
            line = stream.readline(MAX_REPLY_BYTES)
    if not line:
        raise ConnectionError("the control server closed the connection without replying")
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        raise ConnectionError(f"unreadable reply from the control server: {line[:200]!r}") from None
