"""SLOWLOG, CLIENT KILL and WAIT against a real redis-server 7.0.15 (replies and error texts;
entries compared by shape, since durations and ids differ), and WAIT on a three-node cluster."""

from __future__ import annotations

import time

import pytest
from vs_redis import clients

from harness.daemons import DaemonCluster
from harness.resp_wire import Err, RespClient

pytestmark = [pytest.mark.slow, pytest.mark.differential]


def both(redis_port: int, aspen_port: int, *cmds: list[bytes]) -> list[tuple[object, object]]:
    with clients(redis_port, aspen_port) as (redis, aspen):
        return [(redis.call(c), aspen.call(c)) for c in cmds]


@pytest.mark.parametrize("cmd", [
    [b"SLOWLOG", b"HELP"], [b"SLOWLOG", b"GET", b"-2"], [b"SLOWLOG", b"GET", b"x"],
    [b"SLOWLOG", b"GET", b"1", b"2"], [b"SLOWLOG", b"NOPE"], [b"SLOWLOG"],
    [b"SLOWLOG", b"LEN", b"x"], [b"WAIT", b"x", b"0"], [b"WAIT", b"0", b"-1"],
    [b"WAIT", b"0", b"x"], [b"WAIT", b"0", b"0"], [b"WAIT", b"1", b"50"],
    [b"CLIENT", b"KILL", b"1.2.3.4:5"], [b"CLIENT", b"KILL", b"ID", b"0"],
    [b"CLIENT", b"KILL", b"ID", b"x"], [b"CLIENT", b"KILL", b"ID", b"999999"],
    [b"CLIENT", b"KILL", b"TYPE", b"bogus"], [b"CLIENT", b"KILL", b"USER", b"nobody"],
    [b"CLIENT", b"KILL", b"SKIPME", b"maybe"], [b"CLIENT", b"KILL", b"BOGUS", b"1"],
    [b"CLIENT", b"KILL", b"ID", b"1", b"TYPE"], [b"CLIENT", b"KILL", b"MAXAGE", b"x"],
    [b"CLIENT", b"KILL", b"USER", b"default", b"ID", b"999999"],
    [b"CLIENT", b"KILL", b"TYPE", b"master"], [b"CLIENT", b"KILL", b"ADDR", b"1.1.1.1:1"],
    [b"CLIENT", b"PAUSE", b"x"], [b"CLIENT", b"PAUSE", b"-1"],
    [b"CLIENT", b"PAUSE", b"10", b"foo"], [b"CLIENT", b"PAUSE", b"1", b"WRITE"],
    [b"CLIENT", b"PAUSE", b"1", b"all", b"x"], [b"CLIENT", b"UNPAUSE"],
    [b"CLIENT", b"NO-EVICT", b"maybe"], [b"CLIENT", b"NO-EVICT", b"on"],
    [b"CLIENT", b"GETREDIR"], [b"LATENCY", b"HELP"], [b"LATENCY", b"LATEST"],
    [b"LATENCY", b"HISTORY"], [b"LATENCY", b"HISTORY", b"command"], [b"LATENCY", b"RESET"],
    [b"LATENCY", b"RESET", b"command", b"foo"], [b"LATENCY", b"NOPE"],
    [b"LATENCY", b"HISTOGRAM", b"nosuch"], [b"LATENCY", b"DOCTOR", b"x"], [b"LOLWUT"],
    [b"LOLWUT", b"VERSION", b"x"], [b"LOLWUT", b"VERSION", b"1"], [b"LOLWUT", b"foo"],
    [b"LOLWUT", b"VERSION"], [b"LOLWUT", b"VERSION", b"-1", b"x"],
    [b"LOLWUT", b"VERSION", b"5", b"x"], [b"LOLWUT", b"VERSION", b"6", b"1", b"y"],
    [b"CLIENT", b"KILL", b"LADDR", b"1.1.1.1:1"], [b"CLIENT", b"KILL", b"USER", b"default",
                                                    b"MAXAGE", b"100000"],
])
def test_replies_match_redis(redis_port: int, aspen_port: int, cmd: list[bytes]) -> None:
    [(want, got)] = both(redis_port, aspen_port, cmd)
    assert type(got) is type(want) and got == want, (cmd, want, got)


def test_slowlog_entries(redis_port: int, aspen_port: int) -> None:
    for port in (redis_port, aspen_port):
        with clients(port) as (c,):
            assert c.call([b"CONFIG", b"SET", b"slowlog-log-slower-than", b"0"]) == "OK"
            assert c.call([b"SLOWLOG", b"RESET"]) == "OK"
            c.call([b"CLIENT", b"SETNAME", b"me"])
            c.call([b"SET", b"k", b"v" * 200])
            c.call([b"RPUSH", b"l", *[b"%d" % i for i in range(40)]])
            c.call([b"CONFIG", b"SET", b"requirepass", b""])
            entries = c.call([b"SLOWLOG", b"GET", b"-1"])
            assert c.call([b"CONFIG", b"SET", b"slowlog-log-slower-than", b"10000"]) == "OK"
            assert isinstance(entries, list)
            by_cmd = {e[3][0]: e for e in entries}  # type: ignore[index]
            rpush = by_cmd[b"RPUSH"][3]
            assert len(rpush) == 32 and rpush[-1] == b"... (11 more arguments)"
            assert by_cmd[b"SET"][3][2] == b"v" * 128 + b"... (72 more bytes)"
            assert by_cmd[b"CONFIG"][3] == [b"CONFIG", b"SET", b"requirepass", b"(redacted)"]
            assert by_cmd[b"SET"][5] == b"me" and b":" in by_cmd[b"SET"][4]
            assert [e[0] for e in entries] == sorted((e[0] for e in entries), reverse=True)
            assert c.call([b"SLOWLOG", b"LEN"]) == len(entries) + 1  # (the GET itself)
            c.call([b"CONFIG", b"SET", b"slowlog-max-len", b"2"])
            c.call([b"SET", b"a", b"1"])
            assert c.call([b"SLOWLOG", b"LEN"]) == 2
            c.call([b"CONFIG", b"SET", b"slowlog-max-len", b"128"])


def test_client_kill(aspen_port: int) -> None:
    with clients(aspen_port, aspen_port, aspen_port) as (me, a, b):
        a.call([b"CLIENT", b"SETNAME", b"a"])
        a_id = a.call([b"CLIENT", b"ID"])
        assert me.call([b"CLIENT", b"KILL", b"ID", b"%d" % a_id]) == 1  # type: ignore[str-format]
        with pytest.raises((ConnectionError, OSError, EOFError)):
            a.call([b"PING"])
        info = b.call([b"CLIENT", b"INFO"])
        assert isinstance(info, bytes)
        addr = info.split(b" addr=")[1].split(b" ")[0]
        assert me.call([b"CLIENT", b"KILL", addr]) == "OK"  # the old form
        with pytest.raises((ConnectionError, OSError, EOFError)):
            b.call([b"PING"])
        # SKIPME yes by default: killing every normal client spares the caller
        with clients(aspen_port) as (c,):
            assert c.call([b"PING"]) == "PONG"
            killed = me.call([b"CLIENT", b"KILL", b"TYPE", b"normal"])
            assert isinstance(killed, int) and killed >= 1
            assert me.call([b"PING"]) == "PONG"
            with pytest.raises((ConnectionError, OSError, EOFError)):
                c.call([b"PING"])
        # SKIPME no: the caller gets its reply, then is closed
        assert me.call([b"CLIENT", b"KILL", b"TYPE", b"normal", b"SKIPME", b"no"]) == 1
        with pytest.raises((ConnectionError, OSError, EOFError)):
            me.call([b"PING"])


def test_client_pause(aspen_port: int) -> None:
    with clients(aspen_port, aspen_port) as (admin, other):
        assert other.call([b"SET", b"p", b"1"]) == "OK"
        assert admin.call([b"CLIENT", b"PAUSE", b"400", b"WRITE"]) == "OK"
        start = time.monotonic()
        assert other.call([b"GET", b"p"]) == b"1"  # reads go on under WRITE
        assert time.monotonic() - start < 0.3
        assert other.call([b"SET", b"p", b"2"]) == "OK"  # held until the pause ends
        assert time.monotonic() - start >= 0.35
        # UNPAUSE releases the held commands at once
        assert admin.call([b"CLIENT", b"PAUSE", b"100000", b"WRITE"]) == "OK"
        other.send([b"SET", b"p", b"3"])
        other.send([b"GET", b"p"])  # behind the held SET: waits for it, in order
        time.sleep(0.2)
        assert admin.call([b"CLIENT", b"UNPAUSE"]) == "OK"
        assert other.read() == "OK" and other.read() == b"3"
        # ALL holds every command (CLIENT UNPAUSE too, as in Redis): only its timeout ends it
        assert admin.call([b"CLIENT", b"PAUSE", b"300", b"ALL"]) == "OK"
        start = time.monotonic()
        assert other.call([b"GET", b"p"]) == b"3"
        assert time.monotonic() - start >= 0.25


def test_monitor_lines_match_redis(redis_port: int, aspen_port: int) -> None:
    cmds = [[b"SET", b"k", b'va"l\\ue\n\x00\xff'], [b"GET", b"k"], [b"CONFIG", b"GET", b"hz"],
            [b"LPUSH", b"l", b"a b"], [b"PING"], [b"GET"]]
    seen = []
    for port in (redis_port, aspen_port):
        with clients(port, port) as (mon, other):
            assert mon.call([b"MONITOR"]) == "OK"
            for cmd in [*cmds, [b"ECHO", b"end"]]:
                other.call(cmd)
            lines: list[str] = []
            while not lines or lines[-1] != '"ECHO" "end"':  # (admin and refused: not shown)
                line = mon.read()
                assert isinstance(line, str)
                stamp, _, rest = line.partition(" ")
                float(stamp)
                db_addr, _, args = rest.partition("] ")
                assert db_addr.startswith("[0 127.0.0.1:")
                lines.append(args)
            seen.append(lines)
    assert seen[1] == seen[0]


def test_latency_events(aspen_port: int) -> None:
    with clients(aspen_port) as (c,):
        assert c.call([b"CONFIG", b"SET", b"latency-monitor-threshold", b"1"]) == "OK"
        try:
            c.call([b"RPUSH", b"big", *[b"%d" % i for i in range(200_000)]])
            latest = c.call([b"LATENCY", b"LATEST"])
            assert isinstance(latest, list) and latest
            # RPUSH is flagged fast: its event is fast-command, as in Redis
            entry = next(e for e in latest if e[0] == b"fast-command")  # type: ignore[index]
            assert entry[2] >= 1 and entry[3] >= entry[2]  # type: ignore[index]
            history = c.call([b"LATENCY", b"HISTORY", b"fast-command"])
            assert isinstance(history, list) and history[-1][1] >= 1  # type: ignore[index]
            assert c.call([b"LATENCY", b"RESET", b"fast-command", b"nope"]) == 1
            assert c.call([b"LATENCY", b"HISTORY", b"fast-command"]) == []
        finally:
            c.call([b"CONFIG", b"SET", b"latency-monitor-threshold", b"0"])
            c.call([b"DEL", b"big"])


def test_latency_doctor_matches_redis(redis_port: int, aspen_port: int) -> None:
    """Off (threshold 0, no events), then on without spikes: Redis's texts exactly; with
    spikes (Aspen only: a slow RPUSH) the report names the event and its advice."""
    doctor = [b"LATENCY", b"DOCTOR"]
    assert len({bytes(got) for got in (r for pair in both(redis_port, aspen_port, doctor)
                                       for r in pair)}) == 1  # type: ignore[arg-type]
    threshold = [b"CONFIG", b"SET", b"latency-monitor-threshold"]
    try:
        [(_, _), (want, got)] = both(redis_port, aspen_port, [*threshold, b"100"], doctor)
        assert got == want and b"no latency spike" in want  # type: ignore[operator]
        with clients(aspen_port) as (c,):
            c.call([*threshold, b"1"])
            c.call([b"RPUSH", b"big", *[b"%d" % i for i in range(200_000)]])
            report = c.call(doctor)
            assert isinstance(report, bytes)
            assert report.startswith(b"Dave, I have observed latency spikes")
            assert b"1. fast-command: 1 latency spikes (average " in report
            assert b"I have a few advices for you:" in report
            assert b"- The system is slow to execute Redis code paths" in report
    finally:
        both(redis_port, aspen_port, [*threshold, b"0"], [b"LATENCY", b"RESET"], [b"DEL", b"big"])


# Redis's LATENCY HISTOGRAM bucket names (us): HDR's highest equivalent of 1024 ns << k
_BUCKETS = [1, 2, 4, 8, 16, 33, 66, 132, 264, 528, 1056, 2113, 4227, 8454, 16909, 33818,
            67637, 135274, 270549, 541098, 1082196]


def _histograms(reply: object) -> list[tuple[bytes, int, list[int], list[int]]]:
    """(name, calls, bucket names, cumulative counts) from a RESP2 reply."""
    assert isinstance(reply, list)
    out = []
    for name, body in zip(reply[::2], reply[1::2], strict=True):
        assert body[0] == b"calls" and body[2] == b"histogram_usec"
        hist = body[3]
        out.append((name, body[1], hist[::2], hist[1::2]))
    return out


def test_latency_histogram_matches_redis(redis_port: int, aspen_port: int) -> None:
    cmds = [[b"CONFIG", b"RESETSTAT"], *[[b"SET", b"h", b"%d" % i] for i in range(5)],
            *[[b"GET", b"h"]] * 3, [b"CONFIG", b"GET", b"hz"],
            [b"LATENCY", b"HISTOGRAM", b"set", b"GET", b"nosuch", b"get", b"config"]]
    *_, (want, got) = both(redis_port, aspen_port, *cmds)
    mine, theirs = _histograms(got), _histograms(want)
    # names and calls: SET, GET, GET again (repeats repeat), CONFIG's subcommands that ran
    assert [(n, c) for n, c, _, _ in mine[:3]] == [(n, c) for n, c, _, _ in theirs[:3]]
    assert sorted((n, c) for n, c, _, _ in mine[3:]) == sorted((n, c) for n, c, _, _ in theirs[3:])
    for name, calls, buckets, counts in mine:
        assert buckets and set(buckets) <= set(_BUCKETS) and buckets == sorted(buckets), name
        assert counts == sorted(set(counts)) and counts[-1] == calls, name
    with clients(aspen_port) as (c,):
        everything = _histograms(c.call([b"LATENCY", b"HISTOGRAM"]))
        assert {n for n, *_ in everything} >= {b"set", b"get", b"config|get", b"config|resetstat"}
        assert c.call([b"HELLO", b"3"])
        reply = c.call([b"LATENCY", b"HISTOGRAM", b"set"])
        assert type(reply).__name__ == "Map" and reply[0][0] == b"set"  # type: ignore[index]


def test_wait_counts_raft_followers(cluster: DaemonCluster) -> None:
    leader = cluster.wait_leader()
    follower = next(i for i in cluster.voters if i != leader)
    c = RespClient(cluster.resp_port(leader))
    try:
        assert c.call([b"SET", b"k", b"v"]) == "OK"
        assert c.call([b"WAIT", b"2", b"5000"]) == 2  # both followers hold it
        assert c.call([b"WAIT", b"3", b"100"]) == 2  # there are only two: the timeout
    finally:
        c.close()
    f = RespClient(cluster.resp_port(follower))
    try:
        assert f.call([b"SET", b"k2", b"v"]) == "OK"
        got = f.call([b"WAIT", b"1", b"100"])
        assert got == 1 and not isinstance(got, Err)  # committed: a majority holds it
    finally:
        f.close()
