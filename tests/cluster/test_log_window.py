"""A follower partitioned while the leader writes far past its in-memory log tail catches up
from entries the leader reads back from storage, and ends with the same state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio.testing

from aspen.kv.ops import ReadOp
from aspen.resp.values import OK
from harness.cluster import open_cluster


async def test_partitioned_follower_catches_up_past_the_leaders_log_window(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_cluster(
        3, seed=41, log_window_entries=4, log_window_bytes=256, snapshot_entries=100_000
    ) as cluster:
        leader = await cluster.wait_leader()
        lagging = next(n for n in cluster.running() if n.id != leader.id)
        storage = cluster.storages[leader.id]
        reads: list[tuple[int, int]] = []
        read = storage.entries

        def counting_read(lo: int, hi: int, max_bytes: int | None = None) -> Any:
            reads.append((lo, hi))
            return read(lo, hi, max_bytes)

        storage.entries = counting_read  # type: ignore[method-assign]
        client = cluster.client(leader.id)
        assert await client.cmd("SET", "before", "1") == OK
        await cluster.wait_converged()
        behind = lagging.raft.last_index
        cluster.hub.isolate(lagging.id, cluster.node_ids)
        for i in range(80):  # one entry each: the client waits for every commit
            assert await client.cmd("SET", f"k{i}", f"v{i}" * 20) == OK
        log = leader.raft.log
        assert log.held_from > behind + 1, "the lagging follower needs released entries"
        assert len(log.held) <= 5
        cluster.hub.heal()
        await cluster.wait_converged(timeout=20.0)
        assert any(lo <= behind + 1 for lo, _ in reads), reads
        assert lagging.stats.snapshots_installed == 0
        digests = cluster.digests()
        assert len(set(digests.values())) == 1, digests
        assert await lagging.read(ReadOp((b"GET", b"k79")), "stale") == b"v79" * 20


@pytest.mark.slow
async def test_catch_up_reads_back_from_sqlite_while_the_disk_thread_writes(
    tmp_path: Path,
) -> None:
    """Real clock, sqlite, the disk thread: the leader reads released entries back on the
    driver's thread while its disk thread keeps persisting new writes (the store's lock
    serialises them on one sqlite connection)."""
    async with open_cluster(
        3,
        seed=43,
        data_dir=tmp_path,
        log_window_entries=2,
        log_window_bytes=128,
        snapshot_entries=100_000,
        request_timeout=5.0,
    ) as cluster:
        leader = await cluster.wait_leader()
        lagging = next(n for n in cluster.running() if n.id != leader.id)
        storage = leader.storage
        assert storage is not None
        read = storage.entries
        reads: list[int] = []

        def counting_read(lo: int, hi: int, max_bytes: int | None = None) -> Any:
            reads.append(lo)
            return read(lo, hi, max_bytes)

        storage.entries = counting_read  # type: ignore[method-assign]
        client = cluster.client(leader.id)
        cluster.hub.isolate(lagging.id, cluster.node_ids)
        for i in range(60):
            assert await client.cmd("SET", f"a{i}", f"{i}" * 30) == OK
        assert leader.raft.log.held_from > lagging.raft.last_index + 1

        async def keep_writing() -> None:
            for i in range(60):
                assert await client.cmd("SET", f"b{i}", f"{i}") == OK

        async with trio.open_nursery() as nursery:
            nursery.start_soon(keep_writing)
            cluster.hub.heal()
        await cluster.wait_converged(timeout=30.0)
        assert reads, "the catch-up did not read from sqlite"
        assert lagging.stats.snapshots_installed == 0
        digests = cluster.digests()
        assert len(set(digests.values())) == 1, digests
