"""The one interface every transport implements, and the machinery they share.

Lifecycle (the same for all three transports): ``async with open_<kind>_transport(config) as t``.
The context manager owns a nursery holding one sender task per peer plus the transport's
receiving side, so the node starts it inside its own nursery and a crash in either cancels both.
Leaving the block cancels every task and closes every socket before it returns; a task still
blocked in `receive()` then gets `trio.EndOfChannel`.

Delivery is best effort and ordered per pair of nodes. `send()` never blocks on a peer: it puts
the message on that peer's bounded queue, or drops and counts it when the queue is full.
Received messages wait in a bounded inbox; when the node does not keep up, the receiving side
stops reading, which pushes back over the wire onto the senders' queues (where drops are counted).

Receiving: a `sink` set by the node gets each message as it arrives, in the receiving task;
without one, `receive()` gives ``(sender, payload)``; `receive_message()` adds the envelope's
`MessageKind` (Raft, or forwarded client request/reply); `receive_batch()` takes everything
already waiting in one wakeup, which is what a batching driver loop wants. Membership changes
call `add_peer()` / `remove_peer()`; a message from a node that is not a current peer is
dropped (``unknown_sender``), so both ends must know each other.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol, runtime_checkable

import attrs
import trio

from transports import envelope
from transports.envelope import Envelope, EnvelopeError, MessageKind
from transports.protocol import (
    HELLO_INTERVAL,
    OWN_HELLO,
    PROTOCOL,
    HelloError,
    PeerVersions,
    decode_hello,
    encode_hello,
)
from transports.refusals import RefusalLog
from transports.settings import NodeId, TransportConfig, split_address
from transports.stats import DropReason, TransportStats

log = logging.getLogger("aspen.transports")

OutgoingQueue = trio.MemoryReceiveChannel[tuple[MessageKind, bytes]]


@attrs.frozen
class Message:
    """One received message: who sent it, what kind it is, and the payload bytes."""

    sender: NodeId
    kind: MessageKind
    payload: bytes


@runtime_checkable
class Transport(Protocol):
    """Bytes to a peer id and back. Knows nothing of Raft."""

    @property
    def node_id(self) -> NodeId: ...

    @property
    def address(self) -> str:
        """The ``host:port`` actually bound (resolves port 0)."""
        ...

    @property
    def stats(self) -> TransportStats: ...

    @property
    def peers(self) -> Mapping[NodeId, str]: ...

    async def send(
        self, peer: NodeId, payload: bytes, kind: MessageKind = MessageKind.RAFT
    ) -> None:
        """Queue ``payload`` for ``peer``; drop and count when that peer's queue is full.

        Never waits (it does not even yield unless cancelled): a loop that sends more than
        ``queue_size`` messages to one peer without yielding will see drops.
        """
        ...

    async def receive(self) -> tuple[NodeId, bytes]:
        """The next message's sender and payload (any kind; see `receive_message`)."""
        ...

    async def receive_message(self) -> Message:
        """The next message with its kind, for nodes that carry client traffic too."""
        ...

    async def receive_batch(self, max_messages: int = 256) -> list[Message]:
        """Wait for one message, then take whatever else is already there (up to a bound):
        one wakeup per batch instead of per message, for a driver loop that batches."""
        ...

    def add_peer(self, peer: NodeId, address: str, curve_key: bytes | None = None) -> None:
        """Start talking to a new peer (membership change); replaces an existing address."""
        ...

    def remove_peer(self, peer: NodeId) -> None:
        """Stop talking to a peer; its queued messages are discarded, its messages refused."""
        ...


class _Peer:
    def __init__(self, address: str, queue_size: int) -> None:
        self.address = address
        self.queue_in, self.queue_out = trio.open_memory_channel[tuple[MessageKind, bytes]](
            queue_size
        )
        self.cancel_scope = trio.CancelScope()


class TransportBase:
    """Per-peer queues and sender tasks, inbound checks, stats; subclasses do the I/O.

    A subclass implements `_run_peer` (drain one peer's queue onto the wire) and calls
    `_deliver` for every frame that arrives.
    """

    ANNOUNCES = True
    """Send HELLOs and work out the cluster protocol (transports.protocol); False only where
    every node is known to run this very code (the in-process memory transport)."""
    COMPRESSES = True

    def __init__(self, config: TransportConfig) -> None:
        self.config = config
        self._stats = TransportStats()
        self._refusals = RefusalLog()
        self._versions = PeerVersions()
        self.members_source: Callable[[], Iterable[NodeId]] | None = None
        """Who the cluster's members are (the node sets it from its Raft membership); the
        cluster protocol is the minimum over them. Unset: over every current peer."""
        # Until every peer has announced a newer one (no announcements: all run this code).
        self._cluster_protocol = 1 if self.ANNOUNCES else PROTOCOL
        self._stats.cluster_protocol = self._cluster_protocol
        self._peers: dict[NodeId, _Peer] = {}
        self._curve_keys: dict[NodeId, bytes] = (
            dict(config.curve.peer_keys) if config.curve is not None else {}
        )
        self._inbox_in, self._inbox_out = trio.open_memory_channel[Message](config.inbox_size)
        self.sink: Callable[[Message], None] | None = None
        """Where received messages go instead of the inbox, called in the receiving task (a
        node sets it: a channel hop and a task switch less per message). It must not block;
        with a sink, push-back comes from the sink's caller sharing the event loop with it."""
        self._nursery: trio.Nursery | None = None
        self._closed = False
        self._address = config.bind

    # -- the public interface ---------------------------------------------------------------

    @property
    def node_id(self) -> NodeId:
        return self.config.node_id

    @property
    def address(self) -> str:
        return self._address

    @property
    def stats(self) -> TransportStats:
        return self._stats

    @property
    def peers(self) -> Mapping[NodeId, str]:
        return {peer: p.address for peer, p in self._peers.items()}

    @property
    def protocol(self) -> int:
        """This release's peer protocol version."""
        return PROTOCOL

    @property
    def cluster_protocol(self) -> int:
        """The version every current peer has announced (min with ours): what may be sent."""
        return self._cluster_protocol

    def peer_protocols(self) -> dict[NodeId, int]:
        """Each current peer's announced version (1: never announced, or not lately)."""
        now = trio.current_time()
        return {peer: self._versions.protocol_of(peer, now) for peer in self._peers}

    async def send(
        self, peer: NodeId, payload: bytes, kind: MessageKind = MessageKind.RAFT
    ) -> None:
        # No full checkpoint: a yield per message costs a scheduler pass per message, and a
        # driver sending to N peers would pay N of them. Cancellation is still honoured.
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._closed:
            raise trio.ClosedResourceError("transport is closed")
        self._queue(peer, kind, payload)

    def _queue(self, peer: NodeId, kind: MessageKind, payload: bytes) -> None:
        p = self._peers.get(peer)
        if p is None:
            self._stats.drop(DropReason.UNKNOWN_PEER)
            return
        if len(payload) > self.config.max_message_size:
            self._stats.drop(DropReason.TOO_LARGE)
            return
        try:
            p.queue_in.send_nowait((kind, payload))
        except trio.WouldBlock:
            self._stats.drop(DropReason.QUEUE_FULL)

    async def receive_message(self) -> Message:
        return await self._inbox_out.receive()

    async def receive(self) -> tuple[NodeId, bytes]:
        message = await self._inbox_out.receive()
        return message.sender, message.payload

    async def receive_batch(self, max_messages: int = 256) -> list[Message]:
        batch = [await self._inbox_out.receive()]
        while len(batch) < max_messages:
            try:
                batch.append(self._inbox_out.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        return batch

    def add_peer(self, peer: NodeId, address: str, curve_key: bytes | None = None) -> None:
        if self._nursery is None or self._closed:
            raise trio.ClosedResourceError("transport is not running")
        if not isinstance(peer, int) or peer <= 0 or peer == self.node_id:
            raise ValueError(f"transport: bad peer id {peer!r}")
        split_address(address)
        if self.config.curve is not None:
            if curve_key is None and peer not in self._curve_keys:
                raise ValueError(f"transport: curve is on and peer {peer} has no public key")
            if curve_key is not None:
                self._curve_keys[peer] = curve_key
        if peer in self._peers:
            self.remove_peer(peer)
        p = _Peer(address, self.config.queue_size)
        self._peers[peer] = p
        self._nursery.start_soon(self._peer_task, peer, p)
        if self.ANNOUNCES:
            self._queue(peer, MessageKind.HELLO, _OWN_HELLO)
            self._update_cluster_protocol()

    def remove_peer(self, peer: NodeId) -> None:
        p = self._peers.pop(peer, None)
        if p is not None:
            p.cancel_scope.cancel()
            p.queue_in.close()
            self._versions.forget(peer)
            if self._nursery is not None and self.ANNOUNCES:
                self._update_cluster_protocol()

    # -- for subclasses ------------------------------------------------------------------------

    async def _run_peer(self, peer: NodeId, address: str, queue: OutgoingQueue) -> None:
        raise NotImplementedError

    def _encode(self, kind: MessageKind, payload: bytes) -> bytes:
        env = Envelope(kind, self.config.cluster_id, self.node_id, payload)
        if self.COMPRESSES and self._cluster_protocol >= 2 and len(payload) >= COMPRESS_AT:
            compressed = envelope.encode_compressed(env)
            if len(compressed) < len(payload) * 0.9:
                self._stats.compressed += 1
                return compressed
        return envelope.encode(env)

    def _check(self, data: bytes, link_sender: NodeId | None) -> Message | None:
        """Decode and vet one incoming frame; count and return None if it must be dropped.

        ``link_sender`` is who the link says sent it (ZeroMQ identity, a WebSocket
        connection's first sender); the envelope must agree with it.
        """
        if len(data) > self.config.max_message_size + ENVELOPE_OVERHEAD:
            return self._refuse(DropReason.TOO_LARGE, link_sender, f"{len(data)} bytes")
        try:
            env = envelope.decode(data, self.config.max_message_size)
        except EnvelopeError as exc:
            if exc.reason is DropReason.UNKNOWN_KIND:
                # A newer release's message: expected during an upgrade, not an attack.
                self._stats.drop(exc.reason)
                log.debug("node %d: dropped a message of %s", self.node_id, exc.detail)
                return None
            return self._refuse(exc.reason, link_sender, exc.detail)
        if env.cluster_id != self.config.cluster_id:
            return self._refuse(DropReason.WRONG_CLUSTER, link_sender, repr(env.cluster_id))
        if env.sender not in self._peers:
            return self._refuse(DropReason.UNKNOWN_SENDER, link_sender, f"node {env.sender}")
        if link_sender is not None and env.sender != link_sender:
            return self._refuse(
                DropReason.SENDER_MISMATCH, link_sender, f"envelope claims node {env.sender}"
            )
        if env.kind is MessageKind.HELLO:
            self._on_hello(env.sender, env.payload)
            return None  # announcements are the transport's business, not the node's
        return Message(env.sender, env.kind, env.payload)

    def _on_hello(self, peer: NodeId, payload: bytes) -> None:
        try:
            hello = decode_hello(payload)
        except HelloError as exc:
            self._refuse(DropReason.MALFORMED, peer, f"hello: {exc}")
            return
        self._stats.hellos_received += 1
        if self._versions.record(peer, hello, trio.current_time()):
            log.info(
                "node %d: peer %d speaks protocol %d (%s; features %s)",
                self.node_id, peer, hello.protocol, hello.release or "?",
                ",".join(sorted(hello.features)) or "-",
            )
            if self.ANNOUNCES:
                self._queue(peer, MessageKind.HELLO, _OWN_HELLO)  # let it learn ours at once
                self._update_cluster_protocol()

    def _update_cluster_protocol(self) -> None:
        members: Iterable[NodeId] = self._peers
        if self.members_source is not None:
            members = [m for m in self.members_source() if m != self.node_id]
        version = self._versions.cluster_protocol(members, trio.current_time())
        if version != self._cluster_protocol:
            log.info(
                "node %d: cluster protocol %d -> %d (peers: %s)",
                self.node_id, self._cluster_protocol, version,
                ", ".join(f"{p}={v}" for p, v in sorted(self.peer_protocols().items())) or "-",
            )
            self._cluster_protocol = version
        self._stats.cluster_protocol = version

    async def _announce(self) -> None:
        """Every `HELLO_INTERVAL`: tell each peer our version, and re-check who is current."""
        while True:
            for peer in list(self._peers):
                self._queue(peer, MessageKind.HELLO, _OWN_HELLO)
            self._update_cluster_protocol()
            await trio.sleep(HELLO_INTERVAL)

    def _refuse(
        self, reason: DropReason, link_sender: NodeId | None, detail: str
    ) -> Message | None:
        """Count an incoming frame dropped for `reason` and log it (rate-limited); None."""
        self._stats.drop(reason)
        self._refusals.warn(
            "node %d: dropped a peer message from %s: %s (%s)",
            self.node_id,
            "an unidentified link" if link_sender is None else f"the link of node {link_sender}",
            reason.value,
            detail,
        )
        return None

    async def _deliver(self, data: bytes, link_sender: NodeId | None = None) -> None:
        """Vet a frame and put it in the inbox, waiting (pushing back) when the inbox is full."""
        message = self._check(data, link_sender)
        if message is None:
            return
        if self.sink is not None:
            self._hand_over_nowait(message)
            return
        try:
            self._inbox_in.send_nowait(message)
        except trio.WouldBlock:
            await self._inbox_in.send(message)
        self._stats.received += 1

    def _hand_over_nowait(self, message: Message) -> None:
        """To the sink, or into the inbox (raises `trio.WouldBlock` when it is full)."""
        sink = self.sink
        if sink is not None:
            sink(message)
        else:
            self._inbox_in.send_nowait(message)
        self._stats.received += 1

    @staticmethod
    async def _next_batch(queue: OutgoingQueue) -> list[tuple[MessageKind, bytes]]:
        """Wait for one queued message, then take what else is there (up to `BATCH`): a
        channel ``receive()`` costs a scheduler pass, so per-message receives cap throughput.
        Returns [] once the queue is closed and empty."""
        try:
            batch = [await queue.receive()]
        except trio.EndOfChannel:
            return []
        while len(batch) < BATCH:
            try:
                batch.append(queue.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        return batch

    def _drain_as_dropped(self, queue: OutgoingQueue, reason: DropReason) -> None:
        """Discard what waits in a queue (the peer is unreachable: these would be stale)."""
        while True:
            try:
                queue.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                return
            self._stats.drop(reason)

    async def _peer_task(self, peer: NodeId, p: _Peer) -> None:
        with p.cancel_scope:
            try:
                await self._run_peer(peer, p.address, p.queue_out)
            finally:
                p.queue_out.close()

    def _start(self, nursery: trio.Nursery) -> None:
        """Called by the subclass once its receiving side is up: start the configured peers."""
        self._nursery = nursery
        for peer, address in self.config.peers.items():
            self.add_peer(peer, address)
        if self.ANNOUNCES:
            nursery.start_soon(self._announce)

    def _close(self) -> None:
        """Mark closed and wake receivers; called after the nursery has exited."""
        self._closed = True
        self.sink = None  # late frames (the memory hub's) meet the closed inbox instead
        self._nursery = None
        for peer in list(self._peers):
            self.remove_peer(peer)
        self._inbox_in.close()


_OWN_HELLO = encode_hello(OWN_HELLO)

COMPRESS_AT = 16 * 1024
"""Payloads from this size go zlib-compressed once the cluster runs protocol 2 (snapshot
chunks, big AppendEntries batches); smaller ones are not worth the CPU."""

ENVELOPE_OVERHEAD = 1024
"""Generous bound on the CBOR bytes around a payload (header, cluster id, ints)."""

BATCH = 256
"""Messages handled per wakeup before yielding: draining many per wakeup is 3-4x faster."""

WAIT_CAP = 0.5
"""Insurance: no wait on a ZeroMQ FD lasts longer than this without re-reading zmq.EVENTS."""


def backoff_delays(start: float = 0.05, cap: float = 1.0) -> list[float]:
    """Reconnect delays: doubling from ``start`` up to ``cap`` (the caller repeats the last)."""
    count = max(1, math.ceil(math.log2(cap / start)) + 1)
    return [min(cap, start * 2**i) for i in range(count)]
