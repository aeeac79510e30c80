"""Numbered databases against redis-server 7.0.15, reply by reply (RESP2).

Generated sequences mix SELECT, MOVE, SWAPDB, COPY ... DB, FLUSHDB, FLUSHALL, MULTI/EXEC
(with SELECT inside), WATCH, scripts that SELECT, and the reads that show which database a
key is in (GET, DBSIZE, KEYS, SCAN, EXISTS, TTL, TYPE, LRANGE, OBJECT ENCODING, DUMP and
RESTORE, INFO keyspace, CLIENT INFO's db=). Aspen runs in process with the clock frozen and
redis-server in real time, so TTLs are long (nothing expires during a run) and TTL replies
may differ by a second; INFO keyspace's avg_ttl (an estimate Redis updates while sampling) is
left out of the comparison, and so are DUMP's bytes of a list (Aspen writes another of the RDB
list encodings: test_dump_differential.py checks that they restore both ways).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from data_oracle import Pair, redis_pair, typed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.hypothesis_budget import scaled_examples
from harness.resp_wire import Err, Verbatim

pytestmark = pytest.mark.differential

KEYS = [b"a", b"b", b"c"]
GOOD_DBS = [b"0", b"1", b"2", b"15"]
BAD_DBS = [b"16", b"-1", b"x", b"99999999999"]
VALUES = [b"1", b"two", b"3"]

key = st.sampled_from(KEYS)
db = st.one_of(st.sampled_from(GOOD_DBS), st.sampled_from(GOOD_DBS),
               st.sampled_from(GOOD_DBS), st.sampled_from(BAD_DBS))
value = st.sampled_from(VALUES)


def w(*ws: bytes) -> st.SearchStrategy[list[bytes]]:
    return st.just(list(ws))


select = st.tuples(w(b"SELECT"), db).map(lambda t: [*t[0], t[1]])
move = st.tuples(key, db).map(lambda t: [b"MOVE", t[0], t[1]])
swapdb = st.tuples(db, db).map(lambda t: [b"SWAPDB", t[0], t[1]])
copy = st.tuples(key, key, st.one_of(st.just([]), db.map(lambda d: [b"DB", d])),
                 st.sampled_from([[], [b"REPLACE"]])).map(
    lambda t: [b"COPY", t[0], t[1], *t[2], *t[3]])
set_ = st.tuples(key, value).map(lambda t: [b"SET", t[0], t[1]])
reads = st.one_of(
    key.map(lambda k: [b"GET", k]),
    st.sampled_from([[b"DBSIZE"], [b"KEYS", b"*"], [b"SCAN", b"0", b"COUNT", b"1000"],
                     [b"SCAN", b"0", b"COUNT", b"1000", b"MATCH", b"a*"],
                     [b"SCAN", b"0", b"COUNT", b"1000", b"TYPE", b"list"], [b"RANDOMKEY"],
                     [b"INFO", b"keyspace"], [b"CLIENT", b"INFO"]]),
    key.map(lambda k: [b"LRANGE", k, b"0", b"-1"]),
    key.map(lambda k: [b"EXISTS", k]),
    key.map(lambda k: [b"TYPE", k]),
    key.map(lambda k: [b"TTL", k]),
    key.map(lambda k: [b"OBJECT", b"ENCODING", k]),
    key.map(lambda k: [b"DUMP", k]),
)
others = st.one_of(
    st.sampled_from([[b"FLUSHDB"], [b"FLUSHDB", b"ASYNC"], [b"FLUSHALL"], [b"MULTI"],
                     [b"EXEC"], [b"DISCARD"], [b"UNWATCH"]]),
    st.tuples(key, value).map(lambda t: [b"RPUSH", t[0], t[1]]),
    key.map(lambda k: [b"EXPIRE", k, b"1000"]),
    key.map(lambda k: [b"DEL", k]),
    key.map(lambda k: [b"WATCH", k]),
    st.tuples(key, st.sampled_from([[], [b"REPLACE"]])).map(lambda t: [
        b"RESTORE", t[0], b"0",
        b"\x00\x03abc\n\x00\xd9\xac0=Ar\xa2\xe2", *t[1]]),  # DUMP of "abc" by redis-server
    st.tuples(key, db).map(lambda t: [
        b"EVAL", b"local r = redis.pcall('select', ARGV[1]); "
        b"if type(r) == 'table' and r.err then return r.err end; "
        b"return {redis.call('get', KEYS[1]), redis.call('dbsize')}", b"1", t[0], t[1]]),
)
# the database commands and plain reads and writes most, the rest now and then
command = st.one_of(select, move, swapdb, copy, set_, set_, reads, reads, reads, others)

_KEYSPACE_LINE = re.compile(rb"^(db\d+):keys=(\d+),expires=(\d+),avg_ttl=\d+$")


def same(argv: list[bytes], ours: object, theirs: object) -> bool:
    name = argv[0].upper()
    if name in (b"KEYS",) and isinstance(ours, list) and isinstance(theirs, list):
        return sorted(ours) == sorted(theirs)
    if name == b"SCAN" and isinstance(ours, list) and isinstance(theirs, list):
        return ours[0] == theirs[0] and sorted(ours[1]) == sorted(theirs[1])
    if name == b"DUMP" and isinstance(ours, bytes) and isinstance(theirs, bytes):
        return ours == theirs or (ours[0] != 0 and theirs[0] != 0)  # a list: both say so
    if name == b"RANDOMKEY":
        return (ours is None) == (theirs is None)
    if name == b"TTL" and isinstance(ours, int) and isinstance(theirs, int):
        return ours == theirs or (ours > 0 and abs(ours - theirs) <= 1)
    if name == b"INFO" and isinstance(ours, bytes) and isinstance(theirs, bytes):
        return _keyspace(ours) == _keyspace(theirs)
    if name == b"CLIENT" and isinstance(ours, bytes) and isinstance(theirs, bytes):
        return _db_field(ours) == _db_field(theirs)
    if name == b"EXEC" and isinstance(ours, list) and isinstance(theirs, list):
        return len(ours) == len(theirs) and all(
            typed(o) == typed(t) or _loose(o, t) for o, t in zip(ours, theirs, strict=True)
        )
    return typed(ours) == typed(theirs)


def _loose(ours: object, theirs: object) -> bool:
    """Inside EXEC: the order-free and clock-bound replies, by shape (the queued command is
    not known here; its kind shows in the reply)."""
    if (isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs) == 2
            and isinstance(ours[1], list) and isinstance(theirs[1], list)):  # SCAN
        return ours[0] == theirs[0] and sorted(ours[1]) == sorted(theirs[1])
    if isinstance(ours, list) and isinstance(theirs, list):  # KEYS
        return sorted(map(repr, ours)) == sorted(map(repr, theirs))
    if isinstance(ours, bytes) and isinstance(theirs, bytes) and ours.startswith(b"# Keyspace"):
        # INFO queued in MULTI is answered by the session after the transaction ran (a
        # difference of every session-level command, docs/compatibility.md): by shape only
        return theirs.startswith(b"# Keyspace")
    if isinstance(ours, bytes) and isinstance(theirs, bytes):  # INFO, CLIENT INFO, RANDOMKEY
        return (_keyspace(ours) == _keyspace(theirs) and _db_field(ours) == _db_field(theirs)
                and (b"\n" in ours) == (b"\n" in theirs))
    if isinstance(ours, int) and isinstance(theirs, int):  # TTL
        return ours > 0 and abs(ours - theirs) <= 1
    return False


def _keyspace(text: bytes) -> list[tuple[bytes, ...]]:
    out = []
    for line in text.splitlines():
        m = _KEYSPACE_LINE.match(line.strip())
        if m:
            out.append(m.groups())
    return out


def _db_field(text: bytes) -> bytes | None:
    m = re.search(rb" db=(\d+) ", text)
    return m.group(1) if m else None


def _reset(pair: Pair) -> None:
    """A fresh Aspen session and keyspace; the redis connection out of MULTI, in db 0."""
    c = pair.clients[2]
    c.call([b"DISCARD"])
    c.call([b"UNWATCH"])
    assert c.call([b"SELECT", b"0"]) == "OK"
    pair.reset()


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    yield from redis_pair()


@settings(max_examples=scaled_examples(150), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(command, min_size=20, max_size=60))
def test_databases_like_redis(pair: Pair, commands: list[list[bytes]]) -> None:
    _reset(pair)
    for argv in commands:
        theirs = pair.redis(argv)
        ours = pair.aspen(argv)
        if isinstance(ours, Verbatim):
            ours = bytes(ours)
        assert same(argv, ours, theirs), f"{argv!r}:\n  aspen: {ours!r}\n  redis: {theirs!r}"


def test_errors_like_redis(pair: Pair) -> None:
    _reset(pair)
    for argv in (
        [b"SELECT"], [b"SELECT", b"1", b"2"], [b"SELECT", b" 1"], [b"SELECT", b"+1"],
        [b"MOVE", b"k"], [b"MOVE", b"k", b"0"], [b"MOVE", b"k", b"-1"], [b"SWAPDB", b"0"],
        [b"SWAPDB", b"a", b"b"], [b"SWAPDB", b"0", b"b"], [b"SWAPDB", b"1", b"1"],
        [b"COPY", b"k", b"k", b"DB"], [b"COPY", b"k", b"j", b"DB", b"1", b"DB", b"x"],
        [b"COPY", b"k", b"k", b"REPLACE", b"DB", b"0"], [b"FLUSHDB", b"x"],
        [b"FLUSHALL", b"SYNC", b"x"],
    ):
        theirs = pair.redis(argv)
        ours = pair.aspen(argv)
        assert isinstance(theirs, Err) or theirs is not None
        assert typed(ours) == typed(theirs), f"{argv!r}: aspen {ours!r} redis {theirs!r}"
