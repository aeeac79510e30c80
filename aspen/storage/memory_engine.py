"""An in-memory engine with an explicit crash model, for the memory backend.

Writes are visible at once. A write made with sync on (the default) is durable at once;
with sync off it waits in a pending list until `sync()`. `crash()` throws away the pending
list and rebuilds the visible state from the durable one. No torn writes: a batch is
either entirely durable or entirely gone (the disk engines give the same guarantee).
"""

from __future__ import annotations

from collections.abc import Callable, Generator

import attrs

from aspen.raft.types import Entry

from .engine import WriteBatch


@attrs.define
class _Rows:
    """Contiguous rows: entries[i] has index offset + i."""

    offset: int = 0
    entries: list[Entry] = attrs.field(factory=list)
    meta: dict[str, bytes] = attrs.field(factory=dict)

    def apply(self, batch: WriteBatch) -> None:
        if batch.delete_through is not None:
            n = max(0, min(len(self.entries), batch.delete_through - self.offset + 1))
            del self.entries[:n]
            self.offset += n
        if batch.delete_from is not None:
            del self.entries[max(0, batch.delete_from - self.offset) :]
        if batch.entries:
            if not self.entries:
                self.offset = batch.entries[0].index
            expected = self.offset + len(self.entries)
            if batch.entries[0].index != expected:
                raise AssertionError(f"non-contiguous rows: {batch.entries[0].index} != {expected}")
            self.entries.extend(batch.entries)
        self.meta.update(batch.meta)

    def clone(self) -> _Rows:
        return _Rows(self.offset, list(self.entries), dict(self.meta))


class MemoryEngine:
    def __init__(self) -> None:
        self._durable = _Rows()
        self._visible = _Rows()
        self._pending: list[WriteBatch] = []
        self.sync_writes = True
        self.fsyncs = 0  # how many durable commits a disk would have needed
        self.on_sync: list[Callable[[], None]] = []  # other state sharing this "disk"

    def write(self, batch: WriteBatch) -> None:
        if batch.is_empty():
            return
        # Copy what the caller could mutate later; entries themselves are frozen.
        batch = WriteBatch(batch.delete_through, batch.delete_from, tuple(batch.entries),
                           dict(batch.meta))
        self._visible.apply(batch)
        self._pending.append(batch)
        if self.sync_writes:
            self.sync()

    def sync(self) -> None:
        """Make every write so far durable (like fsync: it covers everything before it)."""
        for hook in self.on_sync:
            hook()
        if not self._pending:
            return
        for batch in self._pending:
            self._durable.apply(batch)
        self._pending.clear()
        self.fsyncs += 1

    def crash(self) -> None:
        self._pending.clear()
        self._visible = self._durable.clone()

    @property
    def unsynced(self) -> int:
        return len(self._pending)

    def iter_entries(self, lo: int, hi: int) -> Generator[Entry, None, None]:
        rows = self._visible
        start = max(0, lo - rows.offset)
        stop = max(start, min(len(rows.entries), hi - rows.offset))
        yield from rows.entries[start:stop]

    def term(self, index: int) -> int | None:
        rows = self._visible
        i = index - rows.offset
        return rows.entries[i].term if 0 <= i < len(rows.entries) else None

    def bounds(self) -> tuple[int, int] | None:
        rows = self._visible
        if not rows.entries:
            return None
        return rows.offset, rows.offset + len(rows.entries) - 1

    def get_meta(self, key: str) -> bytes | None:
        return self._visible.meta.get(key)

    def close(self) -> None:
        pass
