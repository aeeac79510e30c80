"""Node-to-node client traffic on the mesh (CLIENT_REQUEST / CLIENT_REPLY payloads, CBOR).

Writes: a follower forwards all the writes of one driver pass as ONE `ForwardWrites` message
(so they land in one leader batch) and expects NO reply message: apply is
deterministic, so the origin computes the reply itself when it applies the entry holding its
request id. The leader answers only when it cannot take the write (`Rejected`: not the leader),
so the origin re-forwards at once instead of waiting for its retry timer.

Lease reads: a follower forwards `ForwardRead`; the leader serves it under its lease (or with a
ReadIndex) and answers with `ReadReply` (the encoded reply) or `Rejected`.
"""

from __future__ import annotations

import attrs
import cbor2

from aspen.cluster.entry import RequestId

VERSION = 1
_WRITE, _READ, _READ_REPLY, _REJECTED = 0, 1, 2, 3


class ForwardDecodeError(ValueError):
    pass


@attrs.frozen
class ForwardWrites:
    """Writes for the leader's next batch: (request id, kv op bytes) pairs, and the origin's
    floor (its lowest outstanding sequence number)."""

    floor: int
    writes: tuple[tuple[RequestId, bytes], ...]


@attrs.frozen
class ForwardRead:
    token: bytes
    op: bytes


@attrs.frozen
class ReadReply:
    token: bytes
    reply: bytes  # replies.encode(value)


@attrs.frozen
class Rejected:
    """The receiver is not the leader; `rids` (writes) or `token` (a read) name the requests."""

    rids: tuple[RequestId, ...]
    token: bytes | None
    leader_hint: int | None


Forwarded = ForwardWrites | ForwardRead | ReadReply | Rejected


def encode(msg: Forwarded) -> bytes:
    if type(msg) is ForwardWrites:
        body: list[object] = [_WRITE, msg.floor, [[r.to_wire(), op] for r, op in msg.writes]]
    elif type(msg) is ForwardRead:
        body = [_READ, msg.token, msg.op]
    elif type(msg) is ReadReply:
        body = [_READ_REPLY, msg.token, msg.reply]
    elif type(msg) is Rejected:
        body = [
            _REJECTED,
            [r.to_wire() for r in msg.rids],
            msg.token,
            msg.leader_hint,
        ]
    else:
        raise TypeError(f"not a forwarded message: {msg!r}")
    return cbor2.dumps([VERSION, *body])


def decode(data: bytes) -> Forwarded:
    try:
        obj = cbor2.loads(data)
    except Exception as exc:
        raise ForwardDecodeError(f"not CBOR: {exc}") from None
    if not isinstance(obj, list) or len(obj) < 2 or obj[0] != VERSION:
        raise ForwardDecodeError("unknown forwarded message version or shape")
    kind, rest = obj[1], obj[2:]
    try:
        if kind == _WRITE and len(rest) == 2 and type(rest[0]) is int:
            writes = []
            for pair in rest[1]:
                if not isinstance(pair, list) or len(pair) != 2 or type(pair[1]) is not bytes:
                    raise ForwardDecodeError(f"bad forwarded write {pair!r}")
                writes.append((RequestId.from_wire(pair[0]), pair[1]))
            return ForwardWrites(rest[0], tuple(writes))
        if kind == _READ and len(rest) == 2 and all(type(v) is bytes for v in rest):
            return ForwardRead(rest[0], rest[1])
        if kind == _READ_REPLY and len(rest) == 2 and all(type(v) is bytes for v in rest):
            return ReadReply(rest[0], rest[1])
        if kind == _REJECTED and len(rest) == 3:
            rids = tuple(RequestId.from_wire(r) for r in rest[0])
            token = rest[1] if type(rest[1]) is bytes else None
            hint = rest[2] if type(rest[2]) is int else None
            return Rejected(rids, token, hint)
    except (ValueError, TypeError) as exc:
        raise ForwardDecodeError(str(exc)) from None
    raise ForwardDecodeError(f"bad forwarded message kind {kind!r}")
