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
from typing import Any, NamedTuple

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


def _prune(session: _Session) -> None:
    """Forget the replies below the session's floor, oldest first.

    Replies are inserted in about seq order, so the stale ones are at the front: stop at
    the first one still wanted instead of scanning all. A reply stranded behind it (a retry
    applied late) is dropped on a later pass; until then nothing can return it (`seq <
    floor` is checked first) and snapshots leave it out. The floor only grows, and a reply
    is only added at or above the floor of its time: pruning once after a run of ops
    removes what pruning after each op of the run would have (the same prefix)."""
    floor = session.floor
    done = session.replies
    stale = []
    for seq in done:
        if seq >= floor:
            break
        stale.append(seq)
    for seq in stale:
        del done[seq]


_NO_SESSION = _Session()
_new = tuple.__new__


class Applied(NamedTuple):
    """One client write's outcome, as the apply loop reports it to the origin (a NamedTuple:
    one is built per reported op)."""

    rid: RequestId
    reply: "object"  # noqa: UP037 (quoted: mypyc looks an unquoted `object` up in the module)
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
        without it every op is. `duplicates` counts the requests found applied already.

        A write is an `OpItem` (the leader's own batch, `entry.decode`) or a `WireWrite`
        (`entry.decode_for_apply`, a follower): the same fields, the same outcome. The
        session of a run of ops of one (origin, incarnation) is looked up once (a batch is
        mostly one node's clients), and the replies below a raised floor are dropped when
        the run ends (`_prune`), not at every op: nothing can read them meanwhile (`seq <
        floor` is checked first) and the table ends the same (docs/architecture.md)."""
        now = max(batch.leader_time_ms, self.last_time_ms)  # monotonic even if a leader erred
        self.last_time_ms = now
        out: list[Applied] = []
        keyspace = self.keyspace
        sessions = self.sessions
        seed = index * 65536
        origin: int | None = None  # the run's session: none yet
        incarnation: int | None = None
        session = _NO_SESSION  # (replaced before its first use: `origin` is None)
        done = session.replies
        report = stale = False
        items: Any = batch.items  # typed per kind below (no cast() call per op)
        o: int
        i: int
        seq: int
        floor: int
        rid: RequestId | None
        op: Op | bytes | None
        try:
            for pos, item in enumerate(items):
                kind = type(item)
                if kind is list:  # [KIND_WRITE, origin, incarnation, seq, floor, argv(, db)]
                    o, i, seq, floor = item[1], item[2], item[3], item[4]
                    rid = op = None
                elif kind is OpItem:
                    rid, floor, op = item
                    o, i, seq = rid
                elif kind is ExpireItem:
                    keyspace.expire_some(now, item.limit)
                    continue
                elif kind is PeerItem:
                    self.peers[item.node_id] = item.address
                    continue
                else:
                    continue
                if o != origin or i != incarnation:
                    if stale:
                        _prune(session)
                        stale = False
                    origin, incarnation = o, i
                    key = (o, i)
                    found = sessions.get(key)
                    if found is not None:
                        session = found
                    else:
                        session = self._session(key)
                        if key not in sessions:
                            # An incarnation older than the ones kept: dropped at once, so
                            # its next op gets a new session again (as it always did).
                            origin = None
                    done = session.replies
                    report = mine is None or key == mine
                if seq < session.floor or seq in done:
                    reply = DUPLICATE_FORGOTTEN if seq < session.floor else done[seq]
                    self.duplicates += 1
                    if floor > session.floor:
                        session.floor = floor
                        stale = True
                    if report:
                        rid = rid or _new(RequestId, (o, i, seq))
                        out.append(_new(Applied, (rid, reply, True)))
                    continue
                if op is None:
                    db = item[6] if len(item) == 7 else 0
                    reply = keyspace.execute_write(tuple(item[5]), db, now, seed + pos)
                elif isinstance(op, bytes):
                    reply = self._apply_encoded(op, now, seed + pos)
                else:
                    reply = keyspace.execute(op, now, seed + pos)
                done[seq] = reply
                if floor > session.floor:
                    session.floor = floor
                    stale = True
                if len(done) > MAX_REPLIES_PER_SESSION:
                    if stale:
                        _prune(session)
                        stale = False
                    if len(done) > MAX_REPLIES_PER_SESSION:
                        self._trim(session)
                if report:  # (tuple.__new__: a NamedTuple's own __new__ is a Python function)
                    rid = rid or _new(RequestId, (o, i, seq))
                    out.append(_new(Applied, (rid, reply, False)))
        finally:
            if stale:
                _prune(session)
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
