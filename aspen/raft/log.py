"""The core's view of the Raft log: an optional snapshot, then entries.

Only a bounded tail of the entries lives in memory (`held`, from index `held_from` on). With a
`LogReader` (storage), entries that are applied AND durable may be released from memory once
the tail exceeds `keep_entries` entries or `keep_bytes` payload bytes (`release`); they are
read back from storage when a lagging follower needs them. Without a reader every entry
after the snapshot stays in memory. Terms of released entries stay answerable without
storage: `_run_starts`/`_run_terms` hold one (first index, term) pair per term change.

The log also tracks which entries the runtime has not yet been asked to persist
(`unstable_from`); those, and everything not yet applied, are always held in memory.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from aspen.raft.reader import LogReader
from aspen.raft.types import Entry, SnapshotMeta


class RaftLog:
    def __init__(
        self,
        snapshot: SnapshotMeta | None,
        entries: Sequence[Entry],
        reader: LogReader | None = None,
        *,
        keep_entries: int = 1024,
        keep_bytes: int = 1 << 20,
    ) -> None:
        self.snapshot = snapshot
        self.snap_index = snapshot.index if snapshot else 0
        self.snap_term = snapshot.term if snapshot else 0
        self.reader = reader
        self.keep_entries = keep_entries
        self.keep_bytes = keep_bytes
        self.held: list[Entry] = list(entries)
        self.held_from = self.snap_index + 1
        self.held_bytes = 0
        self._run_starts: list[int] = []
        self._run_terms: list[int] = []
        for offset, e in enumerate(self.held):
            if e.index != self.snap_index + 1 + offset:
                raise ValueError(
                    f"restored entries must be contiguous after the snapshot (index "
                    f"{self.snap_index}); entry #{offset} has index {e.index}"
                )
            prev = self.held[offset - 1].term if offset else self.snap_term
            if e.term < prev:
                raise ValueError(f"restored entry {e.index} has term {e.term} < previous {prev}")
        self._note_appended(self.held)
        self.unstable_from = self.last_index() + 1  # everything restored is durable

    # -- queries --------------------------------------------------------------------------------

    def first_index(self) -> int:
        return self.snap_index + 1

    def last_index(self) -> int:
        return self.held_from - 1 + len(self.held)

    def last_term(self) -> int:
        return self._run_terms[-1] if self._run_terms else self.snap_term

    def term(self, index: int) -> int | None:
        """Term of the entry at `index`; None if it was compacted away or does not exist."""
        if index == self.snap_index:
            return self.snap_term
        if index < self.snap_index or index > self.last_index():
            return None
        if index >= self.held_from:
            return self.held[index - self.held_from].term
        return self._run_terms[bisect.bisect_right(self._run_starts, index) - 1]

    def last_index_with_term_at_most(self, index: int, term: int) -> int:
        """The largest i <= min(index, last) whose term is <= `term`, stopping at the
        snapshot (the conflict search of §5.3's optimisation), in O(term changes)."""
        i = min(index, self.last_index())
        if i <= self.snap_index:
            return i
        k = bisect.bisect_right(self._run_starts, i) - 1
        while k >= 0 and self._run_terms[k] > term:
            i = self._run_starts[k] - 1
            k -= 1
        return i

    def slice(
        self,
        lo: int,
        hi: int,
        max_count: int | None = None,
        max_bytes: int | None = None,
    ) -> list[Entry]:
        """Entries [lo, hi) capped by count and payload bytes (at least one if any); those
        below the in-memory tail are read back from storage."""
        assert lo > self.snap_index, "slice below the snapshot"
        hi = min(hi, self.last_index() + 1)
        if max_count is not None:
            hi = min(hi, lo + max_count)
        if lo >= hi:
            return []
        if lo >= self.held_from:
            return _capped(self.held[lo - self.held_from : hi - self.held_from], max_bytes, 0)
        assert self.reader is not None, "entries below the tail without a reader"
        stop = min(hi, self.held_from)
        out = self.reader.entries(lo, stop, max_bytes)
        if len(out) < stop - lo or stop == hi:
            return out
        used = sum(len(e.data) + 16 for e in out)
        if max_bytes is not None and used >= max_bytes:
            return out
        return out + _capped(self.held[: hi - self.held_from], max_bytes, used)

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Is a log ending at (last_index, last_term) at least as up to date as ours? (§5.4.1)"""
        mine = self.last_term()
        return last_term > mine or (last_term == mine and last_index >= self.last_index())

    def unstable(self) -> list[Entry]:
        if self.unstable_from > self.last_index():
            return []
        return self.held[self.unstable_from - self.held_from :]

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
        self.held.extend(entries)
        self._note_appended(entries)

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
        assert index >= self.held_from, f"truncating released entries ({index} < {self.held_from})"
        cut = index - self.held_from
        self.held_bytes -= sum(len(e.data) for e in self.held[cut:])
        del self.held[cut:]
        del_from = bisect.bisect_left(self._run_starts, index)
        del self._run_starts[del_from:]
        del self._run_terms[del_from:]
        self.unstable_from = min(self.unstable_from, index)

    def stable_to(self, index: int, term: int) -> None:
        """The runtime persisted entries up to (index, term): mark them stable if still ours."""
        if self.term(index) == term and index >= self.unstable_from:
            self.unstable_from = index + 1

    def release(self, applied: int) -> None:
        """Drop from memory the oldest entries that are applied (<= `applied`) and durable
        while the tail holds more than keep_entries entries or keep_bytes payload bytes.

        Amortised: nothing happens until the tail is a quarter over a limit."""
        if self.reader is None:
            return
        n_held, size = len(self.held), self.held_bytes
        if n_held <= self.keep_entries + self.keep_entries // 4 and (
            size <= self.keep_bytes + self.keep_bytes // 4
        ):
            return
        safe = min(applied, self.unstable_from - 1) - self.held_from + 1  # droppable count
        n = 0
        while n < safe and (n_held - n > self.keep_entries or size > self.keep_bytes):
            size -= len(self.held[n].data)
            n += 1
        if n:
            del self.held[:n]
            self.held_from += n
            self.held_bytes = size

    def compact(self, meta: SnapshotMeta) -> None:
        """Drop entries up to meta.index (which must be in the log or be the snapshot)."""
        assert meta.index >= self.snap_index and self.term(meta.index) == meta.term
        if meta.index >= self.held_from:
            cut = meta.index - self.held_from + 1
            self.held_bytes -= sum(len(e.data) for e in self.held[:cut])
            del self.held[:cut]
            self.held_from = meta.index + 1
        self.snapshot = meta
        self.snap_index, self.snap_term = meta.index, meta.term
        # runs wholly inside the snapshot go; the first remaining one starts after it
        k = bisect.bisect_right(self._run_starts, meta.index + 1) - 1
        if k > 0:
            del self._run_starts[:k]
            del self._run_terms[:k]
        if self.last_index() == meta.index:
            self._run_starts, self._run_terms = [], []
        elif self._run_starts:
            self._run_starts[0] = meta.index + 1
        self.unstable_from = max(self.unstable_from, meta.index + 1)

    def restore(self, meta: SnapshotMeta) -> None:
        """Replace the whole log with a snapshot received from the leader."""
        self.held = []
        self.held_bytes = 0
        self.held_from = meta.index + 1
        self._run_starts, self._run_terms = [], []
        self.snapshot = meta
        self.snap_index, self.snap_term = meta.index, meta.term
        self.unstable_from = meta.index + 1

    # -- helpers --------------------------------------------------------------------------------

    def _note_appended(self, entries: Sequence[Entry]) -> None:
        starts, terms = self._run_starts, self._run_terms
        size = 0
        for e in entries:
            size += len(e.data)
            if not terms or terms[-1] != e.term:
                starts.append(e.index)
                terms.append(e.term)
        self.held_bytes += size


def _capped(entries: list[Entry], max_bytes: int | None, used: int) -> list[Entry]:
    """A prefix of `entries` within max_bytes (counting `used` already taken; at least one
    entry when nothing was taken yet)."""
    if max_bytes is None or (len(entries) <= 1 and used == 0):
        return entries
    size = used
    for n, e in enumerate(entries):
        size += len(e.data) + 16
        if size > max_bytes and (n > 0 or used > 0):
            return entries[:n]
    return entries
