"""RDB in and out of real daemons, checked against redis-server 7.0.15 key by key.

- SAVE / BGSAVE on an `aspen node`: redis-server loads the file (DEBUG RELOAD NOSAVE reads
  its dir/dbfilename) and must hold every key, type, value and absolute expiry Aspen holds.
- `aspen import`: generated data on redis-server, SAVEd, imported (file and redis://) into a
  3-node cluster through the log; the cluster must hold what redis-server holds.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, given, settings

from aspen.rdb.client import RespConnection
from aspen.rdb.importer import import_file, import_live, parse_url
from harness.bench.servers import aspen_node, redis_server
from harness.daemons import DaemonCluster, started_cluster
from harness.hypothesis_budget import scaled_examples
from harness.rdb_dataset import contents, datasets, load, with_module_key
from harness.resp_wire import RespClient

pytestmark = pytest.mark.differential

_HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]


class Reference:
    def __init__(self, port: int, directory: Path) -> None:
        self.port = port
        self.client = redis.Redis(port=port)
        self.file = directory / "dump.rdb"

    def load_file(self, data: bytes) -> None:
        self.file.write_bytes(data)
        self.client.flushall()
        self.client.execute_command("DEBUG", "RELOAD", "NOSAVE")


@pytest.fixture(scope="module")
def reference() -> Iterator[Reference]:
    with tempfile.TemporaryDirectory(prefix="aspen-rdb-ref-") as tmp, redis_server(
        "--dir", tmp, "--dbfilename", "dump.rdb", "--enable-debug-command", "yes"
    ) as srv:
        yield Reference(srv.port, Path(tmp))


@pytest.fixture(scope="module")
def node() -> Iterator[redis.Redis]:
    with aspen_node() as srv:
        yield redis.Redis(port=srv.port)


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonCluster]:
    with started_cluster(3, tmp_path_factory.mktemp("rdb-cluster")) as c:
        c.wait_leader()
        yield c


def _saved_file(client: redis.Redis) -> bytes:
    cfg = client.config_get("dir")
    name = client.config_get("dbfilename")["dbfilename"]
    return (Path(cfg["dir"]) / name).read_bytes()


@settings(max_examples=scaled_examples(10), deadline=None, suppress_health_check=_HEALTH)
@given(data=datasets())
def test_save_writes_what_redis_server_loads(
    node: redis.Redis, reference: Reference, data: list[list[bytes]]
) -> None:
    node.flushall()
    load(node, data)
    ours = contents(node)
    assert node.save() is True
    reference.load_file(_saved_file(node))
    assert contents(reference.client) == ours


def test_bgsave_and_lastsave(node: redis.Redis, reference: Reference) -> None:
    node.flushall()
    node.set("a", "1")
    node.rpush("l", *range(100))
    node.execute_command(
        "FUNCTION", "LOAD", "REPLACE",
        "#!lua name=saved\nredis.register_function('saved_one', function() return 1 end)")
    before = node.lastsave()
    time.sleep(1.1)  # LASTSAVE has a one-second resolution
    raw = RespClient(node.connection_pool.connection_kwargs["port"])
    assert raw.call([b"BGSAVE"]) == "Background saving started"  # Redis's exact status text

    def done() -> bool:
        return node.info("persistence")["rdb_bgsave_in_progress"] == 0

    deadline = time.monotonic() + 20
    while not done() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert node.info("persistence")["rdb_last_bgsave_status"] == "ok"
    assert node.lastsave() > before
    reference.load_file(_saved_file(node))
    assert contents(reference.client) == contents(node)
    assert reference.client.fcall("saved_one", 0) == 1  # the library came along
    reference.client.execute_command("FUNCTION", "FLUSH")
    node.execute_command("FUNCTION", "FLUSH")
    assert raw.call([b"BGSAVE", b"NOW"]) == "ERR syntax error"
    assert raw.call([b"MULTI"]) == "OK"
    assert raw.call([b"SAVE"]) == "ERR Command not allowed inside a transaction"
    assert raw.call([b"EXEC"]) == "EXECABORT Transaction discarded because of previous errors."
    raw.close()


def _leader_client(cluster: DaemonCluster) -> redis.Redis:
    return cluster.client(cluster.wait_leader())


@settings(max_examples=scaled_examples(6), deadline=None, suppress_health_check=_HEALTH)
@given(data=datasets())
def test_import_of_a_redis_rdb_file_and_of_a_live_server(
    three: DaemonCluster, reference: Reference, data: list[list[bytes]]
) -> None:
    src = reference.client
    src.flushall()
    load(src, data)
    expected = contents(src)
    src.save()
    target = _leader_client(three)
    target.flushall()
    follower = next(i for i in three.members if i != three.wait_leader())
    with RespConnection("127.0.0.1", three.resp_port(follower)) as conn:  # writes forwarded
        counts = import_file(reference.file, conn, batch=7, progress_out=None)
    assert counts.imported == len(expected)
    assert counts.with_ttl == sum(1 for v in expected.values() if v[2] != -1)
    three.wait_applied(three.status(three.wait_leader())["commit_index"], three.members)
    for i in three.members:
        assert contents(three.client(i)) == expected, f"node {i}"
    target.flushall()
    with RespConnection("127.0.0.1", three.resp_port(follower)) as conn:
        counts = import_live(parse_url(f"redis://127.0.0.1:{reference.port}"), conn,
                             batch=5, progress_out=None, scan_count=3)
    got = contents(target)
    assert got.keys() == expected.keys()
    for key, (kind, value, expiry) in expected.items():  # PTTL is relative: allow the copy time
        assert got[key][:2] == (kind, value)
        assert (got[key][2] == -1) == (expiry == -1)
        assert abs(got[key][2] - expiry) < 2000


def test_import_cli_reports_unsupported_types_and_skips_them_only_when_asked(
    three: DaemonCluster, reference: Reference, tmp_path: Path
) -> None:
    src = reference.client
    src.flushall()
    src.set("plain", "v", px=7_200_000)
    src.hset("h", mapping={"a": "1"})
    src.xadd("events", {"f": "v"})
    src.execute_command(
        "FUNCTION", "LOAD", "REPLACE",
        "#!lua name=imported\nredis.register_function('imported_one', function() return 1 end)")
    src.select(2)
    src.set("other-db", "x")
    src.select(0)
    src.save()
    rdb = tmp_path / "with-module.rdb"  # a module value: no module in the reference server
    rdb.write_bytes(with_module_key(reference.file.read_bytes(), b"bloom"))
    target = _leader_client(three)
    target.flushall()
    to = f"127.0.0.1:{three.resp_port(1)}"
    cli = [sys.executable, "-m", "aspen.cli", "import", str(rdb), "--to", to]
    refused = subprocess.run(cli, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1
    assert "'bloom' (module " in refused.stderr and "nothing was imported" in refused.stderr
    assert target.dbsize() == 0
    done = subprocess.run([*cli, "--skip-unsupported"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "imported 4 keys (1 with a TTL)" in done.stdout
    assert "'bloom' (module " in done.stdout
    assert "1 keys into db 2" in done.stdout
    assert "import: 100% 5/5 keys" in done.stderr  # the progress (not a terminal: lines)
    assert sorted(target.keys()) == [b"events", b"h", b"plain"]
    db2 = redis.Redis(port=three.resp_port(three.wait_leader()), db=2)
    assert db2.get("other-db") == b"x"  # into the same database
    db2.close()
    assert target.pexpiretime("plain") == src.pexpiretime("plain")
    assert target.xrange("events") == src.xrange("events")
    assert target.fcall("imported_one", 0) == 1
    src.execute_command("FUNCTION", "FLUSH")
    src.flushall()
