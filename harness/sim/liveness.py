"""Liveness figures from the simulator, with the core's default timeouts.

    python -m harness.sim.liveness [--seeds 100]

* failover: a leader crashes; time until another node leads a higher term;
* stable network: time to the first leader, and leader changes afterwards (must be 0);
* heal: after a partition (or any fault window) is fully healed, time until a client write
  is acknowledged again.

Times are virtual milliseconds at 10 ms per Raft tick (`SimParams.tick_ms`); divide by 10
for ticks. Every run is also a full safety run (all invariants + linearizability).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence

import attrs

from aspen.raft.tunables import RaftConfig
from harness.sim.runner import SimParams
from harness.sim.seeds import percentile, run_many


def _stats(values: list[int]) -> list[str]:
    """p50, p99 and max, as strings ("-" when there is nothing)."""
    out = [percentile(values, 50), percentile(values, 99), max(values, default=None)]
    return ["-" if v is None else f"{v:.0f}" for v in out]


def _always(params: SimParams) -> Callable[[int], SimParams]:
    return lambda _seed: params


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.sim.liveness", description=__doc__)
    ap.add_argument("--seeds", type=int, default=100, help="seeds per cluster size and case")
    ap.add_argument("--stable-ms", type=int, default=20_000)
    args = ap.parse_args(argv)
    cfg = RaftConfig()
    base = SimParams()
    print(f"RaftConfig defaults: election_tick={cfg.election_tick} heartbeat_tick="
          f"{cfg.heartbeat_tick} pre_vote={cfg.pre_vote} check_quorum={cfg.check_quorum}; "
          f"1 tick = {base.tick_ms} virtual ms; network delay {base.net.min_delay_ms}-"
          f"{base.net.max_delay_ms} ms; disk {base.disk_min_ms}-{base.disk_max_ms} ms")
    started = time.perf_counter()
    failed = False
    rows = []
    for nodes in (3, 5, 7):
        crash = attrs.evolve(base, nodes=nodes, scenario="crash", faults=("crash_leader",),
                             fault_combo_p=0.0)
        s1 = run_many(range(args.seeds), _always(crash), stop_on_failure=False)
        stable = attrs.evolve(base, nodes=nodes, scenario="stable",
                              duration_ms=args.stable_ms)
        s2 = run_many(range(max(args.seeds // 4, 1)), _always(stable),
                      stop_on_failure=False)
        heal = attrs.evolve(base, nodes=nodes, scenario="partition")
        s3 = run_many(range(args.seeds), _always(heal), stop_on_failure=False)
        for s in (s1, s2, s3):
            for f in s.failures:
                failed = True
                print(f.report(), file=sys.stderr)
        fo = [x for r in s1.results for x in r.failovers]
        first = [r.first_leader_ms for r in s2.results if r.first_leader_ms is not None]
        changes = sum(r.leader_changes_when_stable for r in s2.results)
        hc = [x for r in s3.results for x in r.heal_to_commit]
        hp = [x for r in s3.results for x in r.heal_to_progress]
        rows.append([str(nodes), str(len(fo)), *_stats(fo), str(len(first)), *_stats(first),
                     str(changes), str(len(hc)), *_stats(hc), *_stats(hp)])
    print()
    print("| nodes | leader crashes | new leader p50 / p99 / max | stable runs | first leader "
          "p50 / p99 / max | leader changes after | full heals | first commit p50 / p99 / max "
          "| first write acked p50 / p99 / max |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        cells = [r[0], r[1], " / ".join(r[2:5]), r[5], " / ".join(r[6:9]), r[9], r[10],
                 " / ".join(r[11:14]), " / ".join(r[14:17])]
        print("| " + " | ".join(cells) + " |")
    print(f"\n(all times in virtual ms; wall time {time.perf_counter() - started:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
