"""Node-to-node client traffic on the mesh (CLIENT_REQUEST / CLIENT_REPLY payloads, CBOR).

Writes: a follower forwards `ForwardWrite` to the leader and expects NO reply message: apply is
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
class ForwardWrite:
    rid: RequestId
    floor: int
    op: bytes


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
    """The receiver is not the leader; `rid` (a write) or `token` (a read) names the request."""

    rid: RequestId | None
    token: bytes | None
    leader_hint: int | None


Forwarded = ForwardWrite | ForwardRead | ReadReply | Rejected


def encode(msg: Forwarded) -> bytes:
    if type(msg) is ForwardWrite:
        body: list[object] = [_WRITE, msg.rid.to_wire(), msg.floor, msg.op]
    elif type(msg) is ForwardRead:
        body = [_READ, msg.token, msg.op]
    elif type(msg) is ReadReply:
        body = [_READ_REPLY, msg.token, msg.reply]
    elif type(msg) is Rejected:
        body = [
            _REJECTED,
            msg.rid.to_wire() if msg.rid is not None else None,
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
        if kind == _WRITE and len(rest) == 3 and type(rest[1]) is int and type(rest[2]) is bytes:
            return ForwardWrite(RequestId.from_wire(rest[0]), rest[1], rest[2])
        if kind == _READ and len(rest) == 2 and all(type(v) is bytes for v in rest):
            return ForwardRead(rest[0], rest[1])
        if kind == _READ_REPLY and len(rest) == 2 and all(type(v) is bytes for v in rest):
            return ReadReply(rest[0], rest[1])
        if kind == _REJECTED and len(rest) == 3:
            rid = RequestId.from_wire(rest[0]) if rest[0] is not None else None
            token = rest[1] if type(rest[1]) is bytes else None
            hint = rest[2] if type(rest[2]) is int else None
            return Rejected(rid, token, hint)
    except ValueError as exc:
        raise ForwardDecodeError(str(exc)) from None
    raise ForwardDecodeError(f"bad forwarded message kind {kind!r}")
