"""The storage interface the Raft runtime relies on, its errors and its startup result.

The Raft core keeps a bounded tail of its log in memory and reads older entries back through
`entries()` (it is the core's `LogReader`, called from the driver's thread while the disk
thread may be writing: the lock serialises them); storage is where the runtime puts what a
`ready()` asks to persist (hard state, a batch of entries, an installed snapshot) before it
acknowledges anything, and where a restarted node finds that state again. Every mutating
call is durable when it returns: one transaction, one fsync, whatever its size.

Calls are synchronous and may be made from a worker thread (`trio.to_thread`) other than
the one that opened the store, one thread at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import BinaryIO, Protocol

import attrs

from aspen.raft.types import Entry, HardState, SnapshotMeta


class StorageError(Exception):
    """Base of every error the storage layer raises on purpose."""


class LogRangeError(StorageError, IndexError):
    """A read or a write named indices the log does not hold."""


class Compacted(LogRangeError):
    """The index is behind the compaction point (inside the snapshot)."""


class Unavailable(LogRangeError):
    """The index is beyond the last index of the log."""


class StorageLocked(StorageError):
    """Another process (or another open store) holds the data directory."""


class IncompatibleFormat(StorageError):
    """The directory is not an Aspen store of this format and version; it is left untouched."""


class StorageCorrupted(StorageError):
    """What is on disk cannot be made into a consistent log (e.g. every snapshot is damaged)."""


class StorageClosed(StorageError):
    """The store was used after `close()`."""


@attrs.frozen
class RestoredState:
    """Everything a restarting Raft core needs, as `load()` finds it on disk.

    `entries` follow the compaction point directly: the first one (if any) has index
    `base_index + 1`. `base_index`/`base_term` equal the snapshot's index/term when a
    snapshot exists; they are (0, 0) for a log that was never compacted.
    """

    hard_state: HardState
    snapshot: SnapshotMeta | None
    entries: tuple[Entry, ...]
    base_index: int
    base_term: int

    @property
    def last_index(self) -> int:
        return self.entries[-1].index if self.entries else self.base_index


class SnapshotWriter(Protocol):
    """A snapshot being written: stream its bytes, then commit (durable, atomic) or abort."""

    def write(self, data: bytes) -> int: ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...

    def __enter__(self) -> SnapshotWriter: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class Storage(Protocol):
    """Durable Raft log + hard state + snapshots (see the module docstring)."""

    def append(self, entries: Sequence[Entry], hard_state: HardState | None = None) -> None:
        """Truncate any suffix from `entries[0].index`, append, store `hard_state`: one fsync."""

    def set_hard_state(self, hard_state: HardState) -> None: ...

    def hard_state(self) -> HardState: ...

    def truncate_suffix(self, from_index: int) -> None:
        """Drop every entry with index >= `from_index`."""

    def compact(self, through_index: int) -> None:
        """Drop every entry with index <= `through_index` (it must be inside a snapshot)."""

    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        """Entries with lo <= index < hi; with `max_bytes`, a prefix (at least one entry)."""

    def term(self, index: int) -> int: ...

    def first_index(self) -> int: ...

    def last_index(self) -> int: ...

    def save_snapshot(self, meta: SnapshotMeta, data: bytes) -> None: ...

    def begin_snapshot(self, meta: SnapshotMeta) -> SnapshotWriter: ...

    def snapshot_meta(self) -> SnapshotMeta | None: ...

    def load_snapshot(self) -> tuple[SnapshotMeta, bytes] | None: ...

    def open_snapshot(self) -> tuple[SnapshotMeta, BinaryIO] | None: ...

    def load(self) -> RestoredState: ...

    def close(self) -> None: ...

    def __enter__(self) -> Storage: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
