"""The small key-value contract the log logic needs from a storage engine.

`LogStore` (store.py) holds every rule of the Raft log (ranges, conflicts, compaction,
snapshots); an engine only stores rows `index -> Entry` and a few metadata blobs, and
applies one `WriteBatch` as one durable transaction. That keeps sqlite, LMDB and the
in-memory engine interchangeable and lets one conformance suite cover all of them.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Protocol

import attrs

from aspen.raft.types import Entry

# Metadata keys.
META_HARD_STATE = "hard_state"
META_BASE = "base"  # logical compaction point (index, term): first_index() - 1
META_PHYS = "phys"  # rows with index <= this were physically deleted (index, term)
META_SNAP = "snap"  # (index, term) of the latest snapshot applied to the log


@attrs.define
class WriteBatch:
    """Applied in this order, atomically: delete_through, delete_from, entries, meta."""

    delete_through: int | None = None  # delete rows with index <= this
    delete_from: int | None = None  # delete rows with index >= this
    entries: Sequence[Entry] = ()
    meta: dict[str, bytes] = attrs.field(factory=dict)

    def is_empty(self) -> bool:
        return (
            self.delete_through is None
            and self.delete_from is None
            and not self.entries
            and not self.meta
        )


class Engine(Protocol):
    def write(self, batch: WriteBatch) -> None:
        """One transaction, durable (one fsync) on return."""

    def iter_entries(self, lo: int, hi: int) -> Generator[Entry, None, None]:
        """Rows with lo <= index < hi, in order."""

    def term(self, index: int) -> int | None: ...

    def bounds(self) -> tuple[int, int] | None:
        """(smallest, largest) row index, or None when there are no rows."""

    def get_meta(self, key: str) -> bytes | None: ...

    def close(self) -> None: ...
