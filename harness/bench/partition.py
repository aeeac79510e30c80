"""Majority-side throughput while one node is cut off (in-process 3-node cluster, real clock).

    python -m harness.bench.partition [--workers 30] [--seconds 8] [--isolate follower|leader]

Workers spread their commands over ALL nodes (each worker goes round the nodes, one SET per
step), as a client pool that does not know the topology would. Phases: healthy, one node
isolated by the memory hub (both directions), healed. Printed per phase: successful writes/s
(all, and those answered by the majority side), errors by kind, and the p99 latency of
successful writes. Before the fail-fast change a cut-off node held each of its clients for
the whole request timeout, and the pool's throughput collapsed with it. A figure, not a test.
"""

from __future__ import annotations

import argparse
import collections
import time

import trio

from aspen.resp.values import Error
from harness.cluster import open_cluster


class Phase:
    def __init__(self, name: str) -> None:
        self.name = name
        self.ok = 0
        self.ok_majority = 0
        self.errors: collections.Counter[str] = collections.Counter()
        self.latencies: list[float] = []
        self.start = time.monotonic()
        self.end = self.start

    def report(self) -> str:
        secs = max(self.end - self.start, 1e-9)
        lat = sorted(self.latencies)
        p99 = lat[int(len(lat) * 0.99)] * 1000 if lat else float("nan")
        errs = ", ".join(f"{k} {v}" for k, v in sorted(self.errors.items())) or "none"
        return (f"{self.name:<10} {secs:5.1f} s  writes/s {self.ok / secs:8.0f}  "
                f"majority-side writes/s {self.ok_majority / secs:8.0f}  "
                f"p99 {p99:7.1f} ms  errors: {errs}")


async def run(args: argparse.Namespace) -> list[Phase]:
    async with open_cluster(3, seed=1, request_timeout=5.0, tick_interval=0.1,
                            election_ticks=10) as cluster:
        leader = await cluster.wait_leader()
        ids = [n.id for n in cluster.running()]
        cut = leader.id if args.isolate == "leader" else next(i for i in ids if i != leader.id)
        phases = [Phase("healthy")]
        minority: set[int] = set()

        async def worker(w: int) -> None:
            step = w
            while True:
                node = ids[step % len(ids)]
                step += 1
                t0 = time.monotonic()
                reply = await cluster.client(node).cmd("SET", f"k{w}:{step}", "v")
                phase = phases[-1]
                if isinstance(reply, Error):
                    phase.errors[reply.message.split()[0]] += 1
                else:
                    phase.ok += 1
                    phase.ok_majority += node not in minority
                    phase.latencies.append(time.monotonic() - t0)

        async with trio.open_nursery() as nursery:
            for w in range(args.workers):
                nursery.start_soon(worker, w)
            await trio.sleep(args.seconds / 2)
            phases[-1].end = time.monotonic()
            cluster.hub.partition([cut], [i for i in ids if i != cut])
            minority.add(cut)
            phases.append(Phase(f"{args.isolate} cut"))
            await trio.sleep(args.seconds)
            phases[-1].end = time.monotonic()
            cluster.hub.heal()
            minority.clear()
            phases.append(Phase("healed"))
            await trio.sleep(args.seconds / 2)
            phases[-1].end = time.monotonic()
            nursery.cancel_scope.cancel()
        return phases


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=30)
    p.add_argument("--seconds", type=float, default=8.0, help="length of the partition")
    p.add_argument("--isolate", choices=["follower", "leader"], default="follower")
    args = p.parse_args()
    phases = trio.run(run, args)
    print(f"3 in-process nodes, {args.workers} workers round-robin over all nodes, "
          f"request_timeout 5 s, election timeout 1 s")
    for phase in phases:
        print(phase.report())


if __name__ == "__main__":
    main()
