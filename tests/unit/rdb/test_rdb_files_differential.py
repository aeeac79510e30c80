"""RDB files against redis-server 7.0.15, both ways.

Generated datasets of every type and encoding are built on redis-server, which SAVEs them; our
reader must see exactly what the server holds (every key, type, value and absolute expiry).
Then our writer writes those records back and the server loads our file (DEBUG RELOAD NOSAVE
reads dir/dbfilename): it must hold the same again. Redis 6.2's encodings (version 9 files:
ziplists, quicklists of ziplists, zipmaps) are built by `legacy_rdb` below and loaded by both
the server and our reader, which must agree.
"""

from __future__ import annotations

import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aspen.kv.dump import crc64
from aspen.rdb import RdbError, RdbParser, read_rdb, write_rdb
from harness.bench.servers import redis_server
from harness.hypothesis_budget import scaled_examples
from harness.rdb_dataset import (
    contents,
    datasets,
    load,
    record_contents,
    streams_unread,
    with_module_key,
)

pytestmark = pytest.mark.differential

_HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]


class Server:
    def __init__(self, port: int, directory: Path) -> None:
        self.client = redis.Redis(port=port)
        self.file = directory / "dump.rdb"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with tempfile.TemporaryDirectory(prefix="aspen-rdb-") as tmp, redis_server(
        "--dir", tmp, "--dbfilename", "dump.rdb", "--enable-debug-command", "yes"
    ) as srv:
        yield Server(srv.port, Path(tmp))


@settings(max_examples=scaled_examples(12), deadline=None, suppress_health_check=_HEALTH)
@given(data=datasets())
def test_we_read_what_redis_saves_and_redis_loads_what_we_write(
    server: Server, data: list[list[bytes]]
) -> None:
    r = server.client
    r.flushall()
    load(r, data)
    original = contents(r)
    r.save()
    records, parser = read_rdb(server.file.read_bytes())
    assert parser.version == 10
    assert parser.aux[b"redis-ver"] == b"7.0.15"
    assert record_contents(records) == streams_unread(original)
    assert {rec.db for rec in records} <= {0}
    write_rdb(server.file, [(rec.key, rec.value, rec.expire_ms) for rec in records])
    r.flushall()
    r.execute_command("DEBUG", "RELOAD", "NOSAVE")
    assert contents(r) == original


def test_databases_functions_streams_and_unsupported_types(server: Server) -> None:
    r = server.client
    r.flushall()
    r.execute_command("FUNCTION", "FLUSH")
    r.set("a", "1")
    r.xadd("stream", {"f": "v"})
    r.xgroup_create("stream", "g", id="0")
    r.xreadgroup("g", "c", {"stream": ">"})
    r.set("b", "2", px=5_000_000)
    code = "#!lua name=lib1\nredis.register_function('one', function() return 1 end)"
    r.execute_command("FUNCTION", "LOAD", code)
    r.select(3)
    r.set("in3", "x")
    r.select(0)
    r.save()
    original = contents(r)
    records, parser = read_rdb(with_module_key(server.file.read_bytes(), b"mod"))
    assert parser.functions == [code.encode()]
    by_key = {rec.key: rec for rec in records}
    assert by_key[b"mod"].unsupported is not None and by_key[b"mod"].value is None
    assert by_key[b"mod"].unsupported.startswith("module ")
    assert by_key[b"in3"].db == 3 and by_key[b"a"].db == 0
    assert by_key[b"b"].expire_ms == r.pexpiretime("b")
    # what we write (functions included) loads back
    r.execute_command("FUNCTION", "FLUSH")
    write_rdb(server.file, [(x.key, x.value, x.expire_ms) for x in records if x.value],
              functions=parser.functions)
    r.flushall()
    r.execute_command("DEBUG", "RELOAD", "NOSAVE")
    assert r.fcall("one", 0) == 1
    assert sorted(r.keys()) == [b"a", b"b", b"in3", b"stream"]  # (one database: the brief)
    assert contents(r) == {**original, b"in3": ("string", b"x", -1)}
    r.execute_command("FUNCTION", "FLUSH")
    r.flushall()


def test_damaged_files_are_refused(server: Server) -> None:
    r = server.client
    r.flushall()
    r.set("k", "v" * 100)
    r.save()
    data = server.file.read_bytes()
    bad = bytearray(data)
    bad[20] ^= 0xFF
    with pytest.raises(RdbError, match="checksum"):
        read_rdb(bytes(bad))
    with pytest.raises(RdbError):
        read_rdb(data[:-5])
    with pytest.raises(RdbError, match="magic"):
        read_rdb(b"NOTRDB0010")
    with pytest.raises(RdbError, match="version"):
        read_rdb(b"REDIS0012" + data[9:])
    # checksum 0: written by a server with `rdbchecksum no`; not checked, as Redis does
    assert len(read_rdb(data[:-8] + bytes(8))[0]) == 1


# ---------------------------------------------------------------- Redis 6.2's encodings


def _zl_entry(prev: int, item: bytes) -> bytes:
    head = bytes([prev]) if prev < 254 else b"\xfe" + struct.pack("<I", prev)
    try:
        v = int(item)
        ok = str(v).encode() == item
    except ValueError:
        ok = False
    if ok and 0 <= v <= 12:
        body = bytes([0xF1 + v])
    elif ok and -(2**7) <= v < 2**7:
        body = b"\xfe" + v.to_bytes(1, "little", signed=True)
    elif ok and -(2**15) <= v < 2**15:
        body = b"\xc0" + v.to_bytes(2, "little", signed=True)
    elif ok and -(2**23) <= v < 2**23:
        body = b"\xf0" + v.to_bytes(3, "little", signed=True)
    elif ok and -(2**31) <= v < 2**31:
        body = b"\xd0" + v.to_bytes(4, "little", signed=True)
    elif ok and -(2**63) <= v < 2**63:
        body = b"\xe0" + v.to_bytes(8, "little", signed=True)
    elif len(item) < 64:
        body = bytes([len(item)]) + item
    elif len(item) < 16384:
        body = bytes([0x40 | (len(item) >> 8), len(item) & 0xFF]) + item
    else:
        body = b"\x80" + len(item).to_bytes(4, "big") + item
    return head + body


def ziplist(items: list[bytes]) -> bytes:
    entries = bytearray()
    prev = 0
    tail = 10
    for item in items:
        tail = 10 + len(entries)
        e = _zl_entry(prev, item)
        entries += e
        prev = len(e)
    total = 10 + len(entries) + 1
    return (struct.pack("<IIH", total, tail, min(len(items), 65535)) + bytes(entries)
            + b"\xff")


def _string(s: bytes) -> bytes:
    n = len(s)
    if n < 64:
        return bytes([n]) + s
    if n < 16384:
        return bytes([0x40 | (n >> 8), n & 0xFF]) + s
    return b"\x80" + n.to_bytes(4, "big") + s


def zipmap(pairs: list[tuple[bytes, bytes]]) -> bytes:
    out = bytearray([len(pairs)])
    for f, v in pairs:
        out += bytes([len(f)]) + f + bytes([len(v)]) + b"\x00" + v
    return bytes(out + b"\xff")


def legacy_rdb(keys: list[tuple[int, bytes, bytes]]) -> bytes:
    """A version 9 file (Redis 6.2) of (type, key, encoded value) records."""
    body = bytearray(b"REDIS0009\xfa" + _string(b"redis-ver") + _string(b"6.2.14"))
    body += b"\xfe\x00"
    for kind, key, value in keys:
        body += bytes([kind]) + _string(key) + value
    body += b"\xff"
    return bytes(body) + crc64(bytes(body)).to_bytes(8, "little")


_item = st.one_of(st.binary(max_size=20), st.binary(min_size=64, max_size=300),
                  st.integers(-(2**63), 2**63 - 1).map(lambda i: str(i).encode()),
                  st.integers(-20, 20).map(lambda i: str(i).encode()))
_field = st.binary(min_size=1, max_size=20)


@st.composite
def legacy_records(draw: st.DrawFn) -> list[tuple[int, bytes, bytes]]:
    out = []
    items = draw(st.lists(_item, min_size=1, max_size=40))
    out.append((10, b"list:ziplist", _string(ziplist(items))))
    nodes = draw(st.lists(st.lists(_item, min_size=1, max_size=10), min_size=1, max_size=4))
    out.append((14, b"list:quicklist", bytes([len(nodes)])
                + b"".join(_string(ziplist(n)) for n in nodes)))
    fields = draw(st.lists(_field, min_size=1, max_size=20, unique=True))
    flat = [x for f in fields for x in (f, draw(_item))]
    out.append((13, b"hash:ziplist", _string(ziplist(flat))))
    small = [(f, draw(st.binary(max_size=20))) for f in fields]
    out.append((9, b"hash:zipmap", _string(zipmap(small))))
    members = draw(st.lists(_field, min_size=1, max_size=20, unique=True))
    scores = [draw(st.one_of(st.integers(-99, 99).map(str), st.floats(-1e6, 1e6).map(repr)))
              for _ in members]
    pairs = sorted(zip(members, scores, strict=True), key=lambda p: (float(p[1]), p[0]))
    out.append((12, b"zset:ziplist", _string(ziplist([x for m, s in pairs
                                                       for x in (m, s.encode())]))))
    return out


@settings(max_examples=scaled_examples(25), deadline=None, suppress_health_check=_HEALTH)
@given(records=legacy_records())
def test_redis_62_encodings_read_as_redis_loads_them(
    server: Server, records: list[tuple[int, bytes, bytes]]
) -> None:
    data = legacy_rdb(records)
    ours = record_contents(list(RdbParser(data).records()))
    server.file.write_bytes(data)
    r = server.client
    r.flushall()
    r.execute_command("DEBUG", "RELOAD", "NOSAVE")
    assert contents(r) == ours
