"""What the core hands to its runtime: a Ready batch, read results, and the visible role."""

from __future__ import annotations

import enum

import attrs

from aspen.raft.messages import Message
from aspen.raft.types import Entry, HardState, NodeId, SnapshotMeta


class Role(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre_candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


@attrs.frozen
class SoftState:
    """Volatile state worth telling the runtime about when it changes."""

    leader_id: NodeId | None
    role: Role


@attrs.frozen
class ReadState:
    """Answer to `read_index(token)`: serve the read once applied >= `index`.

    `index is None` means the read could not be confirmed (no leader, leadership lost, timed
    out): the caller should retry or fail the request; it will never be answered later.
    """

    token: bytes
    index: int | None


@attrs.frozen
class LostLog:
    """The leader found that follower `peer` restarted (as `incarnation`) without the log its
    earlier life had acknowledged up to `acked`: it now holds entries up to `has` at most (a
    wiped data dir, or a disk that lost fsynced writes). Its progress was reset and it is
    being caught up; the runtime should log this loudly and count it."""

    peer: NodeId
    incarnation: int
    acked: int
    has: int


@attrs.define
class Ready:
    """One batch of work for the runtime. Handle it in this order, then call `advance(ready)`:

    1. `messages` may be sent at once (in parallel with the disk work below).
    2. `snapshot`: install it (restore the state machine; storage replaces its whole log with
       the snapshot).
    3. `entries`: append durably, first truncating any stored suffix at `entries[0].index`;
       `hard_state`: persist. One fsync for both.
    4. `persisted_messages`: send only now (votes, append acks).
    5. `committed`: apply in order (only NORMAL entries reach the state machine).
    6. `read_states`: serve each read once the applied index reaches it.

    `lost_logs` are notices for the runtime's log and metrics (nothing to do for Raft).
    """

    soft_state: SoftState | None = None
    hard_state: HardState | None = None
    entries: list[Entry] = attrs.Factory(list)
    snapshot: tuple[SnapshotMeta, bytes] | None = None
    committed: list[Entry] = attrs.Factory(list)
    read_states: list[ReadState] = attrs.Factory(list)
    messages: list[Message] = attrs.Factory(list)
    persisted_messages: list[Message] = attrs.Factory(list)
    lost_logs: list[LostLog] = attrs.Factory(list)
