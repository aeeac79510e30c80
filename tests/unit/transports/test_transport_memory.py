"""The memory hub's fault model, under trio's MockClock (delays cost no real time)."""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from transports import DropReason, MemoryHub, NetworkFaults
from transports.testing import Mesh, open_mesh


async def _drain(mesh: Mesh, node: int, quiet: float = 1.0) -> list[tuple[int, bytes]]:
    """Everything that arrives at ``node`` until nothing has for ``quiet`` seconds."""
    got: list[tuple[int, bytes]] = []
    while True:
        with trio.move_on_after(quiet) as scope:
            got.append(await mesh.receive(node))
        if scope.cancelled_caught:
            return got


async def _numbers(mesh: Mesh, src: int, dst: int, count: int) -> list[int]:
    for i in range(count):
        await mesh[src].send(dst, b"%d" % i)
    return [int(payload) for sender, payload in await _drain(mesh, dst) if sender == src]


async def test_symmetric_partition_and_heal(autojump_clock: trio.testing.MockClock) -> None:
    async with open_mesh("memory", 3) as mesh:
        mesh.hub.partition([1], [2, 3])
        await mesh[1].send(2, b"cut")
        await mesh[2].send(1, b"cut")
        await mesh[2].send(3, b"same side")
        assert await _drain(mesh, 3) == [(2, b"same side")]
        assert await _drain(mesh, 1) == [] and await _drain(mesh, 2) == []
        assert mesh[1].stats.dropped == {DropReason.PARTITIONED: 1}
        assert mesh[2].stats.dropped == {DropReason.PARTITIONED: 1}
        mesh.hub.heal()
        await mesh[1].send(2, b"healed")
        assert await _drain(mesh, 2) == [(1, b"healed")]


async def test_one_way_partition(autojump_clock: trio.testing.MockClock) -> None:
    async with open_mesh("memory", 2) as mesh:
        mesh.hub.block(1, 2)
        await mesh[1].send(2, b"lost")
        await mesh[2].send(1, b"arrives")
        assert await _drain(mesh, 1) == [(2, b"arrives")]
        assert await _drain(mesh, 2) == []


async def test_partition_cuts_messages_already_in_flight(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hub = MemoryHub(random.Random(1), NetworkFaults(min_delay=1.0, max_delay=1.0))
    async with open_mesh("memory", 2, hub=hub) as mesh:
        await mesh[1].send(2, b"in flight")
        await trio.sleep(0.5)
        hub.isolate(2, [1])
        assert await _drain(mesh, 2) == []
        assert mesh[1].stats.dropped == {DropReason.PARTITIONED: 1}


async def test_delay_keeps_order_and_takes_time(autojump_clock: trio.testing.MockClock) -> None:
    hub = MemoryHub(random.Random(7), NetworkFaults(min_delay=0.1, max_delay=0.5))
    async with open_mesh("memory", 2, hub=hub) as mesh:
        start = trio.current_time()
        await mesh[1].send(2, b"first")
        assert await mesh.receive(2) == (1, b"first")
        assert 0.1 <= trio.current_time() - start <= 0.5 + 1e-6
        assert await _numbers(mesh, 1, 2, 200) == list(range(200))


async def test_drop_duplicate_and_reorder(autojump_clock: trio.testing.MockClock) -> None:
    async with open_mesh("memory", 2, hub=MemoryHub(faults=NetworkFaults(drop_rate=1.0))) as m:
        assert await _numbers(m, 1, 2, 50) == []
        assert m[1].stats.dropped == {DropReason.FAULT: 50}
    async with open_mesh("memory", 2, hub=MemoryHub(faults=NetworkFaults(duplicate_rate=1.0))) as m:
        assert await _numbers(m, 1, 2, 50) == [i for i in range(50) for _ in range(2)]
    faults = NetworkFaults(reorder_rate=0.3, reorder_delay=0.2, max_delay=0.01)
    async with open_mesh("memory", 2, hub=MemoryHub(random.Random(3), faults)) as m:
        got = await _numbers(m, 1, 2, 200)
        assert sorted(got) == list(range(200))  # nothing lost or doubled...
        assert got != list(range(200))  # ...but not in order


async def test_drop_rate_drops_about_that_fraction(autojump_clock: trio.testing.MockClock) -> None:
    hub = MemoryHub(random.Random(11), NetworkFaults(drop_rate=0.25))
    async with open_mesh("memory", 2, hub=hub) as mesh:
        got = await _numbers(mesh, 1, 2, 1000)
        assert got == sorted(got)
        assert 650 < len(got) < 850
        assert len(got) + mesh[1].stats.dropped[DropReason.FAULT] == 1000


async def test_same_seed_same_fate(autojump_clock: trio.testing.MockClock) -> None:
    faults = NetworkFaults(drop_rate=0.2, duplicate_rate=0.2, reorder_rate=0.2, max_delay=0.05)
    runs = []
    for _ in range(2):
        async with open_mesh("memory", 2, hub=MemoryHub(random.Random(42), faults)) as mesh:
            runs.append(await _numbers(mesh, 1, 2, 300))
    assert runs[0] == runs[1]
    async with open_mesh("memory", 2, hub=MemoryHub(random.Random(43), faults)) as mesh:
        assert await _numbers(mesh, 1, 2, 300) != runs[0]


async def test_node_ids_are_unique_on_a_hub(autojump_clock: trio.testing.MockClock) -> None:
    async with open_mesh("memory", 2) as mesh:
        with pytest.raises(RuntimeError, match="already up"):
            await mesh.start(2, mesh.config_for(2))


def test_fault_knobs_are_validated() -> None:
    with pytest.raises(ValueError, match="drop_rate"):
        NetworkFaults(drop_rate=1.5)
    with pytest.raises(ValueError, match="max_delay"):
        NetworkFaults(min_delay=1.0, max_delay=0.5)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    drop=st.sampled_from([0.0, 0.1, 0.5]),
    duplicate=st.sampled_from([0.0, 0.2]),
    reorder=st.sampled_from([0.0, 0.3]),
    max_delay=st.sampled_from([0.0, 0.02]),
)
def test_fault_model_properties(
    seed: int, drop: float, duplicate: float, reorder: float, max_delay: float
) -> None:
    """Whatever the seed: nothing invented; order kept unless reordering; no copies unless
    duplicating; nothing lost unless dropping; every drop counted."""
    faults = NetworkFaults(
        drop_rate=drop, duplicate_rate=duplicate, reorder_rate=reorder, max_delay=max_delay
    )
    count = 100

    async def run() -> tuple[list[int], int]:
        async with open_mesh("memory", 2, hub=MemoryHub(random.Random(seed), faults)) as mesh:
            got = await _numbers(mesh, 1, 2, count)
            return got, mesh[1].stats.dropped[DropReason.FAULT]

    got, dropped = trio.run(run, clock=trio.testing.MockClock(autojump_threshold=0))
    assert set(got) <= set(range(count))
    assert len(set(got)) + dropped == count
    if not reorder:
        assert got == sorted(got)
    if not duplicate:
        assert len(got) == len(set(got))
    if not drop:
        assert set(got) == set(range(count))


async def test_partition_takes_either_group_style(autojump_clock: trio.testing.MockClock) -> None:
    async with open_mesh("memory", 3) as mesh:
        mesh.hub.partition([[1], [2, 3]])  # the simulator's style: one list of groups
        assert mesh.hub.is_blocked(1, 2) and mesh.hub.is_blocked(3, 1)
        assert not mesh.hub.is_blocked(2, 3)
        mesh.hub.heal()
        mesh.hub.block_one_way(3, [1, 2])
        assert mesh.hub.is_blocked(3, 1) and not mesh.hub.is_blocked(1, 3)
        with pytest.raises(ValueError, match="two groups"):
            mesh.hub.partition([1, 2, 3])


async def test_a_links_fate_does_not_depend_on_other_links(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Per-link generators: link 1->2 sees the same faults whether or not 3->2 is busy."""
    faults = NetworkFaults(drop_rate=0.3, duplicate_rate=0.2)
    runs = []
    for busy_neighbour in (False, True):
        async with open_mesh("memory", 3, hub=MemoryHub(random.Random(5), faults)) as mesh:
            for i in range(200):
                await mesh[1].send(2, b"%d" % i)
                if busy_neighbour:
                    await mesh[3].send(2, b"noise")
            got = await _drain(mesh, 2)
            runs.append([int(p) for sender, p in got if sender == 1])
    assert runs[0] == runs[1]
