"""The in-process transport: a hub connecting transports in one trio run, with seeded faults.

Each node opens its own `MemoryTransport` on a shared `MemoryHub`. Messages still go through
the envelope (so tests exercise the same checks as the wire), and every fault decision draws
from a per-link generator seeded from the hub's `random.Random`: drop, duplicate, delay,
reorder, and partitions (symmetric or one-way) that `heal()` removes. Delays use trio's
clock, so `trio.testing.MockClock` with autojump makes them free in tests.

A message's fate is decided when its sender task takes it off the queue; partitions are
checked again at delivery time, so cutting a link also loses what was in flight on it.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from transports.base import OutgoingQueue, TransportBase
from transports.envelope import MessageKind
from transports.lifecycle import running
from transports.settings import NodeId, TransportConfig
from transports.stats import DropReason


def _rate(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"memory transport: {attribute.name} must be in [0, 1], got {value}")


def _non_negative(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise ValueError(f"memory transport: {attribute.name} must be >= 0, got {value}")


@attrs.frozen
class NetworkFaults:
    """The fault model; the default is a perfect network (in order, instant, lossless).

    ``delay`` is uniform in [min_delay, max_delay] seconds, keeping per-link order; a message
    picked by ``reorder_rate`` instead gets up to ``reorder_delay`` extra and may be overtaken.
    """

    drop_rate: float = attrs.field(default=0.0, validator=_rate)
    duplicate_rate: float = attrs.field(default=0.0, validator=_rate)
    reorder_rate: float = attrs.field(default=0.0, validator=_rate)
    min_delay: float = attrs.field(default=0.0, validator=_non_negative)
    max_delay: float = attrs.field(default=0.0, validator=_non_negative)
    reorder_delay: float = attrs.field(default=0.05, validator=_non_negative)

    def __attrs_post_init__(self) -> None:
        if self.max_delay < self.min_delay:
            raise ValueError("memory transport: max_delay must be >= min_delay")


class MemoryHub:
    """The network between in-process nodes: who is up, which links are cut, the fault RNG."""

    def __init__(self, rng: random.Random | None = None, faults: NetworkFaults | None = None):
        self.rng = rng if rng is not None else random.Random(0)
        # Each link draws from its own generator, seeded from this one: a link's fate then
        # depends only on its own traffic, not on how trio happened to interleave senders.
        self._link_seed = self.rng.getrandbits(64)
        self._link_rngs: dict[tuple[NodeId, NodeId], random.Random] = {}
        self.faults = faults if faults is not None else NetworkFaults()
        self._nodes: dict[NodeId, MemoryTransport] = {}
        self._blocked: set[tuple[NodeId, NodeId]] = set()

    def partition(self, *groups: Iterable[Any]) -> None:
        """Cut every link between different groups, both ways (adds to existing cuts).

        ``partition([1], [2, 3])`` or, as the simulator's network takes it,
        ``partition([[1], [2, 3]])``.
        """
        if len(groups) == 1:
            inner = tuple(groups[0])
            if inner and all(isinstance(g, Iterable) for g in inner):
                groups = inner
        sets: list[frozenset[NodeId]] = []
        for group in groups:
            members = list(group) if isinstance(group, Iterable) else [group]
            if not all(isinstance(m, int) and not isinstance(m, bool) for m in members):
                raise TypeError(f"memory hub: partition groups must hold node ids: {group!r}")
            sets.append(frozenset(members))
        if len(sets) < 2:
            raise ValueError("memory hub: a partition needs at least two groups")
        for i, a in enumerate(sets):
            for b in sets[i + 1 :]:
                for x in a:
                    for y in b:
                        self._blocked.add((x, y))
                        self._blocked.add((y, x))

    def isolate(self, node: NodeId, others: Iterable[NodeId]) -> None:
        self.partition([node], [o for o in others if o != node])

    def block(self, src: NodeId, dst: NodeId) -> None:
        """Cut one direction only: ``src`` can no longer reach ``dst``."""
        self._blocked.add((src, dst))

    def block_one_way(self, src: NodeId, dsts: Iterable[NodeId]) -> None:
        """``src`` can reach none of ``dsts`` (they still reach it), like the simulator's."""
        for dst in dsts:
            if dst != src:
                self._blocked.add((src, dst))

    def heal(self) -> None:
        self._blocked.clear()

    def is_blocked(self, src: NodeId, dst: NodeId) -> bool:
        return (src, dst) in self._blocked

    def link_rng(self, src: NodeId, dst: NodeId) -> random.Random:
        """The fault generator of the ``src -> dst`` link (stable across restarts)."""
        rng = self._link_rngs.get((src, dst))
        if rng is None:
            rng = self._link_rngs[(src, dst)] = random.Random(f"{self._link_seed}:{src}:{dst}")
        return rng

    def transport(self, node: NodeId) -> MemoryTransport | None:
        """The live transport of ``node``, if it is up."""
        return self._nodes.get(node)

    def inject(self, dst: NodeId, data: bytes, link_sender: NodeId | None = None) -> bool:
        """Hand raw bytes to ``dst`` as if from the wire (tests: garbage, forged envelopes)."""
        target = self._nodes.get(dst)
        if target is None:
            return False
        message = target._check(data, link_sender)
        if message is not None:
            target._hand_over_nowait(message)
        return True

    def _register(self, transport: MemoryTransport) -> None:
        if transport.node_id in self._nodes:
            raise RuntimeError(f"memory hub: node {transport.node_id} is already up")
        self._nodes[transport.node_id] = transport

    def _unregister(self, transport: MemoryTransport) -> None:
        if self._nodes.get(transport.node_id) is transport:
            del self._nodes[transport.node_id]


@asynccontextmanager
async def open_memory_transport(
    config: TransportConfig, hub: MemoryHub
) -> AsyncIterator[MemoryTransport]:
    """Join ``hub`` as ``config.node_id`` (addresses in the config are ignored)."""
    transport = MemoryTransport(config, hub)
    async with running(transport, transport._open) as t:
        yield t


class MemoryTransport(TransportBase):
    # Every node on a hub runs in one process, hence one release: no announcements (they
    # would also perturb the seeded fault model's streams) and nothing worth compressing.
    ANNOUNCES = False
    COMPRESSES = False

    def __init__(self, config: TransportConfig, hub: MemoryHub) -> None:
        super().__init__(config)
        self.hub = hub
        self._address = f"memory:{config.node_id}"

    async def _open(self, nursery: trio.Nursery) -> None:
        self.hub._register(self)

    def _close(self) -> None:
        self.hub._unregister(self)
        super()._close()

    async def _run_peer(self, peer: NodeId, address: str, queue: OutgoingQueue) -> None:
        in_flight: list[tuple[float, int, bytes]] = []
        wakeup = trio.lowlevel.ParkingLot()
        seq = itertools.count()
        last_in_order = 0.0
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._deliver_loop, peer, in_flight, wakeup)
            while batch := await self._next_batch(queue):
                for kind, payload in batch:
                    last_in_order = self._launch(peer, kind, payload, in_flight, seq, last_in_order)
                wakeup.unpark_all()
            nursery.cancel_scope.cancel()  # queue closed: the peer was removed

    def _launch(
        self,
        peer: NodeId,
        kind: MessageKind,
        payload: bytes,
        in_flight: list[tuple[float, int, bytes]],
        seq: Iterator[int],
        last_in_order: float,
    ) -> float:
        """Decide one message's fate and schedule its copies; returns the new in-order mark."""
        faults, rng = self.hub.faults, self.hub.link_rng(self.node_id, peer)
        if self.hub.is_blocked(self.node_id, peer):
            self._stats.drop(DropReason.PARTITIONED)
            return last_in_order
        if faults.drop_rate and rng.random() < faults.drop_rate:
            self._stats.drop(DropReason.FAULT)
            return last_in_order
        if len(in_flight) >= self.config.queue_size:
            # The receiver is not keeping up: "the wire" is as bounded as the queue.
            self._stats.drop(DropReason.QUEUE_FULL)
            return last_in_order
        copies = 2 if faults.duplicate_rate and rng.random() < faults.duplicate_rate else 1
        data = self._encode(kind, payload)
        now = trio.current_time()
        for _ in range(copies):
            at = now + rng.uniform(faults.min_delay, faults.max_delay)
            if faults.reorder_rate and rng.random() < faults.reorder_rate:
                at += rng.uniform(0.0, faults.reorder_delay)
            else:
                at = last_in_order = max(at, last_in_order)
            heapq.heappush(in_flight, (at, next(seq), data))
        return last_in_order

    async def _deliver_loop(
        self,
        peer: NodeId,
        in_flight: list[tuple[float, int, bytes]],
        wakeup: trio.lowlevel.ParkingLot,
    ) -> None:
        while True:
            if not in_flight:
                await wakeup.park()
                continue
            at = in_flight[0][0]
            if at > trio.current_time():
                with trio.move_on_at(at):
                    await wakeup.park()  # an earlier message may arrive meanwhile
                continue
            _, _, data = heapq.heappop(in_flight)
            target = self.hub.transport(peer)
            if self.hub.is_blocked(self.node_id, peer):
                self._stats.drop(DropReason.PARTITIONED)
            elif target is None:
                self._stats.drop(DropReason.UNREACHABLE)
            else:
                self._stats.sent += 1
                try:
                    await target._deliver(data, self.node_id)
                except (trio.ClosedResourceError, trio.BrokenResourceError):
                    self._stats.drop(DropReason.UNREACHABLE)  # it shut down while we waited
