"""Durable Raft log, hard state and snapshots: a memory and an on-disk backend.

`open_storage(path)` opens (or creates) a data directory with the default on-disk engine;
`open_storage(None, backend="memory")` gives the simulator's in-memory store. Every backend
is a `Storage` (base.py) and passes the same conformance suite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from .base import (
    Compacted,
    IncompatibleFormat,
    LogRangeError,
    RestoredState,
    SnapshotWriter,
    Storage,
    StorageClosed,
    StorageCorrupted,
    StorageError,
    StorageLocked,
    Unavailable,
)
from .datadir import DataDir
from .memory import MemoryStorage
from .store import LogStore

Backend = Literal["sqlite", "lmdb", "memory"]
DEFAULT_BACKEND: Backend = "sqlite"
"""Chosen by the figures in docs/benchmarks.md ("Storage")."""

__all__ = [
    "DEFAULT_BACKEND",
    "Backend",
    "Compacted",
    "IncompatibleFormat",
    "LogRangeError",
    "LogStore",
    "MemoryStorage",
    "RestoredState",
    "SnapshotWriter",
    "Storage",
    "StorageClosed",
    "StorageCorrupted",
    "StorageError",
    "StorageLocked",
    "Unavailable",
    "open_storage",
]


def open_storage(path: str | Path | None, backend: Backend = DEFAULT_BACKEND) -> LogStore:
    """Open the store in `path` (created if missing), or an in-memory store for None."""
    if backend == "memory":
        if path is not None:
            raise ValueError("the memory backend keeps nothing on disk: pass path=None")
        return MemoryStorage()
    if path is None:
        raise ValueError(f"the {backend!r} backend needs a data directory")
    if backend not in ("sqlite", "lmdb"):
        raise ValueError(f"unknown storage backend {backend!r}: use sqlite, lmdb or memory")
    root = Path(path)
    datadir = DataDir(root, backend)
    try:
        from .snapshots import FileSnapshots

        if backend == "sqlite":
            from .sqlite_engine import SqliteEngine

            engine: SqliteEngine | LmdbEngine = SqliteEngine(root / "log.db")
        else:
            from .lmdb_engine import LmdbEngine

            engine = LmdbEngine(root / "lmdb")
        try:
            return LogStore(engine, FileSnapshots(root / "snapshots"), datadir)
        except BaseException:
            engine.close()
            raise
    except BaseException:
        datadir.close()
        raise
