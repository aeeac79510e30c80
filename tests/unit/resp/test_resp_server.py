"""The trio RESP server, in process, with a tiny handler instead of the keyspace."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from aspen.resp.server import Connection, Deferred, RespServer, ServerOptions
from aspen.resp.values import OK, PONG, Map
from harness.resp_wire import command as cmd


class ToyHandler:
    """PING, ECHO, HELLO, QUIT, AUTH, NIL, SLOW (a Deferred), BOOM (raises)."""

    def __init__(
        self, conn: Connection, password: bytes | None = None, server: RespServer | None = None
    ) -> None:
        self.conn = conn
        self.server = server
        self.protocol = 2
        self.should_close = False
        self.password = password
        self.authenticated = password is None
        self.seen: list[bytes] = []

    def handle(self, argv: list[bytes]) -> object:
        name = argv[0].upper()
        self.seen.append(name)
        if name == b"PING":
            return PONG
        if name == b"ECHO":
            return argv[1]
        if name == b"NIL":
            return None
        if name == b"HELLO":
            self.protocol = int(argv[1])
            return Map([(b"proto", self.protocol)])
        if name == b"QUIT":
            self.should_close = True
            return OK
        if name == b"AUTH":
            self.authenticated = argv[1] == self.password
            return OK
        if name == b"SLOW":

            async def later() -> object:
                await trio.sleep(0.02)
                return b"slow"

            return Deferred(later)
        if name == b"BOOM":
            raise RuntimeError("kaboom")
        if name == b"STOP" and self.server is not None:  # shutdown from inside a pipeline
            self.server.shutdown()
            return OK
        return argv


class CountingStream(trio.abc.Stream):
    """Wraps a stream and counts the server's reads and writes."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.sends = 0
        self.reads = 0

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.sends += 1
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await self.inner.receive_some(max_bytes)
        if data:
            self.reads += 1
        return data

    async def aclose(self) -> None:
        await self.inner.aclose()


async def read_until_eof(stream: trio.abc.Stream) -> bytes:
    data = b""
    while chunk := await stream.receive_some():
        data += chunk
    return data


async def read_exactly(stream: trio.abc.Stream, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = await stream.receive_some()
        assert chunk, f"EOF after {data!r}"
        data += chunk
    return data


async def test_pipeline_is_answered_in_order_with_one_write_per_read() -> None:
    server = RespServer(ToyHandler)
    client, server_side = trio.testing.memory_stream_pair()
    counting = CountingStream(server_side)
    n = 1000
    request = b"".join(cmd(b"ECHO", b"%d" % i) for i in range(n))
    expected = b"".join(b"$%d\r\n%d\r\n" % (len(b"%d" % i), i) for i in range(n))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.serve_stream, counting)
        await client.send_all(request)
        assert await read_exactly(client, len(expected)) == expected
        await client.aclose()
    assert counting.reads >= 1
    assert counting.sends == counting.reads  # one write per read, whatever the pipeline length
    assert counting.sends <= n // 50


async def test_pipeline_over_tcp_needs_far_fewer_writes_than_commands() -> None:
    server = RespServer(ToyHandler)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve, "127.0.0.1", 0)
        client = await trio.open_tcp_stream("127.0.0.1", server.ports[0])
        n = 5000
        await client.send_all(cmd(b"PING") * n)
        assert await read_exactly(client, 7 * n) == b"+PONG\r\n" * n
        await client.aclose()
        server.shutdown()
    assert server.stats_commands_processed == n
    assert 1 <= server.stats_writes <= server.stats_reads
    assert server.stats_writes <= n // 20


async def test_deferred_replies_keep_request_order() -> None:
    server = RespServer(ToyHandler)
    client, server_side = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.serve_stream, server_side)
        await client.send_all(cmd(b"SLOW") + cmd(b"PING") + cmd(b"SLOW") + cmd(b"ECHO", b"x"))
        expected = b"$4\r\nslow\r\n+PONG\r\n$4\r\nslow\r\n$1\r\nx\r\n"
        assert await read_exactly(client, len(expected)) == expected
        await client.aclose()


async def test_protocol_error_answers_earlier_commands_then_closes() -> None:
    handlers: list[ToyHandler] = []

    def factory(conn: Connection) -> ToyHandler:
        handlers.append(ToyHandler(conn))
        return handlers[-1]

    server = RespServer(factory)
    client, server_side = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.serve_stream, server_side)
        await client.send_all(cmd(b"PING") + b"*1\r\n$x\r\n" + cmd(b"PING"))
        data = await read_until_eof(client)
    assert data == b"+PONG\r\n-ERR Protocol error: invalid bulk length\r\n"
    assert handlers[0].seen == [b"PING"]
    assert server.connections == {}


async def test_quit_replies_then_closes_and_runs_nothing_after() -> None:
    handlers: list[ToyHandler] = []

    def factory(conn: Connection) -> ToyHandler:
        handlers.append(ToyHandler(conn))
        return handlers[-1]

    server = RespServer(factory)
    client, server_side = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.serve_stream, server_side)
        await client.send_all(cmd(b"PING") + cmd(b"QUIT") + cmd(b"PING"))
        assert await read_until_eof(client) == b"+PONG\r\n+OK\r\n"
    assert handlers[0].seen == [b"PING", b"QUIT"]


async def test_hello_switches_encoding_mid_pipeline() -> None:
    server = RespServer(ToyHandler)
    client, server_side = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.serve_stream, server_side)
        await client.send_all(cmd(b"NIL") + cmd(b"HELLO", b"3") + cmd(b"NIL"))
        expected = b"$-1\r\n%1\r\n$5\r\nproto\r\n:3\r\n_\r\n"
        assert await read_exactly(client, len(expected)) == expected
        await client.aclose()


async def test_a_failing_command_gets_an_error_and_the_connection_lives_on() -> None:
    server = RespServer(ToyHandler)
    client, server_side = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.serve_stream, server_side)
        await client.send_all(cmd(b"BOOM") + cmd(b"PING"))
        data = await read_exactly(client, 1)
        while not data.endswith(b"+PONG\r\n"):
            data += await client.receive_some()
        assert data.startswith(b"-ERR internal error: RuntimeError('kaboom')\r\n")
        await client.aclose()


async def test_pre_auth_limits_lift_after_auth_within_one_pipeline() -> None:
    server = RespServer(lambda conn: ToyHandler(conn, password=b"pw"))
    big = b"x" * 20000
    client, server_side = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.serve_stream, server_side)
        await client.send_all(cmd(b"AUTH", b"pw") + cmd(b"ECHO", big))
        expected = b"+OK\r\n$20000\r\n" + big + b"\r\n"
        assert await read_exactly(client, len(expected)) == expected
        await client.aclose()
    client, server_side = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.serve_stream, server_side)
        await client.send_all(cmd(b"PING") + cmd(b"ECHO", big))
        assert await read_until_eof(client) == (
            b"+PONG\r\n-ERR Protocol error: unauthenticated bulk length\r\n"
        )


async def test_max_clients_refuses_extra_connections() -> None:
    server = RespServer(ToyHandler, ServerOptions(max_clients=1))
    first, first_server = trio.testing.memory_stream_pair()
    second, second_server = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.serve_stream, first_server)
        await first.send_all(cmd(b"PING"))
        assert await read_exactly(first, 7) == b"+PONG\r\n"
        nursery.start_soon(server.serve_stream, second_server)
        assert await read_until_eof(second) == b"-ERR max number of clients reached\r\n"
        await first.aclose()
    assert server.stats_rejected_connections == 1


async def test_idle_timeout_closes_quiet_connections() -> None:
    server = RespServer(ToyHandler, ServerOptions(idle_timeout=0.05))
    client, server_side = trio.testing.memory_stream_pair()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.serve_stream, server_side)
            await client.send_all(cmd(b"PING"))
            assert await read_until_eof(client) == b"+PONG\r\n"


async def test_shutdown_closes_idle_clients_and_drains_a_pipeline_in_flight() -> None:
    server = RespServer(ToyHandler)
    n = 20000
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve, "127.0.0.1", 0)
            port = server.ports[0]
            idle = await trio.open_tcp_stream("127.0.0.1", port)
            busy = await trio.open_tcp_stream("127.0.0.1", port)
            await idle.send_all(cmd(b"PING"))
            assert await read_exactly(idle, 7) == b"+PONG\r\n"

            async def send_pipeline() -> None:
                await busy.send_all(cmd(b"SLOW") + cmd(b"ECHO", b"payload") * n)

            nursery.start_soon(send_pipeline)
            await trio.sleep(0.005)  # the SLOW command is in flight when shutdown begins
            server.shutdown()
            assert await read_until_eof(idle) == b""
            expected = b"$4\r\nslow\r\n" + b"$7\r\npayload\r\n" * n
            assert await read_until_eof(busy) == expected
    # serve() returned: listeners closed and no connection left behind.
    assert server.connections == {}
    with trio.move_on_after(1):
        try:
            await trio.open_tcp_stream("127.0.0.1", port)
        except OSError:
            pass
        else:
            raise AssertionError("still accepting after shutdown")


async def test_connections_are_numbered_and_listed() -> None:
    ids: list[int] = []

    def factory(conn: Connection) -> ToyHandler:
        ids.append(conn.client_id)
        return ToyHandler(conn)

    server = RespServer(factory)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve, "127.0.0.1", 0)
        a = await trio.open_tcp_stream("127.0.0.1", server.ports[0])
        b = await trio.open_tcp_stream("127.0.0.1", server.ports[0])
        for s in (a, b):
            await s.send_all(cmd(b"PING"))
            await read_exactly(s, 7)
        assert sorted(server.connections) == [1, 2]
        conn = server.connections[1]
        assert conn.addr.startswith("127.0.0.1:") and conn.laddr.endswith(f":{server.ports[0]}")
        await a.aclose()
        await b.aclose()
        server.shutdown()
    assert ids == [1, 2]


async def test_shutdown_begun_mid_pipeline_still_answers_the_whole_read() -> None:
    server = RespServer(lambda conn: ToyHandler(conn, server=server))
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve, "127.0.0.1", 0)
            client = await trio.open_tcp_stream("127.0.0.1", server.ports[0])
            await client.send_all(cmd(b"PING") + cmd(b"STOP") + cmd(b"SLOW") + cmd(b"ECHO", b"z"))
            reply = await read_until_eof(client)
    assert reply == b"+PONG\r\n+OK\r\n$4\r\nslow\r\n$1\r\nz\r\n"


async def test_tcp_fast_path_max_clients_frees_the_slot_on_close() -> None:
    server = RespServer(ToyHandler, ServerOptions(max_clients=1))
    port = 0
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve, "127.0.0.1", 0)
            port = server.ports[0]
            first = await trio.open_tcp_stream("127.0.0.1", port)
            await first.send_all(cmd(b"PING"))
            assert await read_exactly(first, 7) == b"+PONG\r\n"
            second = await trio.open_tcp_stream("127.0.0.1", port)
            assert await read_until_eof(second) == b"-ERR max number of clients reached\r\n"
            await first.aclose()
            while True:  # the server notices the close soon; then the slot is free again
                third = await trio.open_tcp_stream("127.0.0.1", port)
                await third.send_all(cmd(b"ECHO", b"hi"))
                reply = await read_exactly(third, 8)
                if reply == b"$2\r\nhi\r\n":
                    break
                assert reply.startswith(b"-ERR max number")
                await third.aclose()
                await trio.sleep(0.01)
            await third.aclose()
            server.shutdown()
    assert server.stats_rejected_connections >= 1


async def test_tcp_fast_path_idle_timeout() -> None:
    server = RespServer(ToyHandler, ServerOptions(idle_timeout=0.2))
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve, "127.0.0.1", 0)
            client = await trio.open_tcp_stream("127.0.0.1", server.ports[0])
            await client.send_all(cmd(b"PING"))
            start = trio.current_time()
            assert await read_until_eof(client) == b"+PONG\r\n"  # then closed for idling
            assert trio.current_time() - start >= 0.15
            server.shutdown()
    assert server.connections == {}


async def test_a_failing_handler_factory_closes_only_that_connection() -> None:
    calls = 0

    def factory(conn: Connection) -> ToyHandler:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("no handler for you")
        return ToyHandler(conn)

    server = RespServer(factory)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve, "127.0.0.1", 0)
            doomed = await trio.open_tcp_stream("127.0.0.1", server.ports[0])
            assert await read_until_eof(doomed) == b""
            fine = await trio.open_tcp_stream("127.0.0.1", server.ports[0])
            await fine.send_all(cmd(b"PING"))
            assert await read_exactly(fine, 7) == b"+PONG\r\n"
            await fine.aclose()
            server.shutdown()
    assert server.connections == {}


async def test_a_client_holding_too_big_a_partial_command_is_closed() -> None:
    server = RespServer(ToyHandler, ServerOptions(max_query_buffer=1000))
    client, server_side = trio.testing.memory_stream_pair()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.serve_stream, server_side)
            await client.send_all(cmd(b"ECHO", b"a" * 2000))  # complete: fine
            assert await read_exactly(client, 2009) == b"$2000\r\n" + b"a" * 2000 + b"\r\n"
            # Four complete 300-byte arguments of a six-argument command: 1200 bytes held.
            await client.send_all(b"*6\r\n$4\r\nECHO\r\n" + b"$300\r\n" + b"b" * 300 + b"\r\n")
            await client.send_all((b"$300\r\n" + b"b" * 300 + b"\r\n") * 3)
            assert await read_until_eof(client) == b""


async def test_slow_reader_gets_every_reply_when_the_socket_buffer_fills() -> None:
    server = RespServer(ToyHandler)
    payload = b"p" * 200_000
    n = 30  # ~6 MB of replies: far more than the kernel buffers hold
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve, "127.0.0.1", 0)
            client = await trio.open_tcp_stream("127.0.0.1", server.ports[0])
            for _ in range(n):  # separate reads on the server, replies pile up unread
                await client.send_all(cmd(b"ECHO", payload))
                await trio.sleep(0.005)
            await trio.sleep(0.2)
            expected = (b"$200000\r\n" + payload + b"\r\n") * n
            assert await read_exactly(client, len(expected)) == expected
            await client.aclose()
            server.shutdown()
    assert server.stats_writes >= 2


@pytest.mark.parametrize("high_water", [1024**3, 300_000])  # 300 KB: reading pauses too
async def test_write_everything_then_read_pipelines_do_not_deadlock(high_water: int) -> None:
    """redis-py's pattern: send the whole pipeline, then read. Requests and replies both far
    exceed the socket buffers, so the server must keep reading while replies wait."""
    server = RespServer(ToyHandler, ServerOptions(max_output_buffer=high_water))
    payload = b"q" * 100_000
    n = 80  # 8 MB each way
    expected = (b"$100000\r\n" + payload + b"\r\n") * n
    received = bytearray()
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve, "127.0.0.1", 0)
            client = await trio.open_tcp_stream("127.0.0.1", server.ports[0])

            async def reader() -> None:
                await trio.sleep(0.3)  # start reading only after writing for a while
                received.extend(await read_exactly(client, len(expected)))

            nursery.start_soon(reader)
            await client.send_all(cmd(b"ECHO", payload) * n)
            while len(received) < len(expected):
                await trio.sleep(0.01)
            await client.aclose()
            server.shutdown()
    assert received == expected


def test_connection_bookkeeping_starts_empty_and_unshared() -> None:
    # (a plain class since issue 20 round 3: each connection gets its own on_close list)
    a = Connection(1, "127.0.0.1:1", "127.0.0.1:2", 0.0, 0.0)
    b = Connection(2, "127.0.0.1:3", "127.0.0.1:2", 0.0, 0.0)
    a.on_close.append(lambda: None)
    assert b.on_close == [] and b.handler is None and b.sock is None
    assert not b.is_pubsub() and a != b and a == a
    b.subscribed = lambda: True
    assert b.is_pubsub()


def test_server_options_are_still_importable_from_the_server_module() -> None:
    from aspen.resp.options import ServerOptions as Options

    assert ServerOptions is Options
    assert ServerOptions(reactor=False).reactor is False
