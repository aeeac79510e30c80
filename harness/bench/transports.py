"""Transport throughput and idle CPU: ``python -m harness.bench.transports``.

Two nodes in one process (one trio run, so one core does both ends' Python work): node 1
streams payloads to node 2 with at most ``--window`` messages outstanding, and we time the
whole run to the last message received. With ``--processes`` node 2 runs in a child process
instead and acknowledges every `ACK_EVERY` messages over the transport (the window is counted
in acknowledged messages). Idle CPU is process CPU time over a few seconds of a connected,
silent 3-node mesh. Prints Markdown tables for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import platform
import random
import subprocess
import sys
import time

import trio

from transports import KINDS, MemoryHub, TransportConfig, open_transport
from transports.testing import open_mesh

ACK_EVERY = 100

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


async def throughput_two_processes(
    kind: str, size: int, count: int, window: int
) -> tuple[float, int]:
    """Like `throughput`, with node 2 in a child process (`serve`)."""
    config = TransportConfig(node_id=1, cluster_id="bench", queue_size=max(window, 1024))
    async with open_transport(kind, config) as node1:
        child = await trio.lowlevel.open_process(
            [
                sys.executable,
                "-m",
                "harness.bench.transports",
                "--serve",
                kind,
                "--peer",
                node1.address,
                "--count",
                str(count),
            ],
            stdout=subprocess.PIPE,
        )
        try:
            assert child.stdout is not None
            line = b""
            with trio.fail_after(20):
                while not line.endswith(b"\n"):
                    line += await child.stdout.receive_some(1)
            node1.add_peer(2, line.decode().strip())
            with trio.fail_after(20):  # the child says hello once its link to us is up
                await node1.receive()
            acked = 0
            progress = trio.Event()
            payload = b"x" * size
            start = time.perf_counter()

            async def produce() -> None:
                nonlocal progress
                for sent in range(count):
                    while sent - acked >= window:
                        await progress.wait()
                        progress = trio.Event()
                    await node1.send(2, payload)

            with trio.fail_after(600):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(produce)
                    while acked + node1.stats.dropped_total < count:
                        with trio.move_on_after(5):
                            _, ack = await node1.receive()
                            acked = max(acked, int(ack))
                            progress.set()
                    nursery.cancel_scope.cancel()
            return time.perf_counter() - start, node1.stats.dropped_total
        finally:
            with trio.move_on_after(10):
                await child.wait()
            if child.returncode is None:
                child.kill()
                await child.wait()


async def serve(kind: str, peer_address: str, count: int) -> None:
    """The child side of `throughput_two_processes`: count, acknowledge, exit when done."""
    config = TransportConfig(node_id=2, cluster_id="bench", peers={1: peer_address})
    async with open_transport(kind, config) as node2:
        print(node2.address, flush=True)
        received = 0
        while received == 0:  # hello until the first payload shows the link works
            await node2.send(1, b"0")
            with trio.move_on_after(0.05):
                received += len(await node2.receive_batch())
        acked = 0
        while received < count:
            with trio.move_on_after(10) as idle:
                received += len(await node2.receive_batch())
            if idle.cancelled_caught:
                break  # the parent dropped some: it stops waiting for them too
            if received - acked >= ACK_EVERY or received >= count:
                await node2.send(1, b"%d" % received)
                acked = received
        await trio.sleep(0.5)  # let the last acknowledgement leave


async def idle_cpu(kind: str, seconds: float) -> float:
    """Process CPU seconds per wall second of an idle, connected 3-node mesh."""
    async with open_mesh(kind, 3) as mesh:
        await mesh.warm_up()
        cpu, wall = time.process_time(), time.perf_counter()
        await trio.sleep(seconds)
        return (time.process_time() - cpu) / (time.perf_counter() - wall)


async def main_async(args: argparse.Namespace) -> None:
    where = "two processes" if args.processes else "one process"
    print(
        f"# transports benchmark ({where}, {platform.python_version()}, "
        f"{platform.machine()}, window {args.window}, scale {args.scale})\n"
    )
    print("| transport | payload | messages | msgs/s | MB/s (payload) | dropped |")
    print("|---|---:|---:|---:|---:|---:|")
    measure = throughput_two_processes if args.processes else throughput
    for kind in args.kinds:
        if args.processes and kind == "memory":
            continue  # in-process by nature
        for size in SIZES:
            count = max(1000, int(COUNTS[(kind, size)] * args.scale))
            seconds, dropped = await measure(kind, size, count, args.window)
            rate = (count - dropped) / seconds
            print(
                f"| {kind} | {size} B | {count} | {rate:,.0f} | {rate * size / 1e6:,.1f} "
                f"| {dropped} |",
                flush=True,
            )
    if args.no_idle:
        return
    print("\n| transport | idle CPU (3-node mesh, one process) |")
    print("|---|---:|")
    for kind in args.kinds:
        share = await idle_cpu(kind, args.idle_seconds)
        print(
            f"| {kind} | {share * 100:.2f}% of one core over {args.idle_seconds:g} s |", flush=True
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.bench.transports")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--window", type=int, default=1000, help="max messages outstanding")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply message counts")
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    parser.add_argument("--processes", action="store_true", help="node 2 in a child process")
    parser.add_argument("--no-idle", action="store_true", help="skip the idle CPU figures")
    parser.add_argument("--serve", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--peer", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.processes and args.window < ACK_EVERY:
        # The child acknowledges every ACK_EVERY messages: a smaller window would wait for
        # an acknowledgement that never comes.
        parser.error(f"--processes needs --window {ACK_EVERY} or more")
    if args.serve:
        trio.run(serve, args.serve, args.peer, args.count)
        return 0
    trio.run(main_async, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
