"""An in-process Aspen cluster: 1-5 real `ClusterNode`s on the memory transport.

    async with open_cluster(3, seed=1) as cluster:
        leader = await cluster.wait_leader()
        client = cluster.client(2)               # a kv Session on node 2, no sockets
        assert await client.cmd("SET", "k", "v") == OK

Nodes run the production code (driver, storage, forwarding, reads); only the network is the
memory hub (seeded faults: `cluster.hub.partition(...)`, `NetworkFaults`) and the clock is
trio's, so under `trio.testing.MockClock(autojump_threshold=0)` elections and timeouts cost
no real time. Storage is the memory backend (inline, no worker threads: safe with autojump)
unless `data_dir` is given (sqlite in a worker thread: use the real clock then).
`transport="zmq"` (or "websocket") runs the real transport on free loopback ports instead
(real clock only).
"""

from __future__ import annotations

import functools
import random
import socket
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import trio

from aspen.cluster import ClusterNode, ClusterSettings
from aspen.cluster.blocking import wait_hangup
from aspen.kv.glob import glob_match
from aspen.kv.session import ClientInfo, KeyspaceView, Session
from aspen.pubsub import PubSubHub
from aspen.pubsub.mesh import run_mesh
from aspen.raft import Role
from aspen.resp.server import Connection, Deferred, RespServer
from aspen.server.live_config import ServerConfig
from aspen.storage import MemoryStorage, Storage
from transports import MemoryHub, NetworkFaults

EPOCH_MS = 1_700_000_000_000
"""Wall time at trio time 0: entries carry realistic-looking timestamps."""


def _address(node: int) -> str:
    return f"10.0.0.{node}:7000"  # the memory transport ignores addresses; they must parse


class _Context:
    """A minimal kv `ServerContext` over one node (what the RESP node will provide)."""

    def __init__(self, node: ClusterNode, clock_ms: Any) -> None:
        self._node = node
        self._clock_ms = clock_ms
        self._config: ServerConfig | None = None

    @property
    def requirepass(self) -> bytes | None:
        return None

    @property
    def keyspace(self) -> KeyspaceView:
        return self._node.state.keyspace

    @property
    def server_config(self) -> ServerConfig:
        if self._config is None:
            self._config = ServerConfig()
        return self._config

    def config_get(self, pattern: bytes) -> list[tuple[bytes, bytes]]:
        settings = [(b"read-consistency", self._node.settings.read_consistency.encode())]
        return [(k, v) for k, v in settings if glob_match(pattern, k, nocase=True)]

    def wall_clock_ms(self) -> int:
        return int(self._clock_ms())

    def info_sections(self) -> dict[str, list[tuple[str, str]]]:
        return {}

    def client_list(self) -> list[ClientInfo]:
        return []


class Client:
    """One client connection to one node, driven without sockets (session + handler)."""

    _ids = 0

    def __init__(self, cluster: InProcessCluster, node_id: int) -> None:
        Client._ids += 1
        node = cluster.nodes[node_id]
        self.node_id = node_id
        self.pushes: list[bytes] = []  # pub/sub messages, as the RESP bytes a socket would get
        subscriber = cluster.hubs[node_id].client(self.pushes.append)
        self.session = Session(Client._ids, _Context(node, cluster.clock_ms), pubsub=subscriber)
        self.handler = node.connection_handler(self.session)

    async def cmd(self, *args: str | bytes | int) -> object:
        argv = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        reply = self.handler.handle(argv)
        if isinstance(reply, Deferred):
            reply = await reply.wait()
        return reply


@attrs.define
class _Running:
    node: ClusterNode
    scope: trio.CancelScope
    done: trio.Event
    hub: PubSubHub


class InProcessCluster:
    def __init__(
        self,
        nursery: trio.Nursery,
        hub: MemoryHub,
        node_ids: Iterable[int],
        *,
        seed: int,
        data_dir: Path | None,
        settings: dict[str, Any],
    ) -> None:
        self.hub = hub
        self.seed = seed
        self.data_dir = data_dir
        self.node_ids = sorted(node_ids)
        self._nursery = nursery
        self._settings = settings
        self._running: dict[int, _Running] = {}
        self.storages: dict[int, Storage] = {}
        self.nodes: dict[int, ClusterNode] = {}
        self.hubs: dict[int, PubSubHub] = {}  # each node's pub/sub, on the same mesh
        self._incarnations = 0
        self._addresses: dict[int, str] = {}

    @staticmethod
    def clock_ms() -> int:
        return EPOCH_MS + int(trio.current_time() * 1000)

    def address(self, node_id: int) -> str:
        """The node's raft address: a fake one on the memory hub, a free loopback port else."""
        if self._settings.get("transport", "memory") == "memory":
            return _address(node_id)
        if node_id not in self._addresses:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                self._addresses[node_id] = f"127.0.0.1:{sock.getsockname()[1]}"
        return self._addresses[node_id]

    def settings_for(self, node_id: int, peers: Iterable[int] | None = None) -> ClusterSettings:
        peer_ids = self.node_ids if peers is None else peers
        fields: dict[str, Any] = dict(
            node_id=node_id,
            cluster_id="harness",
            raft_address=self.address(node_id),
            peers={p: self.address(p) for p in peer_ids if p != node_id},
            transport="memory",
            tick_interval=0.05,
            election_ticks=10,
            request_timeout=3.0,
        )
        if self.data_dir is not None:
            fields["data_dir"] = self.data_dir / f"n{node_id}"
            fields["storage_backend"] = "sqlite"
        else:
            fields["storage_backend"] = "memory"
        fields.update(self._settings)
        return ClusterSettings(**fields)

    async def start(
        self, node_id: int, *, init: Iterable[int] | None = None, peers: Iterable[int] | None = None
    ) -> ClusterNode:
        """Start (or restart) a node; `init` bootstraps it with those voters if it is new."""
        if node_id in self._running:
            raise RuntimeError(f"node {node_id} is already running")
        if node_id not in self.node_ids:
            self.node_ids.append(node_id)
        storage: Storage | None = None
        if self.data_dir is None:
            storage = self.storages.get(node_id)
            if storage is None:
                storage = self.storages[node_id] = MemoryStorage()
        self._incarnations += 1
        node = ClusterNode(
            self.settings_for(node_id, peers),
            hub=self.hub,
            storage=storage,
            clock_ms=self.clock_ms,
            rng=random.Random(self.seed * 1000 + node_id * 10 + self._incarnations),
            incarnation=self._incarnations,
        )
        running = _Running(node, trio.CancelScope(), trio.Event(), PubSubHub())
        await self._nursery.start(self._run, running)
        self._running[node_id] = running
        self.nodes[node_id] = node
        self.hubs[node_id] = running.hub
        if init is not None and node.core is not None and node.core.last_index == 0:
            node.init(init)
        return node

    async def _run(self, running: _Running, task_status: trio.TaskStatus[ClusterNode]) -> None:
        try:
            with running.scope:
                async with trio.open_nursery() as nursery:
                    node = await nursery.start(running.node.run)
                    await nursery.start(run_mesh, running.hub, node)
                    task_status.started(node)
        finally:
            running.done.set()

    async def stop(self, node_id: int) -> None:
        """Crash a node: cancel every task (its storage keeps what was synced)."""
        running = self._running.pop(node_id)
        running.scope.cancel()
        await running.done.wait()
        storage = self.storages.get(node_id)
        if isinstance(storage, MemoryStorage):
            storage.crash()

    async def restart(self, node_id: int) -> ClusterNode:
        await self.stop(node_id)
        return await self.start(node_id)

    def running(self) -> list[ClusterNode]:
        return [r.node for _, r in sorted(self._running.items())]

    def is_running(self, node_id: int) -> bool:
        return node_id in self._running

    def client(self, node_id: int) -> Client:
        return Client(self, node_id)

    def leaders(self) -> list[ClusterNode]:
        return [n for n in self.running() if n.core is not None and n.core.role is Role.LEADER]

    async def wait_leader(
        self, timeout: float = 10.0, among: Iterable[int] | None = None
    ) -> ClusterNode:
        """The one node that leads the highest term and that every running node follows."""
        wanted = set(among) if among is not None else None
        with trio.fail_after(timeout):
            while True:
                candidates = [n for n in self.leaders() if wanted is None or n.id in wanted]
                if candidates:
                    best = max(candidates, key=lambda n: n.raft.term)
                    group = [n for n in self.running() if wanted is None or n.id in wanted]
                    if all(n.raft.leader_id == best.id for n in group) and best.is_leader():
                        return best
                await trio.sleep(0.01)

    async def wait_converged(
        self, timeout: float = 10.0, nodes: Iterable[int] | None = None
    ) -> int:
        """Wait until the given running nodes have applied the same (leader's commit) index."""
        ids = list(nodes) if nodes is not None else [n.id for n in self.running()]
        with trio.fail_after(timeout):
            while True:
                group = [self.nodes[i] for i in ids]
                commits = {n.raft.commit_index for n in group}
                applied = {n.state.applied_index for n in group}
                if len(commits) == 1 and applied == commits:
                    return applied.pop()
                await trio.sleep(0.02)

    async def serve_resp(self, node_id: int) -> int:
        """Serve node `node_id` to real Redis clients on 127.0.0.1 (a free port, returned).

        Use the real clock for this (sockets do not mix with an autojump clock)."""
        node = self.nodes[node_id]

        hub = self.hubs[node_id]

        def factory(conn: Connection) -> Any:
            subscriber = hub.client(conn.push)
            conn.on_close.append(subscriber.close)
            session = Session(conn.client_id, _Context(node, self.clock_ms), pubsub=subscriber)
            handler = node.connection_handler(session)
            sock = conn.sock
            if sock is not None:  # a client parked in BLPOP that leaves is dropped at once
                handler.hangup = functools.partial(wait_hangup, sock)
            return handler

        server = RespServer(factory)
        listeners = await self._nursery.start(server.serve, "127.0.0.1", 0)
        return int(listeners[0].socket.getsockname()[1])

    def digests(self, nodes: Iterable[int] | None = None) -> dict[int, bytes]:
        ids = list(nodes) if nodes is not None else [n.id for n in self.running()]
        return {i: self.nodes[i].state.digest() for i in ids}


@asynccontextmanager
async def open_cluster(
    n: int = 3,
    *,
    seed: int = 0,
    faults: NetworkFaults | None = None,
    data_dir: Path | None = None,
    bootstrap: bool = True,
    **settings: Any,
) -> AsyncIterator[InProcessCluster]:
    """Start nodes 1..n (bootstrapped as one n-voter cluster unless `bootstrap=False`)."""
    hub = MemoryHub(random.Random(seed), faults)
    async with trio.open_nursery() as nursery:
        cluster = InProcessCluster(
            nursery, hub, range(1, n + 1), seed=seed, data_dir=data_dir, settings=settings
        )
        voters = list(range(1, n + 1))
        for node_id in voters:
            await cluster.start(node_id, init=voters if bootstrap else None)
        try:
            yield cluster
        finally:
            nursery.cancel_scope.cancel()
