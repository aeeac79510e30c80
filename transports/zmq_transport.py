"""The default transport: a ZeroMQ mesh driven from trio.

Each node binds one ROUTER on its own address and opens one DEALER per peer, whose identity is
the node's own id, connected to that peer's ROUTER. Raft messages are one-way, so every message
travels DEALER -> ROUTER; the ROUTER never sends (it still sets ROUTER_MANDATORY so that it
could never drop silently). Each DEALER belongs to its peer's sender task and the ROUTER to the
receive task: one task per socket, so no task ever consumes another's FD edge.

Unreachable peers: DEALERs set IMMEDIATE, so a message is only queued on a completed (and, with
CURVE, authenticated) connection. When a peer takes nothing for ``send_timeout`` the sender
marks it unreachable and drops (counted) instead of queueing stale messages; the first
successful send clears the mark. ZeroMQ reconnects by itself (ROUTER_HANDOVER lets a restarted
peer take its identity back at once); DEALER heartbeats and TCP keepalive notice a peer that
vanished or froze.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
import zmq

from transports.base import (
    BATCH,
    ENVELOPE_OVERHEAD,
    WAIT_CAP,
    OutgoingQueue,
    TransportBase,
    log,
)
from transports.curve import ZAP_DOMAIN, run_zap_handler
from transports.envelope import MessageKind
from transports.handshakes import OutgoingHandshakes, open_monitor, run_handshake_monitor
from transports.lifecycle import running
from transports.settings import NodeId, TransportConfig, split_address
from transports.stats import DropReason
from transports.zmq_io import POLLIN, POLLOUT, close_socket, int_option, wait_for

_RECONNECT_IVL_MS = 100
_RECONNECT_IVL_MAX_MS = 1000
# ZMTP heartbeats on the DEALERs only. With libzmq 4.3.5 a heartbeat timer firing on a
# connection whose input is stopped by a full pipe aborts the process ("Assertion failed:
# !_io_error (src/stream_engine_base.cpp:310)", seen in test_100k_messages_both_ways_do_not_hang
# when the ROUTER had heartbeats). A DEALER receives nothing, so its input never stops; its
# PINGs (answered by the peer's ZeroMQ I/O thread) find a peer that is gone, frozen, or whose
# identity another connection took over, and the DEALER reconnects.
_HEARTBEAT_IVL_MS = 1000
_HEARTBEAT_TIMEOUT_MS = 5000
_KEEPALIVE_IDLE_S = 5
_KEEPALIVE_INTVL_S = 2
_KEEPALIVE_CNT = 3
_ROUTER_RCVHWM = 1_000_000
_FRESH_SOCKET_AFTER = 3.0  # seconds unreachable before a sender replaces its DEALER


@asynccontextmanager
async def open_zmq_transport(config: TransportConfig) -> AsyncIterator[ZmqTransport]:
    transport = ZmqTransport(config)
    async with running(transport, transport._open) as t:
        yield t


class ZmqTransport(TransportBase):
    def __init__(self, config: TransportConfig) -> None:
        super().__init__(config)
        self._ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context(io_threads=1)
        self._router: zmq.Socket[bytes] | None = None
        self._receive_wait: trio.CancelScope | None = None  # the receive loop's, while parked
        self._idle_dealers: dict[NodeId, zmq.Socket[bytes]] = {}  # see `_queue`

    async def _open(self, nursery: trio.Nursery) -> None:
        curve = self.config.curve
        if curve is not None:
            # Before bind: a CURVE server without a ZAP handler admits every key.
            await nursery.start(
                run_zap_handler, self._ctx, self._lookup_key, self._stats, self._refusals
            )
        router = self._router = self._ctx.socket(zmq.ROUTER)
        # Before bind, so that no refused handshake goes unseen.
        nursery.start_soon(
            run_handshake_monitor, open_monitor(router), self._stats, self._refusals
        )
        router.setsockopt(zmq.LINGER, 0)
        router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        router.setsockopt(zmq.ROUTER_HANDOVER, 1)
        # Large, so that ZeroMQ in practice never stops reading a connection: libzmq 4.3.5
        # can tear a connection down when its input restarts after a full pipe, silently
        # losing everything buffered (tens of thousands of messages, seen in
        # test_100k_messages_both_ways_do_not_hang with RCVHWM = inbox_size). A full inbox
        # still pushes back (the receive task waits); what waits meanwhile sits in this pipe,
        # bounded in practice by what peers send without answers (Raft's in-flight window).
        router.setsockopt(zmq.RCVHWM, _ROUTER_RCVHWM)
        router.setsockopt(zmq.MAXMSGSIZE, self.config.max_message_size + ENVELOPE_OVERHEAD)
        _keepalive(router)
        if curve is not None:
            router.setsockopt(zmq.ZAP_DOMAIN, ZAP_DOMAIN)
            router.setsockopt(zmq.CURVE_SERVER, 1)
            router.setsockopt(zmq.CURVE_SECRETKEY, curve.secret_key)
        host, port = split_address(self.config.bind)
        if ":" in host:
            router.setsockopt(zmq.IPV6, 1)
        router.bind(f"tcp://{_endpoint_host(host)}:{port or '*'}")
        endpoint = router.getsockopt(zmq.LAST_ENDPOINT)
        assert isinstance(endpoint, bytes)
        bound_port = split_address(endpoint.decode())[1]
        self._address = f"[{host}]:{bound_port}" if ":" in host else f"{host}:{bound_port}"
        nursery.start_soon(self._receive_loop, router)
        nursery.start_soon(self._nudge, router)

    def _lookup_key(self, key: bytes) -> NodeId | None:
        """Which configured peer owns this CURVE public key (Z85), if any."""
        for peer, peer_key in self._curve_keys.items():
            if peer_key == key and peer in self._peers:
                return peer
        return None

    # -- receiving -----------------------------------------------------------------------------

    async def _receive_loop(self, router: zmq.Socket[bytes]) -> None:
        """Drain the ROUTER while ``zmq.EVENTS`` says it holds a message, then wait on its FD.

        Asking ``EVENTS`` after each message costs less than the ``recv`` that would raise
        ``zmq.Again``. The wait on the FD has no deadline of its own (a cancel scope per wait
        costs about 6 us, a fair share of what a message costs to receive): the insurance
        against a missed edge is `_nudge`, which cancels the wait if messages sit unread.
        """
        authenticated = self.config.curve is not None
        fd = int_option(router, zmq.FD)
        wait_readable = trio.lowlevel.wait_readable
        while True:
            with trio.CancelScope() as scope:
                while True:
                    handled = 0
                    while int_option(router, zmq.EVENTS) & POLLIN and handled < BATCH:
                        try:
                            # Frames (copy=False) carry the User-Id the ZAP handler gave the
                            # connection.
                            frames = router.recv_multipart(zmq.NOBLOCK, copy=not authenticated)
                        except zmq.Again:
                            break
                        handled += 1
                        await self._on_frames(frames, authenticated)
                    if handled >= BATCH:
                        await trio.lowlevel.checkpoint()  # a full batch: let others run
                        continue
                    self._receive_wait = scope  # only while parked: never mid-delivery
                    try:
                        await wait_readable(fd)
                    finally:
                        self._receive_wait = None

    async def _nudge(self, router: zmq.Socket[bytes]) -> None:
        """Every `WAIT_CAP`: messages waiting while the receive loop sleeps mean a missed FD
        edge; cancel its wait so that it drains them. (Reading ``EVENTS`` here can consume an
        edge only by finding a message, and then the loop is woken anyway.)"""
        while True:
            await trio.sleep(WAIT_CAP)
            scope = self._receive_wait
            if scope is not None and not router.closed and (
                int_option(router, zmq.EVENTS) & POLLIN
            ):
                self._stats.missed_edges += 1
                scope.cancel()

    async def _on_frames(self, frames: list[bytes] | list[zmq.Frame], authenticated: bool) -> None:
        if len(frames) != 2:
            self._refuse(DropReason.MALFORMED, None, f"{len(frames)} frames, not 2")
            return
        identity_frame, data_frame = frames
        if authenticated:
            assert isinstance(identity_frame, zmq.Frame) and isinstance(data_frame, zmq.Frame)
            identity = identity_frame.bytes
            user_id = data_frame.get("User-Id")
            data = data_frame.bytes
        else:
            assert isinstance(identity_frame, bytes) and isinstance(data_frame, bytes)
            identity, user_id, data = identity_frame, None, data_frame
        link_sender = _parse_identity(identity)
        if link_sender is None:
            self._refuse(DropReason.MALFORMED, None, f"link identity {identity[:20]!r}")
            return
        if authenticated and user_id != str(link_sender):
            # A CURVE-admitted peer claiming another node's identity.
            self._refuse(
                DropReason.SENDER_MISMATCH,
                int(user_id) if isinstance(user_id, str) and user_id.isdigit() else None,
                f"admitted as node {user_id}, link identity says node {link_sender}",
            )
            return
        await self._deliver(data, link_sender)

    # -- sending -------------------------------------------------------------------------------

    def _queue(self, peer: NodeId, kind: MessageKind, payload: bytes) -> None:
        """Send at once when the peer's sender task sits idle on its empty queue (no task
        switch per message); else queue as usual. The sender task owns the DEALER's waits,
        and a non-blocking send here never waits; it re-reads EVENTS before any wait."""
        sock = self._idle_dealers.get(peer)
        if sock is not None and len(payload) <= self.config.max_message_size:
            p = self._peers.get(peer)
            if p is not None and p.queue_in.statistics().tasks_waiting_receive:
                try:
                    sock.send(self._encode(kind, payload), zmq.NOBLOCK)
                except zmq.ZMQError:
                    pass  # (Again or worse) the sender task deals with it, in order
                else:
                    self._stats.sent += 1
                    return
        super()._queue(peer, kind, payload)

    async def _run_peer(self, peer: NodeId, address: str, queue: OutgoingQueue) -> None:
        sock = self._dealer(peer, address)
        handshakes = OutgoingHandshakes(sock)
        try:
            unreachable = False
            last_fresh = trio.current_time()
            while True:
                if not unreachable:
                    self._idle_dealers[peer] = sock  # while waiting in `_next_batch` only
                try:
                    batch = await self._next_batch(queue)
                finally:
                    if self._idle_dealers.get(peer) is sock:
                        del self._idle_dealers[peer]
                if not batch:
                    break
                for kind, payload in batch:
                    unreachable = await self._send_one(sock, kind, payload, unreachable)
                failure = handshakes.poll(self._stats)
                if failure is not None:
                    self._refusals.warn(
                        "node %d: peer %d at %s refused our handshake (%s)",
                        self.node_id, peer, address, failure,
                    )
                if unreachable and trio.current_time() - last_fresh >= _FRESH_SOCKET_AFTER:
                    # A DEALER refused by a ZAP handler never retries by itself; a new socket
                    # does (the peer may have learned our key since). Harmless otherwise.
                    last_failure = handshakes.last_failure
                    handshakes.close()
                    close_socket(sock)
                    sock = self._dealer(peer, address)
                    handshakes = OutgoingHandshakes(sock)
                    handshakes.last_failure = last_failure  # the same refusal: no new line
                    last_fresh = trio.current_time()
        finally:
            handshakes.close()
            close_socket(sock)

    def _dealer(self, peer: NodeId, address: str) -> zmq.Socket[bytes]:
        sock = self._ctx.socket(zmq.DEALER)
        try:
            sock.setsockopt(zmq.IDENTITY, str(self.node_id).encode())
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.IMMEDIATE, 1)
            sock.setsockopt(zmq.SNDHWM, self.config.queue_size)
            sock.setsockopt(zmq.RECONNECT_IVL, _RECONNECT_IVL_MS)
            sock.setsockopt(zmq.RECONNECT_IVL_MAX, _RECONNECT_IVL_MAX_MS)
            _keepalive(sock)
            sock.setsockopt(zmq.HEARTBEAT_IVL, _HEARTBEAT_IVL_MS)
            sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, _HEARTBEAT_TIMEOUT_MS)
            curve = self.config.curve
            if curve is not None:
                sock.setsockopt(zmq.CURVE_SERVERKEY, self._curve_keys[peer])
                sock.setsockopt(zmq.CURVE_PUBLICKEY, curve.public_key)
                sock.setsockopt(zmq.CURVE_SECRETKEY, curve.secret_key)
            host, port = split_address(address)
            if ":" in host:
                sock.setsockopt(zmq.IPV6, 1)
            sock.connect(f"tcp://{_endpoint_host(host)}:{port}")
        except BaseException:
            close_socket(sock)
            raise
        return sock

    async def _send_one(
        self, sock: zmq.Socket[bytes], kind: MessageKind, payload: bytes, unreachable: bool
    ) -> bool:
        """Send one message; returns whether the peer is now considered unreachable."""
        data = self._encode(kind, payload)
        try:
            sock.send(data, zmq.NOBLOCK)
            self._stats.sent += 1
            return False
        except zmq.Again:
            pass
        except zmq.ZMQError as exc:  # e.g. EHOSTUNREACH: Raft retransmits, so just count it
            log.warning("node %d: send failed: %s", self.node_id, exc)
            self._stats.drop(DropReason.UNREACHABLE)
            return True
        if not unreachable:
            with trio.move_on_after(self.config.send_timeout):
                while True:
                    await wait_for(sock, POLLOUT)
                    try:
                        sock.send(data, zmq.NOBLOCK)
                    except zmq.Again:
                        continue
                    self._stats.sent += 1
                    return False
            log.info("node %d: peer %s unreachable, dropping", self.node_id, sock.LAST_ENDPOINT)
        self._stats.drop(DropReason.UNREACHABLE)
        return True

    def _close(self) -> None:
        super()._close()
        if self._router is not None:
            close_socket(self._router)
        # Every socket is closed with linger 0 by now, so term() cannot hang.
        self._ctx.destroy(linger=0)


def _parse_identity(identity: bytes) -> NodeId | None:
    if not identity.isdigit() or identity.startswith(b"0") or len(identity) > 18:
        return None
    return int(identity)


def _endpoint_host(host: str) -> str:
    """IPv6 literals need brackets in a ZeroMQ endpoint."""
    return f"[{host}]" if ":" in host else host


def _keepalive(sock: zmq.Socket[bytes]) -> None:
    sock.setsockopt(zmq.TCP_KEEPALIVE, 1)
    sock.setsockopt(zmq.TCP_KEEPALIVE_IDLE, _KEEPALIVE_IDLE_S)
    sock.setsockopt(zmq.TCP_KEEPALIVE_INTVL, _KEEPALIVE_INTVL_S)
    sock.setsockopt(zmq.TCP_KEEPALIVE_CNT, _KEEPALIVE_CNT)
