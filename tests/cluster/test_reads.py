"""The three read modes, and that a deposed leader never serves a stale linearizable read."""

from __future__ import annotations

import trio

from aspen.cluster import CLUSTERDOWN
from aspen.kv.ops import ReadOp
from aspen.resp.values import OK
from harness.cluster import InProcessCluster


def _others(cluster: InProcessCluster, node_id: int) -> list[int]:
    return [n.id for n in cluster.running() if n.id != node_id]


async def test_linearizable_reads_on_every_node_see_the_latest_write(
    cluster_n: InProcessCluster,
    autojump_clock: object,
) -> None:
    cluster = cluster_n
    for writer in cluster.running():
        value = f"v{writer.id}"
        assert await cluster.client(writer.id).cmd("SET", "x", value) == OK
        # read at once on every node: no waiting for replication beyond what ReadIndex does
        for reader in cluster.running():
            assert await reader.read(ReadOp((b"GET", b"x")), "linearizable") == value.encode()


async def test_concurrent_reads_share_one_read_index_round(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    leader = await cluster3.wait_leader()
    await cluster3.client(leader.id).cmd("SET", "r", "1")
    before = leader.stats.read_index_calls
    results: list[object] = []

    async def reader() -> None:
        results.append(await leader.read(ReadOp((b"GET", b"r")), "linearizable"))

    async with trio.open_nursery() as nursery:
        for _ in range(50):
            nursery.start_soon(reader)
    assert results == [b"1"] * 50
    assert leader.stats.read_index_calls - before <= 3


async def test_follower_linearizable_reads_are_batched_too(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    leader = await cluster3.wait_leader()
    follower = cluster3.nodes[_others(cluster3, leader.id)[0]]
    await cluster3.client(leader.id).cmd("SET", "r", "2")
    before = follower.stats.read_index_calls
    async with trio.open_nursery() as nursery:
        for _ in range(30):
            nursery.start_soon(follower.read, ReadOp((b"GET", b"r")), "linearizable")
    assert 1 <= follower.stats.read_index_calls - before <= 3


async def test_lease_reads_on_leader_are_local_and_followers_forward(
    cluster3: InProcessCluster,
    autojump_clock: object,
) -> None:
    leader = await cluster3.wait_leader()
    follower = cluster3.nodes[_others(cluster3, leader.id)[0]]
    await cluster3.client(follower.id).cmd("SET", "l", "1")
    # the first lease read establishes the lease with one ReadIndex round
    assert await leader.read(ReadOp((b"GET", b"l")), "lease") == b"1"
    calls = leader.stats.read_index_calls
    for _ in range(10):
        assert await leader.read(ReadOp((b"GET", b"l")), "lease") == b"1"
    assert leader.stats.read_index_calls == calls  # served under the lease, no heartbeat round
    assert leader.stats.lease_reads >= 10
    # a follower forwards lease reads to the leader, which serves them under its lease
    before = leader.stats.lease_reads
    assert await follower.read(ReadOp((b"GET", b"l")), "lease") == b"1"
    assert leader.stats.lease_reads == before + 1
    assert follower.stats.read_index_calls == 0


async def test_stale_reads_are_local_and_immediate(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    leader = await cluster3.wait_leader()
    follower = _others(cluster3, leader.id)[0]
    await cluster3.client(leader.id).cmd("SET", "s", "1")
    await cluster3.wait_converged()
    cluster3.hub.isolate(follower, cluster3.node_ids)
    client = cluster3.client(follower)
    assert await client.cmd("ASPEN.CONSISTENCY", "stale") == OK
    assert await client.cmd("ASPEN.CONSISTENCY") == b"stale"
    start = trio.current_time()
    assert await client.cmd("GET", "s") == b"1"  # served even though the node is cut off
    assert trio.current_time() - start < 0.01  # no round trip, no waiting


async def test_per_connection_consistency_command_validates(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    client = cluster3.client(1)
    reply = await client.cmd("ASPEN.CONSISTENCY", "eventual")
    assert "must be one of" in reply.message  # type: ignore[attr-defined]
    assert await client.cmd("ASPEN.CONSISTENCY") == b"linearizable"


async def test_partitioned_old_leader_serves_no_stale_linearizable_or_lease_read(
    cluster3: InProcessCluster,
    autojump_clock: object,
) -> None:
    old = await cluster3.wait_leader()
    await cluster3.client(old.id).cmd("SET", "k", "old")
    # establish a lease on the old leader so the test also covers lease expiry
    assert await old.read(ReadOp((b"GET", b"k")), "lease") == b"old"
    cluster3.hub.isolate(old.id, cluster3.node_ids)
    new = await cluster3.wait_leader(among=_others(cluster3, old.id))
    assert new.id != old.id
    assert await cluster3.client(new.id).cmd("SET", "k", "new") == OK
    # the old leader does not know yet that it was deposed (CheckQuorum has not fired), so
    # only the lease's expiry and ReadIndex keep it from answering "old"
    assert old.is_leader()
    for mode in ("lease", "linearizable"):
        reply = await old.read(ReadOp((b"GET", b"k")), mode)  # type: ignore[arg-type]
        assert reply == CLUSTERDOWN, (mode, reply)
    assert await old.read(ReadOp((b"GET", b"k")), "stale") == b"old"  # stale means stale
    cluster3.hub.heal()
    await cluster3.wait_leader()
    await cluster3.wait_converged()
    assert await old.read(ReadOp((b"GET", b"k")), "linearizable") == b"new"


async def test_lease_is_dropped_on_leadership_transfer(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    leader = await cluster3.wait_leader()
    await leader.read(ReadOp((b"GET", b"k")), "lease")
    assert leader.lease_valid()
    target = _others(cluster3, leader.id)[0]
    assert await leader.transfer_leader(target)
    assert not leader.lease_valid()
