"""Clients blocked in BLPOP & co. on this node, and serving them in arrival order.

A blocking command is first replicated as an ordinary write: applied, it behaves as its
non-blocking form (`aspen.kv.blocking`), so an available element is popped at once, errors come
back at once, and inside MULTI it never blocks. If it found nothing, the client is parked HERE,
on the node that holds its connection (leader or follower), in a FIFO per key.

After every applied batch (`after_apply`, called by the driver; a snapshot install included)
the node looks only at keys that have waiters. For each key now holding a non-empty value of
the right type, the oldest waiters are taken and, for each, a *serve* is submitted: a
replicated conditional pop from that key. Every replica applies the same pop; if it returns
null (a client of another node won the race) the waiter goes back into its queues at its
arrival position (the head, unless someone older is there too) and waits again.

`WaiterQueues` is the pure data structure (no trio, no node); `BlockingService` is the small
trio-facing part: timeouts, the serve writes, hangups, CLIENT UNBLOCK and shutdown.

Databases: a waiter waits in its connection's database (`Waiter.db`, from the op); queues are
per (db, key), so a push to `k` in database 1 serves only those waiting on `k` in database 1.
After SWAPDB the same keys are simply looked at again (their values changed under them), as
Redis re-checks the clients blocked in both databases.

A client that goes away while parked is removed and loses nothing. One that goes away (is
cancelled) while its first attempt or its serve is in flight (a commit round) gets whatever was
popped pushed back (a compensating write: not atomic, but nothing is lost).
"""

from __future__ import annotations

import contextlib
import math
import select
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Protocol

import trio

from aspen.cluster.errors import CLUSTERDOWN
from aspen.cluster.keygate import KeyGate
from aspen.kv.blocking import serve_argv
from aspen.kv.commands import blocking_of
from aspen.kv.errors import CommandError
from aspen.kv.lists import List
from aspen.kv.ops import TxnOp, WriteOp
from aspen.kv.stream import Stream
from aspen.kv.streams_blocking import stream_ready
from aspen.resp.values import NULL_ARRAY, Error

if TYPE_CHECKING:
    from aspen.cluster.requests import WriteRequest
    from aspen.cluster.state import ReplicatedState

__all__ = ["SHUTTING_DOWN", "UNBLOCKED", "BlockingService", "Waiter", "WaiterQueues", "wait_hangup"]

SHUTTING_DOWN = Error("UNBLOCKED the node is shutting down")
"""What a parked client gets when the node shuts down gracefully (then it is disconnected)."""
UNBLOCKED = Error("UNBLOCKED client unblocked via CLIENT UNBLOCK")

Hangup = Callable[[], Awaitable[None]]
"""Returns when the client's connection is closed by the peer (never returns otherwise)."""



class Waiter:
    """One parked client: its keys, in its own order, and what a serve may take."""

    __slots__ = ("argv", "client_id", "db", "event", "gone", "key", "keys", "kind", "pending",
                 "ready", "seq", "unblocked", "want")

    def __init__(
        self, keys: tuple[bytes, ...], want: int = 1, kind: type = List, db: int = 0
    ) -> None:
        self.db = db
        # (db, key) pairs: BLPOP k k 0 waits once on k
        self.keys = tuple(dict.fromkeys((db, k) for k in keys))
        self.want = want
        self.kind = kind  # the value type that can serve it
        self.seq = -1  # arrival order, set by WaiterQueues.add
        self.argv: list[bytes] = []
        self.event: trio.Event | None = None
        self.pending: object = None  # the serve write in flight
        self.key: DbKey | None = None  # the key it is being served from
        self.gone = False
        self.client_id = 0
        self.unblocked: object = None  # CLIENT UNBLOCK's reply for it
        # XREAD/XREADGROUP: whether `key` can serve this very waiter (not a count by kind)
        self.ready: Callable[[DbKey], bool] | None = None


DbKey = tuple[int, bytes]
"""A key in a database: what waiters wait on."""


class WaiterQueues:
    """Per (db, key), the waiters in arrival order (a dict used as an ordered set: O(1)
    removal)."""

    def __init__(self) -> None:
        self._queues: dict[DbKey, dict[Waiter, None]] = {}
        self._next_seq = 0
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __contains__(self, w: Waiter) -> bool:
        return bool(w.keys) and w in self._queues.get(w.keys[0], {})

    def keys(self) -> Iterator[DbKey]:
        return iter(self._queues)

    def queue(self, key: DbKey) -> list[Waiter]:
        return list(self._queues.get(key, ()))

    def add(self, w: Waiter) -> None:
        """A new arrival: behind everyone on each of its keys."""
        self._next_seq += 1
        w.seq = self._next_seq
        for key in w.keys:
            self._queues.setdefault(key, {})[w] = None
        self._count += 1

    def requeue(self, w: Waiter) -> None:
        """Back after a failed serve: at its arrival position on each of its keys."""
        if w in self:
            return
        for key in w.keys:
            queue = self._queues.setdefault(key, {})
            if queue and next(reversed(queue)).seq > w.seq:
                items = sorted([*queue, w], key=lambda x: x.seq)
                queue.clear()
                queue.update(dict.fromkeys(items))
            else:
                queue[w] = None
        self._count += 1

    def remove(self, w: Waiter) -> None:
        if w not in self:
            return
        for key in w.keys:
            queue = self._queues[key]
            del queue[w]
            if not queue:
                del self._queues[key]
        self._count -= 1

    def take(
        self, available: Callable[[DbKey, type], int], keys: Iterable[DbKey] | None = None
    ) -> list[tuple[Waiter, DbKey]]:
        """Take the waiters that can be served now, oldest first per key.

        `available(key, kind)` is how many elements `key` holds that a waiter of `kind` could
        pop (0 if none or the wrong type). A waiter that cannot be served keeps its place.
        `keys`: look at these keys only (default: every key with waiters)."""
        out: list[tuple[Waiter, DbKey]] = []
        for key in list(self._queues) if keys is None else keys:
            queue = self._queues.get(key)
            if not queue:
                continue
            left: dict[type, int] = {}
            for w in list(queue):
                if w.ready is not None:  # a stream reader: its own condition, takes nothing
                    if w.ready(key):
                        self.remove(w)
                        out.append((w, key))
                    continue
                n = left.get(w.kind)
                if n is None:
                    n = available(key, w.kind)
                if n > 0:
                    self.remove(w)
                    out.append((w, key))
                    n -= w.want
                left[w.kind] = n
        return out


_PENDING_RECHECK = 0.1  # seconds between looks at a socket with unread bytes but no close


async def wait_hangup(sock: socket.socket | trio.socket.SocketType) -> None:
    """Return once the peer has closed `sock` (for a connection that is not being read now).

    Reads nothing: the kernel's POLLRDHUP says the peer shut its side down even when unread
    bytes come before that (pipelined commands, or a TLS connection's close_notify record), so
    this works for TLS connections too. While unread bytes wait and no close has come, it
    looks again every `_PENDING_RECHECK` seconds."""
    poller = select.poll()
    poller.register(sock, select.POLLRDHUP)
    while True:
        await trio.lowlevel.wait_readable(sock)
        for _fd, events in poller.poll(0):
            if events & (select.POLLRDHUP | select.POLLHUP | select.POLLERR):
                return
        await trio.sleep(_PENDING_RECHECK)


class BlockingNode(Protocol):
    """What `BlockingService` needs from the node: the applied state and writes."""

    @property
    def state(self) -> ReplicatedState: ...
    def submit_write(self, op: WriteOp | TxnOp) -> WriteRequest: ...
    async def wait_write(self, w: WriteRequest) -> object: ...
    async def write(self, op: WriteOp | TxnOp) -> object: ...


class BlockingService:
    """The node's parked clients (one per ClusterNode)."""

    def __init__(self, node: BlockingNode) -> None:
        self.node = node
        self.queues = WaiterQueues()
        self._inflight: dict[DbKey, int] = {}  # elements that serves in flight may take
        self._waiting: dict[Waiter, None] = {}
        self._by_client: dict[int, Waiter] = {}
        self._closing = False
        self._checked_index = -1
        self.served = 0
        self.lost_races = 0
        # Redis's serve order for this node's clients (aspen.cluster.keygate)
        self.gate = KeyGate()
        settings = getattr(node, "settings", None)
        self.gate_limit = float(getattr(settings, "request_timeout", 5.0))

    @property
    def blocked_clients(self) -> int:
        return len(self._waiting)

    # -- the driver's side ----------------------------------------------------------------

    def after_apply(self) -> None:
        """Called by the driver after each ready: serve whoever can be served now.

        Costs one lookup per key with parked clients, and only when something was applied
        (a snapshot install moves the applied index too)."""
        if self.queues:
            applied = self.node.state.applied_index
            if applied != self._checked_index:
                self._checked_index = applied
                self._serve_ready()

    def _available(self, key: DbKey, kind: type) -> int:
        state = self.node.state
        value = state.keyspace.get_read_in(key[0], key[1], state.last_time_ms)
        if type(value) is not kind:
            return 0
        return len(value) - self._inflight.get(key, 0)  # type: ignore[arg-type]

    def _stream_ready(self, argv: list[bytes]) -> Callable[[DbKey], bool]:
        def ready(key: DbKey) -> bool:
            state = self.node.state
            value = state.keyspace.get_read_in(key[0], key[1], state.last_time_ms)
            return stream_ready(value, key[1], argv)

        return ready

    def _serve_ready(self, keys: Iterable[DbKey] | None = None) -> None:
        for w, key in self.queues.take(self._available, keys):
            w.key = key
            w.pending = self.node.submit_write(WriteOp(serve_argv(key[1], w.argv), key[0]))
            self._inflight[key] = self._inflight.get(key, 0) + w.want
            self.gate.hold(_serve_keys(key[1], w.argv))  # by key name, any database
            if w.event is not None:
                w.event.set()

    def unblock(self, client_id: int, error: bool) -> int:
        """CLIENT UNBLOCK: release a parked client (not one being served) with a timeout
        reply or an error; 1 if it was parked."""
        w = self._by_client.get(client_id)
        if w is None or w.pending is not None or w not in self.queues or w.event is None:
            return 0
        w.unblocked = UNBLOCKED if error else NULL_ARRAY
        w.event.set()
        return 1

    def shutdown(self) -> None:
        """Release every parked client with SHUTTING_DOWN (graceful node shutdown)."""
        self._closing = True
        for w in list(self._waiting):
            if w.event is not None:
                w.event.set()

    # -- the client's side ----------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def watching(self, argv: Sequence[bytes]) -> AsyncIterator[Callable[[], None]]:
        """Around a blocking command's whole life on this node: its keys are watched (writes
        to them go one at a time, see KeyGate); it waits until they are clear, then holds
        them until it is parked (call what this yields) or done."""
        try:
            keys = blocking_of(argv[0]).call(list(argv)).keys
            keys = tuple(dict.fromkeys((*keys, *_destination(argv))))
        except CommandError:
            keys = ()  # its attempt answers the error
        gate = self.gate
        gate.watch(keys)
        held = False

        def parked() -> None:
            nonlocal held
            if held:
                held = False
                gate.release(keys)

        ticket = gate.enter(keys)
        try:
            try:
                await gate.acquire(ticket, self.gate_limit)
            finally:
                gate.leave(ticket)  # cancelled while queued (no-op once acquired)
            held = True
            yield parked
        finally:
            parked()
            gate.unwatch(keys)

    async def attempt(self, op: WriteOp) -> object:
        """Replicate a blocking command once (its non-blocking form); its reply. A client
        cancelled meanwhile (it went away) gets back what the attempt popped."""
        return await self._shielded_write(op, op.argv, op.db)

    async def block(
        self,
        argv: list[bytes],
        started: float,
        hangup: Hangup | None = None,
        client_id: int = 0,
        db: int = 0,
        on_parked: Callable[[], None] | None = None,
    ) -> object:
        """Park a client whose blocking command `argv` found nothing; its eventual reply.

        `started`: when the command arrived (trio time; its timeout counts from there).
        `hangup`: returns when the client disconnects (then the reply no longer matters).
        `client_id`: what CLIENT UNBLOCK names it by. `db`: the database it waits in.
        `on_parked()`: called once it is in the queues and whatever could serve it at once
        has been submitted."""
        blocking = blocking_of(argv[0])
        call = blocking.call(argv)
        w = Waiter(call.keys, call.want, blocking.kind, db)
        w.argv = list(argv)
        if blocking.kind is Stream:
            w.ready = self._stream_ready(w.argv)
        w.client_id = client_id
        deadline = started + call.timeout_ms / 1000 if call.timeout_ms else math.inf
        async with trio.open_nursery() as nursery:
            if hangup is not None:
                nursery.start_soon(self._watch, w, hangup)
            try:
                return await self._block(w, deadline, on_parked)
            finally:
                nursery.cancel_scope.cancel()

    async def _watch(self, w: Waiter, hangup: Hangup) -> None:
        await hangup()
        w.gone = True
        if w.event is not None:
            w.event.set()

    async def _block(
        self, w: Waiter, deadline: float, on_parked: Callable[[], None] | None = None
    ) -> object:
        self._waiting[w] = None
        if w.client_id:
            self._by_client[w.client_id] = w
        try:
            fresh = True
            while True:
                if self._closing:
                    return SHUTTING_DOWN
                if w.gone:
                    return NULL_ARRAY  # nobody reads it
                w.event = trio.Event()
                if fresh:
                    self.queues.add(w)
                    fresh = False
                else:
                    self.queues.requeue(w)
                self._serve_ready(w.keys)  # something may have come since the first attempt
                if on_parked is not None:
                    on_parked()
                    on_parked = None
                if w.pending is None:
                    with trio.move_on_at(deadline):
                        await w.event.wait()
                if w.pending is None:  # timed out, unblocked, shutting down or gone
                    self.queues.remove(w)  # nothing was taken for it
                    if self._closing:
                        return SHUTTING_DOWN
                    return NULL_ARRAY if w.unblocked is None else w.unblocked
                reply = await self._finish_serve(w)
                if reply is None or reply is CLUSTERDOWN:
                    self.lost_races += reply is None
                    if w.gone:
                        return NULL_ARRAY
                    continue  # someone else got it (or nothing was applied): wait again
                if w.gone:
                    await self._give_back(w.argv, reply, w.db)
                    return NULL_ARRAY
                self.served += 1
                return reply
        finally:
            if w.pending is not None:  # cancelled with a serve submitted and never awaited
                w.pending = None
                self._serve_done(w)
            self.queues.remove(w)
            self._waiting.pop(w, None)
            if self._by_client.get(w.client_id) is w:
                del self._by_client[w.client_id]

    async def _finish_serve(self, w: Waiter) -> object:
        """Wait for the serve in flight; if the client is cancelled meanwhile (it went away),
        whatever the serve popped is pushed back."""
        pending, w.pending = w.pending, None
        try:
            return await self._shielded_write(pending, w.argv, w.db)
        finally:
            self._serve_done(w)

    def _serve_done(self, w: Waiter) -> None:
        key = w.key
        assert key is not None
        left = self._inflight.get(key, 0) - w.want
        if left > 0:
            self._inflight[key] = left
        else:
            self._inflight.pop(key, None)
        if not self._closing:
            self._serve_ready((key,))  # what this serve did not take may serve the next one
        # after the serves that follow are submitted: they come first
        self.gate.release(_serve_keys(key[1], w.argv))

    async def _shielded_write(
        self, op_or_pending: object, argv: Sequence[bytes], db: int
    ) -> object:
        """Wait for a pop (a WriteOp to submit, or a write already submitted) even if the
        client is cancelled meanwhile; then push back what it popped and re-raise."""
        node = self.node
        with trio.CancelScope(shield=True):  # bounded by the node's request timeout
            if isinstance(op_or_pending, WriteOp):
                reply = await node.write(op_or_pending)
            else:
                reply = await node.wait_write(op_or_pending)  # type: ignore[arg-type]
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
        except trio.Cancelled:
            with trio.CancelScope(shield=True):
                await self._give_back(argv, reply, db)
            raise
        return reply

    async def _give_back(self, argv: Sequence[bytes], reply: object, db: int) -> None:
        op = give_back_op(list(argv), reply, db)
        if op is not None:
            with contextlib.suppress(Exception):
                await self.node.write(op)


def _destination(argv: Sequence[bytes]) -> tuple[bytes, ...]:
    """BLMOVE/BRPOPLPUSH's destination: a serve pushes there, which can serve a client
    parked on it, so it is part of what the command waits on for the gate."""
    name = argv[0].lower()
    if name in (b"blmove", b"brpoplpush") and len(argv) > 2:
        return (argv[2],)
    return ()


def _serve_keys(key: bytes, argv: Sequence[bytes]) -> tuple[bytes, ...]:
    """What a serve of `argv` from `key` changes: the key, and a destination."""
    return tuple(dict.fromkeys((key, *_destination(argv))))


def give_back_op(argv: list[bytes], reply: object, db: int = 0) -> WriteOp | None:
    """The write that undoes a pop of `argv` whose reply was `reply` (the client is gone),
    in database `db`: the command's own `Blocking.give_back` says what it is."""
    if isinstance(reply, Error) or reply is None or reply is NULL_ARRAY:
        return None
    give_back = blocking_of(argv[0]).give_back
    back = None if give_back is None else give_back(argv, reply)
    return None if back is None else WriteOp(back, db)
