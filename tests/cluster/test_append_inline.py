"""Where a node appends to its log: in the driver (while appends are fast, or on a follower
with nothing of its own waiting) or in the disk thread (a slow disk, on a leader or a follower
whose clients wait). Both paths must store the same thing; the cluster must converge either
way."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from aspen.cluster import runtime
from aspen.raft import Role
from aspen.resp.values import OK
from harness.cluster import Client, InProcessCluster, open_cluster

Seen = list[tuple[int, Role, bool, str]]  # node, role, a write of its own in flight, thread


def _record_appends(cluster: InProcessCluster, seen: Seen) -> None:
    for node_id, node in cluster.nodes.items():
        storage = node.storage
        assert storage is not None
        original: Callable[..., Any] = storage.append

        def append(*args: Any, _orig: Callable[..., Any] = original, _id: int = node_id) -> Any:
            n = cluster.nodes[_id]
            seen.append((_id, n.role, bool(n.writes.pending), threading.current_thread().name))
            return _orig(*args)

        storage.append = append  # type: ignore[method-assign,assignment]


@asynccontextmanager
async def _written(n: int, tmp_path: Path) -> AsyncIterator[tuple[InProcessCluster, Seen, Client]]:
    """A cluster of `n` with its appends recorded, after five SETs through its leader; yields
    the cluster, the record and the leader's client."""
    async with open_cluster(n, seed=5, data_dir=tmp_path) as cluster:
        leader = await cluster.wait_leader()
        seen: Seen = []
        _record_appends(cluster, seen)
        client = cluster.client(leader.id)
        for i in range(5):
            assert await client.cmd("SET", f"k{i}", f"v{i}") == OK
        yield cluster, seen, client


async def test_followers_append_inline_unless_their_clients_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow disk (no append counts as fast). Real clock: sqlite in the disk thread does not
    mix with an autojump clock."""
    monkeypatch.setattr(runtime, "FAST_PERSIST", -1.0)
    main = threading.current_thread().name
    async with _written(3, tmp_path) as (cluster, seen, _):
        leader = await cluster.wait_leader()
        follower = next(n for n in cluster.running() if n.id != leader.id)
        on_follower = cluster.client(follower.id)
        for i in range(5):
            assert await on_follower.cmd("SET", f"f{i}", f"w{i}") == OK
        await cluster.wait_converged()

    by_leader = [s for s in seen if s[1] is Role.LEADER]
    by_followers = [s for s in seen if s[1] is not Role.LEADER]
    assert by_leader and all(s[3] != main for s in by_leader)
    idle = [s for s in by_followers if not s[2]]
    busy = [s for s in by_followers if s[2]]
    assert idle and all(s[3] == main for s in idle)
    # the follower that forwarded writes appended their entries while they were in flight
    assert busy and all(s[0] == follower.id and s[3] != main for s in busy)


async def test_a_node_alone_in_its_group_appends_inline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A standalone node (a group of one) has no peer to serve while the disk works: it
    appends in the driver, its own clients' writes in flight or not, even on a slow disk."""
    monkeypatch.setattr(runtime, "FAST_PERSIST", -1.0)
    main = threading.current_thread().name
    async with _written(1, tmp_path) as (_, seen, client):
        assert await client.cmd("GET", "k4") == b"v4"
    assert seen and all(s[1] is Role.LEADER and s[3] == main for s in seen)
    assert any(s[2] for s in seen)  # (appended while its client's write was in flight)


async def test_every_node_appends_inline_while_appends_are_fast_and_not_once_slow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fast appends run in the driver on every node, the leader too; once appends take longer
    than `FAST_PERSIST` on average they go to the disk thread, and back when fast again."""
    monkeypatch.setattr(runtime, "FAST_PERSIST", 0.05)  # a generous "fast" for a busy CI disk
    main = threading.current_thread().name
    async with _written(3, tmp_path) as (cluster, seen, on_leader):
        leader = await cluster.wait_leader()
        await cluster.wait_converged()
        assert seen and all(s[3] == main for s in seen)

        # The leader's disk turns slow: 0.2 s per append (in whatever thread runs it).
        storage = leader.storage
        assert storage is not None
        fast_append: Callable[..., Any] = storage.append

        def slow_append(*args: Any) -> Any:
            threading.Event().wait(0.2)
            return fast_append(*args)

        storage.append = slow_append  # type: ignore[method-assign]
        seen.clear()
        for i in range(3):
            assert await on_leader.cmd("SET", f"s{i}", f"v{i}") == OK
        mine = [s for s in seen if s[0] == leader.id]
        assert mine[0][3] == main  # the first slow one still inline: nothing known yet
        assert mine[-1][3] != main  # then the disk thread

        storage.append = fast_append  # type: ignore[method-assign]
        seen.clear()
        for i in range(40):  # the moving average forgets the slow appends
            assert await on_leader.cmd("SET", f"f{i}", f"v{i}") == OK
            await trio.sleep(0)
        mine = [s for s in seen if s[0] == leader.id]
        assert mine[-1][3] == main
        await cluster.wait_converged()
