"""DUMP / RESTORE between redis-server 7.0.15 and Aspen, both ways.

Values of every type and encoding Redis picks (int/raw/LZF-compressed strings, quicklists of
one and many listpack nodes, intsets and hash-table sets, listpack and hash-table hashes,
listpack and skiplist sorted sets) are built on redis-server, DUMPed there and RESTOREd into
Aspen; Aspen's contents must be Redis's. Then Aspen DUMPs them and redis-server RESTOREs that
under a new name; the copy must equal the original. RESTORE's options and errors (BUSYKEY,
TTL, ABSTTL, IDLETIME/FREQ checks, bad version, bad checksum, bad data) are compared too."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from data_oracle import NOW, Pair, redis_pair
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aspen.kv.dump import crc64
from harness.hypothesis_budget import scaled_examples

pytestmark = pytest.mark.differential


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    yield from redis_pair()


def _contents(pair: Pair, key: bytes, on_redis: bool) -> object:
    call = pair.redis if on_redis else pair.aspen
    kind = call([b"TYPE", key])
    if kind == "string":
        return ("string", call([b"GET", key]))
    if kind == "list":
        return ("list", call([b"LRANGE", key, b"0", b"-1"]))
    if kind == "set":
        return ("set", sorted(call([b"SMEMBERS", key])))  # type: ignore[type-var]
    if kind == "hash":
        flat = call([b"HGETALL", key])
        return ("hash", sorted(zip(flat[::2], flat[1::2], strict=True)))  # type: ignore[index]
    if kind == "zset":
        return ("zset", call([b"ZRANGE", key, b"0", b"-1", b"WITHSCORES"]))
    return (kind, None)


def _round_trip(pair: Pair, key: bytes) -> None:
    payload = pair.redis([b"DUMP", key])
    assert isinstance(payload, bytes)
    assert pair.aspen([b"RESTORE", key, b"0", payload]) == "OK"
    original = _contents(pair, key, on_redis=True)
    assert _contents(pair, key, on_redis=False) == original, key
    ours = pair.aspen([b"DUMP", key])
    assert isinstance(ours, bytes)
    copy = key + b":copy"
    assert pair.redis([b"RESTORE", copy, b"0", ours]) == "OK"
    assert _contents(pair, copy, on_redis=True) == original, key


SCRIPTS = [
    [b"SET", b"s:int", b"12345"],
    [b"SET", b"s:neg", b"-70000"],
    [b"SET", b"s:big", b"9223372036854775807"],
    [b"SET", b"s:short", b"hello"],
    [b"SET", b"s:empty", b""],
    [b"SET", b"s:lzf", b"abc" * 200],
    [b"SET", b"s:bin", bytes(range(256)) * 3],
    [b"RPUSH", b"l:small", b"a", b"1", b"-2", b"300", b"70000", b"5000000000", b"x" * 70],
    [b"RPUSH", b"l:many", *[b"element-%d" % i for i in range(3000)]],
    [b"RPUSH", b"l:big", b"y" * 10000, b"z" * 20000],
    [b"SADD", b"set:int", b"1", b"-5", b"70000", b"5000000000"],
    [b"SADD", b"set:str", b"a", b"b", b"c"],
    [b"SADD", b"set:big", *[b"%d" % i for i in range(600)]],
    [b"HSET", b"h:small", b"f", b"v", b"n", b"42", b"e", b""],
    [b"HSET", b"h:big", *[x for i in range(600) for x in (b"f%d" % i, b"v%d" % i)]],
    [b"HSET", b"h:long", b"f", b"v" * 100],
    [b"ZADD", b"z:small", b"1", b"a", b"2.5", b"b", b"-inf", b"c", b"1e300", b"d"],
    [b"ZADD", b"z:big", *[x for i in range(200) for x in (b"%d.5" % i, b"m%d" % i)]],
]


def test_values_of_every_encoding_round_trip(pair: Pair) -> None:
    pair.reset()
    for argv in SCRIPTS:
        pair.redis(argv)
    for argv in SCRIPTS:
        _round_trip(pair, argv[1])


def _payload(body: bytes, version: int = 10) -> bytes:
    data = body + version.to_bytes(2, "little")
    return data + crc64(data).to_bytes(8, "little")


def test_restore_options_and_errors_match_redis_server(pair: Pair) -> None:
    pair.reset()
    pair.check([b"SET", b"k", b"v"])
    good = pair.redis([b"DUMP", b"k"])
    assert isinstance(good, bytes)
    bad_crc = good[:-1] + bytes([good[-1] ^ 1])
    cases = [
        [b"RESTORE", b"k", b"0", good],
        [b"RESTORE", b"k", b"0", good, b"REPLACE"],
        [b"RESTORE", b"n", b"-1", good],
        [b"RESTORE", b"n", b"x", good],
        [b"RESTORE", b"n", b"0", bad_crc],
        [b"RESTORE", b"n", b"0", b"short"],
        [b"RESTORE", b"n", b"0", _payload(b"\x00\x03abc", version=11)],
        [b"RESTORE", b"n", b"0", _payload(b"\x00\x03ab")],
        [b"RESTORE", b"n", b"0", _payload(b"\x0f\x00")],
        [b"RESTORE", b"n", b"0", _payload(b"\x02\x00")],
        [b"RESTORE", b"n", b"0", _payload(b"\x02\x02\x01a\x01a")],
        [b"RESTORE", b"n", b"0", _payload(b"\x00\x03abc"), b"IDLETIME", b"-1"],
        [b"RESTORE", b"n", b"0", _payload(b"\x00\x03abc"), b"FREQ", b"256"],
        [b"RESTORE", b"n", b"0", _payload(b"\x00\x03abc"), b"FREQ", b"1", b"IDLETIME", b"1"],
        [b"RESTORE", b"n", b"0", _payload(b"\x00\x03abc"), b"bogus"],
        [b"RESTORE", b"n", b"0", _payload(b"\x00\x03abc"), b"IDLETIME", b"10", b"REPLACE"],
        [b"GET", b"n"],
        [b"RESTORE", b"e", b"1", _payload(b"\x00\x03abc"), b"ABSTTL"],
        [b"EXISTS", b"e"],
        [b"RESTORE", b"k", b"1", good, b"ABSTTL", b"REPLACE"],
        [b"EXISTS", b"k"],
        [b"RESTORE", b"t", b"100000", good],
        [b"DUMP", b"nokey"],
        [b"DUMP", b"t"],
    ]
    for protocol in (2, 3):
        for argv in cases:
            pair.check(argv, protocol)
        pair.check([b"DEL", b"n", b"t", b"e"])
        pair.check([b"SET", b"k", b"v"])
    ttl_ms = [b"RESTORE", b"abs", str(NOW + 50_000_000).encode(), good, b"ABSTTL"]
    assert pair.aspen(ttl_ms) == "OK"
    assert pair.aspen([b"PEXPIRETIME", b"abs"]) == NOW + 50_000_000


value_strategy = st.one_of(
    st.binary(max_size=300).map(lambda v: [b"SET", b"v", v]),
    st.lists(st.binary(max_size=80), min_size=1, max_size=300).map(
        lambda xs: [b"RPUSH", b"v", *xs]),
    st.lists(st.one_of(st.integers(-(2**63), 2**63 - 1).map(lambda n: str(n).encode()),
                       st.binary(max_size=70)), min_size=1, max_size=600).map(
        lambda xs: [b"SADD", b"v", *xs]),
    st.lists(st.tuples(st.binary(max_size=70), st.binary(max_size=70)), min_size=1,
             max_size=300).map(lambda ps: [b"HSET", b"v", *[x for p in ps for x in p]]),
    st.lists(st.tuples(st.floats(allow_nan=False).map(lambda f: repr(f).encode()),
                       st.binary(max_size=70)), min_size=1, max_size=200).map(
        lambda ps: [b"ZADD", b"v", *[x for p in ps for x in p]]),
)


@settings(
    max_examples=scaled_examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(argv=value_strategy)
def test_generated_values_round_trip(pair: Pair, argv: list[bytes]) -> None:
    pair.reset()
    pair.redis(argv)
    _round_trip(pair, b"v")


def test_an_hll_moves_between_redis_and_aspen_and_keeps_counting(pair: Pair) -> None:
    pair.reset()
    pair.redis([b"PFADD", b"hll", *[b"e%d" % i for i in range(5000)]])
    pair.redis([b"PFADD", b"small", b"a", b"b", b"c"])
    for key in (b"hll", b"small"):
        payload = pair.redis([b"DUMP", key])
        assert pair.aspen([b"RESTORE", key, b"0", payload]) == "OK"
        pair.check([b"GET", key])
        pair.check([b"PFCOUNT", key])
        pair.check([b"PFADD", key, *[b"more%d" % i for i in range(300)]])
        pair.check([b"PFCOUNT", key])
        back = pair.aspen([b"DUMP", key])
        assert pair.redis([b"RESTORE", key + b":back", b"0", back]) == "OK"
        assert pair.redis([b"GET", key + b":back"]) == pair.redis([b"GET", key])
