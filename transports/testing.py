"""A small in-process mesh of transports for tests and benchmarks (like ``trio.testing``).

`open_mesh` starts N nodes of one transport kind on free loopback ports, wires every node to
every other, and lets a test stop and restart a node on its old address.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from transports.base import TransportBase
from transports.factory import open_transport
from transports.memory import MemoryHub
from transports.settings import NodeId, TransportConfig

WARMUP = b"\x00aspen-warmup"


class Mesh:
    def __init__(
        self, kind: str, nursery: trio.Nursery, hub: MemoryHub, template: TransportConfig
    ) -> None:
        self.kind = kind
        self.hub = hub
        self._nursery = nursery
        self._template = template
        self.addresses: dict[NodeId, str] = {}
        self.transports: dict[NodeId, TransportBase] = {}
        self._stops: dict[NodeId, tuple[trio.CancelScope, trio.Event]] = {}
        self.configs: dict[NodeId, TransportConfig] = {}

    def __getitem__(self, node: NodeId) -> TransportBase:
        return self.transports[node]

    def config_for(self, node: NodeId, **changes: Any) -> TransportConfig:
        """The node's config: its known address (or a free port) and every other node as peer."""
        peers = {n: a for n, a in self.addresses.items() if n != node}
        bind = self.addresses.get(node, self._template.bind)
        return attrs.evolve(self._template, node_id=node, bind=bind, peers=peers, **changes)

    async def start(self, node: NodeId, config: TransportConfig | None = None) -> TransportBase:
        config = config if config is not None else self.config_for(node)
        transport: TransportBase = await self._nursery.start(self._run_node, config)
        self.transports[node] = transport
        self.configs[node] = config
        self.addresses[node] = transport.address
        return transport

    async def stop(self, node: NodeId) -> None:
        scope, done = self._stops.pop(node)
        scope.cancel()
        await done.wait()
        del self.transports[node]

    async def restart(self, node: NodeId) -> TransportBase:
        await self.stop(node)
        return await self.start(node)

    def connect_all(self) -> None:
        """Tell every running node about every other node's address."""
        for node, transport in self.transports.items():
            for peer, address in self.addresses.items():
                if peer != node and transport.peers.get(peer) != address:
                    transport.add_peer(peer, address, self._curve_key(peer))

    def _curve_key(self, peer: NodeId) -> bytes | None:
        curve = self._template.curve
        return None if curve is None else curve.peer_keys.get(peer)

    async def warm_up(
        self, timeout: float = 10.0, links: Iterable[tuple[NodeId, NodeId]] | None = None
    ) -> None:
        """Return once every link (or those given) has carried a message: connections are up.

        Sends `WARMUP` messages; `receive` skips them, including late duplicates.
        """
        nodes = list(self.transports)
        if links is None:
            links = [(a, b) for a in nodes for b in nodes if a != b]
        pending = set(links)
        nodes = sorted({b for _, b in pending})
        with trio.fail_after(timeout):
            async with trio.open_nursery() as nursery:

                async def listen(b: NodeId) -> None:
                    while any(dst == b for _, dst in pending):
                        sender, payload = await self.transports[b].receive()
                        if payload == WARMUP:
                            pending.discard((sender, b))

                for b in nodes:
                    nursery.start_soon(listen, b)
                while pending:
                    for a, b in list(pending):
                        await self.transports[a].send(b, WARMUP)
                    await trio.sleep(0.05)

    async def receive(self, node: NodeId) -> tuple[NodeId, bytes]:
        """The node's next message that is not a warm-up message."""
        while True:
            sender, payload = await self.transports[node].receive()
            if payload != WARMUP:
                return sender, payload

    async def _run_node(
        self, config: TransportConfig, *, task_status: trio.TaskStatus[TransportBase]
    ) -> None:
        done = trio.Event()
        try:
            with trio.CancelScope() as scope:
                async with open_transport(self.kind, config, hub=self.hub) as transport:
                    self._stops[config.node_id] = (scope, done)
                    task_status.started(transport)
                    await trio.sleep_forever()
        finally:
            done.set()


@asynccontextmanager
async def open_mesh(
    kind: str,
    nodes: int = 3,
    *,
    hub: MemoryHub | None = None,
    cluster_id: str = "test-cluster",
    **config: Any,
) -> AsyncIterator[Mesh]:
    """Nodes 1..N on 127.0.0.1 free ports, all connected (``config`` overrides the defaults)."""
    config.setdefault("bind", "127.0.0.1:0")
    template = TransportConfig(node_id=1, cluster_id=cluster_id, **config)
    async with trio.open_nursery() as nursery:
        mesh = Mesh(kind, nursery, hub if hub is not None else MemoryHub(), template)
        for node in range(1, nodes + 1):
            await mesh.start(node, attrs.evolve(template, node_id=node))
        mesh.connect_all()
        try:
            yield mesh
        finally:
            nursery.cancel_scope.cancel()


async def run_echo_node(kind: str, peer_address: str, cluster_id: str = "test-cluster") -> None:
    """Node 2 of a two-process test: prints its address, then echoes node 1's messages."""
    config = TransportConfig(node_id=2, cluster_id=cluster_id, peers={1: peer_address})
    async with open_transport(kind, config) as transport:
        print(transport.address, flush=True)
        while True:
            _, payload = await transport.receive()
            await transport.send(1, payload)


if __name__ == "__main__":  # python -m transports.testing KIND NODE1_ADDRESS
    import sys

    trio.run(run_echo_node, sys.argv[1], sys.argv[2])
