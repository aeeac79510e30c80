"""RaftCore: the whole Raft protocol as a pure state machine (no I/O, no clock, no threads).

Inputs are `tick()`, `step(msg)` and the client calls (`propose`, `read_index`,
`change_membership`, `transfer_leadership`, `compact`); outputs are collected in a `Ready`
that the runtime drains with `ready()` and acknowledges with `advance()`. See the package
docstring for the contract.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

import attrs

from aspen.raft.errors import NotLeader, ProposalDropped
from aspen.raft.log import RaftLog
from aspen.raft.messages import (
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
from aspen.raft.quorum import VoteResult, joint_index, joint_vote, voters_of
from aspen.raft.reader import LogReader
from aspen.raft.ready import LostLog, ReadState, Ready, Role, SoftState
from aspen.raft.tunables import RaftConfig
from aspen.raft.types import Entry, EntryKind, HardState, Membership, NodeId, SnapshotMeta
from aspen.raft.wire import decode_membership, encode_membership

AMNESIA_ELECTIONS = 2
"""A node started with an empty data dir neither votes nor campaigns for this many election
timeouts (`RaftCore._withholding_votes`)."""


@attrs.define
class _PendingRead:
    round: int  # the heartbeat round that must be confirmed by a quorum
    index: int  # the commit index when the read arrived
    token: bytes
    requester: NodeId
    started: int  # logical tick when it arrived (for the timeout)


class RaftCore:
    """One Raft peer. Not thread-safe; every call is fast and never blocks."""

    def __init__(
        self,
        node_id: NodeId,
        config: RaftConfig,
        rng: random.Random,
        *,
        hard_state: HardState | None = None,
        snapshot: SnapshotMeta | None = None,
        entries: Sequence[Entry] = (),
        snapshot_data: bytes | None = None,
        reader: LogReader | None = None,
        incarnation: int = 0,
    ) -> None:
        if node_id <= 0:
            raise ValueError("node ids are positive integers")
        if incarnation < 0:
            raise ValueError("incarnation must be >= 0")
        self.id = node_id
        self.config = config
        self._rng = rng
        self.incarnation = incarnation  # this process life; greater than any earlier life's
        if hard_state is None:
            hard_state = HardState()
        # Nothing on disk: a brand-new node, or one whose data dir was wiped. The latter may
        # have voted in terms it no longer knows (see `_withholding_votes`).
        self._started_empty = (
            hard_state.term == 0 and hard_state.vote is None and snapshot is None and not entries
        )
        self._amnesia = self._started_empty  # for the first AMNESIA_ELECTIONS election timeouts
        self._catch_up_to: int | None = None  # the first leader's commit index, once heard
        self._term_seen = 0  # the highest term any other node was seen in (empty start only)
        self._vote_floor = 0  # ... before the message being handled
        self._lost_logs: list[LostLog] = []
        self.log = RaftLog(
            snapshot,
            entries,
            reader,
            keep_entries=config.log_window_entries,
            keep_bytes=config.log_window_bytes,
        )
        self.term = hard_state.term
        self.vote: NodeId | None = hard_state.vote
        self.commit_index = min(max(hard_state.commit, self.log.snap_index), self.log.last_index())
        self.applied_index = self.log.snap_index  # the state machine restarts from the snapshot
        self._apply_handed = self.applied_index
        self._snapshot_data = snapshot_data
        self._confs: list[tuple[int, Membership]] = []
        self._note_confs(self.log.held)
        self.role = Role.FOLLOWER
        self.leader_id: NodeId | None = None

        self._ticks = 0
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._randomized_timeout = 0
        self._reset_randomized_timeout()
        self._votes: dict[NodeId, bool] = {}
        self._progress: dict[NodeId, Progress] = {}
        self._need_broadcast = False
        self._commit_dirty = False
        self._commit_owed: set[NodeId] = set()  # followers not yet told the commit index
        self._transferee: NodeId | None = None
        self._transfer_elapsed = 0

        # ReadIndex bookkeeping (leader side, then follower side)
        self._read_round = 0
        self._open_round: int | None = None
        self._round_ticks: dict[int, int] = {}  # heartbeat round -> tick it was sent at
        self._timeout_now_sent = False  # a transfer target may campaign through leases
        # A restarted node forgot which leader it followed: it honours a lease it may have
        # granted before the crash by ignoring vote requests for one election timeout.
        self._restart_lease = hard_state.term > 0
        self._read_acks: dict[NodeId, int] = {}
        self._pending_reads: list[_PendingRead] = []
        self._reads_awaiting_commit: list[tuple[bytes, NodeId, int]] = []
        self._forwarded_reads: list[tuple[bytes, int]] = []

        # snapshot being received, and one received but not yet handed to the runtime
        self._incoming: tuple[SnapshotMeta, bytearray] | None = None
        self._pending_install: tuple[SnapshotMeta, bytes] | None = None

        # output buffers
        self._msgs: list[Message] = []
        self._persisted_msgs: list[Message] = []
        self._read_states: list[ReadState] = []
        self._prev_hard = self.hard_state
        self._prev_soft = SoftState(None, Role.FOLLOWER)
        self._outstanding: Ready | None = None

    # ---------------------------------------------------------------------------------------
    # public state
    # ---------------------------------------------------------------------------------------

    @property
    def hard_state(self) -> HardState:
        return HardState(term=self.term, vote=self.vote, commit=self.commit_index)

    @property
    def soft_state(self) -> SoftState:
        return SoftState(self.leader_id, self.role)

    @property
    def membership(self) -> Membership:
        """The latest configuration in the log, committed or not (Raft thesis 4.1)."""
        if self._confs:
            return self._confs[-1][1]
        return self.log.snapshot.membership if self.log.snapshot else Membership()

    @property
    def membership_index(self) -> int:
        return self._confs[-1][0] if self._confs else self.log.snap_index

    @property
    def last_index(self) -> int:
        return self.log.last_index()

    @property
    def first_index(self) -> int:
        return self.log.first_index()

    def term_at(self, index: int) -> int | None:
        return self.log.term(index)

    def entries(self, lo: int, hi: int) -> list[Entry]:
        """Entries [lo, hi) after the snapshot (read back from storage below the tail)."""
        return self.log.slice(max(lo, self.log.first_index()), hi)

    @property
    def snapshot(self) -> SnapshotMeta | None:
        return self.log.snapshot

    @property
    def lead_transferee(self) -> NodeId | None:
        return self._transferee

    def progress(self, peer: NodeId) -> Progress | None:
        """The leader's view of `peer` (None on non-leaders); read-only by convention."""
        return self._progress.get(peer)

    # ---------------------------------------------------------------------------------------
    # client calls
    # ---------------------------------------------------------------------------------------

    def bootstrap(self, membership: Membership) -> None:
        """Initialise a brand-new cluster: call with the SAME membership on every initial member.

        Writes one MEMBERSHIP entry at (index 1, term 1), committed. Nodes added later start
        empty (no bootstrap) and learn everything from the leader.
        """
        if self.log.last_index() != 0 or self.term != 0 or self.log.snapshot is not None:
            raise RuntimeError("bootstrap on a node that already has state")
        if not membership.voters or membership.is_joint:
            raise ValueError("bootstrap needs a simple membership with at least one voter")
        entry = Entry(1, 1, EntryKind.MEMBERSHIP, encode_membership(membership))
        self.term = 1
        self.log.append([entry])
        self._note_confs([entry])
        self.commit_index = 1

    def propose(self, data: bytes) -> int:
        """Append a NORMAL entry; returns its index. Raises NotLeader / ProposalDropped."""
        if self.role is not Role.LEADER:
            raise NotLeader(self.leader_id)
        if self._transferee is not None:
            raise ProposalDropped("leadership transfer in progress")
        return self._append(EntryKind.NORMAL, data)

    def change_membership(self, voters: Iterable[NodeId], learners: Iterable[NodeId] = ()) -> int:
        """Move to (voters, learners); returns the index of the first membership entry.

        If the voter set changes this goes through joint consensus: C_old,new is appended now
        and C_new automatically once it commits. One change at a time: raises ProposalDropped
        while another is in progress (retry later).
        """
        if self.role is not Role.LEADER:
            raise NotLeader(self.leader_id)
        new_voters, new_learners = frozenset(voters), frozenset(learners)
        if not new_voters:
            raise ValueError("a membership needs at least one voter")
        if new_voters & new_learners:
            raise ValueError("a node cannot be both voter and learner")
        if any(n <= 0 for n in new_voters | new_learners):
            raise ValueError("node ids are positive integers")
        if self._transferee is not None:
            raise ProposalDropped("leadership transfer in progress")
        cur = self.membership
        if cur.is_joint or self.membership_index > self.commit_index:
            raise ProposalDropped("a membership change is already in progress")
        if self.log.term(self.commit_index) != self.term:
            raise ProposalDropped("the leader has not committed an entry in its term yet")
        if new_voters == cur.voters:
            target = Membership(voters=new_voters, learners=new_learners)
        else:
            target = Membership(
                voters=new_voters, learners=new_learners, voters_outgoing=cur.voters
            )
        return self._append(EntryKind.MEMBERSHIP, encode_membership(target))

    def transfer_leadership(self, to: NodeId) -> None:
        """Hand leadership to voter `to`: catch it up, then send TimeoutNow.

        Proposals are refused meanwhile; the transfer is abandoned after an election timeout.
        """
        if self.role is not Role.LEADER:
            raise NotLeader(self.leader_id)
        if to == self.id:
            self._transferee = None
            return
        if to not in self.membership.voters or to not in self._progress:
            raise ValueError(f"node {to} is not a voter")
        if self._transferee == to:
            return
        self._transferee = to
        self._transfer_elapsed = 0
        if self._progress[to].match == self.log.last_index():
            self._send_timeout_now(to)
        else:
            self._replicate_to(to, allow_empty=True)

    def read_index(self, token: bytes) -> None:
        """Ask for a linearizable read index; answered by a ReadState(token, index) in a later
        Ready, or ReadState(token, None) if it cannot be served (never left hanging)."""
        if self.role is Role.LEADER:
            self._leader_read(token, self.id)
        elif self.leader_id is not None and self.leader_id != self.id:
            self._forwarded_reads.append((token, self._ticks))
            self._send(ReadIndexRequest(self.id, self.leader_id, self.term, token))
        else:
            self._read_states.append(ReadState(token, None))

    def can_compact(self, index: int) -> bool:
        """Would `compact(index, ...)` be accepted now? False when `index` is not applied yet,
        or when the log is already compacted past it — e.g. a snapshot received from the
        leader is installed in the core but not yet handed out in a Ready (skip compaction
        then: the incoming snapshot supersedes it)."""
        return self.log.snap_index <= index <= self.applied_index

    def compact(self, index: int, data: bytes) -> SnapshotMeta:
        """The state machine serialized itself at applied `index`: keep (meta, data) for lagging
        followers and drop log entries up to `index`. The runtime saves the snapshot and
        compacts storage itself. Raises ValueError unless `can_compact(index)`."""
        if index > self.applied_index:
            raise ValueError(f"cannot compact at {index}: only {self.applied_index} is applied")
        if index < self.log.snap_index:
            raise ValueError(f"cannot compact at {index}: snapshot is at {self.log.snap_index}")
        term = self.log.term(index)
        assert term is not None
        meta = SnapshotMeta(index=index, term=term, membership=self._membership_at(index))
        self.log.compact(meta)
        self._snapshot_data = data
        self._confs = [c for c in self._confs if c[0] > index]
        return meta

    # ---------------------------------------------------------------------------------------
    # Ready / advance
    # ---------------------------------------------------------------------------------------

    def has_ready(self) -> bool:
        """Is there anything for `ready()`? False while a Ready is outstanding."""
        if self._outstanding is not None:
            return False
        self._flush()
        return bool(
            self._msgs
            or self._persisted_msgs
            or self._read_states
            or self._lost_logs
            or self._pending_install is not None
            or self.commit_index > self._apply_handed
            or self.log.unstable_from <= self.log.last_index()
            or self.hard_state != self._prev_hard
            or self.soft_state != self._prev_soft
        )

    def ready(self) -> Ready:
        """Collect everything the runtime must do; at most one Ready is outstanding."""
        if self._outstanding is not None:
            raise RuntimeError("ready() called again before advance()")
        self._flush()
        rd = Ready()
        soft = self.soft_state
        if soft != self._prev_soft:
            rd.soft_state = soft
            self._prev_soft = soft
        hard = self.hard_state
        if hard != self._prev_hard:
            rd.hard_state = hard
        rd.entries = list(self.log.unstable())
        rd.snapshot, self._pending_install = self._pending_install, None
        if self.commit_index > self._apply_handed:
            rd.committed = self.log.slice(self._apply_handed + 1, self.commit_index + 1)
            self._apply_handed = self.commit_index
        rd.read_states, self._read_states = self._read_states, []
        rd.lost_logs, self._lost_logs = self._lost_logs, []
        rd.messages, self._msgs = self._msgs, []
        rd.persisted_messages, self._persisted_msgs = self._persisted_msgs, []
        if hard.term != self._prev_hard.term or hard.vote != self._prev_hard.vote:
            # Nothing may leave this node under a new term (or vote) before it is durable.
            rd.persisted_messages = rd.messages + rd.persisted_messages
            rd.messages = []
        self._open_round = None  # reads arriving from now on need a fresh heartbeat round
        self._outstanding = rd
        return rd

    def advance(self, rd: Ready) -> None:
        """The runtime made `rd` durable, sent its messages and applied `rd.committed`."""
        if rd is not self._outstanding:
            raise RuntimeError("advance() must be given the outstanding Ready")
        self._outstanding = None
        if rd.hard_state is not None:
            self._prev_hard = rd.hard_state
        if rd.entries:
            last = rd.entries[-1]
            self.log.stable_to(last.index, last.term)
        if rd.snapshot is not None:
            self.applied_index = max(self.applied_index, rd.snapshot[0].index)
        if rd.committed:
            self.applied_index = max(self.applied_index, rd.committed[-1].index)
        if self.role is Role.LEADER:
            self._maybe_commit()  # our own write may complete a quorum
        self.log.release(self.applied_index)  # nothing of `rd` is needed any more

    # ---------------------------------------------------------------------------------------
    # test seams (the simulator plants bugs by overriding these in test code only)
    # ---------------------------------------------------------------------------------------

    def _may_grant_vote(self, msg: RequestVote) -> bool:
        """One vote per term, only for a log at least as up to date as ours (§5.2, §5.4.1).

        A pre-vote is granted for a higher term if we have not heard from a leader within an
        election timeout (Raft thesis 9.6); it changes no state.
        """
        if msg.pre_vote:
            can_vote = msg.term > self.term and (
                self.leader_id is None or self._election_elapsed >= self.config.election_tick
            )
        else:
            can_vote = self.vote == msg.src or (self.vote is None and self.leader_id is None)
        return can_vote and self.log.is_up_to_date(msg.last_log_index, msg.last_log_term)

    def _guards_lost_votes(self) -> bool:
        """A node that started with an empty data dir follows the vote-amnesia rule
        (`_withholding_votes`); a plant returns False to show what the rule prevents."""
        return True

    def _may_commit_at(self, index: int) -> bool:
        """Only entries of the current term are committed by counting replicas (§5.4.2)."""
        return self.log.term(index) == self.term

    def _read_requires_quorum_check(self) -> bool:
        """A ReadIndex read needs a heartbeat round acknowledged by a quorum (thesis 6.4)."""
        return True

    # ---------------------------------------------------------------------------------------
    # time
    # ---------------------------------------------------------------------------------------

    def tick(self) -> None:
        self._ticks += 1
        if self._ticks >= self.config.election_tick:
            self._restart_lease = False
        if self._amnesia and self._ticks >= AMNESIA_ELECTIONS * self.config.election_tick:
            self._amnesia = False
            if self.leader_id is None and self.role is not Role.LEADER:
                # campaign at a random point of the next election timeout, not all at once
                self._election_elapsed = min(self._election_elapsed, self.config.election_tick)
        if self.role is Role.LEADER:
            self._tick_leader()
        else:
            self._tick_election()
            self._expire_forwarded_reads()

    def _tick_election(self) -> None:
        self._election_elapsed += 1
        if self._promotable() and self._election_elapsed >= self._randomized_timeout:
            if self._amnesia_blocks_candidacy():
                return
            self._election_elapsed = 0
            self._campaign(pre=self.config.pre_vote)

    def _tick_leader(self) -> None:
        self._heartbeat_elapsed += 1
        self._election_elapsed += 1
        if self._election_elapsed >= self.config.election_tick:
            self._election_elapsed = 0
            if self.config.check_quorum:
                if not self._quorum_active():
                    self._become_follower(self.term, None)
                    return
                for pr in self._progress.values():
                    pr.recent_active = False
        if self._transferee is not None:
            self._transfer_elapsed += 1
            if self._transfer_elapsed >= self.config.election_tick:
                self._transferee = None
        self._expire_leader_reads()
        horizon = self._ticks - 2 * self.config.election_tick
        while self._round_ticks and next(iter(self._round_ticks.values())) < horizon:
            del self._round_ticks[next(iter(self._round_ticks))]
        if self._heartbeat_elapsed >= self.config.heartbeat_tick:
            self._heartbeat_elapsed = 0
            self._broadcast_heartbeat()

    def _reset_randomized_timeout(self) -> None:
        et = self.config.election_tick
        self._randomized_timeout = self._rng.randrange(et, 2 * et)

    def _promotable(self) -> bool:
        return self.id in voters_of(self.membership)

    # -- a node that started empty may have voted before its data dir was wiped -----------

    def _withholding_votes(self, msg: RequestVote) -> bool:
        """Refuse this vote or pre-vote? (the vote-amnesia rule)

        An empty data dir cannot tell a brand-new node from a wiped one, and a wiped voter
        has forgotten the votes it cast: granting one again in such a term could elect two
        leaders. So a node that started empty, for this whole process life:

        1. grants no vote (nor pre-vote) and does not campaign during its first
           AMNESIA_ELECTIONS election timeouts: every candidacy that was under way when it
           was wiped has ended by then (a candidate gives up after < 2 election timeouts);
        2. once it hears from a leader, records a vote for that leader in the leader's term
           (if it has none there): that term is bound durably, even across a later restart;
        3. after hearing from a leader, keeps refusing votes until its commit index reaches
           the commit index that leader first told it about: a voter with a wiped log would
           otherwise vote for a candidate that lacks committed entries;
        4. never votes in a term at or below the highest term it has seen any other node in
           (a pre-vote request for T shows its sender in T - 1): we may have voted there, and
           a live cluster moves on to higher terms anyway.

        A brand-new cluster (every node empty, no leader) elects once (1) has passed. What
        remains possible is a candidate that starts campaigning in a term we voted in after
        (1), while no leader is reachable: see docs/runtime.md ("a wiped data dir").
        """
        if not self._started_empty or not self._guards_lost_votes():
            return False
        if self._amnesia or msg.term <= self._vote_floor:
            return True
        return self._catch_up_to is not None and self.commit_index < self._catch_up_to

    def _note_term_seen(self, msg: Message) -> None:
        """Rule 4's bookkeeping: the highest term seen from others (empty start only)."""
        self._vote_floor = self._term_seen
        term = msg.term
        if isinstance(msg, (RequestVote, RequestVoteResponse)) and msg.pre_vote and term:
            term -= 1  # a pre-vote names the term its sender would campaign in
        if term > self._term_seen:
            self._term_seen = term

    def _amnesia_blocks_candidacy(self, *, transfer: bool = False) -> bool:
        """Rules 1 and 4 for our own candidacy (a vote for ourselves in term + 1).

        The only voter is exempt. A transfer (TimeoutNow from the leader of our term, which
        caught us up) may go ahead inside the window: that leader's term is the newest we
        have seen, so term + 1 is one no candidacy was seen in.
        """
        if not self._started_empty or not self._guards_lost_votes():
            return False
        if voters_of(self.membership) == frozenset({self.id}):
            return False
        if self.term + 1 <= self._term_seen:
            return True  # someone is in that term already: we may have voted in it
        return self._amnesia and not transfer

    def _bind_vote_to_leader(self, msg: AppendEntries | Heartbeat | InstallSnapshot) -> None:
        """Rules 2 and 3: called for every message of the leader of our current term."""
        if not self._started_empty or not self._guards_lost_votes():
            return
        if self.vote is None:
            self.vote = msg.src
        if self._catch_up_to is None and isinstance(msg, AppendEntries):
            self._catch_up_to = msg.commit

    # ---------------------------------------------------------------------------------------
    # role changes
    # ---------------------------------------------------------------------------------------

    def _reset(self, term: int) -> None:
        if term != self.term:
            self.term = term
            self.vote = None
        if self.role is Role.LEADER:
            self._fail_leader_reads()
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._reset_randomized_timeout()
        self._votes = {}
        self._progress = {}
        self._need_broadcast = False
        self._commit_dirty = False
        self._commit_owed = set()
        self._transferee = None
        self._read_acks = {}
        self._open_round = None
        self._round_ticks = {}
        self._timeout_now_sent = False

    def _set_leader(self, leader: NodeId | None) -> None:
        if leader != self.leader_id:
            self._fail_forwarded_reads()
            self.leader_id = leader

    def _become_follower(self, term: int, leader: NodeId | None) -> None:
        self._reset(term)
        self.role = Role.FOLLOWER
        self._set_leader(leader)

    def _campaign(self, *, pre: bool, transfer: bool = False) -> None:
        if pre:
            self._reset(self.term)
            self.role = Role.PRE_CANDIDATE
            vote_term = self.term + 1
        else:
            self._reset(self.term + 1)
            self.role = Role.CANDIDATE
            self.vote = self.id
            vote_term = self.term
        self._set_leader(None)
        self._votes = {self.id: True}
        if self._poll() is not VoteResult.PENDING:
            return
        last_index, last_term = self.log.last_index(), self.log.last_term()
        for peer in sorted(voters_of(self.membership) - {self.id}):
            req = RequestVote(
                self.id, peer, vote_term, last_index, last_term, pre_vote=pre, transfer=transfer
            )
            # a real vote request announces a new term: it leaves only once the term is durable
            (self._msgs if pre else self._persisted_msgs).append(req)

    def _poll(self) -> VoteResult:
        result = joint_vote(self.membership, self._votes)
        if result is VoteResult.WON:
            if self.role is Role.PRE_CANDIDATE:
                self._campaign(pre=False)
            else:
                self._become_leader()
        elif result is VoteResult.LOST:
            self._become_follower(self.term, None)
        return result

    def _become_leader(self) -> None:
        self._reset(self.term)
        self.role = Role.LEADER
        self._set_leader(self.id)
        self._sync_progress()
        for pr in self._progress.values():
            pr.next = self.log.last_index() + 1
        # A no-op of our term lets us commit (and learn) everything earlier (§5.4.2, thesis 6.4).
        self._append(EntryKind.NOOP, b"")

    # ---------------------------------------------------------------------------------------
    # messages in
    # ---------------------------------------------------------------------------------------

    def step(self, msg: Message) -> None:
        """Handle one message from a peer; stale, misrouted or unknown ones are ignored."""
        if msg.dst != self.id or msg.src == self.id:
            return
        if self._started_empty:
            self._note_term_seen(msg)
        if isinstance(msg, ReadIndexRequest):
            self._on_read_index_request(msg)
            return
        if isinstance(msg, ReadIndexResponse):
            self._on_read_index_response(msg)
            return
        if msg.term > self.term:
            if isinstance(msg, RequestVote) and not msg.transfer and self._in_lease():
                return  # we heard from a live leader recently: do not let this one disrupt it
            if isinstance(msg, RequestVote) and msg.pre_vote:
                pass  # a pre-vote request never changes our term
            elif isinstance(msg, RequestVoteResponse) and msg.pre_vote and msg.granted:
                pass  # granted pre-votes carry the term the pre-candidate would campaign at
            else:
                is_leader_msg = isinstance(msg, (AppendEntries, Heartbeat, InstallSnapshot))
                self._become_follower(msg.term, msg.src if is_leader_msg else None)
        elif msg.term < self.term:
            if isinstance(msg, (AppendEntries, Heartbeat, InstallSnapshot)):
                # a stale leader: our reply carries the newer term and makes it step down
                self._send(self._append_response(msg.src, False, 0))
            elif isinstance(msg, RequestVote) and msg.pre_vote:
                self._send(RequestVoteResponse(self.id, msg.src, self.term, False, pre_vote=True))
            return

        if isinstance(msg, RequestVote):
            self._on_request_vote(msg)
        elif isinstance(msg, RequestVoteResponse):
            self._on_vote_response(msg)
        elif isinstance(msg, (AppendEntries, Heartbeat, InstallSnapshot)):
            if self.role is Role.LEADER:
                return  # same term, another leader: impossible (Election Safety); ignore
            if self.role is not Role.FOLLOWER:
                self._become_follower(self.term, msg.src)
            self._set_leader(msg.src)
            self._election_elapsed = 0
            self._bind_vote_to_leader(msg)
            if isinstance(msg, AppendEntries):
                self._on_append(msg)
            elif isinstance(msg, Heartbeat):
                self._on_heartbeat(msg)
            else:
                self._on_snapshot_chunk(msg)
        elif isinstance(msg, TimeoutNow):
            if (
                self.role is not Role.LEADER
                and self._promotable()
                and not self._amnesia_blocks_candidacy(transfer=True)
            ):
                self._campaign(pre=False, transfer=True)
        elif self.role is Role.LEADER:
            pr = self._progress.get(msg.src)
            if pr is None:
                return
            pr.recent_active = True
            if isinstance(
                msg, (AppendEntriesResponse, HeartbeatResponse)
            ) and not self._check_incarnation(msg.src, msg.incarnation, pr):
                return
            if isinstance(msg, AppendEntriesResponse):
                self._on_append_response(msg, pr)
            elif isinstance(msg, HeartbeatResponse):
                self._on_heartbeat_response(msg, pr)
            else:
                self._on_snapshot_response(msg, pr)

    def _in_lease(self) -> bool:
        """Heard from a leader within the minimum election timeout? Then vote requests are
        disregarded (thesis 4.2.3): removed or partitioned servers cannot disrupt a healthy
        leader. A leader's own lease is only trustworthy with CheckQuorum, which makes a leader
        that lost its quorum step down within an election timeout."""
        if self._restart_lease and self.role is not Role.LEADER:
            return True
        if self.leader_id is None or self._election_elapsed >= self.config.election_tick:
            return False
        return self.role is not Role.LEADER or self.config.check_quorum

    # -- elections --------------------------------------------------------------------------

    def _on_request_vote(self, msg: RequestVote) -> None:
        if not self._withholding_votes(msg) and self._may_grant_vote(msg):
            if msg.pre_vote:
                self._send(RequestVoteResponse(self.id, msg.src, msg.term, True, pre_vote=True))
            else:
                self.vote = msg.src
                self._election_elapsed = 0
                self._send_persisted(RequestVoteResponse(self.id, msg.src, self.term, True))
        else:
            resp = RequestVoteResponse(self.id, msg.src, self.term, False, pre_vote=msg.pre_vote)
            self._send(resp)

    def _on_vote_response(self, msg: RequestVoteResponse) -> None:
        if msg.pre_vote:
            if self.role is not Role.PRE_CANDIDATE:
                return
            expected = self.term + 1 if msg.granted else self.term
            if msg.term != expected:
                return
        elif self.role is not Role.CANDIDATE:
            return
        if msg.src not in voters_of(self.membership):
            return
        self._votes[msg.src] = msg.granted
        self._poll()

    # -- replication, follower side ---------------------------------------------------------

    def _on_append(self, msg: AppendEntries) -> None:
        prev, prev_term, entries = msg.prev_log_index, msg.prev_log_term, msg.entries
        if prev < self.commit_index:
            # Entries up to our commit index are committed, so the leader has them too.
            skip = self.commit_index - prev
            entries = entries[skip:]
            prev = self.commit_index
            known = self.log.term(prev)
            assert known is not None
            prev_term = known
            if not entries:
                self._send_persisted(self._append_response(msg.src, True, self.commit_index))
                return
        if self.log.term(prev) == prev_term:
            changed = self.log.merge(entries, self.commit_index)
            if changed:
                self._on_log_changed(changed)
            last_new = prev + len(entries)
            self._commit_to(min(msg.commit, last_new))
            self._send_persisted(self._append_response(msg.src, True, last_new))
            return
        # Mismatch: point the leader at our last entry whose term is <= prev_term.
        hint = self.log.last_index_with_term_at_most(prev, prev_term)
        hint_term = self.log.term(hint) or 0
        self._send_persisted(
            self._append_response(msg.src, False, msg.prev_log_index, hint, hint_term)
        )

    def _append_response(
        self, to: NodeId, success: bool, index: int, hint: int = 0, hint_term: int = 0
    ) -> AppendEntriesResponse:
        return AppendEntriesResponse(
            self.id, to, self.term, success, index, hint, hint_term, self.incarnation
        )

    def _on_heartbeat(self, msg: Heartbeat) -> None:
        if not msg.incarnation or msg.incarnation == self.incarnation:
            # (the leader capped `commit` at what an earlier life of ours acknowledged, if
            # the incarnations differ: after a wipe our log need not hold it)
            self._commit_to(min(msg.commit, self.log.last_index()))
        self._send(HeartbeatResponse(self.id, msg.src, self.term, msg.context, self.incarnation))

    def _commit_to(self, index: int) -> None:
        if index > self.commit_index:
            self.commit_index = index

    def _on_snapshot_chunk(self, msg: InstallSnapshot) -> None:
        meta = msg.meta
        if meta.index <= self.commit_index:
            # Already have all of it (e.g. our final ack was lost): report where we are.
            self._send_persisted(self._append_response(msg.src, True, self.commit_index))
            return
        buf = self._incoming
        if msg.offset == 0:
            buf = (meta, bytearray())
        elif buf is None or buf[0] != meta or msg.offset > len(buf[1]):
            have = len(buf[1]) if buf is not None and buf[0] == meta else 0
            self._send(InstallSnapshotResponse(self.id, msg.src, self.term, meta.index, have))
            return
        elif msg.offset < len(buf[1]):
            # a duplicate of a chunk we already hold: re-acknowledge (our last ack may be lost)
            self._send(
                InstallSnapshotResponse(self.id, msg.src, self.term, meta.index, len(buf[1]))
            )
            return
        buf[1].extend(msg.data)
        if not msg.done:
            self._incoming = buf
            self._send(
                InstallSnapshotResponse(self.id, msg.src, self.term, meta.index, len(buf[1]))
            )
            return
        self._incoming = None
        self._install_snapshot(meta, bytes(buf[1]))
        self._send_persisted(self._append_response(msg.src, True, meta.index))

    def _install_snapshot(self, meta: SnapshotMeta, data: bytes) -> None:
        if self.log.term(meta.index) == meta.term:
            # Our log already holds this prefix: keep it (and whatever follows), just commit.
            self._commit_to(meta.index)
            return
        self.log.restore(meta)
        self._confs = []
        self._snapshot_data = data
        self.commit_index = meta.index
        self._apply_handed = max(self._apply_handed, meta.index)
        self._pending_install = (meta, data)

    # -- replication, leader side -----------------------------------------------------------

    def _append(self, kind: EntryKind, data: bytes) -> int:
        entry = Entry(self.log.last_index() + 1, self.term, kind, data)
        self.log.append([entry])
        if kind is EntryKind.MEMBERSHIP:
            self._on_log_changed(entry.index)
        self._need_broadcast = True
        return entry.index

    def _flush(self) -> None:
        """Send the appends owed since the last flush: one message batch per peer."""
        if self.role is not Role.LEADER or not self._need_broadcast:
            return
        allow_empty = self._commit_dirty
        self._need_broadcast = self._commit_dirty = False
        for peer in sorted(self._progress):
            self._replicate_to(peer, allow_empty=allow_empty)

    @property
    def commit_owed(self) -> bool:
        """Is a follower owed the commit index (`RaftConfig.linger_commit`)? The runtime
        then calls `flush_commit` after a short linger unless an append told it first."""
        return bool(self._commit_owed)

    def flush_commit(self) -> None:
        """Tell every follower still owed the commit index, with an append (with no entries
        if it has none to get): the runtime's linger expired with no new entry proposed."""
        owed, self._commit_owed = self._commit_owed, set()
        if self.role is not Role.LEADER:
            return
        for peer in sorted(owed):
            if peer in self._progress:
                self._replicate_to(peer, allow_empty=True)

    def _replicate_to(self, peer: NodeId, *, allow_empty: bool) -> None:
        pr = self._progress[peer]
        sent = self._send_append(peer, pr, allow_empty=allow_empty)
        while sent and pr.state is ProgressState.REPLICATE and pr.next <= self.log.last_index():
            sent = self._send_append(peer, pr, allow_empty=False)

    def _send_append(self, peer: NodeId, pr: Progress, *, allow_empty: bool) -> bool:
        if pr.is_paused(self.config.max_inflight):
            return False
        last = self.log.last_index()
        if pr.next > last + 1:
            pr.next = last + 1  # defensive: never probe beyond our own log
        prev = pr.next - 1
        prev_term = self.log.term(prev)
        if prev_term is None:
            return self._start_snapshot(peer, pr)
        entries: list[Entry] = []
        if pr.next <= last:
            entries = self.log.slice(
                pr.next, last + 1, self.config.max_entries_per_msg, self.config.max_msg_bytes
            )
        if not entries and not allow_empty and pr.state is not ProgressState.PROBE:
            return False
        self._send(
            AppendEntries(
                self.id, peer, self.term, prev, prev_term, tuple(entries), self.commit_index
            )
        )
        self._commit_owed.discard(peer)
        if pr.state is ProgressState.PROBE:
            pr.probe_sent = True
        elif entries:
            pr.next = entries[-1].index + 1
            pr.inflight.append(entries[-1].index)
        return True

    def _check_incarnation(self, peer: NodeId, incarnation: int, pr: Progress) -> bool:
        """Which life of `peer` answers? False: an earlier one, overtaken (drop the message).

        A newer life than the one we track restarted, possibly with a wiped data dir: what
        the old life acknowledged is no longer evidence, so its progress starts over with a
        probe (the stale-rejection rule below stays intact for one life's messages).
        """
        if incarnation == pr.incarnation or incarnation == 0:
            pr.incarnation_tick = self._ticks
            return True
        if incarnation < pr.incarnation:
            if self._ticks - pr.incarnation_tick < self.config.election_tick:
                return False
            # The newer life fell silent an election timeout ago and this one keeps talking:
            # not a straggler but a new life whose runtime clock went back. Take it.
        elif pr.incarnation == 0:  # the first answer we see from it: nothing to compare yet
            pr.incarnation = incarnation
            pr.incarnation_tick = self._ticks
            return True
        pr.new_incarnation(incarnation, self.log.last_index() + 1)
        pr.incarnation_tick = self._ticks
        self._replicate_to(peer, allow_empty=True)
        return False

    def _judge_restarted_log(self, msg: AppendEntriesResponse, pr: Progress) -> None:
        """A restarted follower answers our first probe (at our last index): did it keep its
        log? (An ack of an older append proves nothing either way: wait for the probe's.)"""
        if msg.success:
            if msg.index >= pr.next - 1:
                pr.prior_match = 0  # it holds our whole log
            return
        if msg.index != pr.next - 1:
            return
        if msg.hint_index < pr.prior_match:
            self._lost_logs.append(LostLog(msg.src, pr.incarnation, pr.prior_match, msg.hint_index))
        pr.prior_match = 0

    def _on_append_response(self, msg: AppendEntriesResponse, pr: Progress) -> None:
        if pr.prior_match and pr.state is ProgressState.PROBE:
            self._judge_restarted_log(msg, pr)
        if msg.success:
            if pr.maybe_update(msg.index):
                if pr.state is ProgressState.PROBE or (
                    pr.state is ProgressState.SNAPSHOT and pr.match >= pr.pending_snapshot
                ):
                    pr.become_replicate()
                self._maybe_commit()
                if self.role is not Role.LEADER:
                    return
                if msg.src == self._transferee and pr.match == self.log.last_index():
                    self._send_timeout_now(msg.src)
            self._replicate_to(msg.src, allow_empty=False)
            return
        # rejected: ignore stale rejections, else back off using the follower's hint
        if pr.state is ProgressState.REPLICATE:
            if msg.index <= pr.match:
                return
        elif pr.state is ProgressState.PROBE:
            if msg.index != pr.next - 1:
                return
        else:
            return
        probe = msg.hint_index
        if msg.hint_term > 0:
            probe = self._last_index_with_term_at_most(msg.hint_index, msg.hint_term)
        pr.become_probe()
        pr.next = max(pr.match + 1, min(msg.index, probe + 1))
        self._replicate_to(msg.src, allow_empty=True)

    def _last_index_with_term_at_most(self, index: int, term: int) -> int:
        return self.log.last_index_with_term_at_most(index, term)

    def _on_heartbeat_response(self, msg: HeartbeatResponse, pr: Progress) -> None:
        pr.probe_sent = False
        if msg.context:
            self._read_acks[msg.src] = max(self._read_acks.get(msg.src, 0), msg.context)
            self._release_confirmed_reads()
        if pr.state is ProgressState.SNAPSHOT:
            self._send_snapshot_chunk(msg.src, pr)  # retransmit a possibly lost chunk
            return
        if pr.state is ProgressState.REPLICATE and len(pr.inflight) >= self.config.max_inflight:
            pr.inflight.popleft()  # something may have been lost: let one more through
        if pr.match < self.log.last_index():
            self._replicate_to(msg.src, allow_empty=True)

    def _maybe_commit(self) -> bool:
        acked = {peer: pr.match for peer, pr in self._progress.items()}
        acked[self.id] = self.log.unstable_from - 1  # our own entries count once durable
        index = joint_index(self.membership, acked)
        if index <= self.commit_index or not self._may_commit_at(index):
            return False
        self.commit_index = index
        self._on_commit_advanced()
        return True

    def _on_commit_advanced(self) -> None:
        self._need_broadcast = True
        if self.config.linger_commit:
            self._commit_owed.update(self._progress)  # told by the next append, or flush_commit
        else:
            self._commit_dirty = True
        if self._reads_awaiting_commit and self.log.term(self.commit_index) == self.term:
            waiting, self._reads_awaiting_commit = self._reads_awaiting_commit, []
            for token, requester, _ in waiting:
                self._leader_read(token, requester)
        m = self.membership
        if self._progress.keys() - self._tracked_nodes():
            self._sync_progress()  # a removal committed: stop replicating to removed nodes
        if self.membership_index <= self.commit_index:
            if m.is_joint:
                # C_old,new is committed: move on to C_new (thesis 4.3).
                self._append(
                    EntryKind.MEMBERSHIP,
                    encode_membership(Membership(voters=m.voters, learners=m.learners)),
                )
            elif self.id not in m.voters:
                # We are not part of the committed configuration: hand over and step down.
                best = max(
                    sorted(m.voters & self._progress.keys()),
                    key=lambda p: self._progress[p].match,
                    default=None,
                )
                if best is not None and self._progress[best].match == self.log.last_index():
                    self._send_timeout_now(best)
                self._become_follower(self.term, None)

    def _quorum_active(self) -> bool:
        active = {peer: int(pr.recent_active) for peer, pr in self._progress.items()}
        active[self.id] = 1
        return joint_index(self.membership, active) >= 1

    def _send_timeout_now(self, to: NodeId) -> None:
        self._timeout_now_sent = True
        self._send(TimeoutNow(self.id, to, self.term))

    def _broadcast_heartbeat(self) -> None:
        """Every heartbeat broadcast is a confirmation round: it serves ReadIndex (reads that
        arrive before it leaves may join it) and measures the leader lease."""
        if self._open_round is None:
            self._open_round = self._new_round()
        for peer in sorted(self._progress):
            pr = self._progress[peer]
            commit = min(pr.match, self.commit_index)
            self._send(
                Heartbeat(self.id, peer, self.term, commit, self._open_round, pr.incarnation)
            )

    def _new_round(self) -> int:
        self._read_round += 1
        self._round_ticks[self._read_round] = self._ticks
        return self._read_round

    def _confirmed_round(self) -> int:
        """The newest heartbeat round acknowledged by a quorum (our own ack included)."""
        acks = {peer: self._read_acks.get(peer, 0) for peer in self._progress}
        acks[self.id] = self._read_round
        return joint_index(self.membership, acks)

    def defer_quorum_check(self, ticks: int) -> None:
        """A leader that was busy for `ticks` (the runtime applying a long batch) gives its
        followers as long again before check-quorum may depose it: they are applying the same
        entries and cannot answer meanwhile. Capped at one election timeout. Liveness only:
        the read lease counts acknowledged heartbeats, not this timer."""
        if self.role is Role.LEADER and ticks > 0:
            floor = -self.config.election_tick
            self._election_elapsed = max(floor, self._election_elapsed - ticks)

    def lease_remaining(self) -> int:
        """Ticks for which this leader may serve reads from its own state without a quorum
        round (read_consistency = "lease"); 0 if it holds no lease.

        A quorum acknowledged a heartbeat sent at tick T; each of them ignores vote requests
        for election_tick ticks after receiving it, so no other leader can exist before
        T + election_tick (minus one tick on each side for tick granularity). Requires
        CheckQuorum; void for the rest of the term once a TimeoutNow was sent. The runtime
        must subtract its own margin for clock drift between nodes.
        """
        if (
            self.role is not Role.LEADER
            or not self.config.check_quorum
            or self._timeout_now_sent
            or self._transferee is not None
        ):
            return 0
        sent = self._round_ticks.get(self._confirmed_round())
        if sent is None:
            return 0
        return max(0, sent + self.config.election_tick - 2 - self._ticks)

    # -- snapshots, leader side -------------------------------------------------------------

    def _start_snapshot(self, peer: NodeId, pr: Progress) -> bool:
        if self.log.snapshot is None or self._snapshot_data is None:
            return False  # restored without snapshot bytes: wait for the next compact()
        pr.become_snapshot(self.log.snap_index)
        self._send_snapshot_chunk(peer, pr)
        return True

    def _send_snapshot_chunk(self, peer: NodeId, pr: Progress) -> None:
        meta, data = self.log.snapshot, self._snapshot_data
        if meta is None or data is None:
            return
        if pr.pending_snapshot != meta.index:
            pr.become_snapshot(meta.index)  # we compacted again meanwhile: send the newer one
        off = pr.snapshot_offset
        chunk = data[off : off + self.config.snapshot_chunk_size]
        done = off + len(chunk) >= len(data)
        self._send(InstallSnapshot(self.id, peer, self.term, meta, off, chunk, done))

    def _on_snapshot_response(self, msg: InstallSnapshotResponse, pr: Progress) -> None:
        if pr.state is not ProgressState.SNAPSHOT or msg.index != pr.pending_snapshot:
            return
        if msg.offset == pr.snapshot_offset:
            return  # a duplicate acknowledgement
        pr.snapshot_offset = msg.offset
        if self._snapshot_data is not None and msg.offset < len(self._snapshot_data):
            self._send_snapshot_chunk(msg.src, pr)

    # -- membership -------------------------------------------------------------------------

    def _note_confs(self, entries: Iterable[Entry]) -> None:
        for e in entries:
            if e.kind is EntryKind.MEMBERSHIP:
                self._confs.append((e.index, decode_membership(e.data)))

    def _membership_at(self, index: int) -> Membership:
        for conf_index, m in reversed(self._confs):
            if conf_index <= index:
                return m
        return self.log.snapshot.membership if self.log.snapshot else Membership()

    def _on_log_changed(self, first_changed: int) -> None:
        """Entries from `first_changed` on were replaced or appended: refresh membership."""
        before = self.membership
        while self._confs and self._confs[-1][0] >= first_changed:
            self._confs.pop()
        self._note_confs(self.log.slice(first_changed, self.log.last_index() + 1))
        if self.membership != before and self.role is Role.LEADER:
            self._sync_progress()

    def _tracked_nodes(self) -> frozenset[NodeId]:
        """Peers the leader replicates to: the latest config's, plus, until it commits, the
        previous config's (so a node being removed still learns that it was removed)."""
        nodes = self.membership.all_nodes
        if self.membership_index > self.commit_index and self._confs:
            prev = self._confs[-2][1] if len(self._confs) > 1 else self._membership_at(0)
            nodes |= prev.all_nodes
        return nodes - {self.id}

    def _sync_progress(self) -> None:
        wanted = self._tracked_nodes()
        for peer in list(self._progress):
            if peer not in wanted:
                del self._progress[peer]
        for peer in wanted - self._progress.keys():
            self._progress[peer] = Progress(next=self.log.last_index() + 1, recent_active=True)
        if self._transferee is not None and self._transferee not in self.membership.voters:
            self._transferee = None

    # -- ReadIndex --------------------------------------------------------------------------

    def _leader_read(self, token: bytes, requester: NodeId) -> None:
        if self.log.term(self.commit_index) != self.term:
            # Until our no-op commits we do not know the true commit index (thesis 6.4 step 1).
            self._reads_awaiting_commit.append((token, requester, self._ticks))
            return
        if not self._read_requires_quorum_check():
            self._answer_read(token, requester, self.commit_index)
            return
        if self._open_round is None:
            self._open_round = self._new_round()
            for peer in sorted(self._progress):
                pr = self._progress[peer]
                commit = min(pr.match, self.commit_index)
                self._send(
                    Heartbeat(self.id, peer, self.term, commit, self._open_round, pr.incarnation)
                )
        self._pending_reads.append(
            _PendingRead(self._open_round, self.commit_index, token, requester, self._ticks)
        )
        self._release_confirmed_reads()

    def _release_confirmed_reads(self) -> None:
        if not self._pending_reads:
            return
        confirmed = self._confirmed_round()
        keep: list[_PendingRead] = []
        for read in self._pending_reads:
            if read.round <= confirmed:
                self._answer_read(read.token, read.requester, read.index)
            else:
                keep.append(read)
        self._pending_reads = keep

    def _answer_read(self, token: bytes, requester: NodeId, index: int | None) -> None:
        if requester == self.id:
            self._read_states.append(ReadState(token, index))
        else:
            self._send(
                ReadIndexResponse(
                    self.id, requester, self.term, token, index or 0, index is not None
                )
            )

    def _fail_leader_reads(self) -> None:
        for read in self._pending_reads:
            self._answer_read(read.token, read.requester, None)
        for token, requester, _ in self._reads_awaiting_commit:
            self._answer_read(token, requester, None)
        self._pending_reads = []
        self._reads_awaiting_commit = []

    def _expire_leader_reads(self) -> None:
        deadline = self._ticks - self.config.election_tick
        if any(r.started <= deadline for r in self._pending_reads):
            for read in [r for r in self._pending_reads if r.started <= deadline]:
                self._answer_read(read.token, read.requester, None)
            self._pending_reads = [r for r in self._pending_reads if r.started > deadline]
        if any(started <= deadline for _, _, started in self._reads_awaiting_commit):
            for token, requester, started in self._reads_awaiting_commit:
                if started <= deadline:
                    self._answer_read(token, requester, None)
            self._reads_awaiting_commit = [
                r for r in self._reads_awaiting_commit if r[2] > deadline
            ]

    def _on_read_index_request(self, msg: ReadIndexRequest) -> None:
        if self.role is Role.LEADER:
            self._leader_read(msg.token, msg.src)
        else:
            self._send(ReadIndexResponse(self.id, msg.src, self.term, msg.token, 0, False))

    def _on_read_index_response(self, msg: ReadIndexResponse) -> None:
        for pos, (token, _) in enumerate(self._forwarded_reads):
            if token == msg.token:
                del self._forwarded_reads[pos]
                self._read_states.append(ReadState(token, msg.index if msg.ok else None))
                return

    def _fail_forwarded_reads(self) -> None:
        for token, _ in self._forwarded_reads:
            self._read_states.append(ReadState(token, None))
        self._forwarded_reads = []

    def _expire_forwarded_reads(self) -> None:
        deadline = self._ticks - self.config.election_tick
        if self._forwarded_reads and self._forwarded_reads[0][1] <= deadline:
            keep = []
            for token, started in self._forwarded_reads:
                if started <= deadline:
                    self._read_states.append(ReadState(token, None))
                else:
                    keep.append((token, started))
            self._forwarded_reads = keep

    # -- output -----------------------------------------------------------------------------

    def _send(self, msg: Message) -> None:
        self._msgs.append(msg)

    def _send_persisted(self, msg: Message) -> None:
        self._persisted_msgs.append(msg)
