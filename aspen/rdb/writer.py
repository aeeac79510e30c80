"""Write an RDB file (version 10) that redis-server 7.0 loads.

Values use DUMP's encoder (aspen.kv.dump.dump_value: the plain types every Redis reads and
converts to its compact encodings on load). The file is written to a temporary name, fsynced
and renamed, as Redis does, so a crash never leaves a half-written dump.rdb.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from aspen import __version__
from aspen.kv.dump import RDB_VERSION, _length, _string, crc64, dump_value
from aspen.rdb.reader import OP_AUX, OP_EOF, OP_EXPIRETIME_MS, OP_FUNCTION2, OP_SELECTDB

Item = tuple[bytes, object, int | None]  # key, value, absolute expiry in ms (or None)
"""A key; in a stream of items a bare int n means "the keys after this are database n's"."""


class _CrcFile:
    """Writes through to a file, keeping the CRC64 of everything written."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.crc = 0
        self.pending = bytearray()

    def write(self, data: bytes) -> None:
        self.pending += data
        if len(self.pending) >= 1 << 16:
            self.flush()

    def flush(self) -> None:
        self.crc = crc64(bytes(self.pending), self.crc)
        self.f.write(self.pending)
        self.pending = bytearray()


def _aux(name: str, value: str | int) -> bytes:
    return bytes((OP_AUX,)) + _string(name.encode()) + _string(str(value).encode())


def write_rdb_stream(
    f: BinaryIO, items: Iterable[Item | int], *, functions: Iterable[bytes] = (),
    now_ms: int | None = None,
) -> int:
    """Write the file to `f`; the number of keys written."""
    out = _CrcFile(f)
    ctime = int(time.time()) if now_ms is None else now_ms // 1000
    out.write(b"REDIS%04d" % RDB_VERSION)
    out.write(_aux("redis-ver", "7.0.15"))  # the format's version, not the server's
    out.write(_aux("redis-bits", 64))
    out.write(_aux("ctime", ctime))
    out.write(_aux("aof-base", 0))
    out.write(_aux("aspen-ver", __version__))
    out.write(bytes((OP_SELECTDB, 0)))
    n = db = 0
    for item in items:
        if isinstance(item, int):
            if item != db:
                db = item
                out.write(bytes((OP_SELECTDB,)) + _length(db))
            continue
        key, value, expire_ms = item
        if expire_ms is not None:
            out.write(bytes((OP_EXPIRETIME_MS,)) + expire_ms.to_bytes(8, "little"))
        body = dump_value(value)  # the type byte, then the value
        out.write(body[:1] + _string(key) + body[1:])
        n += 1
    # After the keys (Redis writes them first; a loader takes the opcode anywhere): a caller
    # may fill `functions` while the keys stream (aspen/rdb/save.py).
    for code in functions:
        out.write(bytes((OP_FUNCTION2,)) + _string(code))
    out.write(bytes((OP_EOF,)))
    out.flush()
    f.write(out.crc.to_bytes(8, "little"))
    return n


def write_rdb(path: Path, items: Iterable[Item | int], *, functions: Iterable[bytes] = (),
              now_ms: int | None = None) -> int:
    """Write `path` atomically (temporary file, fsync, rename); the number of keys."""
    tmp = path.with_name(f"temp-{os.getpid()}-{time.monotonic_ns()}.rdb")
    try:
        with tmp.open("wb") as f:
            n = write_rdb_stream(f, items, functions=functions, now_ms=now_ms)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return n
