"""Unsolicited output on the RESP server: `Connection.push` ordering and the pub/sub limit."""

from __future__ import annotations

import socket

import trio
import trio.testing

from aspen.pubsub import PubSubHub
from aspen.resp.server import Connection, Deferred, RespServer, ServerOptions
from aspen.resp.values import PONG, Replies
from harness.resp_wire import command as cmd


class PubSubToy:
    """SUB ch / PUB ch msg / PING / SLOW (a lazy Deferred) over one hub."""

    def __init__(self, conn: Connection, hub: PubSubHub) -> None:
        self.protocol = 3
        self.should_close = False
        self.client = hub.client(conn.push, resp=3)
        conn.on_close.append(self.client.close)
        self.hub = hub

    def handle(self, argv: list[bytes]) -> object:
        name = argv[0].upper()
        if name == b"SUB":
            return Replies(self.client.subscribe(argv[1:]))
        if name == b"PUB":
            return self.hub.publish(argv[1], argv[2])
        if name == b"SLOW":

            async def later() -> object:
                await trio.sleep(0.05)
                return b"slow"

            return Deferred(later)
        return PONG


async def read_exactly(stream: trio.SocketStream, n: int) -> bytes:
    data = b""
    with trio.fail_after(5):
        while len(data) < n:
            chunk = await stream.receive_some(65536)
            assert chunk, f"closed after {data!r}"
            data += chunk
    return data


async def start(nursery: trio.Nursery, hub: PubSubHub, **options: int) -> tuple[RespServer, int]:
    server = RespServer(lambda conn: PubSubToy(conn, hub), ServerOptions(**options))
    listeners = await nursery.start(server.serve, "127.0.0.1", 0)
    return server, listeners[0].socket.getsockname()[1]


async def test_a_push_takes_its_place_among_the_replies() -> None:
    hub = PubSubHub()
    async with trio.open_nursery() as nursery:
        server, port = await start(nursery, hub)
        sub = await trio.open_tcp_stream("127.0.0.1", port)
        pub = await trio.open_tcp_stream("127.0.0.1", port)
        await sub.send_all(cmd(b"SUB", b"c"))
        confirm = b">3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n"
        assert await read_exactly(sub, len(confirm)) == confirm
        push = b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n"
        # idle in recv: the push goes out at once
        await pub.send_all(cmd(b"PUB", b"c", b"m"))
        assert await read_exactly(pub, 4) == b":1\r\n"
        assert await read_exactly(sub, len(push)) == push
        # its own PUBLISH: the message before the count (as Redis writes them)
        await sub.send_all(cmd(b"PUB", b"c", b"m"))
        assert await read_exactly(sub, len(push) + 4) == push + b":1\r\n"
        # mid-batch, behind a reply that is not ready yet: after that reply, before the next
        await sub.send_all(cmd(b"SLOW") + cmd(b"PING"))
        await trio.sleep(0.01)
        await pub.send_all(cmd(b"PUB", b"c", b"m"))
        want = b"$4\r\nslow\r\n" + push + b"+PONG\r\n"
        assert await read_exactly(sub, len(want)) == want
        await sub.aclose()
        with trio.fail_after(5):
            while hub.channels:  # the closed connection's subscription is dropped
                await trio.sleep(0.01)
        await pub.aclose()
        server.shutdown()


async def test_a_subscriber_that_does_not_read_is_cut_off_and_publishers_go_on() -> None:
    hub = PubSubHub()
    limit = 256 * 1024
    async with trio.open_nursery() as nursery:
        server, port = await start(nursery, hub, pubsub_output_limit=limit)
        slow = socket.create_connection(("127.0.0.1", port))
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.sendall(cmd(b"SUB", b"c"))
        with trio.fail_after(5):
            while not hub.channels:
                await trio.sleep(0.01)
        pub = await trio.open_tcp_stream("127.0.0.1", port)
        blob = b"x" * 16384
        counts = []
        with trio.fail_after(10):  # a publisher that waited for the reader would hang here
            for _ in range(2000):  # 32 MB: far past the limit and any kernel buffering
                await pub.send_all(cmd(b"PUB", b"c", blob))
                counts.append(int((await read_exactly(pub, 4))[1:2]))
        assert counts[0] == 1 and counts[-1] == 0
        assert not hub.channels and len(server.connections) == 1
        slow.close()
        await pub.aclose()
        server.shutdown()


async def test_pushes_on_a_plain_trio_stream() -> None:
    hub = PubSubHub()
    server = RespServer(lambda conn: PubSubToy(conn, hub))
    client, server_side = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.serve_stream, server_side)
        await client.send_all(cmd(b"SUB", b"c"))
        confirm = b">3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n"
        got = b""
        with trio.fail_after(5):
            while len(got) < len(confirm):
                got += await client.receive_some()
        assert got == confirm
        assert hub.publish(b"c", b"m") == 1
        push = b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n"
        got = b""
        with trio.fail_after(5):
            while len(got) < len(push):
                got += await client.receive_some()
        assert got == push
        await client.aclose()
    assert not hub.channels


async def test_a_subscriber_over_the_soft_limit_for_too_long_is_cut_off() -> None:
    hub = PubSubHub()
    hard = 1 << 30  # never reached here: the soft limit must do it
    async with trio.open_nursery() as nursery:
        server, port = await start(nursery, hub, pubsub_output_limit=hard,
                                   pubsub_soft_limit=64 * 1024, pubsub_soft_seconds=0.3)
        slow = socket.create_connection(("127.0.0.1", port))
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.sendall(cmd(b"SUB", b"c"))
        with trio.fail_after(5):
            while not hub.channels:
                await trio.sleep(0.01)
        blob = b"x" * 16384
        published = 0
        with trio.fail_after(20):
            while hub.channels:
                hub.publish(b"c", blob)
                published += len(blob)
                await trio.sleep(0.002)
        assert published < hard
        assert len(server.connections) == 0
        slow.close()
        server.shutdown()
