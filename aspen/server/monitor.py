"""MONITOR on one node: every command this node's clients run, as Redis prints it
(`+1700000000.123456 [0 127.0.0.1:1234] "set" "k" "v"`), pushed to the node's monitoring
connections. Per node: a write sent to another node shows on that node's monitors (and is
applied here through the log, which MONITOR does not show, as a Redis replica does not show
what its master streams to it)."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Monitors", "monitor_line"]

_ESCAPES = {0x5C: b"\\\\", 0x22: b'\\"', 0x0A: b"\\n", 0x0D: b"\\r", 0x09: b"\\t",
            0x07: b"\\a", 0x08: b"\\b"}


def _repr(arg: bytes) -> bytes:
    """Redis's sdscatrepr: quoted, with C escapes and \\xhh for unprintable bytes."""
    out = bytearray(b'"')
    for c in arg:
        esc = _ESCAPES.get(c)
        if esc is not None:
            out += esc
        elif 0x20 <= c < 0x7F:
            out.append(c)
        else:
            out += b"\\x%02x" % c
    out += b'"'
    return bytes(out)


def monitor_line(argv: list[bytes], addr: str, db: int = 0, now: float | None = None) -> bytes:
    t = time.time() if now is None else now
    sec = int(t)
    usec = int((t - sec) * 1_000_000)
    head = b"+%d.%06d [%d %s]" % (sec, usec, db, addr.encode())
    return head + b"".join(b" " + _repr(a) for a in argv) + b"\r\n"


class Monitors:
    """The node's monitoring connections: id -> their push function."""

    def __init__(self) -> None:
        self.sinks: dict[int, Callable[[bytes], None]] = {}

    def add(self, client_id: int, push: Callable[[bytes], None]) -> None:
        self.sinks[client_id] = push

    def remove(self, client_id: int) -> None:
        self.sinks.pop(client_id, None)

    def feed(self, argv: list[bytes], addr: str, source_id: int) -> None:
        line = monitor_line(argv, addr)
        for client_id, push in list(self.sinks.items()):
            if client_id != source_id:
                push(line)
