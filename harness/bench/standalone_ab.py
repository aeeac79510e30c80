"""A standalone node's CPU per request, two source trees interleaved (before/after a change).

    python -m harness.bench.standalone_ab --tree before=/tmp/x --tree after=. \\
        -t set,get -P 1 -P 16 --rounds 3

Each round starts one `aspen node --port P --dir D` (a Raft group of one: sqlite, fsync on)
per tree, in turn (the order alternates between rounds), runs redis-benchmark against it for
every test and depth, and reads the node's CPU from /proc around each run: the whole process
(user + system, every thread) and its main thread (the event loop) alone; `--redis` adds a
durable redis-server (appendfsync always) to every round, the target 20.3 compares with. On a
shared machine requests/s move with the neighbours' load; CPU per request is the steadier
figure, and its spread over rounds is printed with the median. INFO's `aspen_build` of each
node is printed too: a stale compiled build silently runs pure Python.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.bench.procs import env_with_path, kill_group, redis_argv, start_server
from harness.bench.rb import argv_for, parse_csv
from harness.daemons import free_ports
from harness.resp_wire import RespClient

_TCK = os.sysconf("SC_CLK_TCK")


def _ticks(path: str) -> float:
    with open(path) as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TCK


def cpu(pid: int) -> tuple[float, float]:
    """(process, main thread) CPU seconds so far."""
    return _ticks(f"/proc/{pid}/stat"), _ticks(f"/proc/{pid}/task/{pid}/stat")


def _build_of(port: int) -> str:
    client = RespClient(port)
    try:
        info = client.call([b"INFO", b"server"])
    finally:
        client.close()
    text = info.decode() if isinstance(info, bytes) else str(info)
    for line in text.splitlines():
        if line.startswith("aspen_build:"):
            return line.split(":", 1)[1].strip()
    return "?"


def _wait_writable(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            client = RespClient(port)
            try:
                if client.call([b"SET", b"ab:probe", b"1"]) in (b"OK", "OK"):
                    return
            finally:
                client.close()
        except (OSError, ConnectionError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"node on port {port} took no write in {timeout} s")
        time.sleep(0.1)


Figures = dict[tuple[str, int], tuple[float, float, float, float, float]]


def run_tree(label: str, root: Path | None, base: Path, tests: list[str], depths: list[int],
             args: argparse.Namespace) -> Figures:
    """One node of `root` (None: a durable redis-server, appendfsync always): {(test, depth):
    (req/s, process us/req, main thread us/req, p99 ms, max ms)}."""
    (port,) = free_ports(1)
    wd = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=base))
    if root is None:
        argv = redis_argv(port, wd, durable=True)
        env = None
    else:
        argv = [sys.executable, "-m", "aspen.cli", "node", "--port", str(port),
                "--dir", str(wd / "data")]
        env = env_with_path(root=root)
    server = start_server(label, argv, port, wd, env=env)
    out: Figures = {}
    try:
        _wait_writable(port)
        build = _build_of(port) if root is not None else "redis"
        extra = ["-r", str(args.keyspace)] if args.keyspace else []
        for test in tests:
            for depth in depths:
                warm = argv_for(port, test, args.clients, args.warmup, depth, args.size, extra)
                subprocess.run(warm, capture_output=True, check=True, timeout=300)
                n = args.requests * (args.p16_factor if depth > 1 else 1)
                p0, m0 = cpu(server.pid)
                run = subprocess.run(argv_for(port, test, args.clients, n, depth, args.size,
                                              extra),
                                     capture_output=True, text=True, check=True, timeout=600)
                p1, m1 = cpu(server.pid)
                res = parse_csv(run.stdout)[0]
                rps = res.rps
                p99 = res.p99_ms if res.p99_ms is not None else math.nan
                top = res.max_ms if res.max_ms is not None else math.nan
                out[test, depth] = (rps, (p1 - p0) / n * 1e6, (m1 - m0) / n * 1e6, p99, top)
                print(f"  {label:>8} {build:>10} {test.upper():>4} -P {depth:<2} "
                      f"{rps:>9,.0f} req/s  process {out[test, depth][1]:5.1f} us/req  "
                      f"main {out[test, depth][2]:5.1f}  p99 {p99:.2f} ms  max {top:.1f} ms  "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)
    finally:
        kill_group(server.proc)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", action="append", required=True,
                        help="label=path of a source tree (two or more, run in turn)")
    parser.add_argument("-t", "--tests", default="set")
    parser.add_argument("-P", "--pipeline", type=int, action="append")
    parser.add_argument("-n", "--requests", type=int, default=200_000)
    parser.add_argument("--p16-factor", type=int, default=2,
                        help="requests multiplier for pipelined runs (they are quicker)")
    parser.add_argument("-c", "--clients", type=int, default=50)
    parser.add_argument("-d", "--size", type=int, default=100)
    parser.add_argument("-r", "--keyspace", type=int, default=0)
    parser.add_argument("--warmup", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis", action="store_true",
                        help="also a durable redis-server (appendfsync always) in every round")
    args = parser.parse_args(argv)
    trees: list[tuple[str, Path | None]] = [
        (spec.partition("=")[0], Path(spec.partition("=")[2]).resolve()) for spec in args.tree]
    if args.redis:
        trees.append(("redis", None))
    tests = args.tests.split(",")
    depths = args.pipeline or [1]
    base = Path(tempfile.mkdtemp(prefix="aspen-ab-"))
    results: dict[str, list[Figures]] = {label: [] for label, _ in trees}
    try:
        for r in range(args.rounds):
            order = trees if r % 2 == 0 else trees[::-1]
            print(f"round {r + 1} ({time.strftime('%H:%M:%S', time.gmtime())} UTC, "
                  f"load {' '.join(f'{x:.1f}' for x in os.getloadavg())})", flush=True)
            for label, root in order:
                results[label].append(run_tree(label, root, base, tests, depths, args))
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=False)
    print("\nmedian [min-max] over rounds")
    print(f"{'tree':>8} {'test':>4} {'-P':>3} {'req/s':>24} {'process us/req':>22} "
          f"{'main us/req':>22} {'p99 ms':>20} {'max ms':>20}")
    for test in tests:
        for depth in depths:
            for label, _ in trees:
                rows = [res[test, depth] for res in results[label]]
                cols = []
                for i, fmt in ((0, ",.0f"), (1, ".1f"), (2, ".1f"), (3, ".2f"), (4, ".1f")):
                    xs = [row[i] for row in rows]
                    cols.append(f"{statistics.median(xs):{fmt}} [{min(xs):{fmt}}-{max(xs):{fmt}}]")
                print(f"{label:>8} {test.upper():>4} {depth:>3} {cols[0]:>24} {cols[1]:>22} "
                      f"{cols[2]:>22} {cols[3]:>20} {cols[4]:>20}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
