"""ControlServer: translate control requests into QueueController calls (nothing else happens here).

Threading TCP server on 127.0.0.1 by default (port 0 picks a free port); every connection has its
own daemon thread and a read timeout, and may send several requests. Bad requests get an error
reply and never touch the queue; a line over the size limit closes the connection.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import socket
import socketserver
import threading
from pathlib import Path
from typing import Any

from vgen.control.connection import Connection, remove_connection, write_connection
from vgen.control.protocol import MAX_LINE_BYTES, ProtocolError, Request, encode, error_reply, ok_reply, parse_request
from vgen.errors import ConfigError, VgenError

log = logging.getLogger(__name__)
READ_TIMEOUT_S = 30.0


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def dispatch(controller, request: Request) -> dict[str, Any]:
    """Run one authenticated request against ``controller``; the reply carries the new status."""
    fields: dict[str, Any] = {}
    if request.cmd == "pause":
        controller.pause()
    elif request.cmd == "resume":
        controller.resume()
    elif request.cmd == "abort":
        controller.abort()
    elif request.cmd == "clear":
        fields["cleared"] = controller.clear()
    elif request.cmd == "enqueue":
        try:
            job = controller.enqueue(request.job)
        except VgenError as exc:
            return error_reply(str(exc))
        fields["job"] = {"index": job.index, "job_id": job.job_id, "prompt": job.prompt}
    return ok_reply(**fields, status=controller.status())


class _Handler(socketserver.StreamRequestHandler):
    timeout = READ_TIMEOUT_S
    server: "_Server"

    def handle(self) -> None:
        try:
            while line := self.rfile.readline(MAX_LINE_BYTES + 1):
                if len(line) > MAX_LINE_BYTES:
                    self._reply(error_reply(f"request longer than {MAX_LINE_BYTES} bytes; closing"))
                    return
                if not line.strip():
                    continue
                try:
                    reply = dispatch(self.server.controller, parse_request(line, self.server.token))
                except ProtocolError as exc:
                    reply = error_reply(str(exc))
                self._reply(reply)
        except (TimeoutError, ConnectionError):
            return  # idle or vanished client: just drop the connection

    def _reply(self, message: dict[str, Any]) -> None:
        self.wfile.write(encode(message))
        self.wfile.flush()


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], controller, token: str) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.controller = controller
        self.token = token
        super().__init__(address, _Handler)

    def handle_error(self, request, client_address) -> None:
        log.debug("control connection from %s failed", client_address, exc_info=True)


class ControlServer:
    """Serve ``controller`` while used as a context manager; ``control.json`` exists exactly as long."""

    def __init__(self, controller, run_dir: str | Path, *, host: str = "127.0.0.1", port: int = 0,
                 allow_remote: bool = False) -> None:
        if not is_loopback(host):
            if not allow_remote:
                raise ConfigError(
                    f"control.host={host}: not a loopback address; set control.allow_remote=true to accept "
                    "connections from other machines (anyone who can read control.json can drive the queue)"
                )
            log.warning("control server listening on non-loopback address %s (control.allow_remote=true)", host)
        if not 0 <= port <= 65535:
            raise ConfigError(f"control.port={port}: expected 0 (any free port) to 65535")
        self.controller = controller
        self.run_dir = Path(run_dir)
        self.host, self.port = host, port
        self.token = secrets.token_urlsafe(32)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def connection(self) -> Connection:
        return Connection(host=self.host, port=self.port, token=self.token)

    def __enter__(self) -> "ControlServer":
        try:
            self._server = _Server((self.host, self.port), self.controller, self.token)
        except OSError as exc:
            raise ConfigError(f"control.host/control.port: cannot listen on {self.host}:{self.port}: {exc}") from exc
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="vgen-control", daemon=True)
        self._thread.start()
        path = write_connection(self.run_dir, self.connection)
        log.info("Control server on %s:%d (vgen-ctl --run-dir %s)", self.host, self.port, self.run_dir)
        log.debug("control connection file: %s", path)
        return self

    def __exit__(self, *exc_info: object) -> None:
        remove_connection(self.run_dir)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = self._thread = None
