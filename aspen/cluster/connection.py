"""The RESP server's per-connection handler for a cluster node.

The kv `Session` looks each command up in the command table and routes it; reads and writes
come back here as ops, go to the `ClusterNode` and return as `Deferred` replies (the server
awaits them in request order).

Pipelined writes share one log entry: a write is submitted to the node when the server hands it
over, not when its reply is awaited, so a pipeline of N SETs costs one commit, not N. Anything
that is not a plain write while writes are in flight becomes a lazy `Deferred` that runs only
after them (the server awaits replies in order): a read, WATCH or stale GET therefore always sees
the connection's earlier writes, and nothing runs ahead of them. Nor does anything run ahead of
an EXEC with a queued SELECT: the database of the next command is known only once it applied.

The session routes the commands of `Route.CONNECTION` here (the spec names the method):

    ASPEN.CONSISTENCY                         -> the connection's read consistency
    ASPEN.CONSISTENCY linearizable|lease|stale -> +OK (this connection only)
    CLIENT UNBLOCK id [TIMEOUT|ERROR]         -> for clients parked on this node
    SCRIPT KILL, FUNCTION KILL, FUNCTION STATS -> the script this node runs (scriptrun.py)

Read-only scripts (EVAL_RO & co., and EVAL/EVALSHA/FCALL of a `no-writes` script, turned into
their *_RO form here) are reads served by the node's `ScriptRunner` in a worker thread; while
one runs, other connections' commands wait, then get BUSY (`_after_script`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

import trio

from aspen.cluster.blocking import SHUTTING_DOWN, Hangup
from aspen.cluster.errors import CLUSTERDOWN
from aspen.cluster.scriptrun import allowed_while_busy
from aspen.cluster.settings import READ_CONSISTENCIES, ReadConsistency
from aspen.cluster.writes import WritePath
from aspen.kv.commands import COMMANDS, Route, lookup
from aspen.kv.numbers import parse_int
from aspen.kv.ops import ReadOp, TxnOp, WriteOp
from aspen.kv.session import Session
from aspen.kv.stream import Stream
from aspen.kv.streams_blocking import resolve_dollar, wants_block
from aspen.resp.server import Deferred
from aspen.resp.values import NULL_ARRAY, OK, Error
from aspen.scripting.local import ScriptCall, read_form, script_call

if TYPE_CHECKING:
    from aspen.cluster.blocking import BlockingService
    from aspen.cluster.keygate import KeyGate
    from aspen.cluster.requests import ReadIndexWaiter, WriteRequest
    from aspen.cluster.scriptrun import ScriptRunner
    from aspen.cluster.settings import ClusterSettings
    from aspen.cluster.state import ReplicatedState
    from aspen.server.pause import PauseGate


class ClientNode(Protocol):
    """What `ClusterConnection` needs from the node: writes, reads, the blocking service."""

    @property
    def settings(self) -> ClusterSettings: ...
    @property
    def blocking(self) -> BlockingService: ...
    @property
    def state(self) -> ReplicatedState: ...
    @property
    def scripts(self) -> ScriptRunner: ...
    @property
    def writes(self) -> WritePath: ...
    def submit_write(self, op: WriteOp | TxnOp) -> WriteRequest: ...
    async def write(self, op: WriteOp | TxnOp) -> object: ...
    def write_reply(self, w: WriteRequest) -> object: ...
    def forget_write(self, w: WriteRequest) -> None: ...
    def execute_local(self, op: ReadOp) -> object: ...
    def start_read(self) -> ReadIndexWaiter | None: ...
    def start_task(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> bool: ...
    @property
    def cut_off(self) -> bool: ...
    async def finish_read(self, op: ReadOp, waiter: ReadIndexWaiter) -> object: ...
    async def read(self, op: ReadOp, consistency: ReadConsistency | None = None) -> object: ...


class ClusterConnection:
    __slots__ = ("consistency", "gate", "gated", "hangup", "held", "node", "pause",
                 "reads_in_flight", "scripts", "session", "writes", "writes_in_flight")

    def __init__(self, node: ClientNode, session: Session) -> None:
        self.node = node
        self.session = session
        # The node's parts every request looks at, held here: the compiled write path is
        # then called directly (the node's `submit_write` & co. are interpreted hops to it).
        self.writes: WritePath = node.writes
        self.scripts: ScriptRunner = node.scripts
        self.gate: KeyGate = node.blocking.gate
        self.consistency: ReadConsistency = node.settings.read_consistency
        self.writes_in_flight = 0
        # Returns when the client disconnects (set by whoever owns the socket): a client
        # parked in BLPOP & co. that goes away is then removed at once, losing nothing.
        self.hangup: Hangup | None = None
        self.reads_in_flight = 0  # started linearizable reads (their read index is asked)
        self.gated = 0  # writes waiting for a watched key (aspen.cluster.keygate)
        # CLIENT PAUSE (aspen.server.pause.PauseGate, set by the node) and the commands this
        # connection holds behind it: once one waits, the ones after it wait too (in order)
        self.pause: PauseGate | None = None
        self.held = 0
        session.layers[Route.CONNECTION] = self

    @property
    def protocol(self) -> int:
        return self.session.protocol

    @property
    def should_close(self) -> bool:
        return self.session.should_close

    @property
    def authenticated(self) -> bool:
        return self.session.authenticated

    def handle(self, argv: list[bytes]) -> object:
        pause = self.pause
        if pause is not None and (self.held or (
                pause.mode is not None and pause.holds(self._may_replicate(argv)))):
            self.held += 1
            return Deferred(lambda: self._after_pause(argv))
        if (
            self.scripts.running is not None
            and self.session.authenticated
            and not allowed_while_busy(argv)
        ):
            return Deferred(lambda: self._after_script(argv))
        if self.gated:  # nothing of this connection may pass a write waiting at the gate
            return Deferred(lambda: self._handle_later(argv))
        if self.writes_in_flight and not self._plain(argv, Route.WRITE):
            return Deferred(lambda: self._handle_later(argv))
        if self.reads_in_flight and not self._plain(argv, Route.READ):
            return Deferred(lambda: self._handle_later(argv))
        return self._handle_now(argv)

    def _plain(self, argv: list[bytes], route: Route) -> bool:
        """True if `argv` is a plain command of `route`. Writes may be submitted behind
        in-flight writes (log order keeps them right); reads may ask for their read index
        behind in-flight reads (each is served in order, from a state at least as new)."""
        session = self.session
        if session.in_multi or not session.authenticated or not session.db_settled:
            return False
        spec = COMMANDS.get(argv[0])  # (the table's own spelling: no call into `lookup`)
        if spec is None:
            spec = lookup(argv[0])
        if spec is None or spec.route is not route:
            return False
        if spec.blocking is None:
            return True
        return spec.blocking.kind is Stream and not wants_block(argv)  # XREAD without BLOCK

    async def _after_script(self, argv: list[bytes]) -> object:
        """A command sent while this node runs a read-only script (of another connection:
        this connection's own commands are not handed over before its script's reply). As
        in Redis it waits; once the script has run `busy_reply_threshold` it gets BUSY."""
        busy = await self.node.scripts.wait_turn()
        if busy is None:
            return await self._handle_later(argv)
        if self.session.in_multi:
            self.session._reject(busy)  # as Redis: the transaction is aborted at EXEC
        return busy

    def _may_replicate(self, argv: list[bytes]) -> bool:
        """Held by CLIENT PAUSE WRITE: writes and the commands that may write or publish."""
        spec = lookup(argv[0])
        if spec is None:
            return False
        return (spec.route is Route.WRITE or "may_replicate" in spec.flags
                or spec.name in ("exec", "publish", "eval", "evalsha", "fcall"))

    async def _after_pause(self, argv: list[bytes]) -> object:
        try:
            assert self.pause is not None
            await self.pause.wait()
            if (self.node.scripts.running is not None and self.session.authenticated
                    and not allowed_while_busy(argv)):
                return await self._after_script(argv)
            return await self._handle_later(argv)
        finally:
            self.held -= 1

    async def _handle_later(self, argv: list[bytes]) -> object:
        reply = self._handle_now(argv)
        if isinstance(reply, Deferred):
            reply = await reply.wait()
        return reply

    def _handle_now(self, argv: list[bytes]) -> object:
        session = self.session
        out = session.handle(argv)
        t = type(out)
        spec = session.last_spec
        stream_read = (
            (t is ReadOp or t is WriteOp)
            and spec is not None
            and spec.blocking is not None
            and spec.blocking.kind is Stream
        )
        if stream_read and wants_block(argv):
            return Deferred(lambda: self._stream_blocking(out))  # type: ignore[arg-type]
        if (t is ReadOp or t is WriteOp) and spec is not None and spec.group == "scripting":
            script = self._script_read(out)  # type: ignore[arg-type]
            if script is not None:
                return script
        if t is ReadOp:
            if self.consistency == "stale":
                return session.finish(out, self.node.execute_local(out))  # type: ignore[arg-type]
            if self.consistency == "linearizable":
                waiter = self.node.start_read()
                if waiter is not None:
                    self.reads_in_flight += 1
                    return _PendingRead(self, out, waiter)  # type: ignore[arg-type]
            return Deferred(lambda: self._read(out))  # type: ignore[arg-type]
        if t is WriteOp:
            if spec is not None and spec.blocking is not None and not stream_read:
                return Deferred(lambda: self._blocking(out))  # type: ignore[arg-type]
            return self._submit_write(out)  # type: ignore[arg-type]
        if t is TxnOp:
            return self._submit_write(out)  # type: ignore[arg-type]
        return out

    def _submit_write(self, op: WriteOp | TxnOp) -> Deferred:
        gate = self.gate
        if gate.active:
            keys = op_keys(op)
            if gate.must_queue(keys):
                # its place in the queue is taken now, on arrival; the server goes on handing
                # over this connection's commands, which wait behind it (`gated`)
                self.gated += 1
                ticket = gate.enter(keys)

                def abandon() -> None:
                    gate.leave(ticket)

                return Deferred(lambda: self._gated(op, ticket), abandon)
        return self._submit(op)

    async def _gated(self, op: WriteOp | TxnOp, ticket: int) -> object:
        """A write to a key that a client of this node waits on: into the log only once
        every earlier write on it has applied (and the serves it triggered are submitted)."""
        blocking = self.node.blocking
        gate = blocking.gate
        try:
            try:
                await gate.acquire(ticket, blocking.gate_limit)
            finally:
                gate.leave(ticket)
            keys = op_keys(op)
            try:
                reply = await self.node.write(op)
            finally:
                gate.release(keys)
        finally:
            self.gated -= 1
        return self.session.finish(op, reply)

    def _submit(self, op: WriteOp | TxnOp) -> Deferred:
        self.writes_in_flight += 1
        return _PendingWrite(self, op, self.writes.submit(op))

    async def _blocking(self, op: WriteOp) -> object:
        """BLPOP & co.: a lazy Deferred (nothing behind it runs first). Replicated once as
        its non-blocking form; if that found nothing, the node parks this client."""
        started = trio.current_time()
        blocking = self.node.blocking
        async with blocking.watching(op.argv) as parked:
            result = await blocking.attempt(op)
            if result is not None and result is not NULL_ARRAY:
                return self.session.finish(op, result)  # served at once, or an error
            reply = await blocking.block(
                list(op.argv), started, self.hangup, self.session.client_id, op.db, parked
            )
        if reply is SHUTTING_DOWN:
            self.session.should_close = True
        return self.session.served(op, reply)

    async def _stream_blocking(self, op: ReadOp | WriteOp) -> object:
        """XREAD/XREADGROUP ... BLOCK: run once (XREAD as a read, XREADGROUP as a write); if
        nothing came back, park the client, XREAD's `$` first turned into the last IDs of the
        state that read ran on (no await in between)."""
        started = trio.current_time()
        argv = list(op.argv)
        blocking = self.node.blocking
        async with blocking.watching(argv) as parked:
            if type(op) is ReadOp:
                result = await self.node.read(op, self.consistency)
                if result is NULL_ARRAY:
                    state = self.node.state
                    state.keyspace.select(op.db)  # (no await between this and the read)
                    argv = resolve_dollar(state.keyspace, argv, state.last_time_ms)
            else:
                result = await blocking.attempt(op)  # type: ignore[arg-type]
            if result is not NULL_ARRAY:
                return self.session.finish(op, result)
            reply = await blocking.block(
                argv, started, self.hangup, self.session.client_id, op.db, parked
            )
        if reply is SHUTTING_DOWN:
            self.session.should_close = True
        return self.session.served(op, reply)

    async def _read(self, op: ReadOp) -> object:
        return self.session.finish(op, await self.node.read(op, self.consistency))

    def _script_read(self, op: ReadOp | WriteOp) -> Deferred | None:
        """A read-only script, served by the node's ScriptRunner: a ReadOp that runs one, or
        a script WriteOp whose script or function is declared no-writes (unless this
        connection's writes are in flight: it must see them, so it goes after them through
        the log). None: not a read-only script."""
        read: ReadOp | None = op if type(op) is ReadOp else None
        if read is None and not self.writes_in_flight:
            read = read_form(self.node.state.keyspace, op.argv)
        call = script_call(op.argv)
        if read is None or call is None:
            return None
        ro = read
        return Deferred(lambda: self._script(ro, call))

    async def _script(self, op: ReadOp, call: ScriptCall) -> object:
        return self.session.finish(op, await self.node.scripts.run(op, call, self.consistency))

    def cmd_script_kill(self, argv: list[bytes]) -> object:
        return self.node.scripts.kill(is_eval=True)

    def cmd_function_kill(self, argv: list[bytes]) -> object:
        return self.node.scripts.kill(is_eval=False)

    def cmd_function_stats(self, argv: list[bytes]) -> object:
        return self.node.scripts.function_stats()

    def cmd_client_unblock(self, argv: list[bytes]) -> object:
        """CLIENT UNBLOCK id [TIMEOUT|ERROR]: for clients parked on this node."""
        if len(argv) < 3:
            return Error("ERR wrong number of arguments for 'client|unblock' command")
        if len(argv) > 4:
            sub = argv[1].decode("utf-8", "replace")
            return Error(
                f"ERR unknown subcommand or wrong number of arguments for '{sub}'. "
                "Try CLIENT HELP."
            )
        error = False
        if len(argv) == 4:
            reason = argv[3].lower()
            if reason not in (b"timeout", b"error"):
                return Error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
            error = reason == b"error"
        client_id = parse_int(argv[2])
        if client_id is None:
            return Error("ERR value is not an integer or out of range")
        return self.node.blocking.unblock(client_id, error)

    def cmd_consistency(self, argv: list[bytes]) -> object:
        if len(argv) == 1:
            return self.consistency.encode()
        if len(argv) != 2:
            return Error("ERR wrong number of arguments for 'aspen.consistency' command")
        mode = argv[1].decode("utf-8", "replace").lower()
        if mode not in READ_CONSISTENCIES:
            return Error(f"ERR read consistency must be one of {', '.join(READ_CONSISTENCIES)}")
        self.consistency = mode
        return OK


def op_keys(op: WriteOp | TxnOp) -> tuple[bytes, ...]:
    """The keys a write names (every command's, for MULTI/EXEC), as COMMAND GETKEYS would."""
    commands = op.commands if type(op) is TxnOp else (op.argv,)  # type: ignore[union-attr]
    keys: list[bytes] = []
    for argv in commands:
        spec = lookup(argv[0])
        if spec is not None and spec.arity_ok(len(argv)):
            with contextlib.suppress(Exception):
                keys += spec.keys(list(argv))
    return tuple(dict.fromkeys(keys))


class _PendingWrite(Deferred):
    """One submitted write of a connection, and its started `Deferred` (one object per write:
    this is on every write's path)."""

    __slots__ = ("conn", "op", "open", "write")

    def __init__(self, conn: ClusterConnection, op: WriteOp | TxnOp, write: WriteRequest) -> None:
        self.started = True  # (the base's callables are not used: the methods are overridden)
        self.conn = conn
        self.op = op
        self.write = write
        self.open = True  # settled exactly once, by the reply or by abandon

    def wait_for(self) -> Awaitable[object]:
        return self.reply()

    def abandon(self) -> None:
        self.settle()

    def settle(self) -> None:
        if self.open:
            self.open = False
            self.conn.writes_in_flight -= 1
            self.write.callback = None
            self.conn.writes.forget(self.write)

    def detach(self, callback: Callable[[], None]) -> bool:
        """Have `callback()` called when the write settles, instead of being awaited."""
        w = self.write
        if w.settled or not self.open:
            return False  # settled already: the server takes the reply without waiting
        w.callback = callback
        return True

    def result(self) -> object:
        """The reply, once the write settled (no waiting: see `detach`)."""
        self.settle()
        return self.conn.session.finish(self.op, WritePath.reply(self.write))

    async def reply(self) -> object:
        w = self.write
        try:
            await w.wait()
        finally:
            self.settle()
        return self.conn.session.finish(self.op, WritePath.reply(w))


_UNSET = object()


class _ReadFinisher(Protocol):
    def finish(self, op: ReadOp, result: object) -> object: ...


class _Applied(Protocol):
    @property
    def applied_index(self) -> int: ...


class _ReadNode(Protocol):
    @property
    def cut_off(self) -> bool: ...
    @property
    def state(self) -> _Applied: ...
    def execute_local(self, op: ReadOp) -> object: ...
    def start_task(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> bool: ...
    async def finish_read(self, op: ReadOp, waiter: ReadIndexWaiter) -> object: ...


class _ReadOwner(Protocol):
    """What a `_PendingRead` uses of its connection and node (Protocols only: the tests
    drive one with fakes, which the compiled build's check of a concrete class refuses)."""

    @property
    def node(self) -> _ReadNode: ...
    @property
    def session(self) -> _ReadFinisher: ...
    reads_in_flight: int


class _PendingRead(Deferred):
    """One started linearizable read of a connection, and its started `Deferred`: its read
    index is already asked for (together with the other reads of the same driver pass); it
    is served when awaited, or detached."""

    __slots__ = ("callback", "conn", "op", "open", "value", "waiter")

    def __init__(self, conn: _ReadOwner, op: ReadOp, waiter: ReadIndexWaiter) -> None:
        self.started = True  # (the base's callables are not used: the methods are overridden)
        self.conn = conn
        self.op = op
        self.waiter = waiter
        self.open = True
        self.callback: Callable[[], None] | None = None  # the server's, when detached
        self.value: object = _UNSET  # the reply, once served without the connection's task

    def wait_for(self) -> Awaitable[object]:
        return self.reply()

    def abandon(self) -> None:
        self.settle()

    def settle(self) -> None:
        if self.open:
            self.open = False
            self.conn.reads_in_flight -= 1
            self.waiter.callback = None
            self.callback = None

    def detach(self, callback: Callable[[], None]) -> bool:
        """Have `callback()` called once the reply is ready, instead of being awaited (the
        server then takes it from `result`): served right where the read index comes in if
        this replica has applied that far, else by a task of the node (`_serve_late`)."""
        waiter = self.waiter
        if not self.open or waiter.fired or self.conn.node.cut_off:
            return False  # (the awaited path answers at once)
        self.callback = callback
        waiter.callback = self._confirmed
        return True

    def _confirmed(self) -> None:
        """The read index came in (called by the driver)."""
        if not self.open:
            return
        node = self.conn.node
        index = self.waiter.index
        if index is not None and not node.cut_off and node.state.applied_index >= index:
            self.value = node.execute_local(self.op)
            self._ready()
            return
        # not applied that far yet, no index, ...: the full read path, in a task
        if not node.start_task(self._serve_late):  # the node is stopping
            self.value = CLUSTERDOWN
            self._ready()

    async def _serve_late(self) -> None:
        try:
            value = await self.conn.node.finish_read(self.op, self.waiter)
        except Exception as exc:  # served as the awaited path would fail it
            value = Error(f"ERR internal error: {exc!r}")
        if self.open:
            self.value = value
            self._ready()

    def _ready(self) -> None:
        callback, self.callback = self.callback, None
        if callback is not None:
            callback()

    def result(self) -> object:
        """The reply of a detached read, once `callback` was called."""
        self.settle()
        return self.conn.session.finish(self.op, self.value)

    async def reply(self) -> object:
        self.waiter.callback = self.callback = None  # (awaited after all: no detached serve)
        try:
            if self.value is not _UNSET:
                result = self.value
            else:
                result = await self.conn.node.finish_read(self.op, self.waiter)
        finally:
            self.settle()
        return self.conn.session.finish(self.op, result)
