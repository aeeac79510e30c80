"""Hashes, lists, sets and sorted sets in the keyspace: snapshots, COPY, TYPE, SCAN TYPE,
expiry, WATCH versions, determinism of random commands and of iteration order."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from types_commandgen import random_command, type_command

from aspen.kv.commands import Route, lookup
from aspen.kv.keyspace import Keyspace
from aspen.kv.ops import ReadOp, TxnOp, WriteOp
from aspen.resp.values import NULL_ARRAY, Double, Error, Map, Pairs, Set, SimpleString

NOW = 1_000_000


def run(ks: Keyspace, *words: bytes | str, now: int = NOW, seed: int = 0) -> object:
    argv = [w.encode() if isinstance(w, str) else w for w in words]
    spec = lookup(argv[0])
    assert spec is not None, argv
    op = WriteOp(argv) if spec.route is Route.WRITE else ReadOp(argv)
    return ks.execute(op, now, seed)


def populated() -> Keyspace:
    ks = Keyspace()
    run(ks, "hset", "h", "f1", "v1", "f2", "v2")
    run(ks, "rpush", "l", "a", "b", "c")
    run(ks, "sadd", "s", "x", "y", "z")
    run(ks, "zadd", "z", "1", "a", "-inf", "b", "2.5", "c")
    run(ks, "set", "str", "v")
    run(ks, "pexpire", "h", "5000")
    return ks


def test_type_reports_every_type() -> None:
    ks = populated()
    got = {k: run(ks, "type", k) for k in ("h", "l", "s", "z", "str", "nope")}
    assert got == {
        "h": SimpleString("hash"),
        "l": SimpleString("list"),
        "s": SimpleString("set"),
        "z": SimpleString("zset"),
        "str": SimpleString("string"),
        "nope": SimpleString("none"),
    }


def test_scan_type_filters_new_types() -> None:
    ks = populated()
    for name, key in (("hash", b"h"), ("list", b"l"), ("set", b"s"), ("zset", b"z")):
        reply = run(ks, "scan", "0", "count", "100", "type", name)
        assert reply == [b"0", [key]]


def test_snapshot_round_trip_keeps_every_type_and_ttl() -> None:
    ks = populated()
    restored = Keyspace.restore(ks.snapshot())
    assert restored.digest() == ks.digest()
    assert run(restored, "hgetall", "h") == Map([(b"f1", b"v1"), (b"f2", b"v2")])
    assert run(restored, "lrange", "l", "0", "-1") == [b"a", b"b", b"c"]
    assert run(restored, "smembers", "s") == Set([b"x", b"y", b"z"])
    assert run(restored, "zrange", "z", "0", "-1", "withscores") == Pairs(
        [(b"b", Double(float("-inf"))), (b"a", Double(1.0)), (b"c", Double(2.5))]
    )
    assert run(restored, "pttl", "h") == 5000
    # The restored values are live structures, not frozen copies.
    assert run(restored, "zadd", "z", "0", "d") == 1
    assert run(restored, "zrank", "z", "d") == 1
    assert run(restored, "spop", "s", seed=7) == run(ks, "spop", "s", seed=7)


def test_copy_is_deep() -> None:
    ks = populated()
    for src in ("h", "l", "s", "z"):
        assert run(ks, "copy", src, src + "2") == 1
    run(ks, "hset", "h2", "f1", "changed")
    run(ks, "rpush", "l2", "d")
    run(ks, "srem", "s2", "x")
    run(ks, "zincrby", "z2", "10", "a")
    assert run(ks, "hget", "h", "f1") == b"v1"
    assert run(ks, "llen", "l") == 3
    assert run(ks, "sismember", "s", "x") == 1
    assert run(ks, "zscore", "z", "a") == Double(1.0)
    assert run(ks, "pttl", "h2") == 5000  # COPY keeps the TTL


def test_expired_aggregates_are_absent() -> None:
    ks = populated()
    later = NOW + 5001
    assert run(ks, "hlen", "h", now=later) == 0
    assert run(ks, "hgetall", "h", now=later) == Map([])
    # A write on an expired key starts from an empty hash.
    assert run(ks, "hset", "h", "new", "1", now=later) == 1
    assert run(ks, "hkeys", "h", now=later) == [b"new"]
    assert run(ks, "pttl", "h", now=later) == -1


def test_wrongtype_everywhere() -> None:
    ks = populated()
    wrong = Error("WRONGTYPE Operation against a key holding the wrong kind of value")
    for argv in (
        ["hget", "l", "f"],
        ["lpush", "h", "x"],
        ["sadd", "z", "m"],
        ["zadd", "s", "1", "m"],
        ["zrange", "str", "0", "-1"],
        ["smembers", "h"],
        ["lrange", "z", "0", "-1"],
        ["zunionstore", "d", "1", "h"],
        ["sinter", "s", "l"],
        ["rpoplpush", "l", "s"],
    ):
        assert run(ks, *argv) == wrong, argv
    assert run(ks, "get", "h") == wrong


def test_every_write_bumps_the_watch_version_and_noops_do_not() -> None:
    ks = populated()
    for argv in (
        ["hset", "h", "f1", "other"],
        ["hdel", "h", "f2"],
        ["lset", "l", "0", "q"],
        ["linsert", "l", "before", "b", "x"],
        ["srem", "s", "x"],
        ["smove", "s", "s9", "y"],
        ["zadd", "z", "5", "a"],
        ["zremrangebyrank", "z", "0", "0"],
        ["zpopmax", "z"],
        ["ltrim", "l", "0", "-1"],  # Redis signals LTRIM even when nothing goes
        ["hset", "h", "f1", "other"],  # ... and HSET of an unchanged value
    ):
        key = argv[1].encode()
        before = ks.watch_token(key, NOW)
        run(ks, *argv)
        assert ks.watch_token(key, NOW) != before, argv
    for argv in (
        ["hdel", "h", "missing"],
        ["srem", "s", "missing"],
        ["zadd", "z", "nx", "1", "c"],
        ["zrem", "z", "missing"],
        ["linsert", "l", "before", "missing", "x"],
        ["sadd", "s", "z"],
        ["zincrby", "z", "0", "c"],  # an unchanged score is no modification in Redis
    ):
        key = argv[1].encode()
        before = ks.watch_token(key, NOW)
        run(ks, *argv)
        assert ks.watch_token(key, NOW) == before, argv
    # SMOVE to a set that already holds the member changes only the source (as Redis signals).
    run(ks, "sadd", "s", "y")
    source, target = ks.watch_token(b"s", NOW), ks.watch_token(b"s9", NOW)
    assert run(ks, "smove", "s", "s9", "y") == 1
    assert ks.watch_token(b"s", NOW) != source
    assert ks.watch_token(b"s9", NOW) == target


def test_emptied_aggregates_delete_their_key() -> None:
    ks = populated()
    for argv in (
        ["hdel", "h", "f1", "f2"],
        ["ltrim", "l", "5", "10"],
        ["spop", "s", "10"],
        ["zremrangebyscore", "z", "-inf", "+inf"],
    ):
        run(ks, *argv)
        assert run(ks, "exists", argv[1]) == 0, argv


def test_watch_aborts_exec_after_a_type_write() -> None:
    ks = populated()
    token = ks.watch_token(b"z", NOW)
    run(ks, "zincrby", "z", "1", "a")
    txn = TxnOp(((b"zcard", b"z"),), ((b"z", token),))
    assert ks.execute(txn, NOW, 1) is NULL_ARRAY
    fresh = TxnOp(((b"zcard", b"z"),), ((b"z", ks.watch_token(b"z", NOW)),))
    assert ks.execute(fresh, NOW, 1) == [3]


# ------------------------------------------------------------------ determinism


@settings(max_examples=40, deadline=None)
@given(
    ops=st.lists(st.one_of(type_command(), random_command()), max_size=60),
    seed=st.integers(0, 2**32),
)
def test_two_replicas_agree(ops: list[list[bytes]], seed: int) -> None:
    """Same ops, same seeds: identical replies (random ones included) and digests."""
    a, b = Keyspace(), Keyspace()
    for i, argv in enumerate(ops):
        spec = lookup(argv[0])
        assert spec is not None
        if not spec.arity_ok(len(argv)):
            continue
        op = WriteOp(argv) if spec.route is Route.WRITE else ReadOp(argv)
        assert a.execute(op, NOW, seed + i) == b.execute(op, NOW, seed + i), argv
    assert a.digest() == b.digest()
    assert Keyspace.restore(a.snapshot()).digest() == a.digest()


def test_random_commands_follow_the_seed() -> None:
    ks = Keyspace()
    run(ks, "sadd", "s", *[str(i) for i in range(100)])
    picks = {run(ks, "srandmember", "s", seed=seed) for seed in range(20)}
    assert len(picks) > 5  # the seed matters...
    assert run(ks, "srandmember", "s", "5", seed=3) == run(ks, "srandmember", "s", "5", seed=3)


_PROBE = """
import sys
from aspen.kv.commands import Route, lookup
from aspen.kv.keyspace import Keyspace
from aspen.kv.ops import ReadOp, WriteOp
ks = Keyspace()
out = []
cmds = [[b"sadd", b"s"] + [b"m%d" % i for i in range(300)],
        [b"hset", b"h"] + [x for i in range(300) for x in (b"f%d" % i, b"v")],
        [b"srem", b"s", b"m7", b"m100"], [b"spop", b"s", b"3"], [b"srandmember", b"s", b"-4"],
        [b"hrandfield", b"h", b"3"], [b"smembers", b"s"], [b"hkeys", b"h"],
        [b"sscan", b"s", b"0"], [b"sscan", b"s", b"130", b"count", b"7"], [b"sunion", b"s"]]
for i, argv in enumerate(cmds):
    op = WriteOp(argv) if lookup(argv[0]).route is Route.WRITE else ReadOp(argv)
    out.append(repr(ks.execute(op, 0, 1000 + i)))
sys.stdout.write(ks.digest().hex() + "\\n" + "\\n".join(out))
"""


def test_same_replies_under_different_hash_seeds() -> None:
    """Python's bytes hash is randomised per process: replies must not depend on it."""
    outputs = set()
    for hashseed in ("1", "2", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": hashseed}
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE], env=env, capture_output=True, check=True, timeout=60
        )
        outputs.add(proc.stdout)
    assert len(outputs) == 1


def _fill(ks: Keyspace, kind: str, names: list[str]) -> None:
    if kind == "sscan":
        run(ks, "sadd", "k", *names)
    elif kind == "zscan":
        run(ks, "zadd", "k", *[x for i, n in enumerate(names) for x in (str(i % 7), n)])
    else:
        run(ks, "hset", "k", *[x for n in names for x in (n, "v")])


def _remove(ks: Keyspace, kind: str, names: list[str]) -> None:
    cmd = {"sscan": "srem", "zscan": "zrem", "hscan": "hdel"}[kind]
    run(ks, cmd, "k", *names)


@pytest.mark.parametrize("kind", ["sscan", "zscan", "hscan"])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_scan_returns_every_element_present_throughout(kind: str, data: st.DataObject) -> None:
    """Redis's SCAN guarantee, with elements removed and added between pages."""
    ks = Keyspace()
    names = [f"m{i}" for i in range(400)]
    _fill(ks, kind, names)
    churn = data.draw(st.sets(st.sampled_from(names), max_size=200), label="churn")
    stable = set(names) - churn
    pending = sorted(churn)
    count = data.draw(st.integers(1, 60), label="count")
    cursor, seen, fresh = b"0", set(), 0
    for _ in range(10_000):
        reply = run(ks, kind, "k", cursor, "count", str(count))
        assert isinstance(reply, list)
        cursor, page = reply
        seen.update(page[:: 1 if kind == "sscan" else 2])
        if cursor == b"0":
            break
        take = data.draw(st.integers(0, 20), label="remove")
        victims, pending = pending[:take], pending[take:]
        if victims:
            _remove(ks, kind, victims)
        if data.draw(st.booleans(), label="add"):
            fresh += 1
            _fill(ks, kind, [f"new{fresh}"])
    else:
        pytest.fail("scan did not finish")
    assert {n.encode() for n in stable} <= seen


def test_zscan_order_survives_a_snapshot() -> None:
    """A replica restored from a snapshot must answer ZSCAN pages like one that replayed."""
    ks = Keyspace()
    run(ks, "zadd", "z", *[x for i in range(300) for x in (str((i * 37) % 101), f"m{i}")])
    run(ks, "zincrby", "z", "1000", "m5")
    run(ks, "zrem", "z", "m7")
    restored = Keyspace.restore(ks.snapshot())
    for cursor in ("0", "100", "250"):
        assert run(ks, "zscan", "z", cursor) == run(restored, "zscan", "z", cursor)
    copied = Keyspace()
    assert run(ks, "copy", "z", "z2") == 1
    assert run(ks, "zscan", "z2", "0") == run(ks, "zscan", "z", "0")
    assert copied.digest() != ks.digest()
