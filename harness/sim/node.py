"""One simulated node: a Raft core, its "disk", its state machine, and the Ready loop.

The loop follows the Ready contract in `aspen.raft.ready`: messages go out at once; the
rest is "written to disk", which takes `disk_ms` of virtual time; only then are persisted
messages sent, committed entries applied and `advance` called. A crash in between loses
the whole Ready, exactly like a process killed before its fsync returned.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aspen.raft.codec import decode_membership
from aspen.raft.errors import NotLeader, ProposalDropped
from aspen.raft.messages import AppendEntriesResponse, RequestVoteResponse
from aspen.raft.ready import Ready, Role
from aspen.raft.types import Entry, EntryKind, Membership
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
    def __init__(self, sim: Simulation, node_id: int, make_core: Callable[..., Any]) -> None:
        self.sim = sim
        self.id = node_id
        self.make_core = make_core
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
        if self.incarnation > 1 and d.hard_state.commit < self.applied_before_crash:
            raise InvariantViolation(
                "commit-monotonic",
                f"n{self.id} restarts with durable commit {d.hard_state.commit} but had applied "
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
        self.core.tick()
        self.pump()

    def receive(self, msg: Any) -> None:
        if not self.alive:
            return
        if self.paused:
            self.backlog.append((self.receive, (msg,)))
            return
        self.core.step(msg)
        self.pump()

    def client_request(self, client: int, req: tuple[int, int], kind: str, key: str,
                       value: str | None, expected: str | None) -> None:
        if not self.alive:
            return  # the client will time out
        if self.paused:
            self.backlog.append(
                (self.client_request, (client, req, kind, key, value, expected)))
            return
        sim = self.sim
        try:
            if kind == READ:
                token = f"{req[0]}:{req[1]}".encode()
                self.core.read_index(token)
                self.reads[token] = (client, req, key)
            else:
                assert value is not None
                cmd = Command(req, kind, key, value, expected)
                index = self.core.propose(cmd.encode())
                self.proposals[index] = (client, req)
                sim.trace.add(sim.clock.now, self.id, f"propose {kind} {key}={value} @{index}")
        except NotLeader as e:
            sim.client_reply(client, req, "not_leader", e.leader_hint)
        except ProposalDropped:
            sim.client_reply(client, req, "retry", None)
        self.pump()

    # -- the Ready loop -------------------------------------------------------------------
    def pump(self) -> None:
        while self.alive and not self.persisting and self.core.has_ready():
            rd = self.core.ready()
            self._observe(rd)
            sim = self.sim
            if rd.hard_state is not None or rd.entries:
                self._check_no_early_ack(rd)
            for m in rd.messages:
                sim.send(m)
            disk = sim.disk_delay()
            if disk > 0 and (rd.entries or rd.hard_state or rd.snapshot):
                self.persisting = True
                sim.clock.after(disk, self._persisted, self.incarnation, rd)
                return
            self._persisted(self.incarnation, rd)

    def _check_no_early_ack(self, rd: Ready) -> None:
        """Votes and append acks that depend on this Ready must wait until it is durable:
        sent earlier, a crash could make a node forget a vote or an entry it acknowledged."""
        hs = rd.hard_state
        first = rd.entries[0].index if rd.entries else None
        for m in rd.messages:
            if (isinstance(m, RequestVoteResponse) and m.granted and not m.pre_vote
                    and hs is not None and hs.vote == m.dst):
                raise InvariantViolation(
                    "persist-before-ack",
                    f"n{self.id} sends its vote for n{m.dst} (term {m.term}) before the vote "
                    "is durable")
            if (isinstance(m, AppendEntriesResponse) and m.success and first is not None
                    and m.index >= first):
                raise InvariantViolation(
                    "persist-before-ack",
                    f"n{self.id} acknowledges entries up to {m.index} before persisting "
                    f"entries from {first}")

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
        if rd.hard_state is not None:
            self.term = rd.hard_state.term
        if self.role is Role.LEADER:
            sim.leader_observed(self, self.term)

    def _persisted(self, inc: int, rd: Ready) -> None:
        if inc != self.incarnation:
            return  # crashed before the "fsync" returned: nothing of rd reached the disk
        if self.paused:
            self.backlog.append((self._persisted, (inc, rd)))
            return
        sim = self.sim
        inv = sim.invariants
        d = self.durable
        if rd.snapshot is not None:
            meta, data = rd.snapshot
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
        if rd.entries:
            first = rd.entries[0].index
            prev = d.term_at(first - 1)
            d.append(rd.entries)
            inv.entries_persisted(self.id, rd.entries, prev)
        commit_before = d.hard_state.commit
        if rd.hard_state is not None:
            hs = rd.hard_state
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
            self.commit = hs.commit
        if self.role is Role.LEADER:
            if d.hard_state.commit > commit_before:
                sim.nemesis.on_leader_commit(self, d.hard_state.commit)
            inv.leader_commit_seen(self.term, d.hard_state.commit)
            if inv.needs_completeness_check(self.term):
                inv.check_leader_completeness(self.id, self.term, d.snap_index, d.term_at)
        for m in rd.persisted_messages:
            sim.send(m)
        self._apply(rd.committed)
        for rs in rd.read_states:
            self._read_state(rs.token, rs.index)
        self.core.advance(rd)
        self.persisting = False
        self._maybe_snapshot()
        self._serve_reads()
        self.pump()

    # -- applying -------------------------------------------------------------------------
    def _apply(self, entries: list[Entry]) -> None:
        if not entries:
            return
        sim = self.sim
        inv = sim.invariants
        sm = self.sm
        commit = self.durable.hard_state.commit
        for e in entries:
            if e.index != sm.applied + 1:
                raise InvariantViolation(
                    "commit-monotonic",
                    f"n{self.id} applies entry {e.index} after {sm.applied} (not contiguous)")
            if e.index > commit:
                raise InvariantViolation(
                    "commit-monotonic",
                    f"n{self.id} applies entry {e.index} beyond its durable commit {commit}")
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
