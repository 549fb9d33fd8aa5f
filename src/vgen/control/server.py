"""ControlServer: translate control requests into QueueController calls (nothing else happens here).

Threading TCP server on 127.0.0.1 by default (port 0 picks a free port). At most
:data:`MAX_CONNECTIONS` connections are served at once, each on its own daemon thread (more are
refused with an error line); a connection may send several requests, each of which must arrive
and be answered within :data:`REQUEST_DEADLINE_S` in total. Every request gets a reply; bad
requests get an error reply and never touch the queue; a line over the size limit or a missed
deadline closes the connection after an error line.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import socket
import socketserver
import threading
import time
from pathlib import Path
from typing import Any

from vgen.control.connection import Connection, remove_connection, write_connection
from vgen.control.line_socket import LineSocket, LineTooLong
from vgen.control.protocol import MAX_LINE_BYTES, ProtocolError, Request, encode, error_reply, ok_reply, parse_request
from vgen.errors import ConfigError, VgenError

log = logging.getLogger(__name__)
MAX_CONNECTIONS = 32  # clients served at once; vgen-ctl holds one for a single request
REQUEST_DEADLINE_S = 10.0  # to send a whole request line and read its reply, from accept or the last reply
LAST_WORDS_S = 1.0  # to send the error line before closing a connection that broke the rules


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


class _Handler(socketserver.BaseRequestHandler):
    """Answer the requests of one connection, each within its own deadline (reading and replying)."""

    server: "_Server"

    def handle(self) -> None:
        client = LineSocket(self.request, MAX_LINE_BYTES)
        while True:
            deadline = time.monotonic() + self.server.request_deadline_s
            try:
                line = client.readline(deadline)
                if line is None:
                    return
                if line.strip():
                    client.send(encode(self._answer(line)), deadline)
            except LineTooLong:
                self._last_words(client, f"request longer than {MAX_LINE_BYTES} bytes; closing")
                return
            except TimeoutError:
                self._last_words(client, f"no complete request within {self.server.request_deadline_s:g} s; closing")
                return
            except OSError:
                return  # the client vanished

    def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            return dispatch(self.server.controller, parse_request(line, self.server.token))
        except ProtocolError as exc:
            return error_reply(str(exc))
        except Exception as exc:  # whatever a request triggers, the client gets a reply and the server lives on
            log.debug("control request failed", exc_info=True)
            return error_reply(f"request failed: {type(exc).__name__}: {exc}")

    @staticmethod
    def _last_words(client: LineSocket, message: str) -> None:
        try:
            client.send(encode(error_reply(message)), time.monotonic() + LAST_WORDS_S)
        except OSError:
            pass


class _Server(socketserver.ThreadingTCPServer):
    """At most ``max_connections`` clients at once, each on its own thread; the rest are refused at once.

    The cap bounds the server's file descriptors and threads, so however many connections a client
    opens, the run keeps the descriptors it needs to write its videos and manifest rows.
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # a burst of connections is refused by the server, not dropped by the kernel

    def __init__(self, address: tuple[str, int], controller, token: str, *, max_connections: int,
                 request_deadline_s: float) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.controller = controller
        self.token = token
        self.max_connections = max_connections
        self.request_deadline_s = request_deadline_s
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, _Handler)

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def _refuse(self, request: socket.socket) -> None:
        """Send one error line without blocking and close (the accept loop never waits on a client)."""
        try:
            request.setblocking(False)
            request.send(encode(error_reply(
                f"too many control connections (at most {self.max_connections}); try again later")))
            request.recv(MAX_LINE_BYTES, socket.MSG_DONTWAIT)  # unread input would turn the close into a reset
        except OSError:
            pass
        self.shutdown_request(request)

    def handle_error(self, request, client_address) -> None:
        log.debug("control connection from %s failed", client_address, exc_info=True)


class ControlServer:
    """Serve ``controller`` while used as a context manager; ``control.json`` exists exactly as long."""

    def __init__(self, controller, run_dir: str | Path, *, host: str = "127.0.0.1", port: int = 0,
                 allow_remote: bool = False, max_connections: int = MAX_CONNECTIONS,
                 request_deadline_s: float = REQUEST_DEADLINE_S) -> None:
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
        self.max_connections, self.request_deadline_s = max_connections, request_deadline_s
        self.token = secrets.token_urlsafe(32)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def connection(self) -> Connection:
        return Connection(host=self.host, port=self.port, token=self.token)

    def __enter__(self) -> "ControlServer":
        try:
            self._server = _Server((self.host, self.port), self.controller, self.token,
                                   max_connections=self.max_connections, request_deadline_s=self.request_deadline_s)
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
