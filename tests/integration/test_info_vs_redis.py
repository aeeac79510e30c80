"""INFO against a real redis-server 7.0.15: the same sections for every selector, and every
field name redis-server reports in a section present in Aspen's (names, not values).

Deliberate differences (docs/compatibility.md, "INFO"): Aspen adds a `# Raft` section (in
`all` / `everything` and by name) and a few `aspen_*` fields; `rdb_*`/`aof_*` and the
replication fields carry their nearest Raft meaning.
"""

from __future__ import annotations

import pytest
from vs_redis import clients

from harness.resp_wire import RespClient

pytestmark = [pytest.mark.slow, pytest.mark.differential]


def parse(text: object) -> dict[str, dict[str, str]]:
    assert isinstance(text, bytes), text
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in text.decode().split("\r\n"):
        if line.startswith("# "):
            current = sections.setdefault(line[2:], {})
        elif line:
            key, _, value = line.partition(":")
            current[key] = value
    return sections


def workload(client: RespClient) -> None:
    for cmd in ([b"SET", b"a", b"1"], [b"GET", b"a"], [b"INCR", b"a"], [b"LPUSH", b"a", b"x"],
                [b"GET"], [b"CONFIG", b"GET", b"maxmemory"], [b"NOPE"]):
        client.call(cmd)


@pytest.mark.parametrize("selector", [
    [], [b"default"], [b"all"], [b"everything"], [b"server"], [b"Server", b"CLIENTS"],
    [b"commandstats"], [b"errorstats"], [b"latencystats"], [b"keyspace", b"cpu"],
    [b"nonexistent"], [b"cluster", b"default"], [b"replication"], [b"persistence"],
])
def test_sections_and_field_names(redis_port: int, aspen_port: int,
                                  selector: list[bytes]) -> None:
    with clients(redis_port, aspen_port) as (redis, aspen):
        workload(redis)
        workload(aspen)
        want = parse(redis.call([b"INFO", *selector]))
        got = parse(aspen.call([b"INFO", *selector]))
        everything = any(s.lower() in (b"all", b"everything") for s in selector)
        assert [title for title in got if title != "Raft"] == list(want)
        assert ("Raft" in got) == everything
        for title, fields in want.items():
            missing = sorted(set(fields) - set(got[title]))
            assert missing == [], (title, missing)


def test_commandstats_and_errorstats(aspen_port: int) -> None:
    with clients(aspen_port) as (aspen,):
        assert aspen.call([b"CONFIG", b"RESETSTAT"]) == "OK"
        workload(aspen)
        info = parse(aspen.call([b"INFO", b"commandstats", b"errorstats", b"latencystats",
                                 b"stats"]))
        cmd = info["Commandstats"]
        assert cmd["cmdstat_set"].startswith("calls=1,usec=")
        assert cmd["cmdstat_set"].endswith(",rejected_calls=0,failed_calls=0")
        assert cmd["cmdstat_get"].endswith(",rejected_calls=1,failed_calls=0")  # GET: arity
        assert cmd["cmdstat_lpush"].endswith(",rejected_calls=0,failed_calls=1")  # WRONGTYPE
        assert cmd["cmdstat_config|get"].startswith("calls=1,")
        assert "cmdstat_nope" not in cmd
        assert info["Errorstats"] == {"errorstat_ERR": "count=2",
                                      "errorstat_WRONGTYPE": "count=1"}
        assert info["Stats"]["total_error_replies"] == "3"
        lat = info["Latencystats"]["latency_percentiles_usec_set"]
        assert lat.startswith("p50=") and ",p99=" in lat and ",p99.9=" in lat


def test_server_fields_clients_read(aspen_port: int) -> None:
    """What redis-py's test suite and other clients read at start."""
    with clients(aspen_port) as (aspen,):
        info = parse(aspen.call([b"INFO"]))
        server = info["Server"]
        assert server["arch_bits"] == "64" and server["redis_version"] == "7.0.15"
        assert server["tcp_port"] == str(aspen_port)
        assert info["Cluster"] == {"cluster_enabled": "0"}
        assert info["Memory"]["mem_allocator"] == "pymalloc"
        assert info["Persistence"]["aof_enabled"] == "1"
        assert info["Replication"]["role"] == "master"
        assert info["Replication"]["connected_slaves"] == "0"
