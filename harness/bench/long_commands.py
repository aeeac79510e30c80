"""Long commands sent to the leader under a write load: do they cost the cluster its leader?

    python -m harness.bench.long_commands [--keys 1000000] [--elements 1000000]

Three real `aspen node` daemons (ZeroMQ, sqlite with fsync, election timeout 1 s as by
default). Loaded with `--keys` small keys and a list, set, hash and sorted set of
`--elements` each (redis-cli --pipe). Then each long command is sent to the leader while two
writer threads (one on the leader, one on a follower) SET in a loop. Printed per command: how
long it took, the Raft term before and after (a change means an election: the leader was
lost), and the writers' p99 and max latency from the command's start to one second after its
end, and on how many nodes a snapshot was taken meanwhile. A figure, not a test.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import redis

from harness.daemons import DaemonCluster
from harness.resp_wire import encode_command

CHUNK = 1000


def _pipe(port: int, commands: list[list[bytes]]) -> None:
    payload = b"".join(encode_command(c) for c in commands)
    out = subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input=payload,
                         capture_output=True, timeout=3600, check=False)
    if b"errors: 0" not in out.stdout:  # an election while loading: said, not fatal
        print("load:", out.stdout.decode(errors="replace").strip().splitlines()[-1:], flush=True)


def load(port: int, keys: int, elements: int) -> None:
    batch: list[list[bytes]] = []
    for i in range(keys):
        batch.append([b"SET", b"key:%d" % i, b"v"])
        if len(batch) >= 100_000:
            _pipe(port, batch)
            batch = []
    els = [b"%d" % i for i in range(elements)]
    for lo in range(0, elements, CHUNK):
        part = els[lo : lo + CHUNK]
        pairs = [x for e in part for x in (e, e)]
        batch += [[b"RPUSH", b"biglist", *part], [b"SADD", b"bigset", *part],
                  [b"HSET", b"bighash", *pairs], [b"ZADD", b"bigzset", *pairs]]
        if len(batch) >= 400:
            _pipe(port, batch)
            batch = []
    if batch:
        _pipe(port, batch)


class Writer(threading.Thread):
    def __init__(self, port: int, name: str) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis(port=port, socket_timeout=30)
        self.name = name
        self.samples: list[tuple[float, float]] = []  # (start, latency)
        self.stop = False

    def run(self) -> None:
        i = 0
        while not self.stop:
            i += 1
            t0 = time.monotonic()
            try:
                self.client.set(f"w:{self.name}:{i % 1000}", i)
            except redis.RedisError:
                pass
            self.samples.append((t0, time.monotonic() - t0))


def _term(c: redis.Redis) -> int:
    return int(c.info("raft")["raft_term"])


def _snapshots(cluster: DaemonCluster) -> list[int]:
    """Each node's snapshot index (a snapshot serializes the keyspace on the driver: seconds
    for this much data, so an election during one is the snapshot's, not the command's)."""
    out = []
    for i in cluster.voters:
        try:
            out.append(int(cluster.status(i, timeout=30)["snapshot_index"]))
        except Exception:  # a busy node: unknown
            out.append(-1)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--keys", type=int, default=1_000_000)
    p.add_argument("--elements", type=int, default=1_000_000)
    args = p.parse_args()
    commands: list[list[str]] = [
        ["KEYS", "*"], ["SMEMBERS", "bigset"], ["LRANGE", "biglist", "0", "-1"],
        ["HGETALL", "bighash"], ["ZRANGE", "bigzset", "0", "-1"],
        ["SUNIONSTORE", "u", "bigset"], ["ZUNIONSTORE", "zu", "1", "bigzset"],
        ["DEL", "biglist"], ["UNLINK", "bigset"], ["DEL", "bighash"], ["UNLINK", "bigzset"],
        ["DEL", "u", "zu"], ["FLUSHALL"],
    ]
    with tempfile.TemporaryDirectory(prefix="aspen-long-") as tmp, \
            DaemonCluster(3, Path(tmp), tick_ms=100, election_ticks=10) as cluster:
        cluster.start_all()
        leader = cluster.wait_leader()
        t0 = time.monotonic()
        load(cluster.resp_port(leader), args.keys, args.elements)
        print(f"loaded {args.keys} keys and 4 x {args.elements} elements through the leader "
              f"in {time.monotonic() - t0:.0f} s")
        print(f"{'command':<28} {'took s':>7} {'term':>9} {'leader':>7} "
              f"{'p99 ms':>8} {'max ms':>8} writes snapshots")
        for argv in commands:
            leader = cluster.wait_leader(timeout=30)
            follower = next(i for i in cluster.voters if i != leader)
            big = redis.Redis(port=cluster.resp_port(leader), socket_timeout=600)
            term0 = _term(big)
            snaps0 = _snapshots(cluster)
            writers = [Writer(cluster.resp_port(leader), "L"),
                       Writer(cluster.resp_port(follower), "F")]
            for w in writers:
                w.start()
            time.sleep(0.5)
            start = time.monotonic()
            big.execute_command(*argv)  # type: ignore[no-untyped-call]
            end = time.monotonic()
            time.sleep(1.0)
            for w in writers:
                w.stop = True
            for w in writers:
                w.join(60)
            after = cluster.wait_leader(timeout=30)
            term1 = _term(redis.Redis(port=cluster.resp_port(after), socket_timeout=30))
            snapped = sum(a != b for a, b in zip(snaps0, _snapshots(cluster), strict=True))
            lat = sorted(lt for w in writers for s, lt in w.samples if start <= s <= end + 1)
            p99 = lat[int(len(lat) * 0.99)] * 1000 if lat else float("nan")
            worst = lat[-1] * 1000 if lat else float("nan")
            print(f"{' '.join(argv):<28} {end - start:7.2f} {term0:>4}->{term1:<4} "
                  f"{leader:>3}->{after:<3} {p99:8.1f} {worst:8.1f} {len(lat):6} {snapped}",
                  flush=True)
            big.close()


if __name__ == "__main__":
    main()
