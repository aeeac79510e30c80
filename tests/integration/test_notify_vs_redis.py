"""Keyspace notifications against a real redis-server 7.0.15: the same generated command
sequence on both, each watched by a subscriber to `__key*__:*`; the streams of notifications
received must be equal (channel and message, in order). Then a three-node cluster: a
subscriber on a follower sees the events of writes sent to the leader."""

from __future__ import annotations

import time

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.daemons import DaemonCluster, wait_until
from harness.hypothesis_budget import scaled_examples

pytestmark = [pytest.mark.slow, pytest.mark.differential]


KEYS = ["s", "l", "h", "z", "t", "x"]
_k = st.sampled_from(KEYS)
_v = st.sampled_from(["a", "b", "1", "2", "10"])
_n = st.sampled_from(["0", "1", "2", "-1", "100"])
_g = st.sampled_from(["g1", "g2"])
_cn = st.sampled_from(["c1", "c2"])


def _c(*parts: object) -> st.SearchStrategy[list[str]]:
    return st.tuples(*[p if isinstance(p, st.SearchStrategy) else st.just(p)
                       for p in parts]).map(list)


COMMANDS = st.one_of(
    _c("SET", _k, _v), _c("SET", _k, _v, "EX", "100"), _c("SET", _k, _v, "NX"),
    _c("SETNX", _k, _v), _c("SETEX", _k, "100", _v), _c("GETSET", _k, _v),
    _c("MSET", _k, _v, _k, _v), _c("APPEND", _k, _v), _c("SETRANGE", _k, _n, _v),
    _c("INCR", _k), _c("DECRBY", _k, _n), _c("INCRBYFLOAT", _k, "1.5"), _c("GETDEL", _k),
    _c("GETEX", _k, "EX", "50"), _c("GETEX", _k, "PERSIST"),
    _c("DEL", _k, _k), _c("UNLINK", _k), _c("EXPIRE", _k, "100"), _c("EXPIRE", _k, "-1"),
    _c("PEXPIRE", _k, "100000"), _c("PERSIST", _k), _c("RENAME", _k, _k),
    _c("RENAMENX", _k, _k), _c("COPY", _k, _k), _c("COPY", _k, _k, "REPLACE"),
    _c("LPUSH", _k, _v), _c("RPUSH", _k, _v, _v), _c("LPUSHX", _k, _v), _c("LPOP", _k),
    _c("RPOP", _k, "2"), _c("LSET", _k, _n, _v), _c("LTRIM", _k, _n, _n),
    _c("LREM", _k, "0", _v), _c("LINSERT", _k, "BEFORE", _v, _v),
    _c("RPOPLPUSH", _k, _k), _c("LMOVE", _k, _k, st.sampled_from(["LEFT", "RIGHT"]),
                                st.sampled_from(["LEFT", "RIGHT"])),
    _c("HSET", _k, _v, _v), _c("HSETNX", _k, _v, _v), _c("HDEL", _k, _v),
    _c("HINCRBY", _k, _v, _n), _c("HINCRBYFLOAT", _k, _v, "0.5"),
    _c("SADD", _k, _v, _v), _c("SREM", _k, _v), _c("SMOVE", _k, _k, _v),
    _c("SINTERSTORE", _k, _k, _k), _c("SUNIONSTORE", _k, _k),
    _c("ZADD", _k, _n, _v), _c("ZADD", _k, "INCR", _n, _v), _c("ZINCRBY", _k, _n, _v),
    _c("ZREM", _k, _v), _c("ZPOPMIN", _k), _c("ZREMRANGEBYSCORE", _k, "0", "1"),
    _c("ZUNIONSTORE", _k, "1", _k), _c("ZRANGESTORE", _k, _k, "0", "-1"),
    _c("XADD", _k, "*", "f", _v), _c("SETBIT", _k, _n, "1"), _c("PFADD", _k, _v),
    _c("SELECT", st.sampled_from(["0", "1"])), _c("MOVE", _k, st.sampled_from(["0", "1"])),
    _c("COPY", _k, _k, "DB", st.sampled_from(["0", "1"])), _c("SWAPDB", "0", "1"),
    # stream consumer groups (t_stream.c's xgroup-* events)
    _c("XADD", _k, "1-1", "f", _v),
    _c("XGROUP", "CREATE", _k, _g, st.sampled_from(["0", "$"])),
    _c("XGROUP", "CREATE", _k, _g, "0", "MKSTREAM"),
    _c("XGROUP", "CREATECONSUMER", _k, _g, _cn), _c("XGROUP", "DELCONSUMER", _k, _g, _cn),
    _c("XGROUP", "DESTROY", _k, _g), _c("XGROUP", "SETID", _k, _g, st.sampled_from(["0", "$"])),
    _c("XREADGROUP", "GROUP", _g, _cn, "COUNT", "1", "STREAMS", _k, ">"),
    _c("XCLAIM", _k, _g, _cn, "0", "1-1"), _c("XAUTOCLAIM", _k, _g, _cn, "0", "0"),
    _c("XACK", _k, _g, "1-1"),
)


def drain(sub: redis.client.PubSub, marker: str) -> list[tuple[bytes, bytes]]:
    """Messages up to (not including) the marker published on the sentinel channel."""
    out: list[tuple[bytes, bytes]] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        msg = sub.get_message(timeout=1.0)
        if msg is None or msg["type"] not in ("message", "pmessage"):
            continue
        if msg["channel"] == b"sentinel":
            if msg["data"] == marker.encode():
                return out
            continue
        out.append((msg["channel"], msg["data"]))
    raise AssertionError(f"no sentinel; got {out}")


def _subscriber(port: int) -> tuple[redis.Redis, redis.client.PubSub]:
    r = redis.Redis(port=port)
    sub = r.pubsub()
    sub.psubscribe("__key*__:*")
    sub.subscribe("sentinel")
    for _ in range(2):
        assert sub.get_message(timeout=5) is not None  # the two subscribe confirmations
    return r, sub


_COUNTER = [0]


@settings(max_examples=scaled_examples(60), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flags=st.sampled_from(["KEA", "KA", "EA", "Kg$", "El", "Ksz", "KEh", "KEAn", "Et", "KEx",
                              "Ktn"]),
       commands=st.lists(COMMANDS, min_size=1, max_size=12))
def test_same_notifications_as_redis(redis_port: int, aspen_port: int, flags: str,
                                     commands: list[list[str]]) -> None:
    want, got = (events(port, flags, commands) for port in (redis_port, aspen_port))
    assert got == want, commands


def events(port: int, flags: str, commands: list[list[str]]) -> list[tuple[bytes, bytes]]:
    """The notifications `commands` cause on the server at `port` under `flags`."""
    r, sub = _subscriber(port)
    try:
        r.flushall()
        assert r.config_set("notify-keyspace-events", flags)
        for cmd in commands:
            try:
                r.execute_command(*cmd)
            except redis.ResponseError:
                pass
        _COUNTER[0] += 1
        marker = f"end{_COUNTER[0]}"
        r.publish("sentinel", marker)
        return drain(sub, marker)
    finally:
        r.config_set("notify-keyspace-events", "")
        sub.close()
        r.close()


def test_stream_group_events(redis_port: int, aspen_port: int) -> None:
    commands = [c.split() for c in (
        "XGROUP CREATE s g 0 MKSTREAM", "XADD s 1-1 f v", "XGROUP CREATECONSUMER s g c1",
        "XGROUP CREATECONSUMER s g c1", "XREADGROUP GROUP g c2 STREAMS s >",
        "XCLAIM s g c3 0 1-1", "XAUTOCLAIM s g c4 0 0", "XGROUP SETID s g 0",
        "XGROUP DELCONSUMER s g c1", "XGROUP DELCONSUMER s g nobody", "XGROUP DESTROY s g",
        "XGROUP DESTROY s g")]
    want = events(redis_port, "KEtn", commands)
    assert (b"__keyevent@0__:xgroup-createconsumer", b"s") in want
    assert events(aspen_port, "KEtn", commands) == want


def test_expired_event(aspen_port: int) -> None:
    r, sub = _subscriber(aspen_port)
    try:
        r.config_set("notify-keyspace-events", "Ex")
        r.set("gone", "1", px=50)
        time.sleep(0.2)
        assert r.get("gone") is None
        r.publish("sentinel", "x1")
        assert drain(sub, "x1") == [(b"__keyevent@0__:expired", b"gone")]
    finally:
        r.config_set("notify-keyspace-events", "")
        sub.close()
        r.close()


def test_follower_subscriber_sees_leader_writes(cluster: DaemonCluster) -> None:
    leader = cluster.wait_leader()
    follower = next(i for i in cluster.voters if i != leader)
    r, sub = _subscriber(cluster.resp_port(follower))
    try:
        assert r.config_set("notify-keyspace-events", "KEA")  # on the follower only
        writer = cluster.client(leader)
        writer.set("k", "v")
        writer.lpush("l", "a")
        writer.delete("k")
        # the follower applies them after the leader answered: wait for its apply
        wait_until("the follower applied", lambda: r.exists("l") == 1, timeout=10)
        r.publish("sentinel", "f1")
        assert drain(sub, "f1") == [
            (b"__keyspace@0__:k", b"set"), (b"__keyevent@0__:set", b"k"),
            (b"__keyspace@0__:l", b"lpush"), (b"__keyevent@0__:lpush", b"l"),
            (b"__keyspace@0__:k", b"del"), (b"__keyevent@0__:del", b"k"),
        ]
        # the leader's setting is its own: nothing set there, so it publishes nothing
        assert cluster.client(leader).config_get("notify-keyspace-events") == {
            "notify-keyspace-events": ""}
    finally:
        sub.close()
        r.close()


def test_follower_subscriber_sees_evictions(cluster: DaemonCluster) -> None:
    """maxmemory on the leader (which decides evictions and logs them as ASPEN.EVICT): a
    subscriber on a follower gets `evicted` for exactly the keys gone there."""
    leader = cluster.wait_leader()
    follower = next(i for i in cluster.voters if i != leader)
    r, sub = _subscriber(cluster.resp_port(follower))
    try:
        assert r.config_set("notify-keyspace-events", "Ee")
        writer = cluster.client(leader)
        for node in cluster.voters:
            c = cluster.client(node)
            assert c.config_set("maxmemory-policy", "allkeys-lru")
            assert c.config_set("maxmemory", "2mb")
        value = b"v" * 1000
        names = [b"key:%05d" % i for i in range(6000)]
        pipe = writer.pipeline(transaction=False)
        for name in names:
            pipe.set(name, value)
        assert all(pipe.execute())
        writer.set("last", "1")
        wait_until("the follower applied", lambda: r.exists("last") == 1, timeout=20)
        r.publish("sentinel", "ev1")
        seen = drain(sub, "ev1")
        gone = {n for n in names if not r.exists(n)}
        assert gone  # 6 MB of values into 2 MB: most were evicted
        assert {ch for ch, _ in seen} == {b"__keyevent@0__:evicted"}
        assert {key for _, key in seen} == gone and len(seen) == len(gone)
    finally:
        for node in cluster.voters:
            cluster.client(node).config_set("maxmemory", "0")
        sub.close()
        r.close()


def test_a_replaced_key_is_new_again(redis_port: int, aspen_port: int) -> None:
    """RENAME onto a key, COPY ... REPLACE and RESTORE ... REPLACE delete the key they replace
    and add it anew: Redis says `new` for it even though it existed."""
    r = redis.Redis(port=redis_port)
    try:
        r.flushall()
        r.set("src", "v")
        dumped = r.dump("src")
        assert dumped is not None
    finally:
        r.close()
    commands = [["SET", "a", "1"], ["SET", "b", "2"], ["RENAME", "a", "b"],
                ["SET", "d", "x"], ["COPY", "b", "d", "REPLACE"], ["COPY", "b", "d"],
                ["RESTORE", "d", "0", dumped, "REPLACE"], ["RENAME", "d", "d"]]
    want = events(redis_port, "KEAn", commands)
    assert want.count((b"__keyevent@0__:new", b"b")) == 2
    assert want.count((b"__keyevent@0__:new", b"d")) == 3
    assert events(aspen_port, "KEAn", commands) == want
