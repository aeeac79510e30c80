"""Streams in the keyspace: determinism of what replicas compute, snapshots, COPY/RENAME/TYPE,
and how many entries a range read in a big stream looks at."""

from __future__ import annotations

import pytest

from aspen.kv.keyspace import Keyspace
from aspen.kv.ops import ReadOp, WriteOp
from aspen.kv.stream import Node
from aspen.resp.values import Error, Map, SimpleString


def w(ks: Keyspace, *argv: str | bytes, now: int = 1000) -> object:
    raw = [a.encode() if isinstance(a, str) else a for a in argv]
    return ks.execute(WriteOp(raw), now)


def r(ks: Keyspace, *argv: str | bytes, now: int = 1000) -> object:
    raw = [a.encode() if isinstance(a, str) else a for a in argv]
    return ks.execute(ReadOp(raw), now)


def busy_stream() -> Keyspace:
    """Entries over several nodes, deletions, two groups, pending entries, claims."""
    ks = Keyspace()
    for i in range(250):
        w(ks, "xadd", "s", "*", "f", str(i), now=1000 + i // 3)
    w(ks, "xadd", "s", "*", "other", "x" * 300, now=2000)
    w(ks, "xdel", "s", "1000-1", "1010-0")
    w(ks, "xgroup", "create", "s", "g1", "0")
    w(ks, "xgroup", "create", "s", "g2", "$", "entriesread", "5")
    w(ks, "xreadgroup", "group", "g1", "alice", "count", "20", "streams", "s", ">", now=3000)
    w(ks, "xreadgroup", "group", "g1", "bob", "count", "5", "streams", "s", ">", now=3100)
    w(ks, "xclaim", "s", "g1", "bob", "0", "1000-0", "1001-0", now=3200)
    w(ks, "xack", "s", "g1", "1002-0")
    w(ks, "pexpire", "s", "100000")
    return ks


def test_star_ids_come_from_the_entry_time_and_never_go_back() -> None:
    ks = Keyspace()
    assert w(ks, "xadd", "s", "*", "a", "1", now=5000) == b"5000-0"
    assert w(ks, "xadd", "s", "*", "a", "1", now=5000) == b"5000-1"
    # a new leader whose clock is behind the last ID: the last ms, next sequence
    assert w(ks, "xadd", "s", "*", "a", "1", now=4000) == b"5000-2"
    assert w(ks, "xadd", "s", "9000-*", "a", "1", now=1) == b"9000-0"
    assert w(ks, "xadd", "s", "*", "a", "1", now=6000) == b"9000-1"
    assert w(ks, "xadd", "s", "*", "a", "1", now=9001) == b"9001-0"
    # the sequence of `<ms>-*` cannot overflow into the next ms (redis-server's own text)
    assert w(ks, "xadd", "s", "9002-18446744073709551615", "a", "1") == b"9002-18446744073709551615"
    too_large = Error("ERR Elements are too large to be stored")
    assert w(ks, "xadd", "s", "9002-*", "a", "1") == too_large


def test_replicas_applying_the_same_ops_hold_identical_pels() -> None:
    a, b = busy_stream(), busy_stream()
    assert a.digest() == b.digest()
    pending = r(a, "xpending", "s", "g1", "-", "+", "100", now=4000)
    assert pending == r(b, "xpending", "s", "g1", "-", "+", "100", now=4000)
    assert isinstance(pending, list) and len(pending) == 24
    # idle and delivery counts come from the op's time, not from the local clock
    assert pending[0] == [b"1000-0", b"bob", 800, 2]
    assert pending[1] == [b"1000-2", b"alice", 1000, 1]
    assert pending[2] == [b"1001-0", b"bob", 800, 2]


def test_snapshot_round_trip_keeps_entries_groups_and_pels() -> None:
    ks = busy_stream()
    restored = Keyspace.restore(ks.snapshot())
    assert restored.digest() == ks.digest()
    for argv in (
        ["xrange", "s", "-", "+"],
        ["xinfo", "stream", "s", "full", "count", "0"],
        ["xinfo", "groups", "s"],
        ["xinfo", "consumers", "s", "g1"],
        ["xpending", "s", "g1"],
        ["pttl", "s"],
    ):
        assert r(restored, *argv, now=5000) == r(ks, *argv, now=5000), argv
    # the restored stream keeps working the same way: node boundaries and trimming included
    for target in (ks, restored):
        w(target, "xadd", "s", "maxlen", "~", "120", "*", "f", "v", now=6000)
    assert restored.digest() == ks.digest()
    length = r(ks, "xlen", "s")
    assert r(restored, "xlen", "s") == length
    assert isinstance(length, int) and 120 <= length < 200  # whole nodes only


def test_copy_is_independent_and_rename_moves_groups() -> None:
    ks = busy_stream()
    assert w(ks, "copy", "s", "c") == 1
    w(ks, "xadd", "c", "*", "k", "v", now=9000)
    w(ks, "xgroup", "destroy", "c", "g1")
    assert r(ks, "xlen", "s") != r(ks, "xlen", "c")
    assert len(r(ks, "xinfo", "groups", "s")) == 2  # type: ignore[arg-type]
    assert w(ks, "rename", "c", "d") == SimpleString("OK")
    groups = r(ks, "xinfo", "groups", "d")
    assert isinstance(groups, list) and len(groups) == 1
    assert r(ks, "type", "d") == SimpleString("stream")
    assert r(ks, "scan", "0", "type", "stream") == [b"0", [b"s", b"d"]]


def test_empty_stream_stays_a_key() -> None:
    ks = Keyspace()
    w(ks, "xadd", "s", "1-1", "a", "b")
    assert w(ks, "xdel", "s", "1-1") == 1
    assert r(ks, "exists", "s") == 1 and r(ks, "xlen", "s") == 0
    info = r(ks, "xinfo", "stream", "s")
    assert isinstance(info, Map)
    assert dict(info.items)[b"max-deleted-entry-id"] == b"1-1"


def test_range_read_in_a_big_stream_costs_log_n_plus_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Counted, not timed: the entries a range read looks at, in a stream of 200k."""
    ks = Keyspace()
    stream_argv = [b"xadd", b"s", b"", b"f", b"v"]
    for i in range(1, 200_001):
        stream_argv[2] = b"%d-0" % i
        ks.execute(WriteOp(stream_argv), 0)
    looked = [0]
    real = Node.id_at

    def counting(self: Node, i: int) -> int:
        looked[0] += 1
        return real(self, i)

    monkeypatch.setattr(Node, "id_at", counting)
    reply = r(ks, "xrange", "s", "100000", "+", "count", "100")
    assert isinstance(reply, list) and len(reply) == 100 and reply[0][0] == b"100000-0"
    assert looked[0] <= 100 + 20  # the 100 entries, plus a bisection's worth (log n)
    looked[0] = 0
    reply = r(ks, "xrevrange", "s", "100000", "-", "count", "100")
    assert isinstance(reply, list) and reply[-1][0] == b"99901-0"
    assert looked[0] <= 100 + 20
