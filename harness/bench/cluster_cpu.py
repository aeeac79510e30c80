"""Where a replicated request's CPU goes: per node, per thread, user and system time.

    python -m harness.bench.cluster_cpu                       # SET at -P 1 and -P 16
    python -m harness.bench.cluster_cpu -t set,get -P 16 --rounds 3

The same run as `harness.bench.cluster` (3 `aspen node` daemons, ZeroMQ, sqlite, fsync on;
redis-benchmark against the leader), but the CPU of each node is split by thread from
/proc/<pid>/task: the event loop (`main`), ZeroMQ's I/O thread (`ZMQbg/IO/0`: the peer
sockets) and the other threads (`other`: the disk thread, which appends and fsyncs the log on
the leader, a follower appending inline; trio's worker threads), each as user + system
microseconds per request. What the Python profiles (py-spy `--gil`)
cannot show: system time (fsync, sockets) and the threads that run without the GIL.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from harness.daemons import DaemonCluster

_TICK = os.sysconf("SC_CLK_TCK")


def thread_times(pid: int) -> dict[str, tuple[float, float]]:
    """(user, system) CPU seconds of each thread of `pid`, summed by thread kind."""
    out: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                raw = f.read()
        except FileNotFoundError:
            continue  # the thread ended meanwhile
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw.rpartition(")")[2].split()
        kind = "main" if tid == str(pid) else "zmq" if name.startswith("ZMQbg") else "other"
        out[kind][0] += int(fields[11]) / _TICK
        out[kind][1] += int(fields[12]) / _TICK
    return {k: (v[0], v[1]) for k, v in out.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--requests", type=int, default=60_000)
    parser.add_argument("-c", "--clients", type=int, default=50)
    parser.add_argument("-d", "--size", type=int, default=100)
    parser.add_argument("-P", "--pipeline", type=int, action="append")
    parser.add_argument("-t", "--tests", default="set")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    depths = args.pipeline or [1, 16]
    base = Path(tempfile.mkdtemp(prefix="aspen-bench-cpu-"))
    kinds = ("main", "zmq", "other")
    with DaemonCluster(3, base) as cluster:
        cluster.start_all()
        leader = cluster.wait_leader()
        pids = {i: cluster.procs[i].pid for i in cluster.running()}
        print("| -P | test | requests/s | node | " + " | ".join(
            f"{k} usr/sys" for k in kinds) + " | total us/req |")
        print("|---:|---|---:|---|" + "---:|" * (len(kinds) + 1))
        for _ in range(args.rounds):
            for depth in depths:
                for test in args.tests.split(","):
                    before = {i: thread_times(p) for i, p in pids.items()}
                    out = subprocess.run(
                        ["redis-benchmark", "-h", "127.0.0.1", "-p",
                         str(cluster.resp_port(leader)), "-t", test, "-c", str(args.clients),
                         "-n", str(args.requests), "-P", str(depth), "-d", str(args.size),
                         "-r", "100000", "--csv"],
                        capture_output=True, text=True, timeout=600, check=True,
                    )
                    after = {i: thread_times(p) for i, p in pids.items()}
                    rps = float(out.stdout.splitlines()[1].split(",")[1].strip('"'))
                    for i in sorted(pids, key=lambda n: n != leader):
                        cells, total = [], 0.0
                        for k in kinds:
                            u0, s0 = before[i].get(k, (0.0, 0.0))
                            u1, s1 = after[i].get(k, (0.0, 0.0))
                            u = (u1 - u0) * 1e6 / args.requests
                            s = (s1 - s0) * 1e6 / args.requests
                            total += u + s
                            cells.append(f"{u:.1f}/{s:.1f}")
                        role = "leader" if i == leader else f"follower {i}"
                        print(f"| {depth} | {test.upper()} | {rps:,.0f} | {role} | "
                              + " | ".join(cells) + f" | {total:.1f} |", flush=True)
    print(f"load average {os.getloadavg()[0]:.2f} at end", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
