"""`python -m harness.sim`: run many seeds, print a summary; on failure, the seed, the exact
replay command and the trace of the events that led to it."""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from harness.sim.nemesis import FAULTS
from harness.sim.runner import (
    EXTRA_SCENARIOS,
    SCENARIOS,
    SimFailure,
    SimParams,
    SimResult,
    run_seed,
)
from harness.sim.trace import Trace

NODE_CHOICES = (3, 5, 7)


def params_for_seed(seed: int, base: SimParams | None = None, *, nodes: int | None = None,
                    scenario: str | None = None) -> SimParams:
    """The parameters a seed runs with when the caller did not fix them: the seed picks."""
    pick = random.Random(f"params-{seed}")
    base = base or SimParams()
    return attrs.evolve(
        base,
        nodes=nodes if nodes is not None else pick.choice(NODE_CHOICES),
        scenario=scenario if scenario is not None else pick.choice(SCENARIOS),
    )


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return s[k]


@attrs.define
class Summary:
    seeds: int = 0
    failures: list[SimFailure] = attrs.Factory(list)
    results: list[SimResult] = attrs.Factory(list)
    wall_s: float = 0.0

    def add(self, r: SimResult) -> None:
        self.seeds += 1
        self.results.append(r)

    def figures(self) -> dict[str, Any]:
        rs = self.results
        failovers = [f for r in rs for f in r.failovers]
        heals = [h for r in rs for h in r.heal_to_progress]
        commits = [h for r in rs for h in r.heal_to_commit]
        first = [r.first_leader_ms for r in rs if r.first_leader_ms is not None]
        same = [ms for r in rs for ms, same_leader in r.wipe_catchups if same_leader]
        return {
            "ops": sum(r.ops for r in rs),
            "ops_unknown": sum(r.ops_unknown for r in rs),
            "elections": sum(r.elections for r in rs),
            "failovers": len(failovers),
            "failover_p50_ms": percentile(failovers, 50),
            "failover_p99_ms": percentile(failovers, 99),
            "failover_max_ms": max(failovers, default=None),
            "heals": len(heals),
            "heal_progress_p50_ms": percentile(heals, 50),
            "heal_progress_p99_ms": percentile(heals, 99),
            "heal_progress_max_ms": max(heals, default=None),
            "heal_commit_p50_ms": percentile(commits, 50),
            "heal_commit_p99_ms": percentile(commits, 99),
            "heal_commit_max_ms": max(commits, default=None),
            "first_leader_p50_ms": percentile(first, 50),
            "first_leader_p99_ms": percentile(first, 99),
            "stable_leader_changes": sum(r.leader_changes_when_stable for r in rs),
            "messages": sum(r.messages for r in rs),
            "snapshots": sum(r.snapshots for r in rs),
            "installs": sum(r.installs for r in rs),
            "read_back": sum(r.read_back for r in rs),
            "crashes": sum(r.crashes for r in rs),
            "membership_changes": sum(r.membership_changes for r in rs),
            "transfers": sum(r.transfers for r in rs),
            "wipes": sum(r.wipes for r in rs),
            "lost_logs": sum(r.lost_logs for r in rs),
            "wipe_catchups_same_leader": len(same),
            "wipe_catchups_other_leader": sum(not s for r in rs for _, s in r.wipe_catchups),
            "wipe_catchup_p50_ms": percentile(same, 50),
            "wipe_catchup_p99_ms": percentile(same, 99),
            "wipe_catchup_max_ms": max(same, default=None),
            "virtual_s": sum(r.virtual_ms for r in rs) / 1000,
        }

    def render(self) -> str:
        f = self.figures()
        by_nodes: dict[int, int] = {}
        by_scn: dict[str, int] = {}
        for r in self.results:
            by_nodes[r.nodes] = by_nodes.get(r.nodes, 0) + 1
            by_scn[r.scenario] = by_scn.get(r.scenario, 0) + 1
        lines = [
            f"seeds run: {self.seeds}  passed: {self.seeds - len(self.failures)}  "
            f"failed: {len(self.failures)}  wall time: {self.wall_s:.1f} s "
            f"({self.seeds / self.wall_s if self.wall_s else 0:.1f} seeds/s)",
            f"  by size: {dict(sorted(by_nodes.items()))}  "
            f"by scenario: {dict(sorted(by_scn.items()))}",
            f"  client ops checked: {f['ops']} ({f['ops_unknown']} with unknown outcome)",
            f"  elections: {f['elections']}  leader crashes -> new leader: {f['failovers']} "
            f"(p50 {f['failover_p50_ms']} ms, p99 {f['failover_p99_ms']} ms, "
            f"max {f['failover_max_ms']} ms)",
            f"  full heals: {f['heals']}; -> first new commit: p50 {f['heal_commit_p50_ms']} ms, "
            f"p99 {f['heal_commit_p99_ms']} ms, max {f['heal_commit_max_ms']} ms; -> first "
            f"acknowledged write issued after it: p50 {f['heal_progress_p50_ms']} ms, "
            f"p99 {f['heal_progress_p99_ms']} ms, max {f['heal_progress_max_ms']} ms",
            f"  first leader: p50 {f['first_leader_p50_ms']} ms, p99 {f['first_leader_p99_ms']} "
            f"ms; leader changes on stable networks: {f['stable_leader_changes']}",
            f"  crashes: {f['crashes']}  membership changes: {f['membership_changes']}  "
            f"transfers: {f['transfers']}  snapshots: {f['snapshots']} taken, "
            f"{f['installs']} installed from a leader  entries read back from disk: "
            f"{f['read_back']}  "
            f"messages: {f['messages']}  virtual time: {f['virtual_s']:.0f} s",
        ]
        if f["wipes"]:
            lines.append(
                f"  data dirs wiped: {f['wipes']} (leaders reported {f['lost_logs']} lost "
                f"logs); caught up from the same leader: {f['wipe_catchups_same_leader']} "
                f"(p50 {f['wipe_catchup_p50_ms']} ms, p99 {f['wipe_catchup_p99_ms']} ms, "
                f"max {f['wipe_catchup_max_ms']} ms), after a leader change: "
                f"{f['wipe_catchups_other_leader']}")
        return "\n".join(lines)


def run_many(seeds: Iterable[int], make_params: Callable[[int], SimParams], *,
             core_factory: Callable[..., Any] | None = None, stop_on_failure: bool = True,
             progress: Callable[[int, SimResult | SimFailure], None] | None = None) -> Summary:
    summary = Summary()
    start = time.perf_counter()
    for seed in seeds:
        params = make_params(seed)
        try:
            res = run_seed(seed, params, core_factory)
        except SimFailure as f:
            summary.seeds += 1
            summary.failures.append(f)
            if progress:
                progress(seed, f)
            if stop_on_failure:
                break
            continue
        summary.add(res)
        if progress:
            progress(seed, res)
    summary.wall_s = time.perf_counter() - start
    return summary


def parse(argv: Sequence[str] | None) -> tuple[argparse.Namespace, Callable[[int], SimParams]]:
    """Parse the command line; returns the arguments and seed -> SimParams."""
    ap = argparse.ArgumentParser(prog="python -m harness.sim", description=__doc__)
    ap.add_argument("--seeds", type=int, default=100, help="how many seeds to run")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--seed", type=int, help="run (replay) exactly this seed")
    ap.add_argument("--nodes", type=int, choices=NODE_CHOICES,
                    help="cluster size (default: each seed picks 3, 5 or 7)")
    ap.add_argument("--scenario", choices=SCENARIOS + EXTRA_SCENARIOS,
                    help="fault mix (default: each seed picks one)")
    ap.add_argument("--faults", help="comma-separated faults, overriding the scenario's: "
                    + ", ".join(sorted({f for fs in FAULTS.values() for f in fs})))
    ap.add_argument("--duration-ms", type=int, help="virtual ms of workload per seed")
    ap.add_argument("--ticks", type=int, help="workload length in Raft ticks (instead of ms)")
    ap.add_argument("--fault-combo-p", type=float, help="chance a fault window has two faults")
    ap.add_argument("--clients", type=int, help="concurrent clients")
    ap.add_argument("--read-ratio", type=float, help="share of reads in the workload")
    ap.add_argument("--final-quiet-ms", type=int, help="fault-free stretch at the end of a run")
    ap.add_argument("--max-entries-per-msg", type=int, help="RaftConfig.max_entries_per_msg")
    ap.add_argument("--log-window-entries", type=int,
                    help="RaftConfig.log_window_entries (entries the core keeps in memory)")
    ap.add_argument("--keep-going", action="store_true", help="do not stop at the first failure")
    ap.add_argument("--trace-lines", type=int, default=100, help="trace lines in a report")
    ap.add_argument("--trace-file", help="with --seed: write the full trace here")
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per seed")
    args = ap.parse_args(argv)

    base = SimParams()
    if args.duration_ms is not None:
        base = attrs.evolve(base, duration_ms=args.duration_ms)
    if args.ticks is not None:
        base = attrs.evolve(base, duration_ms=args.ticks * base.tick_ms)
    for name in ("fault_combo_p", "clients", "read_ratio", "final_quiet_ms",
                 "max_entries_per_msg", "log_window_entries"):
        if getattr(args, name) is not None:
            base = attrs.evolve(base, **{name: getattr(args, name)})
    if args.faults:
        faults = tuple(f.strip() for f in args.faults.split(",") if f.strip())
        known = {f for fs in FAULTS.values() for f in fs}
        bad = [f for f in faults if f not in known]
        if bad:
            ap.error(f"unknown faults {bad}; known: {sorted(known)}")
        base = attrs.evolve(base, faults=faults)

    def make(seed: int) -> SimParams:
        return params_for_seed(seed, base, nodes=args.nodes, scenario=args.scenario)

    return args, make


def main(argv: Sequence[str] | None = None) -> int:
    args, make = parse(argv)
    if args.seed is not None:
        params = make(args.seed)
        trace = Trace()
        try:
            res = run_seed(args.seed, params, trace=trace)
        except SimFailure as f:
            print(_failure_text(f, args.trace_lines))
            _write_trace(trace, args.trace_file)
            return 1
        _write_trace(trace, args.trace_file)
        s = Summary()
        s.add(res)
        s.wall_s = res.wall_s
        print(f"seed {args.seed} ({params.nodes} nodes, {params.scenario}): ok")
        print(s.render())
        return 0

    def progress(seed: int, r: SimResult | SimFailure) -> None:
        if isinstance(r, SimFailure):
            print(f"seed {seed}: FAILED {r.check}", flush=True)
        elif args.verbose:
            print(f"seed {seed}: ok {r.nodes} nodes {r.scenario} ops {r.ops} elections "
                  f"{r.elections} {r.wall_s:.2f} s", flush=True)

    seeds = range(args.first_seed, args.first_seed + args.seeds)
    summary = run_many(seeds, make, stop_on_failure=not args.keep_going, progress=progress)
    print(summary.render())
    for failure in summary.failures:
        print()
        print(_failure_text(failure, args.trace_lines))
    return 1 if summary.failures else 0


def _failure_text(f: SimFailure, lines: int) -> str:
    return f.report(lines)


def _write_trace(trace: Trace, path: str | None) -> None:
    if path:
        trace.write(path)


if __name__ == "__main__":
    sys.exit(main())
