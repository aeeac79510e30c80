"""The data directory: an exclusive lock and a format marker.

Two processes writing one Raft log would corrupt it silently, so the directory is locked
with `fcntl.flock` on a LOCK file for as long as a store is open (the kernel drops the lock
when the process dies, so a crash never leaves a stale lock). A FORMAT file names the
format, its version and the engine; a directory holding anything else is refused with a
message and never written to.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .base import IncompatibleFormat, StorageLocked
from .fsutil import fsync_dir, write_file_atomically

FORMAT_NAME = "aspen-storage"
FORMAT_VERSION = 1
FORMAT_FILE = "FORMAT"
LOCK_FILE = "LOCK"
_TMP_FORMAT = f".tmp-{FORMAT_FILE}"  # write_file_atomically's temporary name


def _marker(engine: str) -> str:
    return f"{FORMAT_NAME} {FORMAT_VERSION} {engine}\n"


class DataDir:
    """An open, locked data directory for one engine; `close()` releases the lock."""

    def __init__(self, path: Path, engine: str) -> None:
        self.path = path
        self.engine = engine
        path.mkdir(parents=True, exist_ok=True)
        # Refuse a foreign directory before creating anything inside it.
        self._check_format(allow_missing=True)
        self._lock_fd = self._lock()
        try:
            if not self._check_format(allow_missing=True):
                write_file_atomically(path / FORMAT_FILE, _marker(engine).encode())
                fsync_dir(path.parent)
        except BaseException:
            self.close()
            raise

    def _check_format(self, allow_missing: bool) -> bool:
        """True when the marker is present and ours; raise when the directory is foreign."""
        marker = self.path / FORMAT_FILE
        if not marker.exists():
            ours = {LOCK_FILE, _TMP_FORMAT}  # what an open interrupted before the marker leaves
            others = sorted(p.name for p in self.path.iterdir() if p.name not in ours)
            if others:
                raise IncompatibleFormat(
                    f"{self.path} is not an Aspen data directory (no {FORMAT_FILE} file, but "
                    f"it holds {', '.join(others[:5])}{'...' if len(others) > 5 else ''}); "
                    "refusing to use it: point the node at an empty or Aspen directory"
                )
            if not allow_missing:
                raise IncompatibleFormat(f"{self.path}: {FORMAT_FILE} file is missing")
            return False
        text = marker.read_text(errors="replace")
        words = text.split()
        if len(words) != 3 or words[0] != FORMAT_NAME:
            raise IncompatibleFormat(
                f"{self.path}: {FORMAT_FILE} says {text.strip()!r}, not an {FORMAT_NAME} "
                "directory; refusing to use it"
            )
        if words[1] != str(FORMAT_VERSION):
            raise IncompatibleFormat(
                f"{self.path}: storage format version {words[1]} but this build reads version "
                f"{FORMAT_VERSION}; refusing to touch it"
            )
        if words[2] != self.engine:
            raise IncompatibleFormat(
                f"{self.path}: written by the {words[2]!r} backend, opened with "
                f"{self.engine!r}; open it with backend={words[2]!r}"
            )
        return True

    def _lock(self) -> int:
        fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StorageLocked(
                f"{self.path} is in use by another Aspen process (pid {holder}); "
                "two nodes must never share a data directory"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return fd

    def close(self) -> None:
        if self._lock_fd >= 0:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = -1
