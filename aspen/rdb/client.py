"""A small blocking RESP2 client for the import tool: pipelines of commands, replies in order.

(The CLI must not need redis-py, a test-only dependency.)
"""

from __future__ import annotations

import socket
from collections.abc import Sequence


class ReplyError(Exception):
    """An error reply: the server's text."""


class RespError(Exception):
    """The connection broke or the server did not speak RESP."""


def _encode(argv: Sequence[bytes | str | int]) -> bytes:
    out = bytearray(b"*%d\r\n" % len(argv))
    for a in argv:
        raw = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(raw), raw)
    return bytes(out)


class RespConnection:
    def __init__(self, host: str, port: int, timeout: float = 60.0) -> None:
        try:
            self._sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise RespError(f"cannot connect to {host}:{port}: {exc}") from None
        self._buf = bytearray()
        self._pos = 0

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> RespConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def pipeline(self, commands: Sequence[Sequence[bytes | str | int]]) -> list[object]:
        """Send every command, then read their replies; error replies come back as
        `ReplyError` values (not raised), so one bad key does not hide the others."""
        self._sock.sendall(b"".join(_encode(c) for c in commands))
        return [self._reply() for _ in commands]

    def call(self, *argv: bytes | str | int) -> object:
        reply = self.pipeline([argv])[0]
        if isinstance(reply, ReplyError):
            raise reply
        return reply

    # -- reading

    def _fill(self) -> None:
        if self._pos > 1 << 20:
            del self._buf[: self._pos]
            self._pos = 0
        try:
            chunk = self._sock.recv(1 << 18)
        except OSError as exc:
            raise RespError(f"connection lost: {exc}") from None
        if not chunk:
            raise RespError("the server closed the connection")
        self._buf += chunk

    def _line(self) -> bytes:
        while True:
            end = self._buf.find(b"\r\n", self._pos)
            if end >= 0:
                line = bytes(self._buf[self._pos : end])
                self._pos = end + 2
                return line
            self._fill()

    def _exact(self, n: int) -> bytes:
        while len(self._buf) - self._pos < n + 2:
            self._fill()
        data = bytes(self._buf[self._pos : self._pos + n])
        self._pos += n + 2
        return data

    def _reply(self) -> object:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return ReplyError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RespError(f"not a RESP2 reply: {line[:40]!r}")
