"""Entry/forward/reply codecs round-trip and refuse garbage; the state machine's dedup table
and snapshots behave (pure, no trio)."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aspen.cluster import entry, forward, replies
from aspen.cluster.entry import Batch, ExpireItem, OpItem, PeerItem, RequestId
from aspen.cluster.state import DUPLICATE_FORGOTTEN, ReplicatedState
from aspen.kv.ops import TxnOp, WriteOp
from aspen.resp.values import (
    NULL_ARRAY,
    OK,
    Boolean,
    Double,
    Error,
    Map,
    Set,
    SimpleString,
    Verbatim,
)

u32 = st.integers(0, 2**32)
rids = st.builds(RequestId, u32, u32, u32)
argvs = st.lists(st.binary(max_size=8), min_size=1, max_size=4).map(tuple)
held_ops = st.one_of(
    st.builds(WriteOp, argvs),
    st.builds(
        TxnOp,
        st.lists(argvs, max_size=3).map(tuple),
        st.lists(st.tuples(st.binary(max_size=4), u32), max_size=2).map(tuple),
    ),
    st.binary(max_size=40),
)
items = st.one_of(
    st.builds(OpItem, rids, u32, held_ops),
    st.builds(ExpireItem, st.integers(1, 1000)),
    st.builds(PeerItem, st.integers(1, 100), st.just("127.0.0.1:7000")),
)


@given(st.integers(0, 2**50), st.lists(items, max_size=20))
def test_entry_round_trip(time_ms: int, batch: list[entry.Item]) -> None:
    assert entry.decode(entry.encode_items(time_ms, batch)) == Batch(time_ms, tuple(batch))


def test_entry_version_1_from_disk_still_decodes() -> None:
    """Logs written before version 2 hold ops as kv op bytes: they decode to those bytes
    (applied by decoding them) and apply exactly like the embedded form."""
    op = WriteOp((b"SET", b"k", b"v"))
    v1 = cbor2.dumps([1, 7, [[0, [1, 2, 3], 1, op.encode()], [1, 5], [2, 4, "a:1"]]])
    batch = entry.decode(v1)
    assert batch == Batch(7, (OpItem(RequestId(1, 2, 3), 1, op.encode()), ExpireItem(5),
                              PeerItem(4, "a:1")))
    embedded = entry.decode(entry.encode_items(7, [OpItem(RequestId(1, 2, 3), 1, op)]))
    assert embedded.items[0].op == op
    a, b = ReplicatedState(), ReplicatedState()
    assert [tuple(x) for x in a.apply_batch(1, batch)] == [(RequestId(1, 2, 3), OK, False)]
    assert [tuple(x) for x in b.apply_batch(1, embedded)] == [(RequestId(1, 2, 3), OK, False)]
    assert a.digest() == b.digest()


@given(st.binary(max_size=64))
def test_entry_decode_refuses_garbage(data: bytes) -> None:
    try:
        entry.decode(data)
    except entry.EntryDecodeError:
        pass


@pytest.mark.parametrize(
    "bad",
    [
        [3, 0, []],
        [1, "t", []],
        [1, 0, [[0, [1, 2], 0, b""]]],
        [1, 0, [[0, [1, 2, -3], 0, b""]]],
        [1, 0, [[9, 1]]],
        [1, 0, [[2, 1, 5]]],
        [1, 0, [[3, 1, 1, 1, 0, [b"SET", b"k", b"v"]]]],  # embedded ops are version 2 only
        [2, 0, [[3, 1, 1, 1, 0, [b"SET", "k", b"v"]]]],
        [2, 0, [[3, 1, -1, 1, 0, [b"SET", b"k", b"v"]]]],
        [2, 0, [[3, 1, 1, 1, "0", [b"SET"]]]],
        [2, 0, [[3, 1, 1, 1, 0, b"SET"]]],
        [2, 0, [[4, 1, 1, 1, 0, [[b"SET", b"k"]], [[b"k", "1"]]]]],
        [2, 0, [[4, 1, 1, 1, 0, [[b"SET", b"k"]]]]],
    ],
)
def test_entry_decode_refuses_bad_shapes(bad: object) -> None:
    with pytest.raises(entry.EntryDecodeError):
        entry.decode(cbor2.dumps(bad))


forwards = st.one_of(
    st.builds(
        forward.ForwardWrites,
        u32,
        st.lists(st.tuples(rids, st.binary(max_size=30)), max_size=4).map(tuple),
    ),
    st.builds(forward.ForwardRead, st.binary(max_size=10), st.binary(max_size=30)),
    st.builds(forward.ReadReply, st.binary(max_size=10), st.binary(max_size=30)),
    st.builds(
        forward.Rejected,
        st.lists(rids, max_size=3).map(tuple),
        st.none() | st.binary(max_size=10),
        st.none() | st.integers(1, 9),
    ),
)


@given(forwards)
def test_forward_round_trip(msg: forward.Forwarded) -> None:
    assert forward.decode(forward.encode(msg)) == msg


@given(st.binary(max_size=64))
def test_forward_decode_refuses_garbage(data: bytes) -> None:
    try:
        forward.decode(data)
    except forward.ForwardDecodeError:
        pass


leaf = st.one_of(
    st.binary(max_size=10),
    st.integers(-(2**63), 2**63 - 1),
    st.none(),
    st.builds(SimpleString, st.text(max_size=5)),
    st.builds(Error, st.text(max_size=10)),
    st.just(NULL_ARRAY),
    st.builds(Double, st.floats(allow_nan=False)),
    st.builds(Boolean, st.booleans()),
    st.builds(Verbatim, st.binary(max_size=5), st.just("txt")),
)
reply_values = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.builds(Set, st.lists(inner, max_size=3)),
        st.builds(Map, st.lists(st.tuples(inner, inner), max_size=3)),
    ),
    max_leaves=12,
)


@given(reply_values)
def test_reply_round_trip(value: object) -> None:
    assert replies.decode(replies.encode(value)) == value


def _op(rid: RequestId, floor: int, *argv: bytes) -> OpItem:
    return OpItem(rid, floor, WriteOp(argv).encode())


def test_dedup_applies_once_and_returns_the_first_reply() -> None:
    state = ReplicatedState()
    rid = RequestId(1, 7, 1)
    first = state.apply_batch(1, Batch(10, (_op(rid, 1, b"INCR", b"n"),)))
    again = state.apply_batch(2, Batch(11, (_op(rid, 1, b"INCR", b"n"),)))
    assert [a.reply for a in first] == [1] and not first[0].duplicate
    assert [a.reply for a in again] == [1] and again[0].duplicate
    # another incarnation of the same node is a different client
    other = state.apply_batch(3, Batch(12, (_op(RequestId(1, 8, 1), 1, b"INCR", b"n"),)))
    assert other[0].reply == 2


def test_floor_forgets_old_replies_and_refuses_their_replays() -> None:
    state = ReplicatedState()
    for seq in range(1, 6):
        state.apply_batch(seq, Batch(1, (_op(RequestId(2, 1, seq), 1, b"INCR", b"n"),)))
    assert len(state.sessions[(2, 1)].replies) == 5
    state.apply_batch(6, Batch(1, (_op(RequestId(2, 1, 6), 5, b"INCR", b"n"),)))
    assert sorted(state.sessions[(2, 1)].replies) == [5, 6]
    replay = state.apply_batch(7, Batch(1, (_op(RequestId(2, 1, 3), 5, b"INCR", b"n"),)))
    assert replay[0].reply == DUPLICATE_FORGOTTEN and replay[0].duplicate
    assert state.keyspace.execute(WriteOp((b"INCR", b"n")), 1) == 7  # replay did not apply


def test_a_reply_stranded_behind_the_floor_is_never_returned_nor_snapshotted() -> None:
    """Seq 2 applied after seq 4 (a late retry): when the floor passes 2 but not 4, 2 may
    stay in the table for a while, but it answers as forgotten and no snapshot holds it."""
    state = ReplicatedState()
    for index, seq in enumerate((1, 4, 2), start=1):
        state.apply_batch(index, Batch(1, (_op(RequestId(2, 1, seq), 1, b"INCR", b"n"),)))
    state.apply_batch(4, Batch(1, (_op(RequestId(2, 1, 5), 3, b"INCR", b"n"),)))
    assert sorted(state.sessions[(2, 1)].replies) == [2, 4, 5]  # 2 is stranded behind 4
    replay = state.apply_batch(5, Batch(1, (_op(RequestId(2, 1, 2), 3, b"INCR", b"n"),)))
    assert replay[0].reply == DUPLICATE_FORGOTTEN and replay[0].duplicate
    restored = ReplicatedState.restore(state.snapshot())
    assert sorted(restored.sessions[(2, 1)].replies) == [4, 5]
    assert restored.snapshot() == state.snapshot()
    state.apply_batch(6, Batch(1, (_op(RequestId(2, 1, 6), 6, b"INCR", b"n"),)))
    assert sorted(state.sessions[(2, 1)].replies) == [6]  # the stranded one went at last


def test_old_incarnations_are_dropped_from_the_table() -> None:
    state = ReplicatedState()
    for inc in range(10):
        state.apply_batch(inc + 1, Batch(1, (_op(RequestId(3, inc, 1), 1, b"SET", b"k", b"v"),)))
    assert sorted(inc for (_, inc) in state.sessions) == [6, 7, 8, 9]


def test_apply_time_is_monotonic_even_if_an_entry_goes_back() -> None:
    state = ReplicatedState()
    state.apply_batch(
        1, Batch(1000, (_op(RequestId(1, 1, 1), 1, b"SET", b"k", b"v", b"PX", b"10"),))
    )
    state.apply_batch(2, Batch(5, (ExpireItem(10),)))  # a bad clock: must not go back to 5
    assert state.last_time_ms == 1000
    state.apply_batch(3, Batch(1011, (ExpireItem(10),)))
    assert state.keyspace.key_count() == 0


def test_snapshot_round_trip_keeps_dedup_peers_time_and_keys() -> None:
    state = ReplicatedState()
    txn = TxnOp(((b"SET", b"a", b"1"), (b"INCR", b"a")))
    state.apply_batch(
        4,
        Batch(
            99,
            (
                OpItem(RequestId(1, 1, 1), 1, txn.encode()),
                PeerItem(4, "127.0.0.1:7004"),
                _op(RequestId(2, 1, 1), 1, b"SET", b"b", b"x"),
            ),
        ),
    )
    restored = ReplicatedState.restore(state.snapshot())
    assert restored.digest() == state.digest()
    assert restored.peers == {4: "127.0.0.1:7004"}
    assert restored.last_time_ms == 99 and restored.applied_index == 4
    dup = restored.apply_batch(5, Batch(100, (OpItem(RequestId(1, 1, 1), 1, txn.encode()),)))
    assert dup[0].duplicate and dup[0].reply == [OK, 2]
    assert restored.snapshot() != state.snapshot()  # it moved on
