"""The replicated path: redis-benchmark against the leader of a 3-node cluster of real daemons.

    python -m harness.bench.cluster                      # SET,GET at -P 1 and -P 16
    python -m harness.bench.cluster -n 20000 -P 1 -t set # quicker
    python -m harness.bench.cluster --hold 60            # keep it up 60 s (py-spy the pids)
    python -m harness.bench.cluster --profile /tmp/prof  # py-spy --gil every node per test
    python -m harness.bench.cluster --pin                # the leader alone on CPU 0

Starts `aspen node` x3 (ZeroMQ, sqlite, fsync on; free loopback ports, `harness.daemons`),
waits for a leader, then runs `redis-benchmark -c C -n N -P P -d 100 -r 100000` for each test
and depth against the leader. Prints requests/s, p50/p99 latency (redis-benchmark's own) and
CPU microseconds per request from /proc: the leader's, and all three nodes' together (the
steadier figures on a shared machine), and a follower's (their mean). Also the leader's Raft
counters (ops per entry, fsyncs). Everything is killed at exit.

`--pin`: what a node does with a core of its own. Once the leader is known, every thread of the
leader process is pinned to CPU 0 (sched_setaffinity on each /proc/PID/task entry; threads it
starts later inherit the mask) and every other node and redis-benchmark (`taskset -c 1`) to
CPU 1, so nothing else runs on the leader's core. With `--nodes 1` that is a standalone node
on its own core and the client on the other.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.daemons import DaemonCluster


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raft_info(cluster: DaemonCluster, node: int) -> dict[str, str]:
    with cluster.client(node) as c:
        raw = c.execute_command("INFO", "raft")
    if isinstance(raw, bytes):
        raw = raw.decode()
    if isinstance(raw, dict):
        return {k: str(v) for k, v in raw.items()}
    out = {}
    for line in str(raw).splitlines():
        if ":" in line:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def pin_process(pid: int, cpus: set[int]) -> None:
    """Pin every thread of `pid` to `cpus` (os.sched_setaffinity is per thread)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        os.sched_setaffinity(int(tid), cpus)


def run_one(
    cluster: DaemonCluster, leader: int, test: str, clients: int, requests: int, depth: int,
    size: int, profile_dir: Path | None = None, client_prefix: list[str] | None = None,
) -> dict[str, float]:
    pids = {i: cluster.procs[i].pid for i in cluster.running()}
    before = {i: cpu_seconds(p) for i, p in pids.items()}
    info0 = raft_info(cluster, leader)
    spies = []
    if profile_dir is not None:
        for i, pid in pids.items():
            role = "leader" if i == leader else f"follower{i}"
            dest = profile_dir / f"{test}-P{depth}-{role}.txt"
            spies.append(subprocess.Popen(
                [str(Path(sys.executable).with_name("py-spy")), "record", "-p", str(pid),
                 "-r", "250", "-f", "raw", "--gil", "--nonblocking", "-o", str(dest)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
    out = subprocess.run(
        [*(client_prefix or []), "redis-benchmark", "-h", "127.0.0.1",
         "-p", str(cluster.resp_port(leader)), "-t", test,
         "-c", str(clients), "-n", str(requests), "-P", str(depth), "-d", str(size),
         "-r", "100000", "--csv"],
        capture_output=True, text=True, timeout=600, check=True,
    )
    after = {i: cpu_seconds(p) for i, p in pids.items()}
    for spy in spies:
        spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
    for spy in spies:
        spy.wait(30)
    info1 = raft_info(cluster, leader)
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    if not rows:
        raise RuntimeError(f"no figures from redis-benchmark: {out.stdout!r} {out.stderr!r}")
    row = rows[0]

    def delta(key: str) -> int:
        return int(info1.get(key, 0) or 0) - int(info0.get(key, 0) or 0)

    entries = delta("raft_entries_proposed")
    rounds = delta("raft_read_index_calls")
    return {
        "rps": float(row["rps"]),
        "p50": float(row["p50_latency_ms"]),
        "p99": float(row["p99_latency_ms"]),
        "leader_us": (after[leader] - before[leader]) * 1e6 / requests,
        "all_us": sum(after[i] - before[i] for i in pids) * 1e6 / requests,
        "follower_us": (sum(after[i] - before[i] for i in pids if i != leader) * 1e6 / requests
                        / max(1, len(pids) - 1)),
        "ops_per_entry": delta("raft_ops_proposed") / entries if entries else 0.0,
        "reads_per_round": delta("raft_reads_served") / rounds if rounds else 0.0,
        "fsyncs": delta("raft_fsyncs"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--requests", type=int, default=50_000)
    parser.add_argument("-c", "--clients", type=int, default=50)
    parser.add_argument("-d", "--size", type=int, default=100)
    parser.add_argument("-P", "--pipeline", type=int, action="append")
    parser.add_argument("-t", "--tests", default="set,get")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--tick-ms", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--hold", type=float, default=0.0,
                        help="keep the cluster up this many seconds after printing the pids")
    parser.add_argument("--profile", default=None, metavar="DIR",
                        help="py-spy (--gil, raw) every node during each test into DIR")
    parser.add_argument("--dir", default=None, help="data directory (default: a temp dir)")
    parser.add_argument("--pin", action="store_true",
                        help="leader alone on CPU 0; other nodes and redis-benchmark on CPU 1")
    args = parser.parse_args(argv)
    if args.pin and len(os.sched_getaffinity(0)) < 2:
        parser.error("--pin needs 2 CPUs")
    depths = args.pipeline or [1, 16]
    tests = args.tests.split(",")
    profile_dir = Path(args.profile) if args.profile else None
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
    base = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="aspen-bench-"))
    print(f"load average {os.getloadavg()[0]:.2f} at start", file=sys.stderr)
    with DaemonCluster(args.nodes, base, tick_ms=args.tick_ms) as cluster:
        cluster.start_all()
        leader = cluster.wait_leader()
        pids = {i: cluster.procs[i].pid for i in cluster.running()}
        print(f"leader node {leader}; pids {pids}", file=sys.stderr, flush=True)
        client_prefix: list[str] = []
        if args.pin:
            for i, pid in pids.items():
                pin_process(pid, {0} if i == leader else {1})
            client_prefix = ["taskset", "-c", "1"]
            print("pinned: leader on CPU 0, the rest on CPU 1", file=sys.stderr, flush=True)
        if args.hold:
            print(f"resp port of leader: {cluster.resp_port(leader)}", file=sys.stderr, flush=True)
            time.sleep(args.hold)
        print("| -P | test | requests/s | p50 ms | p99 ms | leader CPU us/req | "
              "a follower's CPU us/req | all nodes CPU us/req | ops/entry | reads/ReadIndex "
              "| fsyncs |")
        print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for _ in range(args.rounds):
            for depth in depths:
                for test in tests:
                    r = run_one(cluster, leader, test, args.clients, args.requests, depth,
                                args.size, profile_dir, client_prefix)
                    print(f"| {depth} | {test.upper()} | {r['rps']:,.0f} | {r['p50']:.2f} | "
                          f"{r['p99']:.2f} | {r['leader_us']:.1f} | {r['follower_us']:.1f} | "
                          f"{r['all_us']:.1f} | "
                          f"{r['ops_per_entry']:.1f} | {r['reads_per_round']:.1f} | "
                          f"{r['fsyncs']} |", flush=True)
    print(f"load average {os.getloadavg()[0]:.2f} at end", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
