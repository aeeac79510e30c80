"""The messages Raft peers exchange: frozen attrs classes, encoded by `aspen.raft.wire`.

Every message carries `src`, `dst` and the sender's `term`. ReadIndex request/response are
term-neutral: the receiver never changes its term because of them (the leader's answer is
valid whatever term the asking follower is in).

`incarnation` (on the follower's answers, and on Heartbeat) identifies one process life of a
follower: the runtime gives each start a number greater than the previous one's (e.g. the wall
clock at start). A follower whose data dir was wiped comes back with an empty log but a new
incarnation, which is how its leader tells "this follower lost its log" (reset its progress)
from "an old, reordered rejection" (ignore it). 0 = unknown (a runtime or a peer without it).
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from aspen.raft.types import Entry, NodeId, SnapshotMeta


def _entry_tuple(entries: Iterable[Entry]) -> tuple[Entry, ...]:
    return tuple(entries)


@attrs.frozen
class RequestVote:
    """Ask for a vote; with `pre_vote` it only asks "would you vote for me at `term`?".

    `transfer` marks a campaign started by TimeoutNow: voters ignore their leader lease.
    """

    src: NodeId
    dst: NodeId
    term: int
    last_log_index: int
    last_log_term: int
    pre_vote: bool = False
    transfer: bool = False


@attrs.frozen
class RequestVoteResponse:
    src: NodeId
    dst: NodeId
    term: int
    granted: bool
    pre_vote: bool = False


@attrs.frozen
class AppendEntries:
    src: NodeId
    dst: NodeId
    term: int
    prev_log_index: int
    prev_log_term: int
    entries: tuple[Entry, ...] = attrs.field(default=(), converter=_entry_tuple)
    commit: int = 0


@attrs.frozen
class AppendEntriesResponse:
    """On success `index` is the last index known to match the leader's log.

    On rejection `index` is the rejected `prev_log_index`, and (`hint_index`, `hint_term`) is
    the follower's last entry at or below it whose term is <= the probe's prev_log_term: the
    leader skips every index in between in one round trip (fast backtracking).
    """

    src: NodeId
    dst: NodeId
    term: int
    success: bool
    index: int
    hint_index: int = 0
    hint_term: int = 0
    incarnation: int = 0


@attrs.frozen
class InstallSnapshot:
    """One chunk of the leader's snapshot; `done` marks the last chunk."""

    src: NodeId
    dst: NodeId
    term: int
    meta: SnapshotMeta
    offset: int
    data: bytes
    done: bool


@attrs.frozen
class InstallSnapshotResponse:
    """Chunk acknowledgement: `offset` is how many bytes of snapshot `index` the follower holds.

    The final result of an install is reported with an AppendEntriesResponse instead.
    """

    src: NodeId
    dst: NodeId
    term: int
    index: int
    offset: int


@attrs.frozen
class Heartbeat:
    """Leader liveness; `commit` is capped at the follower's match index; `context` is the
    newest ReadIndex round the leader wants confirmed (0 = none); `incarnation` is the follower
    life that match was acknowledged by: another life must not trust `commit`."""

    src: NodeId
    dst: NodeId
    term: int
    commit: int = 0
    context: int = 0
    incarnation: int = 0


@attrs.frozen
class HeartbeatResponse:
    src: NodeId
    dst: NodeId
    term: int
    context: int = 0
    incarnation: int = 0


@attrs.frozen
class ReadIndexRequest:
    """A follower forwards a linearizable read to the leader."""

    src: NodeId
    dst: NodeId
    term: int
    token: bytes


@attrs.frozen
class ReadIndexResponse:
    """The leader's answer: `index` to wait for, or `ok=False` if it could not serve."""

    src: NodeId
    dst: NodeId
    term: int
    token: bytes
    index: int
    ok: bool


@attrs.frozen
class TimeoutNow:
    """Leadership transfer: the target campaigns at once, ignoring leases."""

    src: NodeId
    dst: NodeId
    term: int


Message = (
    RequestVote
    | RequestVoteResponse
    | AppendEntries
    | AppendEntriesResponse
    | InstallSnapshot
    | InstallSnapshotResponse
    | Heartbeat
    | HeartbeatResponse
    | ReadIndexRequest
    | ReadIndexResponse
    | TimeoutNow
)

MESSAGE_TYPES: tuple[type[Message], ...] = (
    RequestVote,
    RequestVoteResponse,
    AppendEntries,
    AppendEntriesResponse,
    InstallSnapshot,
    InstallSnapshotResponse,
    Heartbeat,
    HeartbeatResponse,
    ReadIndexRequest,
    ReadIndexResponse,
    TimeoutNow,
)
