"""The entry encoder is written by hand (aspen/cluster/entry.py): it must give, for every batch,
exactly the bytes cbor2 gives for the batch's wire list, as every entry before it did, on the
compiled build and the pure one. Values at every length boundary of a CBOR head, and values
of unusual type or size (which it leaves to cbor2), are drawn on purpose."""

from __future__ import annotations

from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aspen.cluster import entry
from aspen.cluster.entry import Batch, ExpireItem, OpItem, PeerItem, RequestId
from aspen.kv.ops import TxnOp, WriteOp
from harness.hypothesis_budget import scaled_examples

pytestmark = pytest.mark.differential

# Where a CBOR head changes length (argument in the head byte, or in 1, 2, 4, 8 more bytes).
EDGES = [0, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1]
UINT_EDGES = sorted({n + d for n in EDGES for d in (-1, 0, 1) if 0 <= n + d < 2**64})

uints = st.one_of(st.sampled_from(UINT_EDGES), st.integers(0, 2**64 - 1), st.integers(0, 300))
# Anything an int field may hold: negative (its own CBOR type), beyond 64 bits (a bignum,
# both signs), and the int subclass bool (a CBOR simple value, not 0 or 1).
any_ints = st.one_of(
    uints,
    st.sampled_from([-n - d for n in EDGES for d in (0, 1, 2)]),
    st.sampled_from([2**64, 2**64 + 1, 2**100, -(2**64) - 1, -(2**100)]),
    st.integers(),
    st.booleans(),
)
byte_strings = st.one_of(
    st.binary(max_size=30),
    st.sampled_from([0, 1, 23, 24, 25, 255, 256, 257, 65535, 65536, 65537]).map(
        lambda n: bytes([n % 251]) * n
    ),
)
argvs = st.one_of(
    st.lists(byte_strings, max_size=5),
    st.sampled_from([23, 24, 25, 255, 256]).map(lambda n: [b"a"] * n),
).flatmap(lambda a: st.sampled_from([tuple(a), a]))
# Elements the type allows only by promotion (bytearray), or not at all: left to cbor2.
odd_argvs = st.lists(st.one_of(byte_strings, st.builds(bytearray, st.binary(max_size=5)),
                               any_ints, st.text(max_size=3)), max_size=4).map(tuple)
watches = st.lists(
    st.one_of(st.tuples(byte_strings, any_ints), st.tuples(byte_strings, any_ints, any_ints)),
    max_size=3,
).map(tuple)
txns = st.builds(TxnOp, st.lists(argvs.map(tuple), max_size=3).map(tuple), watches,
                 st.one_of(st.just(0), any_ints))
dbs = st.one_of(st.just(0), st.sampled_from([1, 15, 23, 24, 255, 256]), any_ints)


@st.composite
def batches(draw: st.DrawFn) -> list[Any]:
    """Items of every kind; origins and incarnations from a small pool, as a node's ids are
    (the encoder keeps the start of an item while they stay the same), with switches."""
    origins = draw(st.lists(any_ints, min_size=1, max_size=3))
    incarnations = draw(st.lists(any_ints, min_size=1, max_size=3))
    ids = st.tuples(st.sampled_from(origins), st.sampled_from(incarnations), any_ints)
    rids = st.one_of(ids.map(lambda t: RequestId(*t)), ids)  # a plain tuple: left to cbor2
    writes = st.builds(
        OpItem, rids, any_ints, st.builds(WriteOp, st.one_of(argvs, argvs, odd_argvs), dbs)
    )
    items = st.one_of(
        writes,
        writes,
        writes,
        st.builds(OpItem, rids, any_ints, txns),
        st.builds(OpItem, rids, any_ints, byte_strings),
        st.builds(ExpireItem, any_ints),
        st.builds(PeerItem, any_ints, st.text(max_size=20)),
        st.tuples(st.just(entry.KIND_WRITE), uints, uints, uints, any_ints,
                  st.lists(byte_strings, max_size=3)).map(list),  # a decoded KIND_WRITE
    )
    n = draw(st.one_of(st.integers(0, 8), st.sampled_from([23, 24, 25])))
    return draw(st.lists(items, min_size=n, max_size=n))


def wire_of(item: Any) -> Any:
    """The item's wire form, as the module docstring gives it (and encode_items built it
    before it was written by hand)."""
    if type(item) is list:
        return item
    if type(item) is OpItem:
        rid, floor, op = item.rid, item.floor, item.op
        if type(op) is WriteOp:
            return [entry.KIND_WRITE, rid[0], rid[1], rid[2], floor, op.argv] + (
                [op.db] if op.db else [])
        if type(op) is TxnOp:
            return [entry.KIND_TXN, rid[0], rid[1], rid[2], floor, op.commands,
                    op.watches] + ([op.db] if op.db else [])
        return [entry.KIND_OP, [rid[0], rid[1], rid[2]], floor, op]
    if type(item) is ExpireItem:
        return [entry.KIND_EXPIRE, item.limit]
    return [entry.KIND_PEER, item.node_id, item.address]


def cbor2_bytes(time_ms: Any, items: list[Any]) -> bytes:
    return cbor2.dumps([entry.VERSION, time_ms, [wire_of(i) for i in items]])


# (The time is a parameter typed int: the compiled build takes a bool as the int it is, as the
# encoder it replaced did; a leader's time is an int anyway.)
@settings(max_examples=scaled_examples(400), deadline=None)
@given(any_ints.filter(lambda t: type(t) is int), batches())
def test_encoder_writes_what_cbor2_writes(time_ms: int, items: list[Any]) -> None:
    assert entry.encode_items(time_ms, items) == cbor2_bytes(time_ms, items)


# What a leader proposes: ids, floors and dbs in range, argv of bytes: decodes to itself.
def valid_batches() -> st.SearchStrategy[list[Any]]:
    ids = st.builds(RequestId, st.sampled_from([1, 2, 2**40]), st.sampled_from([0, 2**40]),
                    uints)
    write = st.builds(OpItem, ids, uints, st.builds(
        WriteOp, argvs.map(tuple), st.one_of(st.just(0), st.integers(1, 2**64 - 1))))
    return st.lists(st.one_of(write, write, st.builds(ExpireItem, uints),
                              st.builds(PeerItem, uints, st.text(max_size=10))), max_size=30)


@settings(max_examples=scaled_examples(200), deadline=None)
@given(uints, valid_batches())
def test_encoded_entry_decodes_to_its_items(time_ms: int, items: list[Any]) -> None:
    data = entry.encode_items(time_ms, items)
    assert data == cbor2_bytes(time_ms, items)
    assert entry.decode(data) == Batch(time_ms, tuple(items))
    for_apply = entry.decode_for_apply(data)
    assert [entry._expand(i) for i in for_apply.items] == items
    assert entry.encode_items(time_ms, for_apply.items) == data  # (its lists re-encode alike)


@pytest.mark.parametrize("n", [0, 23, 24, 255, 256, 65535, 65536])
def test_batch_sizes_at_head_boundaries(n: int) -> None:
    op = WriteOp((b"SET", b"k", b"v"))
    items: list[Any] = [OpItem(RequestId(1, 2**40, s), s, op) for s in range(n)]
    assert entry.encode_items(2**41, items) == cbor2_bytes(2**41, items)


def test_a_bad_item_is_refused_as_before() -> None:
    with pytest.raises(TypeError, match="not a batch item"):
        entry.encode_items(1, [("x",)])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="not a replicated op"):
        entry.encode_items(1, [OpItem(RequestId(1, 2, 3), 0, "x")])  # type: ignore[arg-type]
