"""A minimal blocking RESP2 reader and client for differential tests.

Tests compare replies type-exactly (a status is not a bulk string, `*-1` is not `$-1`), which
redis-py hides; this keeps every distinction and nothing else.
"""

from __future__ import annotations

import socket
from collections.abc import Callable


class Err(str):
    """An error reply (its text)."""


class Status(str):
    """A simple-string reply."""


class NullArray:
    """RESP2's `*-1`, distinct from the null bulk string (None)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NullArray)

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "*-1"


class ReplyReader:
    """Reads RESP2 replies from a byte source (`more()` returns b"" when it is closed)."""

    def __init__(self, more: Callable[[], bytes]) -> None:
        self.more = more
        self.buf = b""

    def _fill(self) -> None:
        chunk = self.more()
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buf += chunk

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2 :]
        return data

    def read(self) -> object:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return Status(rest.decode())
        if kind == b"-":
            return Err(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return NullArray() if n < 0 else [self.read() for _ in range(n)]
        raise AssertionError(f"unexpected RESP line {line!r}")


def parse_reply(data: bytes) -> object:
    """One reply from complete bytes."""
    chunks = [data]
    return ReplyReader(lambda: chunks.pop() if chunks else b"").read()


class RespClient:
    """A blocking RESP2 connection: send one command, read its exact reply."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.reader = ReplyReader(lambda: self.sock.recv(65536))

    def call(self, argv: list[bytes]) -> object:
        out = b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in argv)
        self.sock.sendall(out)
        return self.reader.read()

    def close(self) -> None:
        self.sock.close()
