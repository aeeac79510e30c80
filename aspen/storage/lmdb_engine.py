"""The LMDB engine, measured against sqlite (see docs/benchmarks.md, "Storage").

Keys are 8-byte big-endian indices so that LMDB's byte order is index order. With
`sync=True, metasync=True` a committed write transaction is on disk when `commit` returns;
LMDB's copy-on-write B+tree never exposes a half-written transaction.
"""

from __future__ import annotations

import struct
from collections.abc import Generator
from pathlib import Path
from typing import Any

import lmdb

from aspen.raft.types import Entry

from .base import StorageCorrupted
from .engine import WriteBatch
from .records import decode_entry_value, encode_entry_value, entry_term_from_value

_KEY = struct.Struct(">Q")
_INITIAL_MAP = 1 << 30


class LmdbEngine:
    def __init__(self, path: Path) -> None:
        path.mkdir(exist_ok=True)
        try:
            self._env: Any = lmdb.open(
                str(path), map_size=_INITIAL_MAP, max_dbs=2, sync=True, metasync=True,
                readahead=False,
            )
        except lmdb.Error as e:
            raise StorageCorrupted(f"{path} is not a readable Aspen LMDB log: {e}") from e
        # Grow the map to the file's size if an earlier run grew it.
        self._env.set_mapsize(max(_INITIAL_MAP, self._env.info()["map_size"]))
        self._log: Any = self._env.open_db(b"log")
        self._meta: Any = self._env.open_db(b"meta")

    def write(self, batch: WriteBatch) -> None:
        if batch.is_empty():
            return
        while True:
            try:
                with self._env.begin(write=True) as txn:
                    self._apply(txn, batch)
                return
            except lmdb.MapFullError:
                # The aborted transaction left nothing behind; retry with a bigger map.
                self._env.set_mapsize(self._env.info()["map_size"] * 2)

    def _apply(self, txn: Any, batch: WriteBatch) -> None:
        cur = txn.cursor(db=self._log)
        if batch.delete_through is not None and cur.first():
            while True:
                key = cur.key()
                if not key or _KEY.unpack(key)[0] > batch.delete_through or not cur.delete():
                    break
        if batch.delete_from is not None and cur.set_range(_KEY.pack(batch.delete_from)):
            while cur.delete():
                pass
        for e in batch.entries:
            txn.put(_KEY.pack(e.index), encode_entry_value(e), db=self._log)
        for key, value in batch.meta.items():
            txn.put(key.encode(), value, db=self._meta)

    def iter_entries(self, lo: int, hi: int) -> Generator[Entry, None, None]:
        with self._env.begin() as txn:
            cur = txn.cursor(db=self._log)
            if not cur.set_range(_KEY.pack(lo)):
                return
            for key, value in cur:
                index = _KEY.unpack(key)[0]
                if index >= hi:
                    return
                yield decode_entry_value(index, value)

    def term(self, index: int) -> int | None:
        with self._env.begin() as txn:
            raw = txn.get(_KEY.pack(index), db=self._log)
        return None if raw is None else entry_term_from_value(raw)

    def bounds(self) -> tuple[int, int] | None:
        with self._env.begin() as txn:
            cur = txn.cursor(db=self._log)
            if not cur.first():
                return None
            lo = _KEY.unpack(cur.key())[0]
            cur.last()
            hi = _KEY.unpack(cur.key())[0]
        return int(lo), int(hi)

    def get_meta(self, key: str) -> bytes | None:
        with self._env.begin() as txn:
            raw = txn.get(key.encode(), db=self._meta)
        return None if raw is None else bytes(raw)

    def close(self) -> None:
        self._env.close()
