"""What a client request is while the node works on it: shared by the node and the layers that
hand it requests (the connection, the blocking service), so no private name crosses modules.

`WriteRequest` is the origin's record of one client write, from `ClusterNode.submit_write`
until it is applied or given up; `ReadIndexWaiter` one linearizable read waiting for its read
index. (`ClusterConnection` and `BlockingService` name what they need from the node as
Protocols, `ClientNode` and `BlockingNode`, so they do not import `ClusterNode`.)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import trio

from aspen.cluster.entry import RequestId
from aspen.kv.ops import TxnOp, WriteOp


class WriteRequest:
    """A client write waiting to be applied (the origin's side)."""

    __slots__ = (
        "callback", "deadline", "done", "event", "leader", "op", "reply", "rid", "sent_at",
        "settled", "submitted", "term",
    )

    def __init__(self, rid: RequestId, op: WriteOp | TxnOp | bytes, deadline: float) -> None:
        self.rid = rid
        self.op = op  # `normalised` (what the entry decodes to), else the op's encoding
        self.deadline = deadline  # set when submitted; `WritePath.deadlines` enforces it
        self.settled = False  # applied or given up: `reply`/`done` say which
        self.event: trio.Event | None = None  # made by the first waiter (often none waits)
        # Called once when the write settles (applied or given up), instead of waking a
        # waiter: a connection's detached reply (`aspen.resp.server._Batch.run`).
        self.callback: Callable[[], None] | None = None
        self.reply: object = None
        self.done = False
        self.submitted = False  # reached (or was sent to) a leader at least once
        self.leader: int | None = None  # where it was last submitted
        self.term = 0
        self.sent_at = -math.inf

    def settle(self) -> None:
        """Wake whoever waits for this write: its event, and its callback once."""
        self.settled = True
        if self.event is not None:
            self.event.set()
        callback = self.callback
        if callback is not None:
            self.callback = None
            callback()

    async def wait(self) -> None:
        """Until the write settles. No checkpoint if it is settled already: `Event.wait` on
        a set event is a trip through the scheduler, for every write of a pipeline behind
        the first (they are applied together)."""
        if not self.settled:
            if self.event is None:
                self.event = trio.Event()
            await self.event.wait()

    def encoded(self) -> bytes:
        """The op as a forward carries it (kv op encoding); only a follower needs it."""
        op = self.op
        return op if isinstance(op, bytes) else op.encode()


class ReadIndexWaiter:
    """A linearizable read waiting for its read index (`ClusterNode.start_read`): `index` is
    set (None: not confirmed) and `fired` (and `event`) by the driver when the core answers."""

    __slots__ = ("_event", "callback", "fired", "index")

    def __init__(self) -> None:
        self._event: trio.Event | None = None
        self.fired = False  # the answer is in
        self.index: int | None = None
        # Called once, right after `fired` is set, instead of waking a task: a connection's
        # detached read (`aspen.cluster.connection._PendingRead.detach`).
        self.callback: Callable[[], None] | None = None

    @property
    def event(self) -> trio.Event:
        """Set once the answer is in. Made by its first user: a detached read (most reads of
        a pipeline) never waits, and a trio.Event per read was a visible share of a GET."""
        event = self._event
        if event is None:
            event = self._event = trio.Event()
            if self.fired:
                event.set()
        return event

    def fire(self) -> None:
        """The answer is in (`index`, or None): wake the waiter and call the callback once."""
        self.fired = True
        if self._event is not None:
            self._event.set()
        callback = self.callback
        if callback is not None:
            self.callback = None
            callback()
