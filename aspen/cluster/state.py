"""The replicated state machine: keyspace + request dedup table + address book + time.

Everything here is a pure function of the applied log (and a snapshot of it): no clock, no
randomness, no I/O. `apply_batch` is what every replica runs for each committed NORMAL entry.

Dedup: a write is identified by its RequestId (origin, incarnation, seq). An origin retries a
request whose outcome it does not know (forward lost, leader died) with the SAME id; the table
maps (origin, incarnation) -> {seq: reply}, so the second copy is not applied again and gets
the first one's reply. Each request carries the origin's `floor` (its lowest outstanding seq):
replies below it are forgotten, which keeps the table bounded without any clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import attrs
import cbor2

from aspen.cluster import replies
from aspen.cluster.entry import Batch, ExpireItem, OpItem, PeerItem, RequestId
from aspen.kv.keyspace import Keyspace
from aspen.kv.ops import Op, OpDecodeError, ReadOp
from aspen.kv.ops import decode as decode_op
from aspen.resp.values import Error

SNAPSHOT_VERSION = 1
MAX_INCARNATIONS_PER_ORIGIN = 4
"""Older incarnations of a node are dead processes: nothing retries their requests."""
MAX_REPLIES_PER_SESSION = 65536
"""Safety cap if an origin's floor never advances (it always does in practice)."""
DUPLICATE_FORGOTTEN = Error("ERR duplicate request whose reply was already discarded")


@attrs.define
class _Session:
    floor: int = 0
    replies: dict[int, object] = attrs.Factory(dict)


@attrs.frozen
class Applied:
    """One client write's outcome, as the apply loop reports it to the origin."""

    rid: RequestId
    reply: object
    duplicate: bool


class ReplicatedState:
    def __init__(self, keyspace: Keyspace | None = None) -> None:
        self.keyspace = keyspace if keyspace is not None else Keyspace()
        self.sessions: dict[tuple[int, int], _Session] = {}
        self.peers: dict[int, str] = {}
        self.last_time_ms = 0
        self.applied_index = 0

    # -- apply ------------------------------------------------------------------------------

    def apply_batch(
        self, index: int, batch: Batch, known: Callable[[RequestId], Op | None] | None = None
    ) -> list[Applied]:
        """Apply one committed entry's batch; the outcome of every client op in it.

        `known(rid)` may give the already decoded op of a request (the origin still holds
        it: decoding it again is a large share of applying it); it must be exactly what the
        item's bytes decode to."""
        now = max(batch.leader_time_ms, self.last_time_ms)  # monotonic even if a leader erred
        self.last_time_ms = now
        out: list[Applied] = []
        keyspace = self.keyspace
        for pos, item in enumerate(batch.items):
            if type(item) is OpItem:
                out.append(self._apply_op(item, now, index * 65536 + pos, known))
            elif type(item) is ExpireItem:
                keyspace.expire_some(now, item.limit)
            elif type(item) is PeerItem:
                self.peers[item.node_id] = item.address
        self.applied_index = index
        return out

    def skip(self, index: int) -> None:
        """A committed entry with no client data (no-op, membership)."""
        self.applied_index = index

    def _apply_op(
        self,
        item: OpItem,
        now: int,
        seed: int,
        known: Callable[[RequestId], Op | None] | None = None,
    ) -> Applied:
        rid = item.rid
        session = self._session(rid)
        reply: object
        if rid.seq < session.floor or rid.seq in session.replies:
            reply = session.replies.get(rid.seq, DUPLICATE_FORGOTTEN)
            self._advance_floor(session, item.floor)
            return Applied(rid, reply, True)
        op = known(rid) if known is not None else None
        try:
            if op is None:
                op = decode_op(item.op)
        except OpDecodeError as exc:
            reply = Error(f"ERR bad replicated op: {exc}")
        else:
            if type(op) is ReadOp:
                reply = Error("ERR a read cannot be replicated")
            else:
                reply = self.keyspace.execute(op, now, seed)
        session.replies[rid.seq] = reply
        self._advance_floor(session, item.floor)
        if len(session.replies) > MAX_REPLIES_PER_SESSION:
            for seq in sorted(session.replies)[: len(session.replies) - MAX_REPLIES_PER_SESSION]:
                del session.replies[seq]
                session.floor = max(session.floor, seq + 1)
        return Applied(rid, reply, False)

    def _session(self, rid: RequestId) -> _Session:
        key = (rid.origin, rid.incarnation)
        session = self.sessions.get(key)
        if session is None:
            session = self.sessions[key] = _Session()
            same_origin = sorted(inc for origin, inc in self.sessions if origin == rid.origin)
            for inc in same_origin[: max(0, len(same_origin) - MAX_INCARNATIONS_PER_ORIGIN)]:
                del self.sessions[(rid.origin, inc)]
        return session

    @staticmethod
    def _advance_floor(session: _Session, floor: int) -> None:
        if floor > session.floor:
            session.floor = floor
            stale = [seq for seq in session.replies if seq < floor]
            for seq in stale:
                del session.replies[seq]

    # -- snapshots --------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        sessions = [
            [
                origin,
                inc,
                s.floor,
                [[seq, replies.to_data(r)] for seq, r in sorted(s.replies.items())],
            ]
            for (origin, inc), s in sorted(self.sessions.items())
        ]
        return cbor2.dumps(
            [
                SNAPSHOT_VERSION,
                self.applied_index,
                self.last_time_ms,
                sorted(self.peers.items()),
                sessions,
                self.keyspace.snapshot(),
            ]
        )

    @classmethod
    def restore(cls, data: bytes) -> ReplicatedState:
        obj = cbor2.loads(data)
        if not isinstance(obj, list) or len(obj) != 6 or obj[0] != SNAPSHOT_VERSION:
            raise ValueError("not a version 1 Aspen state snapshot")
        _, applied, last_time, peers, sessions, keyspace = obj
        state = cls(Keyspace.restore(keyspace))
        state.applied_index = applied
        state.last_time_ms = last_time
        state.peers = {int(n): str(a) for n, a in peers}
        for origin, inc, floor, pairs in sessions:
            state.sessions[(origin, inc)] = _Session(
                floor, {seq: replies.from_data(r) for seq, r in pairs}
            )
        return state

    def digest(self) -> bytes:
        """The keyspace digest: what must be equal on every replica at the same index."""
        return self.keyspace.digest()

    def known_peers(self) -> Iterable[tuple[int, str]]:
        return self.peers.items()
