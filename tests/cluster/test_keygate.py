"""KeyGate (aspen/cluster/keygate.py): writes to watched keys go one at a time, in arrival
order whatever order trio wakes them in, and a stuck key delays a write by at most `limit`."""

from __future__ import annotations

import trio
import trio.testing

from aspen.cluster.keygate import KeyGate


async def test_writes_to_a_busy_key_go_in_arrival_order(autojump_clock: object) -> None:
    gate = KeyGate()
    gate.watch((b"k",))
    assert gate.active and gate.watched((b"x", b"k")) and not gate.watched((b"x",))
    gate.hold((b"k",))  # something in flight on k
    order: list[str] = []

    async def write(name: str, ticket: int, keys: tuple[bytes, ...]) -> None:
        assert await gate.acquire(ticket, limit=60)
        order.append(name)
        await trio.sleep(1)  # its commit round
        gate.release(keys)

    tickets = [(name, gate.enter(keys), keys) for name, keys in
               [("a", (b"k",)), ("other", (b"x",)), ("b", (b"k", b"x")), ("c", (b"k",))]]
    async with trio.open_nursery() as nursery:
        for name, ticket, keys in reversed(tickets):  # started in the opposite order
            nursery.start_soon(write, name, ticket, keys)
        await trio.testing.wait_all_tasks_blocked()
        assert order == ["other"]  # x is free and nobody before it wants x
        gate.release((b"k",))
    # b waited for `other` (x) and for a (k); c came after b
    assert order == ["other", "a", "b", "c"]
    assert gate.busy(b"k") == 0 and gate.busy(b"x") == 0
    gate.unwatch((b"k",))
    assert not gate.active


async def test_a_ticket_given_up_lets_the_next_one_go(autojump_clock: object) -> None:
    gate = KeyGate()
    gate.hold((b"k",))
    first = gate.enter((b"k",))
    second = gate.enter((b"k",))
    done = trio.Event()

    async def go() -> None:
        await gate.acquire(second, limit=60)
        done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(go)
        gate.release((b"k",))
        await trio.testing.wait_all_tasks_blocked()
        assert not done.is_set()  # `first` is ahead of it
        gate.leave(first)  # its connection went away
        await done.wait()
    assert gate.busy(b"k") == 1


async def test_a_key_busy_too_long_lets_the_write_through(autojump_clock: object) -> None:
    gate = KeyGate()
    gate.hold((b"k",))  # never released (e.g. no leader)
    start = trio.current_time()
    assert await gate.acquire(gate.enter((b"k",)), limit=5) is False
    assert 5 <= trio.current_time() - start < 5.1
    assert gate.busy(b"k") == 2  # held all the same: the caller releases it


async def test_a_client_waiting_on_two_keys_links_them(autojump_clock: object) -> None:
    """BLPOP l1 l2 parked: a push to l1 decides whether it is still there for a push to l2, so
    the push to l2 that arrived later waits for the one to l1 (and its serves)."""
    gate = KeyGate()
    gate.watch((b"l1", b"l2"))
    gate.watch((b"l3",))
    assert gate.group((b"l2",)) == {b"l1", b"l2"} and gate.group((b"l3",)) == {b"l3"}
    order: list[str] = []

    async def write(name: str, ticket: int, keys: tuple[bytes, ...]) -> None:
        await gate.acquire(ticket, limit=60)
        order.append(name)
        await trio.sleep(1)
        gate.release(keys)

    writes = [("l1", gate.enter((b"l1",)), (b"l1",)), ("l2", gate.enter((b"l2",)), (b"l2",)),
              ("l3", gate.enter((b"l3",)), (b"l3",))]
    async with trio.open_nursery() as nursery:
        for name, ticket, keys in writes:
            nursery.start_soon(write, name, ticket, keys)
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(order) == ["l1", "l3"]  # l3 is in a group of its own
    assert order[-1] == "l2"
    gate.unwatch((b"l1", b"l2"))
    assert gate.group((b"l2",)) == {b"l2"}


def test_a_write_queues_behind_a_queued_one_that_shares_a_key() -> None:
    """MULTI over watched l2 and unwatched l1 waits at the gate: a later write to l1 alone
    must not overtake it."""
    gate = KeyGate()
    assert not gate.active and not gate.must_queue((b"l1",))
    gate.watch((b"l2",))
    assert gate.must_queue((b"l2",)) and not gate.must_queue((b"l1",))
    ticket = gate.enter((b"l1", b"l2"))
    assert gate.must_queue((b"l1",)) and not gate.must_queue((b"l9",))
    gate.unwatch((b"l2",))
    assert gate.active and gate.must_queue((b"l1",))  # still queued
    gate.leave(ticket)
    assert not gate.active
