"""What one simulated node has on "disk": hard state, a snapshot, and the log after it.

A small model of its own rather than `aspen.storage`: the simulator needs only the durable
*contents* (what survives a crash), and keeping it a few list operations keeps thousands of
seeds fast. A crash keeps exactly what was written here; the in-flight Ready that had not
been "persisted" yet is simply never written.
"""

from __future__ import annotations

from collections.abc import Callable

from aspen.raft.types import Entry, HardState, SnapshotMeta


class DurableLog:
    def __init__(self) -> None:
        self.hard_state = HardState()
        self.snapshot: SnapshotMeta | None = None
        self.snapshot_data: bytes | None = None
        self.entries: list[Entry] = []  # contiguous, first index = snap_index + 1

    @property
    def snap_index(self) -> int:
        return self.snapshot.index if self.snapshot else 0

    @property
    def snap_term(self) -> int:
        return self.snapshot.term if self.snapshot else 0

    def last_index(self) -> int:
        return self.snap_index + len(self.entries)

    def term_at(self, index: int) -> int | None:
        si = self.snap_index
        if index == si:
            return self.snap_term
        if index < si or index > si + len(self.entries):
            return None
        return self.entries[index - si - 1].term

    def read(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        """The core's LogReader (see `SimNode.start`): what the core reads back is exactly
        what survives a crash, so a released entry that never reached "disk" fails loudly."""
        si = self.snap_index
        if lo <= si or hi > self.last_index() + 1 or lo > hi:
            raise AssertionError(
                f"read [{lo}, {hi}) outside the durable log ({si}, {self.last_index()}]"
            )
        out = self.entries[lo - si - 1 : hi - si - 1]
        if max_bytes is not None:
            size = 0
            for n, e in enumerate(out):
                size += len(e.data)
                if n and size > max_bytes:
                    return out[:n]
        return out

    def append(self, entries: list[Entry]) -> None:
        """Truncate the stored suffix at entries[0].index, then append (Ready's contract)."""
        first = entries[0].index
        si = self.snap_index
        if first > self.last_index() + 1:
            raise AssertionError(f"gap: appending {first} after last index {self.last_index()}")
        if first <= si:
            # already inside the snapshot: keep only what follows it
            entries = [e for e in entries if e.index > si]
            if not entries:
                return
            first = entries[0].index
        del self.entries[first - si - 1 :]
        self.entries.extend(entries)

    def install_snapshot(self, meta: SnapshotMeta, data: bytes) -> None:
        """A snapshot received from the leader replaces the whole log (Ready's contract)."""
        self.snapshot, self.snapshot_data = meta, data
        self.entries = []

    def save_snapshot(self, meta: SnapshotMeta, data: bytes) -> None:
        """A snapshot of our own state machine: keep the log after it."""
        si = self.snap_index
        if meta.index <= si:
            return
        keep_from = meta.index - si  # entries[keep_from:] have index > meta.index
        self.entries = self.entries[keep_from:]
        self.snapshot, self.snapshot_data = meta, data


class DurableReader:
    """A DurableLog as the core's `LogReader` (its `entries` name is taken by the list);
    `on_read(n)` counts what was read back."""

    def __init__(self, log: DurableLog, on_read: Callable[[int], None]) -> None:
        self._log = log
        self._on_read = on_read

    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        out = self._log.read(lo, hi, max_bytes)
        self._on_read(len(out))
        return out
