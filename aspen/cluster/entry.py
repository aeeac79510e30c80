"""The payload of one NORMAL log entry: a batch of client ops stamped with the leader's time.

Wire form (CBOR): ``[VERSION, leader_time_ms, [item, ...]]`` where an item is one of

    [KIND_WRITE, origin, incarnation, seq, floor, argv(, db)]   a client write (WriteOp)
    [KIND_TXN, origin, incarnation, seq, floor, commands, watches(, db)]   MULTI/EXEC (TxnOp)
    [KIND_OP, [origin, incarnation, seq], floor, op_bytes]      a client op as kv op bytes
    [KIND_EXPIRE, limit]                                        active expiry, by the leader
    [KIND_PEER, node_id, address]                               address book: reaching a node

Version 2 embeds an op in the entry (KIND_WRITE, KIND_TXN): one CBOR document per entry, so
a follower decodes each op once; version 1 (still read from disk) only had KIND_OP, whose op
is a second CBOR document. Version 2 keeps KIND_OP for an op the leader could not decode (a
forwarded op from a newer or broken node): every replica then answers it with the same error.

`db` (the op's database, `aspen.kv.ops`) is there only when it is not 0: entries of database
0 are byte for byte what they were before databases existed, and old entries read as database 0.

Request ids are (origin node, incarnation, sequence): the incarnation changes at every start
of a node, so ids are unique across restarts without persisting a counter. `floor` is the
lowest sequence the origin still waits for: the replicated dedup table forgets everything of
that origin below it (the origin will never retry those).

`encode_items` writes a KIND_WRITE item's CBOR by hand (and leaves every other item, and any
value of unusual type or size, to cbor2): cbor2's encoder spent ~0.95 us per SET on the leader
(a list built per item, two `Mapping` checks per list in cbor2), the compiled hand-written one
~0.25 us, for the very same bytes (tests/cluster/test_entry_encoder.py; docs/benchmarks.md,
"Issue 20, round 5"). Decoding stays with cbor2.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, NamedTuple, cast

import attrs
import cbor2

from aspen.kv.ops import OpDecodeError, TxnOp, WriteOp, db_from_wire, txn_from_wire

VERSION = 2
VERSIONS = (1, 2)
KIND_OP, KIND_EXPIRE, KIND_PEER, KIND_WRITE, KIND_TXN = 0, 1, 2, 3, 4


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
    """A client write: `op` is the op itself, exactly as decoding gives it back
    (`aspen.kv.ops.normalised`), or its bytes (version 1 entries, undecodable ops)."""

    rid: RequestId
    floor: int
    op: WriteOp | TxnOp | bytes


class ExpireItem(NamedTuple):
    """Drop up to `limit` keys whose deadline is before the entry's time."""

    limit: int


class PeerItem(NamedTuple):
    """Record (or change) the raft address of a node, so every replica can reach it."""

    node_id: int
    address: str


Item = OpItem | ExpireItem | PeerItem

WireWrite = list[Any]
"""A KIND_WRITE item as CBOR decoded it, checked by `decode_for_apply`:
``[KIND_WRITE, origin, incarnation, seq, floor, argv(, db)]``: origin, incarnation and seq
ints >= 0, floor an int, argv a list of bytes, db (only if not 0) an int > 0."""


@attrs.frozen
class Batch:
    leader_time_ms: int
    items: tuple[Item | WireWrite, ...]
    """Objects (`Item`s), except KIND_WRITE items from `decode_for_apply` (`WireWrite`s)."""


def encode_items(leader_time_ms: int, items: Sequence[Item | WireWrite]) -> bytes:
    """The entry payload: exactly the bytes of ``cbor2.dumps([VERSION, leader_time_ms, wire])``
    with `wire` the items' wire forms (`_wire`), written here for a KIND_WRITE item (nearly
    every item) and by cbor2 for any other item, or value of unusual type or size."""
    parts: list[bytes] = [_ENTRY_HEAD, _int(leader_time_ms), _head(_ARRAY, len(items))]
    # The array heads of 6 and 7 items and [KIND_WRITE, origin, incarnation: one origin per
    # life of a node, so nearly every item of an entry starts the same.
    cached, origin, incarnation = False, 0, 0
    prefix6 = prefix7 = b""
    # Joined every _CHUNK items: the parts list (about nine per item) stays small instead of
    # growing to megabytes per big entry, which left the leader's heap ~2.5 MB bigger.
    chunks: list[bytes] = []
    for item in items:
        if len(parts) >= _CHUNK:
            chunks.append(b"".join(parts))
            parts.clear()
        if type(item) is _OP_ITEM:
            # Fields read as objects: a field typed int would be unboxed by the compiled build,
            # a bool turned into an int, and cbor2 writes True as a simple value, not 1.
            t = cast("tuple[object, ...]", item)
            rid, op = t[0], t[2]
            if type(op) is WriteOp and type(rid) is _REQUEST_ID:
                r = cast("tuple[object, ...]", rid)
                o, i = r[0], r[1]
                db = op.db
                if type(o) is int and type(i) is int:
                    if not cached or o != origin or i != incarnation:
                        body = _KIND_WRITE_HEAD + _head_int(o) + _head_int(i)
                        cached, origin, incarnation = True, o, i
                        prefix6, prefix7 = _ARRAY6 + body, _ARRAY7 + body
                    parts.append(prefix7 if db else prefix6)
                else:
                    parts.append(_ARRAY7 if db else _ARRAY6)
                    parts.append(_KIND_WRITE_HEAD)
                    parts.append(_int(o))
                    parts.append(_int(i))
                parts.append(_int(r[2]))
                parts.append(_int(t[1]))
                _args(parts, op.argv)
                if db:
                    parts.append(_int(db))
                continue
        parts.append(cbor2.dumps(_wire(item)))
    if not chunks:
        return b"".join(parts)
    chunks.append(b"".join(parts))
    return b"".join(chunks)


def _wire(item: Item | WireWrite) -> list[Any]:
    """An item in its wire form (a list for cbor2: its encoding is what `encode_items` writes).
    The fields are read untyped (`Any`): the compiled build would unbox a field typed int,
    a bool becoming 1, which cbor2 does not write as True."""
    x: Any = item
    if type(item) is list:
        return item  # already in its wire form
    if type(item) is OpItem:
        rid, op, floor = x.rid, x.op, x.floor
        if type(op) is WriteOp:
            if op.db:
                return [KIND_WRITE, rid[0], rid[1], rid[2], floor, op.argv, op.db]
            return [KIND_WRITE, rid[0], rid[1], rid[2], floor, op.argv]
        if type(op) is TxnOp:
            txn = [KIND_TXN, rid[0], rid[1], rid[2], floor, op.commands, op.watches]
            if op.db:
                txn.append(op.db)
            return txn
        if type(op) is bytes:
            return [KIND_OP, [rid[0], rid[1], rid[2]], floor, op]
        raise TypeError(f"not a replicated op: {op!r}")
    if type(item) is ExpireItem:
        return [KIND_EXPIRE, x.limit]
    if type(item) is PeerItem:
        return [KIND_PEER, x.node_id, x.address]
    raise TypeError(f"not a batch item: {item!r}")


# CBOR (RFC 8949) by hand: an item starts with a head, its major type in the top 3 bits and
# its argument (an int, a length) in the shortest form: in the low 5 bits if under 24, else
# in the 1, 2, 4 or 8 bytes after (low bits 24..27). cbor2 writes the shortest form too.
_UINT: Final = 0
_NEGINT: Final = 1
_BYTES: Final = 2
_ARRAY: Final = 4
_TINY: Final = tuple([bytes([major << 5 | n]) for major in range(8) for n in range(24)])
_ONE: Final = tuple([bytes([major << 5 | 24, n]) for major in range(8) for n in range(256)])
_ENTRY_HEAD: Final = _TINY[_ARRAY * 24 + 3] + _TINY[_UINT * 24 + VERSION]
_KIND_WRITE_HEAD: Final = _TINY[_UINT * 24 + KIND_WRITE]
_ARRAY6: Final = _TINY[_ARRAY * 24 + 6]
_ARRAY7: Final = _TINY[_ARRAY * 24 + 7]
_CHUNK: Final = 2048  # parts per joined chunk of an entry (`encode_items`)
_OP_ITEM: Final = OpItem  # (a module constant: the class name is a dict lookup per use)
_REQUEST_ID: Final = RequestId


def _head(major: int, n: int) -> bytes:
    """The head of an item of type `major` with argument `n` (0 <= n < 2**64)."""
    if n < 24:
        return _TINY[major * 24 + n]
    if n < 256:
        return _ONE[major * 256 + n]
    # the head byte and the argument as one int, turned into bytes at once
    if n < 65536:
        return ((major << 5 | 25) << 16 | n).to_bytes(3, "big")
    if n < 4294967296:
        return ((major << 5 | 26) << 32 | n).to_bytes(5, "big")
    return ((major << 5 | 27) << 64 | n).to_bytes(9, "big")


def _head_int(n: int) -> bytes:
    """An int (exactly an int, not a bool) as cbor2 writes it."""
    if n >= 0:
        # (The first test is implied by the second, and there for speed: compiled, 2**64 - 1
        # is no machine int, so comparing with it is a generic call; nearly every n passes
        # the first.)
        if n < 4294967296 or n <= 18446744073709551615:
            return _head(_UINT, n)
    elif n >= -18446744073709551616:
        return _head(_NEGINT, -1 - n)
    return cbor2.dumps(n)  # a bignum (a tag and bytes)


def _int(value: object) -> bytes:
    """`value` as cbor2 writes it: by hand if an int, by cbor2 if anything else (a bool, an
    int subclass)."""
    if type(value) is int:
        return _head_int(value)
    return cbor2.dumps(value)


def _args(parts: list[bytes], argv: object) -> None:
    """An argv (a tuple or list: both are CBOR arrays) of bytes; an element of another type,
    or another container, by cbor2."""
    if type(argv) is tuple or type(argv) is list:
        parts.append(_head(_ARRAY, len(argv)))
        for a in argv:
            if type(a) is bytes:
                parts.append(_head(_BYTES, len(a)))
                parts.append(a)
            else:
                parts.append(cbor2.dumps(a))
    else:
        parts.append(cbor2.dumps(argv))


def decode(data: bytes) -> Batch:
    """The batch of an entry, every item an object (`OpItem`, `ExpireItem`, `PeerItem`)."""
    batch = decode_for_apply(data)
    items = batch.items
    for item in items:
        if type(item) is list:
            break
    else:
        return batch
    return Batch(batch.leader_time_ms, tuple([_expand(i) for i in items]))


def decode_for_apply(data: bytes) -> Batch:
    """The batch of an entry as a replica applies it: like `decode` (the same entries are
    refused, with the same error), except that a KIND_WRITE item stays the list CBOR decoded
    it as (a `WireWrite`, checked): `ReplicatedState.apply_batch` takes its fields as they
    are, with no three objects (OpItem, RequestId, WriteOp) built per op and dropped at once.
    That was about half of what a follower spent on a replicated SET (docs/benchmarks.md,
    "Issue 20: the replication path")."""
    try:
        obj = cbor2.loads(data)
    except Exception as exc:  # cbor2 raises several types on garbage
        raise EntryDecodeError(f"entry payload is not CBOR: {exc}") from None
    if type(obj) is not list or len(obj) != 3 or obj[0] not in VERSIONS:
        raise EntryDecodeError("unknown entry payload version or shape")
    version, time_ms, wire = obj
    if type(time_ms) is not int or type(wire) is not list:
        raise EntryDecodeError("bad entry header")
    items: list[Item | WireWrite] = []
    append = items.append
    for raw in wire:
        if type(raw) is not list or not raw:
            raise EntryDecodeError(f"bad batch item {raw!r}")
        kind, n = raw[0], len(raw)
        try:
            if kind == KIND_WRITE and (n == 6 or n == 7) and version >= 2:
                # The commonest item by far, checked inline (no helper calls per op).
                origin, inc, seq, floor, argv = raw[1], raw[2], raw[3], raw[4], raw[5]
                if (
                    type(origin) is not int
                    or type(inc) is not int
                    or type(seq) is not int
                    or type(floor) is not int
                    or type(argv) is not list
                    or origin < 0
                    or inc < 0
                    or seq < 0
                ):
                    raise EntryDecodeError(f"bad batch item {raw!r}")
                for a in argv:
                    if type(a) is not bytes:
                        raise EntryDecodeError(f"bad argv in batch item {raw!r}")
                if n == 7:
                    db_from_wire(raw[6])
                append(raw)
            elif kind == KIND_TXN and (n == 7 or n == 8) and version >= 2:
                op = txn_from_wire(raw[5], raw[6], db_from_wire(raw[7]) if n == 8 else 0)
                append(OpItem(_rid(raw[1], raw[2], raw[3]), _u(raw[4]), op))
            elif kind == KIND_OP and n == 4 and type(raw[3]) is bytes:
                append(OpItem(RequestId.from_wire(raw[1]), _u(raw[2]), raw[3]))
            elif kind == KIND_EXPIRE and n == 2 and type(raw[1]) is int:
                append(ExpireItem(raw[1]))
            elif kind == KIND_PEER and n == 3 and type(raw[1]) is int and type(raw[2]) is str:
                append(PeerItem(raw[1], raw[2]))
            else:
                raise EntryDecodeError(f"bad batch item {raw!r}")
        except OpDecodeError as exc:
            raise EntryDecodeError(f"bad op in batch item {raw!r}: {exc}") from None
    return Batch(time_ms, tuple(items))


def _expand(item: Item | WireWrite) -> Item:
    """A checked KIND_WRITE list as its OpItem (what `decode` gives)."""
    if type(item) is not list:
        return item  # type: ignore[return-value]
    db = item[6] if len(item) == 7 else 0
    return OpItem(RequestId(item[1], item[2], item[3]), item[4], WriteOp(tuple(item[5]), db))


def _rid(origin: object, incarnation: object, seq: object) -> RequestId:
    if (
        type(origin) is int
        and type(incarnation) is int
        and type(seq) is int
        and min(origin, incarnation, seq) >= 0
    ):
        return RequestId(origin, incarnation, seq)
    raise EntryDecodeError(f"bad request id {[origin, incarnation, seq]!r}")


def _u(value: object) -> int:
    if type(value) is int:
        return value
    raise EntryDecodeError(f"bad floor {value!r}")
