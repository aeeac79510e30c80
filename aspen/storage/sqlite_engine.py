"""The default on-disk engine: stdlib sqlite3, WAL journal, synchronous=FULL.

WAL + FULL makes every COMMIT append to the write-ahead log and fsync it once, so a batch
of any size costs one fsync; a killed process leaves either the whole transaction or none
of it (sqlite checks WAL frame checksums on recovery).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Generator
from pathlib import Path

from aspen.raft.types import Entry, EntryKind

from .base import StorageCorrupted, StorageError
from .engine import WriteBatch

_SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    idx  INTEGER PRIMARY KEY,
    term INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    data BLOB    NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
"""


class SqliteEngine:
    def __init__(self, path: Path) -> None:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, exactly once per batch.
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        try:
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StorageError(f"sqlite refused WAL mode (got {mode!r}) for {path}")
            self._db.execute("PRAGMA synchronous=FULL")
            if self._db.execute("PRAGMA synchronous").fetchone()[0] != 2:  # 2 == FULL
                raise StorageError(f"sqlite refused synchronous=FULL for {path}")
            self._db.executescript(_SCHEMA)
            self._db.execute("SELECT count(*) FROM meta").fetchone()
        except sqlite3.DatabaseError as e:
            self._db.close()
            raise StorageCorrupted(f"{path} is not a readable Aspen log database: {e}") from e
        except BaseException:
            self._db.close()
            raise

    def write(self, batch: WriteBatch) -> None:
        if batch.is_empty():
            return
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            if batch.delete_through is not None:
                db.execute("DELETE FROM log WHERE idx <= ?", (batch.delete_through,))
            if batch.delete_from is not None:
                db.execute("DELETE FROM log WHERE idx >= ?", (batch.delete_from,))
            if batch.entries:
                db.executemany(
                    "INSERT INTO log (idx, term, kind, data) VALUES (?, ?, ?, ?)",
                    [(e.index, e.term, int(e.kind), e.data) for e in batch.entries],
                )
            if batch.meta:
                db.executemany(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                    list(batch.meta.items()),
                )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def iter_entries(self, lo: int, hi: int) -> Generator[Entry, None, None]:
        cur = self._db.execute(
            "SELECT idx, term, kind, data FROM log WHERE idx >= ? AND idx < ? ORDER BY idx",
            (lo, hi),
        )
        for idx, term, kind, data in cur:
            yield Entry(index=idx, term=term, kind=EntryKind(kind), data=bytes(data))

    def term(self, index: int) -> int | None:
        row = self._db.execute("SELECT term FROM log WHERE idx = ?", (index,)).fetchone()
        return None if row is None else int(row[0])

    def bounds(self) -> tuple[int, int] | None:
        lo, hi = self._db.execute("SELECT min(idx), max(idx) FROM log").fetchone()
        return None if lo is None else (int(lo), int(hi))

    def get_meta(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def close(self) -> None:
        self._db.close()
