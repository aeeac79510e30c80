"""Single-node RESP figures: redis-benchmark against one Aspen node and against redis-server.

    python -m harness.bench.resp                 # the table for docs/benchmarks.md
    python -m harness.bench.resp -n 20000 -P 1   # quicker

Runs `redis-benchmark -t set,get -c 50 -n N -P P` for each pipeline depth against, in the same
run and on free loopback ports: an `aspen node`, redis-server without persistence, and
redis-server with `appendonly yes, appendfsync always` (one fsync per event-loop pass: the
durability the Raft log will eventually buy). Prints a Markdown table with requests/s, median
latency and the server's CPU time per request. Figures are noisy on a shared machine: the CPU
time per request is the steadier one; run twice and keep both if they differ.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator

from harness.bench.servers import ServerProcess, aspen_node, redis_server

Target = tuple[str, Callable[[], contextlib.AbstractContextManager[ServerProcess]]]

TARGETS: dict[str, Target] = {
    "aspen": ("aspen node", lambda: aspen_node()),
    "redis": ("redis-server (no persistence)", lambda: redis_server()),
    "redis-fsync": (
        "redis-server (appendfsync always)",
        lambda: redis_server("--appendonly", "yes", "--appendfsync", "always"),
    ),
}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_benchmark(
    server: ServerProcess, test: str, clients: int, requests: int, pipeline: int
) -> tuple[float, float, float]:
    """(requests per second, p50 latency ms, server CPU microseconds per request) for one test.

    CPU per request is the steadier figure on a shared machine: other processes stretch the
    wall clock far more than they inflate the server's own CPU time.
    """
    before = cpu_seconds(server.pid)
    out = subprocess.run(
        ["redis-benchmark", "-h", "127.0.0.1", "-p", str(server.port), "-t", test,
         "-c", str(clients), "-n", str(requests), "-P", str(pipeline), "--csv"],
        capture_output=True, text=True, timeout=600, check=True,
    )
    cpu_us = (cpu_seconds(server.pid) - before) * 1e6 / requests
    for row in csv.DictReader(io.StringIO(out.stdout)):
        return float(row["rps"]), float(row["p50_latency_ms"]), cpu_us
    raise RuntimeError(f"no figures from redis-benchmark: {out.stdout!r} {out.stderr!r}")


@contextlib.contextmanager
def started(name: str) -> Iterator[ServerProcess]:
    _, factory = TARGETS[name]
    with factory() as server:
        yield server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--requests", type=int, default=100_000)
    parser.add_argument("-c", "--clients", type=int, default=50)
    parser.add_argument("-P", "--pipeline", type=int, action="append",
                        help="pipeline depth (repeatable; default 1 and 16)")
    parser.add_argument("-t", "--tests", default="set,get")
    parser.add_argument("--targets", default="aspen,redis,redis-fsync",
                        help=f"comma-separated, from {', '.join(TARGETS)}")
    args = parser.parse_args(argv)
    if shutil.which("redis-benchmark") is None:
        print("redis-benchmark is missing (apt-get install redis-tools)", file=sys.stderr)
        return 1
    pipelines = args.pipeline or [1, 16]
    tests = [t.upper() for t in args.tests.split(",")]
    rows: list[tuple[str, int, str, float, float, float]] = []
    for name in args.targets.split(","):
        label = TARGETS[name][0]
        with started(name) as server:
            for depth in pipelines:
                for test in tests:
                    rps, p50, cpu_us = run_benchmark(
                        server, test.lower(), args.clients, args.requests, depth
                    )
                    rows.append((label, depth, test, rps, p50, cpu_us))
                    print(f"{label:36} -P {depth:<3} {test:4} {rps:>10,.0f} req/s  "
                          f"p50 {p50:.3f} ms  {cpu_us:6.1f} us CPU/req", file=sys.stderr,
                          flush=True)
    print()
    print(f"`redis-benchmark -t {args.tests} -c {args.clients} -n {args.requests} -P <P>`, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}:")
    print()
    print("| server | -P | test | requests/s | p50 ms | server CPU us/request |")
    print("|---|---:|---|---:|---:|---:|")
    for label, depth, test, rps, p50, cpu_us in rows:
        print(f"| {label} | {depth} | {test} | {rps:,.0f} | {p50:.3f} | {cpu_us:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
