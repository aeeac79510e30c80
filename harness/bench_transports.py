"""Transport throughput and idle CPU: ``python -m harness.bench_transports``.

Two nodes in one process (one trio run, so one core does both ends' Python work): node 1
streams numbered payloads to node 2 with at most ``--window`` messages outstanding, and we
time the whole run to the last message received. Idle CPU is process CPU time over a few
seconds of a connected, silent 3-node mesh. Prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import time

import trio

from transports import KINDS, MemoryHub
from transports.testing import open_mesh

SIZES = (100, 10_000)
# Messages per run, by kind and payload size (WebSocket is much slower: fewer messages).
COUNTS = {
    ("zmq", 100): 100_000,
    ("zmq", 10_000): 20_000,
    ("memory", 100): 100_000,
    ("memory", 10_000): 50_000,
    ("websocket", 100): 20_000,
    ("websocket", 10_000): 10_000,
}


async def throughput(kind: str, size: int, count: int, window: int) -> tuple[float, int]:
    """Returns (seconds, messages dropped) for ``count`` messages of ``size`` bytes, 1 -> 2."""
    hub = MemoryHub(random.Random(0))
    async with open_mesh(kind, 2, hub=hub, queue_size=max(window, 1024)) as mesh:
        await mesh.warm_up()
        credit = trio.Semaphore(window)
        payload = b"x" * size
        received = 0

        async def produce() -> None:
            for _ in range(count):
                try:
                    credit.acquire_nowait()
                except trio.WouldBlock:
                    await credit.acquire()
                await mesh[1].send(2, payload)

        start = time.perf_counter()
        with trio.fail_after(600):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(produce)
                while received + mesh[1].stats.dropped_total < count:
                    with trio.move_on_after(5):
                        # Batches, as a Raft driver loop consumes (one wakeup per batch).
                        batch = await mesh[2].receive_batch()
                        received += len(batch)
                        for _ in batch:
                            credit.release()
        return time.perf_counter() - start, mesh[1].stats.dropped_total


async def idle_cpu(kind: str, seconds: float) -> float:
    """Process CPU seconds per wall second of an idle, connected 3-node mesh."""
    async with open_mesh(kind, 3) as mesh:
        await mesh.warm_up()
        cpu, wall = time.process_time(), time.perf_counter()
        await trio.sleep(seconds)
        return (time.process_time() - cpu) / (time.perf_counter() - wall)


async def main_async(args: argparse.Namespace) -> None:
    print(
        f"# transports benchmark ({platform.python_version()}, {platform.machine()}, "
        f"window {args.window}, scale {args.scale})\n"
    )
    print("| transport | payload | messages | msgs/s | MB/s (payload) | dropped |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind in args.kinds:
        for size in SIZES:
            count = max(1000, int(COUNTS[(kind, size)] * args.scale))
            seconds, dropped = await throughput(kind, size, count, args.window)
            rate = (count - dropped) / seconds
            print(
                f"| {kind} | {size} B | {count} | {rate:,.0f} | {rate * size / 1e6:,.1f} "
                f"| {dropped} |",
                flush=True,
            )
    print("\n| transport | idle CPU (3-node mesh, one process) |")
    print("|---|---:|")
    for kind in args.kinds:
        share = await idle_cpu(kind, args.idle_seconds)
        print(
            f"| {kind} | {share * 100:.2f}% of one core over {args.idle_seconds:g} s |", flush=True
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.bench_transports")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--window", type=int, default=1000, help="max messages outstanding")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply message counts")
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    trio.run(main_async, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
