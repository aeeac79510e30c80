"""BLPOP & co. against real redis-server 7.0.15: argument errors, immediate outcomes, timeouts.

Each case runs on a fresh identical state on both sides: Aspen is a one-node in-process
cluster (the real blocking path: replicated attempt, then parked until the timeout), Redis
a real server over a socket. Replies are compared at the RESP2 level (`*-1` is not `$-1`),
then the lists and sorted sets are compared too (the same element moved or popped).
Only small non-zero timeouts are generated: Redis would block forever on 0.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator

import pytest
import trio

from aspen.resp.protocol import encode
from harness.bench.servers import redis_server
from harness.cluster import Client, open_cluster
from harness.resp_wire import RespClient, parse_reply

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="redis-server is not installed"
)

SETUP = [
    [b"RPUSH", b"l", b"a", b"b", b"c"],
    [b"RPUSH", b"m", b"x"],
    [b"ZADD", b"z", b"1", b"a", b"2.5", b"b"],
    [b"SET", b"s", b"str"],
]
PROBES = [
    [b"LRANGE", b"l", b"0", b"-1"],
    [b"LRANGE", b"m", b"0", b"-1"],
    [b"LRANGE", b"d", b"0", b"-1"],
    [b"ZRANGE", b"z", b"0", b"-1", b"WITHSCORES"],
    [b"TYPE", b"d"],
]
KEYS = [b"l", b"m", b"z", b"s", b"e", b"d"]
TIMEOUTS = [b"0.01", b".02", b"+0.01", b"0x1p-6", b"1e-2", b"x", b"-1", b"", b"1e400", b"inf",
            b"nan", b"-inf", b" 1", b"0.01 "]
SIDES = [b"left", b"RIGHT", b"Left", b"middle"]
NUMKEYS = [b"0", b"1", b"2", b"3", b"-1", b"x", b"99999999999999999999"]
COUNTS = [b"0", b"1", b"2", b"5", b"-1", b"x"]

FIXED = [
    [b"BLPOP", b"e", b"l", b"0.01"],
    [b"BLPOP", b"e", b"s", b"0.01"],
    [b"BLPOP", b"s", b"e", b"x"],
    [b"BLPOP", b"e", b"0.01"],
    [b"BLPOP", b"l"],
    [b"BRPOP", b"l", b"l", b"0.01"],
    [b"BLMOVE", b"l", b"d", b"LEFT", b"RIGHT", b"0.01"],
    [b"BLMOVE", b"l", b"l", b"LEFT", b"RIGHT", b"0.01"],
    [b"BLMOVE", b"e", b"s", b"LEFT", b"RIGHT", b"0.01"],
    [b"BLMOVE", b"l", b"s", b"LEFT", b"RIGHT", b"0.01"],
    [b"BLMOVE", b"e", b"d", b"up", b"RIGHT", b"x"],
    [b"BLMOVE", b"e", b"d", b"LEFT", b"RIGHT", b"-1"],
    [b"BRPOPLPUSH", b"l", b"d", b"0.01"],
    [b"BRPOPLPUSH", b"e", b"d", b"0.01"],
    [b"BRPOPLPUSH", b"l", b"d"],
    [b"BLMPOP", b"0.01", b"2", b"e", b"l", b"RIGHT", b"COUNT", b"2"],
    [b"BLMPOP", b"0.01", b"1", b"l", b"LEFT", b"COUNT", b"10"],
    [b"BLMPOP", b"0.01", b"1", b"e", b"LEFT"],
    [b"BLMPOP", b"x", b"0", b"e", b"LEFT"],
    [b"BLMPOP", b"x", b"1", b"e", b"middle"],
    [b"BLMPOP", b"-1", b"1", b"e", b"LEFT", b"COUNT", b"0"],
    [b"BLMPOP", b"0.01", b"1", b"e", b"LEFT", b"COUNT", b"1", b"COUNT", b"1"],
    [b"BLMPOP", b"0.01", b"1", b"e"],
    [b"LMPOP", b"2", b"e", b"l", b"LEFT"],
    [b"LMPOP", b"1", b"e", b"LEFT"],
    [b"LMPOP", b"1", b"s", b"LEFT"],
    [b"LMPOP", b"3", b"e", b"LEFT"],
    [b"BZPOPMIN", b"e", b"z", b"0.01"],
    [b"BZPOPMAX", b"z", b"0.01"],
    [b"BZPOPMIN", b"e", b"0.01"],
    [b"BZPOPMIN", b"l", b"0.01"],
    [b"BZPOPMAX", b"z", b"-1"],
    [b"CLIENT", b"UNBLOCK", b"x"],
    [b"CLIENT", b"UNBLOCK", b"99999"],
    [b"CLIENT", b"UNBLOCK", b"-1", b"ERROR"],
    [b"CLIENT", b"UNBLOCK", b"x", b"foo"],
    [b"CLIENT", b"UNBLOCK", b"1", b"timeout", b"extra"],
    [b"CLIENT", b"UNBLOCK"],
]


def random_case(rng: random.Random) -> list[bytes]:
    name = rng.choice([b"BLPOP", b"BRPOP", b"BLMOVE", b"BRPOPLPUSH", b"BLMPOP", b"LMPOP",
                       b"BZPOPMIN", b"BZPOPMAX", b"blpop", b"bzPopMin"])
    low = name.lower()
    if low in (b"blpop", b"brpop", b"bzpopmin", b"bzpopmax"):
        argv = [name, *rng.choices(KEYS, k=rng.randint(1, 3)), rng.choice(TIMEOUTS)]
    elif low == b"blmove":
        argv = [name, rng.choice(KEYS), rng.choice(KEYS), rng.choice(SIDES), rng.choice(SIDES),
                rng.choice(TIMEOUTS)]
    elif low == b"brpoplpush":
        argv = [name, rng.choice(KEYS), rng.choice(KEYS), rng.choice(TIMEOUTS)]
    else:
        n = rng.randint(1, 3)
        argv = [name] + ([rng.choice(TIMEOUTS)] if low == b"blmpop" else [])
        argv += [rng.choice(NUMKEYS) if rng.random() < 0.3 else str(n).encode()]
        argv += [*rng.choices(KEYS, k=n), rng.choice(SIDES)]
        if rng.random() < 0.5:
            argv += [rng.choice([b"COUNT", b"count", b"foo"]), rng.choice(COUNTS)]
        if rng.random() < 0.1:
            argv += [b"COUNT", b"1"]
    if rng.random() < 0.1:
        argv = argv[: rng.randint(1, len(argv) - 1)]  # arity errors
    return argv


@pytest.fixture(scope="module")
def redis_port() -> Iterator[int]:
    with redis_server() as server:
        yield server.port


async def test_blocking_commands_match_redis(redis_port: int, autojump_clock: object) -> None:
    rng = random.Random(7)
    cases = FIXED + [random_case(rng) for _ in range(250)]
    theirs = RespClient(redis_port)
    try:
        async with open_cluster(1, seed=1) as cluster:
            await cluster.wait_leader()
            ours = cluster.client(1)
            for argv in cases:
                await run_both(ours, theirs, [b"FLUSHALL"])
                for setup in SETUP:
                    await run_both(ours, theirs, setup)
                mine, real = await run_both(ours, theirs, argv)
                assert mine == real, argv
                for probe in PROBES:
                    mine, real = await run_both(ours, theirs, probe)
                    assert mine == real, (argv, probe)
            assert cluster.nodes[1].blocking.blocked_clients == 0
    finally:
        theirs.close()


async def run_both(ours: Client, theirs: RespClient, argv: list[bytes]) -> tuple[object, object]:
    with trio.fail_after(5):
        mine = parse_reply(encode(await ours.cmd(*argv), 2))
    return mine, theirs.call(argv)
