"""CPU per request of a standalone node's event-loop thread, in process (issue 20).

    python -m harness.bench.client_path                    # SET and GET, -P 1 and -P 16
    python -m harness.bench.client_path -t set -P 16 --rounds 7 --ops 100000

A real `aspen.daemon.Node` (sqlite, fsync on, one voter) runs in this process; simulated
clients drive its connections the way the RESP server does, without a client process: each
has a real `_Batch` (parser, handler, detached replies) and a real `_SocketOutput` on one end
of a socketpair, and hands the batch `depth` commands at a time, then waits for all their
replies. What is measured is the thread CPU time (`time.thread_time`) of the event-loop
thread per request, best and median of `--rounds`; the disk thread's CPU is not in it.

What it leaves out: accept, the reactor's epoll wait and recv (one per batch). What it adds:
the client's own wait on its end of the socketpair and a recv per batch (the same in every
tree, so it dilutes a change, never flatters it). A figure, never a pass/fail test: compare
trees by running this with PYTHONPATH pointing at each, alternately.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio

from aspen import _native
from aspen.daemon import Node, tune_gc
from aspen.node_config import parse_config
from aspen.resp.server import Connection, _Batch, _SocketOutput
from harness.standalone import start_leading

KEYS = 1000
VALUE = b"x" * 100


def _command(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def _payloads(test: str, depth: int, n: int) -> list[bytes]:
    """`n` distinct batches of `depth` commands on keys key:0 .. key:KEYS-1."""
    out = []
    k = 0
    for _ in range(n):
        parts = []
        for _ in range(depth):
            key = b"key:%06d" % (k % KEYS)
            k += 7919
            parts.append(_command(b"SET", key, VALUE) if test == "set" else _command(b"GET", key))
        out.append(b"".join(parts))
    return out


class _Client:
    """One simulated connection: its batch, and the far end of its socket."""

    def __init__(self, node: Node, client_id: int) -> None:
        self.mine, theirs = socket.socketpair()
        self.mine.setblocking(False)
        theirs.setblocking(False)
        self.theirs = theirs
        conn = Connection(client_id, f"127.0.0.1:{40000 + client_id}", "127.0.0.1:6379",
                          trio.current_time(), trio.current_time())
        conn.sock = theirs
        node.server.connections[client_id] = conn
        self.conn = conn
        self.handler = node._new_connection(conn)
        conn.handler = self.handler

    def start(self, nursery: trio.Nursery, node: Node) -> None:
        output = _SocketOutput(self.theirs, nursery, node.server.options.max_output_buffer)
        output.conn = self.conn
        self.conn._output = output
        self.batch = _Batch(node.server, self.handler, output.write, self.conn)

    async def run(self, payloads: list[bytes], rounds: int, reply_bytes: int) -> None:
        batch = self.batch
        mine = self.mine
        buf = bytearray(1 << 16)
        for i in range(rounds):
            await batch.run(payloads[i % len(payloads)], True)
            got = 0
            while got < reply_bytes:
                try:
                    got += mine.recv_into(buf)
                except BlockingIOError:
                    await trio.lowlevel.wait_readable(mine)


async def _measure(node: Node, test: str, depth: int, clients: int, ops: int) -> float:
    """Event-loop thread CPU microseconds per request for one run."""
    per_client = max(1, ops // (clients * depth))
    payloads = _payloads(test, depth, 64)
    reply = 5 if test == "set" else len(b"$100\r\n") + len(VALUE) + 2
    cs = [_Client(node, 10_000 + i) for i in range(clients)]
    async with trio.open_nursery() as nursery:
        for c in cs:
            c.start(nursery, node)
        t0 = time.thread_time()
        async with trio.open_nursery() as runs:
            for c in cs:
                runs.start_soon(c.run, payloads, per_client, reply * depth)
        took = time.thread_time() - t0
        nursery.cancel_scope.cancel()
    for c in cs:
        del node.server.connections[c.conn.client_id]
        for callback in c.conn.on_close:
            callback()
        c.mine.close()
        c.theirs.close()
    return took * 1e6 / (per_client * clients * depth)


async def _main(args: argparse.Namespace) -> None:
    tune_gc()  # as `aspen node` does
    data_dir = Path(tempfile.mkdtemp(prefix="aspen-client-path-"))
    config = parse_config({"node": {"port": 0, "dir": str(data_dir)}, "raft": {"tick_ms": 100}})
    node = Node(config)
    try:
        async with trio.open_nursery() as nursery:
            await start_leading(nursery, node)
            # every key a GET payload names exists (each client goes through all 64 payloads)
            await _measure(node, "set", 16, args.clients, args.clients * 16 * 64)
            print(f"build: {_native.MODE}; {args.clients} clients; {args.ops} requests per run; "
                  f"load {os.getloadavg()[0]:.2f}", file=sys.stderr)
            print("| test | -P | best us/req | median | max |")
            print("|---|---:|---:|---:|---:|")
            for depth in args.pipeline or [1, 16]:
                for test in args.tests.split(","):
                    await _measure(node, test, depth, args.clients, args.ops // 4)  # warm
                    runs = [await _measure(node, test, depth, args.clients, args.ops)
                            for _ in range(args.rounds)]
                    print(f"| {test.upper()} | {depth} | {min(runs):.2f} | "
                          f"{statistics.median(runs):.2f} | {max(runs):.2f} |", flush=True)
            node.server.shutdown()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-t", "--tests", default="set,get")
    parser.add_argument("-P", "--pipeline", type=int, action="append")
    parser.add_argument("-c", "--clients", type=int, default=50)
    parser.add_argument("--ops", type=int, default=50_000, help="requests per run")
    parser.add_argument("--rounds", type=int, default=5)
    trio.run(_main, parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
