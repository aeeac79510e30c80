"""Blocking pops through a 3-node in-process cluster (real clock): a figure, not a test.

    python -m harness.bench.blocking [--consumers 30] [--elements 3000] [--keys 3]

Consumers loop on BLPOP (spread over the three nodes and `--keys` keys); producers RPUSH one
element at a time from every node. Prints elements/s, the push->pop latency (from the push's
reply to the pop's reply, so one commit round of the serve plus scheduling), how many serves
lost a race (another node's client won), and the process CPU time per element. All three
nodes share one process and one CPU: every pop is applied three times on it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import trio

from aspen.resp.values import NULL_ARRAY
from harness.cluster import open_cluster


async def _bench(args: argparse.Namespace) -> None:
    async with open_cluster(3, seed=1) as cluster:
        await cluster.wait_leader()
        ids = [n.id for n in cluster.running()]
        keys = [f"q{i}" for i in range(args.keys)]
        pushed_at: dict[bytes, float] = {}
        latencies: list[float] = []
        popped = 0
        done = trio.Event()

        async def consumer(i: int) -> None:
            nonlocal popped
            client = cluster.client(ids[i % len(ids)])
            key = keys[i % len(keys)]
            while True:
                reply = await client.cmd("BLPOP", key, "0")
                if reply is NULL_ARRAY or not isinstance(reply, list):
                    continue
                latencies.append(time.perf_counter() - pushed_at.pop(reply[1]))
                popped += 1
                if popped >= args.elements:
                    done.set()

        async def producer(p: int) -> None:
            client = cluster.client(ids[p % len(ids)])
            for n in range(p, args.elements, args.producers):
                value = f"e{n}".encode()
                key = keys[n % len(keys)]
                pushed_at[value] = time.perf_counter()
                await client.cmd("RPUSH", key, value)

        cpu0, t0 = time.process_time(), time.perf_counter()
        async with trio.open_nursery() as nursery:
            for i in range(args.consumers):
                nursery.start_soon(consumer, i)
            await trio.sleep(0.2)
            cpu0, t0 = time.process_time(), time.perf_counter()
            for p in range(args.producers):
                nursery.start_soon(producer, p)
            with trio.move_on_after(120):
                await done.wait()
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            nursery.cancel_scope.cancel()
        races = sum(n.blocking.lost_races for n in cluster.running())
        served = sum(n.blocking.served for n in cluster.running())
        lat = sorted(latencies)
        print(
            f"blocking pops: {popped} elements in {elapsed:.2f}s = {popped / elapsed:.0f}/s; "
            f"{args.consumers} consumers on {len(keys)} keys, {args.producers} producers, 3 nodes"
        )
        if lat:
            p50 = statistics.median(lat) * 1000
            p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
            print(f"  push->pop latency: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
        print(
            f"  served from parked {served}, lost races {races}, "
            f"CPU {cpu / max(popped, 1) * 1e6:.0f} us/element, load {os.getloadavg()[0]:.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--consumers", type=int, default=30)
    parser.add_argument("--producers", type=int, default=3)
    parser.add_argument("--elements", type=int, default=3000)
    parser.add_argument("--keys", type=int, default=3)
    trio.run(_bench, parser.parse_args())


if __name__ == "__main__":
    main()
