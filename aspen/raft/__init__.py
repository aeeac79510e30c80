"""Sans-I/O Raft core: no trio, no sockets, no clock, no global randomness.

Public API (stable; the simulator and the node runtime code against it)::

    core = RaftCore(node_id, RaftConfig(), random.Random(seed),
                    hard_state=..., snapshot=..., entries=..., snapshot_data=...,
                    reader=storage, incarnation=...)

Incarnation: a number for this process life, greater than every earlier life's of this node
(the wall clock at start in microseconds will do; 0 = none). Followers put it on their answers;
a leader that sees a newer one resets that follower's progress and probes, so a follower whose
data dir was wiped catches up from the same leader (`Ready.lost_logs` reports it).

Empty start: a node restored with no hard state, log or snapshot may be a wiped voter that
forgot its votes; it withholds votes for a while (`RaftCore._withholding_votes`).

Restoring: pass what storage holds — the hard state, the snapshot's meta (and its bytes as
`snapshot_data`, so the node can ship it to lagging followers after a restart), and the
entries after the snapshot. The state machine restarts from the snapshot: `applied_index`
starts at the snapshot index and committed entries after it are handed out again.

The log window: given a `reader` (a `LogReader`: `entries(lo, hi, max_bytes)`, e.g. the
node's storage), the core keeps only a bounded tail of applied, durable entries in memory
(RaftConfig.log_window_entries / log_window_bytes) and reads older ones back synchronously
when a lagging follower needs them. The runtime must not compact storage past the core's
snapshot (it only compacts behind `compact()` or an installed snapshot, as it must anyway).
Without a reader, every entry after the snapshot stays in memory.

Bootstrapping: a brand-new cluster calls `core.bootstrap(Membership(voters=...))` with the SAME
membership on every initial member (it writes a committed MEMBERSHIP entry at index 1, term 1).
Nodes added later start empty, without bootstrap; the leader adds them (usually as learners)
with `change_membership` and replicates the log (or a snapshot) to them. Membership is the
snapshot's plus the latest MEMBERSHIP entry in the log, committed or not (`core.membership`).

Inputs:
    core.tick()                         one logical tick (the runtime owns wall time)
    core.step(msg)                      a message from a peer (stale/misrouted ones are ignored)
    core.propose(data) -> index         leader only; raises NotLeader(leader_hint), or
                                        ProposalDropped during a leadership transfer
    core.read_index(token)              answered later by ready().read_states: ReadState(token,
                                        index) -> serve once applied >= index; on a follower
                                        the request is forwarded to the leader.
                                        ReadState(token, None) means it could not be served
                                        (no leader, leadership lost, timeout after
                                        election_tick ticks): fail or retry; every token gets
                                        exactly one ReadState.
    core.change_membership(voters, learners) -> index
                                        leader only; joint consensus when voters change
                                        (C_old,new, then C_new appended automatically once
                                        the joint entry commits). ProposalDropped while
                                        another change is in flight or before the leader's
                                        first commit of its term.
    core.transfer_leadership(to)        leader only; aborts after election_tick ticks
    core.compact(index, data) -> SnapshotMeta
                                        index <= applied_index; the runtime saves (meta, data)
                                        and compacts storage itself; check
                                        core.can_compact(index) first (False while a snapshot
                                        received from the leader awaits its Ready)
Outputs:
    core.has_ready() / rd = core.ready() / core.advance(rd)
        At most one Ready is outstanding: ready() raises if called before advance(), and
        has_ready() is False meanwhile. tick()/step()/propose() may be called in between.
        See `Ready` for the order in which the runtime handles its fields, and
        `aspen.raft.driver.Driver` for the one implementation of that order, which the
        runtime and the simulator both run (not exported here: import it from its module).
    core.lease_remaining() -> int       ticks this leader may serve reads locally
                                        (read_consistency = "lease"; needs CheckQuorum; the
                                        runtime subtracts its clock-drift margin)
    core.role, core.term, core.vote, core.leader_id, core.commit_index, core.applied_index,
    core.membership, core.hard_state, core.soft_state, core.last_index, core.first_index,
    core.term_at(i), core.entries(lo, hi), core.snapshot, core.progress(peer)

Notes for runtimes:
    - read tokens should be unique per outstanding read (a follower matches answers by token);
    - a node removed from the membership stops campaigning once it holds the entry removing
      it; one that missed it (down at the time) keeps sending pre-votes that the cluster
      ignores: shut removed nodes down;
    - without `snapshot_data` on restore, a leader cannot seed followers whose entries were
      compacted until its next compact().

Test seams (override in test code only; nothing in config reaches them):
    _may_grant_vote(msg), _may_commit_at(index), _read_requires_quorum_check(),
    _guards_lost_votes()
"""

from aspen.raft.core import RaftCore
from aspen.raft.errors import NotLeader, ProposalDropped, RaftDecodeError, RaftError
from aspen.raft.messages import (
    MESSAGE_TYPES,
    AppendEntries,
    AppendEntriesResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    InstallSnapshotResponse,
    Message,
    ReadIndexRequest,
    ReadIndexResponse,
    RequestVote,
    RequestVoteResponse,
    TimeoutNow,
)
from aspen.raft.progress import Progress, ProgressState
from aspen.raft.reader import LogReader
from aspen.raft.ready import LostLog, ReadState, Ready, Role, SoftState
from aspen.raft.tunables import RaftConfig
from aspen.raft.types import Entry, EntryKind, HardState, Membership, NodeId, SnapshotMeta
from aspen.raft.wire import decode_membership, decode_message, encode_membership, encode_message

__all__ = [
    "MESSAGE_TYPES",
    "AppendEntries",
    "AppendEntriesResponse",
    "Entry",
    "EntryKind",
    "HardState",
    "Heartbeat",
    "HeartbeatResponse",
    "InstallSnapshot",
    "InstallSnapshotResponse",
    "LogReader",
    "LostLog",
    "Membership",
    "Message",
    "NodeId",
    "NotLeader",
    "Progress",
    "ProgressState",
    "ProposalDropped",
    "RaftConfig",
    "RaftCore",
    "RaftDecodeError",
    "RaftError",
    "ReadIndexRequest",
    "ReadIndexResponse",
    "ReadState",
    "Ready",
    "RequestVote",
    "RequestVoteResponse",
    "Role",
    "SnapshotMeta",
    "SoftState",
    "TimeoutNow",
    "decode_membership",
    "decode_message",
    "encode_membership",
    "encode_message",
]
