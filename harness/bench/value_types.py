"""Data-type figures: in-process ops/s, a 1M-member sorted set, and per-type throughput over
the wire on one node and on a 3-node cluster of real daemons.

    python -m harness.bench.value_types                  # everything but --daemons (a few minutes)
    python -m harness.bench.value_types --skip-wire      # in-process only
    python -m harness.bench.value_types --zset-size 100000
    python -m harness.bench.value_types --daemons-only   # one node vs 3 daemons, per type

1. In-process: `Keyspace.execute` for a few commands per type (no parsing, no network), as
   ops/s (best of 3 short runs).
2. Sorted-set scaling: ZADD of N members one command at a time, then ZRANK, ZSCORE, ZRANGE of
   10 at random ranks, ZRANGEBYSCORE ... LIMIT 0 10 and ZADD of an existing member at N=10k
   and N (default 1M): per-op microseconds that barely move with N are the logarithmic part.
3. Wire: `redis-benchmark -t lpush,lpop,sadd,hset,zadd,lrange_100 -P 16` against an
   `aspen node` and redis-server (no persistence) on free loopback ports.
4. Daemons (`--daemons`): one redis-benchmark run per command (writes and reads of every type)
   against a standalone `aspen node` and against the leader and a follower of a 3-node
   cluster of `aspen node` daemons (`harness.daemons`: ZeroMQ, sqlite, fsync on every batch;
   the standalone node is a durable one-node group, fsync on too). Besides requests/s it
   prints the CPU time all the server processes spent per request (from /proc), which is
   steadier than throughput on a shared machine.
Figures are noisy on a shared machine: run twice.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from aspen.kv.commands import Route, lookup
from aspen.kv.keyspace import Keyspace
from aspen.kv.ops import ReadOp, WriteOp

Argv = list[bytes]


def _op(argv: Argv) -> ReadOp | WriteOp:
    spec = lookup(argv[0])
    assert spec is not None
    return WriteOp(argv) if spec.route is Route.WRITE else ReadOp(argv)


def _rate(ks: Keyspace, make: Callable[[int], Argv], n: int) -> float:
    ops = [_op(make(i)) for i in range(n)]
    execute = ks.execute
    start = time.perf_counter()
    for i, op in enumerate(ops):
        execute(op, 0, i)
    return n / (time.perf_counter() - start)


def in_process(n: int) -> list[tuple[str, float]]:
    rows: list[tuple[str, float]] = []
    cases: list[tuple[str, Callable[[int], Argv]]] = [
        ("HSET h f<i> v", lambda i: [b"hset", b"h", b"f%d" % (i % 1000), b"v"]),
        ("HGET h f<i>", lambda i: [b"hget", b"h", b"f%d" % (i % 1000)]),
        ("HINCRBY h c 1", lambda i: [b"hincrby", b"h", b"c", b"1"]),
        ("LPUSH l v", lambda i: [b"lpush", b"l", b"v"]),
        ("LRANGE l 0 9", lambda i: [b"lrange", b"l", b"0", b"9"]),
        ("LPOP l", lambda i: [b"lpop", b"l"]),
        ("SADD s m<i>", lambda i: [b"sadd", b"s", b"m%d" % i]),
        ("SISMEMBER s m<i>", lambda i: [b"sismember", b"s", b"m%d" % i]),
        ("SPOP s", lambda i: [b"spop", b"s"]),
        ("ZADD z <i> m<i>", lambda i: [b"zadd", b"z", b"%d" % i, b"m%d" % i]),
        ("ZSCORE z m<i>", lambda i: [b"zscore", b"z", b"m%d" % i]),
        ("ZRANK z m<i>", lambda i: [b"zrank", b"z", b"m%d" % i]),
        ("ZRANGE z 0 9 WITHSCORES", lambda i: [b"zrange", b"z", b"0", b"9", b"withscores"]),
        ("ZPOPMIN z", lambda i: [b"zpopmin", b"z"]),
    ]
    ks = Keyspace()
    for name, make in cases:
        best = 0.0
        for _ in range(3):
            best = max(best, _rate(ks, make, n))
        rows.append((name, best))
    return rows


def _probes(ks: Keyspace, size: int, r: random.Random, probes: int) -> dict[str, float]:
    """Microseconds per op of the read and update commands on a filled sorted set."""
    fig: dict[str, float] = {}
    execute = ks.execute
    members = [b"m%d" % r.randrange(size) for _ in range(probes)]
    ranks = [b"%d" % r.randrange(size - 10) for _ in range(probes)]
    cases: list[tuple[str, Callable[[int], ReadOp | WriteOp]]] = [
        ("ZSCORE", lambda i: ReadOp([b"zscore", b"z", members[i]])),
        ("ZRANK", lambda i: ReadOp([b"zrank", b"z", members[i]])),
        (
            "ZRANGE r r+9",
            lambda i: ReadOp([b"zrange", b"z", ranks[i], b"%d" % (int(ranks[i]) + 9)]),
        ),
        (
            "ZRANGEBYSCORE s +inf LIMIT 0 10",
            lambda i: ReadOp(
                [b"zrangebyscore", b"z", ranks[i] + b"00", b"+inf", b"limit", b"0", b"10"]
            ),
        ),
        (
            "ZADD (existing, new score)",
            lambda i: WriteOp([b"zadd", b"z", ranks[i], members[i]]),
        ),
    ]
    for name, make in cases:
        ops = [make(i) for i in range(probes)]
        start = time.perf_counter()
        for i, op in enumerate(ops):
            execute(op, 0, i)
        fig[name] = (time.perf_counter() - start) / probes * 1e6
    return fig


def zset_scaling(sizes: list[int], probes: int = 20000) -> list[tuple[int, dict[str, float]]]:
    out: list[tuple[int, dict[str, float]]] = []
    r = random.Random(1)
    for size in sizes:
        ks = Keyspace()
        fig: dict[str, float] = {}
        execute = ks.execute
        start = time.perf_counter()
        for i in range(size):
            score = r.randrange(10**9)
            execute(WriteOp([b"zadd", b"z", b"%d" % score, b"m%d" % i]), 0, i)
        fig["ZADD (new member)"] = (time.perf_counter() - start) / size * 1e6
        fig.update(_probes(ks, size, r, probes))
        out.append((size, fig))
    return out


def wire(requests: int, pipeline: int) -> list[tuple[str, str, float]]:
    from harness.bench.servers import aspen_node, redis_server

    tests = "lpush,lpop,sadd,hset,zadd,lrange_100"
    rows: list[tuple[str, str, float]] = []
    for label, start in (("aspen node", aspen_node), ("redis-server", redis_server)):
        with start() as server:
            out = subprocess.run(
                ["redis-benchmark", "-h", "127.0.0.1", "-p", str(server.port), "-t", tests,
                 "-c", "50", "-n", str(requests), "-P", str(pipeline), "--csv"],
                capture_output=True, text=True, timeout=600, check=False,
            )  # fmt: skip
            for row in csv.DictReader(io.StringIO(out.stdout)):
                rows.append((label, row["test"], float(row["rps"])))
    return rows


# One redis-benchmark run each, in this order (writes fill the keys the reads then use).
# Keys and fields are redis-benchmark's own ("myhash", "element:__rand_int__", ...).
DAEMON_TESTS: list[tuple[str, list[str]]] = [
    ("HSET", ["-t", "hset"]),
    ("HGET", ["HGET", "myhash", "element:__rand_int__"]),
    ("SADD", ["-t", "sadd"]),
    ("SISMEMBER", ["SISMEMBER", "myset", "element:__rand_int__"]),
    ("SPOP", ["-t", "spop"]),
    ("ZADD", ["-t", "zadd"]),
    ("ZSCORE", ["ZSCORE", "myzset", "element:__rand_int__"]),
    ("ZRANGE 0 9 WITHSCORES", ["ZRANGE", "myzset", "0", "9", "WITHSCORES"]),
    ("ZPOPMIN", ["-t", "zpopmin"]),
    ("LPUSH", ["-t", "lpush"]),
    ("LRANGE 0 99", ["LRANGE", "mylist", "0", "99"]),
    ("LPOP", ["-t", "lpop"]),
]


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of the processes (all their threads) so far."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def _benchmark(
    port: int, pids: list[int], args: list[str], requests: int, pipeline: int, clients: int
) -> tuple[float, float]:
    """(requests/s, server CPU microseconds per request) of one redis-benchmark run."""
    before = _cpu_seconds(pids)
    out = subprocess.run(
        ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", str(clients),
         "-n", str(requests), "-P", str(pipeline), "-r", "100000", "--csv", *args],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    cpu = _cpu_seconds(pids) - before
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    if len(rows) != 1:
        raise RuntimeError(f"redis-benchmark {args}: {out.stdout!r} {out.stderr!r}")
    return float(rows[0]["rps"]), cpu / requests * 1e6


@contextlib.contextmanager
def _targets() -> Iterator[list[tuple[str, int, list[int]]]]:
    """(label, RESP port, server pids to account) for a standalone node and a 3-node cluster."""
    from harness.bench.servers import aspen_node
    from harness.daemons import DaemonCluster

    with (
        aspen_node() as node,
        tempfile.TemporaryDirectory(prefix="aspen-bench-types-") as tmp,
        DaemonCluster(3, Path(tmp)) as cluster,
    ):
        cluster.start_all()
        leader = cluster.wait_leader()
        follower = next(i for i in cluster.voters if i != leader)
        pids = [cluster.procs[i].pid for i in cluster.voters]
        yield [
            ("1 node", node.port, [node.pid]),
            ("3 nodes: leader", cluster.resp_port(leader), pids),
            ("3 nodes: follower", cluster.resp_port(follower), pids),
        ]


def daemons(requests: int, pipeline: int, clients: int, rounds: int) -> None:
    """Print one table: per command, requests/s and CPU us/request on each target.

    Targets are interleaved per command (and the best of `rounds` kept), so a load spike on
    the shared machine hits all of them rather than one.
    """
    with _targets() as targets:
        print(f"\n## Daemons: redis-benchmark -c {clients} -P {pipeline} -n {requests} -r 100000")
        print("requests/s (server CPU microseconds per request, all server processes)\n")
        print("| command | " + " | ".join(t[0] for t in targets) + " |")
        print("|---|" + "---:|" * len(targets))
        for name, args in DAEMON_TESTS:
            best: dict[str, tuple[float, float]] = {}
            for _ in range(rounds):
                for label, port, pids in targets:
                    rps, cpu = _benchmark(port, pids, args, requests, pipeline, clients)
                    if label not in best or rps > best[label][0]:
                        best[label] = (rps, cpu)
            cells = [f"{best[t[0]][0]:,.0f} ({best[t[0]][1]:,.0f})" for t in targets]
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
        print(f"\nload average after: {os.getloadavg()}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("-n", type=int, default=50000, help="ops per in-process case")
    p.add_argument("--zset-size", type=int, default=1_000_000)
    p.add_argument("--requests", type=int, default=100000, help="redis-benchmark -n")
    p.add_argument("--pipeline", type=int, default=16)
    p.add_argument("--skip-wire", action="store_true")
    p.add_argument("--daemons", action="store_true", help="also: 1 node vs 3 daemons per type")
    p.add_argument("--daemons-only", action="store_true", help="only the daemon figures")
    p.add_argument("--clients", type=int, default=50, help="redis-benchmark -c (daemons)")
    p.add_argument("--rounds", type=int, default=1, help="daemon runs per target (best kept)")
    args = p.parse_args(argv)
    print(f"load average before: {os.getloadavg()}")
    if args.daemons_only:
        daemons(args.requests, args.pipeline, args.clients, args.rounds)
        return 0

    print("## In-process (Keyspace.execute), ops/s, best of 3\n")
    print("| command | ops/s |\n|---|---:|")
    for name, rate in in_process(args.n):
        print(f"| `{name}` | {rate:,.0f} |")

    print("\n## Sorted set scaling, microseconds per op\n")
    results = zset_scaling([10_000, args.zset_size])
    names = list(results[0][1])
    print("| members | " + " | ".join(names) + " |")
    print("|---:|" + "---:|" * len(names))
    for size, fig in results:
        print(f"| {size:,} | " + " | ".join(f"{fig[n]:.1f}" for n in names) + " |")

    if not args.skip_wire:
        if shutil.which("redis-benchmark") is None:
            print("redis-benchmark is missing", file=sys.stderr)
            return 1
        print(f"\n## redis-benchmark -c 50 -P {args.pipeline} -n {args.requests}, requests/s\n")
        rows = wire(args.requests, args.pipeline)
        tests = list(dict.fromkeys(t for _, t, _ in rows))
        labels = list(dict.fromkeys(label for label, _, _ in rows))
        table = {(label, t): rps for label, t, rps in rows}
        print("| test | " + " | ".join(labels) + " |")
        print("|---|" + "---:|" * len(labels))
        for t in tests:
            cells = [f"{table.get((label, t), 0):,.0f}" for label in labels]
            print(f"| {t} | " + " | ".join(cells) + " |")
    if args.daemons:
        daemons(args.requests, args.pipeline, args.clients, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
