"""One seeded simulation run: a cluster of Raft cores, a network, clients and a nemesis.

Everything random comes from one `random.Random(seed)`, and virtual time only moves when
the event heap says so: the same seed replays the same run, event for event.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import attrs

from aspen.raft.driver import Driver
from aspen.raft.ready import Role
from aspen.raft.tunables import RaftConfig
from aspen.raft.types import Membership
from aspen.raft.wire import decode_message, encode_message
from harness.linearizability import Op
from harness.linearizability import check as check_linearizable
from harness.sim.clock import Clock
from harness.sim.invariants import Invariants, InvariantViolation
from harness.sim.nemesis import Nemesis
from harness.sim.network import NetParams, Network
from harness.sim.simnode import READ, SimNode
from harness.sim.trace import Trace
from harness.sim.workload import Client, Pending

SCENARIOS = ("stable", "crash", "partition", "membership", "flaky", "mixed", "figure8")
EXTRA_SCENARIOS = ("wiped",)  # run only when asked for (not among a seed's random picks)


@attrs.define
class SimParams:
    nodes: int = 5
    scenario: str = "mixed"
    spares: int = 2  # extra node ids that start empty, for membership changes
    tick_ms: int = 10  # virtual milliseconds per Raft tick
    duration_ms: int = 6000  # the workload runs this long; faults stop before its end
    warmup_ms: int = 400
    final_quiet_ms: int = 1500
    fault_min_ms: int = 150
    fault_max_ms: int = 1200
    fault_combo_p: float = 0.3  # probability that a fault window has a second fault
    quiet_min_ms: int = 100
    quiet_max_ms: int = 800
    stable_first_leader_bound_ms: int = 1000  # stable network: a leader within 100 ticks
    liveness_bound_ms: int = 2000  # after a full heal, a client write must succeed within this
    commit_linger_ms: int = 1  # the runtime's commit_linger (0: the empty append at once)
    disk_min_ms: int = 0
    disk_max_ms: int = 2
    snapshot_every: int = 40  # entries applied between state machine snapshots
    clients: int = 4
    keys: int = 3
    read_ratio: float = 0.4
    cas_ratio: float = 0.3
    think_ms: int = 20
    random_target_p: float = 0.3  # a new operation goes to a random node, else the last one
    client_timeout_ms: int = 1000
    probe_timeout_ms: int = 200  # the health-check client's timeout
    retry_backoff_ms: int = 20
    client_min_delay_ms: int = 1
    client_max_delay_ms: int = 3
    net: NetParams = attrs.Factory(NetParams)
    election_tick: int | None = None  # None: RaftConfig's default
    heartbeat_tick: int | None = None
    max_entries_per_msg: int | None = None
    snapshot_chunk_size: int = 16  # tiny, so that every InstallSnapshot comes in chunks
    # a tiny in-memory log tail, so that replication constantly reads entries back from "disk"
    log_window_entries: int = 2
    log_window_bytes: int = 64
    max_checker_steps: int = 3_000_000
    faults: tuple[str, ...] | None = None  # overrides the scenario's list of faults
    check_votes: bool = True  # vote-safety check (off: let Election Safety catch double votes)
    # apply-before-commit check (off: let linearizability catch what an early apply causes)
    check_apply: bool = True
    wipe_catchup_bound_ms: int = 2000  # a wiped node catches up within this from one leader

    def replay_args(self, seed: int) -> str:
        """Command-line arguments that make `python -m harness.sim` replay this run."""
        args = [f"--seed {seed}", f"--nodes {self.nodes}", f"--scenario {self.scenario}"]
        defaults = SimParams()
        for name, flag in _CLI_FLAGS.items():
            value = getattr(self, name)
            if name in ("nodes", "scenario") or value == getattr(defaults, name):
                continue
            if isinstance(value, tuple):
                value = ",".join(value)
            args.append(f"{flag} {value}")
        others = [f"{f.name}={getattr(self, f.name)!r}" for f in attrs.fields(SimParams)
                  if f.name not in _CLI_FLAGS
                  and getattr(self, f.name) != getattr(defaults, f.name)]
        line = " ".join(args)
        if others:
            line += "   # and SimParams(" + ", ".join(others) + ")"
        return line


_CLI_FLAGS = {
    "nodes": "--nodes", "scenario": "--scenario", "duration_ms": "--duration-ms",
    "faults": "--faults", "fault_combo_p": "--fault-combo-p", "clients": "--clients",
    "read_ratio": "--read-ratio", "final_quiet_ms": "--final-quiet-ms",
    "max_entries_per_msg": "--max-entries-per-msg", "log_window_entries": "--log-window-entries",
}


class SimFailure(Exception):
    """A safety or liveness check failed; carries everything needed to replay it."""

    def __init__(self, seed: int, params: SimParams, check: str, message: str,
                 trace: str) -> None:
        super().__init__(f"seed {seed}: {check}: {message}")
        self.seed = seed
        self.params = params
        self.check = check
        self.message = message
        self.trace = trace

    @property
    def replay(self) -> str:
        return f"python -m harness.sim {self.params.replay_args(self.seed)}"

    def report(self, trace_lines: int = 150) -> str:
        lines = self.trace.splitlines()
        header = lines[:1] if lines and lines[0].startswith("(events from") else []
        body = lines[len(header):][-trace_lines:]
        return (f"FAILED seed {self.seed} ({self.params.nodes} nodes, scenario "
                f"{self.params.scenario}): {self.check}\n  {self.message}\n"
                f"replay: {self.replay}\n--- the events that led to it ---\n"
                + "\n".join(header + body))


@attrs.define
class SimResult:
    seed: int
    nodes: int
    scenario: str
    ops: int
    ops_unknown: int
    elections: int
    failovers: list[int]  # ms from a leader's crash/isolation to a new leader
    heal_to_progress: list[int]  # ms from a full heal to the next acknowledged write
    heal_to_commit: list[int]  # ms from a full heal to the first entry committed after it
    first_leader_ms: int | None
    leader_changes_when_stable: int
    messages: int
    snapshots: int
    installs: int  # snapshots received from a leader and installed
    crashes: int
    membership_changes: int
    transfers: int
    wipes: int
    wipe_catchups: list[tuple[int, bool]]  # (ms from the empty start, from the same leader?)
    lost_logs: int  # leaders' reports of a follower that came back without its log
    virtual_ms: int
    wall_s: float
    read_back: int = 0  # entries a core read back from its durable log (below its tail)


class LivenessViolation(InvariantViolation):
    pass


class LinearizabilityViolation(InvariantViolation):
    def __init__(self, check: str, message: str, focus_ms: float) -> None:
        super().__init__(check, message)
        self.focus_ms = focus_ms


def default_core_factory() -> Callable[..., Any]:
    from aspen.raft import RaftCore

    return RaftCore


class Simulation:
    def __init__(self, seed: int, params: SimParams | None = None,
                 core_factory: Callable[..., Any] | None = None,
                 trace: Trace | None = None,
                 driver_factory: Callable[..., Driver] | None = None) -> None:
        self.seed = seed
        self.params = p = params or SimParams()
        self.rng = random.Random(seed)
        self.clock = Clock()
        self.trace = trace or Trace()
        self.invariants = Invariants(check_votes=p.check_votes)
        kw: dict[str, Any] = {}
        if p.election_tick is not None:
            kw["election_tick"] = p.election_tick
        if p.heartbeat_tick is not None:
            kw["heartbeat_tick"] = p.heartbeat_tick
        if p.max_entries_per_msg is not None:
            kw["max_entries_per_msg"] = p.max_entries_per_msg
        kw["snapshot_chunk_size"] = p.snapshot_chunk_size
        kw["log_window_entries"] = p.log_window_entries
        kw["log_window_bytes"] = p.log_window_bytes
        kw["linger_commit"] = p.commit_linger_ms > 0
        self.raft_config = RaftConfig(**kw)
        self.net = Network(self.clock, self.rng, self._deliver, attrs.evolve(p.net))
        factory = core_factory or default_core_factory()
        self.initial_voters = frozenset(range(1, p.nodes + 1))
        make_driver = driver_factory or Driver  # the runtime's driver, unless a test plants one
        self.nodes = {i: SimNode(self, i, factory, make_driver)
                      for i in range(1, p.nodes + p.spares + 1)}
        self.clients = [Client(self, c) for c in range(1, p.clients + 1)]
        self.probe = Client(self, p.clients + 1, probe=True)
        self.clients.append(self.probe)
        self.history: list[Op] = []
        self.workload_end = p.duration_ms
        self._stamp_ms = -1
        self._stamp_n = 0
        # statistics
        self.elections = 0
        self.failovers: list[int] = []
        self.failover_from: tuple[int, int] | None = None
        self.heal_to_progress: list[int] = []
        self.awaiting_progress: int | None = None
        self.heal_to_commit: list[int] = []
        self.awaiting_commit: tuple[int, int] | None = None  # (heal time, max commit then)
        self.first_leader_ms: int | None = None
        self.leader_changes_when_stable = 0
        self.snapshots = 0
        self.installs = 0
        self.read_back = 0
        self.crashes = 0
        self.membership_changes = 0
        self.transfers = 0
        self.wipes = 0
        self.wipe_catchups: list[tuple[int, bool]] = []
        self.lost_logs = 0
        self.retries = 0
        self.timeouts = 0
        self.nemesis = Nemesis(self)

    # -- plumbing used by nodes and clients -----------------------------------------------
    def stamp(self) -> float:
        """A strictly increasing history timestamp, readable as virtual milliseconds."""
        now = self.clock.now
        if now != self._stamp_ms:
            self._stamp_ms, self._stamp_n = now, 0
        self._stamp_n += 1
        return now + self._stamp_n * 1e-6

    def disk_delay(self) -> int:
        p = self.params
        return self.rng.randint(p.disk_min_ms, p.disk_max_ms)

    def client_delay(self) -> int:
        p = self.params
        return self.rng.randint(p.client_min_delay_ms, p.client_max_delay_ms)

    def send(self, msg: Any) -> None:
        self.net.send(msg.src, msg.dst, encode_message(msg))

    def _deliver(self, src: int, dst: int, payload: bytes) -> None:
        node = self.nodes.get(dst)
        if node is not None and node.alive:
            node.receive(decode_message(payload))

    def client_reply(self, client: int, req: tuple[int, int], status: str, payload: Any) -> None:
        self.clock.after(self.client_delay(), self.clients[client - 1].on_reply, req, status,
                         payload)

    def op_succeeded(self, op: Pending) -> None:
        if self.awaiting_progress is not None and op.kind != READ \
                and op.call_ms >= self.awaiting_progress:
            self.heal_to_progress.append(self.clock.now - self.awaiting_progress)
            self.awaiting_progress = None

    def stats_applied(self, node: SimNode, index: int) -> None:
        waiting = self.awaiting_commit
        if waiting is not None and index > waiting[1]:
            self.heal_to_commit.append(self.clock.now - waiting[0])
            self.awaiting_commit = None

    def expect_progress(self) -> None:
        """A full heal just happened: entries and client writes must flow again."""
        now = self.clock.now
        self.awaiting_progress = now
        # progress = some node applies an entry beyond every commit index known now (not
        # beyond every last index: an isolated leader's uncommitted tail is no yardstick)
        commit = max((n.commit for n in self.nodes.values() if n.alive), default=0)
        self.awaiting_commit = (now, commit)
        self.probe.wake()

    def leader_observed(self, node: SimNode, term: int) -> None:
        """Called whenever a node's Ready shows it leading `term`."""
        if not self.invariants.note_leader(node.id, term):
            return
        self.elections += 1
        now = self.clock.now
        if self.first_leader_ms is None:
            self.first_leader_ms = now
        elif self.params.scenario == "stable":
            self.leader_changes_when_stable += 1
        if self.failover_from is not None and term > self.failover_from[1]:
            self.failovers.append(now - self.failover_from[0])
            self.failover_from = None
        self.trace.add(now, node.id, f"LEADER of term {term}")
        self.nemesis.on_new_leader(node, term)

    def leader(self) -> SimNode | None:
        best: SimNode | None = None
        for n in self.nodes.values():
            if n.alive and n.role is Role.LEADER and (best is None or n.term > best.term):
                best = n
        return best

    # -- running --------------------------------------------------------------------------
    def run(self) -> SimResult:
        started = time.perf_counter()
        p = self.params
        try:
            boot = Membership(voters=self.initial_voters)
            for i, node in self.nodes.items():
                node.start(boot if i in self.initial_voters else None)
            for c in self.clients[:-1]:
                self.clock.after(self.rng.randint(0, 50), c.next_op)
            self.nemesis.start()
            end = p.duration_ms + p.client_timeout_ms + 200
            self.clock.run_until(end)
            self._final_checks()
        except InvariantViolation as v:
            raise SimFailure(self.seed, p, v.check, v.message, self._trace_for(v)) from None
        except SimFailure:
            raise
        except Exception as exc:  # a crash inside the core is a finding too
            import traceback

            tb = traceback.format_exc(limit=8)
            raise SimFailure(self.seed, p, "exception", f"{exc!r}\n{tb}",
                             self.trace.render(150)) from exc
        return SimResult(
            seed=self.seed, nodes=p.nodes, scenario=p.scenario, ops=len(self.history),
            ops_unknown=sum(1 for o in self.history if o.ret is None),
            elections=self.elections, failovers=self.failovers,
            heal_to_progress=self.heal_to_progress, heal_to_commit=self.heal_to_commit,
            first_leader_ms=self.first_leader_ms,
            leader_changes_when_stable=self.leader_changes_when_stable,
            messages=self.net.sent, snapshots=self.snapshots, installs=self.installs,
            crashes=self.crashes,
            membership_changes=self.membership_changes, transfers=self.transfers,
            wipes=self.wipes, wipe_catchups=self.wipe_catchups, lost_logs=self.lost_logs,
            virtual_ms=self.clock.now, wall_s=time.perf_counter() - started,
            read_back=self.read_back)

    def _trace_for(self, v: InvariantViolation) -> str:
        if isinstance(v, LinearizabilityViolation):
            t = v.focus_ms
            return (f"(events from {t - 400:.0f} to {t + 50:.0f} ms: the first operation that "
                    f"could not be linearized was called at {t:.0f} ms)\n"
                    + self.trace.render_window(t - 400, t + 50))
        return self.trace.render(150)

    def _final_checks(self) -> None:
        p = self.params
        if self.first_leader_ms is None:
            raise LivenessViolation("liveness", "no leader was ever elected")
        if p.scenario == "stable" and self.first_leader_ms > p.stable_first_leader_bound_ms:
            raise LivenessViolation(
                "liveness", f"first leader only after {self.first_leader_ms} ms on a stable "
                f"network (bound {p.stable_first_leader_bound_ms} ms)")
        if p.scenario == "stable" and self.leader_changes_when_stable:
            raise LivenessViolation(
                "liveness", f"{self.leader_changes_when_stable} leader changes on a stable "
                "network (livelock or instability)")
        if self.awaiting_commit is not None:
            raise LivenessViolation(
                "liveness", f"nothing was committed after the heal at {self.awaiting_commit[0]} "
                "ms, until the end of the run")
        if any(not c.finished for c in self.clients):
            raise LivenessViolation("liveness", "a client is still waiting after the run")
        res = check_linearizable(self.history, max_steps_per_key=p.max_checker_steps)
        if not res.ok:
            check = "linearizability" if res.violations else "linearizability-undecided"
            bad = next(k for k in res.keys if not k.ok)
            placed = set(map(id, bad.linearized))
            first = min((o.call for o in bad.ops if id(o) not in placed), default=0.0)
            raise LinearizabilityViolation(check, res.explain(), first)
        if not any(o.ret is not None and o.kind != "read" for o in self.history):
            raise LivenessViolation("liveness", "no write or cas succeeded in the whole run")


def run_seed(seed: int, params: SimParams | None = None,
             core_factory: Callable[..., Any] | None = None,
             trace: Trace | None = None,
             driver_factory: Callable[..., Driver] | None = None) -> SimResult:
    return Simulation(seed, params, core_factory, trace, driver_factory).run()
