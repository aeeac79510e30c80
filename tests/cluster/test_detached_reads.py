"""A linearizable read's detached reply (`_PendingRead.detach`): served where its read index
comes in when this replica applied that far, else by a node task, else (node stopping)
CLUSTERDOWN; awaited after all, it is served once. A fake node stands in for ClusterNode so
each branch is reached on purpose."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio

from aspen.cluster.connection import _PendingRead
from aspen.cluster.errors import CLUSTERDOWN
from aspen.cluster.requests import ReadIndexWaiter
from aspen.kv.ops import ReadOp


class FakeNode:
    def __init__(self, nursery: trio.Nursery | None) -> None:
        self.nursery = nursery
        self.cut_off = False
        self.applied = 0
        self.executed: list[ReadOp] = []
        self.state = self  # (state.applied_index)

    @property
    def applied_index(self) -> int:
        return self.applied

    def execute_local(self, op: ReadOp) -> object:
        self.executed.append(op)
        return b"value@%d" % self.applied

    def start_task(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> bool:
        if self.nursery is None:
            return False
        self.nursery.start_soon(fn, *args)
        return True

    async def finish_read(self, op: ReadOp, waiter: ReadIndexWaiter) -> object:
        await waiter.event.wait()
        assert waiter.index is not None
        while self.applied < waiter.index:
            await trio.sleep(0.001)
        return self.execute_local(op)


class FakeSession:
    def finish(self, op: ReadOp, result: object) -> object:
        return result


class FakeConn:
    def __init__(self, node: FakeNode) -> None:
        self.node = node
        self.session = FakeSession()
        self.reads_in_flight = 1


def pending(node: FakeNode) -> tuple[_PendingRead, ReadIndexWaiter, list[int]]:
    waiter = ReadIndexWaiter()
    read = _PendingRead(FakeConn(node), ReadOp([b"GET", b"k"]), waiter)
    calls: list[int] = []
    assert read.detach(lambda: calls.append(1))
    return read, waiter, calls


async def test_served_where_the_index_comes_in_when_applied_that_far() -> None:
    node = FakeNode(None)
    node.applied = 5
    read, waiter, calls = pending(node)
    waiter.index = 5
    waiter.fire()
    assert calls == [1] and len(node.executed) == 1
    assert read.result() == b"value@5"
    assert read.conn.reads_in_flight == 0


async def test_served_by_a_node_task_when_not_applied_yet() -> None:
    async with trio.open_nursery() as nursery:
        node = FakeNode(nursery)
        node.applied = 3
        read, waiter, calls = pending(node)
        waiter.index = 7
        waiter.fire()
        assert calls == [] and node.executed == []  # not before index 7 is applied
        await trio.sleep(0.01)
        assert calls == []
        node.applied = 7
        with trio.fail_after(5):
            while not calls:
                await trio.sleep(0.001)
        assert read.result() == b"value@7" and len(node.executed) == 1


async def test_a_stopping_node_answers_clusterdown() -> None:
    node = FakeNode(None)  # no nursery: start_task fails as ClusterNode's does once stopped
    read, waiter, calls = pending(node)
    waiter.fire()  # (release: no index)
    assert calls == [1] and read.result() is CLUSTERDOWN


async def test_awaited_after_all_it_is_served_once_and_calls_back_nobody() -> None:
    node = FakeNode(None)
    node.applied = 2
    read, waiter, calls = pending(node)
    waiter.index = 2

    async def later() -> None:
        await trio.sleep(0.01)
        waiter.fire()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(later)
        assert await read.reply() == b"value@2"
    assert calls == [] and len(node.executed) == 1


async def test_not_detachable_once_answered_or_cut_off() -> None:
    node = FakeNode(None)
    waiter = ReadIndexWaiter()
    read = _PendingRead(FakeConn(node), ReadOp([b"GET", b"k"]), waiter)
    node.cut_off = True
    assert not read.detach(lambda: None)
    node.cut_off = False
    waiter.fire()
    assert not read.detach(lambda: None)


class FakeHost:
    """What ReadPath.serve_read_states / serve_backlog / release use of a node."""

    def __init__(self) -> None:
        from aspen.cluster.settings import ClusterSettings
        from aspen.raft import Role

        self.settings = ClusterSettings(node_id=1)
        self.raft = type("Core", (), {"role": Role.FOLLOWER, "term": 1})()
        self.kicks = 0

    def kick(self) -> None:
        self.kicks += 1


def test_a_pipeline_of_slow_detached_reads_is_spread_over_driver_passes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aspen.cluster import reads as reads_module
    from aspen.raft import ReadState

    host = FakeHost()
    path = reads_module.ReadPath(host)  # type: ignore[arg-type]
    monkeypatch.setattr(reads_module, "INLINE_READS_BUDGET", 0.02)
    clock = [100.0]  # each read takes 12 ms of this clock
    monkeypatch.setattr(reads_module, "perf_counter", lambda: clock[0])
    served: list[int] = []
    plain = ReadIndexWaiter()  # an awaited read among them: never held back

    def slow(i: int) -> None:
        clock[0] += 0.012
        served.append(i)

    waiters = [ReadIndexWaiter() for _ in range(5)]
    for i, w in enumerate(waiters):
        w.callback = lambda i=i: slow(i)
    path.tokens[b"t"] = ([*waiters[:3], plain, *waiters[3:]], 0.0, 1)
    path.serve_read_states([ReadState(b"t", 9)])
    assert served == [0, 1] and plain.event.is_set() and host.kicks == 1
    assert all(w.index == 9 for w in waiters)
    path.request_read_index()  # the next pass: the next ones, in order
    assert served == [0, 1, 2, 3]
    path.release()  # a stopping node answers the rest at once
    assert served == [0, 1, 2, 3, 4] and not path.backlog


def test_the_backlog_serves_at_least_one_per_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    from aspen.cluster import reads as reads_module
    from aspen.raft import ReadState

    path = reads_module.ReadPath(FakeHost())  # type: ignore[arg-type]
    monkeypatch.setattr(reads_module, "INLINE_READS_BUDGET", 0.0)
    served: list[int] = []
    waiters = [ReadIndexWaiter() for _ in range(3)]
    for i, w in enumerate(waiters):
        w.callback = lambda i=i: served.append(i)
    path.tokens[b"t"] = (waiters, 0.0, 1)
    path.serve_read_states([ReadState(b"t", 1)])
    for expected in ([0], [0, 1], [0, 1, 2]):
        if len(served) < len(expected):
            path.request_read_index()
        assert served == expected
