"""The measurements that need a cluster to suffer: failover, memory per key, restart, catch-up.

Failover: closed-loop writers on every node keep the cluster busy; the leader is killed with
SIGKILL; from then on an open-loop probe sends one SET every 10 ms on a fresh connection to a
surviving node (alternating). The time is from the kill to the first probe whose SET succeeds
(a probe is sent after the kill, so a write the dead leader had already committed cannot
count). The killed node is restarted and caught up before the next trial.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.bench.loadgen import RespConn, encode_command
from harness.bench.procs import BenchCluster, rss_bytes
from harness.daemons import http_json, wait_until

__all__ = ["failover_trial", "load_keys", "restart_time", "snapshot_inprocess", "wiped_catchup"]


async def _writer(port: int, stop: asyncio.Event, seed: int) -> None:
    n = 0
    while not stop.is_set():
        try:
            conn = await RespConn.open(port, timeout=1)
        except (TimeoutError, OSError):
            await asyncio.sleep(0.05)
            continue
        try:
            while not stop.is_set():
                n += 1
                await asyncio.wait_for(
                    conn.call(encode_command(b"SET", b"load:%d" % seed, b"%d" % n)), 6)
        except Exception:  # errors and timeouts while the leader is gone are the point
            await asyncio.sleep(0.01)
        finally:
            conn.close()


async def _probe(port: int, i: int, deadline: float, first: asyncio.Future[float]) -> None:
    try:
        conn = await RespConn.open(port, timeout=1)
    except (TimeoutError, OSError):
        return
    try:
        remaining = max(0.1, deadline - time.perf_counter())
        reply = await asyncio.wait_for(
            conn.call(encode_command(b"SET", b"probe:%d" % i, b"x")), remaining)
        if reply == b"OK" and not first.done():
            first.set_result(time.perf_counter())
    except Exception:
        return
    finally:
        conn.close()


async def _failover(cluster: BenchCluster, leader: int, writers: int, warmup: float,
                    timeout: float) -> float | None:
    ports = [cluster.resp_port(i) for i in cluster.voters]
    survivors = [cluster.resp_port(i) for i in cluster.voters if i != leader]
    stop = asyncio.Event()
    load = [asyncio.create_task(_writer(ports[k % len(ports)], stop, k)) for k in range(writers)]
    probes: list[asyncio.Task[None]] = []
    try:
        await asyncio.sleep(warmup)
        t_kill = time.perf_counter()
        cluster.kill(leader)
        deadline = t_kill + timeout
        first: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        for i in itertools.count():
            if first.done() or time.perf_counter() > deadline:
                break
            probes.append(asyncio.create_task(
                _probe(survivors[i % len(survivors)], i, deadline, first)))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(first), 0.01)
        return first.result() - t_kill if first.done() else None
    finally:
        stop.set()
        for t in probes:
            t.cancel()
        await asyncio.gather(*probes, return_exceptions=True)
        await asyncio.wait_for(asyncio.gather(*load, return_exceptions=True), 15)


def failover_trial(cluster: BenchCluster, *, writers: int = 8, warmup: float = 0.5,
                   timeout: float = 15.0) -> dict[str, Any]:
    """One kill -9 of the leader under write load; the killed node rejoins before returning."""
    leader = cluster.wait_leader(timeout=30)
    seconds = asyncio.run(_failover(cluster, leader, writers, warmup, timeout))
    new_leader = cluster.wait_leader(among=[i for i in cluster.voters if i != leader],
                                     timeout=30)
    cluster.start(leader, timeout=60)
    commit = cluster.status(new_leader)["commit_index"]
    cluster.wait_applied(commit, cluster.voters, timeout=60)
    return {"killed": leader, "new_leader": new_leader, "seconds": seconds}


# -- memory per key -------------------------------------------------------------------------


def key(i: int) -> bytes:
    return b"key:%09d" % i


async def _read_status_replies(reader: asyncio.StreamReader, n: int) -> list[int]:
    """Read n one-line replies; the positions of those that are not +OK."""
    want = b"+OK\r\n" * n
    got = await reader.readexactly(len(want))
    if got == want:
        return []
    lines = got.split(b"\r\n")
    partial = lines.pop()
    if partial:
        lines.append(partial + (await reader.readuntil(b"\r\n"))[:-2])
    while len(lines) < n:
        lines.append((await reader.readuntil(b"\r\n"))[:-2])
    return [i for i, line in enumerate(lines) if line != b"+OK"]


async def _load_range(port: int, first: int, last: int, value: bytes, chunk: int,
                      failures: list[int]) -> None:
    """SET keys first..last-1 in pipelined chunks. A write that fails (Aspen's -TIMEOUT: the
    outcome is unknown) is sent again: a SET of the same value is idempotent."""
    conn = await RespConn.open(port)
    try:
        pending = list(range(first, last))
        for _ in range(10):
            failed: list[int] = []
            for start in range(0, len(pending), chunk):
                part = pending[start : start + chunk]
                conn.writer.write(b"".join(encode_command(b"SET", key(i), value) for i in part))
                bad = await asyncio.wait_for(_read_status_replies(conn.reader, len(part)), 120)
                failed += [part[j] for j in bad]
            if not failed:
                return
            failures.append(len(failed))
            pending = failed
        raise RuntimeError(f"loading keys: {len(pending)} writes still fail after 10 attempts")
    finally:
        conn.close()


def load_keys(port: int, n: int, *, value_size: int = 10, connections: int = 8,
              chunk: int = 1000, timeout: float = 900.0, first: int = 0) -> tuple[float, int]:
    """SET key:<first> .. key:<first+n-1> (value `value_size` bytes), pipelined: (seconds,
    writes that had to be sent again)."""
    value = b"v" * value_size
    per = -(-n // connections)
    failures: list[int] = []

    async def go() -> None:
        await asyncio.wait_for(asyncio.gather(*(
            _load_range(port, first + c * per, first + min(n, (c + 1) * per), value, chunk,
                        failures)
            for c in range(connections) if c * per < n)), timeout)

    t0 = time.perf_counter()
    asyncio.run(go())
    return time.perf_counter() - t0, sum(failures)


def redis_used_memory(port: int) -> int:
    import redis

    with redis.Redis(host="127.0.0.1", port=port, socket_timeout=10, protocol=2) as c:
        return int(c.info("memory")["used_memory"])


def memory_redis(port: int, pid: int, n: int, value_size: int,
                 warmup: int = 0) -> dict[str, Any]:
    """used_memory (and RSS) delta per key over n keys, measured after `warmup` keys (the
    same warm-up as `memory_aspen`'s)."""
    used_start = redis_used_memory(port)
    if warmup:
        load_keys(port, warmup, value_size=value_size, first=n)
    used0, rss0 = redis_used_memory(port), rss_bytes(pid)
    seconds, _ = load_keys(port, n, value_size=value_size)
    used1, rss1 = redis_used_memory(port), rss_bytes(pid)
    return {"keys": n, "warmup_keys": warmup, "load_s": seconds,
            "used_memory_per_key": (used1 - used0) / n,
            "used_memory_per_key_from_start": (used1 - used_start) / (n + warmup),
            "rss_per_key": (rss1 - rss0) / n}


def memory_aspen(cluster: BenchCluster, n: int, value_size: int, timeout: float,
                 warmup: int = 0) -> dict[str, Any]:
    """RSS delta per key on every node (the leader's is the figure) over loading n keys.

    With `warmup`, that many other keys (same shape) are loaded first and the baseline is
    taken after them: the warm-up pays what does not grow with the key count (connection and
    parser buffers, the in-flight writes' bookkeeping of 8 pipelined connections, the Raft
    log's in-memory tail, sqlite's page cache, allocator arenas), which would otherwise be
    divided by a small n. `rss_per_key_from_start` is the delta over all n + warmup keys."""
    leader = cluster.wait_leader(timeout=30)
    port = cluster.resp_port(leader)
    start = {i: rss_bytes(cluster.procs[i].pid) for i in cluster.voters}
    if warmup:
        load_keys(port, warmup, value_size=value_size, timeout=timeout, first=n)
        cluster.wait_applied(cluster.status(leader)["commit_index"], cluster.voters,
                             timeout=timeout)
    before = {i: rss_bytes(cluster.procs[i].pid) for i in cluster.voters}
    seconds, retried = load_keys(port, n, value_size=value_size, timeout=timeout)
    commit = cluster.status(leader)["commit_index"]
    cluster.wait_applied(commit, cluster.voters, timeout=timeout)
    after = {i: rss_bytes(cluster.procs[i].pid) for i in cluster.voters}
    st = cluster.status(leader)
    return {
        "keys": n, "warmup_keys": warmup, "leader": leader, "load_s": seconds,
        "writes_retried": retried,
        "rss_per_key": (after[leader] - before[leader]) / n,
        "rss_per_key_by_node": {str(i): (after[i] - before[i]) / n for i in cluster.voters},
        "rss_per_key_from_start": (after[leader] - start[leader]) / (n + warmup),
        "rss_after_bytes": after[leader],
        "leader_commit_index": st["commit_index"], "leader_snapshot_index": st["snapshot_index"],
    }


# -- restart and catch-up -------------------------------------------------------------------


def _follower(cluster: BenchCluster) -> tuple[int, int]:
    leader = cluster.wait_leader(timeout=30)
    return leader, next(i for i in cluster.voters if i != leader)


def _applied(cluster: BenchCluster, i: int) -> int:
    return int(cluster.status(i, timeout=1)["applied_index"])


def _time_until_caught_up(cluster: BenchCluster, node: int, index: int, t0: float,
                          timeout: float) -> tuple[float, float]:
    """(seconds until the node answers PING and /status, seconds until applied >= index)."""
    cluster.wait_serving(node, timeout)
    serving = time.perf_counter() - t0
    wait_until(f"node {node} to apply {index}", lambda: _applied(cluster, node) >= index,
               timeout, interval=0.02)
    return serving, time.perf_counter() - t0


def _restart(cluster: BenchCluster, node: int, commit: int, timeout: float) -> dict[str, Any]:
    cluster.kill(node)
    t0 = time.perf_counter()
    cluster.start(node, wait=False)
    serving, caught = _time_until_caught_up(cluster, node, commit, t0, timeout)
    st = cluster.status(node)
    return {"serving_s": serving, "caught_up_s": caught, "commit_index": commit,
            "snapshot_index": st["snapshot_index"]}


_SNAP_FILE = re.compile(r"^snap-([0-9a-f]{16})-[0-9a-f]{16}\.snap$")


def _snapshot_on_disk(data_dir: Path) -> int:
    """The highest index of a complete snapshot file under a node's data dir (0: none)."""
    best = 0
    for path in data_dir.rglob("snap-*.snap"):
        m = _SNAP_FILE.match(path.name)
        if m:
            best = max(best, int(m.group(1), 16))
    return best


def _with_raft_setting(config: str, key: str, value: int) -> str:
    lines = config.splitlines()
    at = lines.index("[raft]") + 1
    return "\n".join([*lines[:at], f"{key} = {value}", *lines[at:]]) + "\n"


def restart_time(cluster: BenchCluster, timeout: float) -> dict[str, Any]:
    """kill -9 a follower and start it again, twice: once as it is (its last snapshot plus
    the log after it; with the default thresholds a freshly loaded keyspace is mostly log),
    and once right after it took a snapshot of everything. Each time: seconds until it answers
    (PING + /status) and until it re-applied the leader's commit index of before the kill.

    The snapshot is forced without any admin command: the node is restarted once with
    `snapshot_entries = 1`, so it snapshots as soon as it has re-applied its log."""
    leader, node = _follower(cluster)
    commit = cluster.status(leader)["commit_index"]
    out: dict[str, Any] = {"node": node, "commit_index": commit}
    out["replay"] = _restart(cluster, node, commit, timeout)
    path = cluster.config_path(node)
    original = path.read_text()
    path.write_text(_with_raft_setting(original, "snapshot_entries", 1))
    try:
        cluster.kill(node)
        t0 = time.perf_counter()
        cluster.start(node, wait=False)
        # /status shows the new snapshot index before the file is written: wait for the file.
        wait_until(f"node {node} to write a snapshot at >= {commit}",
                   lambda: _snapshot_on_disk(cluster.data_dir(node)) >= commit,
                   timeout, interval=0.02)
        out["snapshot_taken_after_s"] = time.perf_counter() - t0
    finally:
        path.write_text(original)
    out["from_snapshot"] = _restart(cluster, node, commit, timeout)
    # The figures of the restart that matters most: from a snapshot of all the keys.
    out.update({k: out["from_snapshot"][k] for k in ("serving_s", "caught_up_s",
                                                     "snapshot_index")})
    return out


def _metric(cluster: BenchCluster, i: int, name: str) -> float | None:
    """One sample of node i's /metrics (the first series of that name), None if absent."""
    import urllib.request

    with urllib.request.urlopen(f"http://{cluster.http(i)}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            return float(line.rsplit(" ", 1)[1])
    return None


def _trickle(port: int, stop: threading.Event) -> None:
    """One SET every 20 ms while the wiped follower comes back (the benchmark's write load;
    the leader notices the new incarnation from heartbeat answers as well)."""
    import redis

    n = 0
    with redis.Redis(host="127.0.0.1", port=port, socket_timeout=6, protocol=2) as c:
        while not stop.wait(0.02):
            n += 1
            with contextlib.suppress(redis.RedisError):
                c.set(b"trickle", b"%d" % n)


def wiped_catchup(cluster: BenchCluster, timeout: float) -> dict[str, Any]:
    """kill -9 a follower, delete its data dir, start it: time until it applied the leader's
    applied index of the moment it restarted (under a trickle of writes, see `_trickle`),
    caught up by the SAME leader (its answers carry a new incarnation: the leader resets its
    progress and probes; `same_leader` records that leader and term did not change).

    Fallback, should it not catch up within `timeout`: leadership is moved to the third node
    (a new leader probes every follower afresh) and the time after that is recorded too."""
    leader, node = _follower(cluster)
    term = cluster.status(leader)["term"]
    cluster.kill(node)
    shutil.rmtree(cluster.data_dir(node))
    target = cluster.status(leader)["applied_index"]
    out: dict[str, Any] = {"node": node, "leader": leader, "leader_applied": target,
                           "timeout_s": timeout, "trickle_writes_every_s": 0.02}
    stop = threading.Event()
    writer = threading.Thread(target=_trickle, args=(cluster.resp_port(leader), stop),
                              daemon=True)
    t0 = time.perf_counter()
    cluster.start(node, wait=False)
    writer.start()
    try:
        try:
            out["serving_s"], out["caught_up_s"] = _time_until_caught_up(
                cluster, node, target, t0, timeout)
            st = cluster.status(leader)
            out["same_leader"] = st["role"] == "leader" and st["term"] == term
            out["follower_logs_lost"] = _metric(cluster, leader, "aspen_follower_logs_lost_total")
            return out
        except TimeoutError as exc:
            out["caught_up_s"] = None
            out["error"] = str(exc)[:200]
        other = next(i for i in cluster.voters if i not in (leader, node))
        code, body = http_json(cluster.http(leader), "/transfer-leader", {"to": other},
                               timeout=10)
        t1 = time.perf_counter()
        out["transfer"] = {"to": other, "status": code}
        if code != 200:
            out["transfer"]["error"] = str(body)[:200]
            return out
        _, out["after_transfer_s"] = _time_until_caught_up(cluster, node, target, t1, timeout)
        return out
    finally:
        stop.set()
        writer.join(10)


# -- snapshot (in process) ------------------------------------------------------------------


def snapshot_inprocess(n: int, value_size: int, progress: Callable[[str], None] | None = None
                       ) -> dict[str, Any]:
    """The node's snapshot path on a state of n keys: `ReplicatedState.snapshot()` (CBOR of the
    whole state), `save_snapshot` into the sqlite store (write + fsync), and `restore`.

    In process because a daemon cannot be asked to snapshot now (no ASPEN.SNAPSHOT command or
    HTTP route exists yet): the code is the daemon's, the timing is exact."""
    from aspen.cluster.state import ReplicatedState
    from aspen.kv.keyspace import Keyspace
    from aspen.kv.ops import WriteOp
    from aspen.raft.types import Membership, SnapshotMeta
    from aspen.storage import open_storage

    ks = Keyspace()
    value = b"v" * value_size
    for i in range(n):
        ks.execute(WriteOp([b"SET", key(i), value]), 0, i)
    state = ReplicatedState(ks)
    state.applied_index = n
    if progress:
        progress("encoding")
    t0 = time.perf_counter()
    data = state.snapshot()
    encode = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="aspen-bench-snap-") as tmp:
        store = open_storage(Path(tmp) / "store", "sqlite")
        try:
            t0 = time.perf_counter()
            store.save_snapshot(SnapshotMeta(n, 1, Membership(voters={1, 2, 3})), data)
            write = time.perf_counter() - t0
        finally:
            store.close()
    t0 = time.perf_counter()
    ReplicatedState.restore(data)
    restore = time.perf_counter() - t0
    return {"keys": n, "bytes": len(data), "encode_s": encode, "write_fsync_s": write,
            "snapshot_s": encode + write, "restore_s": restore}
