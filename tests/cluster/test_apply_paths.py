"""Differential property: the apply loop's fast paths change nothing a replica can observe.

A follower applies an entry as `entry.decode_for_apply` gives it (a KIND_WRITE item stays
the list CBOR decoded, no objects per op), the leader the objects it holds; both look a
session up once per run of ops of one origin and drop the replies below a raised floor at
the end of the run. `reference_apply` below is the loop as it was before (objects, a session
lookup and a floor pass per op): all three must give the same replies, the same keyspace
(snapshot bytes, so WATCH versions and TTLs too), the same dedup table (every reply kept, in
order, stale ones included), the same notifications and the same memory accounting.
"""

from __future__ import annotations

from unittest import mock

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aspen.cluster import entry
from aspen.cluster import state as state_module
from aspen.cluster.entry import Batch, ExpireItem, Item, OpItem, PeerItem, RequestId
from aspen.cluster.state import DUPLICATE_FORGOTTEN, Applied, ReplicatedState
from aspen.kv.memory import AccessHints
from aspen.kv.notify import Notifier
from aspen.kv.ops import ReadOp, TxnOp, WriteOp, normalised
from harness.hypothesis_budget import scaled_examples

keys = st.sampled_from([b"a", b"b", b"c", b"d"])
write_argv = st.one_of(
    st.tuples(st.sampled_from([b"SET", b"set"]), keys, st.binary(max_size=3)),
    st.tuples(st.just(b"SET"), keys, st.just(b"1"), st.just(b"PX"), st.sampled_from([b"5", b"50"])),
    st.tuples(st.just(b"INCR"), keys),
    st.tuples(st.just(b"DEL"), keys),
    st.tuples(st.just(b"SADD"), keys, st.sampled_from([b"x", b"y"])),
    st.tuples(st.just(b"PEXPIRE"), keys, st.sampled_from([b"1", b"20"])),
    st.tuples(st.just(b"MOVE"), keys, st.sampled_from([b"0", b"1"])),
    st.tuples(st.just(b"NOSUCHCMD"), keys),
)


@st.composite
def logs(draw: st.DrawFn) -> list[tuple[int, list[Item]]]:
    """Entries as a leader holds them: runs of one origin and interleavings, several
    incarnations of an origin (more than the table keeps), retries of applied and of
    forgotten requests, floors that creep and that jump, ops in three databases (one out
    of range), transactions, ops only as bytes, expiry and address-book items."""
    out: list[tuple[int, list[Item]]] = []
    time_ms = 1000
    seqs: dict[tuple[int, int], int] = {}
    floors: dict[tuple[int, int], int] = {}
    for _ in range(draw(st.integers(1, 12))):
        time_ms += draw(st.integers(0, 30))
        items: list[Item] = []
        run = draw(st.integers(0, 8))
        origin = (draw(st.integers(1, 2)), draw(st.integers(1, 6)))
        for _ in range(run):
            if draw(st.integers(0, 3)) == 0:  # switch origin (else a run of one origin)
                origin = (draw(st.integers(1, 2)), draw(st.integers(1, 6)))
            seq = seqs[origin] = seqs.get(origin, 0) + 1
            if seq > 1 and draw(st.integers(0, 4)) == 0:
                seq = draw(st.integers(1, seq - 1))  # a retried request
            floor = floors.get(origin, 1)
            floor = floors[origin] = max(floor, draw(st.sampled_from(
                [floor, floor + 1, seq - 2, seq, seq + 3])))
            rid = RequestId(origin[0], origin[1], seq)
            db = draw(st.sampled_from([0, 0, 0, 1, 2, 16]))
            kind = draw(st.integers(0, 9))
            op: WriteOp | TxnOp
            if kind < 7:
                argv = draw(write_argv)
                op = WriteOp(list(argv) if kind == 0 else argv, db)
            else:
                op = TxnOp(tuple(draw(st.lists(write_argv, min_size=1, max_size=3))), (), db)
            held = normalised(op)
            assert held is not None
            if kind == 8:
                data = draw(st.sampled_from([b"\xff", ReadOp((b"GET", b"a")).encode()]))
                items.append(OpItem(rid, floor, data))
            else:
                items.append(OpItem(rid, floor, held if kind != 9 else op.encode()))
            if draw(st.integers(0, 9)) == 0:
                items.append(ExpireItem(draw(st.integers(1, 3))))
            if draw(st.integers(0, 19)) == 0:
                items.append(PeerItem(draw(st.integers(1, 3)), f"tcp://h:{seq}"))
        out.append((time_ms, items))
    return out


def reference_apply(
    state: ReplicatedState, index: int, batch: Batch, mine: tuple[int, int] | None = None
) -> list[Applied]:
    """The apply loop as it was: one session lookup and one floor pass per op."""
    now = max(batch.leader_time_ms, state.last_time_ms)
    state.last_time_ms = now
    out: list[Applied] = []
    seed = index * 65536
    for pos, item in enumerate(batch.items):
        if type(item) is OpItem:
            rid = item.rid
            key = (rid[0], rid[1])
            session = state.sessions.get(key)
            if session is None:
                session = state._session(key)
            seq = rid[2]
            done = session.replies
            if seq < session.floor or seq in done:
                reply = DUPLICATE_FORGOTTEN if seq < session.floor else done[seq]
                state.duplicates += 1
                if item.floor > session.floor:
                    _advance_floor(session, item.floor)
                if mine is None or key == mine:
                    out.append(Applied(rid, reply, True))
                continue
            op = item.op
            if isinstance(op, bytes):
                reply = state._apply_encoded(op, now, seed + pos)
            else:
                reply = state.keyspace.execute(op, now, seed + pos)
            done[seq] = reply
            if item.floor > session.floor:
                _advance_floor(session, item.floor)
            if len(done) > state_module.MAX_REPLIES_PER_SESSION:
                state._trim(session)
            if mine is None or key == mine:
                out.append(Applied(rid, reply, False))
        elif type(item) is ExpireItem:
            state.keyspace.expire_some(now, item.limit)
        elif type(item) is PeerItem:
            state.peers[item.node_id] = item.address
    state.applied_index = index
    return out


def _advance_floor(session: state_module._Session, floor: int) -> None:
    session.floor = floor
    stale = []
    for seq in session.replies:
        if seq >= floor:
            break
        stale.append(seq)
    for seq in stale:
        del session.replies[seq]


def _replica(events: list[tuple[bytes, bytes]], policy: str) -> ReplicatedState:
    state = ReplicatedState(databases=3)
    ks = state.keyspace
    ks.notifier = Notifier(lambda channel, message: events.append((channel, message)), 0xFFFF)
    ks.set_memory_tracking(True)
    if policy != "noeviction":
        ks.hints = AccessHints(policy == "lfu")
    return state


def _table(state: ReplicatedState) -> object:
    """The whole dedup table: every session, its floor and its replies in order."""
    return [(k, s.floor, list(s.replies.items())) for k, s in state.sessions.items()]


def _observed(state: ReplicatedState) -> object:
    ks = state.keyspace
    hints = None if ks.hints is None else dict(ks.hints.last)
    return (
        ks.snapshot(), _table(state), state.duplicates, sorted(state.peers.items()),
        state.last_time_ms, state.applied_index, ks.memory_by_db(), hints, ks.db,
    )


@settings(max_examples=scaled_examples(150), deadline=None)
@given(logs(), st.sampled_from([3, 65536]), st.sampled_from(["noeviction", "lru", "lfu"]),
       st.sampled_from([None, (1, 1), (2, 5)]))
def test_fast_paths_match_the_per_op_loop(
    log: list[tuple[int, list[Item]]], max_replies: int, policy: str,
    mine: tuple[int, int] | None,
) -> None:
    names = ("reference", "leader", "follower")
    events: dict[str, list[tuple[bytes, bytes]]] = {n: [] for n in names}
    replicas = {n: _replica(events[n], policy) for n in names}
    with mock.patch.object(state_module, "MAX_REPLIES_PER_SESSION", max_replies):
        for index, (time_ms, items) in enumerate(log, start=1):
            data = entry.encode_items(time_ms, items)
            wire = entry.decode_for_apply(data)
            assert entry.encode_items(time_ms, wire.items) == data
            replies = {
                "reference": reference_apply(
                    replicas["reference"], index, Batch(time_ms, tuple(items)), mine),
                "leader": replicas["leader"].apply_batch(
                    index, Batch(time_ms, tuple(items)), mine),
                "follower": replicas["follower"].apply_batch(index, wire, mine),
            }
            want = [tuple(a) for a in replies["reference"]]
            for name in names[1:]:
                assert [tuple(a) for a in replies[name]] == want, name
                assert _observed(replicas[name]) == _observed(replicas["reference"]), name
                assert events[name] == events["reference"], name
    snap = replicas["reference"].snapshot()
    assert replicas["leader"].snapshot() == replicas["follower"].snapshot() == snap


@settings(max_examples=scaled_examples(200), deadline=None)
@given(logs(), st.data())
def test_decode_for_apply_refuses_exactly_what_decode_refuses(
    log: list[tuple[int, list[Item]]], data: st.DataObject
) -> None:
    """Both decoders see the same bytes: a corrupted item fails both (the entry is then
    skipped whole, on every replica), and an accepted entry is the same batch."""
    time_ms, items = log[0]
    wire = cbor2.loads(entry.encode_items(time_ms, items))
    if wire[2] and data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(wire[2]) - 1))
        raw = wire[2][i]
        j = data.draw(st.integers(0, len(raw)))
        junk = data.draw(st.sampled_from([-1, "x", b"x", [], [b"x", 1], None, 2**70]))
        if j == len(raw):
            raw.append(junk)
        else:
            raw[j] = junk
    payload = cbor2.dumps(wire)
    try:
        want = entry.decode(payload)
    except entry.EntryDecodeError as exc:
        with pytest.raises(entry.EntryDecodeError) as got:
            entry.decode_for_apply(payload)
        assert str(got.value) == str(exc)
        return
    fast = entry.decode_for_apply(payload)
    assert entry.decode(entry.encode_items(fast.leader_time_ms, fast.items)) == want
    for item, full in zip(fast.items, want.items, strict=True):
        if type(item) is list:
            assert type(full) is OpItem and type(full.op) is WriteOp
            assert [item[1], item[2], item[3], item[4]] == [*full.rid, full.floor]
            assert tuple(item[5]) == full.op.argv
        else:
            assert item == full


def test_a_run_prunes_like_every_op_did() -> None:
    """The floor rises at every op of a run; the stale replies go once, at the end of the
    run, and exactly those the per-op passes dropped (a reply stranded behind a newer one
    stays until a later pass, as before)."""
    def op(seq: int, floor: int) -> OpItem:
        return OpItem(RequestId(1, 1, seq), floor, WriteOp((b"INCR", b"n")))

    ref, new = ReplicatedState(), ReplicatedState()
    log = [
        [op(5, 1), op(6, 1), op(2, 1)],  # 2 lands behind 5 and 6 (a late retry)
        [op(7, 6), op(8, 7), op(9, 9)],  # 5, 6 go; 2 was behind them: it goes too
        [op(10, 9), op(3, 9), op(11, 11)],  # 3 < floor: forgotten, not applied
    ]
    for index, items in enumerate(log, start=1):
        batch = Batch(1, tuple(items))
        assert [tuple(a) for a in new.apply_batch(index, batch)] == [
            tuple(a) for a in reference_apply(ref, index, batch)]
        assert _table(new) == _table(ref)
    assert new.sessions[(1, 1)].floor == 11
    assert list(new.sessions[(1, 1)].replies) == [11]
    assert new.keyspace.snapshot() == ref.keyspace.snapshot()
