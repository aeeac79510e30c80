"""Streams: memory per entry against redis-server, and XADD / XREADGROUP throughput.

    python -m harness.bench.streams [--entries 1000000] [--ops 20000]
                                    [--only memory|redis|aspen-1|aspen-3|redis-ops]

Memory: `--entries` small entries (`XADD s <i>-1 f <i>`, one field, a value of up to 7 digits)
in one stream. Aspen's figure is the keyspace alone in this process (tracemalloc, no server
or Raft), redis-server's is INFO used_memory's delta, in the same run.

Throughput: one pipelined connection (batches of 100), `--ops` XADD (`*` IDs, one field) and
then as many XREADGROUP ... COUNT 1 ... `>` (each a replicated write that moves the group's
cursor and adds a pending entry), against redis-server, a standalone Aspen node and the leader
of a 3-node cluster. Figures only, never pass/fail.
"""

from __future__ import annotations

import argparse
import gc
import os
import socket
import tempfile
import time
import tracemalloc
from pathlib import Path

from harness.bench.servers import aspen_node, redis_server
from harness.resp_wire import command as _cmd


class Pipe:
    """A raw RESP connection that sends batches and counts whole replies (no parsing)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.buf = b""

    def _replies(self, n: int) -> None:
        """Read n replies; XREADGROUP's are nested arrays, so count with a tiny RESP walker."""
        done = 0
        pos = 0
        while done < n:
            end = _skip(self.buf, pos)
            if end < 0:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    raise ConnectionError("closed")
                self.buf = self.buf[pos:] + chunk
                pos = 0
                continue
            if self.buf[pos:pos + 1] == b"-":
                raise RuntimeError(self.buf[pos:end])
            pos = end
            done += 1
        self.buf = self.buf[pos:]

    def run(self, commands: list[bytes], batch: int = 100) -> float:
        t0 = time.perf_counter()
        for lo in range(0, len(commands), batch):
            chunk = commands[lo:lo + batch]
            self.sock.sendall(b"".join(chunk))
            self._replies(len(chunk))
        return time.perf_counter() - t0

    def close(self) -> None:
        self.sock.close()


def _skip(buf: bytes, pos: int) -> int:
    """End of the RESP2 reply at `pos`, or -1 if incomplete."""
    eol = buf.find(b"\r\n", pos)
    if eol < 0:
        return -1
    kind, body = buf[pos:pos + 1], buf[pos + 1:eol]
    nxt = eol + 2
    if kind in (b"+", b"-", b":"):
        return nxt
    if kind == b"$":
        n = int(body)
        if n < 0:
            return nxt
        return nxt + n + 2 if len(buf) >= nxt + n + 2 else -1
    if kind == b"*":
        n = int(body)
        for _ in range(max(n, 0)):
            nxt = _skip(buf, nxt)
            if nxt < 0:
                return -1
        return nxt
    raise RuntimeError(f"unexpected reply {buf[pos:pos + 40]!r}")


def _entry(i: int) -> bytes:
    return _cmd(b"XADD", b"s", b"%d-1" % (i + 1), b"f", b"%d" % (i % 10_000_000))


def used_memory(port: int) -> int:
    p = Pipe(port)
    p.sock.sendall(_cmd(b"INFO", b"memory"))
    time.sleep(0.05)
    info = p.sock.recv(1 << 20).decode()
    p.close()
    return next(int(line.split(":")[1]) for line in info.splitlines()
                if line.startswith("used_memory:"))


def memory_redis(n: int) -> float:
    with redis_server() as srv:
        m0 = used_memory(srv.port)
        p = Pipe(srv.port)
        p.run([_entry(i) for i in range(n)], batch=1000)
        p.close()
        m1 = used_memory(srv.port)
    per = (m1 - m0) / n
    print(f"redis-server: used_memory {per:.1f} B/entry", flush=True)
    return per


def memory_aspen(n: int) -> float:
    from aspen.kv.keyspace import Keyspace
    from aspen.kv.ops import ReadOp, WriteOp

    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    ks = Keyspace()
    argv = [b"XADD", b"s", b"", b"f", b""]
    for i in range(n):
        argv[2] = b"%d-1" % (i + 1)
        argv[4] = b"%d" % (i % 10_000_000)
        ks.execute(WriteOp(tuple(argv)), 0)
    gc.collect()
    total = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    per = total / n
    print(f"Aspen keyspace (tracemalloc): {per:.1f} B/entry", flush=True)
    mid = b"%d" % (n // 2)
    t0 = time.perf_counter()
    for _ in range(1000):
        ks.execute(ReadOp((b"XRANGE", b"s", mid, b"+", b"COUNT", b"100")), 0)
    print(f"  XRANGE of 100 entries from the middle: {(time.perf_counter() - t0):.3f} ms "
          "each (1000 runs)", flush=True)
    return per


def throughput(port: int, label: str, ops: int) -> None:
    p = Pipe(port)
    p.run([_cmd(b"DEL", b"t")])
    adds = [_cmd(b"XADD", b"t", b"*", b"f", b"%d" % i) for i in range(ops)]
    secs = p.run(adds)
    p.run([_cmd(b"XGROUP", b"CREATE", b"t", b"g", b"0")])
    reads = [_cmd(b"XREADGROUP", b"GROUP", b"g", b"c%d" % (i % 4), b"COUNT", b"1", b"STREAMS",
                  b"t", b">") for i in range(ops)]
    rsecs = p.run(reads)
    p.close()
    print(f"{label}: XADD {ops / secs:,.0f}/s, XREADGROUP COUNT 1 {ops / rsecs:,.0f}/s "
          f"(one connection, pipelines of 100; load average {os.getloadavg()[0]:.1f})",
          flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--ops", type=int, default=20_000)
    ap.add_argument("--only", choices=["memory", "redis", "aspen-1", "aspen-3", "redis-ops"])
    args = ap.parse_args()
    only = args.only
    if only in (None, "memory"):
        print(f"{args.entries:,} entries like XADD s <i>-1 f <i>", flush=True)
        ours = memory_aspen(args.entries)
        theirs = memory_redis(args.entries)
        print(f"ratio Aspen / redis-server: {ours / theirs:.2f}x", flush=True)
    if only in (None, "redis-ops"):
        with redis_server() as srv:
            throughput(srv.port, "redis-server", args.ops)
    if only in (None, "aspen-1"):
        with aspen_node() as node:
            throughput(node.port, "Aspen standalone node", args.ops)
    if only in (None, "aspen-3"):
        from harness.bench.targets import aspen_cluster

        with tempfile.TemporaryDirectory(prefix="aspen-streams-") as tmp, \
                aspen_cluster(Path(tmp), 3) as target:
            throughput(target.port, "Aspen 3 nodes (leader)", args.ops)


if __name__ == "__main__":
    main()
