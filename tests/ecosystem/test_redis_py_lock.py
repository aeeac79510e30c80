"""redis-py's `Lock` (its release/extend/reacquire are Lua scripts run with EVALSHA) unchanged
against a three-node cluster: two clients on two different nodes, then across a leader kill."""

from __future__ import annotations

import time

import pytest
from redis.exceptions import LockError, LockNotOwnedError
from redis.lock import Lock

from harness.daemons import DaemonCluster


def test_lock_across_two_nodes(cluster: DaemonCluster) -> None:
    leader = cluster.wait_leader()
    a_node, b_node = [i for i in cluster.voters if i != leader]
    a, b = cluster.client(a_node), cluster.client(b_node)
    lock_a = Lock(a, "resource", timeout=5)
    lock_b = Lock(b, "resource", timeout=5)
    assert lock_a.acquire(blocking=False)
    assert not lock_b.acquire(blocking=False)  # held by a, seen from another node
    assert lock_a.owned() and not lock_b.owned()
    before = b.pttl("resource")
    assert lock_a.extend(10)  # a script: adds 10 s to the TTL
    assert b.pttl("resource") > before + 5000
    assert lock_a.reacquire()  # a script: resets the TTL to the lock's timeout
    assert b.pttl("resource") <= 5000
    with pytest.raises(LockNotOwnedError):
        lock_b.do_release(b"not-the-token")  # the release script refuses a wrong token
    lock_a.release()
    assert lock_b.acquire(blocking=True, blocking_timeout=2)
    with pytest.raises(LockError):
        lock_a.release()  # no longer a's
    lock_b.release()
    assert a.get("resource") is None


def test_lock_across_a_leader_kill(cluster: DaemonCluster) -> None:
    leader = cluster.wait_leader()
    survivor, other = [i for i in cluster.voters if i != leader]
    holder = Lock(cluster.client(survivor), "job", timeout=30)
    assert holder.acquire(blocking=False)
    cluster.kill(leader)
    cluster.wait_leader(among=[survivor, other])
    # the lock (and the release/extend scripts) survived the failover
    rival = Lock(cluster.client(other), "job", timeout=30)
    assert not rival.acquire(blocking=False)
    assert holder.extend(5)
    assert cluster.client(other).pttl("job") > 30_000
    holder.release()
    assert rival.acquire(blocking=False)
    cluster.start(leader)
    old = cluster.client(leader)
    deadline = time.monotonic() + 20
    while old.get("job") != rival.local.token and time.monotonic() < deadline:
        time.sleep(0.1)
    # the restarted node sees the new holder, and the release script works there too
    assert old.get("job") == rival.local.token
    rival_there = Lock(old, "job", timeout=30)
    rival_there.local.token = rival.local.token
    rival_there.release()
    assert cluster.client(other).get("job") is None
