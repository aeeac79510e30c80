"""Real daemons: a follower killed with -9 and restarted with an empty data dir is caught up by
the SAME leader (same term, no election), ends with the same keyspace, and the leader says so
in its log and /metrics."""

from __future__ import annotations

import hashlib
import shutil
import urllib.request
from pathlib import Path

import pytest

from harness.daemons import DaemonCluster, wait_until

pytestmark = pytest.mark.slow


def keyspace_digest(cluster: DaemonCluster, i: int) -> str:
    """Every key and value node i serves (GETs are served from its own replica once it has
    applied the leader's read index)."""
    with cluster.client(i) as c:
        keys = sorted(c.keys("*"))
        values = c.mget(keys) if keys else []
    h = hashlib.sha256()
    for k, v in zip(keys, values, strict=True):
        h.update(b"%d:%s=%d:%s;" % (len(k), k, len(v or b""), v or b""))
    return h.hexdigest()


def metric(cluster: DaemonCluster, i: int, name: str) -> float:
    with urllib.request.urlopen(f"http://{cluster.http(i)}/metrics", timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in node {i}'s /metrics")


def test_a_wiped_follower_catches_up_from_the_same_leader(tmp_path: Path) -> None:
    with DaemonCluster(3, tmp_path) as cluster:
        try:
            cluster.start_all()
            leader = cluster.wait_leader()
            term = cluster.status(leader)["term"]
            follower = next(i for i in cluster.voters if i != leader)
            with cluster.client(leader) as c:
                pipe = c.pipeline(transaction=False)
                for k in range(500):
                    pipe.set(f"k{k}", f"v{k}")
                pipe.rpush("list", *[str(k) for k in range(50)])
                pipe.execute()
            data_dir = tmp_path / f"n{follower}"
            assert data_dir.is_dir()
            cluster.kill(follower)
            shutil.rmtree(data_dir)
            cluster.start(follower)
            with cluster.client(leader) as c:
                assert c.set("after-wipe", "1") is True
            target = cluster.status(leader)["applied_index"]
            wait_until(f"node {follower} to apply {target}",
                       lambda: cluster.status(follower)["applied_index"] >= target, 20)
            st = cluster.status(leader)
            assert (st["role"], st["term"]) == ("leader", term)  # no election, no transfer
            assert cluster.status(follower)["term"] == term
            digests = {i: keyspace_digest(cluster, i) for i in cluster.voters}
            assert len(set(digests.values())) == 1, digests
            with cluster.client(follower) as c:
                assert c.get("k499") == b"v499" and c.llen("list") == 50
            assert metric(cluster, leader, "aspen_follower_logs_lost_total") == 1
            assert "WITHOUT ITS LOG" in (tmp_path / f"n{leader}.log").read_text()
        except BaseException:
            for i in cluster.members:
                print(f"--- n{i}.log\n{cluster.log_tail(i)}")
            raise
