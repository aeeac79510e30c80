"""A RESP3 reply reader and client for pub/sub differential tests (push frames kept apart).

Extends `harness.resp_wire` (RESP2) with the RESP3 types a pub/sub session meets: `>` pushes
(a `Push`, distinct from an array), `_` null, `%` maps, `~` sets, `#` booleans, `,` doubles,
`=` verbatim strings. Every distinction stays visible, as in the RESP2 reader.
"""

from __future__ import annotations

import socket

from harness.resp_wire import ReplyReader


class Push(list):  # type: ignore[type-arg]
    """A RESP3 push frame (its elements)."""

    def __repr__(self) -> str:
        return f"Push({list.__repr__(self)})"


class Map(list):  # type: ignore[type-arg]
    """A RESP3 map, as its (key, value) pairs in wire order."""

    def __repr__(self) -> str:
        return f"Map({list.__repr__(self)})"


class SetReply(list):  # type: ignore[type-arg]
    """A RESP3 set, in wire order."""


class Resp3Reader(ReplyReader):
    """Reads RESP2 and RESP3 replies."""

    def read(self) -> object:
        kind = self.buf[:1]
        while not kind:
            self._fill()
            kind = self.buf[:1]
        if kind in b"+-:$*":
            return super().read()
        line = self._line()
        rest = line[1:]
        if kind == b">":
            return Push(self.read() for _ in range(int(rest)))
        if kind == b"_":
            return None
        if kind == b"%":
            return Map((self.read(), self.read()) for _ in range(int(rest)))
        if kind == b"~":
            return SetReply(self.read() for _ in range(int(rest)))
        if kind == b"#":
            return rest == b"t"
        if kind == b",":
            return float(rest)
        if kind == b"=":
            return self._exact(int(rest))
        raise AssertionError(f"unexpected RESP line {line!r}")


def encode_command(argv: list[bytes]) -> bytes:
    return b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in argv)


class PushClient:
    """A blocking connection that sends commands and reads replies and pushes, one at a time."""

    def __init__(self, port: int, timeout: float = 10) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.reader = Resp3Reader(lambda: self.sock.recv(65536))

    def send(self, argv: list[bytes]) -> None:
        self.sock.sendall(encode_command(argv))

    def read(self) -> object:
        return self.reader.read()

    def call(self, argv: list[bytes]) -> object:
        self.send(argv)
        return self.read()

    def close(self) -> None:
        self.sock.close()
