"""The write path of one node: submit, forward, retry, batch and propose; settle on apply.

Writes from any node: the leader puts them straight into its next batch; a follower forwards
them (CLIENT_REQUEST) and learns the outcome by applying the entry that holds its request id
(apply is deterministic, so no reply message is needed). Unknown outcomes are retried with the
same request id; the replicated dedup table (state.py) applies each id at most once. All the
client writes of one driver pass become ONE log entry (a batch): one fsync, one AppendEntries
per peer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import trio

from aspen.cluster import entry as entry_codec
from aspen.cluster import forward
from aspen.cluster.entry import ExpireItem, Item, OpItem, PeerItem, RequestId
from aspen.cluster.errors import CLUSTERDOWN, WRITE_OUTCOME_UNKNOWN
from aspen.cluster.host import NodeHost
from aspen.cluster.requests import WriteRequest
from aspen.cluster.state import Applied
from aspen.kv.ops import OpDecodeError, ReadOp, TxnOp, WriteOp, normalised
from aspen.kv.ops import decode as decode_op
from aspen.raft import NotLeader, ProposalDropped, Role
from transports import MessageKind


class WritePath:
    """The writes this node originated (until applied or given up) and the leader's batch."""

    def __init__(self, host: NodeHost) -> None:
        self.host = host
        # Fixed for the node's life, read by every client write (the host is interpreted:
        # each attribute of it is a dictionary lookup)
        self.node_id = host.id
        self.incarnation = host.incarnation
        self.timeout = host.settings.request_timeout
        self.pending: dict[int, WriteRequest] = {}  # seq -> write, in submission order
        self.seq = 0
        self.to_submit: list[WriteRequest] = []
        self.rescan = False  # look at every pending write again (tick, leader change)
        self.batch: list[Item] = []  # what the leader proposes in its next entries
        self.batch_has_expire = False
        self.proposed: dict[int, tuple[bytes, entry_codec.Batch]] = {}  # index -> (data, batch)
        self.last_proposed_ms = 0
        # The running trio clock's own `current_time` (one C-speed call; `trio.current_time`
        # finds it through three interpreted frames, ~0.3 us, on every client write).
        self._now: Callable[[], float] | None = None

    # -- the client's side ------------------------------------------------------------------

    def submit(self, op: WriteOp | TxnOp) -> WriteRequest:
        """Queue a client write for the driver's next pass; only the first write since the
        driver last took them kicks it (it takes them all: `submit_pending`)."""
        host = self.host
        self.seq += 1
        held = normalised(op)
        now = self._now
        if now is None:
            now = self._now = trio.lowlevel.current_clock().current_time
        w = WriteRequest(
            _tuple_new(RequestId, (self.node_id, self.incarnation, self.seq)),
            held if held is not None else op.encode(),
            now() + self.timeout,
        )
        self.pending[self.seq] = w
        if not self.to_submit:
            host.kick()
        self.to_submit.append(w)
        return w

    async def wait(self, w: WriteRequest) -> object:
        # No cancel scope per write (it was a measurable share of a write's CPU time): the
        # `deadlines` task sets the event of a write whose deadline has passed.
        try:
            await w.wait()
        finally:
            self.forget(w)
        return self.reply(w)

    @staticmethod
    def reply(w: WriteRequest) -> object:
        """The reply of a settled write (its event is set): applied, or given up."""
        if w.done:
            return w.reply
        return WRITE_OUTCOME_UNKNOWN if w.submitted else CLUSTERDOWN

    def forget(self, w: WriteRequest) -> None:
        self.pending.pop(w.rid.seq, None)

    # -- the driver's side ------------------------------------------------------------------

    def give_up_waiting(self) -> None:
        """Cut off: every write still waiting settles now (TIMEOUT if it was sent to a
        leader, else CLUSTERDOWN)."""
        for w in list(self.pending.values()):
            if not w.done:
                w.settle()

    def submit_pending(self) -> None:
        """Hand the new writes (and, after a tick or a leader change, the ones worth retrying)
        to the leader: into our batch if we lead, else one forward message."""
        host = self.host
        core = host.raft
        todo, self.to_submit = self.to_submit, []
        if host.cut_off:  # answered at once: nothing was sent, nothing is applied
            for w in todo:
                if not w.submitted:
                    w.settle()
            todo = [w for w in todo if w.submitted]
        if self.rescan:
            self.rescan = False
            now = trio.current_time()
            retry_after = host.settings.election_timeout
            queued = {id(w) for w in todo}
            for w in self.pending.values():
                if w.done or id(w) in queued or (w.settled and not w.submitted):
                    continue  # (answered CLUSTERDOWN, "nothing applied": must stay unsent)
                if not w.submitted:
                    todo.append(w)
                elif core.role is Role.LEADER:
                    if w.leader != host.id or w.term != core.term:
                        todo.append(w)
                        host.stats.writes_retried += 1
                elif w.leader != core.leader_id or now - w.sent_at >= retry_after:
                    todo.append(w)
                    host.stats.writes_retried += 1
        if not todo:
            return
        leader = core.leader_id
        floor = self.floor()
        if core.role is Role.LEADER:
            batch = self.batch
            for w in todo:
                batch.append(_tuple_new(OpItem, (w.rid, floor, w.op)))
                w.submitted, w.leader, w.term = True, host.id, core.term
        elif leader is not None and leader != host.id:
            now = trio.current_time()
            for w in todo:
                w.submitted, w.leader, w.term, w.sent_at = True, leader, core.term, now
            host.stats.writes_forwarded += len(todo)
            step = host.settings.max_batch_items
            for lo in range(0, len(todo), step):
                msg = forward.ForwardWrites(
                    floor, tuple((w.rid, w.encoded()) for w in todo[lo : lo + step])
                )
                host.send_later(leader, MessageKind.CLIENT_REQUEST, forward.encode(msg))
        # else: no leader known; the rescan after the next tick / leader change picks them up

    def new_rid(self) -> RequestId:
        """A request id for an op the node itself proposes (an eviction): nobody waits."""
        self.seq += 1
        return RequestId(self.host.id, self.host.incarnation, self.seq)

    def floor(self) -> int:
        for seq in self.pending:
            return seq  # insertion order == seq order: the first key is the oldest pending
        return self.seq + 1

    def propose_batch(self) -> None:
        """Propose the batch as entries of at most `max_batch_items` / `max_batch_bytes`."""
        host = self.host
        core = host.raft
        if not self.batch:
            return
        if core.role is not Role.LEADER:
            self.drop_batch()  # forwarded items are retried by their origins, ours by rescan
            return
        s = host.settings
        items = self.batch
        if host.memory.maxmemory:  # evictions in front, refused writes replaced (memory.py)
            items = host.memory.admit(items, host.state.keyspace, core.term,
                                      host.state.last_time_ms, self.new_rid, self.floor())
        start = 0
        while start < len(items):
            end, size = start, 0
            while end < len(items) and end - start < s.max_batch_items:
                item = items[end]
                size += _op_size(item.op) if type(item) is OpItem else 32
                end += 1
                if size >= s.max_batch_bytes:
                    break
            chunk = items[start:end]
            now = max(host.clock_ms(), self.last_proposed_ms, host.state.last_time_ms)
            data = entry_codec.encode_items(now, chunk)
            try:
                index = core.propose(data)
            except ProposalDropped:
                break  # a transfer is in progress: keep the rest for a later pass
            except NotLeader:
                start = len(items)
                break
            self.last_proposed_ms = now
            self.proposed[index] = (data, entry_codec.Batch(now, tuple(chunk)))
            n_ops = sum(1 for i in chunk if type(i) is OpItem)
            host.stats.note_batch(n_ops)
            start = end
        self.batch = items[start:]
        self.batch_has_expire = any(type(i) is ExpireItem for i in self.batch)

    def drop_batch(self) -> None:
        self.batch = []
        self.batch_has_expire = False

    def add_expire(self, limit: int) -> bool:
        """Leader: add an active-expiry item unless one is waiting already."""
        if self.batch_has_expire:
            return False
        self.batch.append(ExpireItem(limit))
        self.batch_has_expire = True
        return True

    def add_peer(self, node: int, address: str) -> None:
        self.batch.append(PeerItem(node, address))

    def on_role_change(self, leader: bool) -> None:
        self.rescan = True
        if not leader:
            self.proposed.clear()  # what is left may never commit (or commit elsewhere)
            self.drop_batch()

    def take_proposed(self, index: int) -> tuple[bytes, entry_codec.Batch] | None:
        return self.proposed.pop(index, None) if self.proposed else None

    def settle_applied(self, applied: Iterable[Applied]) -> None:
        """Our writes among an entry's outcomes get their replies."""
        writes = self.pending
        for a in applied:
            w = writes.get(a.rid[2])
            if w is not None and not w.done:
                w.reply, w.done = a.reply, True
                w.settle()

    def on_forwarded(self, sender: int, msg: forward.ForwardWrites) -> None:
        """A follower's writes: into our batch if we lead, else rejected (it retries)."""
        host = self.host
        core = host.raft
        if core.role is Role.LEADER:
            self.batch.extend(OpItem(rid, msg.floor, _held(op)) for rid, op in msg.writes)
        else:
            reply = forward.Rejected(tuple(r for r, _ in msg.writes), None, core.leader_id)
            host.send_later(sender, MessageKind.CLIENT_REPLY, forward.encode(reply))
        host.kick()

    def on_rejected(self, rids: Iterable[RequestId]) -> None:
        incarnation = self.host.incarnation
        for rid in rids:
            w = self.pending.get(rid.seq) if rid.incarnation == incarnation else None
            if w is not None and not w.done:
                w.sent_at = -math.inf  # re-forward at the next tick, to whoever leads then
                w.leader = None

    def release(self) -> None:
        """The node stops: no deadline task any more, wake every waiter."""
        for w in list(self.pending.values()):
            w.settle()

    async def deadlines(self) -> None:
        """Time out waiting writes. Every write gets the same timeout when it is submitted,
        so `pending` (in submission order) is also in deadline order: only its head is looked
        at, and the task sleeps until the next deadline."""
        timeout = self.host.settings.request_timeout
        self._now = trio.lowlevel.current_clock().current_time  # this run's clock
        while True:
            now = trio.current_time()
            wake = now + timeout  # a write submitted later has a later deadline than this
            overdue = []
            for w in self.pending.values():
                if w.deadline > now:
                    wake = w.deadline
                    break
                overdue.append(w)
            for w in overdue:  # (a callback may forget its write: not while iterating)
                w.settle()  # (done or not: the waiter looks at w.done)
            await trio.sleep_until(wake)


_tuple_new = tuple.__new__
"""A NamedTuple built with `tuple.__new__(Cls, values)`: its own `__new__` is a Python-level
lambda, a visible share of the leader's submit (two per client write: its id and its item)."""


def _held(data: bytes) -> WriteOp | TxnOp | bytes:
    """A forwarded op as the leader proposes it: decoded (embedded in the entry), or its
    bytes if it is not a write we can decode (every replica then answers the same error)."""
    try:
        op = decode_op(data)
    except OpDecodeError:
        return data
    return data if isinstance(op, ReadOp) else op


def _op_size(op: WriteOp | TxnOp | bytes) -> int:
    """About the bytes `op` adds to an entry (the batch size bound)."""
    if isinstance(op, WriteOp):
        size = 16
        for arg in op.argv:  # compiled, a plain loop: no map object, no generic sum
            size += len(arg) + 2
        return size
    if isinstance(op, TxnOp):
        return sum(sum(map(len, c)) + 2 * len(c) for c in op.commands) + 24 * len(op.watches) + 16
    return len(op) + 32
