"""SAVE of a keyspace with several databases: each database's keys follow its SELECTDB, and
redis-server 7.0.15 loads the file into the same databases (our reader agrees)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import redis

from aspen.kv.keyspace import Keyspace
from aspen.kv.ops import WriteOp
from aspen.rdb import read_rdb
from aspen.rdb.save import write_snapshot
from harness.bench.servers import redis_server

pytestmark = pytest.mark.differential

NOW = 1_700_000_000_000


def test_save_writes_every_database_and_redis_loads_them() -> None:
    ks = Keyspace()
    for db, argv in ((0, (b"set", b"a", b"0")), (3, (b"set", b"a", b"3")),
                     (3, (b"rpush", b"l", b"x", b"y")), (15, (b"sadd", b"s", b"m")),
                     (7, (b"set", b"gone", b"1")), (7, (b"del", b"gone"))):
        ks.execute(WriteOp(argv, db), NOW)
    with tempfile.TemporaryDirectory(prefix="aspen-rdb-db-") as tmp, redis_server(
        "--dir", tmp, "--dbfilename", "dump.rdb", "--enable-debug-command", "yes"
    ) as srv:
        path = Path(tmp) / "dump.rdb"
        assert write_snapshot(path, ks.snapshot(), NOW) == 4
        records, _ = read_rdb(path.read_bytes())
        assert sorted((r.db, r.key) for r in records) == [(0, b"a"), (3, b"a"), (3, b"l"),
                                                           (15, b"s")]
        r = redis.Redis(port=srv.port)
        r.execute_command("DEBUG", "RELOAD", "NOSAVE")
        assert r.get("a") == b"0" and r.dbsize() == 1
        r3 = redis.Redis(port=srv.port, db=3)
        assert r3.get("a") == b"3" and r3.lrange("l", 0, -1) == [b"x", b"y"]
        assert redis.Redis(port=srv.port, db=15).smembers("s") == {b"m"}
        assert redis.Redis(port=srv.port, db=7).dbsize() == 0
