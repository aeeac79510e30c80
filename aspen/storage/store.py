"""The Raft log's rules, once, over any engine and any snapshot store.

State kept (all in the engine's metadata, so one transaction updates it with the rows):
  base (index, term)  the logical compaction point: first_index() == base.index + 1;
                      equal to the current snapshot's position after a snapshot
  phys (index, term)  rows up to phys.index are physically deleted (phys <= base)
  snap (index, term)  the latest snapshot applied to the log

Rows between the *previous* snapshot and the current one are kept physically (but are no
longer part of the log): if the current snapshot file turns out damaged at the next open, the
previous snapshot plus those rows rebuild the same state, so nothing acknowledged is lost.

Saving a snapshot: (1) the file is made durable (snapshots.py), (2) one engine transaction
moves base/snap and deletes what is no longer needed, (3) older snapshot files are removed.
A crash between (1) and (2) is finished at the next open; between (2) and (3) the extra file
is removed at the next open.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import BinaryIO

from aspen.raft.types import Entry, HardState, SnapshotMeta

from .base import (
    Compacted,
    RestoredState,
    SnapshotWriter,
    Storage,
    StorageClosed,
    StorageCorrupted,
    Unavailable,
)
from .datadir import DataDir
from .engine import META_BASE, META_HARD_STATE, META_PHYS, META_SNAP, Engine, WriteBatch
from .records import decode_hard_state, decode_position, encode_hard_state, encode_position
from .snapshots import SnapshotSink, SnapshotStore

log = logging.getLogger(__name__)


class LogStore:
    """A `Storage` (see base.py) over an engine and a snapshot store."""

    def __init__(
        self, engine: Engine, snapshots: SnapshotStore, datadir: DataDir | None = None
    ) -> None:
        self._engine = engine
        self._snaps = snapshots
        self._datadir = datadir
        self._lock = threading.Lock()
        self._closed = False
        self._recover()

    # -- startup ------------------------------------------------------------------------

    def _recover(self) -> None:
        e = self._engine
        raw = e.get_meta(META_HARD_STATE)
        self._hs = decode_hard_state(raw) if raw is not None else HardState()
        self._base = _position(e, META_BASE) or (0, 0)
        self._phys = _position(e, META_PHYS) or (0, 0)
        snap = _position(e, META_SNAP)
        bounds = e.bounds()
        if bounds is not None and bounds[0] != self._phys[0] + 1:
            raise StorageCorrupted(f"log rows start at {bounds[0]}, expected {self._phys[0] + 1}")
        self._last = max(self._base[0], bounds[1] if bounds else 0)
        self._last_term = self._term_of(self._last)

        valid = self._snaps.recover()
        newest = (valid[0].index, valid[0].term) if valid else None
        self._snapshots: list[SnapshotMeta] = valid[:2]
        if newest is not None and (snap is None or newest > snap):
            # The file became durable but the log was not updated: finish the install.
            self._snapshots = valid[1:3]
            self._install(valid[0])
        elif snap is not None and (newest is None or newest < snap):
            self._fall_back(valid, snap)
        elif len(valid) > 2:
            self._snaps.prune(self._snapshots)

    def _fall_back(self, valid: list[SnapshotMeta], lost: tuple[int, int]) -> None:
        """The current snapshot is missing or damaged: rebuild from the previous one."""
        target = valid[0] if valid else None
        pos = (target.index, target.term) if target else (0, 0)
        if pos[0] < self._phys[0] or self._physical_term(pos[0]) != pos[1]:
            raise StorageCorrupted(
                f"the snapshot at (index, term) {lost} is missing or damaged and the log "
                f"no longer holds the entries after {pos}: this node's data cannot be "
                "trusted; wipe its data directory and let it catch up from the cluster"
            )
        log.warning("snapshot %s is missing or damaged; falling back to %s", lost, pos)
        self._engine.write(
            WriteBatch(meta={META_BASE: encode_position(*pos), META_SNAP: encode_position(*pos)})
        )
        self._base = pos
        self._last = max(self._last, pos[0])
        self._last_term = self._term_of(self._last)
        self._snapshots = valid[:2]
        self._snaps.prune(self._snapshots)

    # -- helpers -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _op(self) -> Iterator[None]:
        with self._lock:
            if self._closed:
                raise StorageClosed("storage is closed")
            yield

    def _physical_term(self, index: int) -> int | None:
        """The term of `index` from what is physically stored (including kept rows)."""
        if index == self._phys[0]:
            return self._phys[1]
        if index == self._base[0]:
            return self._base[1]
        return self._engine.term(index)

    def _term_of(self, index: int) -> int:
        if index == self._base[0]:
            return self._base[1]
        term = self._engine.term(index)
        if term is None:
            raise StorageCorrupted(f"log row {index} is missing")
        return term

    def _check_range(self, index: int) -> None:
        if index < self._base[0]:
            raise Compacted(f"index {index} is compacted (first index is {self._base[0] + 1})")
        if index > self._last:
            raise Unavailable(f"index {index} is beyond the last index {self._last}")

    # -- the log -------------------------------------------------------------------------

    def append(self, entries: Sequence[Entry], hard_state: HardState | None = None) -> None:
        with self._op():
            self._append(entries, hard_state)

    def _append(self, entries: Sequence[Entry], hard_state: HardState | None) -> None:
        for prev, cur in itertools.pairwise(entries):
            if cur.index != prev.index + 1 or cur.term < prev.term:
                raise ValueError(
                    f"entries must have consecutive indices and non-decreasing terms: "
                    f"({prev.index}, {prev.term}) then ({cur.index}, {cur.term})"
                )
        if entries and entries[0].index <= self._base[0]:
            # Already inside the snapshot (committed, hence identical): skip them.
            entries = entries[self._base[0] - entries[0].index + 1 :]
        batch = WriteBatch()
        if hard_state is not None:
            batch.meta[META_HARD_STATE] = encode_hard_state(hard_state)
        last, last_term = self._last, self._last_term
        if entries:
            first = entries[0].index
            if first > self._last + 1:
                raise Unavailable(
                    f"appending at {first} would leave a gap after the last index {self._last}"
                )
            before = self._term_of(first - 1) if first - 1 != self._last else self._last_term
            if entries[0].term < before:
                raise ValueError(
                    f"entry ({first}, {entries[0].term}) has a lower term than its "
                    f"predecessor's ({before})"
                )
            if first <= self._last:
                batch.delete_from = first
            batch.entries = entries
            last, last_term = entries[-1].index, entries[-1].term
        self._engine.write(batch)
        self._last, self._last_term = last, last_term
        if hard_state is not None:
            self._hs = hard_state

    def set_hard_state(self, hard_state: HardState) -> None:
        with self._op():
            self._engine.write(WriteBatch(meta={META_HARD_STATE: encode_hard_state(hard_state)}))
            self._hs = hard_state

    def hard_state(self) -> HardState:
        with self._op():
            return self._hs

    def truncate_suffix(self, from_index: int) -> None:
        with self._op():
            if from_index <= self._base[0]:
                raise Compacted(
                    f"cannot truncate from {from_index}: entries up to {self._base[0]} "
                    "are compacted into a snapshot"
                )
            if from_index > self._last:
                return
            self._engine.write(WriteBatch(delete_from=from_index))
            self._last = from_index - 1
            self._last_term = self._term_of(self._last)

    def compact(self, through_index: int) -> None:
        with self._op():
            if through_index <= self._base[0]:
                return
            if through_index > self._last:
                raise Unavailable(
                    f"cannot compact through {through_index}: last index is {self._last}"
                )
            base = (through_index, self._term_of(through_index))
            floor = base[0]
            if self._snapshots:  # keep rows the fallback snapshot would need
                floor = min(floor, self._snapshots[-1].index)
            batch = WriteBatch(meta={META_BASE: encode_position(*base)})
            if floor > self._phys[0]:
                phys = (floor, self._phys_term(floor))
                batch.delete_through = floor
                batch.meta[META_PHYS] = encode_position(*phys)
            else:
                phys = self._phys
            self._engine.write(batch)
            self._base, self._phys = base, phys

    def _phys_term(self, index: int) -> int:
        term = self._physical_term(index)
        if term is None:
            raise StorageCorrupted(f"log row {index} is missing")
        return term

    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        with self._op():
            if lo > hi:
                raise ValueError(f"empty range: lo {lo} > hi {hi}")
            if lo <= self._base[0]:
                raise Compacted(f"index {lo} is compacted (first index is {self._base[0] + 1})")
            if hi > self._last + 1:
                raise Unavailable(f"index {hi - 1} is beyond the last index {self._last}")
            out: list[Entry] = []
            size = 0
            with contextlib.closing(self._engine.iter_entries(lo, hi)) as rows:
                for entry in rows:
                    if entry.index != lo + len(out):
                        raise StorageCorrupted(f"log row {lo + len(out)} is missing")
                    size += len(entry.data)
                    if out and max_bytes is not None and size > max_bytes:
                        return out
                    out.append(entry)
            if len(out) != hi - lo:
                raise StorageCorrupted(f"log rows {lo + len(out)}..{hi - 1} are missing")
            return out

    def term(self, index: int) -> int:
        with self._op():
            self._check_range(index)
            return self._term_of(index)

    def first_index(self) -> int:
        with self._op():
            return self._base[0] + 1

    def last_index(self) -> int:
        with self._op():
            return self._last

    # -- snapshots -----------------------------------------------------------------------

    def save_snapshot(self, meta: SnapshotMeta, data: bytes) -> None:
        with self.begin_snapshot(meta) as writer:
            writer.write(data)

    def begin_snapshot(self, meta: SnapshotMeta) -> _SnapshotWriter:
        with self._op():
            self._check_snapshot(meta)
            return _SnapshotWriter(self, meta, self._snaps.begin(meta))

    def _check_snapshot(self, meta: SnapshotMeta) -> None:
        if meta.index < 1 or meta.term < 1:
            raise ValueError(f"a snapshot needs index >= 1 and term >= 1: {meta}")
        current = self._snapshots[0] if self._snapshots else None
        if current is not None and meta.index < current.index:
            raise ValueError(f"snapshot at {meta.index} is older than the current {current}")
        if meta.index < self._base[0]:
            term = self._physical_term(meta.index)
            if term is not None and term != meta.term:
                raise ValueError(
                    f"snapshot {meta} contradicts the compacted log (term {term} at that index)"
                )

    def _commit_snapshot(self, meta: SnapshotMeta, sink: SnapshotSink) -> None:
        with self._op():
            try:
                self._check_snapshot(meta)
            except BaseException:
                sink.abort()
                raise
            sink.finish()
            self._install(meta)

    def _install(self, meta: SnapshotMeta) -> None:
        """Apply a durable snapshot to the log: compact behind it, or replace the log."""
        prev = next((m for m in self._snapshots if m != meta), None)
        pos = (meta.index, meta.term)
        batch = WriteBatch(meta={META_SNAP: encode_position(*pos)})
        last, last_term = self._last, self._last_term
        if meta.index < self._base[0]:
            base = self._base  # the log is already compacted further than this snapshot
            phys = self._phys
        elif meta.index <= self._last and self._term_of(meta.index) == meta.term:
            base = pos
            floor = min(meta.index, prev.index) if prev else meta.index
            if floor > self._phys[0]:
                phys = (floor, self._phys_term(floor))
                batch.delete_through = floor
            else:
                phys = self._phys
        else:  # the snapshot is ahead of the log or contradicts it: it replaces the log
            base = phys = pos
            batch.delete_from = 0
            last, last_term = pos
        batch.meta[META_BASE] = encode_position(*base)
        batch.meta[META_PHYS] = encode_position(*phys)
        self._engine.write(batch)
        self._base, self._phys, self._last, self._last_term = base, phys, last, last_term
        self._snapshots = [meta, prev] if prev is not None else [meta]
        self._snaps.prune(self._snapshots)

    def snapshot_meta(self) -> SnapshotMeta | None:
        with self._op():
            return self._snapshots[0] if self._snapshots else None

    def load_snapshot(self) -> tuple[SnapshotMeta, bytes] | None:
        with self._op():
            if not self._snapshots:
                return None
            meta = self._snapshots[0]
            return meta, self._snaps.read(meta)

    def open_snapshot(self) -> tuple[SnapshotMeta, BinaryIO] | None:
        """The current snapshot as a stream; its checksum is verified when it is read to EOF."""
        with self._op():
            if not self._snapshots:
                return None
            meta = self._snapshots[0]
            return meta, self._snaps.open(meta)

    # -- startup and lifetime ------------------------------------------------------------

    def load(self) -> RestoredState:
        with self._op():
            first, last = self._base[0] + 1, self._last
        entries = self.entries(first, last + 1)
        with self._op():
            return RestoredState(
                hard_state=self._hs,
                snapshot=self._snapshots[0] if self._snapshots else None,
                entries=tuple(entries),
                base_index=self._base[0],
                base_term=self._base[1],
            )

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._engine.close()
            finally:
                if self._datadir is not None:
                    self._datadir.close()

    def __enter__(self) -> LogStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _SnapshotWriter:
    """Streams a snapshot; `commit()` makes it durable and compacts the log behind it.

    Used as a context manager it commits on a clean exit and aborts on an exception.
    """

    def __init__(self, store: LogStore, meta: SnapshotMeta, sink: SnapshotSink) -> None:
        self._store = store
        self.meta = meta
        self._sink = sink
        self._done = False

    def write(self, data: bytes) -> int:
        if self._done:
            raise ValueError("snapshot writer is finished")
        return self._sink.write(data)

    def commit(self) -> None:
        if self._done:
            raise ValueError("snapshot writer is finished")
        self._done = True
        self._store._commit_snapshot(self.meta, self._sink)

    def abort(self) -> None:
        if not self._done:
            self._done = True
            self._sink.abort()

    def __enter__(self) -> _SnapshotWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None and not self._done:
            self.commit()
        else:
            self.abort()


def _position(engine: Engine, key: str) -> tuple[int, int] | None:
    raw = engine.get_meta(key)
    return decode_position(raw) if raw is not None else None


def _conforms(store: LogStore, writer: _SnapshotWriter) -> tuple[Storage, SnapshotWriter]:
    """Never called: makes mypy prove that LogStore is a Storage."""
    return store, writer
