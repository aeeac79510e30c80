"""One simulated node: a Raft core, its "disk", its state machine, run by the runtime's driver.

The sequence is not the simulator's own: it is `aspen.raft.driver.Driver`, the code that
`aspen.cluster.runtime.ClusterNode` runs (drain order, committed entries applied before the
fsync when already durable, the commit index written lazily, acks sent after the fsync).
This node is its `DriverHost` and carries out its steps: a `Persist` or `InstallSnapshot`
takes `disk_ms` of virtual time, during which the pass waits (inputs queue, as in the
runtime whose driver awaits the fsync); a crash meanwhile never resumes it, exactly like a
process killed before its fsync returned. What the node sends is checked against what it
has on disk (`_check_ack`), and what it applies against what the core committed.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from aspen.raft.driver import Compact, Driver, Flush, InstallSnapshot, Persist, Send, Step
from aspen.raft.errors import NotLeader, ProposalDropped
from aspen.raft.messages import AppendEntriesResponse, RequestVoteResponse
from aspen.raft.ready import ReadState, Ready, Role
from aspen.raft.types import Entry, EntryKind, Membership
from aspen.raft.wire import decode_membership
from harness.sim.durable import DurableLog, DurableReader
from harness.sim.invariants import InvariantViolation
from harness.sim.statemachine import Command, RegisterMachine

if TYPE_CHECKING:
    from harness.sim.runner import Simulation

# client request kinds
READ = "r"
WRITE = "w"
CAS = "c"


class SimNode:
    def __init__(self, sim: Simulation, node_id: int, make_core: Callable[..., Any],
                 make_driver: Callable[..., Driver] = Driver) -> None:
        self.sim = sim
        self.id = node_id
        self.make_core = make_core
        self.make_driver = make_driver
        self.driver: Driver | None = None
        self.steps: Iterator[Step] | None = None  # the driver's pass in progress
        self.kicked = False  # inputs arrived: the driver owes a pass
        self.lingering = False  # a commit linger timer is set (`_maybe_linger`)
        # client requests for the driver's next drain (as the runtime queues its writes)
        self.requests: list[tuple[int, tuple[int, int], str, str, str | None, str | None]] = []
        self.durable = DurableLog()
        self.core: Any = None
        self.alive = False
        self.incarnation = 0
        self.sm = RegisterMachine()
        self.persisting = False
        self.role = Role.FOLLOWER
        self.leader_id: int | None = None
        self.term = 0
        self.commit = 0
        self.membership: Membership | None = None
        self.applied_before_crash = 0
        # client requests in flight here
        self.proposals: dict[int, tuple[int, tuple[int, int]]] = {}  # index -> (client, req)
        self.reads: dict[bytes, tuple[int, tuple[int, int], str]] = {}  # token -> client, req, key
        self.waiting_reads: list[tuple[int, int, tuple[int, int], str]] = []
        self.snapshot_every = sim.params.snapshot_every
        self.last_snapshot_index = 0
        self.tick_ms = sim.params.tick_ms  # a slow clock makes this larger
        self.paused = False  # a stopped process (GC pause, SIGSTOP): inputs queue up
        self.backlog: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
        self.wiped = False  # its data dir was wiped at least once
        self.wipe_pending: tuple[int, bool] | None = None  # (commit to reach, re-bootstrap)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self, bootstrap: Membership | None = None) -> None:
        d = self.durable
        self.incarnation += 1
        rng = random.Random(self.sim.rng.getrandbits(64))
        self.core = self.make_core(
            self.id, self.sim.raft_config, rng,
            hard_state=d.hard_state, snapshot=d.snapshot, entries=tuple(d.entries),
            snapshot_data=d.snapshot_data, reader=DurableReader(d, self._note_read_back),
            incarnation=self.incarnation)
        self.driver = self.make_driver(self.core, self, d.hard_state)
        self.steps = None
        self.kicked = False
        self.lingering = False
        self.requests = []
        self.alive = True
        self.persisting = False
        self.paused = False
        self.backlog = []
        self.tick_ms = self.sim.params.tick_ms
        self.sm = RegisterMachine()
        if d.snapshot is not None and d.snapshot_data is not None:
            self.sm.restore(d.snapshot_data)
        self.last_snapshot_index = self.sm.applied
        self.role, self.leader_id, self.term = Role.FOLLOWER, None, d.hard_state.term
        self.commit = d.hard_state.commit
        if self.incarnation > 1 and d.last_index() < self.applied_before_crash:
            raise InvariantViolation(
                "apply-before-durable",
                f"n{self.id} restarts with a durable log up to {d.last_index()} but had applied "
                f"{self.applied_before_crash} before crashing")
        wipe = self.wipe_pending
        if wipe is not None and wipe[1] and bootstrap is None:
            # like a daemon whose config lists the initial voters: it bootstraps again
            bootstrap = Membership(voters=self.sim.initial_voters)
        if bootstrap is not None:
            self.core.bootstrap(bootstrap)
        self.sim.trace.add(self.sim.clock.now, self.id,
                           f"start #{self.incarnation}: term {d.hard_state.term} commit "
                           f"{d.hard_state.commit} snapshot {d.snap_index} last {d.last_index()}")
        self.sim.clock.after(self.sim.rng.randint(1, self.sim.params.tick_ms), self._tick,
                             self.incarnation)
        if wipe is not None:
            self.wipe_pending = None
            self.sim.nemesis.watch_wiped(self, wipe[0])
        self.pump()

    def _note_read_back(self, n: int) -> None:
        self.sim.read_back += n

    def crash(self) -> None:
        if not self.alive:
            return
        self.applied_before_crash = max(self.applied_before_crash, self.sm.applied)
        self.alive = False
        self.core = None
        self.driver = None
        self.steps = None
        self.requests = []
        self.incarnation += 1
        self.persisting = False
        self.paused = False
        self.backlog = []
        self.proposals.clear()
        self.reads.clear()
        self.waiting_reads.clear()
        self.role, self.leader_id = Role.FOLLOWER, None
        self.sim.trace.add(self.sim.clock.now, self.id, "CRASH (unpersisted Ready lost)")

    def wipe(self) -> None:
        """Crash, and lose the data dir: the next start() begins with an empty disk."""
        self.crash()
        self.durable = DurableLog()
        self.applied_before_crash = 0
        self.membership = None
        self.wiped = True
        self.sim.invariants.node_wiped(self.id)
        self.sim.trace.add(self.sim.clock.now, self.id, "DATA DIR WIPED")

    # -- pauses ---------------------------------------------------------------------------
    def pause(self) -> None:
        if self.alive:
            self.paused = True

    def resume(self) -> None:
        """Wake up and work through what queued meanwhile, in an arbitrary order."""
        if not self.alive or not self.paused:
            return
        self.paused = False
        backlog, self.backlog = self.backlog, []
        self.sim.rng.shuffle(backlog)
        inc = self.incarnation
        for fn, args in backlog:
            if inc != self.incarnation or self.paused:
                break
            fn(*args)

    # -- inputs ---------------------------------------------------------------------------
    def _tick(self, inc: int) -> None:
        if inc != self.incarnation:
            return
        self.sim.clock.after(self.tick_ms, self._tick, inc)
        if self.paused:
            return  # a stopped process does not see time pass
        assert self.driver is not None
        self.driver.add_tick()
        self.pump()

    def receive(self, msg: Any) -> None:
        if not self.alive:
            return
        if self.paused:
            self.backlog.append((self.receive, (msg,)))
            return
        assert self.driver is not None
        self.driver.add_message(msg)
        self.pump()

    def client_request(self, client: int, req: tuple[int, int], kind: str, key: str,
                       value: str | None, expected: str | None) -> None:
        if not self.alive:
            return  # the client will time out
        if self.paused:
            self.backlog.append(
                (self.client_request, (client, req, kind, key, value, expected)))
            return
        self.requests.append((client, req, kind, key, value, expected))
        self.pump()

    # -- the driver -------------------------------------------------------------------------
    def pump(self) -> None:
        """Kick the driver (the runtime's `kick`): run passes until none is owed, or until
        a disk step keeps the pass waiting."""
        self.kicked = True
        self._run()

    def _run(self) -> None:
        while self.alive and not self.persisting:
            if self.steps is None:
                if not self.kicked:
                    return
                self.kicked = False
                assert self.driver is not None
                self.steps = self.driver.run_pass()
            try:
                step = next(self.steps)
            except StopIteration:
                self.steps = None
                continue
            self._carry_out(step)
        self._maybe_linger()

    def _maybe_linger(self) -> None:
        """The runtime's commit linger (`RaftConfig.linger_commit`): a commit index the
        followers are owed goes out `commit_linger_ms` after the driver went idle, unless an
        append with new entries carried it first."""
        if (self.alive and self.steps is None and not self.persisting and not self.lingering
                and self.core.commit_owed):
            self.lingering = True
            self.sim.clock.after(self.sim.params.commit_linger_ms, self._linger_expired,
                                 self.incarnation)

    def _linger_expired(self, inc: int) -> None:
        if inc != self.incarnation:
            return
        if self.paused:
            self.backlog.append((self._linger_expired, (inc,)))
            return
        self.lingering = False
        self.core.flush_commit()
        self.pump()

    def _carry_out(self, step: Step) -> None:
        kind = type(step)
        if kind is Flush:
            return  # (replies go to the clients directly)
        if kind is Compact:
            self._maybe_snapshot()
            return
        sim = self.sim
        if isinstance(step, Send):
            for m in step.messages:
                self._check_ack(m)
                sim.send(m)
            return
        assert isinstance(step, (Persist, InstallSnapshot))
        disk = sim.disk_delay()
        if disk > 0:
            self.persisting = True
            sim.clock.after(disk, self._written, self.incarnation, step)
            return
        self._write(step)

    def _written(self, inc: int, step: Persist | InstallSnapshot) -> None:
        if inc != self.incarnation:
            return  # crashed before the "fsync" returned: nothing of it reached the disk
        if self.paused:
            self.backlog.append((self._written, (inc, step)))
            return
        self._write(step)
        self.persisting = False
        self._run()

    # -- DriverHost ---------------------------------------------------------------------------
    def after_inputs(self, ticked: bool) -> None:
        """The client requests that arrived since the last drain go to the core now."""
        requests, self.requests = self.requests, []
        sim = self.sim
        core = self.core
        for client, req, kind, key, value, expected in requests:
            try:
                if kind == READ:
                    token = f"{req[0]}:{req[1]}".encode()
                    core.read_index(token)
                    self.reads[token] = (client, req, key)
                else:
                    assert value is not None
                    cmd = Command(req, kind, key, value, expected)
                    index = core.propose(cmd.encode())
                    self.proposals[index] = (client, req)
                    sim.trace.add(sim.clock.now, self.id, f"propose {kind} {key}={value} @{index}")
            except NotLeader as e:
                sim.client_reply(client, req, "not_leader", e.leader_hint)
            except ProposalDropped:
                sim.client_reply(client, req, "retry", None)

    def on_ready(self, rd: Ready) -> None:
        self._observe(rd)

    def apply(self, entries: list[Entry]) -> None:
        self._apply(entries)

    def serve_reads(self, read_states: list[ReadState]) -> None:
        for rs in read_states:
            self._read_state(rs.token, rs.index)

    def after_apply(self) -> None:
        self._serve_reads()

    def _check_ack(self, m: Any) -> None:
        """Votes and append acks must not leave before what they promise is durable: sent
        earlier, a crash could make a node forget a vote or an entry it acknowledged."""
        d = self.durable
        if isinstance(m, RequestVoteResponse) and m.granted and not m.pre_vote:
            hs = d.hard_state
            if (hs.term, hs.vote) != (m.term, m.dst):
                raise InvariantViolation(
                    "persist-before-ack",
                    f"n{self.id} sends its vote for n{m.dst} (term {m.term}) before the vote "
                    f"is durable (on disk: term {hs.term}, vote {hs.vote})")
        elif isinstance(m, AppendEntriesResponse) and m.success and m.index > d.last_index():
            raise InvariantViolation(
                "persist-before-ack",
                f"n{self.id} acknowledges entries up to {m.index} to n{m.dst} with only "
                f"{d.last_index()} on disk")

    def _observe(self, rd: Ready) -> None:
        sim = self.sim
        if rd.soft_state is not None:
            ss = rd.soft_state
            if ss.role != self.role or ss.leader_id != self.leader_id:
                sim.trace.add(sim.clock.now, self.id,
                              f"{ss.role.value} (leader {ss.leader_id}, term "
                              f"{rd.hard_state.term if rd.hard_state else self.term})")
            self.role, self.leader_id = ss.role, ss.leader_id
        for lost in rd.lost_logs:
            sim.lost_logs += 1
            sim.trace.add(sim.clock.now, self.id,
                          f"n{lost.peer} came back without its log (acked {lost.acked}, has "
                          f"{lost.has})")
        commit_before = self.commit
        if rd.hard_state is not None:
            self.term = rd.hard_state.term
            self.commit = rd.hard_state.commit  # volatile: written to disk lazily
        if self.role is Role.LEADER:
            sim.leader_observed(self, self.term)
            inv = sim.invariants
            if self.commit > commit_before:
                sim.nemesis.on_leader_commit(self, self.commit)
            inv.leader_commit_seen(self.term, self.commit)
            if inv.needs_completeness_check(self.term):
                d = self.durable
                inv.check_leader_completeness(self.id, self.term, d.snap_index, d.term_at)

    def _write(self, step: Persist | InstallSnapshot) -> None:
        """The disk step is done: what it wrote survives a crash from now on."""
        sim = self.sim
        inv = sim.invariants
        d = self.durable
        if isinstance(step, InstallSnapshot):
            meta, data = step.meta, step.data
            if meta.index <= self.sm.applied:
                raise InvariantViolation(
                    "commit-monotonic",
                    f"n{self.id} asked to install snapshot {meta.index} but applied "
                    f"{self.sm.applied} already")
            inv.snapshot_installed(self.id, meta.index, meta.term)
            d.install_snapshot(meta, data)
            self.sm.restore(data)
            if self.sm.applied != meta.index:
                raise InvariantViolation(
                    "snapshot", f"n{self.id}: snapshot {meta.index} holds state at "
                    f"{self.sm.applied}")
            self.last_snapshot_index = meta.index
            self.membership = meta.membership
            sim.installs += 1
            sim.trace.add(sim.clock.now, self.id, f"install snapshot {meta.index}/{meta.term}")
            self._fail_proposals_upto(meta.index)
            return
        if step.entries:
            first = step.entries[0].index
            prev = d.term_at(first - 1)
            d.append(step.entries)
            inv.entries_persisted(self.id, step.entries, prev)
        if step.hard_state is not None:
            hs = step.hard_state
            old = d.hard_state
            if hs.term < old.term:
                raise InvariantViolation(
                    "term-monotonic", f"n{self.id} persists term {hs.term} after {old.term}")
            if hs.commit < old.commit:
                raise InvariantViolation(
                    "commit-monotonic",
                    f"n{self.id} persists commit {hs.commit} after {old.commit}")
            inv.vote_persisted(self.id, hs.term, hs.vote)
            if hs.vote is not None and (hs.term, hs.vote) != (old.term, old.vote):
                sim.nemesis.on_vote_persisted(self, hs.term, hs.vote)
            d.hard_state = hs

    # -- applying -------------------------------------------------------------------------
    def _apply(self, entries: list[Entry]) -> None:
        if not entries:
            return
        sim = self.sim
        inv = sim.invariants
        sm = self.sm
        commit = self.core.commit_index
        for e in entries:
            if e.index <= sm.applied:
                continue  # applied already (as the runtime, which also skips these)
            if e.index != sm.applied + 1:
                raise InvariantViolation(
                    "commit-monotonic",
                    f"n{self.id} applies entry {e.index} after {sm.applied} (not contiguous)")
            if e.index > commit and sim.params.check_apply:
                raise InvariantViolation(
                    "apply-before-commit",
                    f"n{self.id} applies entry {e.index} beyond its commit index {commit}")
            inv.entry_applied(self.id, e)
            waiting = self.proposals.pop(e.index, None)
            if e.kind == EntryKind.NORMAL:
                cmd = Command.decode(e.data)
                result = sm.apply(e.index, cmd)
                if waiting is not None:
                    client, req = waiting
                    if req == cmd.req:
                        sim.client_reply(client, req, "ok", result)
                    else:  # our proposal was overwritten: it will never be applied
                        sim.client_reply(client, req, "retry", None)
            else:
                sm.skip(e.index)
                if e.kind == EntryKind.MEMBERSHIP:
                    self.membership = m = decode_membership(e.data)
                    sim.trace.add(sim.clock.now, self.id,
                                  f"apply membership @{e.index}: voters {sorted(m.voters)} "
                                  f"learners {sorted(m.learners)} outgoing "
                                  f"{sorted(m.voters_outgoing)}")
                if waiting is not None:
                    sim.client_reply(waiting[0], waiting[1], "retry", None)
        sim.stats_applied(self, entries[-1].index)

    def _fail_proposals_upto(self, index: int) -> None:
        """Proposals at or below an installed snapshot's index: their fate is unknown here."""
        for i in [i for i in self.proposals if i <= index]:
            del self.proposals[i]  # the client times out: outcome unknown

    def _maybe_snapshot(self) -> None:
        sm = self.sm
        if self.snapshot_every and sm.applied - self.last_snapshot_index >= self.snapshot_every:
            if not self.core.can_compact(sm.applied):
                return  # a snapshot from the leader is on its way to us (not handed out yet)
            data = sm.snapshot()
            meta = self.core.compact(sm.applied, data)
            self.durable.save_snapshot(meta, data)
            self.last_snapshot_index = sm.applied
            self.sim.snapshots += 1

    # -- reads ----------------------------------------------------------------------------
    def _read_state(self, token: bytes, index: int | None) -> None:
        pending = self.reads.pop(token, None)
        if pending is None:
            return
        client, req, key = pending
        if index is None:
            self.sim.client_reply(client, req, "retry", None)
            return
        self.waiting_reads.append((index, client, req, key))

    def _serve_reads(self) -> None:
        if not self.waiting_reads:
            return
        applied = self.sm.applied
        still = []
        for item in self.waiting_reads:
            index, client, req, key = item
            if index <= applied:
                value = self.sm.read(key)
                self.sim.trace.add(self.sim.clock.now, self.id,
                                   f"serve read {key}={value} (read index {index}, applied "
                                   f"{applied}, {self.role.value})")
                self.sim.client_reply(client, req, "ok", value)
            else:
                still.append(item)
        self.waiting_reads = still
