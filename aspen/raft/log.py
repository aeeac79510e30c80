"""The in-memory view of the Raft log: an optional snapshot followed by entries.

It also tracks which entries the runtime has not yet been asked to persist (`unstable_from`).
Storage holds the durable copy; the core keeps this one so that it never blocks on a read.
"""

from __future__ import annotations

from collections.abc import Sequence

from aspen.raft.types import Entry, SnapshotMeta


class RaftLog:
    def __init__(self, snapshot: SnapshotMeta | None, entries: Sequence[Entry]) -> None:
        self.snapshot = snapshot
        self.snap_index = snapshot.index if snapshot else 0
        self.snap_term = snapshot.term if snapshot else 0
        self.entries: list[Entry] = list(entries)
        for offset, e in enumerate(self.entries):
            if e.index != self.snap_index + 1 + offset:
                raise ValueError(
                    f"restored entries must be contiguous after the snapshot (index "
                    f"{self.snap_index}); entry #{offset} has index {e.index}"
                )
            prev = self.entries[offset - 1].term if offset else self.snap_term
            if e.term < prev:
                raise ValueError(f"restored entry {e.index} has term {e.term} < previous {prev}")
        self.unstable_from = self.last_index() + 1  # everything restored is durable

    # -- queries --------------------------------------------------------------------------------

    def first_index(self) -> int:
        return self.snap_index + 1

    def last_index(self) -> int:
        return self.snap_index + len(self.entries)

    def last_term(self) -> int:
        return self.entries[-1].term if self.entries else self.snap_term

    def term(self, index: int) -> int | None:
        """Term of the entry at `index`; None if it was compacted away or does not exist."""
        if index == self.snap_index:
            return self.snap_term
        if index < self.snap_index or index > self.last_index():
            return None
        return self.entries[index - self.snap_index - 1].term

    def entry(self, index: int) -> Entry:
        return self.entries[index - self.snap_index - 1]

    def slice(
        self,
        lo: int,
        hi: int,
        max_count: int | None = None,
        max_bytes: int | None = None,
    ) -> list[Entry]:
        """Entries [lo, hi) capped by count and payload bytes (at least one if any)."""
        assert lo > self.snap_index, "slice below the snapshot"
        hi = min(hi, self.last_index() + 1)
        if max_count is not None:
            hi = min(hi, lo + max_count)
        out = self.entries[lo - self.snap_index - 1 : hi - self.snap_index - 1]
        if max_bytes is not None and len(out) > 1:
            size = 0
            for n, e in enumerate(out):
                size += len(e.data) + 16
                if size > max_bytes and n > 0:
                    return out[:n]
        return out

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Is a log ending at (last_index, last_term) at least as up to date as ours? (§5.4.1)"""
        mine = self.last_term()
        return last_term > mine or (last_term == mine and last_index >= self.last_index())

    def unstable(self) -> list[Entry]:
        if self.unstable_from > self.last_index():
            return []
        return self.entries[self.unstable_from - self.snap_index - 1 :]

    # -- mutations ------------------------------------------------------------------------------

    def append(self, entries: Sequence[Entry]) -> None:
        """Append entries that directly follow the last one."""
        if not entries:
            return
        first = self.last_index() + 1
        assert entries[0].index == first and entries[-1].index == first + len(entries) - 1, (
            entries[0].index,
            first,
        )
        self.entries.extend(entries)

    def merge(self, entries: Sequence[Entry], commit: int) -> int:
        """Merge a leader's entries (prev already matched): skip matching ones, truncate at the
        first conflict, append the rest. Returns the first index that changed (or 0)."""
        for pos, e in enumerate(entries):
            t = self.term(e.index)
            if t == e.term:
                continue
            if e.index <= self.snap_index:
                continue  # compacted and therefore committed: it matches by Log Matching
            if t is not None:
                assert e.index > commit, f"conflict at committed index {e.index} (commit {commit})"
                self.truncate_from(e.index)
            self.append(entries[pos:])
            return e.index
        return 0

    def truncate_from(self, index: int) -> None:
        del self.entries[index - self.snap_index - 1 :]
        self.unstable_from = min(self.unstable_from, index)

    def stable_to(self, index: int, term: int) -> None:
        """The runtime persisted entries up to (index, term): mark them stable if still ours."""
        if self.term(index) == term and index >= self.unstable_from:
            self.unstable_from = index + 1

    def compact(self, meta: SnapshotMeta) -> None:
        """Drop entries up to meta.index (which must be in the log or be the snapshot)."""
        assert meta.index >= self.snap_index and self.term(meta.index) == meta.term
        del self.entries[: meta.index - self.snap_index]
        self.snapshot = meta
        self.snap_index, self.snap_term = meta.index, meta.term
        self.unstable_from = max(self.unstable_from, meta.index + 1)

    def restore(self, meta: SnapshotMeta) -> None:
        """Replace the whole log with a snapshot received from the leader."""
        self.entries = []
        self.snapshot = meta
        self.snap_index, self.snap_term = meta.index, meta.term
        self.unstable_from = meta.index + 1
