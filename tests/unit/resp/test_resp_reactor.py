"""The reactor (issue 20): one task serving idle plain-TCP clients, and its hand-overs.

Every test runs over real TCP (the reactor serves raw sockets only) and checks both what the
client sees and where the work happened (`_Reactor.served` / `handed_over`, the parked set),
so that a hand-over done wrong (a batch lost, run twice, run in the wrong task, a connection
left registered) fails here.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
import trio

from aspen.resp.server import (
    BIG_REPLY,
    Connection,
    Deferred,
    RespServer,
    ServerOptions,
    _Reactor,
)
from aspen.resp.values import OK, PONG
from harness.resp_wire import command as cmd


class Owed:
    """A started, detachable reply settled by the test (like a replicated write)."""

    def __init__(self) -> None:
        self.callback: object = None
        self.value: object = None
        self.settled = trio.Event()
        self.abandoned = False

    def deferred(self) -> Deferred:
        return Deferred(self.wait, self.abandon, self.detach, self.result)

    def detach(self, callback: object) -> bool:
        if self.settled.is_set():
            return False
        self.callback = callback
        return True

    def settle(self, value: object) -> None:
        self.value = value
        self.settled.set()
        callback, self.callback = self.callback, None
        if callback is not None:
            callback()  # type: ignore[operator]

    async def wait(self) -> object:
        await self.settled.wait()
        return self.value

    def abandon(self) -> None:
        self.abandoned = True

    def result(self) -> object:
        return self.value


class Handler:
    """PING, ECHO, SLOW (lazy: must await), OWE (a detachable reply the test settles),
    QUIT, KILLME (kills its own connection mid-batch), BIG n (a long array)."""

    def __init__(self, conn: Connection, owed: list[Owed], tasks: list[object]) -> None:
        self.conn = conn
        self.owed = owed
        self.tasks = tasks  # the trio task each command ran in
        self.protocol = 2
        self.should_close = False

    def handle(self, argv: list[bytes]) -> object:
        self.tasks.append(trio.lowlevel.current_task())
        name = argv[0].upper()
        if name == b"PING":
            return PONG
        if name == b"ECHO":
            return argv[1]
        if name == b"SLOW":

            async def later() -> object:
                await trio.sleep(0.01)
                return b"slow"

            return Deferred(later)
        if name == b"OWE":
            owed = Owed()
            self.owed.append(owed)
            return owed.deferred()
        if name == b"QUIT":
            self.should_close = True
            return OK
        if name == b"KILLME":
            self.conn.kill("asked to")
            return OK
        if name == b"BIG":
            return list(range(int(argv[1])))
        return argv


class Fixture:
    def __init__(self, options: ServerOptions | None = None) -> None:
        self.owed: list[Owed] = []
        self.tasks: list[object] = []
        self.closed: list[int] = []

        def factory(conn: Connection) -> Handler:
            conn.on_close.append(lambda: self.closed.append(conn.client_id))
            return Handler(conn, self.owed, self.tasks)

        self.server = RespServer(factory, options or ServerOptions(reactor=True))

    @property
    def reactor(self) -> _Reactor:
        assert self.server._reactor is not None
        return self.server._reactor

    @contextlib.asynccontextmanager
    async def serving(self, seconds: float = 10) -> AsyncIterator[trio.Nursery]:
        """The server on a free port, the whole test bounded in time."""
        with trio.fail_after(seconds):
            async with trio.open_nursery() as nursery:
                await nursery.start(self.server.serve, "127.0.0.1", 0)
                yield nursery

    async def connect(self) -> trio.SocketStream:
        return await trio.open_tcp_stream("127.0.0.1", self.server.ports[0])

    async def parked_client(self) -> trio.SocketStream:
        """A client that was served once and is parked in the reactor again."""
        c = await self.connect()
        await c.send_all(cmd(b"PING"))
        assert await read_exactly(c, 7) == b"+PONG\r\n"
        await self.settled_down()
        return c

    async def settled_down(self) -> None:
        """Until every connection task is parked again (or gone)."""
        for _ in range(200):
            if all(c._waiting for c in self.server.connections.values()) and (
                len(self.reactor.parked) == len(self.server.connections)
            ):
                return
            await trio.sleep(0.005)
        raise AssertionError("connections did not park again")


async def read_exactly(stream: trio.abc.Stream, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = await stream.receive_some()
        assert chunk, f"EOF after {data!r}"
        data += chunk
    return data


async def read_until_eof(stream: trio.abc.Stream) -> bytes:
    data = b""
    while chunk := await stream.receive_some():
        data += chunk
    return data


async def test_plain_requests_are_served_by_the_reactor_without_waking_the_connection() -> None:
    f = Fixture()
    async with f.serving():
        clients = [await f.connect() for _ in range(3)]
        for i in range(20):
            for c in clients:
                await c.send_all(cmd(b"ECHO", b"%d" % i))
            for c in clients:
                assert await read_exactly(c, 4 + len(b"%d" % i) + 2) == (
                    b"$%d\r\n%d\r\n" % (len(b"%d" % i), i))
        reactor_task = f.reactor.scope  # (the reactor exists and served them all)
        assert reactor_task is not None
        assert f.reactor.served >= 60 and f.reactor.handed_over == 0
        # every command ran in one task: the reactor's, not the connections'
        assert len(set(map(id, f.tasks))) == 1
        f.server.shutdown()


async def test_fast_then_awaiting_then_fast_again_keeps_order_and_parks_again() -> None:
    f = Fixture()
    async with f.serving():
        c = await f.parked_client()
        # one read: fast replies, then a lazy Deferred (hand-over), then more behind it
        await c.send_all(cmd(b"PING") + cmd(b"SLOW") + cmd(b"ECHO", b"a") + cmd(b"SLOW"))
        expected = b"+PONG\r\n$4\r\nslow\r\n$1\r\na\r\n$4\r\nslow\r\n"
        assert await read_exactly(c, len(expected)) == expected
        assert f.reactor.handed_over == 1
        await f.settled_down()  # the task finished the batch and parked again
        before = f.reactor.served
        await c.send_all(cmd(b"ECHO", b"b"))
        assert await read_exactly(c, 7) == b"$1\r\nb\r\n"
        assert f.reactor.served == before + 1  # back on the fast path
        # each command ran exactly once: PING, PING, SLOW in the reactor; after the
        # hand-over ECHO and SLOW in the connection's task; the last ECHO in the reactor
        assert len(f.tasks) == 6
        reactor_task, conn_task = f.tasks[0], f.tasks[3]
        assert reactor_task is not conn_task
        assert f.tasks == [reactor_task] * 3 + [conn_task] * 2 + [reactor_task]
        f.server.shutdown()


async def test_a_detached_reply_is_sent_while_the_connection_stays_parked() -> None:
    f = Fixture()
    async with f.serving():
        c = await f.connect()
        for i in range(5):
            await c.send_all(cmd(b"OWE"))
            while len(f.owed) <= i:
                await trio.sleep(0.001)
            f.owed[i].settle(b"v%d" % i)
            assert await read_exactly(c, 8) == b"$2\r\nv%d\r\n" % i
        assert f.reactor.handed_over == 0
        # a command behind an owed reply: the next batch takes it back and detaches it
        # again with the new reply behind it; the order holds
        await c.send_all(cmd(b"OWE"))
        while len(f.owed) < 6:
            await trio.sleep(0.001)
        await c.send_all(cmd(b"ECHO", b"after"))
        while len(f.tasks) < 7:
            await trio.sleep(0.001)
        assert f.reactor.handed_over == 0
        f.owed[5].settle(b"first")
        expected = b"$5\r\nfirst\r\n$5\r\nafter\r\n"
        assert await read_exactly(c, len(expected)) == expected
        assert not any(o.abandoned for o in f.owed)
        f.server.shutdown()


async def test_a_pipeline_of_detached_replies_is_sent_once_when_the_last_settles() -> None:
    f = Fixture()
    async with f.serving():
        c = await f.connect()
        await c.send_all(cmd(b"OWE") + cmd(b"OWE") + cmd(b"ECHO", b"x") + cmd(b"OWE"))
        while len(f.owed) < 3:
            await trio.sleep(0.001)
        writes = f.server.stats_writes
        f.owed[2].settle(b"c")  # out of order: nothing is sent before the first
        f.owed[0].settle(b"a")
        with trio.move_on_after(0.05):
            assert not await c.receive_some()
        assert f.server.stats_writes == writes
        f.owed[1].settle(b"b")
        expected = b"$1\r\na\r\n$1\r\nb\r\n$1\r\nx\r\n$1\r\nc\r\n"
        assert await read_exactly(c, len(expected)) == expected
        assert f.server.stats_writes == writes + 1  # one send for the four replies
        assert f.reactor.handed_over == 0  # and the connection never woke
        # a connection that goes away owing several: every one is abandoned
        await c.send_all(cmd(b"OWE") + cmd(b"OWE"))
        while len(f.owed) < 5:
            await trio.sleep(0.001)
        await c.aclose()
        while f.server.connections:
            await trio.sleep(0.005)
        assert f.owed[3].abandoned and f.owed[4].abandoned
        assert not any(o.abandoned for o in f.owed[:3])
        f.server.shutdown()


async def test_a_detached_big_array_is_encoded_in_slices_by_a_task_then_the_rest_follows(
) -> None:
    """A settled reply longer than BIG_REPLY is not encoded by whoever settled it (the
    driver): a task does it in slices; a command arriving meanwhile waits its turn."""
    f = Fixture()
    n = BIG_REPLY + 5
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.sleep(0)

    async with f.serving(20) as nursery:
        c = await f.connect()
        await c.send_all(cmd(b"OWE") + cmd(b"OWE"))
        while len(f.owed) < 2:
            await trio.sleep(0.001)
        nursery.start_soon(ticker)
        f.owed[0].settle(b"small")
        batch = next(iter(f.reactor.parked.values())).batch
        before = ticks
        f.owed[1].settle(list(range(n)))  # (synchronously: the encode must not be here)
        assert ticks == before and batch.late is not None
        await c.send_all(cmd(b"ECHO", b"next"))
        expected = (b"$5\r\nsmall\r\n*%d\r\n" % n
                    + b"".join(b":%d\r\n" % i for i in range(n)) + b"$4\r\nnext\r\n")
        assert await read_exactly(c, len(expected)) == expected
        assert batch.late is None and ticks > before + 1
        nursery.cancel_scope.cancel()


async def test_a_client_that_goes_away_while_parked_is_cleaned_up() -> None:
    f = Fixture()
    async with f.serving():
        c = await f.parked_client()
        assert len(f.reactor.parked) == 1
        await c.aclose()
        while f.server.connections:
            await trio.sleep(0.005)
        assert f.reactor.parked == {} and f.closed == [1]
        # and one that goes away with a detached reply still owed: it is abandoned
        c = await f.connect()
        await c.send_all(cmd(b"OWE"))
        while not f.owed:
            await trio.sleep(0.001)
        await c.aclose()
        while f.server.connections:
            await trio.sleep(0.005)
        assert f.owed[0].abandoned and f.reactor.parked == {}
        f.owed[0].settle(b"late")  # nothing left to call back into
        f.server.shutdown()


async def test_kill_while_parked_closes_the_connection() -> None:
    f = Fixture()
    async with f.serving():
        a, b = await f.connect(), await f.connect()
        for c in (a, b):
            await c.send_all(cmd(b"PING"))
            await read_exactly(c, 7)
        await f.settled_down()
        f.server.connections[1].kill("CLIENT KILL")
        assert await read_until_eof(a) == b""
        assert 1 not in f.server.connections
        assert [e.conn for e in f.reactor.parked.values()] == [f.server.connections[2]]
        await b.send_all(cmd(b"PING"))  # the other one is still served by the reactor
        assert await read_exactly(b, 7) == b"+PONG\r\n"
        f.server.shutdown()


async def test_a_connection_killed_inside_its_own_reactor_batch_runs_nothing_awaited() -> None:
    """KILLME then SLOW in one read: the kill lands while the reactor runs the batch; the
    lazy reply must not be handed to a task that is gone (nor awaited in the reactor)."""
    f = Fixture()
    async with f.serving():
        c = await f.parked_client()
        await c.send_all(cmd(b"OWE") + cmd(b"KILLME") + cmd(b"SLOW"))
        assert await read_until_eof(c) == b""
        while f.server.connections:
            await trio.sleep(0.005)
        assert f.owed[0].abandoned and f.reactor.parked == {} and f.closed == [1]
        other = await f.connect()
        await other.send_all(cmd(b"PING"))
        assert await read_exactly(other, 7) == b"+PONG\r\n"
        f.server.shutdown()


async def test_shutdown_while_parked_still_drains_bytes_in_flight() -> None:
    f = Fixture(ServerOptions(reactor=True, drain_idle=0.3))
    async with f.serving():
        idle, busy = await f.connect(), await f.connect()
        for c in (idle, busy):
            await c.send_all(cmd(b"PING"))
            await read_exactly(c, 7)
        await f.settled_down()
        f.server.shutdown()
        assert f.reactor.stopped and f.reactor.parked == {}
        await busy.send_all(cmd(b"ECHO", b"late"))  # within drain_idle: still served
        assert await read_exactly(busy, 10) == b"$4\r\nlate\r\n"
        assert await read_until_eof(idle) == b""
        assert await read_until_eof(busy) == b""
    assert f.server.connections == {} and sorted(f.closed) == [1, 2]


async def test_a_batch_that_closes_and_a_full_output_buffer_hand_over() -> None:
    f = Fixture(ServerOptions(reactor=True, max_output_buffer=50_000))
    async with f.serving(20):
        c = await f.connect()
        n = 40
        # big replies the client does not read yet: the reactor's send overflows the
        # high-water mark and the connection's task must wait for the drain
        await c.send_all(cmd(b"BIG", b"3000") * n)
        await trio.sleep(0.2)
        assert f.reactor.handed_over >= 1
        one = b"*3000\r\n" + b"".join(b":%d\r\n" % i for i in range(3000))
        assert await read_exactly(c, len(one) * n) == one * n
        await f.settled_down()
        await c.send_all(cmd(b"PING") + cmd(b"QUIT") + cmd(b"PING"))
        assert await read_until_eof(c) == b"+PONG\r\n+OK\r\n"
        while f.server.connections:
            await trio.sleep(0.005)
        assert f.reactor.parked == {}
        f.server.shutdown()


@pytest.mark.parametrize("options", [ServerOptions(reactor=False),
                                     ServerOptions(reactor=True, idle_timeout=5.0)])
async def test_without_the_reactor_connections_wait_on_their_own(options: ServerOptions) -> None:
    """The old path (flag off), and idle timeouts (which need each task's own deadline)."""
    f = Fixture(options)
    async with f.serving():
        c = await f.connect()
        await c.send_all(cmd(b"PING") + cmd(b"SLOW"))
        assert await read_exactly(c, 17) == b"+PONG\r\n$4\r\nslow\r\n"
        assert f.server._reactor is None
        f.server.shutdown()
