"""Numbered databases in the keyspace and the session: SELECT, MOVE, SWAPDB, COPY ... DB,
FLUSHDB/FLUSHALL, WATCH and MULTI across databases, scripts, INFO keyspace, the op and entry
encodings (database 0 byte-compatible, older forms still decoding) and snapshots.

The replies themselves are checked against redis-server by test_databases_differential.py."""

from __future__ import annotations

import cbor2
import pytest

from aspen.cluster import entry
from aspen.cluster.state import ReplicatedState
from aspen.kv.keyspace import Keyspace
from aspen.kv.ops import ReadOp, TxnOp, WriteOp, decode, normalised
from aspen.kv.session import Session
from aspen.resp import values as v
from harness.local_kv import LocalContext, LocalExecutor

T0 = 1_700_000_000_000
RANGE = v.Error("ERR DB index is out of range")
NOT_INT = v.Error("ERR value is not an integer or out of range")
SAME = v.Error("ERR source and destination objects are the same")


class Harness:
    def __init__(self, ks: Keyspace | None = None) -> None:
        self.now = T0
        self.ks = ks if ks is not None else Keyspace()
        self.ex = LocalExecutor(self.ks, lambda: self.now)
        self.ctx = LocalContext(self.ks, clock=lambda: self.now)
        self.s = Session(7, self.ctx)

    def session(self) -> Session:
        return Session(8, self.ctx)

    def __call__(self, *args: str | bytes, session: Session | None = None) -> object:
        s = session or self.s
        argv = [a.encode() if isinstance(a, str) else a for a in args]
        out = s.handle(argv)
        if isinstance(out, (ReadOp, WriteOp, TxnOp)):
            out = s.finish(out, self.ex.execute(out))
        return out


def test_select_errors_and_isolation() -> None:
    h = Harness()
    assert h("select", "16") == RANGE
    assert h("select", "-1") == RANGE
    assert h("select", "x") == NOT_INT
    assert h("select", "4294967296") == v.Error(
        "ERR value is out of range, value must between -2147483648 and 2147483647"
    )
    assert h("set", "k", "zero") == v.OK
    assert h("select", "3") == v.OK and h.s.db == 3
    assert h("get", "k") is None
    assert h("set", "k", "three") == v.OK
    assert h("dbsize") == 1 and h("keys", "*") == [b"k"]
    assert h("select", "0") == v.OK
    assert h("get", "k") == b"zero"
    h("select", "3")
    assert h("hello", "3") is not None and h.s.db == 3  # HELLO keeps the database
    assert h("reset") == v.SimpleString("RESET") and h.s.db == 0
    assert b"db=0 " in h("client", "info").text  # type: ignore[attr-defined]
    h("select", "5")
    assert b" db=5 " in h("client", "info").text  # type: ignore[attr-defined]


def test_configured_number_of_databases() -> None:
    h = Harness(Keyspace(databases=2))
    assert h("select", "1") == v.OK
    assert h("select", "2") == RANGE
    assert h("move", "k", "2") == RANGE
    assert h("swapdb", "0", "2") == RANGE


def test_move_keeps_ttl_and_refuses_existing() -> None:
    h = Harness()
    h("set", "k", "v", "px", "5000")
    assert h("move", "k", "0") == SAME
    assert h("move", "k", "x") == NOT_INT
    assert h("move", "k", "1") == 1
    assert h("exists", "k") == 0
    assert h("move", "k", "1") == 0  # no longer here
    h("select", "1")
    assert h("pttl", "k") == 5000
    h("select", "0")
    h("set", "k", "other")
    assert h("move", "k", "1") == 0  # exists there
    assert h("get", "k") == b"other"


def test_swapdb_and_watch() -> None:
    h = Harness()
    h("set", "a", "0")
    h("select", "1")
    h("set", "b", "1")
    h("rpush", "l", "x")
    assert h("swapdb", "x", "0") == v.Error("ERR invalid first DB index")
    assert h("swapdb", "0", "y") == v.Error("ERR invalid second DB index")
    assert h("swapdb", "0", "99") == RANGE
    other = h.session()
    assert h("watch", "b", session=other) == v.OK  # b in db 0: absent now
    assert h("watch", "a") == v.OK  # a in db 1: absent now
    assert h("swapdb", "0", "1", session=other) == v.OK
    assert h("get", "a") == b"0" and h("get", "b") is None
    h("select", "0", session=other)
    assert h("get", "b", session=other) == b"1"
    assert h("lrange", "l", "0", "-1", session=other) == [b"x"]
    h("multi")
    h("get", "a")
    assert h("exec") == v.NULL_ARRAY  # the watched key changed under it
    assert h("swapdb", "3", "3") == v.OK


def test_copy_db() -> None:
    h = Harness()
    h("set", "s", "v", "ex", "100")
    assert h("copy", "s", "s") == SAME
    assert h("copy", "s", "s", "db", "0") == SAME
    assert h("copy", "s", "s", "db", "99", "bogus") == RANGE  # the range is checked at once
    assert h("copy", "s", "s", "db", "2") == 1
    assert h("copy", "s", "s", "db", "2") == 0
    assert h("copy", "s", "s", "db", "2", "replace") == 1
    h("select", "2")
    assert h("get", "s") == b"v" and h("ttl", "s") == 100
    h("select", "0")
    assert h("get", "s") == b"v"


def test_flushdb_flushall_and_info_keyspace() -> None:
    h = Harness()
    h("set", "a", "1")
    h("select", "2")
    h("set", "b", "1", "ex", "10")
    h("set", "c", "1")
    info = h("info", "keyspace").text  # type: ignore[attr-defined]
    assert b"db0:keys=1,expires=0,avg_ttl=0\r\n" in info
    assert b"db2:keys=2,expires=1,avg_ttl=10000\r\n" in info
    assert b"db1:" not in info
    assert h("flushdb") == v.OK
    assert h("dbsize") == 0
    h("select", "0")
    assert h("dbsize") == 1
    h("select", "4")
    h("set", "z", "1")
    assert h("flushall") == v.OK
    for db in (0, 2, 4):
        h("select", str(db))
        assert h("dbsize") == 0
    assert b"db" not in h("info", "keyspace").text.split(b"\r\n", 1)[1]  # type: ignore[attr-defined]


def test_watch_is_per_database() -> None:
    h = Harness()
    other = h.session()
    h("watch", "k")  # k in db 0
    h("select", "1", session=other)
    h("set", "k", "x", session=other)  # k in db 1 is another key
    h("multi")
    h("set", "done", "1")
    assert h("exec") == [v.OK]
    h("select", "1")
    h("watch", "k")  # k in db 1, watched from db 1
    h("select", "0")
    h("set", "k", "x", session=other)  # db 1
    h("multi")
    h("get", "k")
    assert h("exec") == v.NULL_ARRAY


def test_select_inside_multi() -> None:
    h = Harness()
    h("multi")
    assert h("set", "k", "0") == v.QUEUED
    assert h("select", "2") == v.QUEUED
    assert h("set", "k", "2") == v.QUEUED
    assert h("select", "99") == v.QUEUED
    assert h("get", "k") == v.QUEUED
    assert h("exec") == [v.OK, v.OK, v.OK, RANGE, b"2"]
    assert h.s.db == 2
    h("select", "0")
    assert h("get", "k") == b"0"


def test_script_runs_in_callers_db_and_select_stays_inside() -> None:
    h = Harness()
    h("select", "1")
    h("set", "k", "one")
    script = "local a = redis.call('get', KEYS[1]); redis.call('select', '2'); " \
             "redis.call('set', KEYS[1], 'two'); return a"
    assert h("eval", script, "1", "k") == b"one"
    assert h.s.db == 1 and h("get", "k") == b"one"
    h("select", "2")
    assert h("get", "k") == b"two"
    assert h("eval", "return redis.pcall('select', '77')", "0") == RANGE
    h("multi")
    h("eval", "redis.call('select', '0'); return 1", "0")
    h("get", "k")
    assert h("exec") == [1, b"two"]  # the script's SELECT does not leak into the transaction


def test_active_expiry_in_every_database() -> None:
    h = Harness()
    h("select", "3")
    h("set", "k", "v", "px", "10")
    h("select", "0")
    h("set", "j", "v", "px", "10")
    h.now += 100
    assert sorted(h.ex.expire_some(100)) == [b"j", b"k"]
    assert h.ks.expires_count() == 0


def test_op_encoding_db0_unchanged_and_db_carried() -> None:
    assert WriteOp([b"set", b"k", b"v"]).encode() == cbor2.dumps([1, 1, [b"set", b"k", b"v"]])
    assert ReadOp([b"get", b"k"]).encode() == cbor2.dumps([1, 0, [b"get", b"k"]])
    for op in (
        WriteOp((b"set", b"k", b"v"), 3),
        ReadOp((b"get", b"k"), 15),
        TxnOp(((b"get", b"k"),), ((b"k", 4), (b"j", -2, 5)), 2),
        TxnOp(((b"get", b"k"),), ((b"k", 4),)),
    ):
        assert decode(op.encode()) == op
        if not isinstance(op, ReadOp):
            assert normalised(op) == op


def test_entry_encoding_db0_unchanged_and_db_carried() -> None:
    rid = entry.RequestId(1, 2, 3)
    plain = entry.OpItem(rid, 0, WriteOp((b"set", b"k", b"v")))
    assert entry.encode_items(5, [plain]) == cbor2.dumps(
        [2, 5, [[3, 1, 2, 3, 0, [b"set", b"k", b"v"]]]]
    )
    items = [
        entry.OpItem(rid, 0, WriteOp((b"set", b"k", b"v"), 7)),
        entry.OpItem(rid, 0, TxnOp(((b"select", b"1"), (b"get", b"k")), ((b"k", 1, 9),), 4)),
        entry.OpItem(rid, 0, TxnOp(((b"get", b"k"),), ((b"k", 1),))),
    ]
    assert entry.decode(entry.encode_items(5, items)).items == tuple(items)


def test_snapshot_of_db0_only_is_the_old_format_and_all_dbs_round_trip() -> None:
    h = Harness()
    h("set", "a", "1")
    h("select", "1")  # selecting alone leaves nothing behind
    h("get", "x")
    only0 = cbor2.loads(h.ks.snapshot())
    assert "dbs" not in only0 and len(only0) == 7
    h("set", "b", "2", "ex", "50")
    h("select", "9")
    h("rpush", "l", "x", "y")
    h("del", "gone")
    restored = Keyspace.restore(h.ks.snapshot())
    assert restored.digest() == h.ks.digest()
    h2 = Harness(restored)
    for db, key, want in ((0, "a", b"1"), (1, "b", b"2"), (0, "b", None)):
        h2("select", str(db))
        assert h2("get", key) == want
    h2("select", "1")
    assert h2("ttl", "b") == 50
    h2("select", "9")
    assert h2("lrange", "l", "0", "-1") == [b"x", b"y"]


def test_state_snapshot_written_before_databases_installs() -> None:
    # A snapshot as the previous release wrote it: one database, no "dbs".
    old = Keyspace()
    old.execute(WriteOp((b"set", b"k", b"v")), T0)
    state = ReplicatedState(old)
    state.applied_index = 10
    data = state.snapshot()
    assert "dbs" not in cbor2.loads(cbor2.loads(data)[5])
    back = ReplicatedState.restore(data, databases=4)
    assert back.keyspace.databases == 4
    assert back.keyspace.execute(ReadOp((b"get", b"k")), T0) == b"v"
    assert back.keyspace.execute(ReadOp((b"get", b"k"), 1), T0) is None


def test_replicas_agree_after_db_ops() -> None:
    ops = [
        WriteOp((b"set", b"a", b"1"), 1),
        WriteOp((b"set", b"a", b"0")),
        WriteOp((b"move", b"a", b"2"), 1),
        WriteOp((b"swapdb", b"2", b"5")),
        TxnOp(((b"set", b"t", b"1"), (b"select", b"6"), (b"set", b"t", b"6")), (), 3),
        WriteOp((b"copy", b"t", b"u", b"db", b"0"), 6),
        WriteOp((b"flushdb",), 3),
        WriteOp((b"sadd", b"s", b"m"), 15),
    ]
    a, b = Keyspace(), Keyspace()
    for i, op in enumerate(ops):
        assert a.execute(op, T0 + i, i) == b.execute(op, T0 + i, i)
        b = Keyspace.restore(b.snapshot())  # and through a snapshot at every step
        assert a.digest() == b.digest()
    assert a.execute(ReadOp((b"get", b"a"), 5), T0) == b"1"
    assert a.execute(ReadOp((b"get", b"a")), T0) == b"0"
    assert a.execute(ReadOp((b"get", b"u")), T0) == b"6"
    assert a.execute(ReadOp((b"get", b"a"), 99), T0) == RANGE


@pytest.mark.parametrize("db", [0, 1])
def test_blocking_pop_in_a_database_serves_from_that_database(db: int) -> None:
    ks = Keyspace()
    ks.execute(WriteOp((b"rpush", b"q", b"x"), 1 - db), T0)
    assert ks.execute(WriteOp((b"blpop", b"q", b"0"), db), T0) == v.NULL_ARRAY
    ks.execute(WriteOp((b"rpush", b"q", b"y"), db), T0)
    assert ks.get_read_in(db, b"q", T0) is not None
    assert ks.execute(WriteOp((b"aspen.bserve", b"q", b"blpop", b"q", b"0"), db), T0) == [
        b"q", b"y"]


# Written by the release before databases (main at 7e438a7): a state snapshot with a string,
# a hash, a list, a key with a TTL and a deleted key's tombstone; an entry with a SET and a
# MULTI/EXEC with a WATCH.
_OLD_SNAPSHOT = bytes.fromhex(
    "8601071b0000018bcfe568008080587ea761760165636c6f636b0765666c6f6f72006373657107646b6579"
    "738486417366737472696e674176f6000186416864686173688241664131f6000286416c646c6973748241"
    "614162f6000386417466737472696e6741781b0000018bcfe6eea005046a746f6d6273746f6e6573818241"
    "64076765787069726573814174"
)
_OLD_ENTRY = bytes.fromhex(
    "83021b0000018bcfe56800828603010203008343736574416b4176870401020400818244696e6372416e81"
    "82416b05"
)


def test_a_snapshot_and_an_entry_of_the_previous_release_load_as_db0() -> None:
    state = ReplicatedState.restore(_OLD_SNAPSHOT, databases=16)
    assert state.snapshot() == _OLD_SNAPSHOT  # taken again: byte for byte the same
    ks = state.keyspace
    assert ks.execute(ReadOp((b"get", b"s")), T0) == b"v"
    assert ks.execute(ReadOp((b"hget", b"h", b"f")), T0) == b"1"
    assert ks.execute(ReadOp((b"pttl", b"t")), T0) == 100_000
    assert ks.execute(ReadOp((b"dbsize",), 1), T0) == 0
    batch = entry.decode(_OLD_ENTRY)
    assert entry.encode_items(batch.leader_time_ms, batch.items) == _OLD_ENTRY
    ops = [item.op for item in batch.items if isinstance(item, entry.OpItem)]
    assert ops == [WriteOp((b"set", b"k", b"v")), TxnOp(((b"incr", b"n"),), ((b"k", 5),))]
    assert all(op.db == 0 for op in ops if not isinstance(op, bytes))


def test_a_script_stopped_by_its_budget_is_undone_in_every_database_it_touched() -> None:
    ks = Keyspace()
    ks.execute(WriteOp((b"set", b"k", b"before"), 2), T0)
    ks.execute(WriteOp((b"set", b"j", b"stays"), 4), T0)
    script = (b"redis.call('set', 'k', 'a') redis.call('select', '2') "
              b"redis.call('set', 'k', 'b') redis.call('select', '4') "
              b"redis.call('move', 'j', '5') return #string.rep('x', 2^30)")
    reply = ks.execute(WriteOp((b"eval", script, b"0"), 1), T0)
    assert isinstance(reply, v.Error) and "exceeded its budget" in reply.message
    for db, key, want in ((1, b"k", None), (2, b"k", b"before"), (4, b"j", b"stays"),
                          (5, b"j", None)):
        assert ks.execute(ReadOp((b"get", key), db), T0) == want, (db, key)


def test_active_expiry_does_not_starve_a_database() -> None:
    ks = Keyspace()
    for db in (0, 7):
        for i in range(50):
            ks.execute(WriteOp((b"set", b"k%d" % i, b"v", b"px", b"1"), db), T0)
    ks.execute(WriteOp((b"set", b"a", b"v")), T0)  # the first database then has other keys
    dropped = [len(ks.expire_some(T0 + 10 + t, 10)) for t in range(4)]
    assert dropped == [10, 10, 10, 10]
    left = {db: ks.execute(ReadOp((b"dbsize",), db), T0 + 100) for db in (0, 7)}
    assert left == {0: 1, 7: 0}  # every expired key reads as absent meanwhile
    # both databases had their turn: 20 dropped from each (INFO counts the others still stored)
    assert [s[:3] for s in ks.db_stats(T0 + 100)] == [(0, 31, 30), (7, 30, 30)]
