"""SETs/s through a 3-node in-process cluster with many concurrent clients (real clock).

    python -m harness.bench.cluster_inproc [--clients 200] [--seconds 5] [--storage sqlite]
    python -m harness.bench.cluster_inproc --transport zmq --redis-benchmark --clients 50

Nodes are the production `ClusterNode`s on the memory transport (or --transport zmq on
loopback), clients call the node's connection handler (no RESP sockets): this measures the
runtime itself — batching, Raft, apply — plus storage. All three nodes share ONE process
(one CPU): every op is applied three times on that CPU. Clients
talk to all three nodes (two thirds of the writes are forwarded by followers). A figure, not a
test: the machine is shared, so expect noise.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import trio

from aspen.resp.values import OK
from harness.cluster import InProcessCluster, open_cluster


async def _redis_benchmark(cluster: InProcessCluster, args: argparse.Namespace) -> None:
    """Real RESP: redis-benchmark (a separate process) against every node's RESP server."""
    leader = await cluster.wait_leader()
    for node in cluster.running():
        port = await cluster.serve_resp(node.id)
        role = "leader" if node.id == leader.id else "follower"
        result = await trio.run_process(
            [
                "redis-benchmark",
                "-p",
                str(port),
                "-t",
                "set",
                "-c",
                str(args.clients),
                "-n",
                str(args.requests),
                "-d",
                str(args.value_size),
                "-q",
            ],
            capture_stdout=True,
            capture_stderr=True,
        )
        out = result.stdout.decode().strip().splitlines()
        print(f"  redis-benchmark via node {node.id} ({role}): {out[-1].strip() if out else '?'}")
    print(
        f"  ops/entry mean {leader.stats.ops_proposed / max(leader.stats.entries_proposed, 1):.1f}"
        f", max {leader.stats.max_batch}"
    )


async def _bench(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="aspen-bench-") as tmp:
        data_dir = Path(tmp) if args.storage == "sqlite" else None
        async with open_cluster(
            args.nodes,
            seed=1,
            data_dir=data_dir,
            tick_interval=0.05,
            request_timeout=10.0,
            transport=args.transport,
        ) as cluster:
            leader = await cluster.wait_leader()
            if args.redis_benchmark:
                print(f"{args.nodes} nodes, storage={args.storage}, transport={args.transport}")
                await _redis_benchmark(cluster, args)
                return
            latencies: list[float] = []
            errors = 0
            done = 0
            stop_at = trio.current_time() + args.seconds

            async def client(c: int) -> None:
                nonlocal errors, done
                conn = cluster.client(1 + c % args.nodes)
                i = 0
                value = b"x" * args.value_size
                while trio.current_time() < stop_at:
                    start = time.perf_counter()
                    reply = await conn.cmd(b"SET", b"key:%d:%d" % (c, i % 1000), value)
                    latencies.append(time.perf_counter() - start)
                    if reply == OK:
                        done += 1
                    else:
                        errors += 1
                    i += 1

            before = leader.stats.entries_proposed, leader.stats.ops_proposed
            fsyncs_before = leader.stats.fsyncs
            started = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for c in range(args.clients):
                    nursery.start_soon(client, c)
            elapsed = time.perf_counter() - started
            entries = leader.stats.entries_proposed - before[0]
            ops = leader.stats.ops_proposed - before[1]
            latencies.sort()
            q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
            print(
                f"{args.nodes} nodes, {args.clients} clients, storage={args.storage}, "
                f"transport={args.transport}, "
                f"{args.value_size}-byte values, {elapsed:.1f} s"
            )
            print(f"  SETs/s:          {done / elapsed:,.0f}   (errors: {errors})")
            print(f"  latency ms:      p50 {q[49] * 1e3:.1f}  p99 {q[98] * 1e3:.1f}")
            print(
                f"  log entries:     {entries}  ops/entry mean {ops / max(entries, 1):.1f}, "
                f"max {leader.stats.max_batch}"
            )
            print(f"  leader fsyncs:   {leader.stats.fsyncs - fsyncs_before}")
            hist = "  ".join(f"<={k}:{v}" for k, v in sorted(leader.stats.batch_sizes.items()))
            print(f"  batch sizes:     {hist}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--value-size", type=int, default=16)
    parser.add_argument("--storage", choices=["memory", "sqlite"], default="sqlite")
    parser.add_argument("--transport", choices=["memory", "zmq", "websocket"], default="memory")
    parser.add_argument(
        "--redis-benchmark",
        action="store_true",
        help="drive every node's RESP server with redis-benchmark -t set instead",
    )
    parser.add_argument("--requests", type=int, default=20000, help="for --redis-benchmark")
    trio.run(_bench, parser.parse_args())


if __name__ == "__main__":
    main()
