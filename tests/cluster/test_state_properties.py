"""Property: the replicated state machine is deterministic, and restoring a snapshot at any
point is indistinguishable from having applied the log (same replies, same digest)."""

from __future__ import annotations

import cbor2
from hypothesis import given, settings
from hypothesis import strategies as st

from aspen.cluster import entry
from aspen.cluster.entry import Batch, ExpireItem, Item, OpItem, RequestId
from aspen.cluster.state import ReplicatedState
from aspen.kv.ops import ReadOp, TxnOp, WriteOp, normalised

keys = st.sampled_from([b"a", b"b", b"c", b"d", b"e"])
write_argv = st.one_of(
    st.tuples(st.just(b"SET"), keys, st.binary(max_size=3)),
    st.tuples(st.just(b"SET"), keys, st.just(b"1"), st.just(b"PX"), st.sampled_from([b"5", b"50"])),
    st.tuples(st.just(b"INCR"), keys),
    st.tuples(st.just(b"DEL"), keys),
    st.tuples(st.just(b"PEXPIRE"), keys, st.sampled_from([b"1", b"20", b"100"])),
    st.tuples(st.just(b"PERSIST"), keys),
)


@st.composite
def batches(draw: st.DrawFn) -> list[tuple[int, list[Item]]]:
    """Entries as the leader holds them: ops as a session builds them (argv lists or
    tuples), normalised the way `submit_write` does, now and then an op only as bytes."""
    out: list[tuple[int, list[Item]]] = []
    time_ms, seq = 1000, 0
    for _ in range(draw(st.integers(1, 25))):
        time_ms += draw(st.integers(0, 30))
        items: list[Item] = []
        for _ in range(draw(st.integers(0, 4))):
            seq += 1
            origin = draw(st.integers(1, 3))
            if draw(st.booleans()):
                argv = draw(write_argv)
                op: WriteOp | TxnOp = WriteOp(list(argv) if draw(st.booleans()) else argv)
            else:
                op = TxnOp(tuple(draw(st.lists(write_argv, min_size=1, max_size=3))))
            # sometimes replay an earlier request id (a retried request)
            if seq > 1 and draw(st.integers(0, 5)) == 0:
                rid = RequestId(origin, 1, draw(st.integers(1, seq - 1)))
            else:
                rid = RequestId(origin, 1, seq)
            # the origin's floor: its oldest request still waiting (a few back, or older)
            floor = max(1, seq - draw(st.sampled_from([0, 1, 3, 8, 40])))
            held = normalised(op)
            assert held is not None
            kind = draw(st.integers(0, 9))
            if kind == 0:  # a forwarded op the leader keeps as bytes (undecodable or a read)
                data = draw(st.sampled_from([b"\xff", ReadOp((b"GET", b"a")).encode()]))
                items.append(OpItem(rid, floor, data))
            else:
                items.append(OpItem(rid, floor, held if kind > 1 else op.encode()))
        if draw(st.booleans()):
            items.append(ExpireItem(draw(st.integers(1, 3))))
        out.append((time_ms, items))
    return out


def _as_version_1(time_ms: int, items: list[Item]) -> bytes:
    """The entry as the version 1 encoder wrote it (every op as kv op bytes)."""
    wire: list[object] = []
    for item in items:
        if type(item) is OpItem:
            op = item.op if type(item.op) is bytes else item.op.encode()
            wire.append([0, list(item.rid), item.floor, op])
        elif type(item) is ExpireItem:
            wire.append([1, item.limit])
    return cbor2.dumps([1, time_ms, wire])


@settings(max_examples=50, deadline=None)
@given(batches(), st.data())
def test_snapshot_restore_anywhere_is_indistinguishable(
    log: list[tuple[int, list[Item]]], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(log)))
    a, b = ReplicatedState(), ReplicatedState()
    for index, (time_ms, items) in enumerate(log, start=1):
        if index - 1 == cut:
            b = ReplicatedState.restore(b.snapshot())
            assert b.digest() == a.digest()
        batch = Batch(time_ms, tuple(items))
        ra = [(x.rid, x.reply, x.duplicate) for x in a.apply_batch(index, batch)]
        rb = [(x.rid, x.reply, x.duplicate) for x in b.apply_batch(index, batch)]
        assert ra == rb
    assert a.digest() == b.digest(), f"digests differ (snapshot cut at entry {cut})"


@settings(max_examples=60, deadline=None)
@given(batches())
def test_applying_the_held_ops_is_the_same_as_decoding_either_version(
    log: list[tuple[int, list[Item]]],
) -> None:
    """The leader applies the ops it holds (no decode); a follower decodes the version 2
    entry; a node replaying an old log decodes version 1 entries (ops as bytes): the
    replies and the state must be exactly the same on all three."""
    leader, follower, old = ReplicatedState(), ReplicatedState(), ReplicatedState()
    for index, (time_ms, items) in enumerate(log, start=1):
        batch = Batch(time_ms, tuple(items))
        decoded = entry.decode(entry.encode_items(time_ms, items))
        assert decoded == batch  # what the leader applies is what the followers decode
        replayed = entry.decode(_as_version_1(time_ms, items))
        assert all(type(i.op) is bytes for i in replayed.items if type(i) is OpItem)
        ra = [tuple(x) for x in leader.apply_batch(index, batch)]
        assert ra == [tuple(x) for x in follower.apply_batch(index, decoded)]
        assert ra == [tuple(x) for x in old.apply_batch(index, replayed)]
    assert leader.digest() == follower.digest() == old.digest()
    assert leader.duplicates == follower.duplicates == old.duplicates


@settings(max_examples=30, deadline=None)
@given(batches(), st.sampled_from([(1, 1), (2, 1), (3, 2)]))
def test_reporting_one_origin_reports_exactly_its_ops(
    log: list[tuple[int, list[Item]]], mine: tuple[int, int]
) -> None:
    every, only = ReplicatedState(), ReplicatedState()
    for index, (time_ms, items) in enumerate(log, start=1):
        batch = Batch(time_ms, tuple(items))
        all_of_them = every.apply_batch(index, batch)
        assert only.apply_batch(index, batch, mine) == [
            a for a in all_of_them if (a.rid.origin, a.rid.incarnation) == mine
        ]
    assert every.digest() == only.digest()


def test_restored_replica_expires_the_same_keys() -> None:
    """Regression: active expiry drops the first N expired keys in TTL-insertion order; a
    replica restored from a snapshot must keep that order (it used to rebuild it in key
    creation order and drop a different key)."""

    def op(seq: int, *argv: bytes) -> OpItem:
        return OpItem(RequestId(1, 1, seq), 1, WriteOp(argv).encode())

    a = ReplicatedState()
    a.apply_batch(
        1,
        Batch(
            1000,
            (
                op(1, b"SET", b"a", b"1"),
                op(2, b"SET", b"b", b"1", b"PX", b"5"),
                op(3, b"PEXPIRE", b"a", b"1"),  # a's TTL is set after b's
            ),
        ),
    )
    b = ReplicatedState.restore(a.snapshot())
    for state in (a, b):
        state.apply_batch(2, Batch(2000, (ExpireItem(1),)))
    assert a.digest() == b.digest()
