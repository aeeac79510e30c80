"""The payload of one NORMAL log entry: a batch of client ops stamped with the leader's time.

Wire form (CBOR): ``[VERSION, leader_time_ms, [item, ...]]`` where an item is one of

    [KIND_OP, [origin, incarnation, seq], floor, op_bytes]   a client write (kv op encoding)
    [KIND_EXPIRE, limit]                                     active expiry, proposed by the leader
    [KIND_PEER, node_id, address]                            address book: how to reach a node

Request ids are (origin node, incarnation, sequence): the incarnation changes at every start
of a node, so ids are unique across restarts without persisting a counter. `floor` is the
lowest sequence the origin still waits for: the replicated dedup table forgets everything of
that origin below it (the origin will never retry those).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import attrs
import cbor2

VERSION = 1
KIND_OP, KIND_EXPIRE, KIND_PEER = 0, 1, 2


class EntryDecodeError(ValueError):
    """An entry payload that is not a batch of a version we understand."""


class RequestId(NamedTuple):
    """(origin, incarnation, seq); a NamedTuple: built for every op of every applied entry."""

    origin: int
    incarnation: int
    seq: int

    def to_wire(self) -> list[int]:
        return [self.origin, self.incarnation, self.seq]

    @classmethod
    def from_wire(cls, value: object) -> RequestId:
        if type(value) is list and len(value) == 3:
            a, b, c = value
            if type(a) is int and type(b) is int and type(c) is int and min(a, b, c) >= 0:
                return cls(a, b, c)
        raise EntryDecodeError(f"bad request id {value!r}")


class OpItem(NamedTuple):
    """A client write: `op` is a kv op's encoding (WriteOp or TxnOp)."""

    rid: RequestId
    floor: int
    op: bytes


class ExpireItem(NamedTuple):
    """Drop up to `limit` keys whose deadline is before the entry's time."""

    limit: int


class PeerItem(NamedTuple):
    """Record (or change) the raft address of a node, so every replica can reach it."""

    node_id: int
    address: str


Item = OpItem | ExpireItem | PeerItem


@attrs.frozen
class Batch:
    leader_time_ms: int
    items: tuple[Item, ...]


def encode_items(leader_time_ms: int, items: Sequence[Item]) -> bytes:
    wire: list[object] = []
    for item in items:
        if type(item) is OpItem:
            wire.append([KIND_OP, item.rid.to_wire(), item.floor, item.op])
        elif type(item) is ExpireItem:
            wire.append([KIND_EXPIRE, item.limit])
        elif type(item) is PeerItem:
            wire.append([KIND_PEER, item.node_id, item.address])
        else:
            raise TypeError(f"not a batch item: {item!r}")
    return cbor2.dumps([VERSION, leader_time_ms, wire])


def decode(data: bytes) -> Batch:
    try:
        obj = cbor2.loads(data)
    except Exception as exc:  # cbor2 raises several types on garbage
        raise EntryDecodeError(f"entry payload is not CBOR: {exc}") from None
    if not isinstance(obj, list) or len(obj) != 3 or obj[0] != VERSION:
        raise EntryDecodeError("unknown entry payload version or shape")
    _, time_ms, wire = obj
    if type(time_ms) is not int or not isinstance(wire, list):
        raise EntryDecodeError("bad entry header")
    items: list[Item] = []
    for raw in wire:
        if not isinstance(raw, list) or not raw:
            raise EntryDecodeError(f"bad batch item {raw!r}")
        kind = raw[0]
        if kind == KIND_OP and len(raw) == 4 and type(raw[2]) is int and type(raw[3]) is bytes:
            items.append(OpItem(RequestId.from_wire(raw[1]), raw[2], raw[3]))
        elif kind == KIND_EXPIRE and len(raw) == 2 and type(raw[1]) is int:
            items.append(ExpireItem(raw[1]))
        elif kind == KIND_PEER and len(raw) == 3 and type(raw[1]) is int and type(raw[2]) is str:
            items.append(PeerItem(raw[1], raw[2]))
        else:
            raise EntryDecodeError(f"bad batch item {raw!r}")
    return Batch(time_ms, tuple(items))
