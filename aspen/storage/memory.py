"""The memory backend: deterministic, with an explicit crash model, for the simulator.

Crash model. Every mutating call takes `sync` (default True). A synced call is durable when
it returns and, like fsync, also makes every earlier unsynced call durable; `sync()` does
the same on its own. `crash()` loses every call made since the last sync -- entries, hard
state, truncations, compactions and snapshots alike -- and leaves the store as a restarted
process would find it (reopened; `load()` gives what survived). A call is never torn: it
survives entirely or not at all. Nothing depends on time or randomness, so a simulator
that replays the same calls gets the same results.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from aspen.raft.types import Entry, HardState, SnapshotMeta

from .memory_engine import MemoryEngine
from .snapshots import MemorySnapshots
from .store import LogStore


class MemoryStorage(LogStore):
    def __init__(self) -> None:
        self._mem = MemoryEngine()
        self._mem_snaps = MemorySnapshots(self._mem)
        super().__init__(self._mem, self._mem_snaps)

    @contextlib.contextmanager
    def _sync_mode(self, sync: bool) -> Iterator[None]:
        previous = self._mem.sync_writes
        self._mem.sync_writes = sync
        try:
            yield
        finally:
            self._mem.sync_writes = previous
        if sync:  # even a call that changed nothing is a sync point, as documented above
            self._mem.sync()

    def append(
        self, entries: Sequence[Entry], hard_state: HardState | None = None, *, sync: bool = True
    ) -> None:
        with self._sync_mode(sync):
            super().append(entries, hard_state)

    def set_hard_state(self, hard_state: HardState, *, sync: bool = True) -> None:
        with self._sync_mode(sync):
            super().set_hard_state(hard_state)

    def truncate_suffix(self, from_index: int, *, sync: bool = True) -> None:
        with self._sync_mode(sync):
            super().truncate_suffix(from_index)

    def compact(self, through_index: int, *, sync: bool = True) -> None:
        with self._sync_mode(sync):
            super().compact(through_index)

    def save_snapshot(self, meta: SnapshotMeta, data: bytes, *, sync: bool = True) -> None:
        with self._sync_mode(sync):
            super().save_snapshot(meta, data)

    def sync(self) -> None:
        """Make everything written so far durable."""
        with self._op():
            self._mem.sync()

    def crash(self) -> None:
        """Lose everything not synced and reopen, as a killed process would."""
        with self._op():
            self._mem.crash()
            self._mem_snaps.crash()
            self._recover()

    @property
    def unsynced(self) -> bool:
        """True when a crash now would lose something."""
        return self._mem.unsynced > 0

    @property
    def fsyncs(self) -> int:
        """How many fsyncs a disk backend would have made so far (one per synced call)."""
        return self._mem.fsyncs
