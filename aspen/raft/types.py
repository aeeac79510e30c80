"""Plain data shared by the Raft core and the storage backends.

These live in `aspen.raft` because the core defines what a log entry is; storage backends
import them so that there is exactly one Entry type between the core, the disk and the wire.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

import attrs

NodeId = int
"""Node ids are small positive integers; 0 means "nobody" on the wire."""


class EntryKind(enum.IntEnum):
    """What an entry carries; the state machine only ever sees NORMAL entries' data."""

    NORMAL = 0
    NOOP = 1  # appended by a new leader so it can commit entries of earlier terms
    MEMBERSHIP = 2  # data is an encoded Membership (joint or simple)


@attrs.frozen
class Entry:
    index: int
    term: int
    kind: EntryKind = EntryKind.NORMAL
    data: bytes = b""


@attrs.frozen
class HardState:
    """What must survive a crash before a vote or an append is acknowledged."""

    term: int = 0
    vote: NodeId | None = None
    commit: int = 0


def _node_set(values: Iterable[NodeId]) -> frozenset[NodeId]:
    """attrs converter with a concrete type (a bare `frozenset` confuses mypy's attrs plugin)."""
    return frozenset(values)


@attrs.frozen
class Membership:
    """Voters and learners; `voters_outgoing` is non-empty only during joint consensus."""

    voters: frozenset[NodeId] = attrs.field(factory=frozenset, converter=_node_set)
    learners: frozenset[NodeId] = attrs.field(factory=frozenset, converter=_node_set)
    voters_outgoing: frozenset[NodeId] = attrs.field(factory=frozenset, converter=_node_set)

    @property
    def is_joint(self) -> bool:
        return bool(self.voters_outgoing)

    @property
    def all_nodes(self) -> frozenset[NodeId]:
        return self.voters | self.learners | self.voters_outgoing


@attrs.frozen
class SnapshotMeta:
    """The position a snapshot stands for: everything up to `index` is inside it."""

    index: int
    term: int
    membership: Membership
