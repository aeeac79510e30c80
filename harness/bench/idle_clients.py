"""10,000 idle connections: what do they cost the clients that are active?

    python -m harness.bench.idle_clients [--idle 10000] [--requests 50000]

One `aspen node` daemon (standalone, durable). redis-benchmark runs 50 active clients
(SET and GET, no pipelining) twice: alone, and with `--idle` extra connections open and
silent (each said PING once, so the node registered it), then alone again (how much the
machine itself drifted between runs). Printed: requests per second,
p50 and p99 latency of each run, the node's resident memory with and without the idle
connections, and how long opening them took. The bench raises its own fd limit (and so the
node's, which inherits it) with resource.setrlimit. A figure, not a test.
"""

from __future__ import annotations

import argparse
import csv
import io
import resource
import socket
import subprocess
import time
from pathlib import Path

from harness.bench.servers import aspen_node


def _raise_fd_limit(need: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, need))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _benchmark(port: int, requests: int) -> dict[str, dict[str, str]]:
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-c", "50", "-n", str(requests), "-t", "set,get",
         "-r", "100000", "--csv"],
        capture_output=True, text=True, timeout=3600, check=True)
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    return {row["test"]: row for row in rows}


def _show(label: str, result: dict[str, dict[str, str]], rss_kb: int) -> None:
    for test, row in result.items():
        print(f"{label:<22} {test:<4} {float(row['rps']):>9.0f} req/s   "
              f"p50 {row['p50_latency_ms']:>6} ms   p99 {row['p99_latency_ms']:>6} ms   "
              f"node RSS {rss_kb / 1024:.0f} MB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=50_000)
    args = parser.parse_args()
    limit = _raise_fd_limit(args.idle + 1000)
    if limit < args.idle + 200:
        raise SystemExit(f"the fd limit ({limit}) is too low for {args.idle} idle clients")
    config = f"[node]\nmax_clients = {args.idle + 500}\n"
    with aspen_node(config=config) as node:
        time.sleep(0.5)
        _benchmark(node.port, 5000)  # warm-up
        alone = _benchmark(node.port, args.requests)
        _show("50 active", alone, _rss_kb(node.pid))
        idle: list[socket.socket] = []
        started = time.perf_counter()
        try:
            for _ in range(args.idle):
                s = socket.create_connection(("127.0.0.1", node.port))
                s.sendall(b"PING\r\n")
                idle.append(s)
            for s in idle:
                if s.recv(16) != b"+PONG\r\n":
                    raise SystemExit("an idle connection was refused")
            opened = time.perf_counter() - started
            print(f"opened {len(idle)} idle connections in {opened:.1f} s", flush=True)
            crowded = _benchmark(node.port, args.requests)
            _show(f"50 active + {len(idle)} idle", crowded, _rss_kb(node.pid))
        finally:
            for s in idle:
                s.close()
        time.sleep(1)
        again = _benchmark(node.port, args.requests)  # the machine's drift, for comparison
        _show("50 active (again)", again, _rss_kb(node.pid))


if __name__ == "__main__":
    main()
