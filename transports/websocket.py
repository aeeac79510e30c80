"""The WebSocket transport, for networks where only HTTP(S) passes.

Every node serves WebSockets on its address (resource ``/aspen``); for each peer a sender task
keeps one client connection open and sends each envelope as one binary message. One connection
per direction per pair keeps per-pair order. While a peer cannot be reached, its queue is
drained and counted as ``unreachable`` (the messages would be stale), and the sender retries
with backoff up to one second. A peer that takes no bytes for ``send_timeout`` (stopped, or
not reading) costs its connection: the half-sent message is dropped and the sender reconnects.

``max_message_size`` defaults to 64 MiB (trio-websocket's own default is 1 MiB, and a bigger
message makes it close the connection with code 1009); both ends use config.max_message_size
plus the envelope overhead. With ``config.tls_server``/``tls_client`` set the links are
``wss://`` (mutual TLS when both contexts verify certificates, as Aspen's [tls] peers = true
builds them): a peer without a certificate signed by the cluster's CA cannot connect.
"""

from __future__ import annotations

import enum
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
import trio_websocket as tw

from transports.base import ENVELOPE_OVERHEAD, OutgoingQueue, TransportBase, backoff_delays, log
from transports.lifecycle import running
from transports.settings import NodeId, TransportConfig, split_address
from transports.stats import DropReason

RESOURCE = "/aspen"
_CONNECT_TIMEOUT = 2.0  # TCP connect plus the WebSocket handshake
_DISCONNECT_TIMEOUT = 1.0
_CONNECTION_ERRORS = (
    OSError,
    ssl.SSLError,
    tw.ConnectionClosed,
    tw.HandshakeError,
    tw.ConnectionTimeout,
    tw.DisconnectionTimeout,
    trio.BrokenResourceError,
)


class _Outcome(enum.Enum):
    REMOVED = "peer removed"
    FAILED = "could not connect"
    LOST = "connection lost"
    STALLED = "peer took no bytes for send_timeout"


@asynccontextmanager
async def open_websocket_transport(config: TransportConfig) -> AsyncIterator[WebSocketTransport]:
    transport = WebSocketTransport(config)
    async with running(transport, transport._open) as t:
        yield t


class WebSocketTransport(TransportBase):
    def __init__(self, config: TransportConfig) -> None:
        super().__init__(config)
        if config.curve is not None:
            raise ValueError("websocket transport: CURVE is only available on the zmq transport")
        self._wire_limit = config.max_message_size + ENVELOPE_OVERHEAD

    async def _open(self, nursery: trio.Nursery) -> None:
        host, port = split_address(self.config.bind)
        server: tw.WebSocketServer = await nursery.start(
            lambda task_status: tw.serve_websocket(
                self._serve,
                host,
                port,
                ssl_context=self.config.tls_server,
                max_message_size=self._wire_limit,
                connect_timeout=_CONNECT_TIMEOUT,
                disconnect_timeout=_DISCONNECT_TIMEOUT,
                task_status=task_status,
            )
        )
        self._address = f"{host}:{server.port}"

    async def _serve(self, request: tw.WebSocketRequest) -> None:
        if request.path != RESOURCE:
            await request.reject(404)
            return
        ws = await request.accept()
        link_sender: NodeId | None = None
        try:
            while True:
                data = await ws.get_message()
                if not isinstance(data, bytes):
                    self._stats.drop(DropReason.MALFORMED)
                    continue
                if link_sender is None:
                    # The first valid envelope names this connection's sender for good.
                    message = self._check(data, None)
                    if message is None:
                        continue
                    link_sender = message.sender
                await self._deliver(data, link_sender)
        except tw.ConnectionClosed:
            return

    async def _run_peer(self, peer: NodeId, address: str, queue: OutgoingQueue) -> None:
        host, port = split_address(address)
        delays = backoff_delays()
        attempt = 0
        while True:
            outcome = await self._connection(host, port, queue)
            if outcome is _Outcome.REMOVED:
                return
            if outcome is _Outcome.LOST:
                attempt = 0  # it was up: retry quickly
            log.debug("node %d: peer %d at %s: %s", self.node_id, peer, address, outcome.value)
            # Not connected: what waits is stale; drop it, back off, try again.
            self._drain_as_dropped(queue, DropReason.UNREACHABLE)
            await trio.sleep(delays[min(attempt, len(delays) - 1)])
            attempt += 1
            self._drain_as_dropped(queue, DropReason.UNREACHABLE)

    async def _connection(self, host: str, port: int, queue: OutgoingQueue) -> _Outcome:
        """One client connection's life, from connect to loss (or the peer's removal).

        We own the TCP stream and close it ourselves: trio-websocket 0.12 leaves it open when
        the peer vanishes without a closing handshake (aclose() then returns early). A
        rejected handshake is raised by the connection's reader task, so it arrives wrapped
        in the nursery's ExceptionGroup.
        """
        outcome = _Outcome.FAILED
        stream: trio.SocketStream | None = None
        try:
            async with trio.open_nursery() as nursery:
                try:
                    with trio.fail_after(_CONNECT_TIMEOUT):
                        stream = await trio.open_tcp_stream(host, port)
                        link: trio.SocketStream | trio.SSLStream[trio.SocketStream] = stream
                        if self.config.tls_client is not None:
                            link = trio.SSLStream(stream, self.config.tls_client)
                            await link.do_handshake()
                        ws = await tw.wrap_client_stream(
                            nursery, link, host, RESOURCE, max_message_size=self._wire_limit
                        )
                    outcome = await self._send_all(ws, queue)
                except (*_CONNECTION_ERRORS, trio.TooSlowError) as exc:
                    log.debug("node %d: websocket to %s:%d: %r", self.node_id, host, port, exc)
                finally:
                    if stream is not None:
                        await trio.aclose_forcefully(stream)
                    nursery.cancel_scope.cancel()  # the connection's reader task
        except* (*_CONNECTION_ERRORS, trio.TooSlowError) as group:
            log.debug("node %d: websocket to %s:%d: %r", self.node_id, host, port, group)
        return outcome

    async def _send_all(self, ws: tw.WebSocketConnection, queue: OutgoingQueue) -> _Outcome:
        while batch := await self._next_batch(queue):
            for i, (kind, payload) in enumerate(batch):
                with trio.move_on_after(self.config.send_timeout) as stall:
                    try:
                        await ws.send_message(self._encode(kind, payload))
                    except _CONNECTION_ERRORS:
                        self._stats.drop(DropReason.UNREACHABLE, len(batch) - i)
                        return _Outcome.LOST
                if stall.cancelled_caught:
                    # The peer takes no bytes; a half-sent frame ruins the stream anyway.
                    self._stats.drop(DropReason.UNREACHABLE, len(batch) - i)
                    return _Outcome.STALLED
                self._stats.sent += 1
        return _Outcome.REMOVED
