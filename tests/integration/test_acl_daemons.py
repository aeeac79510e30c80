"""ACL users across real daemons: a user made on the leader logs in on every node, after the
leader is killed, and after a restart that recovers from a snapshot; what a user may not do
is refused, logged and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from harness.daemons import DaemonCluster, started_cluster, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def snapshotting(tmp_path: Path) -> Iterator[DaemonCluster]:
    """Three daemons that snapshot every few entries (users must travel in snapshots)."""
    with started_cluster(3, tmp_path, raft={"snapshot_entries": 5}) as c:
        yield c


def _can_login(cluster: DaemonCluster, node: int, user: str, password: str) -> bool:
    """AUTH user password on a fresh connection to `node`."""
    try:
        with cluster.client(node) as c:
            return c.execute_command("AUTH", user, password) is True
    except (redis.AuthenticationError, redis.ResponseError, redis.ConnectionError):
        return False


def test_users_replicate_survive_failover_and_restart(snapshotting: DaemonCluster) -> None:
    cluster = snapshotting
    leader = cluster.wait_leader()
    with cluster.client(leader) as admin:
        assert admin.execute_command("ACL", "SETUSER", "alice", "on", ">s3cret", "~app:*",
                                     "+@read", "+set") == b"OK"
    for i in cluster.voters:
        wait_until(f"alice to log in on n{i}",
                   lambda i=i: _can_login(cluster, i, "alice", "s3cret") or None, 20)
        assert not _can_login(cluster, i, "alice", "wrong")
    follower = next(i for i in cluster.voters if i != leader)
    with cluster.client(follower, username="alice", password="s3cret") as alice:
        assert alice.set("app:1", "v") is True  # forwarded to the leader, allowed
        with pytest.raises(redis.exceptions.NoPermissionError):
            alice.set("other", "v")
        with pytest.raises(redis.exceptions.NoPermissionError):
            alice.delete("app:1")
        assert alice.get("app:1") == b"v"
    with cluster.client(follower) as admin:
        assert admin.exists("other") == 0
        log = admin.execute_command("ACL", "LOG")
        reasons = {(e[b"reason"], e[b"object"]) if isinstance(e, dict) else
                   (e[3], e[7]) for e in log}
        assert (b"key", b"other") in reasons and (b"command", b"del") in reasons
    # enough writes that every node snapshots past the SETUSER entry
    with cluster.client(leader) as admin:
        for n in range(20):
            admin.set(f"fill:{n}", n)
    # the leader dies: a new leader, and alice still logs in everywhere left
    cluster.kill(leader)
    rest = [i for i in cluster.voters if i != leader]
    new_leader = cluster.wait_leader(among=rest)
    with cluster.client(new_leader) as admin:
        assert admin.execute_command("ACL", "SETUSER", "bob", "on", ">pw", "+@all",
                                     "~*") == b"OK"
        assert admin.execute_command("ACL", "DELUSER", "alice") == 1
        for n in range(20):
            admin.set(f"more:{n}", n)
    for i in rest:
        wait_until(f"bob on n{i}", lambda i=i: _can_login(cluster, i, "bob", "pw") or None, 20)
        assert not _can_login(cluster, i, "alice", "s3cret")
    # the killed node restarts and catches up (the other nodes' snapshots or its log)
    cluster.restart(leader)
    wait_until("bob on the restarted node",
               lambda: _can_login(cluster, leader, "bob", "pw") or None, 30)
    assert not _can_login(cluster, leader, "alice", "s3cret")
    # a full restart: every node recovers the users from its own disk
    for i in cluster.voters:
        cluster.kill(i)
    for i in cluster.voters:
        cluster.start(i, wait=False)
    cluster.wait_leader()
    for i in cluster.voters:
        wait_until(f"bob after a full restart on n{i}",
                   lambda i=i: _can_login(cluster, i, "bob", "pw") or None, 30)
