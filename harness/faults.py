"""A campaign of real network partitions against `aspen node` daemons in namespaces.

    python -m harness.faults --minutes 10 [--nodes 5] [--hold 6] [--seed 1] [--dir DIR]

Every daemon runs in its own network namespace (harness.netns); clients run in this process,
in the root namespace, so they keep reaching every node, on both sides of every cut. The
nemesis goes round the faults (each held `--hold` s, then healed and the cluster given time to
settle):

* `leader`    the leader isolated from every other node;
* `follower`  one follower isolated;
* `split`     a 2/3 split of 5 nodes, the leader on the 2 side (a 1/2 split of 3 is `leader`);
* `partial`   the leader and one follower cannot reach each other, both still reach the rest.

Clients (two per node) write and read registers (SET/GET, one unique value per write) and add
unique members to their own set (SADD); every outcome is recorded: acknowledged, failed with a
definite error (CLUSTERDOWN: nothing applied), or unknown (TIMEOUT, a lost connection). At the
end, with every link healed: the register history must be linearizable
(harness.linearizability), every acknowledged SADD member must be on every node and no member
that was never sent, and every node must hold the same values. Printed per fault: the time from
the cut to an agreed leader on the majority side (for faults that remove the leader from the
majority), the elections it took, and the writes acknowledged on each side while it lasted.

Needs root and `ip netns` (see harness.netns); exits 2 with the reason where they are missing.
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from harness import linearizability as lin
from harness.daemons import DaemonCluster, wait_until
from harness.netns import NetnsUnavailable, Network, unavailable_reason

__all__ = ["FAULTS", "Campaign", "FaultResult", "Workload", "main", "run_campaign"]

FAULTS = ("leader", "follower", "split", "partial")
KEYS_PER_ROUND = 4  # registers; each fault gets fresh ones (short per-key histories)


@attrs.define
class FaultResult:
    kind: str
    cut: str  # what was cut, in words
    held: float  # from the moment every route of the cut was in place
    cutting: float  # how long putting the routes in place took
    old_leader: int
    leader_after: int | None = None  # the first other leader the majority side agreed on
    # (or, if none, the one it agreed on at the end of the hold)
    time_to_leader: float | None = None  # from the cut to that other leader; None: kept
    elections: int = 0  # terms started on the majority side during the fault
    acked: dict[str, int] = attrs.Factory(dict)  # "majority"/"minority" -> acknowledged writes

    def line(self) -> str:
        if self.time_to_leader is None:
            lead = (f"leader {self.old_leader} kept" if self.leader_after == self.old_leader
                    else "no agreed leader at the end")
        else:
            lead = f"new leader {self.leader_after} after {self.time_to_leader * 1000:.0f} ms"
        sides = ", ".join(f"{k} {v}" for k, v in sorted(self.acked.items()))
        return (f"{self.kind:<9} {self.cut:<40} held {self.held:4.1f} s  {lead:<32} "
                f"elections {self.elections}  acked writes: {sides}")


class Workload:
    """Client threads, two per node, recording a register history and SADD outcomes."""

    def __init__(self, cluster: DaemonCluster, seed: int, per_node: int = 2,
                 pause: float = 0.01) -> None:
        self.cluster = cluster
        self.seed = seed
        self.pause = pause
        self.history: list[lin.Op] = []
        self.keys: tuple[str, ...] = ()  # the registers in use now (set by `new_keys`)
        self.all_keys: list[str] = []
        self.added: dict[str, set[str]] = {}  # set key -> members acknowledged
        self.maybe: dict[str, set[str]] = {}  # set key -> members sent (any outcome)
        self.acks: list[tuple[float, int]] = []  # (time, node) of every acknowledged write
        self.errors: dict[str, int] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self._values = itertools.count(1)
        self.threads = [
            threading.Thread(target=self._run, args=(node, c), daemon=True,
                             name=f"client-{node}-{c}")
            for node in cluster.voters for c in range(per_node)
        ]

    def new_keys(self, round_: int) -> None:
        keys = tuple(f"r{round_}.{i}" for i in range(KEYS_PER_ROUND))
        with self.lock:
            self.keys = keys
            self.all_keys += keys

    def __enter__(self) -> Workload:
        if not self.keys:
            self.new_keys(0)
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def _count(self, what: str) -> None:
        with self.lock:
            self.errors[what] = self.errors.get(what, 0) + 1

    def _run(self, node: int, c: int) -> None:
        name = f"{node}.{c}"
        rng = random.Random(f"{self.seed}/{name}")
        setkey = f"s{name}"
        with self.lock:
            self.added[setkey] = set()
            self.maybe[setkey] = set()
        conn: redis.Redis | None = None
        while not self.stop.is_set():
            if conn is None:
                # one attempt per command: a retry inside redis-py would hide outcomes
                conn = self.cluster.client(node, socket_timeout=4, socket_connect_timeout=2,
                                           retry=Retry(NoBackoff(), 0))
            roll = rng.random()
            start = time.monotonic()
            try:
                key, value = rng.choice(self.keys), next(self._values)
                if roll < 0.4:
                    try:
                        ok = conn.set(key, value)
                    except redis.exceptions.ClusterDownError:
                        self._count("CLUSTERDOWN")  # definite: nothing was applied
                    except redis.ResponseError as exc:
                        self._count(str(exc).split()[0])
                        self._record(lin.Op(name, key, lin.WRITE, start, None, value))
                    else:
                        assert ok is True
                        self._record(lin.Op(name, key, lin.WRITE, start, time.monotonic(),
                                            value), node)
                    continue
                if roll < 0.8:
                    try:
                        got = conn.get(key)
                    except redis.exceptions.ClusterDownError:
                        self._count("CLUSTERDOWN")
                    except redis.ResponseError as exc:
                        self._count(str(exc).split()[0])
                    else:
                        self._record(lin.Op(name, key, lin.READ, start, time.monotonic(),
                                            output=None if got is None else int(got)))
                    continue
                member = f"{name}:{next(self._values)}"
                with self.lock:
                    self.maybe[setkey].add(member)
                try:
                    conn.sadd(setkey, member)
                except redis.exceptions.ClusterDownError:
                    self._count("CLUSTERDOWN")
                except redis.ResponseError as exc:
                    self._count(str(exc).split()[0])
                else:
                    with self.lock:
                        self.added[setkey].add(member)
                        self.acks.append((time.monotonic(), node))
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                # the outcome of a write in flight is unknown; the history keeps no record of
                # a read that did not return, and a SADD member stays in `maybe`
                self._count(type(exc).__name__)
                if roll < 0.4:
                    self._record(lin.Op(name, key, lin.WRITE, start, None, value))
                conn.close()
                conn = None
                time.sleep(0.05)
            finally:
                if self.pause:
                    time.sleep(rng.uniform(0, self.pause))
        if conn is not None:
            conn.close()

    def _record(self, op: lin.Op, acked_on: int | None = None) -> None:
        with self.lock:
            self.history.append(op)
            if acked_on is not None:
                self.acks.append((time.monotonic(), acked_on))

    def acked_between(self, t0: float, t1: float, nodes: set[int]) -> int:
        with self.lock:
            return sum(t0 <= t < t1 and n in nodes for t, n in self.acks)


@attrs.define
class Campaign:
    results: list[FaultResult]
    history_ops: int
    acked_adds: int
    check: lin.CheckResult
    lost: dict[str, list[str]]  # node -> acknowledged members missing there
    invented: list[str]  # members no client ever sent
    diverged: list[str]  # keys whose value differs between nodes
    errors: dict[str, int]

    @property
    def ok(self) -> bool:
        return self.check.ok and not any(self.lost.values()) and not self.invented \
            and not self.diverged

    def report(self) -> str:
        lines = [r.line() for r in self.results]
        lines.append(f"history: {self.history_ops} register ops, "
                     f"{'linearizable' if self.check.ok else 'NOT LINEARIZABLE'} "
                     f"({len(self.check.keys)} keys)")
        lost = sum(len(v) for v in self.lost.values())
        lines.append(f"acknowledged SADD members: {self.acked_adds}, lost {lost}, "
                     f"invented {len(self.invented)}; diverged keys: {len(self.diverged)}")
        lines.append("client errors: " + (", ".join(
            f"{k} {v}" for k, v in sorted(self.errors.items())) or "none"))
        ttl = [r.time_to_leader for r in self.results if r.time_to_leader is not None]
        if ttl:
            lines.append(f"time to a new leader: min {min(ttl) * 1000:.0f} ms, "
                         f"max {max(ttl) * 1000:.0f} ms, mean {sum(ttl) / len(ttl) * 1000:.0f}"
                         f" ms over {len(ttl)} faults")
        if not self.check.ok:
            lines.append(self.check.explain())
        return "\n".join(lines)


def _views(cluster: DaemonCluster, nodes: list[int]) -> dict[int, dict[str, Any]]:
    out = {}
    for i in nodes:
        try:
            out[i] = cluster.status(i, timeout=1)
        except Exception:
            continue
    return out


def _agreed_leader(views: dict[int, dict[str, Any]], group: list[int]) -> int | None:
    """The leader every node of `group` names, if it is in `group` and says it leads."""
    if set(views) != set(group):
        return None
    named = {v["leader"] for v in views.values()}
    if len(named) != 1:
        return None
    (lead,) = named
    if lead not in views or views[lead]["role"] != "leader":
        return None
    return int(lead)


def _plan(kind: str, leader: int, ids: list[int], rng: random.Random
          ) -> tuple[str, Callable[[Network], None], list[int]]:
    """(description, how to cut, the majority side: who must keep or elect a leader)."""
    followers = [i for i in ids if i != leader]
    if kind == "leader" or (kind == "split" and len(ids) < 5):
        return (f"isolate leader {leader}", lambda net: net.isolate(leader), followers)
    if kind == "follower":
        f = rng.choice(followers)
        return (f"isolate follower {f}", lambda net: net.isolate(f),
                [i for i in ids if i != f])
    if kind == "split":
        minority = [leader, rng.choice(followers)]
        majority = [i for i in ids if i not in minority]
        return (f"split {sorted(minority)} | {majority}",
                lambda net: net.partition(minority, majority), majority)
    if kind == "partial":  # the side that must keep a leader: everyone but `f`
        f = rng.choice(followers)
        return (f"cut leader {leader} <-> {f} (both reach the rest)",
                lambda net: net.cut(leader, f), [i for i in ids if i != f])
    raise ValueError(f"unknown fault {kind!r}")


def _run_fault(cluster: DaemonCluster, net: Network, work: Workload, kind: str, hold: float,
               rng: random.Random) -> FaultResult:
    ids = list(cluster.voters)
    leader = cluster.wait_leader(timeout=30)
    term0 = cluster.status(leader)["term"]
    what, cut, majority = _plan(kind, leader, ids, rng)
    started = time.monotonic()
    cut(net)
    t0 = time.monotonic()
    result = FaultResult(kind, what, hold, t0 - started, leader)
    while True:  # watch the majority side for the whole hold
        now = time.monotonic()
        views = _views(cluster, majority)
        lead = _agreed_leader(views, majority)
        if lead is not None and lead != leader and result.time_to_leader is None:
            result.leader_after = lead
            result.time_to_leader = now - t0
        terms = [v["term"] for v in views.values()]
        if terms:
            result.elections = max(result.elections, max(terms) - term0)
        if now - t0 >= hold:
            break
        time.sleep(0.02)
    t1 = time.monotonic()
    if result.leader_after is None:
        result.leader_after = _agreed_leader(_views(cluster, majority), majority)
    net.heal()
    minority = set(ids) - set(majority)
    result.acked = {"majority": work.acked_between(t0, t1, set(majority))}
    if minority:
        result.acked["minority"] = work.acked_between(t0, t1, minority)
    result.held = t1 - t0
    return result


def _converge(cluster: DaemonCluster, timeout: float = 60) -> None:
    leader = cluster.wait_leader(timeout=timeout)

    def caught_up() -> bool:
        target = cluster.status(leader)["commit_index"]
        return all(cluster.status(i)["applied_index"] >= target for i in cluster.voters)

    # a write after healing commits in the current term, so every node applies all before it
    with cluster.client(leader) as c:
        c.set("converged", "1")
    wait_until("every node to apply the leader's commit index", caught_up, timeout)


def _final_state(cluster: DaemonCluster, keys: list[str], setkeys: list[str]
                 ) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for i in cluster.voters:
        with cluster.client(i, socket_timeout=20) as c:
            c.execute_command("ASPEN.CONSISTENCY", "stale")  # this replica's own state
            regs = dict(zip(keys, c.mget(keys), strict=True))
            sets = {k: c.smembers(k) for k in setkeys}
        out[i] = {"regs": regs, "sets": sets}
    return out


def run_campaign(
    base_dir: Path,
    net: Network,
    *,
    nodes: int = 5,
    seconds: float | None = None,
    rounds: int | None = None,
    hold: float = 6.0,
    settle: float = 2.0,
    seed: int = 1,
    faults: tuple[str, ...] = FAULTS,
    log: Callable[[str], None] = print,
) -> Campaign:
    """Run the faults in turn (`rounds` times round, or until `seconds` have passed) under
    the client workload; then heal, converge and check everything."""
    rng = random.Random(seed)
    hosts = {i: net.host(i) for i in net.ids}
    with _cluster(nodes, base_dir, hosts, net) as cluster:
        cluster.wait_leader(timeout=30)
        results: list[FaultResult] = []
        start = time.monotonic()
        with Workload(cluster, seed) as work:
            time.sleep(settle)
            for n in itertools.count():
                if rounds is not None and n >= rounds * len(faults):
                    break
                if seconds is not None and time.monotonic() - start >= seconds:
                    break
                kind = faults[n % len(faults)]
                work.new_keys(n + 1)
                result = _run_fault(cluster, net, work, kind, hold, rng)
                log(result.line())
                results.append(result)
                cluster.wait_leader(timeout=30)
                time.sleep(settle)
        _converge(cluster)
        setkeys = sorted(work.added)
        final = _final_state(cluster, work.all_keys, setkeys)
    check = lin.check(work.history, max_steps_per_key=5_000_000)
    sent = set().union(*work.maybe.values()) if work.maybe else set()
    lost: dict[str, list[str]] = {}
    invented: set[str] = set()
    for i, state in final.items():
        held = {m.decode() for s in state["sets"].values() for m in s}
        lost[str(i)] = sorted(set().union(*work.added.values()) - held)
        invented |= held - sent
    first = final[cluster.voters[0]]
    states = list(final.values())
    diverged = sorted(
        [k for k in work.all_keys if any(st["regs"][k] != first["regs"][k] for st in states)]
        + [k for k in setkeys if any(st["sets"][k] != first["sets"][k] for st in states)]
    )
    return Campaign(results, len(work.history), sum(map(len, work.added.values())), check,
                    lost, sorted(invented), diverged, dict(work.errors))


@contextmanager
def _cluster(nodes: int, base_dir: Path, hosts: dict[int, str], net: Network
             ) -> Iterator[DaemonCluster]:
    with DaemonCluster(nodes, base_dir, hosts=hosts, exec_prefix=net.exec_prefix,
                       security={"insecure": True}) as cluster:  # namespaces: only we reach it
        cluster.start_all(timeout=60)
        try:
            yield cluster
        except BaseException:
            for i in cluster.members:
                print(f"--- n{i}.log\n{cluster.log_tail(i)}", file=sys.stderr)
            raise


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=5.0, help="how long the campaign runs")
    p.add_argument("--nodes", type=int, default=5)
    p.add_argument("--hold", type=float, default=6.0, help="seconds each fault lasts")
    p.add_argument("--settle", type=float, default=2.0, help="seconds between faults")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--faults", default=",".join(FAULTS),
                   help=f"comma-separated, from {', '.join(FAULTS)}")
    p.add_argument("--dir", type=Path, help="daemon data and logs (default: a temp dir)")
    args = p.parse_args(argv)
    faults = tuple(f for f in args.faults.split(",") if f)
    unknown = set(faults) - set(FAULTS)
    if unknown:
        p.error(f"unknown faults: {', '.join(sorted(unknown))}")
    reason = unavailable_reason()
    if reason is not None:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="aspen-faults-") as tmp:
        base = args.dir or Path(tmp)
        try:
            with Network(args.nodes) as net:
                print(f"{args.nodes} daemons in namespaces {net.ns(1)}..{net.ns(args.nodes)} "
                      f"({net.host(1)}..), faults {', '.join(faults)}, each held "
                      f"{args.hold:g} s, for {args.minutes:g} min", flush=True)
                campaign = run_campaign(
                    base, net, nodes=args.nodes, seconds=args.minutes * 60, hold=args.hold,
                    settle=args.settle, seed=args.seed, faults=faults,
                    log=lambda line: print(line, flush=True),
                )
        except NetnsUnavailable as exc:
            print(f"cannot run: {exc}", file=sys.stderr)
            return 2
    print(campaign.report())
    print("OK" if campaign.ok else "FAILED")
    return 0 if campaign.ok else 1


if __name__ == "__main__":
    sys.exit(main())
