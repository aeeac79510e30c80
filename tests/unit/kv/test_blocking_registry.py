"""The pure waiter registry (aspen.cluster.blocking.WaiterQueues) and the timeout parser.

A model world drives the registry the way the node does: clients park on keys, pushes and
pops change lists, after every change the ready waiters are taken and served by a pop that
may find the list empty again (then the waiter is requeued). Checked: every pushed element is
delivered at most once or is still in its list (none lost, none duplicated), waiters on one
key are served in arrival order, and nobody stays parked on a key that has elements.
"""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aspen.cluster.blocking import Waiter, WaiterQueues, give_back_op
from aspen.kv.blocking import parse_timeout
from aspen.kv.keyspace import CommandError
from aspen.kv.lists import List
from aspen.kv.zsets import ZSet
from aspen.resp.values import Double

KEYS = [b"a", b"b", b"c"]

ops = st.lists(
    st.one_of(
        st.tuples(st.just("park"), st.lists(st.sampled_from(KEYS), min_size=1, max_size=3)),
        st.tuples(st.just("push"), st.sampled_from(KEYS), st.integers(1, 3)),
        st.tuples(st.just("steal"), st.sampled_from(KEYS)),  # another node's client pops
        st.tuples(st.just("leave"), st.integers(0, 20)),
        st.tuples(st.just("serve_some"), st.integers(1, 3)),  # serves land a bit later
    ),
    max_size=60,
)


K, J = (0, b"k"), (0, b"j")  # (db, key): what waiters wait on


class World:
    def __init__(self) -> None:
        self.queues = WaiterQueues()
        self.lists: dict[bytes, deque[int]] = {k: deque() for k in KEYS}
        self.next_element = 0
        self.pushed: set[int] = set()
        self.delivered: dict[int, Waiter] = {}
        self.stolen: set[int] = set()
        self.parked: list[Waiter] = []
        self.in_flight: list[tuple[Waiter, bytes]] = []
        self.inflight_count: dict[bytes, int] = {}
        self.served_order: dict[bytes, list[int]] = {k: [] for k in KEYS}

    def available(self, dbkey: tuple[int, bytes], kind: type) -> int:
        assert kind is List and dbkey[0] == 0
        key = dbkey[1]
        return len(self.lists[key]) - self.inflight_count.get(key, 0)

    def check(self) -> None:
        for w, (_, key) in self.queues.take(self.available):
            assert w not in self.queues
            self.in_flight.append((w, key))
            self.inflight_count[key] = self.inflight_count.get(key, 0) + 1

    def serve(self, n: int) -> None:
        for _ in range(min(n, len(self.in_flight))):
            w, key = self.in_flight.pop(0)
            self.inflight_count[key] -= 1
            if self.lists[key]:  # the replicated conditional pop
                element = self.lists[key].popleft()
                assert element not in self.delivered
                self.delivered[element] = w
                self.served_order[key].append(w.seq)
                self.parked.remove(w)
            else:
                self.queues.requeue(w)  # lost the race: wait again, at its place
        self.check()


@given(ops)
def test_nothing_lost_nothing_duplicated_arrival_order(script: list[tuple]) -> None:  # type: ignore[type-arg]
    world = World()
    single_key: set[int] = set()
    for op in script:
        if op[0] == "park":
            w = Waiter(tuple(op[1]))
            world.queues.add(w)
            world.parked.append(w)
            if len(w.keys) == 1:
                single_key.add(w.seq)
            world.check()
        elif op[0] == "push":
            for _ in range(op[2]):
                world.next_element += 1
                world.pushed.add(world.next_element)
                world.lists[op[1]].append(world.next_element)
            world.check()
        elif op[0] == "steal":
            if world.lists[op[1]]:
                world.stolen.add(world.lists[op[1]].popleft())
            world.check()
        elif op[0] == "leave":
            waiting = [w for w in world.parked if w in world.queues]
            if waiting:
                w = waiting[op[1] % len(waiting)]
                world.queues.remove(w)
                world.parked.remove(w)
                assert w not in world.queues
        else:
            world.serve(op[1])
    while world.in_flight:  # let every serve in flight land
        world.serve(len(world.in_flight))
    remaining = {e for lst in world.lists.values() for e in lst}
    # every element is exactly one of: delivered, stolen, still in its list
    assert set(world.delivered) | world.stolen | remaining == world.pushed
    assert len(world.delivered) + len(world.stolen) + len(remaining) == len(world.pushed)
    # nobody is delivered twice
    assert len({id(w) for w in world.delivered.values()}) == len(world.delivered)
    # nobody waits on a key that has elements
    for w in world.parked:
        assert w in world.queues
        assert all(not world.lists[k] for _, k in w.keys)
    # clients that waited on one key only were served in arrival order on that key
    for order in world.served_order.values():
        mine = [seq for seq in order if seq in single_key]
        assert mine == sorted(mine)
    assert len(world.queues) == len(world.parked)


def test_requeue_goes_back_to_its_arrival_position() -> None:
    q = WaiterQueues()
    w1, w2, w3 = Waiter((b"k",)), Waiter((b"k", b"j")), Waiter((b"k",))
    for w in (w1, w2, w3):
        q.add(w)
    taken = q.take(lambda key, kind: 2 if key == K else 0)
    assert taken == [(w1, K), (w2, K)]
    assert q.queue(K) == [w3] and q.queue(J) == []
    q.requeue(w2)
    assert q.queue(K) == [w2, w3] and q.queue(J) == [w2]
    q.requeue(w1)
    assert q.queue(K) == [w1, w2, w3]
    q.remove(w2)
    assert q.queue(J) == [] and len(q) == 2


def test_a_waiter_of_another_type_keeps_its_place_and_blocks_no_one() -> None:
    q = WaiterQueues()
    zw, lw = Waiter((b"k",), kind=ZSet), Waiter((b"k",), kind=List)
    q.add(zw)
    q.add(lw)
    assert q.take(lambda key, kind: 1 if kind is List else 0) == [(lw, K)]
    assert q.queue(K) == [zw]


def test_count_demand_limits_how_many_are_taken() -> None:
    q = WaiterQueues()
    big, small = Waiter((b"k",), want=5), Waiter((b"k",))
    q.add(big)
    q.add(small)
    assert q.take(lambda key, kind: 3) == [(big, K)]  # BLMPOP COUNT 5 may take all 3


def test_waiters_in_different_databases_wait_on_different_keys() -> None:
    q = WaiterQueues()
    w0, w1 = Waiter((b"k",)), Waiter((b"k",), db=1)
    q.add(w0)
    q.add(w1)
    assert q.queue(K) == [w0] and q.queue((1, b"k")) == [w1]
    assert q.take(lambda key, kind: 1 if key == (1, b"k") else 0) == [(w1, (1, b"k"))]
    assert q.queue(K) == [w0]


@pytest.mark.parametrize(
    ("raw", "ms"),
    [
        (b"0", 0),
        (b"1", 1000),
        (b"0.5", 500),
        (b".5", 500),
        (b"+1", 1000),
        (b"0.0001", 1),  # ceil: a tiny timeout is not "forever"
        (b"-0.0001", 0),  # ... but a tiny negative one is (Redis 7.0.15 agrees)
        (b"1e-400", 1),
        (b"0x10", 16000),
        (b"1.5e3", 1_500_000),
    ],
)
def test_parse_timeout(raw: bytes, ms: int) -> None:
    assert parse_timeout(raw) == ms


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"-1", "ERR timeout is negative"),
        (b"inf", "ERR timeout is negative"),
        (b"1e300", "ERR timeout is negative"),
        (b"1e400", "ERR timeout is negative"),
        (b"9223372036854775807", "ERR timeout is negative"),
        (b"abc", "ERR timeout is not a float or out of range"),
        (b"nan", "ERR timeout is not a float or out of range"),
        (b" 1", "ERR timeout is not a float or out of range"),
        (b"1 ", "ERR timeout is not a float or out of range"),
        (b"", "ERR timeout is not a float or out of range"),
        (b"1_0", "ERR timeout is not a float or out of range"),
    ],
)
def test_parse_timeout_errors(raw: bytes, error: str) -> None:
    with pytest.raises(CommandError) as info:
        parse_timeout(raw)
    assert info.value.reply.message == error


def test_give_back_undoes_each_kind_of_serve() -> None:
    assert give_back_op([b"blpop", b"k", b"0"], [b"k", b"v"]).argv == [b"lpush", b"k", b"v"]  # type: ignore[union-attr]
    assert give_back_op([b"BRPOP", b"k", b"0"], [b"k", b"v"]).argv == [b"rpush", b"k", b"v"]  # type: ignore[union-attr]
    op = give_back_op([b"blmpop", b"0", b"1", b"k", b"LEFT", b"COUNT", b"2"], [b"k", [b"1", b"2"]])
    assert op is not None and op.argv == [b"lpush", b"k", b"2", b"1"]
    op = give_back_op([b"blmove", b"s", b"d", b"LEFT", b"RIGHT", b"0"], b"v")
    assert op is not None and op.argv == [b"lmove", b"d", b"s", b"RIGHT", b"LEFT"]
    op = give_back_op([b"bzpopmin", b"z", b"0"], [b"z", b"m", Double(1.5)])
    assert op is not None and op.argv == [b"zadd", b"z", b"1.5", b"m"]
    assert give_back_op([b"blpop", b"k", b"0"], None) is None
