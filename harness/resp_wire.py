"""A minimal blocking RESP2/RESP3 reader and client for differential tests.

Tests compare replies type-exactly (a status is not a bulk string, `*-1` is not `$-1`, a RESP3
double is not a bulk string, a map is not an array), which redis-py hides; this keeps every
distinction and nothing else. RESP3 values get their own small types below; RESP2 replies
parse to exactly what they always did.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence


class Err(str):
    """An error reply (its text); RESP3's blob error `!` reads as one too."""


def error_line(exc: Exception) -> Err:
    """The error line the server sent, rebuilt from redis-py's exception for it.

    redis-py strips the codes it knows (ERR, NOSCRIPT, ...) from the text and keeps them in
    `status_code`; since 8.2 it also sets `status_code` for a code it leaves in the text
    (WRONGTYPE), so adding the code back blindly would double it.
    """
    text = str(exc)
    code = getattr(exc, "status_code", None)
    if not code or text == code or text.startswith(f"{code} "):
        return Err(text)
    return Err(f"{code} {text}")


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


class Double(str):
    """A RESP3 double (`,`), kept as the exact text the server wrote."""

    def __repr__(self) -> str:
        return f"Double({str(self)!r})"


class BigNumber(int):
    """A RESP3 big number (`(`)."""


class Verbatim(bytes):
    """A RESP3 verbatim string (`=`) without its 3-letter format; `fmt` holds that."""

    fmt = b""


class Map(list):  # type: ignore[type-arg]
    """A RESP3 map (`%`): (key, value) tuples in the order the server sent them."""

    def __repr__(self) -> str:
        return f"Map({list.__repr__(self)})"


class SetReply(list):  # type: ignore[type-arg]
    """A RESP3 set (`~`), in the order the server sent it."""

    def __repr__(self) -> str:
        return f"Set({list.__repr__(self)})"


class Push(list):  # type: ignore[type-arg]
    """A RESP3 push (`>`)."""

    def __repr__(self) -> str:
        return f"Push({list.__repr__(self)})"


class ReplyReader:
    """Reads RESP2/RESP3 replies from a byte source (`more()` returns b"" when it is closed).

    RESP3's null (`_`) reads as None like RESP2's null bulk string: Redis 7 sends `_` for every
    kind of null under HELLO 3, so nothing is lost.
    """

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
        return self._read_resp3(kind, rest, line)

    def _read_resp3(self, kind: bytes, rest: bytes, line: bytes) -> object:
        if kind == b"_":
            return None
        if kind == b",":
            return Double(rest.decode())
        if kind == b"#":
            if rest not in (b"t", b"f"):
                raise AssertionError(f"bad RESP3 boolean {line!r}")
            return rest == b"t"
        if kind == b"(":
            return BigNumber(int(rest))
        if kind == b"!":
            return Err(self._exact(int(rest)).decode())
        if kind == b"=":
            raw = self._exact(int(rest))
            out = Verbatim(raw[4:])
            out.fmt = raw[:3]
            return out
        if kind == b"%":
            n = int(rest)
            return Map((self.read(), self.read()) for _ in range(n))
        if kind == b"~":
            return SetReply(self.read() for _ in range(int(rest)))
        if kind == b">":
            return Push(self.read() for _ in range(int(rest)))
        raise AssertionError(f"unexpected RESP line {line!r}")


def parse_reply(data: bytes) -> object:
    """One reply from complete bytes."""
    chunks = [data]
    return ReplyReader(lambda: chunks.pop() if chunks else b"").read()


def encode_command(argv: Sequence[bytes]) -> bytes:
    """One command as a RESP array of bulk strings, as every client sends it."""
    return b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in argv)


def command(*args: bytes) -> bytes:
    """`encode_command` for arguments written out in place."""
    return encode_command(args)


class RespClient:
    """A blocking RESP connection: send commands, read exact replies and pushes one at a time.

    `protocol=3` sends HELLO 3 first (its reply is kept in `hello`). `send` and `read` apart
    serve pub/sub sessions, where pushes arrive without a command.
    """

    def __init__(self, port: int, protocol: int = 2, timeout: float = 10) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.reader = ReplyReader(lambda: self.sock.recv(65536))
        self.hello: object = None
        if protocol == 3:
            self.hello = self.call([b"HELLO", b"3"])
            if not isinstance(self.hello, Map):
                raise ConnectionError(f"HELLO 3 answered {self.hello!r}")

    def send(self, argv: list[bytes]) -> None:
        self.sock.sendall(encode_command(argv))

    def read(self) -> object:
        return self.reader.read()

    def call(self, argv: list[bytes]) -> object:
        self.send(argv)
        return self.read()

    def close(self) -> None:
        self.sock.close()
