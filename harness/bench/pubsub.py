"""Pub/sub figures: messages/s and latency, on one `aspen node` and across 3 daemons.

    python -m harness.bench.pubsub                    # single node, then 3 daemons
    python -m harness.bench.pubsub --messages 20000 --subscribers 4 --targets node,redis

A publisher pipelines PUBLISH commands (`--pipeline` per write) carrying their send time;
`--subscribers` raw RESP2 connections SUBSCRIBEd to the channel count what they receive and
the delay from publish to arrival. Targets: `node` (one aspen node: publisher and
subscribers on it), `cluster` (3 daemons over ZeroMQ: publisher on node 1, subscribers on
node 3, so every message crosses the mesh), `redis` (redis-server, for scale). Prints
published/s, delivered/s (all subscribers), p50/p99 latency and the server CPU per PUBLISH
(the publishing node's). A figure, not a test: the machine is shared, expect noise.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from harness.bench.resp import cpu_seconds
from harness.bench.servers import aspen_node, redis_server
from harness.daemons import DaemonCluster
from harness.resp_wire import ReplyReader
from harness.resp_wire import command as _cmd


class Subscriber(threading.Thread):
    def __init__(self, port: int, channel: bytes, expect: int) -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.sendall(_cmd(b"SUBSCRIBE", channel))
        self.reader = ReplyReader(lambda: self.sock.recv(1 << 16))
        assert self.reader.read() == [b"subscribe", channel, 1]
        self.expect = expect
        self.latencies: list[float] = []

    def run(self) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while len(self.latencies) < self.expect:
                msg = self.reader.read()
                assert isinstance(msg, list) and msg[0] == b"message"
                self.latencies.append(time.perf_counter() - float(msg[2][:20]))


def measure(pub_port: int, sub_port: int, pub_pid: int, args: argparse.Namespace) -> str:
    channel = b"bench"
    subs = [Subscriber(sub_port, channel, args.messages) for _ in range(args.subscribers)]
    time.sleep(0.5)  # subscriptions reach every node's hub (local) before the first message
    for s in subs:
        s.start()
    pub = socket.create_connection(("127.0.0.1", pub_port), timeout=30)
    reader = ReplyReader(lambda: pub.recv(1 << 16))
    pad = b"x" * max(0, args.size - 20)
    cpu0, t0 = cpu_seconds(pub_pid), time.perf_counter()
    sent = 0
    while sent < args.messages:
        n = min(args.pipeline, args.messages - sent)
        pub.sendall(b"".join(
            _cmd(b"PUBLISH", channel, b"%-20.6f" % time.perf_counter() + pad) for _ in range(n)))
        for _ in range(n):
            reader.read()
        sent += n
    published = time.perf_counter() - t0
    cpu_us = (cpu_seconds(pub_pid) - cpu0) * 1e6 / args.messages
    for s in subs:
        s.join(timeout=30)
    delivered_s = time.perf_counter() - t0
    got = sum(len(s.latencies) for s in subs)
    lat = sorted(x for s in subs for x in s.latencies)
    pub.close()
    for s in subs:
        s.sock.close()
    if not lat:
        return "nothing delivered"
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    return (f"{args.messages / published:>9,.0f} published/s  {got / delivered_s:>9,.0f} "
            f"delivered/s ({got}/{args.messages * args.subscribers})  p50 "
            f"{statistics.median(lat) * 1e3:.2f} ms  p99 {p99 * 1e3:.2f} ms  "
            f"{cpu_us:.1f} us CPU/PUBLISH")


@contextlib.contextmanager
def cluster3() -> Iterator[DaemonCluster]:
    with tempfile.TemporaryDirectory(prefix="aspen-bench-pubsub-") as tmp, \
            DaemonCluster(3, Path(tmp)) as cluster:
        cluster.start_all()
        cluster.wait_leader()
        yield cluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--subscribers", type=int, default=4)
    parser.add_argument("--pipeline", type=int, default=50)
    parser.add_argument("--size", type=int, default=64, help="message bytes (>= 20)")
    parser.add_argument("--targets", default="node,cluster,redis")
    args = parser.parse_args(argv)
    print(f"{args.messages} messages of {args.size} B, {args.subscribers} subscribers, "
          f"pipeline {args.pipeline}; load {os.getloadavg()[0]:.2f}", flush=True)
    for target in args.targets.split(","):
        if target == "node":
            with aspen_node() as node:
                line = measure(node.port, node.port, node.pid, args)
        elif target == "redis":
            with redis_server() as server:
                line = measure(server.port, server.port, server.pid, args)
        elif target == "cluster":
            with cluster3() as c:
                line = measure(c.resp_port(1), c.resp_port(3), c.procs[1].pid, args)
        else:
            print(f"unknown target {target}", file=sys.stderr)
            return 2
        print(f"{target:8} {line}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
