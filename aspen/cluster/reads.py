"""The read path of one node: ReadIndex rounds, the leader's lease, forwarded reads.

Linearizable reads use ReadIndex (the reads of one driver pass share one `read_index` call,
so one heartbeat round); lease reads are served by the leader locally while a lease confirmed
by a quorum holds (followers forward them to the leader); stale reads are local at once.
Every mode ends in `execute_local` on this replica once it has applied far enough.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import math
from time import perf_counter

import trio

from aspen.cluster import forward, replies
from aspen.cluster.errors import CLUSTERDOWN
from aspen.cluster.host import NodeHost
from aspen.cluster.requests import ReadIndexWaiter
from aspen.cluster.settings import ReadConsistency
from aspen.kv.ops import ReadOp
from aspen.kv.ops import decode as decode_op
from aspen.raft import ReadState, Role
from transports import MessageKind

INLINE_READS_BUDGET = 0.005
"""Seconds of detached reads served per driver pass (the rest wait for the next)."""


class ReadPath:
    """Reads waiting for a read index, for the applied index, or for the leader's answer."""

    def __init__(self, host: NodeHost) -> None:
        self.host = host
        s = host.settings
        # ReadIndex needs an answer within the request timeout: only then the fast path
        self.fast = s.request_timeout > s.election_timeout
        self.queue: list[ReadIndexWaiter] = []  # for the next read_index call
        self.tokens: dict[bytes, tuple[list[ReadIndexWaiter], float, int]] = {}
        self._token_seq = itertools.count(1)
        self.applied_waiters: list[tuple[int, int, trio.Event]] = []
        # answered reads whose detached serve waits for a later pass (serve_read_states)
        self.backlog: collections.deque[ReadIndexWaiter] = collections.deque()
        self._applied_seq = itertools.count()
        self.forwarded: dict[bytes, tuple[trio.Event, list[object]]] = {}
        self._read_seed = 0
        self.lease_until = -math.inf
        self.lease_term = -1

    @property
    def busy(self) -> bool:
        """Does a client of this node wait for a read?"""
        return bool(self.tokens or self.forwarded or self.applied_waiters)

    def drop_lease(self) -> None:
        self.lease_until = -math.inf

    def lease_valid(self) -> bool:
        core = self.host.raft
        return (
            core.role is Role.LEADER
            and self.lease_term == core.term
            and core.lead_transferee is None
            and trio.current_time() < self.lease_until
            # the core's own (tick-based) lease: also void after a TimeoutNow, whoever sent it
            and core.lease_remaining() > 0
        )

    def execute_local(self, op: ReadOp) -> object:
        host = self.host
        state = host.state
        now = max(host.clock_ms(), state.last_time_ms)
        self._read_seed += 1
        host.stats.reads_served += 1
        return state.keyspace.execute(op, now, self._read_seed)

    def start(self) -> ReadIndexWaiter | None:
        if not self.fast:
            return None
        waiter = ReadIndexWaiter()
        self.queue.append(waiter)
        self.host.kick()
        return waiter

    async def read(
        self,
        op: ReadOp,
        mode: ReadConsistency,
        *,
        allow_forward: bool = True,
        waiter: ReadIndexWaiter | None = None,
    ) -> object:
        host = self.host
        if mode == "stale":
            return self.execute_local(op)
        if host.cut_off:
            return CLUSTERDOWN
        deadline = trio.current_time() + host.settings.request_timeout
        confirmed = None
        if mode == "linearizable" and self.fast:
            # The common case without a cancel scope (a measurable share of a read's CPU):
            # the core answers every read_index within an election timeout (shorter than the
            # request timeout here), and a stopped node releases its waiters. Anything else
            # (no index, or not applied that far yet) takes the bounded path below.
            if waiter is None:
                waiter = self.start()
                assert waiter is not None
            await waiter.event.wait()
            confirmed = waiter.index
            if confirmed is not None and host.state.applied_index >= confirmed:
                return self.execute_local(op)
        with trio.move_on_at(deadline):
            if confirmed is not None:
                await self.wait_applied(confirmed)
                return self.execute_local(op)
            if mode == "lease":
                if self.lease_valid():
                    host.stats.lease_reads += 1
                    await self.wait_applied(host.raft.commit_index)
                    return self.execute_local(op)
                core = host.raft
                if allow_forward and core.role is not Role.LEADER and core.leader_id is not None:
                    reply = await self._forward(core.leader_id, op)
                    if reply is not None:
                        return reply[0]
            while True:
                index = await self._read_index()
                if index is not None:
                    await self.wait_applied(index)
                    return self.execute_local(op)
                if host.cut_off:
                    break
                await trio.sleep(host.settings.tick_interval)  # no leader yet: try again
        return CLUSTERDOWN

    async def read_index(self) -> int | None:
        """A ReadIndex round: the commit index a quorum confirmed (None: no leader)."""
        return await self._read_index()

    async def _read_index(self) -> int | None:
        waiter = ReadIndexWaiter()
        self.queue.append(waiter)
        self.host.kick()
        await waiter.event.wait()
        return waiter.index

    async def _forward(self, leader: int, op: ReadOp) -> list[object] | None:
        host = self.host
        transport = host.transport
        if transport is None:
            return None
        token = b"f%d.%d.%d" % (host.id, host.incarnation, next(self._token_seq))
        event, box = trio.Event(), list[object]()
        self.forwarded[token] = (event, box)
        try:
            await transport.send(
                leader,
                forward.encode(forward.ForwardRead(token, op.encode())),
                MessageKind.CLIENT_REQUEST,
            )
            with trio.move_on_after(host.settings.election_timeout):
                await event.wait()
        finally:
            del self.forwarded[token]
        return box or None

    # -- the driver's side ------------------------------------------------------------------

    def request_read_index(self) -> None:
        """One `read_index` call for every read queued since the last (and, first, the
        detached reads still in the backlog)."""
        if self.backlog:
            self.serve_backlog()
        if not self.queue:
            return
        host = self.host
        waiters, self.queue = self.queue, []
        token = b"%d.%d.%d" % (host.id, host.incarnation, next(self._token_seq))
        term = host.raft.term
        self.tokens[token] = (waiters, trio.current_time(), term)
        host.stats.read_index_calls += 1
        host.raft.read_index(token)

    def serve_read_states(self, read_states: list[ReadState]) -> None:
        core = self.host.raft
        for rs in read_states:
            pending = self.tokens.pop(rs.token, None)
            if pending is None:
                continue
            waiters, issued_at, term = pending
            if rs.index is not None and core.role is Role.LEADER and term == core.term:
                # A quorum acknowledged us after `issued_at`: none of them votes for anyone
                # else for an election timeout, so we stay the only leader until the lease ends.
                lease_end = issued_at + self.host.settings.lease_duration
                if self.lease_term != term or lease_end > self.lease_until:
                    self.lease_until, self.lease_term = lease_end, term
            # A detached read is served inside `fire` (`_PendingRead._confirmed`): past a
            # budget the rest wait for the next driver passes (`backlog`), so a pipeline of
            # slow reads (KEYS) cannot hold the event loop (heartbeats, signals, shutdown)
            # for its whole length; the awaited path checkpoints between reads likewise.
            budget_end = perf_counter() + INLINE_READS_BUDGET
            backlog = self.backlog
            for w in waiters:
                w.index = rs.index
                if w.callback is not None and (backlog or perf_counter() > budget_end):
                    backlog.append(w)
                else:
                    w.fire()
        if self.backlog:
            self.host.kick()

    def serve_backlog(self) -> None:
        """Detached reads left over by the last passes, within the budget (in order)."""
        budget_end = perf_counter() + INLINE_READS_BUDGET
        backlog = self.backlog
        backlog.popleft().fire()  # (at least one per pass, whatever the budget)
        while backlog and perf_counter() <= budget_end:
            backlog.popleft().fire()
        if backlog:
            self.host.kick()

    def wake_applied(self) -> None:
        applied = self.host.state.applied_index
        heap = self.applied_waiters
        while heap and heap[0][0] <= applied:
            heapq.heappop(heap)[2].set()

    async def wait_applied(self, index: int) -> None:
        if self.host.state.applied_index >= index:
            return
        event = trio.Event()
        heapq.heappush(self.applied_waiters, (index, next(self._applied_seq), event))
        await event.wait()

    def on_reply(self, msg: forward.ReadReply) -> None:
        waiting = self.forwarded.get(msg.token)
        if waiting is not None:
            try:
                waiting[1].append(replies.decode(msg.reply))
            except replies.ReplyCodecError:
                return
            waiting[0].set()

    def on_rejected(self, token: bytes) -> None:
        waiting = self.forwarded.get(token)
        if waiting is not None:
            waiting[0].set()  # no value: the reader falls back to ReadIndex

    async def serve_forwarded(self, sender: int, msg: forward.ForwardRead) -> None:
        """A follower's lease read: served here if we lead, else rejected."""
        host = self.host
        transport = host.transport
        if host.raft.role is not Role.LEADER or transport is None:
            out: forward.Forwarded = forward.Rejected((), msg.token, host.raft.leader_id)
        else:
            try:
                op = decode_op(msg.op)
            except ValueError:
                return
            if type(op) is not ReadOp:
                return
            reply = await self.read(op, "lease", allow_forward=False)
            if reply is CLUSTERDOWN:
                out = forward.Rejected((), msg.token, host.raft.leader_id)
            else:
                out = forward.ReadReply(msg.token, replies.encode(reply))
        transport = host.transport
        if transport is not None:
            await transport.send(sender, forward.encode(out), MessageKind.CLIENT_REPLY)

    def release(self) -> None:
        """The node stops: wake every read waiting for an index (None: the reader's bounded
        retry loop takes over)."""
        queue, tokens, backlog = self.queue, self.tokens, self.backlog
        self.queue, self.tokens, self.backlog = [], {}, collections.deque()
        for waiter in backlog:
            waiter.fire()
        for waiter in queue:
            waiter.fire()
        for waiters, _, _ in tokens.values():
            for waiter in waiters:
                waiter.fire()
