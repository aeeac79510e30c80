"""Generated datasets of every type and encoding, and a server's contents, key by key.

Shared by the RDB tests (unit: files against redis-server; integration: SAVE, import,
backup). A dataset is a list of commands building it on any server; `contents` reads a server
back through redis-py as {key: (type, value, absolute expiry in ms or -1)}.
"""

from __future__ import annotations

import struct
from typing import Any

import redis
from hypothesis import strategies as st

from aspen.kv.dump import _length, _string, crc64
from aspen.kv.hashes import Hash
from aspen.kv.lists import List
from aspen.kv.sets import RSet
from aspen.kv.stream import Stream
from aspen.kv.zsets import ZSet
from aspen.rdb.reader import Record

Command = list[bytes]

_small = st.binary(max_size=12)
_text = st.one_of(
    _small,
    st.integers(-(2**63), 2**63 - 1).map(lambda i: str(i).encode()),  # integer encodings
    st.binary(min_size=60, max_size=200),  # past listpack/ziplist value limits
    st.tuples(st.binary(min_size=1, max_size=4), st.integers(30, 400)).map(
        lambda t: t[0] * t[1]),  # compressible: LZF
)
_score = st.one_of(st.floats(allow_nan=False, width=64), st.integers(-1000, 1000).map(float))


def _sizes(big: int) -> st.SearchStrategy[int]:
    return st.one_of(st.integers(1, 8), st.integers(100, big))  # compact and large encodings


@st.composite
def _value(draw: Any, kind: str, key: bytes) -> list[Command]:
    if kind == "string":
        return [[b"SET", key, draw(_text)]]
    if kind == "list":
        n = draw(_sizes(600))
        items = draw(st.lists(_text, min_size=n, max_size=n))
        return [[b"RPUSH", key, *items[i : i + 200]] for i in range(0, n, 200)]
    if kind == "set":
        members = draw(st.one_of(
            st.lists(st.integers(-(2**63), 2**63 - 1).map(lambda i: str(i).encode()),
                     min_size=1, max_size=draw(_sizes(700)), unique=True),  # intsets
            st.lists(_text, min_size=1, max_size=draw(_sizes(300)), unique=True)))
        return [[b"SADD", key, *members]]
    if kind == "hash":
        fields = draw(st.lists(_small, min_size=1, max_size=draw(_sizes(300)), unique=True))
        flat = [x for f in fields for x in (f, draw(_text))]
        return [[b"HSET", key, *flat]]
    if kind == "stream":
        stream: list[Command] = draw(_stream(key))
        return stream
    members = draw(st.lists(_small, min_size=1, max_size=draw(_sizes(300)), unique=True))
    flat = [x for m in members for x in (repr(draw(_score)).encode(), m)]
    return [[b"ZADD", key, *flat]]


@st.composite
def _stream(draw: Any, key: bytes) -> list[Command]:
    """Entries (often with the same field names: Redis's SAMEFIELDS), deletions, a trim,
    consumer groups with pending entries, acknowledged ones."""
    out: list[Command] = []
    n = draw(_sizes(400))
    names = draw(st.lists(st.sampled_from([b"a", b"b", b"temp", b"12"]), min_size=1,
                          max_size=3, unique=True))
    ms = draw(st.integers(1, 2**40))
    for i in range(n):
        fields = names if draw(st.integers(0, 4)) else [b"other%d" % i]
        flat = [x for f in fields for x in (f, draw(_text))]
        out.append([b"XADD", key, b"%d-%d" % (ms + i // 3, i % 3), *flat])
    for _ in range(draw(st.integers(0, 5))):
        i = draw(st.integers(0, n - 1))
        out.append([b"XDEL", key, b"%d-%d" % (ms + i // 3, i % 3)])
    if draw(st.booleans()):
        out.append([b"XTRIM", key, b"MAXLEN", b"~", b"%d" % draw(st.integers(0, n))])
    for g in range(draw(st.integers(0, 2))):
        group = b"g%d" % g
        out.append([b"XGROUP", b"CREATE", key, group, b"0"])
        for c in range(draw(st.integers(0, 3))):
            out.append([b"XREADGROUP", b"GROUP", group, b"c%d" % c, b"COUNT",
                        b"%d" % draw(st.integers(1, 20)), b"STREAMS", key, b">"])
        if draw(st.booleans()):
            out.append([b"XACK", key, group, b"%d-%d" % (ms, 0), b"%d-%d" % (ms, 1)])
    return out


@st.composite
def datasets(draw: Any, max_keys: int = 12) -> list[Command]:
    """Commands building a dataset of every type; some keys with a TTL (hours away, so no
    key expires while a test runs)."""
    commands: list[Command] = []
    kinds = draw(st.lists(st.sampled_from(["string", "list", "set", "hash", "zset", "stream"]),
                          min_size=1, max_size=max_keys))
    for i, kind in enumerate(kinds):
        key = b"%s:%d:" % (kind.encode(), i) + draw(st.binary(max_size=6))
        commands += draw(_value(kind, key))
        if draw(st.booleans()):
            commands.append([b"PEXPIRE", key, b"%d" % draw(st.integers(3_600_000, 10**9))])
    return commands


def load(client: redis.Redis, commands: list[Command]) -> None:
    pipe = client.pipeline(transaction=False)
    for c in commands:
        pipe.execute_command(*c)  # type: ignore[no-untyped-call]
    pipe.execute()


def contents(client: redis.Redis) -> dict[bytes, tuple[str, object, int]]:
    out: dict[bytes, tuple[str, object, int]] = {}
    for key in client.scan_iter(count=1000):
        raw = client.type(key)
        kind = raw.decode() if isinstance(raw, bytes) else str(raw)
        value: object
        if kind == "string":
            value = client.get(key)
        elif kind == "list":
            value = client.lrange(key, 0, -1)
        elif kind == "set":
            value = sorted(client.smembers(key))
        elif kind == "hash":
            value = sorted(client.hgetall(key).items())
        elif kind == "zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            info = client.xinfo_stream(key, full=True)
            info.pop("radix-tree-nodes")  # Aspen's estimate of Redis's rax (compatibility.md)
            value = (client.xrange(key), info)
        else:
            value = None
        out[key] = (kind, value, client.pexpiretime(key))
    return out


def record_contents(records: list[Record]) -> dict[bytes, tuple[str, object, int]]:
    """What `contents` would read from a server holding these records."""
    out: dict[bytes, tuple[str, object, int]] = {}
    for r in records:
        v = r.value
        expiry = -1 if r.expire_ms is None else r.expire_ms
        if isinstance(v, bytes):
            out[r.key] = ("string", v, expiry)
        elif isinstance(v, List):
            out[r.key] = ("list", list(v), expiry)
        elif isinstance(v, RSet):
            out[r.key] = ("set", sorted(v), expiry)
        elif isinstance(v, Hash):
            out[r.key] = ("hash", sorted(v.items()), expiry)
        elif isinstance(v, ZSet):
            out[r.key] = ("zset", [(m, s) for s, m in v.order.items()], expiry)
        elif isinstance(v, Stream):
            out[r.key] = ("stream", None, expiry)  # compared through a server (XINFO)
        else:
            out[r.key] = (r.unsupported or "?", None, expiry)
    return out


Contents = dict[bytes, tuple[str, object, int]]


def streams_unread(found: Contents) -> Contents:
    """`contents` without stream values (a reader's records are checked through a server)."""
    return {k: (t, None if t == "stream" else v, e) for k, (t, v, e) in found.items()}


def module_value(type_id: int) -> bytes:
    """A MODULE_2 value: the module type's id, then opcode-tagged fields, then EOF."""
    return (_length(type_id) + _length(2) + _length(42) + _length(5) + _string(b"payload")
            + _length(4) + struct.pack("<d", 1.5) + _length(0))


def with_module_key(data: bytes, key: bytes) -> bytes:
    """A saved file with one more key, of a module type, before EOF (checksum redone)."""
    body = data[:-9] + b"\x07" + _string(key) + module_value(0x1234567890ABCDEF) + b"\xff"
    return body + crc64(body).to_bytes(8, "little")
