"""The nemesis: alternates fault windows with full heals, and demands progress after each heal.

A run is: warm-up, then [fault window, heal + quiet window]*, then a final quiet stretch.
At every heal the network is made whole and every crashed node restarts from its disk; a
client write must then succeed within `liveness_bound_ms` (liveness: "progress resumes
after every partition heals"). Which faults a run uses depends on its scenario.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from aspen.raft.errors import RaftError
from aspen.raft.types import Membership
from harness.sim.invariants import InvariantViolation
from harness.sim.network import NetParams

if TYPE_CHECKING:
    from harness.sim.runner import Simulation
    from harness.sim.simnode import SimNode

FAULTS: dict[str, tuple[str, ...]] = {
    "stable": (),
    "crash": ("crash", "crash_leader", "crash_restart", "crash_persisting", "leader_churn"),
    "figure8": ("figure8",),
    "partition": ("partition", "isolate_leader", "one_way_leader", "one_way", "partition",
                  "pause_leader", "slow_clock", "figure8"),
    "membership": ("membership", "membership", "membership", "transfer", "crash_leader",
                   "isolate_leader"),
    "flaky": ("flaky", "flaky", "crash_restart"),
    # a voter's data dir is wiped (one at a time) under loss, duplication and reordering
    "wiped": ("wipe", "wipe", "wipe_after_vote", "wipe_after_vote", "flaky", "crash_restart"),
    "mixed": ("crash", "crash_leader", "crash_restart", "crash_persisting", "partition",
              "isolate_leader", "one_way_leader", "one_way", "flaky", "membership",
              "membership", "transfer", "pause_leader", "slow_clock", "leader_churn",
              "figure8"),
}


def membership_of(node: SimNode) -> Membership | None:
    core = node.core
    m = getattr(core, "membership", None)
    if callable(m):
        m = m()
    if isinstance(m, Membership):
        return m
    return node.membership


@attrs.define
class WipeWatch:
    node: int
    incarnation: int
    target: int  # the highest commit index any node had when it was wiped
    started: int  # virtual ms of its empty start
    leader: int | None  # who led then
    term: int | None


class Nemesis:
    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        p = sim.params
        self.faults = p.faults if p.faults is not None else FAULTS[p.scenario]
        self.fault_end = p.duration_ms - p.final_quiet_ms
        self.calm = sim.net.params
        self.heal_id = 0
        self.churn = False  # crash every new leader shortly after it is elected
        self.f8: dict[str, int] | None = None  # progress through the Figure 8 schedule
        self.wipe_watch: WipeWatch | None = None  # the wiped node being caught up
        self.wipe_next_voter = False  # wipe the next node that votes for another one

    def log(self, what: str) -> None:
        self.sim.trace.add(self.sim.clock.now, "nemesis", what)

    def start(self) -> None:
        sim = self.sim
        self._expect_progress()
        if self.faults:
            sim.clock.at(sim.params.warmup_ms, self.episode)

    # -- windows --------------------------------------------------------------------------
    def episode(self) -> None:
        sim = self.sim
        now = sim.clock.now
        if now >= self.fault_end:
            return
        if sim.awaiting_progress is not None:
            sim.clock.after(50, self.episode)  # progress after the last heal first
            return
        rng = sim.rng
        length = rng.randint(sim.params.fault_min_ms, sim.params.fault_max_ms)
        length = max(1, min(length, self.fault_end - now))
        fault = rng.choice(self.faults)
        if fault == "figure8":
            length = max(1, min(max(length, 1500), self.fault_end - now))
        getattr(self, f"_f_{fault}")(length)
        if fault != "figure8" and rng.random() < sim.params.fault_combo_p:
            second = rng.choice(self.faults)  # faults come in pairs too
            if second != "figure8":
                getattr(self, f"_f_{second}")(length)
                sim.failover_from = None  # a failover time means "one leader crash" only
        sim.clock.after(length, self.heal)

    def heal(self) -> None:
        sim = self.sim
        sim.net.heal()
        sim.net.params = self.calm
        self.churn = False
        self.f8 = None
        self.wipe_next_voter = False
        for n in sim.nodes.values():
            n.tick_ms = sim.params.tick_ms
            n.resume()
        restarted = [n.id for n in sim.nodes.values() if not n.alive]
        for nid in restarted:
            sim.nodes[nid].start()
        self.log("heal: network whole" + (f", restarted {restarted}" if restarted else ""))
        self._expect_progress()
        if sim.clock.now < self.fault_end:
            p = sim.params
            sim.clock.after(sim.rng.randint(p.quiet_min_ms, p.quiet_max_ms), self.episode)

    def _expect_progress(self) -> None:
        sim = self.sim
        self.heal_id += 1
        sim.expect_progress()
        if sim.clock.now + sim.params.liveness_bound_ms <= sim.workload_end:
            sim.clock.after(sim.params.liveness_bound_ms, self._progress_deadline, self.heal_id)

    def _progress_deadline(self, heal_id: int) -> None:
        sim = self.sim
        if heal_id == self.heal_id and sim.awaiting_progress is not None:
            raise InvariantViolation(
                "liveness", f"no write succeeded within {sim.params.liveness_bound_ms} ms of "
                f"a full heal at {sim.awaiting_progress} ms")

    # -- helpers --------------------------------------------------------------------------
    def _alive(self) -> list[int]:
        return sorted(i for i, n in self.sim.nodes.items() if n.alive)

    def _members(self) -> list[int]:
        """Nodes that are (or were) part of the cluster: where faults matter."""
        sim = self.sim
        lead = sim.leader()
        m = membership_of(lead) if lead else None
        ids = m.all_nodes if m else sim.initial_voters
        return sorted(ids)

    def _crash(self, nid: int, why: str) -> None:
        sim = self.sim
        node = sim.nodes[nid]
        if not node.alive:
            return
        self.log(f"crash n{nid} ({why})")
        sim.crashes += 1
        node.crash()

    def _restart(self, nid: int) -> None:
        node = self.sim.nodes[nid]
        if not node.alive:
            self.log(f"restart n{nid}")
            node.start()

    # -- faults ---------------------------------------------------------------------------
    def _f_crash(self, length: int) -> None:
        alive = [i for i in self._members() if self.sim.nodes[i].alive]
        if alive:
            self._crash(self.sim.rng.choice(alive), "random node")

    def _f_crash_leader(self, length: int) -> None:
        sim = self.sim
        lead = sim.leader()
        if lead is None:
            self._f_crash(length)
            return
        sim.failover_from = (sim.clock.now, lead.term)
        self._crash(lead.id, f"leader of term {lead.term}")

    def _f_crash_restart(self, length: int) -> None:
        sim = self.sim
        alive = [i for i in self._members() if sim.nodes[i].alive]
        if not alive:
            return
        nid = sim.rng.choice(alive)
        self._crash(nid, "will restart within the window")
        sim.clock.after(sim.rng.randint(1, length), self._restart, nid)

    def _f_crash_persisting(self, length: int) -> None:
        """Crash a node while a Ready is being written (or as soon as one is)."""
        sim = self.sim
        busy = [n.id for n in sim.nodes.values() if n.alive and n.persisting]
        if busy:
            self._crash(sim.rng.choice(busy), "mid-persist")
            return
        deadline = sim.clock.now + length
        self._wait_persisting(deadline)

    def _wait_persisting(self, deadline: int) -> None:
        sim = self.sim
        busy = [n.id for n in sim.nodes.values() if n.alive and n.persisting]
        if busy:
            self._crash(sim.rng.choice(busy), "mid-persist")
        elif sim.clock.now + 1 < deadline:
            sim.clock.after(1, self._wait_persisting, deadline)

    def _f_partition(self, length: int) -> None:
        sim = self.sim
        ids = list(sim.nodes)
        sim.rng.shuffle(ids)
        cut = sim.rng.randint(1, len(ids) - 1)
        groups = [sorted(ids[:cut]), sorted(ids[cut:])]
        self.log(f"partition {groups[0]} | {groups[1]}")
        sim.net.partition(groups)

    def _f_isolate_leader(self, length: int) -> None:
        sim = self.sim
        lead = sim.leader()
        if lead is None:
            self._f_partition(length)
            return
        self.log(f"isolate leader n{lead.id} (term {lead.term})")
        sim.net.isolate(lead.id, sim.nodes)

    def _f_one_way_leader(self, length: int) -> None:
        """The leader can send but hears nothing back (or the reverse)."""
        sim = self.sim
        lead = sim.leader()
        if lead is None:
            self._f_one_way(length)
            return
        others = [i for i in sim.nodes if i != lead.id]
        if sim.rng.random() < 0.5:
            self.log(f"leader n{lead.id} cannot receive")
            for o in others:
                sim.net.block_one_way(o, [lead.id])
        else:
            self.log(f"leader n{lead.id} cannot send")
            sim.net.block_one_way(lead.id, others)

    def _f_one_way(self, length: int) -> None:
        sim = self.sim
        ids = list(sim.nodes)
        src = sim.rng.choice(ids)
        dsts = sim.rng.sample([i for i in ids if i != src], sim.rng.randint(1, len(ids) - 1))
        self.log(f"n{src} cannot send to {sorted(dsts)}")
        sim.net.block_one_way(src, dsts)

    def _f_leader_churn(self, length: int) -> None:
        """New leaders crash moments after their election (before their no-op spreads), and
        come back soon: the crash schedule behind the Figure 8 anomaly (Raft paper, §5.4.2)."""
        self.log("leader churn: new leaders will crash right after election")
        self.churn = True
        lead = self.sim.leader()
        if lead is not None:
            self.on_new_leader(lead, lead.term)

    def _f_figure8(self, length: int) -> None:
        """The schedule of the Raft paper's Figure 8, driven by partitions:

        1. isolate leader A (term a): it keeps appending client entries nobody else gets;
        2. once B is elected (term b > a) without them, isolate B at once, so B's own
           entry at that index stays on B alone; reconnect A;
        3. once the next leader C (typically A, holding the old-term entries) advances its
           commit index, isolate C and reconnect B. B's last term b now beats the others':
           if C committed an entry of term a by counting replicas, B will overwrite it.
        """
        sim = self.sim
        lead = sim.leader()
        if lead is None:
            return
        self.f8 = {"phase": 1, "a": lead.id, "term": lead.term}
        self.log(f"figure8 step 1: isolate leader n{lead.id} (term {lead.term})")
        sim.net.isolate(lead.id, sim.nodes)

    def on_leader_commit(self, node: SimNode, commit: int) -> None:
        f8 = self.f8
        if f8 is None or f8["phase"] != 2 or node.term <= f8["term"]:
            return
        sim = self.sim
        f8.update(phase=3, c=node.id)
        self.log(f"figure8 step 3: n{node.id} (term {node.term}) committed {commit}; isolate "
                 f"it, reconnect n{f8['b']}")
        sim.net.heal()
        sim.net.isolate(node.id, sim.nodes)

    def on_new_leader(self, node: SimNode, term: int) -> None:
        sim = self.sim
        f8 = self.f8
        if f8 is not None and f8["phase"] == 1 and term > f8["term"] and node.id != f8["a"]:
            f8.update(phase=2, b=node.id, term=term)
            self.log(f"figure8 step 2: isolate new leader n{node.id} (term {term}), "
                     f"reconnect n{f8['a']}")
            sim.net.heal()
            sim.net.isolate(node.id, sim.nodes)
        if not self.churn or sim.rng.random() < 0.2:
            return
        sim.clock.after(sim.rng.randint(0, 25), self._churn_crash, node.id, term)

    def _churn_crash(self, nid: int, term: int) -> None:
        sim = self.sim
        node = sim.nodes[nid]
        if not self.churn or not node.alive or node.term != term:
            return
        self._crash(nid, f"new leader of term {term}")
        sim.clock.after(sim.rng.randint(5, 150), self._restart, nid)

    def _f_wipe(self, length: int) -> None:
        """Kill a voter and delete its data dir; it restarts empty within the window (often
        a follower, sometimes the leader). One at a time: a node is wiped only once the last
        wiped one holds everything that was committed when it lost its data (two wiped
        copies at once can lose committed entries whatever the protocol does)."""
        sim = self.sim
        if self.wipe_watch is not None or any(n.wipe_pending for n in sim.nodes.values()):
            return
        lead = sim.leader()
        m = membership_of(lead) if lead else None
        voters = sorted((m.voters if m else sim.initial_voters)
                        & {i for i, n in sim.nodes.items() if n.alive})
        if not voters:
            return
        rng = sim.rng
        followers = [v for v in voters if lead is None or v != lead.id]
        nid = rng.choice(followers if followers and rng.random() < 0.8 else voters)
        target = max((n.commit for n in sim.nodes.values()), default=0)
        node = sim.nodes[nid]
        rebootstrap = nid in sim.initial_voters and rng.random() < 0.5
        self.log(f"wipe n{nid}'s data dir (commit then: {target})"
                 + (", it will bootstrap again" if rebootstrap else ""))
        sim.wipes += 1
        node.wipe()
        node.wipe_pending = (target, rebootstrap)
        sim.clock.after(rng.randint(1, max(1, min(length, 300))), self._restart, nid)

    def _f_wipe_after_vote(self, length: int) -> None:
        """The worst moment for a wipe: right after a node voted, while the election it
        voted in may still be going on (crash the leader to start one)."""
        if self.wipe_watch is not None:
            return
        self.log("the next node to vote for another will be wiped")
        self.wipe_next_voter = True
        lead = self.sim.leader()
        if lead is not None and self.sim.rng.random() < 0.7:
            self._crash(lead.id, f"leader of term {lead.term}")

    def on_vote_persisted(self, node: SimNode, term: int, vote: int) -> None:
        sim = self.sim
        if not self.wipe_next_voter or vote == node.id or self.wipe_watch is not None:
            return
        if any(n.wipe_pending for n in sim.nodes.values()):
            return
        self.wipe_next_voter = False
        sim.clock.after(sim.rng.randint(0, 5), self._wipe_voter, node.id, node.incarnation,
                        term, vote)

    def _wipe_voter(self, nid: int, incarnation: int, term: int, vote: int) -> None:
        sim = self.sim
        node = sim.nodes[nid]
        if not node.alive or node.incarnation != incarnation:
            return
        target = max((n.commit for n in sim.nodes.values()), default=0)
        rebootstrap = nid in sim.initial_voters and sim.rng.random() < 0.5
        self.log(f"wipe n{nid}'s data dir just after it voted for n{vote} in term {term}")
        sim.wipes += 1
        node.wipe()
        node.wipe_pending = (target, rebootstrap)
        sim.clock.after(sim.rng.randint(1, 30), self._restart, nid)

    def watch_wiped(self, node: SimNode, target: int) -> None:
        """A wiped node just started: it must catch up, from the same leader if that one
        stays in office."""
        sim = self.sim
        lead = sim.leader()
        w = WipeWatch(node.id, node.incarnation, target, sim.clock.now,
                      lead.id if lead else None, lead.term if lead else None)
        self.wipe_watch = w
        sim.clock.after(20, self._poll_wiped, w)

    def _poll_wiped(self, w: WipeWatch) -> None:
        sim = self.sim
        if self.wipe_watch is not w:
            return
        node = sim.nodes[w.node]
        if not node.alive:  # crashed again (it restarts with what it wrote since the wipe)
            sim.clock.after(20, self._poll_wiped, w)
            return
        if node.incarnation != w.incarnation:  # ... and restarted: the clock starts over
            w.incarnation, w.started = node.incarnation, sim.clock.now
        lead = sim.leader()
        same = lead is not None and (lead.id, lead.term) == (w.leader, w.term)
        if node.commit >= w.target and node.sm.applied >= w.target:
            took = sim.clock.now - w.started
            sim.wipe_catchups.append((took, same))
            self.log(f"wiped n{w.node} caught up after {took} ms "
                     + ("from the same leader" if same else "(after a leader change)"))
            self.wipe_watch = None
            return
        bound = sim.params.wipe_catchup_bound_ms
        if same and sim.clock.now - w.started >= bound and w.leader is not None:
            raise InvariantViolation(
                "wiped-catch-up",
                f"n{w.node} restarted with an empty data dir at {w.started} ms and has not "
                f"caught up (commit {node.commit} < {w.target}) after {bound} ms, although "
                f"n{w.leader} has led term {w.term} all along")
        sim.clock.after(20, self._poll_wiped, w)

    def _f_pause_leader(self, length: int) -> None:
        """Stop the leader's process (a GC pause, SIGSTOP); on waking it sees the queued
        messages and client requests in an arbitrary order."""
        sim = self.sim
        lead = sim.leader()
        if lead is None:
            return
        self.log(f"pause leader n{lead.id} (term {lead.term})")
        lead.pause()
        wake = sim.rng.randint(1, length)
        sim.clock.after(wake, self._resume, lead.id)

    def _resume(self, nid: int) -> None:
        node = self.sim.nodes[nid]
        if node.paused:
            self.log(f"resume n{nid} ({len(node.backlog)} queued inputs)")
            node.resume()

    def _f_slow_clock(self, length: int) -> None:
        """One node's clock runs slow (the leader's, more often than not)."""
        sim = self.sim
        lead = sim.leader()
        alive = self._alive()
        if not alive:
            return
        nid = lead.id if lead is not None and sim.rng.random() < 0.7 else sim.rng.choice(alive)
        factor = sim.rng.choice([2, 3, 5])
        self.log(f"n{nid}'s clock runs {factor}x slow")
        sim.nodes[nid].tick_ms = sim.params.tick_ms * factor

    def _f_flaky(self, length: int) -> None:
        sim = self.sim
        rng = sim.rng
        params = NetParams(
            min_delay_ms=1, max_delay_ms=rng.randint(3, 20), slow_p=rng.choice([0.05, 0.2]),
            slow_ms=rng.randint(20, 200), drop_p=rng.choice([0.05, 0.2, 0.4]),
            dup_p=rng.choice([0.02, 0.1, 0.3]))
        self.log(f"flaky network {params}")
        sim.net.params = params

    def _f_transfer(self, length: int) -> None:
        sim = self.sim
        lead = sim.leader()
        if lead is None:
            return
        m = membership_of(lead)
        voters = sorted((m.voters if m else sim.initial_voters) - {lead.id})
        if not voters:
            return
        to = sim.rng.choice(voters)
        self.log(f"transfer leadership n{lead.id} -> n{to}")
        self._call(lead, lambda: lead.core.transfer_leadership(to))
        sim.transfers += 1

    def _f_membership(self, length: int) -> None:
        sim = self.sim
        lead = sim.leader()
        if lead is None:
            return
        m = membership_of(lead)
        if m is None or m.is_joint:
            return
        rng = sim.rng
        voters, learners = set(m.voters), set(m.learners)
        outside = sorted(set(sim.nodes) - voters - learners)
        moves: list[tuple[str, Callable[[], None]]] = []
        if outside:
            x = rng.choice(outside)
            moves.append((f"add learner n{x}", lambda: learners.add(x)))
        if learners:
            y = rng.choice(sorted(learners))

            def promote() -> None:
                learners.discard(y)
                voters.add(y)

            moves.append((f"promote learner n{y}", promote))
            moves.append((f"remove learner n{y}", lambda: learners.discard(y)))
        if len(voters) > 3:
            z = rng.choice(sorted(voters))
            tag = " (the leader)" if z == lead.id else ""
            moves.append((f"remove voter n{z}{tag}", lambda: voters.discard(z)))
            moves.append((f"remove the leader n{lead.id}", lambda: voters.discard(lead.id)))
        if learners and len(voters) >= 3:
            a, b = rng.choice(sorted(voters)), rng.choice(sorted(learners))

            def replace() -> None:
                voters.discard(a)
                learners.discard(b)
                voters.add(b)

            moves.append((f"replace voter n{a} by n{b} (joint)", replace))
        if len(voters) >= 3:
            c = rng.choice(sorted(voters))

            def demote() -> None:
                voters.discard(c)
                learners.add(c)

            if len(voters) > 3:
                moves.append((f"demote voter n{c} to learner", demote))
        if not moves:
            return
        what, move = rng.choice(moves)
        move()
        self.log(f"membership: {what} -> voters {sorted(voters)} learners {sorted(learners)}")
        if self._call(lead, lambda: lead.core.change_membership(frozenset(voters),
                                                               frozenset(learners))):
            sim.membership_changes += 1

    def _call(self, node: SimNode, fn: Callable[[], Any]) -> bool:
        try:
            fn()
        except RaftError as e:
            self.log(f"  refused by n{node.id}: {e!r}")
            return False
        node.pump()
        return True
