"""Streams on three real `aspen node` daemons: XADD on the leader, XREADGROUP on a follower,
identical pending entries lists on every node, groups kept across a failover, and XREAD BLOCK /
XREADGROUP BLOCK parked on a follower and woken by an XADD on the leader."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from harness.daemons import DaemonCluster, wait_until

pytestmark = pytest.mark.slow


def blocked(cluster: DaemonCluster, i: int) -> int:
    return int(cluster.client(i).info("clients")["blocked_clients"])


def wait_blocked(cluster: DaemonCluster, i: int, n: int) -> None:
    wait_until(f"{n} clients parked on node {i}", lambda: blocked(cluster, i) == n, 10)


def stale(cluster: DaemonCluster, i: int) -> redis.Redis:
    c = cluster.client(i)
    c.execute_command("ASPEN.CONSISTENCY", "stale")
    return c


def test_groups_replicate_and_survive_a_failover(cluster: DaemonCluster) -> None:
    leader = cluster.wait_leader()
    follower = next(i for i in cluster.voters if i != leader)
    lc, fc = cluster.client(leader), cluster.client(follower)

    for i in range(250):
        lc.xadd("jobs", {"n": str(i)}, maxlen=200, approximate=True)
    assert lc.xlen("jobs") > 200  # whole nodes only
    fc.xgroup_create("jobs", "workers", id="0")
    got = fc.xreadgroup("workers", "alice", {"jobs": ">"}, count=10)
    assert len(got[0][1]) == 10  # served on a follower: a replicated write
    first = got[0][1][0][0]
    assert fc.xack("jobs", "workers", first) == 1
    fc.xreadgroup("workers", "bob", {"jobs": ">"}, count=5)

    # every replica holds the same PEL, delivery times included
    def pel(i: int) -> object:
        return stale(cluster, i).xpending_range("jobs", "workers", "-", "+", 100)

    wait_until("the PEL on every node", lambda: all(
        len(pel(i)) == 14 for i in cluster.voters), 10)  # type: ignore[arg-type]
    times = [
        stale(cluster, i).execute_command("XINFO", "STREAM", "jobs", "FULL")
        for i in cluster.voters
    ]
    assert all(t == times[0] for t in times)

    # the leader goes away: the new leader has the groups, the PEL and the last ID
    cluster.kill(leader)
    new_leader = cluster.wait_leader(among=[i for i in cluster.voters if i != leader])
    nc = cluster.client(new_leader)
    info = nc.xinfo_groups("jobs")
    assert [(g["name"], g["pending"], g["consumers"]) for g in info] == [(b"workers", 14, 2)]
    before = nc.xinfo_stream("jobs")["last-generated-id"]
    new_id = nc.xadd("jobs", {"n": "after"})
    assert new_id > before or len(new_id) > len(before)
    assert nc.xautoclaim("jobs", "workers", "carol", 0, "0-0", count=100, justid=True)[1]
    assert nc.xpending("jobs", "workers")["consumers"] == [
        {"name": b"carol", "pending": 14}
    ]


def test_blocking_reads_on_a_follower_are_woken_by_the_leader(cluster: DaemonCluster) -> None:
    leader = cluster.wait_leader()
    follower = next(i for i in cluster.voters if i != leader)
    lc = cluster.client(leader)
    lc.xadd("s", {"old": "1"}, id="1-1")
    lc.xgroup_create("s", "g", id="$")

    got: dict[str, object] = {}
    readers = [
        threading.Thread(target=lambda: got.__setitem__(
            "xread", cluster.client(follower).xread({"s": "$"}, block=0))),
        threading.Thread(target=lambda: got.__setitem__(
            "group", cluster.client(follower).xreadgroup("g", "c", {"s": ">"}, block=0))),
    ]
    for t in readers:
        t.start()
    wait_blocked(cluster, follower, 2)
    new_id = lc.xadd("s", {"new": "2"})
    for t in readers:
        t.join(10)
    # `$` meant the last ID when XREAD parked: only the new entry
    assert got["xread"] == [[b"s", [(new_id, {b"new": b"2"})]]]
    assert got["group"] == [[b"s", [(new_id, {b"new": b"2"})]]]
    assert lc.xpending("s", "g")["pending"] == 1

    # a timeout is a null reply (redis-py RESP2 hands it over as [], as for redis-server);
    # MULTI never blocks
    started = time.monotonic()
    assert cluster.client(follower).xread({"s": "$"}, block=300) == []
    assert time.monotonic() - started >= 0.25
    pipe = cluster.client(follower).pipeline(transaction=True)
    pipe.xread({"s": "$"}, block=0)
    assert pipe.execute() == [[]]

    # CLIENT UNBLOCK releases a parked reader; XGROUP DESTROY ends a group reader with NOGROUP
    c = cluster.client(follower)
    cid = c.client_id()
    out: list[object] = []
    t = threading.Thread(target=lambda: out.append(c.xread({"s": "$"}, block=0)))
    t.start()
    wait_blocked(cluster, follower, 1)
    assert cluster.client(follower).client_unblock(cid) == 1
    t.join(10)
    assert out == [[]]

    errors: list[str] = []

    def group_reader() -> None:
        try:
            cluster.client(follower).xreadgroup("g", "c", {"s": ">"}, block=0)
        except redis.ResponseError as exc:
            errors.append(str(exc))

    t = threading.Thread(target=group_reader)
    t.start()
    wait_blocked(cluster, follower, 1)
    assert lc.xgroup_destroy("s", "g") == 1
    t.join(10)
    assert errors and "no longer exists" in errors[0]

    # deleting the key ends a parked XREADGROUP too (Redis 7.0.15: -UNBLOCKED)
    lc.xgroup_create("s", "g", id="$")
    errors.clear()
    t = threading.Thread(target=group_reader)
    t.start()
    wait_blocked(cluster, follower, 1)
    assert lc.delete("s") == 1
    t.join(10)
    assert errors == ["UNBLOCKED the stream key no longer exists"]
