"""Memory per small key: Aspen (standalone node, 3-node cluster leader) against redis-server.

    python -m harness.bench.memory [--keys 1000000] [--only keyspace|redis|standalone|cluster]
                                   [--warmup 25000]

Loads `--keys` keys "key:%09d" with 10-byte values through a pipelined raw RESP client (the
cluster: through harness.bench's loader, 8 pipelined connections) and prints, per server, the
memory delta divided by the key count: redis-server's INFO used_memory (and its RSS), Aspen's
RSS (VmRSS from /proc). `keyspace` measures the kv structures alone in this process with
tracemalloc (no server, no Raft), and what each structure costs. A benchmark that prints
figures, never pass/fail.
"""

from __future__ import annotations

import argparse
import gc
import os
import socket
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from harness.bench.servers import aspen_node, redis_server
from harness.resp_wire import encode_command

VALUE = b"v" * 10


def _key(i: int) -> bytes:
    return b"key:%09d" % i


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def load(port: int, n: int, batch: int = 1000) -> float:
    """SET n keys, `batch` per write; waits for every reply. Returns the seconds taken."""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as s:
        for lo in range(0, n, batch):
            hi = min(n, lo + batch)
            s.sendall(b"".join(
                b"*3\r\n$3\r\nSET\r\n$13\r\n%s\r\n$10\r\n%s\r\n" % (_key(i), VALUE)
                for i in range(lo, hi)))
            want = 5 * (hi - lo)  # "+OK\r\n" each
            got = 0
            while got < want:
                chunk = s.recv(1 << 16)
                if not chunk:
                    raise ConnectionError("server closed")
                if b"-" in chunk:
                    raise RuntimeError(f"error reply: {chunk[:200]!r}")
                got += len(chunk)
    return time.monotonic() - t0


def command(port: int, *args: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(encode_command(args))
        time.sleep(0.05)
        return s.recv(1 << 20)


def used_memory(port: int) -> int:
    info = command(port, b"INFO", b"memory").decode()
    for line in info.splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":")[1])
    raise RuntimeError("no used_memory")


def bench_redis(n: int) -> None:
    with redis_server() as srv:
        m0, r0 = used_memory(srv.port), rss_kb(srv.pid)
        secs = load(srv.port, n)
        m1, r1 = used_memory(srv.port), rss_kb(srv.pid)
    print(f"redis-server: used_memory {(m1 - m0) / n:.1f} B/key, RSS {(r1 - r0) * 1024 / n:.1f}"
          f" B/key (load {secs:.1f}s)", flush=True)


def _settle(port: int) -> None:
    command(port, b"PING")
    time.sleep(2.0)


def bench_standalone(n: int) -> None:
    with aspen_node() as node:
        _settle(node.port)
        r0 = rss_kb(node.pid)
        secs = load(node.port, n)
        _settle(node.port)
        r1 = rss_kb(node.pid)
    print(f"aspen standalone node: RSS {(r1 - r0) * 1024 / n:.1f} B/key (load {secs:.1f}s)",
          flush=True)


def bench_cluster(n: int, warmup: int = 0) -> None:
    """Three daemons loaded the way `harness.bench` loads them (8 pipelined connections):
    RSS delta per key on every node, after `warmup` other keys if asked (the baseline then
    excludes the fixed costs of loading: buffers, in-flight writes, log tail, caches)."""
    from harness.bench import cluster_phases as cp
    from harness.bench.targets import aspen_cluster

    with tempfile.TemporaryDirectory(prefix="aspen-mem-") as tmp, \
            aspen_cluster(Path(tmp), 3) as target:
        cluster = target.cluster
        assert cluster is not None
        leader = cluster.wait_leader(timeout=30)
        mem = cp.memory_aspen(cluster, n, len(VALUE), 1800, warmup)
    nodes = ", ".join(f"n{i}{' (leader)' if int(i) == leader else ''} {v:.1f}"
                      for i, v in mem["rss_per_key_by_node"].items())
    warm = (f" after {warmup:,} warm-up keys (from before them: "
            f"{mem['rss_per_key_from_start']:.1f} on the leader)" if warmup else "")
    print(f"aspen 3-node cluster: RSS {nodes} B/key{warm} (load {mem['load_s']:.1f}s; "
          f"load average {os.getloadavg()[0]:.1f})", flush=True)


def bench_keyspace(n: int) -> None:
    """The kv structures alone: tracemalloc total, then sys.getsizeof per structure."""
    from aspen.kv.keyspace import Keyspace
    from aspen.kv.ops import WriteOp

    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    ks = Keyspace()
    for i in range(n):
        ks.execute(WriteOp((b"SET", _key(i), b"%010d" % i)), 0)  # distinct values, as served
    gc.collect()
    total = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    print(f"Keyspace alone (tracemalloc): {total / n:.1f} B/key", flush=True)
    some_key, some_value = _key(0), VALUE
    parts: dict[str, float] = {
        "key bytes": sys.getsizeof(some_key), "value bytes": sys.getsizeof(some_value)
    }
    # (a compiled Keyspace is a native class: no __dict__, its fields are slots)
    fields = vars(ks) if hasattr(ks, "__dict__") else {
        name: getattr(ks, name) for name in dir(ks) if name.startswith("_") and
        not name.startswith("__") and not callable(getattr(ks, name, None))
    }
    for name, obj in fields.items():
        if isinstance(obj, dict | list):
            parts[f"{name} ({type(obj).__name__} container)"] = sys.getsizeof(obj) / n
    for name, size in parts.items():
        print(f"  {name}: {size:.1f} B/key", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--only", choices=["keyspace", "redis", "standalone", "cluster"])
    ap.add_argument("--warmup", type=int, default=0,
                    help="cluster: keys loaded before the baseline (as harness.bench --quick)")
    args = ap.parse_args()
    print(f"{args.keys} keys like {_key(123)!r} -> {len(VALUE)}-byte values; "
          f"load average {os.getloadavg()}", flush=True)
    runs: dict[str, Callable[[int], None]] = {
        "keyspace": bench_keyspace, "redis": bench_redis, "standalone": bench_standalone,
        "cluster": lambda n: bench_cluster(n, args.warmup),
    }
    for name, fn in runs.items():
        if args.only in (None, name):
            fn(args.keys)


if __name__ == "__main__":
    main()
