"""Failover time: kill -9 the leader of 3 real daemons under write load -> first successful write.

    python -m harness.bench.failover [--trials 10] [--tick-ms N --election-ticks N]
                                     [--soak SECONDS]

The cluster runs with the DEFAULT [raft] timings unless overridden. Each trial: background
writers (one thread per node, SET in a loop, errors ignored) keep the cluster busy; the leader
is SIGKILLed; a probe thread per surviving node sends SETs on fresh connections (each started
after the kill) until one succeeds. The figure is kill -> end of the first successful write
started after the kill, on any survivor. The dead node is restarted between trials.

`--soak S` instead counts elections during S seconds of `redis-benchmark -P 16` load (no
kill), printing each with the snapshots taken around it: spurious elections show up there.
A benchmark that prints figures, never pass/fail.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import redis

from aspen.node_config import RaftSettings
from harness.daemons import DaemonCluster


def _writer(cluster: DaemonCluster, node: int, stop: threading.Event) -> None:
    n = 0
    while not stop.is_set():
        try:
            with cluster.client(node, socket_timeout=2) as c:
                while not stop.is_set():
                    c.set(f"load:{node}:{n % 1000}", "x" * 10)
                    n += 1
        except (redis.RedisError, OSError):
            time.sleep(0.01)


def _probe(cluster: DaemonCluster, node: int, killed_at: float, out: list[float],
           stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            with cluster.client(node, socket_timeout=3, socket_connect_timeout=1) as c:
                c.set("probe", str(node))
            out.append(time.monotonic() - killed_at)
            stop.set()
            return
        except (redis.RedisError, OSError):
            time.sleep(0.005)


def one_trial(cluster: DaemonCluster) -> tuple[float, int, int]:
    leader = cluster.wait_leader(timeout=30)
    stop_load = threading.Event()
    writers = [threading.Thread(target=_writer, args=(cluster, i, stop_load), daemon=True)
               for i in cluster.voters]
    for t in writers:
        t.start()
    time.sleep(1.0)  # load established
    survivors = [i for i in cluster.voters if i != leader]
    killed_at = time.monotonic()
    cluster.kill(leader)
    done = threading.Event()
    results: list[float] = []
    probes = [threading.Thread(target=_probe, args=(cluster, i, killed_at, results, done),
                               daemon=True) for i in survivors]
    for t in probes:
        t.start()
    done.wait(30)
    stop_load.set()
    for t in probes + writers:
        t.join(5)
    new_leader = cluster.wait_leader(among=survivors, timeout=30)
    cluster.start(leader)
    return (min(results) if results else float("inf")), leader, new_leader


def soak(cluster: DaemonCluster, seconds: float) -> None:
    """Count elections (term changes) under -P 16 load; print each with the snapshots taken."""
    leader = cluster.wait_leader(timeout=30)
    term0 = cluster.status(leader)["term"]
    procs = [subprocess.Popen(
        ["redis-benchmark", "-p", str(cluster.resp_port(i)), "-t", "set", "-P", "16",
         "-c", "20", "-n", "100000000", "-r", "100000", "-q"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in cluster.voters]
    start = time.monotonic()
    term, snaps, elections = term0, {i: 0 for i in cluster.voters}, 0
    try:
        while time.monotonic() - start < seconds:
            time.sleep(0.5)
            for i in cluster.voters:
                try:
                    st = cluster.status(i, timeout=2)
                except Exception:
                    continue
                if st["snapshot_index"] != snaps[i]:
                    snaps[i] = st["snapshot_index"]
                    print(f"  t={time.monotonic() - start:6.1f}s node {i} snapshot at "
                          f"{snaps[i]}", flush=True)
                if st["term"] > term:
                    elections += st["term"] - term
                    term = st["term"]
                    print(f"  t={time.monotonic() - start:6.1f}s term {term} (node {i}: "
                          f"{st['role']}, leader {st['leader']})", flush=True)
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
    print(f"soak {seconds:.0f}s of -P16 load on all nodes: {elections} election(s) "
          f"(term {term0} -> {term}), load average {os.getloadavg()}")


def main() -> None:
    defaults = RaftSettings()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--tick-ms", type=int, default=defaults.tick_ms)
    ap.add_argument("--election-ticks", type=int, default=defaults.election_ticks)
    ap.add_argument("--heartbeat-ticks", type=int, default=defaults.heartbeat_ticks)
    ap.add_argument("--soak", type=float, default=0.0)
    ap.add_argument("--snapshot-entries", type=int, default=defaults.snapshot_entries,
                    help="snapshot threshold (lower it to see snapshot stalls in a soak)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="aspen-failover-") as tmp, DaemonCluster(
        3, Path(tmp), tick_ms=args.tick_ms, election_ticks=args.election_ticks,
        raft={"heartbeat_ticks": args.heartbeat_ticks,
              "snapshot_entries": args.snapshot_entries},
    ) as cluster:
        cluster.start_all()
        print(f"tick_ms={args.tick_ms} election_ticks={args.election_ticks} "
              f"heartbeat_ticks={args.heartbeat_ticks}", flush=True)
        if args.soak:
            soak(cluster, args.soak)
            return
        times = []
        for n in range(args.trials):
            t, old, new = one_trial(cluster)
            times.append(t)
            print(f"trial {n + 1}: killed {old}, new leader {new}, first write after "
                  f"{t * 1000:.0f} ms  (load {os.getloadavg()[0]:.1f})", flush=True)
        times.sort()
        p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
        print(f"failover over {len(times)} trials: p50 {statistics.median(times) * 1000:.0f} ms,"
              f" p99 {p99 * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
