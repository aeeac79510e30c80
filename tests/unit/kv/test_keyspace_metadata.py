"""The keyspace's compact per-key metadata (implicit versions, order slots) against a model.

A key created once carries no version entry and no creation map entry (see keyspace.py): these
tests check that WATCH tokens still change on every logical change of a key and stay put
otherwise, across deletes, re-creations, expiry, tombstone pruning, order compaction and
snapshot/restore, and that SCAN still returns each key present throughout exactly once.
"""

from __future__ import annotations

from unittest import mock

import cbor2
from hypothesis import given, settings
from hypothesis import strategies as st

from aspen.kv import keyspace as keyspace_module
from aspen.kv import valuetypes
from aspen.kv.keyspace import Keyspace
from aspen.kv.ops import WriteOp


def reference_snapshot(ks: Keyspace) -> bytes:
    """The snapshot as one cbor2.dumps of the whole structure, keys in `_data` order (what
    `Keyspace.snapshot` streams: the bytes must be the same)."""
    seqs = {k: s for k, s in zip(ks._order_keys, ks._order_seqs, strict=True)
            if ks._is_current(k, s)}
    entries = []
    for key, value in ks._data.items():
        if type(value) is bytes:
            tag, payload = "string", value
        else:
            vt = valuetypes.TYPES_BY_CLASS[type(value)]
            tag, payload = vt.name, vt.dump(value)
        entries.append([key, tag, payload, ks._expires.get(key),
                        ks._versions.get(key, ks._floor), seqs[key]])
    return cbor2.dumps({
        "v": 1, "clock": ks._clock, "floor": ks._floor, "seq": ks._clock, "keys": entries,
        "tombstones": [[k, v] for k, v in ks._versions.items() if k not in ks._data],
        "expires": list(ks._expires),
    })

KEYS = [b"k%d" % i for i in range(6)]

op_strategy = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(KEYS)),
    st.tuples(st.just("del"), st.sampled_from(KEYS)),
    st.tuples(st.just("pexpire"), st.sampled_from(KEYS), st.integers(1, 30)),
    st.tuples(st.just("persist"), st.sampled_from(KEYS)),
    st.tuples(st.just("advance"), st.integers(1, 20)),
    st.tuples(st.just("watch"), st.sampled_from(KEYS)),
    st.tuples(st.just("churn"), st.integers(1, 40)),  # create+delete filler keys
    st.tuples(st.just("expire_some"),),
    st.tuples(st.just("restore"),),
    st.tuples(st.just("flushall"),),
)


class Model:
    """Per key: a count of logical changes and the deadline; liveness from those."""

    def __init__(self) -> None:
        self.values: dict[bytes, bool] = {}
        self.deadlines: dict[bytes, int] = {}
        self.changes: dict[bytes, int] = {}

    def live(self, key: bytes, now: int) -> bool:
        d = self.deadlines.get(key)
        return key in self.values and (d is None or now <= d)

    def changed(self, key: bytes) -> None:
        self.changes[key] = self.changes.get(key, 0) + 1


@settings(max_examples=150, deadline=None)
@given(ops=st.lists(op_strategy, max_size=120))
def test_watch_tokens_change_exactly_on_logical_changes(ops: list[tuple]) -> None:  # type: ignore[type-arg]
    # a tiny tombstone slack so that pruning (and its floor move) happens within an example
    with mock.patch.object(keyspace_module, "_TOMBSTONE_SLACK", 4):
        ks, model, now = Keyspace(), Model(), 1000
        watches: list[tuple[bytes, int, int, bool, int]] = []  # key, token, changes, live, floor
        filler = 0

        def run(*argv: bytes) -> object:
            return ks.execute(WriteOp(argv), now)

        for op in ops:
            name = op[0]
            if name == "set":
                key = op[1]
                run(b"SET", key, b"v")
                model.values[key] = True
                model.deadlines.pop(key, None)
                model.changed(key)
            elif name == "del":
                key = op[1]
                was = model.live(key, now)
                assert run(b"DEL", key) == int(was)
                model.values.pop(key, None)
                model.deadlines.pop(key, None)
                if was:
                    model.changed(key)
            elif name == "pexpire":
                key, ms = op[1], op[2]
                was = model.live(key, now)
                assert run(b"PEXPIRE", key, b"%d" % ms) == int(was)
                if was:
                    model.deadlines[key] = now + ms
                    model.changed(key)
                else:
                    model.values.pop(key, None)
                    model.deadlines.pop(key, None)
            elif name == "persist":
                key = op[1]
                had = model.live(key, now) and key in model.deadlines
                assert run(b"PERSIST", key) == int(had)
                if had:
                    del model.deadlines[key]
                    model.changed(key)
            elif name == "advance":
                now += op[1]
            elif name == "watch":
                key = op[1]
                watches.append((key, ks.watch_token(key, now), model.changes.get(key, 0),
                                model.live(key, now), ks._floor))
            elif name == "churn":
                for _ in range(op[1]):
                    filler += 1
                    run(b"SET", b"f%d" % filler, b"x")
                    run(b"DEL", b"f%d" % filler)
            elif name == "expire_some":
                dropped = ks.expire_some(now, 100)
                for key in dropped:
                    assert not model.live(key, now)
                    model.values.pop(key, None)
                    model.deadlines.pop(key, None)
            elif name == "restore":
                before = {k: ks.watch_token(k, now) for k in KEYS}
                digest, order = ks.digest(), list(ks._data)
                snap = ks.snapshot()
                assert snap == reference_snapshot(ks)
                ks = Keyspace.restore(snap)
                assert ks.digest() == digest and list(ks._data) == order
                assert {k: ks.watch_token(k, now) for k in KEYS} == before
            elif name == "flushall":
                for key in KEYS:
                    if model.live(key, now):
                        model.changed(key)
                run(b"FLUSHALL")
                model.values.clear()
                model.deadlines.clear()

            for key, token, changes, live, floor in watches:
                now_token = ks.watch_token(key, now)
                unchanged = model.changes.get(key, 0) == changes and model.live(key, now) == live
                if not unchanged:
                    assert now_token != token, (key, op)  # a change must abort EXEC
                elif ks._floor == floor:
                    assert now_token == token, (key, op)  # and nothing else may (no pruning)


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(st.tuples(st.sampled_from(["set", "del", "restore"]), st.integers(0, 40)),
                    max_size=150),
       count=st.integers(1, 5))
def test_scan_exactly_once_through_churn_compaction_and_restore(
    ops: list[tuple[str, int]], count: int
) -> None:
    ks = Keyspace()
    for i in range(40):
        ks.execute(WriteOp((b"SET", b"k%d" % i, b"v")), 0)
    stable = {b"k%d" % i for i in range(0, 40, 4)}
    returned: list[bytes] = []
    cursor, it = 0, iter(ops)
    while True:
        cursor, page = ks.scan(cursor, count, 0, lambda _k, _v: True)
        returned += page
        for name, n in [next(it, ("set", 99)), next(it, ("del", 98))]:
            key = b"k%d" % n
            if name == "restore":
                ks = Keyspace.restore(ks.snapshot())
            elif key not in stable:
                ks.execute(WriteOp((b"SET", key, b"v") if name == "set" else (b"DEL", key)), 0)
        if cursor == 0:
            break
    assert stable <= set(returned)
    assert all(returned.count(k) == 1 for k in stable)  # present throughout: exactly once


def test_compaction_keeps_creation_order() -> None:
    ks = Keyspace()
    for i in range(300):
        ks.execute(WriteOp((b"SET", b"k%d" % i, b"v")), 0)
    for i in range(0, 300, 3):
        ks.execute(WriteOp((b"DEL", b"k%d" % i)), 0)
    for i in range(0, 300, 6):  # re-created: they move to the end of the creation order
        ks.execute(WriteOp((b"SET", b"k%d" % i, b"w")), 0)
    expected = [b"k%d" % i for i in range(300) if i % 3] + [b"k%d" % i for i in range(0, 300, 6)]
    assert ks.scan(0, 10_000, 0, lambda _k, _v: True) == (0, expected)
    ks._compact_order()
    assert ks.scan(0, 10_000, 0, lambda _k, _v: True) == (0, expected)
    assert len(ks._order_keys) == len(expected) and not ks._reborn


def test_streamed_snapshot_bytes_with_every_type_and_long_arrays() -> None:
    ks = Keyspace()
    for argv in ([b"HSET", b"h", b"f", b"1"], [b"RPUSH", b"l", b"a", b"b"], [b"SADD", b"s", b"x"],
                 [b"ZADD", b"z", b"1.5", b"m"], [b"SET", b"t", b"v", b"PX", b"1000"]):
        ks.execute(WriteOp(argv), 0)
    for n in range(300):  # array headers of 1 and 2 length bytes
        ks.execute(WriteOp((b"SET", b"k%d" % n, b"v")), 0)
        if n in (0, 20, 23, 24, 250, 255, 256):
            assert ks.snapshot() == reference_snapshot(ks)
    ks.execute(WriteOp((b"DEL", b"k7")), 0)  # a stale slot
    assert ks.snapshot() == reference_snapshot(ks)
    assert Keyspace.restore(ks.snapshot()).digest() == ks.digest()
