"""Election, replication, forwarding and MULTI/EXEC through followers, on 2 and 3 nodes."""

from __future__ import annotations

import trio

from aspen.cluster import CLUSTERDOWN
from aspen.resp.values import NULL_ARRAY, OK, Error
from harness.cluster import InProcessCluster, open_cluster


def followers(cluster: InProcessCluster, leader_id: int) -> list[int]:
    return [n.id for n in cluster.running() if n.id != leader_id]


async def test_one_leader_and_everyone_agrees(
    cluster_n: InProcessCluster, autojump_clock: object
) -> None:
    cluster = cluster_n
    leader = await cluster.wait_leader()
    assert len(cluster.leaders()) == 1
    terms = {n.status()["term"] for n in cluster.running()}
    assert terms == {leader.status()["term"]}
    assert all(n.leader_id == leader.id for n in cluster.running())


async def test_writes_on_every_node_replicate_everywhere(
    cluster_n: InProcessCluster, autojump_clock: object
) -> None:
    cluster = cluster_n
    for node in cluster.running():
        client = cluster.client(node.id)
        assert await client.cmd("SET", f"key-{node.id}", f"from-{node.id}") == OK
        assert await client.cmd("INCR", "counter") == node.id  # ids are 1..n, in order
    await cluster.wait_converged()
    for node in cluster.running():
        client = cluster.client(node.id)
        for other in cluster.running():
            assert await client.cmd("GET", f"key-{other.id}") == f"from-{other.id}".encode()
        assert await client.cmd("GET", "counter") == str(len(cluster.running())).encode()
    assert len(set(cluster.digests().values())) == 1


async def test_follower_forwards_and_replies_come_from_its_own_apply(
    cluster3: InProcessCluster,
    autojump_clock: object,
) -> None:
    leader = await cluster3.wait_leader()
    follower = followers(cluster3, leader.id)[0]
    client = cluster3.client(follower)
    # errors computed by apply travel back too: the follower computes them itself
    assert await client.cmd("SET", "s", "text") == OK
    reply = await client.cmd("INCR", "s")
    assert isinstance(reply, Error) and "not an integer" in reply.message
    assert cluster3.nodes[follower].stats.writes_forwarded >= 2
    assert leader.stats.writes_forwarded == 0


async def test_multi_exec_from_a_follower_is_one_atomic_entry(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    leader = await cluster3.wait_leader()
    follower = followers(cluster3, leader.id)[0]
    client = cluster3.client(follower)
    before = leader.stats.ops_proposed
    assert await client.cmd("MULTI") == OK
    for _ in range(3):
        await client.cmd("INCR", "n")
    await client.cmd("GET", "n")
    assert await client.cmd("EXEC") == [1, 2, 3, b"3"]
    assert leader.stats.ops_proposed == before + 1  # the whole transaction is one op


async def test_watch_conflict_from_another_node_aborts_exec(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    leader = await cluster3.wait_leader()
    a, b = followers(cluster3, leader.id)
    ca, cb = cluster3.client(a), cluster3.client(b)
    await ca.cmd("SET", "w", "1")
    await cluster3.wait_converged()
    assert await ca.cmd("WATCH", "w") == OK
    assert await cb.cmd("SET", "w", "2") == OK  # a write through another node
    await cluster3.wait_converged()
    await ca.cmd("MULTI")
    await ca.cmd("SET", "w", "3")
    assert await ca.cmd("EXEC") == NULL_ARRAY
    assert await ca.cmd("GET", "w") == b"2"


async def test_concurrent_writes_share_log_entries(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    leader = await cluster3.wait_leader()
    entries_before = leader.stats.entries_proposed

    async def writer(i: int) -> None:
        client = cluster3.client(1 + i % 3)
        assert await client.cmd("SET", f"c{i}", i) == OK

    async with trio.open_nursery() as nursery:
        for i in range(60):
            nursery.start_soon(writer, i)
    assert leader.stats.max_batch > 1
    assert leader.stats.entries_proposed - entries_before < 60


async def test_no_quorum_gives_clusterdown_in_bounded_time(autojump_clock: object) -> None:
    async with open_cluster(3, seed=5, request_timeout=2.0) as cluster:
        leader = await cluster.wait_leader()
        survivor = followers(cluster, leader.id)[0]
        for node in list(cluster.running()):
            if node.id != survivor:
                await cluster.stop(node.id)
        await trio.sleep(2.0)  # long past the election timeout: nobody leads
        client = cluster.client(survivor)
        start = trio.current_time()
        assert await client.cmd("SET", "k", "v") == CLUSTERDOWN
        assert await client.cmd("GET", "k") == CLUSTERDOWN
        assert trio.current_time() - start <= 2 * 2.0 + 0.5


async def test_write_to_a_leader_that_loses_quorum_is_reported_unknown(
    autojump_clock: object,
) -> None:
    async with open_cluster(3, seed=6, request_timeout=2.0) as cluster:
        leader = await cluster.wait_leader()
        for other in followers(cluster, leader.id):
            await cluster.stop(other)
        reply = await cluster.client(leader.id).cmd("SET", "k", "v")
        assert isinstance(reply, Error)
        assert reply.message.startswith("TIMEOUT write outcome unknown")


async def test_a_standalone_node_is_a_one_node_group(autojump_clock: object) -> None:
    async with open_cluster(1, seed=7, bootstrap=False, bootstrap_voters=(1,)) as cluster:
        start = trio.current_time()
        node = await cluster.wait_leader()
        assert trio.current_time() - start < 0.1  # no election timeout to sit out
        client = cluster.client(1)
        assert await client.cmd("SET", "k", "v") == OK
        assert await client.cmd("GET", "k") == b"v"
        assert node.status()["membership"]["voters"] == [1]
        assert node.status()["commit_index"] == node.status()["applied_index"] >= 3
        assert sum(node.stats.fsync_buckets) == node.stats.fsyncs > 0
        info = dict(node.info_fields())
        assert info["raft_role"] == "leader" and info["raft_voters"] == "1"


async def test_init_on_one_node_brings_in_the_others(autojump_clock: object) -> None:
    async with open_cluster(3, seed=8, bootstrap=False) as cluster:
        with trio.move_on_after(3):
            await cluster.wait_leader()
        assert cluster.leaders() == []  # nothing happens before init
        cluster.nodes[2].init([1, 2, 3])
        leader = await cluster.wait_leader()
        assert await cluster.client(3).cmd("SET", "k", "v") == OK
        await cluster.wait_converged()
        assert len(set(cluster.digests().values())) == 1
        assert leader.status()["membership"]["voters"] == [1, 2, 3]
