"""Membership changes, snapshot catch-up of new and lagging nodes, leadership transfer."""

from __future__ import annotations

import trio

from aspen.kv.ops import ReadOp
from aspen.resp.values import OK
from harness.cluster import InProcessCluster, open_cluster


async def _fill(cluster: InProcessCluster, via: int, n: int, prefix: str = "k") -> None:
    async def put(lo: int) -> None:
        client = cluster.client(via)
        for i in range(lo, n, 8):
            assert await client.cmd("SET", f"{prefix}{i}", i) == OK

    async with trio.open_nursery() as nursery:
        for lo in range(8):
            nursery.start_soon(put, lo)


async def test_add_learner_promote_then_remove(
    cluster_n: InProcessCluster, autojump_clock: object
) -> None:
    cluster = cluster_n
    members = [n.id for n in cluster.running()]
    new_id = max(members) + 1
    leader = await cluster.wait_leader()
    await _fill(cluster, leader.id, 20)
    learner = await cluster.start(new_id, peers=members)
    await leader.add_learner(new_id, f"10.0.0.{new_id}:7000")
    m = leader.status()["membership"]
    assert m["learners"] == [new_id] and new_id not in m["voters"]
    await cluster.wait_converged()
    assert learner.state.digest() == leader.state.digest()
    assert learner.status()["role"] == "follower"
    # a learner serves linearizable reads (its read index comes from the leader)
    assert await learner.read(ReadOp((b"GET", b"k19")), "linearizable") == b"19"

    everyone = [*members, new_id]
    await leader.change_membership(everyone)
    assert leader.status()["membership"] == {"voters": everyone, "learners": [], "joint": False}

    victim = next(i for i in members if i != leader.id)
    survivors = [i for i in everyone if i != victim]
    await leader.change_membership(survivors)
    await cluster.stop(victim)
    assert leader.status()["membership"]["voters"] == survivors
    # the survivors still form a working cluster, and writes go through any of them
    for i in survivors:
        assert await cluster.client(i).cmd("SET", f"after-{i}", "x") == OK
    await cluster.wait_converged(nodes=survivors)
    assert len(set(cluster.digests(survivors).values())) == 1


async def test_removing_the_leader_hands_over(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    leader = await cluster3.wait_leader()
    others = [i for i in (1, 2, 3) if i != leader.id]
    await leader.change_membership(others)
    new = await cluster3.wait_leader(among=others)
    assert new.id in others
    assert await cluster3.client(new.id).cmd("SET", "k", "v") == OK


async def test_new_learner_catches_up_through_a_snapshot(autojump_clock: object) -> None:
    # small chunks: the snapshot travels as many InstallSnapshot messages
    async with open_cluster(3, seed=11, snapshot_entries=8, snapshot_chunk_size=512) as cluster:
        leader = await cluster.wait_leader()
        await _fill(cluster, leader.id, 300)
        assert leader.stats.snapshots_taken >= 1
        assert leader.core is not None and leader.core.first_index > 2  # log compacted
        node4 = await cluster.start(4, peers=[1, 2, 3])
        await leader.add_learner(4, "10.0.0.4:7000")
        await cluster.wait_converged()
        assert node4.stats.snapshots_installed >= 1
        assert len(leader.state.snapshot()) > 10 * 512
        assert node4.state.digest() == leader.state.digest()
        assert await node4.read(ReadOp((b"GET", b"k299")), "stale") == b"299"


async def test_lagging_follower_catches_up_through_a_snapshot(autojump_clock: object) -> None:
    async with open_cluster(3, seed=12, snapshot_entries=8) as cluster:
        leader = await cluster.wait_leader()
        lagger = next(i for i in (1, 2, 3) if i != leader.id)
        await cluster.stop(lagger)
        await _fill(cluster, leader.id, 300)
        node = await cluster.start(lagger)
        await cluster.wait_converged()
        assert node.stats.snapshots_installed >= 1
        assert node.state.digest() == leader.state.digest()


async def test_restart_loads_snapshot_and_replays_the_tail(autojump_clock: object) -> None:
    async with open_cluster(3, seed=13, snapshot_entries=8) as cluster:
        leader = await cluster.wait_leader()
        await _fill(cluster, leader.id, 100)
        await cluster.wait_converged()
        node_id = next(i for i in (1, 2, 3) if i != leader.id)
        before = cluster.nodes[node_id].state.digest()
        snap_index = cluster.nodes[node_id].status()["snapshot_index"]
        assert snap_index > 0
        node = await cluster.restart(node_id)
        assert node.state.applied_index >= snap_index  # restored from the snapshot at once
        await cluster.wait_converged()
        assert node.state.digest() == before


async def test_leadership_transfer(cluster_n: InProcessCluster, autojump_clock: object) -> None:
    cluster = cluster_n
    leader = await cluster.wait_leader()
    target = next(n.id for n in cluster.running() if n.id != leader.id)
    await cluster.client(leader.id).cmd("SET", "t", "1")
    assert await leader.transfer_leader(target)
    new = await cluster.wait_leader()
    assert new.id == target
    assert await cluster.client(leader.id).cmd("INCR", "t") == 2  # old leader now forwards
    assert await cluster.client(target).cmd("GET", "t") == b"2"


async def test_step_down_hands_leadership_to_an_up_to_date_voter(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    leader = await cluster3.wait_leader()
    await _fill(cluster3, leader.id, 16)
    start = trio.current_time()
    assert await leader.step_down()
    new = await cluster3.wait_leader()
    assert new.id != leader.id
    assert trio.current_time() - start < cluster3.nodes[new.id].settings.election_timeout
    assert await cluster3.client(new.id).cmd("GET", "k15") == b"15"
