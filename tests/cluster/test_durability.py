"""Restart from disk keeps every acknowledged write; retried requests apply once; TTL digests."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import trio

from aspen.cluster import ClusterNode
from aspen.kv.ops import ReadOp
from aspen.resp.values import OK
from harness.cluster import InProcessCluster, open_cluster


@pytest.mark.slow
async def test_full_restart_from_disk_keeps_every_acknowledged_write(tmp_path: Path) -> None:
    """Real clock and sqlite in worker threads: the production storage path."""
    acked: dict[str, str] = {}
    async with open_cluster(
        3, seed=21, data_dir=tmp_path, snapshot_entries=40, request_timeout=5.0
    ) as cluster:
        await cluster.wait_leader()

        async def writer(w: int) -> None:
            client = cluster.client(1 + w % 3)
            for i in range(25):
                # one key per write: a write with an unknown outcome never hides an acked one
                key, value = f"w{w}-{i}", f"{w}.{i}"
                if await client.cmd("SET", key, value) == OK:
                    acked[key] = value

        async with trio.open_nursery() as nursery:
            for w in range(6):
                nursery.start_soon(writer, w)
        assert len(acked) >= 6 * 25 // 2  # a loaded machine may time a few out; most commit
        assert any(n.stats.snapshots_taken for n in cluster.running())
        for node_id in (1, 2, 3):
            await cluster.stop(node_id)
        for node_id in (1, 2, 3):
            await cluster.start(node_id)
        await cluster.wait_leader()
        for node_id in (1, 2, 3):
            client = cluster.client(node_id)
            for key, value in acked.items():
                assert await client.cmd("GET", key) == value.encode(), (node_id, key)


async def test_a_retried_request_is_applied_once(autojump_clock: object) -> None:
    """A follower that cannot hear the leader re-forwards its INCR several times (same id);
    the leader commits every copy, the dedup table applies only the first."""
    async with open_cluster(3, seed=22, request_timeout=5.0) as cluster:
        leader = await cluster.wait_leader()
        follower = next(n for n in cluster.running() if n.id != leader.id)
        cluster.hub.block(leader.id, follower.id)  # requests get through, the log does not

        async def heal_later() -> None:
            await trio.sleep(1.2)  # retry intervals (election timeout 0.5 s), not a cut-off
            cluster.hub.heal()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(heal_later)
            reply = await cluster.client(follower.id).cmd("INCR", "counter")
        assert reply == 1
        assert follower.stats.writes_retried >= 2
        await cluster.wait_converged()
        for node in cluster.running():
            assert node.stats.duplicates_suppressed >= 2
            assert await node.read(ReadOp((b"GET", b"counter")), "stale") == b"1"


async def test_retry_after_leader_crash_is_not_applied_twice(autojump_clock: object) -> None:
    """The leader commits a forwarded write, then dies before the origin learns the commit;
    the origin retries with the new leader; the write is applied once."""
    async with open_cluster(3, seed=23, request_timeout=6.0) as cluster:
        leader = await cluster.wait_leader()
        origin, third = [n.id for n in cluster.running() if n.id != leader.id]
        cluster.hub.block(leader.id, origin)
        result: list[object] = []

        async def client() -> None:
            result.append(await cluster.client(origin).cmd("INCR", "once"))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(client)
            # wait until the third node has the write committed, then kill the leader
            with trio.fail_after(5):
                while not cluster.nodes[third].state.keyspace.is_live(b"once", 0):
                    await trio.sleep(0.01)
            await cluster.stop(leader.id)
            cluster.hub.heal()
        assert result == [1]
        await cluster.start(leader.id)
        await cluster.wait_leader()
        await cluster.wait_converged()
        for node in cluster.running():
            assert await node.read(ReadOp((b"GET", b"once")), "stale") == b"1"


async def _ttl_workload(cluster: InProcessCluster, seed: int) -> None:
    rng = random.Random(seed)

    async def client(c: int) -> None:
        running = [n.id for n in cluster.running()]
        conn = cluster.client(running[c % len(running)])
        for i in range(60):
            key = f"t{rng.randrange(40)}"
            choice = rng.randrange(6)
            if choice == 0:
                await conn.cmd("SET", key, i, "PX", rng.randrange(20, 400))
            elif choice == 1:
                await conn.cmd("PEXPIRE", key, rng.randrange(1, 300))
            elif choice == 2:
                await conn.cmd("SET", key, i)
            elif choice == 3:
                await conn.cmd("INCR", f"n{rng.randrange(5)}")
                await conn.cmd("PEXPIRE", f"n{rng.randrange(5)}", rng.randrange(50, 500))
            elif choice == 4:
                await conn.cmd("PERSIST", key)
            else:
                await conn.cmd("GET", key)
            await trio.sleep(rng.random() * 0.02)

    async with trio.open_nursery() as nursery:
        for c in range(6):
            nursery.start_soon(client, c)


async def test_ttl_heavy_workload_leaves_identical_digests(autojump_clock: object) -> None:
    async with open_cluster(3, seed=24) as cluster:
        await cluster.wait_leader()
        await _ttl_workload(cluster, 24)
        await cluster.wait_converged()
        digests = cluster.digests()
        assert len(set(digests.values())) == 1
        # wait for active expiry to drop everything that expired; replicas stay identical
        with trio.fail_after(10):
            while True:
                await cluster.wait_converged()
                nodes = cluster.running()
                if all(
                    n.state.keyspace.key_count()
                    == n.state.keyspace.live_count(n.state.last_time_ms)
                    for n in nodes
                ) and all(n.state.keyspace.expires_count() == 0 for n in nodes):
                    break
                await trio.sleep(0.1)
        assert len(set(cluster.digests().values())) == 1


async def test_entry_time_is_monotonic_across_leader_changes(autojump_clock: object) -> None:
    async with open_cluster(3, seed=25) as cluster:
        seen: list[int] = []
        for _ in range(3):
            leader = await cluster.wait_leader()
            await cluster.client(leader.id).cmd("SET", "k", "v")
            seen.append(leader.state.last_time_ms)
            other = next(n.id for n in cluster.running() if n.id != leader.id)
            await leader.transfer_leader(other)
        assert seen == sorted(seen)


async def test_leader_with_a_slow_clock_never_stamps_time_backwards(
    autojump_clock: object,
) -> None:
    async with open_cluster(3, seed=26) as cluster:
        leader = await cluster.wait_leader()
        await cluster.client(leader.id).cmd("SET", "k", "v", "PX", 1000)
        await cluster.wait_converged()
        before = leader.state.last_time_ms
        other: ClusterNode = next(n for n in cluster.running() if n.id != leader.id)
        other._clock_ms = lambda: 0  # a badly wrong clock on the next leader
        assert await leader.transfer_leader(other.id)
        assert await cluster.client(other.id).cmd("SET", "k2", "v") == OK
        await cluster.wait_converged()
        assert other.state.last_time_ms >= before
        # the key with a TTL did not get resurrected or expired by the bad clock
        assert await other.read(ReadOp((b"EXISTS", b"k")), "linearizable") == 1


@pytest.mark.slow
async def test_ttl_workload_with_snapshot_catch_up_converges(autojump_clock: object) -> None:
    async with open_cluster(3, seed=27, snapshot_entries=30) as cluster:
        leader = await cluster.wait_leader()
        lagger = next(n.id for n in cluster.running() if n.id != leader.id)
        await cluster.stop(lagger)
        await _ttl_workload(cluster, 27)
        await cluster.start(lagger)
        await _ttl_workload(cluster, 28)
        assert cluster.nodes[lagger].stats.snapshots_installed >= 1
        with trio.fail_after(10):
            while True:
                await cluster.wait_converged()
                if all(n.state.keyspace.expires_count() == 0 for n in cluster.running()):
                    break
                await trio.sleep(0.1)
        assert len(set(cluster.digests().values())) == 1


async def test_dedup_table_stays_bounded_by_outstanding_requests(autojump_clock: object) -> None:
    async with open_cluster(3, seed=29) as cluster:
        leader = await cluster.wait_leader()
        follower = next(n.id for n in cluster.running() if n.id != leader.id)

        async def writer(w: int) -> None:
            client = cluster.client(follower)
            for i in range(50):
                assert await client.cmd("SET", f"d{w}", i) == OK

        async with trio.open_nursery() as nursery:
            for w in range(10):
                nursery.start_soon(writer, w)
        await cluster.client(follower).cmd("SET", "last", "1")  # carries the final floor
        await cluster.wait_converged()
        for node in cluster.running():
            sessions = [s for (origin, _), s in node.state.sessions.items() if origin == follower]
            assert len(sessions) == 1
            assert len(sessions[0].replies) <= 10  # 501 writes, at most 10 ever outstanding


async def test_active_expiry_drops_keys_and_then_the_log_goes_quiet(
    autojump_clock: object,
) -> None:
    async with open_cluster(3, seed=30) as cluster:
        leader = await cluster.wait_leader()
        client = cluster.client(leader.id)
        for i in range(50):
            await client.cmd("SET", f"e{i}", i, "PX", 100)
        await client.cmd("SET", "keep", "1")
        await trio.sleep(1.0)  # nobody reads: only active expiry can drop them
        await cluster.wait_converged()
        for node in cluster.running():
            assert node.state.keyspace.key_count() == 1
            assert node.state.keyspace.expires_count() == 0
        last = leader.status()["last_index"]
        await trio.sleep(2.0)
        assert leader.status()["last_index"] == last  # an idle cluster appends nothing
