"""Engine-specific guarantees the conformance suite cannot see."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ents

from aspen.raft.types import Entry
from aspen.storage import StorageCorrupted, lmdb_engine, open_storage
from aspen.storage.engine import WriteBatch
from aspen.storage.sqlite_engine import SqliteEngine


def test_sqlite_runs_wal_with_synchronous_full(tmp_path: Path) -> None:
    engine = SqliteEngine(tmp_path / "log.db")
    try:
        db = engine._db
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL: fsync per commit
    finally:
        engine.close()


def test_sqlite_batch_is_all_or_nothing(tmp_path: Path) -> None:
    engine = SqliteEngine(tmp_path / "log.db")
    try:
        engine.write(WriteBatch(entries=ents(1, 3, 1)))
        with pytest.raises(Exception, match="UNIQUE"):  # a row that exists: the txn fails
            engine.write(WriteBatch(entries=ents(4, 5, 1) + ents(1, 1, 1), meta={"k": b"v"}))
        assert engine.bounds() == (1, 3) and engine.get_meta("k") is None
        engine.write(WriteBatch(entries=ents(4, 4, 1)))  # still usable afterwards
        assert engine.bounds() == (1, 4)
    finally:
        engine.close()


def test_lmdb_grows_its_map_when_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lmdb_engine, "_INITIAL_MAP", 1 << 20)
    big = [Entry(i, 1, data=bytes([i % 256]) * (1 << 20)) for i in range(1, 9)]  # 8 MiB
    with open_storage(tmp_path / "d", "lmdb") as s:
        s.append(big[:4])
        s.append(big[4:])
    with open_storage(tmp_path / "d", "lmdb") as s:
        assert s.entries(1, 9) == big


def test_a_damaged_sqlite_file_is_a_clear_error(tmp_path: Path) -> None:
    with open_storage(tmp_path / "d", "sqlite") as s:
        s.append(ents(1, 3, 1))
    (tmp_path / "d" / "log.db").write_bytes(b"this is not a database" * 200)
    for name in ("log.db-wal", "log.db-shm"):
        (tmp_path / "d" / name).unlink(missing_ok=True)
    for _ in range(2):  # the second time proves the failed open released its lock
        with pytest.raises(StorageCorrupted, match="not a readable Aspen log database"):
            open_storage(tmp_path / "d", "sqlite")


def test_a_damaged_lmdb_file_is_a_clear_error(tmp_path: Path) -> None:
    with open_storage(tmp_path / "d", "lmdb") as s:
        s.append(ents(1, 3, 1))
    (tmp_path / "d" / "lmdb" / "data.mdb").write_bytes(b"this is not a database" * 900)
    for _ in range(2):  # the second time proves the failed open released its lock
        with pytest.raises(StorageCorrupted, match="not a readable Aspen LMDB log"):
            open_storage(tmp_path / "d", "lmdb")
