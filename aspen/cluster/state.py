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

from collections.abc import Iterable
from typing import NamedTuple

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


class Applied(NamedTuple):
    """One client write's outcome, as the apply loop reports it to the origin (a NamedTuple:
    one is built per reported op)."""

    rid: RequestId
    reply: object
    duplicate: bool


class ReplicatedState:
    def __init__(self, keyspace: Keyspace | None = None, databases: int | None = None) -> None:
        self.keyspace = keyspace if keyspace is not None else Keyspace()
        if databases is not None:  # the node's `databases` setting (not in snapshots)
            self.keyspace.databases = databases
        self.sessions: dict[tuple[int, int], _Session] = {}
        self.peers: dict[int, str] = {}
        self.last_time_ms = 0
        self.applied_index = 0
        self.duplicates = 0  # requests applied again and answered from the table (a stat)

    # -- apply ------------------------------------------------------------------------------

    def apply_batch(
        self, index: int, batch: Batch, mine: tuple[int, int] | None = None
    ) -> list[Applied]:
        """Apply one committed entry's batch; the outcome of its client ops.

        With `mine` = (origin, incarnation) only the ops of that origin are reported (a
        node waits only for its own; the others' outcomes are not worth an object each);
        without it every op is. `duplicates` counts the requests found applied already."""
        now = max(batch.leader_time_ms, self.last_time_ms)  # monotonic even if a leader erred
        self.last_time_ms = now
        out: list[Applied] = []
        keyspace = self.keyspace
        sessions = self.sessions
        seed = index * 65536
        for pos, item in enumerate(batch.items):
            if type(item) is OpItem:
                rid = item.rid
                key = (rid[0], rid[1])
                session = sessions.get(key)
                if session is None:
                    session = self._session(key)
                seq = rid[2]
                done = session.replies
                if seq < session.floor or seq in done:
                    reply = DUPLICATE_FORGOTTEN if seq < session.floor else done[seq]
                    self.duplicates += 1
                    if item.floor > session.floor:
                        self._advance_floor(session, item.floor)
                    if mine is None or key == mine:
                        out.append(Applied(rid, reply, True))
                    continue
                op: Op | bytes = item.op
                if isinstance(op, bytes):
                    reply = self._apply_encoded(op, now, seed + pos)
                else:
                    reply = keyspace.execute(op, now, seed + pos)
                done[seq] = reply
                if item.floor > session.floor:
                    self._advance_floor(session, item.floor)
                if len(done) > MAX_REPLIES_PER_SESSION:
                    self._trim(session)
                if mine is None or key == mine:
                    out.append(Applied(rid, reply, False))
            elif type(item) is ExpireItem:
                keyspace.expire_some(now, item.limit)
            elif type(item) is PeerItem:
                self.peers[item.node_id] = item.address
        self.applied_index = index
        return out

    def _apply_encoded(self, data: bytes, now: int, seed: int) -> object:
        """An op that the entry holds as kv op bytes (version 1 entries, undecodable ops)."""
        try:
            op = decode_op(data)
        except OpDecodeError as exc:
            return Error(f"ERR bad replicated op: {exc}")
        if isinstance(op, ReadOp):
            return Error("ERR a read cannot be replicated")
        return self.keyspace.execute(op, now, seed)

    def skip(self, index: int) -> None:
        """A committed entry with no client data (no-op, membership)."""
        self.applied_index = index

    @staticmethod
    def _trim(session: _Session) -> None:
        excess = len(session.replies) - MAX_REPLIES_PER_SESSION
        for seq in sorted(session.replies)[:excess]:
            del session.replies[seq]
            session.floor = max(session.floor, seq + 1)

    def _session(self, key: tuple[int, int]) -> _Session:
        origin = key[0]
        session = self.sessions[key] = _Session()
        same_origin = sorted(inc for o, inc in self.sessions if o == origin)
        for inc in same_origin[: max(0, len(same_origin) - MAX_INCARNATIONS_PER_ORIGIN)]:
            del self.sessions[(origin, inc)]
        return session

    @staticmethod
    def _advance_floor(session: _Session, floor: int) -> None:
        """Forget the replies below `floor`, oldest first.

        Replies are inserted in about seq order, so the stale ones are at the front: stop at
        the first one still wanted instead of scanning all (~one per client in flight, at
        every op). A reply stranded behind it (a retry applied late) is dropped on a later
        pass; until then nothing can return it (`seq < floor` is checked first) and
        snapshots leave it out."""
        if floor > session.floor:
            session.floor = floor
            done = session.replies
            stale = []
            for seq in done:
                if seq >= floor:
                    break
                stale.append(seq)
            for seq in stale:
                del done[seq]

    # -- snapshots --------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        sessions = [
            [
                origin,
                inc,
                s.floor,
                [
                    [seq, replies.to_data(r)]
                    for seq, r in sorted(s.replies.items())
                    if seq >= s.floor
                ],
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
    def restore(cls, data: bytes, databases: int | None = None) -> ReplicatedState:
        obj = cbor2.loads(data)
        if not isinstance(obj, list) or len(obj) != 6 or obj[0] != SNAPSHOT_VERSION:
            raise ValueError("not a version 1 Aspen state snapshot")
        _, applied, last_time, peers, sessions, keyspace = obj
        state = cls(Keyspace.restore(keyspace), databases)
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
