"""Issue 17 item 8: a rolling upgrade of a running 3-node cluster, from the last release
without peer protocol versions to this tree, under a client load.

The old release is the commit `BASE` (a commit of main before transports/protocol.py
existed), extracted with ``git archive`` from this repository's own history; its daemons run
with PYTHONPATH pointing at that tree, the upgraded ones at this one. Each node in turn: hand
leadership away if it leads, SIGTERM it, restart it from the new tree on the same data dir
and config, wait until it has caught up. Every acknowledged write must then be on every node,
the cluster must have switched to protocol 2 (and use it), and the longest pause between two
acknowledged writes is printed (the figure for docs/operations.md).
"""

from __future__ import annotations

import itertools
import re
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import pytest
import redis

from harness.daemons import DaemonCluster, http_json, wait_until
from transports.protocol import PROTOCOL

pytestmark = pytest.mark.slow

BASE = "7e438a748cf80ebf06b642096e303a901dfc86f1"
"""A commit of main before peer protocol versions: its nodes send no HELLO, read only v1
envelopes and drop unknown kinds (the base this branch was rebased on)."""
ROOT = Path(__file__).resolve().parents[2]
BIG = 40_000  # every 25th value: big and compressible, so protocol 2's zlib envelopes show


def _old_tree(dest: Path) -> Path:
    git = ["git", "-C", str(ROOT)]
    if subprocess.run([*git, "rev-parse", "--git-dir"], capture_output=True).returncode != 0:
        pytest.skip(f"{ROOT} is not a git checkout: the old release comes from its history")
    if subprocess.run([*git, "cat-file", "-e", f"{BASE}^{{commit}}"],
                      capture_output=True).returncode != 0:
        pytest.skip(f"commit {BASE[:12]} is not in this clone (shallow? `git fetch --unshallow`)")
    archive = dest.with_suffix(".tar")
    with archive.open("wb") as out:
        subprocess.run([*git, "archive", BASE, "aspen", "transports"], stdout=out, check=True)
    dest.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    assert (dest / "aspen" / "cli.py").exists()
    assert not (dest / "transports" / "protocol.py").exists()  # really the release before
    return dest


class Load:
    """One writer per node; a writer whose node fails moves on to the next node (as a client
    with a list of endpoints does). Only acknowledged writes count."""

    def __init__(self, cluster: DaemonCluster, writers: int = 3) -> None:
        self.cluster = cluster
        self.acked: dict[str, bytes] = {}
        self.acked_at: list[float] = []
        self.errors = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(w,)) for w in range(writers)]

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(15)

    def _run(self, writer: int) -> None:
        clients: dict[int, redis.Redis] = {}
        voters = self.cluster.voters
        node = voters[writer % len(voters)]
        n = 0
        while not self._stop.is_set():
            key = f"w{writer}:{n}"
            value = (key.encode() * (BIG // len(key))) if n % 25 == 0 else key.encode()
            n += 1
            try:
                client = clients.get(node)
                if client is None:
                    client = clients[node] = self.cluster.client(node, socket_timeout=3)
                if client.set(key, value):
                    with self._lock:
                        self.acked[key] = value
                        self.acked_at.append(time.monotonic())
            except (redis.RedisError, OSError):
                # Not acknowledged: outcome unknown, never counted. Reconnect next time.
                self.errors += 1
                old = clients.pop(node, None)
                if old is not None:
                    old.close()
                node = voters[(voters.index(node) + 1) % len(voters)]
                time.sleep(0.02)
        for client in clients.values():
            client.close()

    def count(self) -> int:
        with self._lock:
            return len(self.acked)

    def max_gap(self, since: float) -> float:
        with self._lock:
            times = sorted(t for t in self.acked_at if t >= since)
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


def _metric(cluster: DaemonCluster, node: int, name: str) -> float | None:
    code, text = http_json(cluster.http(node), "/metrics")
    assert code == 200 and isinstance(text, str)
    found = re.search(rf'^{name}{{node="{node}"}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else None


def _upgrade(cluster: DaemonCluster, node: int, new_tree: str, load: Load) -> float:
    """Move `node` to the new tree; returns the seconds it took."""
    started = time.monotonic()
    if cluster.leader() == node:
        to = next(i for i in cluster.voters if i != node)
        code, body = http_json(cluster.http(node), "/transfer-leader", {"to": to}, timeout=10)
        assert code == 200, body
        cluster.wait_leader(exclude=node, timeout=10)
    assert cluster.stop(node) == 0, cluster.log_tail(node)
    cluster.pythonpath[node] = new_tree
    cluster.start(node, timeout=30)
    leader = cluster.wait_leader(timeout=15)
    target = cluster.status(leader)["commit_index"]
    cluster.wait_applied(target, [node], timeout=20)
    before = load.count()
    wait_until("writes to go on", lambda: load.count() > before + 20, timeout=15)
    return time.monotonic() - started


def test_rolling_upgrade_from_the_previous_release_loses_nothing(tmp_path: Path) -> None:
    old_tree = str(_old_tree(tmp_path / "old"))
    new_tree = str(ROOT)
    with DaemonCluster(3, tmp_path / "cluster") as cluster:
        cluster.pythonpath.update({i: old_tree for i in cluster.voters})
        cluster.start_all()
        cluster.wait_leader()
        assert _metric(cluster, 1, "aspen_cluster_protocol") is None  # old code: no such metric
        with Load(cluster) as load:
            wait_until("a first 100 writes", lambda: load.count() >= 100, timeout=20)
            began = time.monotonic()
            durations = {}
            for node in cluster.voters:
                durations[node] = _upgrade(cluster, node, new_tree, load)
                if node != cluster.voters[-1]:
                    # Mixed cluster: upgraded nodes run the oldest member's protocol.
                    assert _metric(cluster, node, "aspen_cluster_protocol") == 1
            upgraded_in = time.monotonic() - began
            wait_until(
                "every node to run protocol 2",
                lambda: all(_metric(cluster, i, "aspen_cluster_protocol") == PROTOCOL
                            for i in cluster.voters),
                timeout=15,
            )
            before = load.count()
            wait_until("writes at protocol 2", lambda: load.count() > before + 100, timeout=20)
            gap = load.max_gap(began)
        leader = cluster.wait_leader()
        compressed = _metric(cluster, leader, "aspen_peer_messages_compressed_total")
        assert compressed is not None and compressed > 0
        # Every acknowledged write is on every node.
        keys = sorted(load.acked)
        for node in cluster.voters:
            with cluster.client(node) as c:
                for start in range(0, len(keys), 500):
                    chunk = keys[start:start + 500]
                    assert c.mget(chunk) == [load.acked[k] for k in chunk], f"node {node}"
        per_node = ", ".join(f"n{n} {d:.1f}s" for n, d in durations.items())
        print(
            f"\nrolling upgrade {BASE[:9]} -> working tree, 3 nodes under load: "
            f"{len(keys)} writes acknowledged, {load.errors} failed attempts, all present; "
            f"upgrades took {upgraded_in:.1f}s ({per_node}); "
            f"longest pause between acknowledged writes {gap * 1000:.0f} ms; "
            f"leader sent {compressed:.0f} compressed messages after the switch"
        )
        assert gap < 5.0, f"writes paused {gap:.1f}s (more than a leader transfer)"
