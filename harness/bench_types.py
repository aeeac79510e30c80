"""Data-type figures on one node: in-process ops/s, a 1M-member sorted set, redis-benchmark.

    python -m harness.bench_types                  # everything (a few minutes)
    python -m harness.bench_types --skip-wire      # in-process only
    python -m harness.bench_types --zset-size 100000

1. In-process: `Keyspace.execute` for a few commands per type (no parsing, no network), as
   ops/s (best of 3 short runs).
2. Sorted-set scaling: ZADD of N members one command at a time, then ZRANK, ZSCORE, ZRANGE of
   10 at random ranks, ZRANGEBYSCORE ... LIMIT 0 10 and ZADD of an existing member at N=10k
   and N (default 1M): per-op microseconds that barely move with N are the logarithmic part.
3. Wire: `redis-benchmark -t lpush,lpop,sadd,hset,zadd,lrange_100 -P 16` against an
   `aspen node` and redis-server (no persistence) on free loopback ports.
Figures are noisy on a shared machine: run twice.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable

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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("-n", type=int, default=50000, help="ops per in-process case")
    p.add_argument("--zset-size", type=int, default=1_000_000)
    p.add_argument("--requests", type=int, default=100000, help="redis-benchmark -n")
    p.add_argument("--pipeline", type=int, default=16)
    p.add_argument("--skip-wire", action="store_true")
    args = p.parse_args(argv)

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
    return 0


if __name__ == "__main__":
    sys.exit(main())
