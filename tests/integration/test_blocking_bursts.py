"""Bursts of commands from many connections, blocked clients among them, vs redis-server.

Where tests/integration/test_blocking_stress.py waits for each step to settle, here a generated
burst is sent without waiting for replies: each step is one command (or one MULTI bundle) from
a connection of its own, sent once the server has read the one before (CLIENT LIST names it as
that connection's last command; what arrives on two connections at once is read in an order
the server picks), so on Aspen they are in flight together (batched into
the same log entries) while each still arrives after the one before. That is how Redis's own
tests drive it ("BRPOPLPUSH with multiple blocked clients": two clients park, a third pushes,
nobody waits in between), and where serve order used to differ: a client parked on the node
must be served right after the write that readied its key, before anything that arrived later
(aspen.cluster.keygate). Compared with Redis: every connection's replies, INFO
`blocked_clients` once the burst has landed, and every key after the blocked clients have been
served or timed out. Blocking paths: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH (wrong-type destinations
too), BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP, XREAD BLOCK; writes: pushes, pops, LMOVE, ZADD, XADD,
DEL, SET over a list, MULTI bundles, an EVAL push.
"""

from __future__ import annotations

import select
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.bench.servers import ServerProcess, aspen_node, redis_server
from harness.hypothesis_budget import scaled_examples
from harness.resp_wire import RespClient

pytestmark = pytest.mark.differential

TIMEOUT = b"0.6"  # of every blocking command; a burst lasts < 0.1 s
SETTLE = 5.0
LISTS = [b"l1", b"l2"]
DESTS = [*LISTS, b"s"]  # s holds a string
SIDES = [b"left", b"right"]
PUSH_SCRIPT = b"return redis.call('lpush', KEYS[1], ARGV[1])"

lists_ = st.sampled_from(LISTS)
some_lists = st.lists(lists_, min_size=1, max_size=2, unique=True)
side = st.sampled_from(SIDES)

# `{}` in an argument is replaced by the step's number (unique elements and IDs)
blocking = st.one_of(
    st.builds(lambda op, ks: [op, *ks, TIMEOUT], st.sampled_from([b"blpop", b"brpop"]),
              some_lists),
    st.builds(lambda s, d, a, b: [b"blmove", s, d, a, b, TIMEOUT], lists_,
              st.sampled_from(DESTS), side, side),
    st.builds(lambda s, d: [b"brpoplpush", s, d, TIMEOUT], lists_, st.sampled_from(DESTS)),
    st.builds(lambda ks, d, c: [b"blmpop", TIMEOUT, b"%d" % len(ks), *ks, d, b"count",
                                b"%d" % c], some_lists, side, st.integers(1, 3)),
    st.builds(lambda op: [op, b"z1", TIMEOUT], st.sampled_from([b"bzpopmin", b"bzpopmax"])),
    st.builds(lambda m, c: [b"bzmpop", TIMEOUT, b"1", b"z1", m, b"count", b"%d" % c],
              st.sampled_from([b"min", b"max"]), st.integers(1, 2)),
    # after the entries of the steps before it (`$` would be resolved by a read, which does not
    # wait for another connection's XADD still in flight: see docs/compatibility.md)
    st.just([b"xread", b"block", b"600", b"streams", b"x1", b"{}-0"]),
)

writes = st.one_of(
    st.builds(lambda op, k, n: [op, k, *[b"e{}.%d" % j for j in range(n)]],
              st.sampled_from([b"lpush", b"rpush"]), lists_, st.integers(1, 3)),
    st.builds(lambda op, k: [op, k], st.sampled_from([b"lpop", b"rpop"]), lists_),
    st.builds(lambda s, d, a, b: [b"lmove", s, d, a, b], lists_, lists_, side, side),
    st.builds(lambda sc: [b"zadd", b"z1", b"%d" % sc, b"m{}"], st.integers(0, 3)),
    st.just([b"xadd", b"x1", b"{}-1", b"f", b"v{}"]),
    st.builds(lambda k: [b"del", k], st.sampled_from([*LISTS, b"z1", b"s"])),
    st.builds(lambda k: [b"set", k, b"str"], st.sampled_from([b"s", b"l2"])),
    st.builds(lambda k: [b"eval", PUSH_SCRIPT, b"1", k, b"v{}"], lists_),
)
bundle = st.builds(lambda k, k2: [[b"multi"], [b"rpush", k, b"x{}"], [b"rpush", k2, b"y{}"],
                                  [b"lpop", k], [b"exec"]], lists_, lists_)
step = st.one_of(blocking.map(lambda a: [a]), writes.map(lambda a: [a]), bundle)
bursts = st.lists(step, min_size=2, max_size=7)


def _fill(argv: list[bytes], n: int) -> list[bytes]:
    return [a.replace(b"{}", b"%d" % n) if b"{}" in a else a for a in argv]


def _send(c: RespClient, commands: list[list[bytes]]) -> None:
    c.sock.sendall(b"".join(b"*%d\r\n" % len(argv)
                            + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in argv)
                            for argv in commands))


def _blocked(admin: RespClient) -> int:
    text = admin.call([b"INFO", b"clients"])
    assert isinstance(text, bytes)
    for line in text.decode().splitlines():
        if line.startswith("blocked_clients:"):
            return int(line.split(":")[1])
    raise AssertionError("no blocked_clients")


def _replies(c: RespClient, n: int, timeout: float) -> list[object]:
    out: list[object] = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        if not c.reader.buf and not select.select([c.sock], [], [], max(
                0.0, deadline - time.monotonic()))[0]:
            out.append("<no reply>")
            break
        out.append(c.reader.read())
    return out


def _wait_read(admin: RespClient, cid: int, name: bytes) -> None:
    """Until the server has read connection `cid`'s command `name` (its last one)."""
    want_id, want_cmd = b"id=%d " % cid, b" cmd=%s " % name.lower()
    deadline = time.monotonic() + SETTLE
    while time.monotonic() < deadline:
        listing = admin.call([b"CLIENT", b"LIST"])
        assert isinstance(listing, bytes)
        for line in listing.splitlines():
            if line.startswith(want_id) and want_cmd in line:
                return
    raise AssertionError(f"client {cid} never read {name!r}")


def run_burst(port: int, burst: list[list[list[bytes]]], want_blocked: int | None
              ) -> tuple[list[list[object]], int, dict[bytes, object]]:
    admin = RespClient(port)
    admin.call([b"FLUSHALL"])
    admin.call([b"SET", b"s", b"str"])
    clients = [RespClient(port) for _ in burst]
    ids = [c.call([b"CLIENT", b"ID"]) for c in clients]
    try:
        for n, (c, commands) in enumerate(zip(clients, burst, strict=True)):
            _send(c, [_fill(argv, n + 1) for argv in commands])
            cid = ids[n]
            assert isinstance(cid, int)
            _wait_read(admin, cid, commands[-1][0])
        blocked = _blocked(admin)
        if want_blocked is not None:  # Aspen: give its commits time to reach Redis's count
            deadline = time.monotonic() + SETTLE
            while blocked != want_blocked and time.monotonic() < deadline:
                time.sleep(0.01)
                blocked = _blocked(admin)
        replies = [_replies(c, len(cmds), SETTLE) for c, cmds in zip(clients, burst,
                                                                    strict=True)]
        state: dict[bytes, object] = {}
        for key in LISTS:
            state[key] = admin.call([b"lrange", key, b"0", b"-1"])
        state[b"z1"] = admin.call([b"zrange", b"z1", b"0", b"-1", b"withscores"])
        state[b"x1"] = admin.call([b"xrange", b"x1", b"-", b"+"])
        state[b"s"] = admin.call([b"type", b"s"])
        state[b"blocked_after"] = _blocked(admin)
        return replies, blocked, state
    finally:
        for c in [admin, *clients]:
            c.close()


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[ServerProcess, ServerProcess]]:
    with aspen_node() as a, redis_server() as r:
        yield a, r


@settings(max_examples=scaled_examples(30), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(burst=bursts)
def test_bursts_agree_with_redis(servers: tuple[ServerProcess, ServerProcess],
                                 burst: list[list[list[bytes]]]) -> None:
    aspen, redis = servers
    want_replies, want_blocked, want_state = run_burst(redis.port, burst, None)
    replies, blocked, state = run_burst(aspen.port, burst, want_blocked)
    assert blocked == want_blocked, (burst, want_replies, replies)
    assert replies == want_replies, burst
    assert state == want_state, burst


def test_redis_brpoplpush_with_multiple_blocked_clients(
    servers: tuple[ServerProcess, ServerProcess],
) -> None:
    """Redis's tests/unit/type/list.tcl scenario, as a burst: the first client (whose
    destination is a string) gets WRONGTYPE and the element goes to the second, as in Redis."""
    burst = [[[b"brpoplpush", b"blist", b"s", b"0"]],
             [[b"brpoplpush", b"blist", b"target2", b"0"]],
             [[b"lpush", b"blist", b"foo"]]]
    for _ in range(5):
        for port in (servers[1].port, servers[0].port):
            replies, _blocked_n, _state = run_burst(port, burst, None)
            assert replies[0][0].startswith("WRONGTYPE")  # type: ignore[union-attr]
            assert replies[1:] == [[b"foo"], [1]]
