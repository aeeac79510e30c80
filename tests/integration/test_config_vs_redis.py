"""CONFIG GET / SET / RESETSTAT / REWRITE against a real redis-server 7.0.15.

The parameter names (every pattern), the values of the parameters Aspen does not deliberately
differ on, the replies and error texts of generated CONFIG SET commands (several pairs,
unknown, immutable, protected and duplicate names, every value type) and what CONFIG GET
shows afterwards are compared with redis-server; REWRITE is checked on the node's TOML file.
"""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_differential_wire import free_port, running
from vs_redis import ASPEN, CONFIG_TOML, clients

from aspen.node_config import load_config
from aspen.server import params
from harness.hypothesis_budget import scaled_examples
from harness.resp_wire import Err

pytestmark = [pytest.mark.slow, pytest.mark.differential]


# Values that differ by design (docs/compatibility.md, "CONFIG"): facts of the node, and what
# the fixtures start the two servers with.
DIFFERENT_VALUES = {
    "port", "bind", "dir", "save", "appendonly", "appendfsync", "databases",
    "pidfile", "logfile", "unixsocket",
}
# Not generated for CONFIG SET: they would change how the servers run (rebind, lock the test
# out, close idle clients, start AOF or TLS), or Aspen refuses them by design.
NOT_SET = DIFFERENT_VALUES | {
    "maxclients", "timeout", "requirepass", "tls-port", "oom-score-adj",
    "oom-score-adj-values", "proc-title-template", "cluster-announce-hostname",
    "activedefrag", "appenddirname", "appendfilename",
    # honoured limits that would make later tests' clients fail (OOM, closed on output)
    "maxmemory", "maxmemory-policy", "client-output-buffer-limit", "maxmemory-clients",
} | {p.name for p in params.PARAMS if p.name.startswith("tls-")}


def as_dict(reply: object) -> dict[bytes, bytes]:
    assert isinstance(reply, list), reply
    return dict(zip(reply[::2], reply[1::2], strict=True))


def test_every_name_and_default_value(redis_port: int, aspen_port: int) -> None:
    with clients(redis_port, aspen_port) as (redis, aspen):
        want = as_dict(redis.call([b"CONFIG", b"GET", b"*"]))
        got = as_dict(aspen.call([b"CONFIG", b"GET", b"*"]))
        assert sorted(got) == sorted(want)
        differ = {k: (want[k], got[k]) for k in want
                  if want[k] != got[k] and k.decode() not in DIFFERENT_VALUES}
        assert differ == {}
        # hidden parameters answer only to their exact name
        for name in (b"key-load-delay", b"use-exit-on-panic", b"watchdog-period"):
            assert name not in got
            assert aspen.call([b"CONFIG", b"GET", name]) == redis.call([b"CONFIG", b"GET", name])


@pytest.mark.parametrize("patterns", [
    [b"maxmemory*"], [b"*max*", b"hash-*"], [b"MAXMEMORY"], [b"Hash-Max-Ziplist-Entries"],
    [b"slave-*"], [b"?z"], [b"[hz]*"], [b"nonexistent"], [b"maxmemory", b"*memory"],
    [b"*-ziplist-*"], [b"key-load-*"],
])
def test_get_patterns(redis_port: int, aspen_port: int, patterns: list[bytes]) -> None:
    with clients(redis_port, aspen_port) as (redis, aspen):
        cmd = [b"CONFIG", b"GET", *patterns]
        want, got = as_dict(redis.call(cmd)), as_dict(aspen.call(cmd))
        assert sorted(got) == sorted(want)
        assert {k: v for k, v in got.items() if k.decode().lower() not in DIFFERENT_VALUES} == {
            k: v for k, v in want.items() if k.decode().lower() not in DIFFERENT_VALUES}


_SETTABLE = sorted(
    name for name, p in params.names()
    if p.name not in NOT_SET and not p.flags & params.Flag.HIDDEN
)
_NAMES = st.one_of(
    st.sampled_from(_SETTABLE),
    st.sampled_from(_SETTABLE).map(str.upper),
    st.sampled_from(["foo", "daemonize", "io-threads", "dbfilename", "databases",
                     "unixsocketperm", "cluster-enabled", "dir"]),
)
_VALUES = st.one_of(
    st.sampled_from([
        "yes", "no", "YES", "No", "maybe", "", "0", "1", "-1", "5", "100", "1000000",
        "1gb", "1GB", "5k", "64mb", "3kb", "10b", "1g", "2M", "99999999999999999999999",
        "10%", "100%", "200%", "-5", "abc", "1.5", " 5", "+5", "007", "0777",
        "noeviction", "allkeys-lru", "notice", "warning", "everysec", "default", "save",
        "nosave now", "save nosave", "now force", "KEA", "Ex", "g$lshzxetdnKEm", "AKEn",
        "Kq", "3600 1 300 100", "1 0", "x", "60 -1", "normal 0 0 0", "pubsub 1mb 2mb 30",
        "replica 1 2", "master 0 0 0", "50 99 99.9", "101", "1e2", "0.5", "-2", "clients",
        "allchannels", "yes no", "9223372036854775807", "9223372036854775808",
        "18446744073709551615", "18446744073709551616", "4294967296", "2147483648",
    ]),
    st.integers(-5, 70000).map(str),
)


@settings(max_examples=scaled_examples(300), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=st.lists(st.tuples(_NAMES, _VALUES), min_size=1, max_size=3),
       odd=st.booleans())
def test_set_matches_redis(redis_port: int, aspen_port: int,
                           pairs: list[tuple[str, str]], odd: bool) -> None:
    cmd = [b"CONFIG", b"SET"]
    for name, value in pairs:
        cmd += [name.encode(), value.encode()]
    if odd:
        cmd.append(b"extra")
    with clients(redis_port, aspen_port) as (redis, aspen):
        want, got = redis.call(cmd), aspen.call(cmd)
        assert type(got) is type(want) and got == want, (cmd, want, got)
        names = [name.encode() for name, _ in pairs
                 if name.lower() not in DIFFERENT_VALUES]
        assert not names or (as_dict(aspen.call([b"CONFIG", b"GET", *names]))
                == as_dict(redis.call([b"CONFIG", b"GET", *names]))), cmd


def test_set_is_atomic_and_errors(aspen_port: int) -> None:
    with clients(aspen_port) as (aspen,):
        before = as_dict(aspen.call([b"CONFIG", b"GET", b"hz", b"maxmemory"]))
        got = aspen.call([b"CONFIG", b"SET", b"hz", b"33", b"maxmemory", b"lots"])
        assert isinstance(got, Err)
        assert str(got) == ("ERR CONFIG SET failed (possibly related to argument 'maxmemory') "
                            "- argument must be a memory value")
        assert as_dict(aspen.call([b"CONFIG", b"GET", b"hz", b"maxmemory"])) == before
        got = aspen.call([b"CONFIG", b"SET", b"appendonly", b"no"])
        assert isinstance(got, Err) and "Raft log" in str(got)
        assert aspen.call([b"CONFIG", b"SET", b"appendonly", b"yes"]) == "OK"


def test_honoured_parameters_take_effect(aspen_port: int) -> None:
    with clients(aspen_port) as (aspen,):
        # proto-max-bulk-len: a new connection may not send a larger bulk string
        assert aspen.call([b"CONFIG", b"SET", b"proto-max-bulk-len", b"1mb"]) == "OK"
        try:
            with clients(aspen_port) as (other,):
                got = other.call([b"SET", b"k", b"x" * (1024 * 1024 + 1)])
                assert isinstance(got, Err) and "invalid bulk length" in str(got)
        finally:
            assert aspen.call([b"CONFIG", b"SET", b"proto-max-bulk-len", b"512mb"]) == "OK"
        # requirepass: new connections must AUTH
        assert aspen.call([b"CONFIG", b"SET", b"requirepass", b"s3cret"]) == "OK"
        try:
            with clients(aspen_port) as (other,):
                got = other.call([b"GET", b"k"])
                assert isinstance(got, Err) and str(got).startswith("NOAUTH")
                assert other.call([b"AUTH", b"s3cret"]) == "OK"
                assert aspen.call([b"CONFIG", b"GET", b"requirepass"]) == [
                    b"requirepass", b"s3cret"]
        finally:
            assert aspen.call([b"CONFIG", b"SET", b"requirepass", b""]) == "OK"
        # maxclients: a connection beyond it is refused
        assert aspen.call([b"CONFIG", b"SET", b"maxclients", b"1"]) == "OK"
        try:
            with clients(aspen_port) as (other,):
                got = other.call([b"PING"])
                assert isinstance(got, Err) and "max number of clients" in str(got)
        finally:
            assert aspen.call([b"CONFIG", b"SET", b"maxclients", b"10000"]) == "OK"


def test_rewrite_keeps_the_file(tmp_path: Path) -> None:
    port = free_port()
    path = tmp_path / "node.toml"
    path.write_text(CONFIG_TOML.format(port=port))
    with running([str(ASPEN), "node", "--config", str(path)], port), clients(port) as (aspen,):
        assert aspen.call([b"CONFIG", b"SET", b"maxclients", b"777",
                           b"hash-max-ziplist-entries", b"99", b"notify-keyspace-events",
                           b"Ex", b"maxmemory", b"1gb"]) == "OK"
        assert aspen.call([b"CONFIG", b"REWRITE"]) == "OK"
        text = path.read_text()
        assert "# a node for the CONFIG tests" in text and "# relative to this file" in text
        data = tomllib.loads(text)
        assert data["node"]["max_clients"] == 777
        assert data["redis"] == {"hash-max-listpack-entries": "99",
                                 "notify-keyspace-events": "xE"}
        assert data["node"]["maxmemory"] == 1073741824  # (a [node] key: honoured)
        assert data["http"] == {"listen": ""}
        config = load_config(path)  # still a valid config that means the same
        assert config.node.max_clients == 777 and config.node.maxmemory == 1073741824
        # back to the defaults: the [redis] keys go away again
        assert aspen.call([b"CONFIG", b"SET", b"maxclients", b"10000",
                           b"hash-max-ziplist-entries", b"512", b"notify-keyspace-events",
                           b"", b"maxmemory", b"0"]) == "OK"
        assert aspen.call([b"CONFIG", b"REWRITE"]) == "OK"
        data = tomllib.loads(path.read_text())
        assert data["node"]["max_clients"] == 10000
        assert data.get("redis", {}) == {}


def test_resetstat(aspen_port: int) -> None:
    with clients(aspen_port) as (aspen,):
        for _ in range(3):
            aspen.call([b"PING"])
        assert aspen.call([b"CONFIG", b"RESETSTAT"]) == "OK"
        info = aspen.call([b"INFO", b"stats"])
        assert isinstance(info, bytes)
        fields = dict(line.split(":", 1) for line in info.decode().splitlines()
                      if ":" in line)
        assert int(fields["total_commands_processed"]) <= 2


def test_node_without_file_cannot_rewrite(tmp_path: Path) -> None:
    port = free_port()
    args = [str(ASPEN), "node", "--port", str(port), "--dir", str(tmp_path)]
    with running(args, port), clients(port) as (aspen,):
        got = aspen.call([b"CONFIG", b"REWRITE"])
        assert isinstance(got, Err)
        assert str(got) == "ERR The server is running without a config file"


def test_start_with_redis_table(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "n.toml"
    config.write_text(f'[node]\nport = {port}\ndir = "d"\n[http]\nlisten = ""\n'
                      '[redis]\nhash-max-ziplist-value = "1kb"\nactiverehashing = false\n')
    with running([str(ASPEN), "node", "--config", str(config)], port), \
            clients(port) as (aspen,):
        got = as_dict(aspen.call([b"CONFIG", b"GET", b"hash-max-listpack-value",
                                  b"activerehashing"]))
        assert got == {b"hash-max-listpack-value": b"1024", b"activerehashing": b"no"}
    bad = tmp_path / "bad.toml"
    bad.write_text('[redis]\nhash-max-listpack-value = "lots"\n')
    proc = subprocess.run([str(ASPEN), "node", "--config", str(bad)], capture_output=True,
                          timeout=30)
    assert proc.returncode != 0
    assert b"redis.hash-max-listpack-value: argument must be a memory value" in proc.stderr
