"""What an open web console costs the cluster: SET throughput with and without one.

    python -m harness.bench.console                    # 5 interleaved rounds, -c 50 -P 16
    python -m harness.bench.console --rounds 3 -n 50000 --modes off,sse

A 3-node daemon cluster (as harness.bench.cluster starts it); each round runs
`redis-benchmark -t set -c 50 -P 16` against the leader once per mode, in an order that
alternates between rounds (a shared machine drifts; interleaving spreads the drift):

    off      nobody watches (each node's 1 Hz sampler still runs: it always does)
    sse      one reader of the leader's /console/stream (what the page's fetch() does)
    browser  headless Chromium showing the leader's page (its own drawing competes for
             the same CPUs on this machine, which a remote operator's browser would not)

The page is served by the leader, the worst place: it also polls the two followers.
Prints requests/s and cluster CPU per request for every run, then the median per mode.
First, with no load (`--idle S`, 0 to skip), each node's CPU milliseconds per second with
and without a stream open, interleaved: the console's own cost, free of the benchmark's noise.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from harness.bench.cluster import cpu_seconds, run_one
from harness.browser import CHROMIUM_FLAGS, chromium_path
from harness.daemons import DaemonCluster


@contextlib.contextmanager
def watching(mode: str, http: str) -> Iterator[None]:
    if mode == "off":
        yield
        return
    if mode == "sse":
        stop = threading.Event()
        events = [0]

        def read() -> None:
            with urllib.request.urlopen(f"http://{http}/console/stream", timeout=30) as r:
                while not stop.is_set():
                    line = r.readline()
                    if not line:
                        return
                    events[0] += line.startswith(b"event:")

        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(5)
            if events[0] == 0:
                raise RuntimeError("the console stream sent nothing")
        return
    exe = chromium_path()
    if exe is None:
        raise SystemExit("chromium is not installed")
    with tempfile.TemporaryDirectory(prefix="aspen-chromium-",
                                     ignore_cleanup_errors=True) as profile:
        flags = [f for f in CHROMIUM_FLAGS if not f.startswith("--remote-debugging")]
        proc = subprocess.Popen([exe, *flags, f"--user-data-dir={profile}",
                                 f"http://{http}/ui"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            yield
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def idle_cost(c: DaemonCluster, leader: int, seconds: float, rounds: int = 2) -> None:
    pids = {i: c.procs[i].pid for i in c.running()}
    for r in range(rounds):
        for mode in ("off", "sse") if r % 2 == 0 else ("sse", "off"):
            with watching(mode, c.http(leader)):
                time.sleep(1.5)
                before = {i: cpu_seconds(p) for i, p in pids.items()}
                time.sleep(seconds)
                after = {i: cpu_seconds(p) for i, p in pids.items()}
            cost = "  ".join(f"node {i}{'*' if i == leader else ''} "
                             f"{(after[i] - before[i]) * 1000 / seconds:5.1f}" for i in pids)
            print(f"idle {mode:4s} CPU ms/s: {cost}   (* serves the page)", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--requests", type=int, default=100_000)
    parser.add_argument("-c", "--clients", type=int, default=50)
    parser.add_argument("-P", "--pipeline", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--modes", default="off,sse,browser")
    parser.add_argument("--idle", type=float, default=10.0,
                        help="seconds per idle CPU measurement (0: skip)")
    parser.add_argument("--settle", type=float, default=3.0,
                        help="seconds between opening the console and the run")
    args = parser.parse_args(argv)
    modes = args.modes.split(",")
    results: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    print(f"load average {os.getloadavg()[0]:.2f} at start", file=sys.stderr)
    with DaemonCluster(3, Path(tempfile.mkdtemp(prefix="aspen-bench-")), tick_ms=100) as c:
        c.start_all()
        leader = c.wait_leader()
        if args.idle > 0:
            idle_cost(c, leader, args.idle)
        for r in range(args.rounds):
            order = modes if r % 2 == 0 else modes[::-1]
            for mode in order:
                try:
                    with watching(mode, c.http(leader)):
                        time.sleep(args.settle)
                        res = run_one(c, leader, "set", args.clients, args.requests,
                                      args.pipeline, 100)
                except subprocess.CalledProcessError:
                    res = None
                if res is None or c.leader() != leader:
                    # An election under load (the machine is shared): drop this run.
                    leader = c.wait_leader()
                    print(f"round {r + 1} {mode:8s} dropped: leadership moved (now node "
                          f"{leader})", flush=True)
                    continue
                results[mode].append(res)
                print(f"round {r + 1} {mode:8s} {res['rps']:9.0f} SET/s  p50 {res['p50']:.2f}"
                      f" ms  cluster {res['all_us']:.1f} us/op  load "
                      f"{os.getloadavg()[0]:.2f}", flush=True)
    print("median over rounds:")
    for mode, runs in results.items():
        if not runs:
            continue
        print(f"  {mode:8s} {statistics.median(x['rps'] for x in runs):9.0f} SET/s  "
              f"cluster {statistics.median(x['all_us'] for x in runs):.1f} us/op  "
              f"(SET/s range {min(x['rps'] for x in runs):.0f}-"
              f"{max(x['rps'] for x in runs):.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
