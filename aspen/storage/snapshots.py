"""Snapshot files: written atomically, checksummed, the previous one kept as a fallback.

A snapshot is written to a temporary file, fsynced, renamed into place and the directory
fsynced: a crash leaves either the old set of files or the new one plus a stray temporary
file (removed at the next open). Each file carries its metadata and a CRC-32 of everything
before the trailer; a truncated or damaged file is detected when the store opens, renamed to
`*.corrupt` (kept for inspection, never read again) and the previous good snapshot is used.

Layout: MAGIC | u32 meta length | CBOR meta | data ... | u64 data length | u32 crc | END
"""

from __future__ import annotations

import io
import logging
import os
import re
import struct
import uuid
import zlib
from pathlib import Path
from typing import BinaryIO, Protocol

from aspen.raft.types import SnapshotMeta

from .base import StorageCorrupted
from .fsutil import fsync_dir
from .memory_engine import MemoryEngine
from .records import decode_snapshot_meta, encode_snapshot_meta

log = logging.getLogger(__name__)

MAGIC = b"ASPNSNP1"
END = b"ASPNEND1"
_U32 = struct.Struct(">I")
_TRAILER = struct.Struct(">QI8s")  # data length, crc, END
_NAME = re.compile(r"^snap-([0-9a-f]{16})-([0-9a-f]{16})\.snap$")
_TMP_PREFIX = ".tmp-"
_CHUNK = 1 << 20


class SnapshotSink(Protocol):
    def write(self, data: bytes) -> int: ...

    def finish(self) -> None:
        """Make the snapshot durable and visible."""

    def abort(self) -> None: ...


class SnapshotStore(Protocol):
    def recover(self) -> list[SnapshotMeta]:
        """The valid snapshots, newest first; clears leftovers of interrupted writes."""

    def begin(self, meta: SnapshotMeta) -> SnapshotSink: ...

    def read(self, meta: SnapshotMeta) -> bytes: ...

    def open(self, meta: SnapshotMeta) -> BinaryIO: ...

    def prune(self, keep: list[SnapshotMeta]) -> None:
        """Delete every snapshot not in `keep`."""


def file_name(meta: SnapshotMeta) -> str:
    return f"snap-{meta.index:016x}-{meta.term:016x}.snap"


class FileSnapshots:
    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self._dir.mkdir(exist_ok=True)

    def recover(self) -> list[SnapshotMeta]:
        found: list[SnapshotMeta] = []
        changed = False
        for path in sorted(self._dir.iterdir()):
            if path.name.startswith(_TMP_PREFIX):
                path.unlink()
                changed = True
                continue
            if not _NAME.match(path.name):
                continue
            try:
                found.append(self._verify(path))
            except StorageCorrupted as e:
                log.warning("snapshot %s is unusable (%s); moved aside", path, e)
                path.rename(path.with_name(path.name + ".corrupt"))
                changed = True
        if changed:
            fsync_dir(self._dir)
        found.sort(key=lambda m: (m.index, m.term), reverse=True)
        return found

    def begin(self, meta: SnapshotMeta) -> SnapshotSink:
        return _FileSink(self._dir, meta)

    def read(self, meta: SnapshotMeta) -> bytes:
        with self.open(meta) as f:
            return f.read()

    def open(self, meta: SnapshotMeta) -> BinaryIO:
        path = self._dir / file_name(meta)
        f = path.open("rb")
        try:
            found, start, length = _read_header(f, path)
            if found != meta:
                raise StorageCorrupted(f"{path}: holds {found}, expected {meta}")
            return io.BufferedReader(_CheckedReader(f, start, length), buffer_size=_CHUNK)
        except BaseException:
            f.close()
            raise

    def prune(self, keep: list[SnapshotMeta]) -> None:
        names = {file_name(m) for m in keep}
        removed = False
        for path in self._dir.iterdir():
            if _NAME.match(path.name) and path.name not in names:
                path.unlink()
                removed = True
        if removed:
            fsync_dir(self._dir)

    def path_of(self, meta: SnapshotMeta) -> Path:
        return self._dir / file_name(meta)

    def _verify(self, path: Path) -> SnapshotMeta:
        with path.open("rb") as f:
            meta, start, length = _read_header(f, path)
            m = _NAME.match(path.name)
            assert m is not None
            if (int(m.group(1), 16), int(m.group(2), 16)) != (meta.index, meta.term):
                raise StorageCorrupted(f"{path}: name does not match its meta {meta}")
            reader = _CheckedReader(f, start, length)
            while reader.read(_CHUNK):
                pass
        return meta


def _read_header(f: BinaryIO, path: Path) -> tuple[SnapshotMeta, int, int]:
    """Check magic, trailer and lengths; return (meta, data offset, data length)."""
    size = os.fstat(f.fileno()).st_size
    head = f.read(len(MAGIC) + _U32.size)
    if len(head) < len(MAGIC) + _U32.size or head[: len(MAGIC)] != MAGIC:
        raise StorageCorrupted(f"{path}: not a snapshot file (bad magic or too short)")
    (meta_len,) = _U32.unpack_from(head, len(MAGIC))
    start = len(head) + meta_len
    if start + _TRAILER.size > size:
        raise StorageCorrupted(f"{path}: truncated ({size} bytes)")
    meta = decode_snapshot_meta(f.read(meta_len))
    f.seek(size - _TRAILER.size)
    length, _crc, end = _TRAILER.unpack(f.read(_TRAILER.size))
    if end != END or start + length + _TRAILER.size != size:
        raise StorageCorrupted(f"{path}: truncated or damaged trailer ({size} bytes)")
    f.seek(0)
    return meta, start, length


class _CheckedReader(io.RawIOBase):
    """The data region of a snapshot file; raises at its end if the CRC does not match."""

    def __init__(self, f: BinaryIO, start: int, length: int) -> None:
        super().__init__()
        self._f = f
        f.seek(0)
        self._crc = zlib.crc32(f.read(start))
        self._left = length
        self._length = length
        trailer_at = start + length
        f.seek(trailer_at)
        self._trailer = f.read(_TRAILER.size)
        f.seek(start)

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._left == 0:
            return 0
        view = memoryview(buf)[: min(len(buf), self._left)]
        n = self._f.readinto(view)  # type: ignore[attr-defined]
        if not n:
            raise StorageCorrupted("snapshot file shrank while being read")
        self._crc = zlib.crc32(view[:n], self._crc)
        self._left -= n
        if self._left == 0:
            self._check()
        return int(n)

    def _check(self) -> None:
        length, crc, _end = _TRAILER.unpack(self._trailer)
        crc_all = zlib.crc32(self._trailer[:8], self._crc)
        if crc != crc_all or length != self._length:
            raise StorageCorrupted("snapshot checksum mismatch")

    def close(self) -> None:
        if not self.closed:
            self._f.close()
        super().close()


class _FileSink:
    def __init__(self, directory: Path, meta: SnapshotMeta) -> None:
        self._dir = directory
        self._meta = meta
        self._tmp = directory / f"{_TMP_PREFIX}{uuid.uuid4().hex}-{file_name(meta)}"
        self._f: BinaryIO | None = self._tmp.open("xb")
        raw_meta = encode_snapshot_meta(meta)
        head = MAGIC + _U32.pack(len(raw_meta)) + raw_meta
        self._crc = 0
        self._length = 0
        self._raw_write(head)
        self._length = 0

    def _raw_write(self, data: bytes) -> None:
        assert self._f is not None, "snapshot writer already finished"
        self._f.write(data)
        self._crc = zlib.crc32(data, self._crc)
        self._length += len(data)

    def write(self, data: bytes) -> int:
        self._raw_write(data)
        return len(data)

    def finish(self) -> None:
        f = self._f
        assert f is not None, "snapshot writer already finished"
        length = struct.pack(">Q", self._length)
        crc = zlib.crc32(length, self._crc)
        f.write(length + _U32.pack(crc) + END)
        f.flush()
        os.fsync(f.fileno())
        f.close()
        self._f = None
        os.replace(self._tmp, self._dir / file_name(self._meta))
        fsync_dir(self._dir)

    def abort(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
            self._tmp.unlink(missing_ok=True)


class MemorySnapshots:
    """Snapshots held in memory, sharing the memory engine's crash model (memory_engine.py).

    A snapshot saved without sync is lost by a crash unless some later sync covered it.
    """

    def __init__(self, engine: MemoryEngine) -> None:
        self._engine = engine
        self._durable: dict[SnapshotMeta, bytes] = {}
        self._visible: dict[SnapshotMeta, bytes] = {}
        engine.on_sync.append(self.sync)

    def recover(self) -> list[SnapshotMeta]:
        return sorted(self._visible, key=lambda m: (m.index, m.term), reverse=True)

    def begin(self, meta: SnapshotMeta) -> SnapshotSink:
        return _MemorySink(self, meta)

    def read(self, meta: SnapshotMeta) -> bytes:
        return self._visible[meta]

    def open(self, meta: SnapshotMeta) -> BinaryIO:
        return io.BytesIO(self._visible[meta])

    def prune(self, keep: list[SnapshotMeta]) -> None:
        self._visible = {m: d for m, d in self._visible.items() if m in keep}
        if self._engine.sync_writes:
            self.sync()

    def put(self, meta: SnapshotMeta, data: bytes) -> None:
        self._visible[meta] = data
        if self._engine.sync_writes:
            self._engine.sync()

    def sync(self) -> None:
        self._durable = dict(self._visible)

    def crash(self) -> None:
        self._visible = dict(self._durable)


class _MemorySink:
    def __init__(self, owner: MemorySnapshots, meta: SnapshotMeta) -> None:
        self._owner = owner
        self._meta = meta
        self._buf: io.BytesIO | None = io.BytesIO()

    def write(self, data: bytes) -> int:
        assert self._buf is not None, "snapshot writer already finished"
        return self._buf.write(data)

    def finish(self) -> None:
        assert self._buf is not None, "snapshot writer already finished"
        self._owner.put(self._meta, self._buf.getvalue())
        self._buf = None

    def abort(self) -> None:
        self._buf = None
