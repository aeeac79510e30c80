"""SLOWLOG: the commands of this node that took longer than `slowlog-log-slower-than`.

An entry is recorded by the session when a command's reply is ready (its duration is the
same one INFO commandstats counts: for a write, including its commit through the Raft log).
Arguments are cut as Redis cuts them: at most 32 (the last one saying how many more), each
at most 128 bytes (then "... (N more bytes)"); the values of AUTH, HELLO AUTH and sensitive
CONFIG SET parameters never enter the log (those commands are not logged, as in Redis).
"""

from __future__ import annotations

import collections
import time

__all__ = ["SlowLog"]

_MAX_ARGC = 32
_MAX_STRING = 128


class SlowLog:
    """Entries are kept raw (the argv as it came) and cut for display only when read: under
    load every replicated write may pass the threshold (its duration includes the commit),
    and all but the newest `max_len` are dropped unread."""

    def __init__(self) -> None:
        # (id, unix time, usec, argv, addr, client name), newest first
        self.entries: collections.deque[tuple[int, int, int, tuple[bytes, ...], str, bytes]] = (
            collections.deque())
        self.next_id = 0
        self.slower_than = 10000  # microseconds; -1: never, 0: every command
        self.max_len = 128

    def consider(self, argv: list[bytes], usec: float, addr: str, name: bytes) -> None:
        """Log a command that took `usec` (the session checked it is slow enough)."""
        if self.slower_than < 0 or self.max_len == 0 or usec < self.slower_than:
            return
        entries = self.entries
        entries.appendleft((self.next_id, int(time.time()), int(usec), tuple(argv), addr, name))
        self.next_id += 1
        if len(entries) > self.max_len:
            self.trim()

    def set_max_len(self, value: int) -> None:
        """slowlog-max-len: Redis trims on the next command; here at once (the same LEN)."""
        self.max_len = value
        if value:
            self.trim()

    def trim(self) -> None:
        while len(self.entries) > self.max_len:
            self.entries.pop()

    def get(self, count: int) -> list[list[object]]:
        items = list(self.entries)
        if count >= 0:
            items = items[:count]
        return [[id_, when, usec, _shown(argv), addr.encode(), name]
                for id_, when, usec, argv, addr, name in items]

    def reset(self) -> None:
        self.entries.clear()


def _shown(argv: tuple[bytes, ...]) -> list[bytes]:
    """The arguments as Redis shows them: at most 32, each at most 128 bytes."""
    shown: list[bytes] = []
    for i, arg in enumerate(argv):
        if i == _MAX_ARGC - 1 and len(argv) > _MAX_ARGC:
            shown.append(b"... (%d more arguments)" % (len(argv) - _MAX_ARGC + 1))
            break
        if len(arg) > _MAX_STRING:
            arg = arg[:_MAX_STRING] + b"... (%d more bytes)" % (len(arg) - _MAX_STRING)
        shown.append(arg)
    return shown
