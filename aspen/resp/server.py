"""The client-facing RESP server: one trio task per connection.

The server knows sockets, the codec and connection bookkeeping; it knows nothing of commands.
Each connection gets a handler from a factory the node provides:

    handler.protocol       2 or 3: how replies are encoded (read after every command)
    handler.should_close   True once the client asked to go (QUIT): write, then close
    handler.handle(argv)   the reply value, or a `Deferred` whose `wait()` gives it later
    handler.authenticated  optional: while False the parser applies Redis's pre-AUTH limits

Per read, all complete commands are executed in order and all their replies go out in ONE
send: a pipeline of N commands costs one write per read, not N. A `Deferred` reply (a write
waiting for Raft commit) does not stop the loop: the commands behind it are handed to the
handler too, and the deferred replies are awaited afterwards, in request order. A handler that
must not run a command before an earlier one completes returns a lazy `Deferred` for it (one
that does its work inside `wait()`); the server then awaits everything before it first.

Unsolicited output (pub/sub messages): `Connection.push(data)` queues encoded bytes without
ever blocking the caller. While the connection is executing a batch, a push takes its place
among the batch's replies in the order things happened (a RESP3 client that PUBLISHes to a
channel it is subscribed to sees the message before PUBLISH's count, as with Redis);
otherwise it is queued behind any unsent replies and a writer task sends whatever has
accumulated at its next pass (one send() for many messages on a busy channel). A client
whose unsent output reaches `pubsub_output_limit`, or stays at `pubsub_soft_limit` or more
for longer than `pubsub_soft_seconds`, is disconnected (Redis's `client-output-buffer-limit
pubsub 32mb 8mb 60`): a slow subscriber never stalls a publisher. The same holds for the
replies of a client with no subscription under the `normal_*` limits (Redis's class "normal",
0 0 0 by default: no limit), checked whenever replies are queued: a client that pipelines
commands and never reads its replies is disconnected once they pass the limit. Whatever the
limits, reading a client pauses while `max_output_buffer` bytes of its replies are unsent.
A connection is of class pubsub while `Connection.subscribed()` says so (as Redis's
CLIENT_PUBSUB flag); such a connection (and one parked in a blocking command, which is not
reading) is also exempt from the idle `timeout`, as in Redis.
A reply value of type `Replies` is several replies written back to back. Callbacks in
`Connection.on_close` run when the connection ends (e.g. to drop its subscriptions).

Idle plain-TCP clients park in one reactor task (`_Reactor`): one trio wait for every
ready client, and whole batches served there without waking the connection's task; whatever
must await is handed back to that task. See `_Reactor` and docs/architecture.md.

Shutdown (`shutdown()`): stop accepting, let every connection finish the commands it has
read and write their replies, keep serving bytes that are already on their way (a pipeline
in flight) until the connection goes quiet for `drain_idle` seconds, then close; whatever
is still open after `shutdown_grace` seconds is cancelled.

TLS listeners (`serve_listeners(..., tls=...)`) wrap each accepted socket in a `trio.SSLStream`
and serve it through `serve_stream`; the handshake has `tls_handshake_timeout` seconds, so a
client that connects and says nothing costs one task for that long, never a worker.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import select
import socket
import ssl
from collections.abc import Awaitable, Callable, Generator
from time import perf_counter
from typing import Any, Protocol

import outcome
import trio

from aspen.resp.deferred import Deferred
from aspen.resp.handover import AGAIN as _AGAIN
from aspen.resp.handover import HANDOVER as _HANDOVER
from aspen.resp.handover import Adopt as _Adopt
from aspen.resp.handover import adopt as _adopt
from aspen.resp.options import ServerOptions
from aspen.resp.protocol import (
    ProtocolError,
    RequestParser,
    encode_into,
)
from aspen.resp.values import OK, Error, Replies

log = logging.getLogger("aspen.resp")

__all__ = ["Connection", "ConnectionHandler", "Deferred", "RespServer", "ServerOptions"]

LATENCY_RING = 1024  # (a power of two)
_ACCEPT_RETRY_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
_MAX_CLIENTS_REPLY = b"-ERR max number of clients reached\r\n"


class ConnectionHandler(Protocol):
    """What the server drives for one connection (the node adapts a kv Session to this)."""

    @property
    def protocol(self) -> int: ...

    @property
    def should_close(self) -> bool: ...

    def handle(self, argv: list[bytes]) -> object: ...


class Connection:
    """One client connection's bookkeeping (CLIENT LIST reads it through the node).

    A plain class (not attrs): the compiled build makes it native, and the server reads and
    writes its fields on every request."""

    __slots__ = ("_batch", "_closed", "_fast", "_output", "_scope", "_waiting", "addr",
                 "client_id", "created", "handler", "laddr", "last_active", "on_close", "sock",
                 "subscribed")

    def __init__(self, client_id: int, addr: str, laddr: str, created: float,
                 last_active: float, handler: ConnectionHandler | None = None,
                 on_close: list[Callable[[], None]] | None = None) -> None:
        self.client_id = client_id
        self.addr = addr
        self.laddr = laddr
        self.created = created  # trio.current_time() at accept
        self.last_active = last_active
        self.handler = handler
        self.on_close: list[Callable[[], None]] = [] if on_close is None else on_close
        self._scope: trio.CancelScope | None = None  # cancels the connection; see _drive
        self._waiting = False  # blocked in recv: the only moment a deadline may be set
        self._output: _Output | None = None
        self._batch: _Batch | None = None  # set while a batch runs: pushes go among replies
        self._closed = False
        self._fast = False  # a batch runs inside the reactor: anything that awaits hands over
        # True while the client has subscriptions (its output limits are the pub/sub ones).
        self.subscribed: Callable[[], bool] | None = None
        # The raw socket (TCP clients only). While a lazy Deferred is awaited nothing reads
        # it, so its handler may watch it for a hangup (a client parked in BLPOP that goes
        # away).
        self.sock: socket.socket | trio.socket.SocketType | None = None

    def __repr__(self) -> str:
        return f"Connection(client_id={self.client_id!r}, addr={self.addr!r})"

    def is_pubsub(self) -> bool:
        return self.subscribed is not None and self.subscribed()

    def push(self, data: bytes) -> None:
        """Queue unsolicited output (e.g. a pub/sub message); never blocks; see the module
        docstring. Dropped once the connection is closing."""
        if self._closed:
            return
        batch = self._batch
        if batch is not None:
            batch.push(data)
        elif self._output is not None:
            self._output.push(data)

    def kill(self, reason: str) -> None:
        """Close the connection now, whatever it is doing (its output overflowed)."""
        if self._closed:
            return
        self._closed = True
        log.warning("closing client %d (%s): %s", self.client_id, self.addr, reason)
        if self._output is not None:
            self._output.abort()
        if self._scope is not None:
            self._scope.cancel()


HandlerFactory = Callable[[Connection], ConnectionHandler]


def _addr(sockname: object) -> str:
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        host = sockname[0]
        return f"[{host}]:{sockname[1]}" if ":" in str(host) else f"{host}:{sockname[1]}"
    return str(sockname)


class RespServer:
    """Accepts TCP clients and serves each with a handler; see the module docstring."""

    def __init__(self, factory: HandlerFactory, options: ServerOptions | None = None) -> None:
        self.factory = factory
        self.options = options or ServerOptions()
        self.connections: dict[int, Connection] = {}
        self.listeners: list[trio.SocketListener] = []
        self.tls_listeners: list[trio.SocketListener] = []
        self.stats_connections_received = 0
        self.stats_commands_processed = 0
        self.stats_rejected_connections = 0
        self.stats_tls_handshake_failures = 0
        self.stats_reads = 0  # reads that returned data (Redis: total_reads_processed)
        self.stats_writes = 0  # reply writes, one per read at most (total_writes_processed)
        # One latency sample per batch (read -> its replies handed to the socket), in a ring
        # the console reads: latency_count is the number of samples ever taken.
        self.latency_ring = [0.0] * LATENCY_RING
        self.latency_count = 0
        self._next_id = 0
        self._closing = False
        self._hard_deadline = math.inf
        self._shutdown = trio.Event()
        self._conns: trio.Nursery | None = None  # where the reactor task runs
        self._reactor: _Reactor | None = None

    def reset_stats(self) -> None:
        """CONFIG RESETSTAT: the counters INFO stats shows start again from zero."""
        self.stats_connections_received = 0
        self.stats_commands_processed = 0
        self.stats_rejected_connections = 0
        self.stats_tls_handshake_failures = 0
        self.stats_reads = 0
        self.stats_writes = 0

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def ports(self) -> list[int]:
        return [listener.socket.getsockname()[1] for listener in self.listeners]

    @property
    def closing(self) -> bool:
        return self._closing

    def shutdown(self) -> None:
        """Begin a graceful shutdown; `serve()` returns when it is complete."""
        if self._closing:
            return
        self._closing = True
        self._shutdown.set()
        if self._reactor is not None:
            self._reactor.stop()  # its connections drain on their own, as before
        now = trio.current_time()
        self._hard_deadline = now + self.options.shutdown_grace
        for conn in self.connections.values():
            scope = conn._scope
            if conn._waiting and scope is not None:
                scope.deadline = min(scope.deadline, now + self.options.drain_idle)

    async def serve(
        self,
        host: str,
        port: int,
        *,
        task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen on host:port (port 0: any free port) until `shutdown()` completes."""
        listeners = await trio.open_tcp_listeners(port, host=host)
        await self.serve_listeners(listeners, task_status=task_status)

    async def serve_listeners(
        self,
        listeners: list[trio.SocketListener],
        *,
        tls: tuple[list[trio.SocketListener], ssl.SSLContext] | None = None,
        task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve plain clients on `listeners` and, with `tls`, TLS clients on its listeners."""
        self.listeners = listeners
        tls_listeners, context = tls if tls is not None else ([], None)
        self.tls_listeners = tls_listeners
        async with trio.open_nursery() as conns:
            self._conns = conns
            try:
                async with trio.open_nursery() as accepting:
                    for listener in listeners:
                        accepting.start_soon(self._accept_loop, listener, conns, None)
                    for listener in tls_listeners:
                        accepting.start_soon(self._accept_loop, listener, conns, context)
                    task_status.started(listeners)
                    await self._shutdown.wait()
                    accepting.cancel_scope.cancel()
            finally:
                for listener in [*listeners, *tls_listeners]:
                    listener.socket.close()  # synchronous: works even while cancelled
                # Connections drain on their own; this is the hard cap.
                self.shutdown()
                conns.cancel_scope.deadline = self._hard_deadline

    async def _accept_loop(
        self, listener: trio.SocketListener, conns: trio.Nursery, tls: ssl.SSLContext | None
    ) -> None:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno in _ACCEPT_RETRY_ERRNOS:
                    log.warning("accept failed (%s); retrying", exc)
                    await trio.sleep(0.1)
                    continue
                raise
            if tls is None:
                conns.start_soon(self._serve_socket, stream)
            else:
                conns.start_soon(self._serve_tls, stream, tls)

    # -- one connection ------------------------------------------------------------------------

    def _register(self, addr: str, laddr: str) -> Connection | None:
        self.stats_connections_received += 1
        if len(self.connections) >= self.options.max_clients:
            self.stats_rejected_connections += 1
            return None
        self._next_id += 1
        now = trio.current_time()
        conn = Connection(self._next_id, addr, laddr, now, now)
        self.connections[conn.client_id] = conn
        return conn

    async def _serve_socket(self, stream: trio.SocketStream) -> None:
        """The fast path for our own TCP clients: the raw non-blocking socket.

        trio's SocketStream costs a failed recv() before every wait and a checkpoint per
        call; here a read waits for readiness first (the next request cannot be there before
        our reply was sent) and a write that fits the socket buffer is one send() call.
        """
        tsock = stream.socket
        try:
            addr = _addr(tsock.getpeername())
            laddr = _addr(tsock.getsockname())
        except OSError:
            await stream.aclose()
            return
        sock = socket.socket(fileno=tsock.detach())
        sock.setblocking(False)
        recv_size = self.options.recv_size
        wait_readable = trio.lowlevel.wait_readable
        fd = sock.fileno()  # trio would call fileno() on every wait

        async def recv() -> bytes:
            while True:
                await wait_readable(fd)
                try:
                    return sock.recv(recv_size)
                except BlockingIOError:
                    continue
                except OSError:
                    return b""  # reset by the peer: the same as a close

        try:
            conn = self._register(addr, laddr)
            if conn is None:
                with contextlib.suppress(OSError):
                    sock.send(_MAX_CLIENTS_REPLY)
                return
            conn.sock = sock
            async with trio.open_nursery() as nursery:
                output = _SocketOutput(sock, nursery, self.options.max_output_buffer)
                output.limits, output.conn = _PushLimits.of(self.options), conn
                conn._output = output
                await self._drive(conn, recv, output.write, sock)
                await output.flush()  # e.g. the reply to QUIT behind a backlog
        finally:
            trio.lowlevel.notify_closing(sock)
            sock.close()

    async def _serve_tls(self, stream: trio.SocketStream, context: ssl.SSLContext) -> None:
        """A TLS client: handshake (bounded in time), then the generic stream path."""
        try:
            addr = _addr(stream.socket.getpeername())
            laddr = _addr(stream.socket.getsockname())
        except OSError:
            await stream.aclose()
            return
        tls = trio.SSLStream(stream, context, server_side=True)
        try:
            with trio.fail_after(self.options.tls_handshake_timeout):
                await tls.do_handshake()
        except (trio.TooSlowError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self.stats_tls_handshake_failures += 1
            cause = exc.__cause__ if isinstance(exc.__cause__, ssl.SSLError) else exc
            log.info("TLS handshake from %s failed: %s", addr, cause or type(exc).__name__)
            await trio.aclose_forcefully(tls)
            return
        await self.serve_stream(tls, addr, laddr, stream.socket)

    async def serve_stream(
        self, stream: trio.abc.Stream, addr: str = "?", laddr: str = "?",
        sock: trio.socket.SocketType | None = None,
    ) -> None:
        """Serve one client on any trio Stream (tests, wrapped or non-TCP streams); `sock`,
        the socket under the stream if there is one, lets a hangup be noticed early."""
        async with stream:
            conn = self._register(addr, laddr)
            if conn is None:
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await stream.send_all(_MAX_CLIENTS_REPLY)
                return
            conn.sock = sock
            recv_size = self.options.recv_size

            async def recv() -> bytes | bytearray:
                return await stream.receive_some(recv_size)

            async with trio.open_nursery() as nursery:
                output = _StreamOutput(stream, nursery)
                output.limits, output.conn = _PushLimits.of(self.options), conn
                conn._output = output
                await self._drive(conn, recv, output.write)
                await output.flush()
                output.abort()  # everything is sent: stop the writer task

    async def _drive(
        self,
        conn: Connection,
        recv: Callable[[], Awaitable[bytes | bytearray]],
        send: Callable[[bytearray], Awaitable[None]],
        sock: socket.socket | None = None,
    ) -> None:
        """Read, run, reply, until the client leaves, errs, idles out or we shut down.

        Cancellation only ever hits a connection blocked in `recv()` (shutdown and the idle
        timeout set the deadline of `conn._scope` only then), so replies of commands already
        read are never lost. If a deadline fired just as data arrived, the batch runs shielded.

        With `sock` (a plain TCP client) and the reactor on, "blocked in recv()" is parked in
        the reactor instead, which may serve whole batches while this task sleeps; it wakes
        the task with data, b"" (close), `_AGAIN` (look at the loop's conditions again) or an
        `_Adopt` (a batch it started that must await: this task finishes it).
        """
        opts = self.options
        idle_timeout = opts.idle_timeout
        # A detached reply leaves the connection in recv() while a write is in flight: with
        # an idle timeout that wait would count as idle time, so replies are awaited then.
        detach = idle_timeout <= 0
        inf = math.inf
        batch: _Batch | None = None
        try:
            conn.handler = handler = self.factory(conn)
            batch = _Batch(self, handler, send, conn)
            read: Callable[[], Awaitable[object]] = recv
            if (sock is not None and detach and opts.reactor and self._conns is not None
                    and not self._closing):
                reactor = self._reactor
                if reactor is None:
                    self._reactor = reactor = _Reactor(self, self._conns)
                entry = _Parked(conn, batch, sock)

                async def read() -> object:
                    if reactor.stopped:
                        return await recv()
                    return await reactor.park(entry)

            with trio.CancelScope() as scope:
                conn._scope = scope
                while True:
                    if self._closing:
                        scope.deadline = trio.current_time() + opts.drain_idle
                    elif idle_timeout > 0 and not conn.is_pubsub():
                        scope.deadline = trio.current_time() + idle_timeout
                    conn._waiting = True
                    data: Any = await read()
                    conn._waiting = False
                    if type(data) is _Adopt:  # (the reactor's; see the docstring)
                        if await _adopt(data.coro):
                            return
                        continue
                    if data is _AGAIN:
                        continue
                    if not data:
                        return
                    self.stats_reads += 1
                    if scope.deadline != inf:
                        scope.deadline = inf
                    conn.last_active = trio.current_time()
                    if scope.cancel_called or self._closing:
                        with trio.CancelScope(shield=True, deadline=self._hard_deadline):
                            if await batch.run(data, detach=False) or scope.cancel_called:
                                return
                    elif await batch.run(data, detach):
                        return
            # Only a cancelled recv() gets here (shutdown drain, idle timeout, kill): a reply
            # still owed by a detached batch is sent first, as for any command already read.
            if batch.detached is not None and not conn._closed:
                with trio.CancelScope(shield=True, deadline=self._hard_deadline):
                    await batch.run(b"", detach=False)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client went away
        except Exception:  # a bug here must cost one connection, not the node
            log.exception("connection %d failed", conn.client_id)
        finally:
            if batch is not None:
                batch.abandon_detached()
            conn._closed = True
            del self.connections[conn.client_id]
            for callback in conn.on_close:
                try:
                    callback()
                except Exception:
                    log.exception("on_close callback of connection %d failed", conn.client_id)


class _Batch:
    """Runs everything one read completed and sends all the replies in one write."""

    __slots__ = ("auth_aware", "conn", "detached", "done", "handle", "handler", "held",
                 "late", "max_query_buffer", "on_ready", "out", "owing", "parser", "pending",
                 "send", "server", "started")

    def __init__(
        self,
        server: RespServer,
        handler: ConnectionHandler,
        send: Callable[[bytearray], Awaitable[None]],
        conn: Connection,
    ) -> None:
        opts = server.options
        self.server = server
        self.conn = conn
        self.out = bytearray()
        self.pending: list[tuple[list[bytes], object]] = []
        self.held = 0  # bytes of pushes waiting in `pending`
        self.handler = handler
        self.handle = handler.handle
        self.send = send
        self.parser = RequestParser(opts.max_bulk_len, opts.max_argv, opts.max_inline_len)
        self.max_query_buffer = opts.max_query_buffer
        self.auth_aware = hasattr(handler, "authenticated")
        if self.auth_aware:
            self.parser.authenticated = bool(handler.authenticated)  # type: ignore[attr-defined]
        self.detached: Deferred | None = None  # the first reply left to `_on_ready`
        self.owing = 0  # ... and how many of them have not called it yet
        self.late: trio.Event | None = None  # set while `_send_late` encodes them
        self.on_ready = self._on_ready  # (bound once)
        self.started = 0.0  # perf_counter() when the current batch's data arrived
        self.done = False  # the result of a batch the reactor ran (see `run`)

    async def run(self, data: bytes | bytearray, detach: bool = True) -> bool:
        """`_run`; inside the reactor, its result goes to `done` and the coroutine stops at
        `_FINISHED` instead of returning (see `_Finished`)."""
        done = await self._run(data, detach)
        if self.conn._fast:
            self.done = done
            await _FINISHED
        return done

    async def _run(self, data: bytes | bytearray, detach: bool) -> bool:
        """Execute the commands `data` completes and write their replies; True: close now.

        Detached replies: when everything a batch owes comes behind started Deferreds that
        can all be detached (replicated writes or linearizable reads, one at -P 1 or a whole
        pipeline), the batch does not wait for them: it returns at once (the connection goes
        back to reading) and whoever settles each calls `_on_ready`; the last call encodes
        and sends all the replies right there, in one send. That saves the connection task a
        wake-up and a trip through the scheduler per request (and, under the reactor, the
        hand-over). Until then the batch stays the connection's current one (pushes queue
        behind the replies), and the next `run` first takes the owed replies back."""
        if self.late is not None:  # the owed replies are being encoded: they go first
            if self.conn._fast:
                await _HANDOVER
            await self.late.wait()
        handler = self.handler
        handle = self.handle
        parser = self.parser
        error: ProtocolError | None = None
        if self.detached is None:  # (else the owed reply's batch keeps its start time)
            self.started = perf_counter()
        try:
            commands = parser.feed(data)
        except ProtocolError as bad:  # (not `exc`: mypyc types a name once per function)
            commands, error = bad.commands, bad
        if parser.buffered > self.max_query_buffer:
            # Redis's client-query-buffer-limit: close without a reply, and say why in the log.
            log.warning("closing client that reached max query buffer length (%d bytes)",
                        parser.buffered)
            return True
        # `out`: replies so far; `pending`: replies behind a Deferred, in order. Pushes that
        # arrive while the batch runs join whichever is current (see `push`).
        self.out = out = bytearray()
        if self.detached is not None:  # still owed from the last batch: it goes first
            self.detached = None
            pending = self.pending
        else:
            pending = []
            self.pending = pending
            self.held = 0
        conn = self.conn
        conn._batch = self
        detached = False
        try:
            while commands:
                for argv in commands:
                    mark = len(out)
                    try:
                        reply = handle(argv)
                        if pending or isinstance(reply, Deferred):
                            pending.append((argv, reply))
                            if isinstance(reply, Deferred) and not reply.started:
                                # Lazy: nothing after it may run before it has.
                                await self._settle(pending, out)
                        elif reply is OK:  # the commonest replies, without a call
                            out += b"+OK\r\n"
                        elif type(reply) is bytes:
                            out += b"$%d\r\n%s\r\n" % (len(reply), reply)
                        elif type(reply) is Replies:
                            for item in reply.items:
                                encode_into(out, item, handler.protocol)
                        elif type(reply) is list and len(reply) > BIG_REPLY:
                            if conn._fast:
                                await _HANDOVER
                            out += await encode_big(reply, handler.protocol)
                        else:
                            encode_into(out, reply, handler.protocol)
                    except Exception as exc:  # a bug must not take the node down
                        _internal_error(out, mark, argv, exc)
                    if handler.should_close:
                        break
                self.server.stats_commands_processed += len(commands)
                commands = []
                if handler.should_close or error is not None:
                    break
                if self.auth_aware:
                    # Pre-AUTH the parser stops after each command; continue with the rest
                    # under the limits that apply after that command. (What is still
                    # pending then is started Deferreds only, which never change
                    # authentication: lazy ones were awaited in the loop.)
                    if parser.authenticated:
                        parser.authenticated = bool(handler.authenticated)  # type: ignore[attr-defined]
                        break
                    await self._settle(pending, out)
                    parser.authenticated = bool(handler.authenticated)  # type: ignore[attr-defined]
                    try:
                        commands = parser.feed(b"")
                    except ProtocolError as bad:
                        commands, error = bad.commands, bad
            if (
                detach
                and pending
                and not out
                and error is None
                and not handler.should_close
                and not self.held
                and self._detach_all(pending)
            ):
                detached = True
                return False
            await self._settle(pending, out)
        finally:
            if not detached:
                conn._batch = None
                for _, reply in pending:  # only when cancelled or failed mid-way
                    if isinstance(reply, Deferred):
                        reply.abandon()
        if error is not None:
            out += error.reply_line()
        if out:
            server = self.server
            server.stats_writes += 1
            server.latency_ring[server.latency_count & (LATENCY_RING - 1)] = (
                perf_counter() - self.started)
            server.latency_count += 1
            await self.send(out)
        return handler.should_close or error is not None

    def push(self, data: bytes) -> None:
        """Unsolicited output while this batch runs: after everything answered before it."""
        if self.pending:
            self.pending.append(([], _Pushed(data)))
            self.held += len(data)
        else:
            self.out += data
        output = self.conn._output
        if output is not None:
            conn = self.conn
            over = output.limits.exceeded(output.backlog + len(self.out) + self.held,
                                          conn.subscribed is None or conn.is_pubsub())
            if over is not None:
                self.conn.kill(over)

    async def _settle(self, pending: list[tuple[list[bytes], object]], out: bytearray) -> None:
        """Await the pending replies in order, encode them into `out`, empty `pending`."""
        if pending and self.conn._fast:
            await _HANDOVER  # (an await: not inside the reactor)
        protocol = self.handler.protocol
        done = 0
        try:
            for argv, value in pending:
                if isinstance(value, Deferred):
                    try:
                        value = await value.wait_for()  # (not through wait(): one frame less)
                    except Exception as exc:  # a bug must not take the node down
                        _internal_error(out, len(out), argv, exc)
                        done += 1
                        continue
                    protocol = self.handler.protocol
                await _encode_owed(out, argv, value, protocol)
                done += 1
        finally:
            del pending[:done]

    def _detach_all(self, pending: list[tuple[list[bytes], object]]) -> bool:
        """Detach every Deferred in `pending` (the first entry is one), or none: True if
        the batch may return now and leave the replies to `_on_ready`."""
        on_ready = self.on_ready
        owing = 0
        for _, reply in pending:
            if isinstance(reply, Deferred):
                if not reply.detach(on_ready):
                    # (those detached already call `_on_ready` in vain: `detached` is None,
                    # and the batch awaits them all before any later one may detach)
                    return False
                owing += 1
        self.owing = owing
        self.detached = pending[0][1]  # type: ignore[assignment]
        return True

    def _on_ready(self) -> None:
        """A detached reply is settled (called by whoever settled it, synchronously): once
        the last one is, encode them and what queued behind them (pushes), and send that."""
        if self.detached is None:
            return  # the next batch took them back already
        self.owing -= 1
        if self.owing:
            return
        conn = self.conn
        output = conn._output
        values: list[tuple[list[bytes], object]] = []
        big = False
        for argv, value in self.pending:
            if isinstance(value, Deferred):
                try:
                    value = value.result()
                except Exception as exc:  # a bug must not take the node down
                    log.exception("command %r failed", argv[:1])
                    value = Error(f"ERR internal error: {exc!r}")
            values.append((argv, value))
            if type(value) is list and len(value) > BIG_REPLY:
                big = True
        if big and output is not None:
            # Encoding it here would hold the event loop (heartbeats) as long as `encode_big`
            # exists to avoid: a task of the connection does it in slices; the batch stays
            # current (pushes queue behind) and the next `run` waits for it (`late`).
            self.pending = values
            self.late = trio.Event()
            output.nursery.start_soon(self._send_late)
            return
        self.detached = None
        conn._batch = None
        out = bytearray()
        protocol = self.handler.protocol
        for argv, value in values:
            _encode_or_error(out, argv, value, protocol)
        self.pending = []
        self.held = 0
        if out and output is not None:
            self._sent(out, output)

    def _sent(self, out: bytearray, output: _Output) -> None:
        server = self.server
        server.stats_writes += 1
        server.latency_ring[server.latency_count & (LATENCY_RING - 1)] = (
            perf_counter() - self.started)
        server.latency_count += 1
        output.write_nowait(out)

    async def _send_late(self) -> None:
        """`_on_ready` for replies with a big array: encoded in slices (see `encode_big`)."""
        conn = self.conn
        protocol = self.handler.protocol
        out = bytearray()
        try:
            i = 0
            while i < len(self.pending):  # (pushes may join while this yields)
                argv, value = self.pending[i]
                i += 1
                await _encode_owed(out, argv, value, protocol)
        finally:
            self.detached = None
            conn._batch = None
            self.pending = []
            self.held = 0
            late, self.late = self.late, None
            if late is not None:
                late.set()
        output = conn._output
        if out and output is not None:
            self._sent(out, output)

    def abandon_detached(self) -> None:
        """The connection ends with a reply still owed: let its handler go of it."""
        if self.detached is not None:
            self.detached = None
            for _, reply in self.pending:
                if isinstance(reply, Deferred):
                    reply.abandon()
            self.pending = []


class _Parked:
    """A connection as the reactor knows it."""

    __slots__ = ("batch", "conn", "fd", "sock", "task")

    def __init__(self, conn: Connection, batch: _Batch, sock: socket.socket) -> None:
        self.conn = conn
        self.batch = batch
        self.sock = sock
        self.fd = sock.fileno()
        self.task: trio.lowlevel.Task | None = None


class _Reactor:
    """One task that serves every idle plain-TCP connection (issue 20).

    A connection task with nothing to do parks here (`park`): its socket goes into a private
    level-triggered epoll, and the task sleeps in `wait_task_rescheduled`. The reactor task
    waits on that epoll's fd (ONE trio wait for any number of ready clients), then, per ready
    socket, does what the connection task would: recv, run the batch, reply. As long as a
    batch completes without awaiting (plain replies, a detached write) the connection stays
    parked: no task switch, no epoll_ctl, no coroutine resume per request. Whatever must
    await (a lazy Deferred, a write still in flight, a full output buffer, a big reply) is
    handed over: the batch's coroutine yields `_HANDOVER`, the socket leaves the epoll and
    the connection's task is woken to finish that batch itself (`_Adopt`); it parks again
    when it next reads. EOF, a batch that closes, an error, or shutdown also wake the task,
    which then runs exactly the code it runs without a reactor. Cancellation of a parked
    task (kill, shutdown's deadlines, the nursery's) unparks it through the abort callback.
    """

    def __init__(self, server: RespServer, nursery: trio.Nursery) -> None:
        self.server = server
        self.epoll = select.epoll()
        self.parked: dict[int, _Parked] = {}
        self.stopped = False
        self.serving: _Parked | None = None
        self.served = 0  # batches run here (tests; the console may show it)
        self.handed_over = 0  # ... of which a connection's task finished
        self.scope = trio.CancelScope()
        nursery.start_soon(self.run)

    async def park(self, entry: _Parked) -> object:
        """Sleep until the reactor hands this connection something to do (see `_drive`)."""
        entry.task = trio.lowlevel.current_task()
        self.epoll.register(entry.fd, select.EPOLLIN)
        self.parked[entry.fd] = entry

        def abort(_: Any) -> trio.lowlevel.Abort:
            self._unpark(entry)
            return trio.lowlevel.Abort.SUCCEEDED

        return await trio.lowlevel.wait_task_rescheduled(abort)

    def _unpark(self, entry: _Parked) -> None:
        if self.parked.get(entry.fd) is entry:
            del self.parked[entry.fd]
            with contextlib.suppress(OSError, ValueError):
                self.epoll.unregister(entry.fd)

    def _wake(self, entry: _Parked, value: object) -> None:
        self._unpark(entry)
        assert entry.task is not None
        trio.lowlevel.reschedule(entry.task, outcome.Value(value))

    def stop(self) -> None:
        """Shutdown: every parked connection goes back to its own task (which drains as
        before); the one being served does when its batch is done."""
        if self.stopped:
            return
        self.stopped = True
        for entry in list(self.parked.values()):
            if entry is not self.serving:
                self._wake(entry, _AGAIN)
        self.scope.cancel()

    async def run(self) -> None:
        epoll = self.epoll
        epfd = epoll.fileno()
        parked = self.parked
        wait_readable = trio.lowlevel.wait_readable
        try:
            with self.scope:
                while not self.stopped:
                    await wait_readable(epfd)
                    for fd, _ in epoll.poll(0):
                        entry = parked.get(fd)
                        if entry is not None:
                            self._serve(entry)
        finally:
            self.stopped = True
            for entry in list(parked.values()):  # (cancelled: the tasks are too, or will be)
                self._wake(entry, _AGAIN)
            epoll.close()

    def _serve(self, entry: _Parked) -> None:
        """One read of a parked connection, as `_drive` would do it."""
        server = self.server
        try:
            data = entry.sock.recv(server.options.recv_size)
        except BlockingIOError:
            return
        except OSError:
            data = b""  # reset by the peer: the same as a close
        if not data or server._closing:
            self._wake(entry, data)
            return
        conn = entry.conn
        server.stats_reads += 1
        conn.last_active = trio.current_time()
        conn._waiting = False
        conn._fast = True
        self.serving = entry
        self.served += 1
        batch = entry.batch
        coro = batch.run(data, True)
        try:
            signal = coro.send(None)
        except StopIteration as stop:  # (`run` yields `_FINISHED` instead; kept for safety)
            batch.done, signal = bool(stop.value), _FINISHED
        except Exception as exc:
            conn._fast = False
            self.serving = None
            if self.parked.get(entry.fd) is entry:
                self._unpark(entry)
                assert entry.task is not None
                trio.lowlevel.reschedule(entry.task, outcome.Error(exc))
            elif not isinstance(exc, trio.BrokenResourceError | trio.ClosedResourceError):
                log.exception("connection %d failed", conn.client_id)
            return
        conn._fast = False
        self.serving = None
        if signal is _FINISHED:  # (the coroutine is dropped where it stopped: see _Finished)
            if self.parked.get(entry.fd) is entry:
                if batch.done:
                    self._wake(entry, b"")  # close (QUIT, a protocol error, ...)
                elif server._closing or self.stopped:
                    self._wake(entry, _AGAIN)
                else:
                    conn._waiting = True
            return
        if signal is not _HANDOVER:  # a bug: something awaited without handing over
            log.error("connection %d: a batch awaited inside the reactor", conn.client_id)
            coro.close()
            conn.kill("internal error")
        elif self.parked.get(entry.fd) is entry:
            self.handed_over += 1
            self._wake(entry, _Adopt(coro))
        else:
            coro.close()  # killed meanwhile: as a cancelled await would end it


BIG_REPLY = 20_000
"""An array reply longer than this is encoded in slices, yielding to the event loop between
them: encoding 1M elements takes about a second, and the node's Raft heartbeats (the driver is
a task of the same loop) must not wait that long, or the followers elect another leader."""


async def encode_big(value: list[object], protocol: int) -> bytearray:
    """The encoding of a big array reply, built apart from the batch's buffer (pushes that
    arrive while it yields go to that buffer, before this reply, never inside it)."""
    buf = bytearray(b"*%d\r\n" % len(value))
    for lo in range(0, len(value), BIG_REPLY):
        for item in value[lo : lo + BIG_REPLY]:
            encode_into(buf, item, protocol)
        await trio.lowlevel.checkpoint()
    return buf


def _encode_reply(out: bytearray, value: object, protocol: int) -> None:
    if type(value) is _Pushed:
        out += value.data
    elif type(value) is Replies:
        for item in value.items:
            encode_into(out, item, protocol)
    else:
        encode_into(out, value, protocol)


def _internal_error(out: bytearray, mark: int, argv: list[bytes], exc: Exception) -> None:
    """A reply that failed (a bug): logged, and answered as an error from `mark` on, so it
    costs that reply and never the node or the connection."""
    log.exception("command %r failed", argv[:1], exc_info=exc)
    del out[mark:]
    encode_into(out, Error(f"ERR internal error: {exc!r}"), 2)


def _encode_or_error(out: bytearray, argv: list[bytes], value: object, protocol: int) -> None:
    mark = len(out)
    try:
        _encode_reply(out, value, protocol)
    except Exception as exc:  # a bug must not take the node down
        _internal_error(out, mark, argv, exc)


async def _encode_owed(out: bytearray, argv: list[bytes], value: object, protocol: int) -> None:
    """`_encode_or_error`, in slices that yield to the event loop for a big array."""
    if type(value) is list and len(value) > BIG_REPLY:
        mark = len(out)
        try:
            out += await encode_big(value, protocol)
        except Exception as exc:  # a bug must not take the node down
            _internal_error(out, mark, argv, exc)
    else:
        _encode_or_error(out, argv, value, protocol)


class _Pushed:
    """A push queued among a batch's pending replies (already encoded)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class _Finished:
    """What a batch the reactor runs yields at its very end instead of returning (`_Batch.run`).

    The reactor steps the batch's coroutine by hand (`coro.send`), and a coroutine that
    returns raises StopIteration there: in compiled code catching it costs a traceback
    entry (a code object and a frame), ~0.5 us per read. The batch leaves its result in
    `_Batch.done` and stops at this await; the reactor drops the coroutine there (nothing
    is left to run in it: no `finally` is open at that point)."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        yield self


_FINISHED = _Finished()


class _PushLimits:
    """The output buffer limits of one connection, by class (Redis's checkClientOutputBuffer
    Limits: a hard limit, and a soft one for so many seconds; 0: that limit is off)."""

    __slots__ = ("floor", "normal", "over_since", "pubsub")

    def __init__(self, pubsub: tuple[int, int, float],
                 normal: tuple[int, int, float] = (0, 0, 0.0)) -> None:
        self.pubsub = pubsub
        self.normal = normal
        self.over_since: float | None = None
        # Below the smallest limit of either class nothing is over, whatever the class: the
        # check of every reply needs no class then (`_over_limit`).
        limits = [float(x) for x in (pubsub[0], pubsub[1], normal[0], normal[1]) if x > 0]
        self.floor: float = min(limits) if limits else math.inf

    @classmethod
    def of(cls, options: ServerOptions) -> _PushLimits:
        return cls((options.pubsub_output_limit, options.pubsub_soft_limit,
                    options.pubsub_soft_seconds),
                   (options.normal_output_limit, options.normal_soft_limit,
                    options.normal_soft_seconds))

    def exceeded(self, size: int, pubsub: bool = True) -> str | None:
        """Why a connection with `size` bytes of unsent output must go, or None."""
        hard, soft, seconds = self.pubsub if pubsub else self.normal
        kind = "pubsub" if pubsub else "normal"
        if hard and size >= hard:
            return f"{kind} output buffer of {size} bytes reached the limit of {hard} bytes"
        if not soft or size < soft:
            self.over_since = None
            return None
        now = trio.current_time()
        if self.over_since is None:
            self.over_since = now
        elif now - self.over_since > seconds:
            return f"{kind} output buffer over {soft} bytes for more than {seconds:g} s"
        return None


class _Output(Protocol):
    limits: _PushLimits
    broken: bool
    conn: Connection | None
    nursery: trio.Nursery

    @property
    def backlog(self) -> int: ...

    def push(self, data: bytes) -> None: ...

    def write_nowait(self, data: bytearray) -> None: ...

    def abort(self) -> None: ...


def _refuse_push(out: _Output, size: int) -> bool:
    """Drop a push of `size` bytes? Yes on a broken connection, and on one whose unsent
    output would pass its limits (that connection is closed here)."""
    if out.broken:
        return True
    return _over_limit(out, out.backlog + size, push=True)


def _over_limit(out: _Output, size: int, push: bool = False) -> bool:
    """Close the connection if `size` bytes of unsent output pass its class's limits (a
    connection whose subscriptions the server is not told of is pub/sub once pushed to)."""
    limits = out.limits
    if size < limits.floor:  # (what `exceeded` would say for either class)
        limits.over_since = None
        return False
    conn = out.conn
    pubsub = conn is None or conn.is_pubsub() or (push and conn.subscribed is None)
    over = limits.exceeded(size, pubsub)
    if over is None:
        return False
    if conn is not None:
        conn.kill(over)
    else:
        out.abort()
    return True


class _SocketOutput:
    """Writes replies to a non-blocking socket without ever stalling the reader.

    A write that the socket takes at once costs one send() and nothing else. What it cannot
    take is queued and sent by a writer task (started only then), while the connection keeps
    reading and executing requests: a client that writes a long pipeline before reading any
    reply (redis-py does) would otherwise deadlock with us, both blocked in send. Reading
    pauses only when `high_water` bytes of replies are waiting.
    """

    __slots__ = ("_drained", "_flushed", "_offset", "_pending", "_writer_scope", "broken",
                 "conn", "high_water", "limits", "nursery", "sock", "writing")

    def __init__(self, sock: socket.socket, nursery: trio.Nursery, high_water: int) -> None:
        self.sock = sock
        self.nursery = nursery
        self.high_water = high_water
        self.limits = _PushLimits.of(ServerOptions())  # the server sets its own
        self.conn: Connection | None = None
        self._writer_scope: trio.CancelScope | None = None
        self._pending = bytearray()
        self._offset = 0  # bytes of _pending already sent
        self.writing = False
        self.broken = False
        self._drained: trio.Event | None = None
        self._flushed: trio.Event | None = None

    @property
    def backlog(self) -> int:
        return len(self._pending) - self._offset

    async def write(self, data: bytearray) -> None:
        if self.broken:
            raise trio.BrokenResourceError("connection lost")
        if _over_limit(self, self.backlog + len(data)):  # (as Redis counts a reply: queued)
            raise trio.BrokenResourceError("output buffer limit reached")
        if self.writing:
            self._pending += data
        else:
            try:
                sent = self.sock.send(data)
            except BlockingIOError:
                sent = 0  # the socket buffer is still full of earlier replies
            except OSError as exc:
                self.broken = True
                raise trio.BrokenResourceError(str(exc)) from exc
            if sent == len(data):
                return
            self._pending += memoryview(data)[sent:]
            self.writing = True
            self.nursery.start_soon(self._writer)
        if self.backlog > self.high_water and self.conn is not None and self.conn._fast:
            await _HANDOVER
        while self.backlog > self.high_water and not self.broken:
            self._drained = trio.Event()
            await self._drained.wait()
        if self.broken:
            raise trio.BrokenResourceError("connection lost")

    def write_nowait(self, data: bytearray) -> None:
        """`write` for a caller that cannot wait (a detached reply): what the socket does
        not take at once goes to the writer task; no pause at `high_water` (one reply; the
        connection's next write pauses if needed)."""
        if self.broken or _over_limit(self, self.backlog + len(data)):
            return
        if self.writing:
            self._pending += data
            return
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.broken = True  # the reader sees the connection end
            return
        if sent < len(data):
            self._pending += memoryview(data)[sent:]
            self.writing = True
            self.nursery.start_soon(self._writer)

    def push(self, data: bytes) -> None:
        """Queue unsolicited output without blocking; over `limit`, close the connection.

        Pushes are not sent at once: the writer task sends everything pushed before it runs
        in one send() (a busy channel costs a syscall per scheduler pass, not per message).
        """
        if _refuse_push(self, len(data)):
            return
        self._pending += data
        if not self.writing:
            self.writing = True
            self.nursery.start_soon(self._writer)

    def abort(self) -> None:
        """Give up on the unsent output (the connection is being dropped)."""
        self.broken = True
        if self._writer_scope is not None:
            self._writer_scope.cancel()

    async def flush(self) -> None:
        """Wait until every queued reply was sent (or the connection broke)."""
        while self.writing:
            self._flushed = trio.Event()
            await self._flushed.wait()

    async def _writer(self) -> None:
        sock = self.sock
        self._writer_scope = scope = trio.CancelScope()
        try:
            with scope:
                while self.backlog:
                    await trio.lowlevel.wait_writable(sock.fileno())
                    try:
                        with memoryview(self._pending) as whole, whole[self._offset :] as rest:
                            self._offset += sock.send(rest)
                    except BlockingIOError:
                        continue
                    except OSError:
                        self.broken = True
                        break
                    if self._offset > len(self._pending) // 2:  # compact, amortised O(n)
                        del self._pending[: self._offset]
                        self._offset = 0
                    if self._drained is not None and self.backlog <= self.high_water:
                        self._drained.set()
        finally:
            self._writer_scope = None
            self._pending = bytearray()
            self._offset = 0
            self.writing = False
            for event in (self._drained, self._flushed):
                if event is not None:
                    event.set()


class _StreamOutput:
    """Replies and pushes to any trio Stream (`serve_stream`), through one writer task."""

    def __init__(self, stream: trio.abc.Stream, nursery: trio.Nursery) -> None:
        self.stream = stream
        self.nursery = nursery
        self.limits = _PushLimits.of(ServerOptions())
        self.conn: Connection | None = None
        self.broken = False
        self._pending = bytearray()
        self._wakeup = trio.Event()
        self._idle = trio.Event()
        self._idle.set()
        self._scope = trio.CancelScope()
        nursery.start_soon(self._writer)

    @property
    def backlog(self) -> int:
        return len(self._pending)

    def _queue(self, data: bytes | bytearray) -> None:
        self._pending += data
        if self._idle.is_set():  # (a waiter on the current event must still be woken)
            self._idle = trio.Event()
        self._wakeup.set()

    def write_nowait(self, data: bytearray) -> None:
        if not self.broken and not _over_limit(self, self.backlog + len(data)):
            self._queue(data)

    async def write(self, data: bytearray) -> None:
        if self.broken:
            raise trio.BrokenResourceError("connection lost")
        if _over_limit(self, self.backlog + len(data)):
            raise trio.BrokenResourceError("output buffer limit reached")
        self._queue(data)
        await self.flush()
        if self.broken:
            raise trio.BrokenResourceError("connection lost")

    def push(self, data: bytes) -> None:
        if _refuse_push(self, len(data)):
            return
        self._queue(data)

    def abort(self) -> None:
        self.broken = True
        self._pending = bytearray()
        self._idle.set()
        self._scope.cancel()

    async def flush(self) -> None:
        await self._idle.wait()

    async def _writer(self) -> None:
        with self._scope:
            try:
                while True:
                    await self._wakeup.wait()
                    self._wakeup = trio.Event()
                    while self._pending:
                        data, self._pending = self._pending, bytearray()
                        await self.stream.send_all(data)
                    self._idle.set()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.broken = True
                self._idle.set()
