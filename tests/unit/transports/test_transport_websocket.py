"""WebSocket-specific behaviour: message size limits, frame types, the resource path."""

from __future__ import annotations

from functools import partial

import cbor2
import trio
import trio_websocket as tw

from transports import DropReason
from transports.settings import DEFAULT_MAX_MESSAGE_SIZE
from transports.testing import open_mesh


def test_default_limit_is_well_above_trio_websockets_1_mib() -> None:
    # (5 MiB messages on every transport: test_multi_megabyte_payload_round_trips.)
    assert DEFAULT_MAX_MESSAGE_SIZE >= 64 * 1024 * 1024


async def test_message_above_the_receivers_limit_costs_a_reconnect_not_the_link() -> None:
    """A peer configured with a smaller limit closes the connection (1009); later messages
    flow again over a new one."""
    async with open_mesh("websocket", 0, send_timeout=0.3) as mesh:
        config = mesh.config_for(1)
        await mesh.start(1, config)
        await mesh.start(2, mesh.config_for(2, max_message_size=1024 * 1024))
        mesh.connect_all()
        await mesh.warm_up()
        await mesh[1].send(2, b"x" * (2 * 1024 * 1024))
        await mesh.warm_up(links=[(1, 2)], timeout=15)
        with trio.fail_after(10):
            await mesh[1].send(2, b"small")
            # Per-pair order: had the big message been delivered, it would come first.
            assert await mesh.receive(2) == (1, b"small")


async def test_text_frames_and_sender_switching_are_dropped() -> None:
    async with open_mesh("websocket", 3) as mesh:
        await mesh.warm_up()
        await mesh.stop(3)
        host, port = mesh[2].address.split(":")
        as_3 = cbor2.dumps([1, 0, "test-cluster", 3, b"from 3"])
        as_1 = cbor2.dumps([1, 0, "test-cluster", 1, b"claims 1"])
        async with tw.open_websocket(host, int(port), "/aspen", use_ssl=False) as ws:
            await ws.send_message("text is not an envelope")
            await ws.send_message(as_3)  # the first valid envelope pins this link to node 3
            await ws.send_message(as_1)
        with trio.fail_after(5):
            assert await mesh.receive(2) == (3, b"from 3")
            while mesh[2].stats.dropped_total < 2:
                await trio.sleep(0.02)
        assert mesh[2].stats.dropped == {DropReason.MALFORMED: 1, DropReason.SENDER_MISMATCH: 1}


async def test_other_resource_paths_are_rejected() -> None:
    async with open_mesh("websocket", 1) as mesh:
        host, port = mesh[1].address.split(":")
        # Our own stream: trio-websocket's open_websocket leaks its socket on a rejection.
        stream = await trio.open_tcp_stream(host, int(port))
        statuses: list[int] = []
        try:
            with trio.fail_after(5):
                try:
                    async with trio.open_nursery() as nursery:
                        await tw.wrap_client_stream(nursery, stream, host, "/elsewhere")
                except* tw.ConnectionRejected as group:
                    statuses = [
                        e.status_code
                        for e in group.exceptions
                        if isinstance(e, tw.ConnectionRejected)
                    ]
            assert statuses == [404]
        finally:
            await trio.aclose_forcefully(stream)


async def test_a_peer_address_that_rejects_us_is_unreachable_not_fatal() -> None:
    """A wrong address (some other WebSocket service) must not crash the node."""

    async def reject_all(request: tw.WebSocketRequest) -> None:
        await request.reject(403)

    async with trio.open_nursery() as nursery:
        server: tw.WebSocketServer = await nursery.start(
            partial(tw.serve_websocket, reject_all, "127.0.0.1", 0, ssl_context=None)
        )
        async with open_mesh("websocket", 1) as mesh:
            mesh[1].add_peer(2, f"127.0.0.1:{server.port}")
            with trio.fail_after(10):
                while mesh[1].stats.dropped[DropReason.UNREACHABLE] < 3:
                    await mesh[1].send(2, b"hello?")
                    await trio.sleep(0.05)
            assert mesh[1].stats.sent == 0
        nursery.cancel_scope.cancel()


async def test_garbage_on_the_port_does_not_kill_the_node() -> None:
    handshake = (
        b"GET /aspen HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    blobs = [
        b"",
        b"garbage\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        handshake + b"\xff" * 16,  # a valid upgrade, then an invalid frame
        b"\x00" * 10_000,
        b"GET /aspen HTTP/1.1\r\n" + b"X: y\r\n" * 5000,
    ]
    async with open_mesh("websocket", 2) as mesh:
        await mesh.warm_up()
        host, port = mesh[2].address.split(":")
        for blob in blobs:
            stream = await trio.open_tcp_stream(host, int(port))
            try:
                await stream.send_all(blob)
                with trio.move_on_after(0.2):
                    await stream.receive_some(1000)
            except trio.BrokenResourceError:
                pass  # the server hung up on us: fine
            finally:
                await stream.aclose()
        with trio.fail_after(5):
            await mesh[1].send(2, b"alive")
            assert await mesh.receive(2) == (1, b"alive")
