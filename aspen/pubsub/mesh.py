"""Carry PUBLISHes to every node over the peer mesh (not the Raft log).

`run_mesh(hub, node)` attaches a hub to a running `ClusterNode`: messages published on this
node go to every peer the transport knows (voters and learners), batched per wakeup, as
`MessageKind.PUBSUB` envelopes; what peers send is delivered to local subscribers only,
never re-broadcast. Delivery is at most once (a full peer queue drops, as the transport
does for everything) and keeps each publishing node's order: one sender task, and a sequence
number per envelope with which receivers drop duplicates and stragglers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

import trio

from aspen.pubsub import wire
from aspen.pubsub.hub import PubSubHub
from transports import MessageKind
from transports.base import TransportBase

log = logging.getLogger("aspen.pubsub")

MAX_PAYLOAD = 256 * 1024
"""Messages are packed into envelopes of about this many bytes (a bigger message goes alone)."""


class MeshNode(Protocol):
    """What the mesh needs of a ClusterNode."""

    id: int
    transport: TransportBase | None
    pubsub_sink: Callable[[int, bytes], None] | None


def _chunks(messages: list[wire.Item]) -> list[list[wire.Item]]:
    out: list[list[wire.Item]] = [[]]
    size = 0
    for item in messages:
        n = len(item[0]) + len(item[1]) + 16
        if out[-1] and size + n > MAX_PAYLOAD:
            out.append([])
            size = 0
        out[-1].append(item)
        size += n
    return out


class _Mesh:
    def __init__(self, hub: PubSubHub, node: MeshNode) -> None:
        self.hub = hub
        self.node = node
        self.wakeup = trio.Event()
        self.sent = 0
        self.incarnation = time.time_ns()
        self.seq = 0
        self.last_seen: dict[int, tuple[int, int]] = {}  # sender -> (incarnation, seq)
        self.dropped = 0  # duplicate or late envelopes
        self.malformed = 0  # payloads that did not decode (dropped)

    def kick(self) -> None:
        self.wakeup.set()

    def on_remote(self, sender: int, payload: bytes) -> None:
        try:
            batch = wire.decode(payload)
        except wire.PubSubDecodeError as exc:
            self.malformed += 1
            log.warning("node %d: bad pub/sub message from %d: %s", self.node.id, sender, exc)
            return
        mark = (batch.incarnation, batch.seq)
        last = self.last_seen.get(sender)
        if last is not None and mark <= last:
            self.dropped += 1
            return
        self.last_seen[sender] = mark
        hub = self.hub
        for item in batch.messages:
            hub.stats_received += 1
            if len(item) == 3:
                hub.deliver_shard(item[0], item[1])
            else:
                hub.deliver(item[0], item[1])

    async def run(self) -> None:
        hub = self.hub
        while True:
            await self.wakeup.wait()
            self.wakeup = trio.Event()
            batch, hub.outbound = hub.outbound, []
            transport = self.node.transport
            if not batch or transport is None:
                continue
            peers = list(transport.peers)
            if not peers:
                continue
            for chunk in _chunks(batch):
                self.seq += 1
                payload = wire.encode(wire.Batch(self.incarnation, self.seq, chunk))
                for peer in peers:
                    await transport.send(peer, payload, MessageKind.PUBSUB)
                self.sent += len(chunk)


async def run_mesh(
    hub: PubSubHub, node: MeshNode, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Attach `hub` to `node`'s mesh until cancelled (start it next to the node's `run`)."""
    mesh = _Mesh(hub, node)
    hub.on_outbound = mesh.kick
    hub.mesh_attached = True
    node.pubsub_sink = mesh.on_remote
    try:
        task_status.started()
        await mesh.run()
    finally:
        hub.mesh_attached = False
        hub.on_outbound = None
        hub.outbound = []
        node.pubsub_sink = None
