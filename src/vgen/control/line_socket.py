"""One client socket of the control server, read and written one line at a time against a deadline.

The deadline is absolute (``time.monotonic()``), so a client that trickles one byte every few seconds
cannot keep a request open: the socket timeout is set to what is left of the deadline before every
``recv`` and ``send``, instead of restarting with every byte as a plain socket timeout would.
"""

from __future__ import annotations

import socket
import time


class LineTooLong(Exception):
    """The client sent more than the line limit without a newline."""


class LineSocket:
    def __init__(self, sock: socket.socket, max_line_bytes: int) -> None:
        self.sock = sock
        self.max_line_bytes = max_line_bytes
        self._buffer = bytearray()

    def _remaining(self, deadline: float) -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("deadline passed")
        return remaining

    def readline(self, deadline: float) -> bytes | None:
        """The next line without its newline; None when the client closed the connection.

        TimeoutError when the deadline passes first, LineTooLong past ``max_line_bytes``.
        """
        while (end := self._buffer.find(b"\n")) < 0:
            if len(self._buffer) > self.max_line_bytes:
                raise LineTooLong
            self.sock.settimeout(self._remaining(deadline))
            chunk = self.sock.recv(self.max_line_bytes + 1 - len(self._buffer))
            if not chunk:
                return None
            self._buffer += chunk
        if end > self.max_line_bytes:
            raise LineTooLong
        line = bytes(self._buffer[:end])
        del self._buffer[:end + 1]
        return line

    def send(self, data: bytes, deadline: float) -> None:
        """All of ``data``; TimeoutError when a client that does not read lets the deadline pass."""
        view = memoryview(data)
        while view:
            self.sock.settimeout(self._remaining(deadline))
            view = view[self.sock.send(view):]
