"""One fixture, three backends: every conformance test runs against each of them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aspen.raft.types import Entry, EntryKind
from aspen.storage import LogStore, MemoryStorage, open_storage

BACKENDS = ["memory", "sqlite", "lmdb"]


class Harness:
    """Opens a store of one backend and can "restart" it: close + reopen, or crash."""

    def __init__(self, backend: str, path: Path) -> None:
        self.backend = backend
        self.path = path
        self.store: LogStore = self._open()

    def _open(self) -> LogStore:
        if self.backend == "memory":
            return open_storage(None, "memory")
        return open_storage(self.path, self.backend)  # type: ignore[arg-type]

    def restart(self) -> LogStore:
        """What a process restart does: everything durable is there again."""
        if isinstance(self.store, MemoryStorage):
            self.store.crash()
        else:
            self.store.close()
            self.store = self._open()
        return self.store

    def close(self) -> None:
        self.store.close()


@pytest.fixture(params=BACKENDS)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    h = Harness(request.param, tmp_path / "data")
    yield h
    h.close()


@pytest.fixture
def store(harness: Harness) -> LogStore:
    return harness.store


def payload(index: int, term: int) -> bytes:
    """Content derivable from the position, so a read-back can be checked exactly."""
    return f"{index}:{term}:".encode() * (1 + index % 7)


def ents(lo: int, hi: int, term: int, kind: EntryKind = EntryKind.NORMAL) -> list[Entry]:
    """Entries lo..hi inclusive, all of one term."""
    return [Entry(i, term, kind, payload(i, term)) for i in range(lo, hi + 1)]


MakeEntries = Callable[[int, int, int], list[Entry]]
