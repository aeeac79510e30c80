"""Numbered databases across the cluster: a write in database 3 through one node is in
database 3 (and not 0) on every other node, after a restart from disk and after a snapshot
install; blocked clients wait in their own database; SWAPDB re-checks them."""

from __future__ import annotations

from pathlib import Path

import trio

from aspen.kv.ops import ReadOp
from aspen.resp.values import NULL_ARRAY, OK
from harness.cluster import Client, InProcessCluster, open_cluster


async def _in_db(cluster: InProcessCluster, node_id: int, db: int) -> Client:
    client = cluster.client(node_id)
    assert await client.cmd("SELECT", db) == OK
    return client


async def _check_everywhere(cluster: InProcessCluster) -> None:
    await cluster.wait_converged()
    for node in cluster.running():
        assert await node.read(ReadOp((b"GET", b"k"), 3), "stale") == b"in-3", node.id
        assert await node.read(ReadOp((b"GET", b"k")), "stale") == b"in-0", node.id
        assert await node.read(ReadOp((b"GET", b"moved"), 5), "stale") == b"m", node.id
        assert await node.read(ReadOp((b"DBSIZE",), 4), "stale") == 0, node.id
        client = await _in_db(cluster, node.id, 3)
        assert await client.cmd("GET", "k") == b"in-3"
        assert await client.cmd("DBSIZE") == 1


async def _write(cluster: InProcessCluster, via: int) -> None:
    c0 = cluster.client(via)
    assert await c0.cmd("SET", "k", "in-0") == OK
    c3 = await _in_db(cluster, via, 3)
    assert await c3.cmd("SET", "k", "in-3") == OK
    assert await c3.cmd("SET", "moved", "m") == OK
    assert await c3.cmd("MOVE", "moved", 5) == 1
    assert await c3.cmd("MULTI") == OK
    await c3.cmd("SELECT", 4)
    await c3.cmd("SET", "tmp", "x")
    await c3.cmd("FLUSHDB")
    assert await c3.cmd("EXEC") == [OK, OK, OK]
    assert c3.session.db == 4


async def test_a_write_in_db3_is_in_db3_on_every_node_after_restart(tmp_path: Path) -> None:
    async with open_cluster(3, seed=71, data_dir=tmp_path, snapshot_entries=5) as cluster:
        leader = await cluster.wait_leader()
        follower = next(n.id for n in cluster.running() if n.id != leader.id)
        await _write(cluster, follower)  # forwarded to the leader, carrying its database
        await _check_everywhere(cluster)
        for node_id in (1, 2, 3):
            await cluster.stop(node_id)
        for node_id in (1, 2, 3):
            await cluster.start(node_id)
        await cluster.wait_leader()
        await _check_everywhere(cluster)


async def test_a_write_in_db3_reaches_a_node_through_a_snapshot(autojump_clock: object) -> None:
    async with open_cluster(3, seed=72, snapshot_entries=4) as cluster:
        leader = await cluster.wait_leader()
        lagger = next(n.id for n in cluster.running() if n.id != leader.id)
        await cluster.stop(lagger)
        await _write(cluster, leader.id)
        for i in range(20):  # past the snapshot threshold: the log is compacted
            assert await cluster.client(leader.id).cmd("SET", f"f{i}", i) == OK
        await leader.snapshot_now()
        node = await cluster.start(lagger)
        await cluster.wait_converged()
        assert node.stats.snapshots_installed >= 1
        assert node.state.digest() == leader.state.digest()
        await _check_everywhere(cluster)


async def test_blocked_clients_wait_in_their_database(autojump_clock: object) -> None:
    async with open_cluster(3, seed=73) as cluster:
        leader = await cluster.wait_leader()
        follower = next(n.id for n in cluster.running() if n.id != leader.id)
        got: list[object] = []

        async def blpop() -> None:
            client = await _in_db(cluster, follower, 1)
            got.append(await client.cmd("BLPOP", "q", "0"))

        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(blpop)
                while cluster.nodes[follower].blocking.blocked_clients != 1:
                    await trio.sleep(0.01)
                assert await cluster.client(leader.id).cmd("RPUSH", "q", "db0") == 1
                await trio.sleep(1)
                assert got == []  # a push to q in database 0 is not for it
                c2 = await _in_db(cluster, leader.id, 2)
                assert await c2.cmd("RPUSH", "q", "db2") == 1
                assert await c2.cmd("SWAPDB", 1, 2) == OK  # db 1 now holds the list
        assert got == [[b"q", b"db2"]]
        c0 = cluster.client(leader.id)
        assert await c0.cmd("LRANGE", "q", 0, -1) == [b"db0"]
        c2 = await _in_db(cluster, leader.id, 2)
        assert await c2.cmd("BLPOP", "q", "0.1") == NULL_ARRAY


async def test_xread_block_waits_in_its_database(autojump_clock: object) -> None:
    async with open_cluster(3, seed=74) as cluster:
        leader = await cluster.wait_leader()
        follower = next(n.id for n in cluster.running() if n.id != leader.id)
        got: list[object] = []

        async def xread() -> None:
            client = await _in_db(cluster, follower, 2)
            got.append(await client.cmd("XREAD", "BLOCK", "0", "STREAMS", "s", "$"))

        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(xread)
                while cluster.nodes[follower].blocking.blocked_clients != 1:
                    await trio.sleep(0.01)
                assert await cluster.client(leader.id).cmd("XADD", "s", "1-1", "f", "0") == b"1-1"
                await trio.sleep(1)
                assert got == []  # an entry of s in database 0 is not for it
                c2 = await _in_db(cluster, leader.id, 2)
                assert await c2.cmd("XADD", "s", "2-1", "f", "2") == b"2-1"
        assert len(got) == 1
        assert got[0].items == [(b"s", [[b"2-1", [b"f", b"2"]]])]  # type: ignore[attr-defined]
