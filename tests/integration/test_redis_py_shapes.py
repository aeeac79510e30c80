"""redis-py 8.1 (protocol=3, its default, and protocol=2) on every type's reply-shaped commands.

One scenario of redis-py calls runs against redis-server 7.0.15 (the reference), a standalone
`aspen node`, and a 3-node in-process cluster (through a follower, which forwards writes and
relays replies computed at apply, through the same follower with lease reads forwarded to the
leader, and through the leader). Every call's parsed result must equal redis-server's: redis-py
breaks or changes type when a reply has the wrong RESP3 shape (e.g. `zrange(withscores=True)`
on a flat array). Random replies (SRANDMEMBER, HRANDFIELD) are compared by type and length.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
import trio
from test_differential_wire import aspen_port, redis_port

from harness.cluster import open_cluster

pytestmark = pytest.mark.slow
__all__ = ["aspen_port", "redis_port"]

Call = Callable[[redis.Redis], object]

SCENARIO: list[tuple[str, Call]] = [
    ("zadd", lambda r: r.zadd("z", {"a": 1, "b": 2, "c": 3.5, "d": float("-inf")})),
    ("zrange ws", lambda r: r.zrange("z", 0, -1, withscores=True)),
    ("zrange desc ws", lambda r: r.zrange("z", 0, 1, desc=True, withscores=True)),
    (
        "zrange byscore",
        lambda r: r.zrange("z", "(1", "+inf", byscore=True, offset=0, num=2, withscores=True),
    ),
    ("zrangebyscore", lambda r: r.zrangebyscore("z", "-inf", "+inf", withscores=True)),
    (
        "zrevrangebyscore",
        lambda r: r.zrevrangebyscore("z", "+inf", 0, start=1, num=2, withscores=True),
    ),
    ("zrevrange", lambda r: r.zrevrange("z", 0, -1, withscores=True)),
    ("zrange plain", lambda r: r.zrange("z", 0, -1)),
    ("zrangebylex", lambda r: r.zrangebylex("z", "-", "+")),
    ("zscore", lambda r: r.zscore("z", "c")),
    ("zscore none", lambda r: r.zscore("z", "nope")),
    ("zmscore", lambda r: r.zmscore("z", ["a", "nope", "d"])),
    ("zincrby", lambda r: r.zincrby("z", 0.5, "a")),
    ("zadd incr", lambda r: r.zadd("z", {"a": 1}, incr=True)),
    ("zadd nx incr", lambda r: r.zadd("z", {"a": 1}, nx=True, incr=True)),
    ("zrank", lambda r: r.zrank("z", "c")),
    ("zcard", lambda r: r.zcard("z")),
    ("zscan", lambda r: r.zscan("z", 0)),
    ("zpopmin", lambda r: r.zpopmin("z")),
    ("zpopmax 2", lambda r: r.zpopmax("z", 2)),
    ("zpopmin 5", lambda r: r.zpopmin("z", 5)),
    ("zpopmin empty", lambda r: r.zpopmin("z")),
    ("zadd again", lambda r: r.zadd("z", {"x": 1, "y": 2})),
    ("zunionstore", lambda r: r.zunionstore("u", {"z": 1, "z2": 2}, aggregate="MAX")),
    ("zinterstore", lambda r: r.zinterstore("i", ["z", "u"])),
    ("zrangestore", lambda r: r.zrangestore("rs", "z", 0, -1)),
    ("zrange u", lambda r: r.zrange("u", 0, -1, withscores=True)),
    ("zadd y", lambda r: r.zadd("y", {"a": 1, "b": 5, "q": 0.5})),
    ("zunion ws", lambda r: r.zunion(["z", "y"], withscores=True)),
    ("zinter ws", lambda r: r.zinter(["z", "y"], aggregate="MIN", withscores=True)),
    ("zdiff ws", lambda r: r.zdiff(["y", "z"], withscores=True)),
    ("zdiff", lambda r: r.zdiff(["y", "z"])),
    ("zdiffstore", lambda r: r.zdiffstore("d", ["y", "z"])),
    ("zintercard", lambda r: r.zintercard(2, ["z", "y"], limit=5)),
    ("zrandmember ws", lambda r: sorted(r.zrandmember("y", 5, withscores=True))),
    ("zrandmember -3 ws", lambda r: r.zrandmember("y", -3, withscores=True)),
    ("zrandmember", lambda r: r.zrandmember("y")),
    ("zmpop", lambda r: r.zmpop(2, ["nope", "y"], max=True, count=2)),
    ("zmpop none", lambda r: r.zmpop(1, ["nope"], min=True)),
    ("hset", lambda r: r.hset("h", mapping={"f": "1", "g": "2", "k": "v"})),
    ("hgetall", lambda r: r.hgetall("h")),
    ("hgetall none", lambda r: r.hgetall("nope")),
    ("hrandfield 5 wv", lambda r: sorted(r.hrandfield("h", 5, withvalues=True))),
    ("hrandfield -4 wv", lambda r: r.hrandfield("h", -4, withvalues=True)),
    ("hrandfield 2", lambda r: r.hrandfield("h", 2)),
    ("hrandfield one", lambda r: r.hrandfield("h")),
    ("hincrbyfloat", lambda r: r.hincrbyfloat("h", "f", 0.5)),
    ("hmget", lambda r: r.hmget("h", ["f", "nope"])),
    ("hkeys", lambda r: r.hkeys("h")),
    ("hscan", lambda r: r.hscan("h", 0)),
    ("sadd", lambda r: r.sadd("s", "a", "b", "c")),
    ("smembers", lambda r: r.smembers("s")),
    ("sinter", lambda r: r.sinter("s", "s")),
    ("sunion", lambda r: r.sunion("s", "nope")),
    ("sdiff", lambda r: r.sdiff("s", "nope")),
    ("smismember", lambda r: r.smismember("s", ["a", "x"])),
    ("srandmember 10", lambda r: sorted(r.srandmember("s", 10))),
    ("srandmember -4", lambda r: r.srandmember("s", -4)),
    ("sintercard", lambda r: r.sintercard(1, ["s"])),
    ("sscan", lambda r: (lambda c: (c[0], sorted(c[1])))(r.sscan("s", 0))),
    ("spop all", lambda r: (lambda p: sorted(p) if isinstance(p, list) else p)(r.spop("s", 10))),
    ("rpush", lambda r: r.rpush("l", "a", "b", "c")),
    ("lpop 2", lambda r: r.lpop("l", 2)),
    ("lrange", lambda r: r.lrange("l", 0, -1)),
    ("lpos", lambda r: r.lpos("l", "c", count=0)),
    ("type", lambda r: [r.type(k) for k in ("z", "h", "s", "l", "nope")]),
    ("config get", lambda r: r.config_get("no-such-setting*")),
    ("incrbyfloat", lambda r: r.incrbyfloat("n", 1.5)),
    (
        "transaction",
        lambda r: (
            r.pipeline(transaction=True)
            .zadd("t", {"p": 1, "q": 2})
            .zrange("t", 0, -1, withscores=True)
            .zpopmax("t", 1)
            .zscore("t", "p")
            .hgetall("h")
            .smembers("nope")
            .execute()
        ),
    ),
]
RANDOM = {"hrandfield -4 wv", "hrandfield 2", "hrandfield one", "srandmember -4"}
RANDOM |= {"zrandmember -3 ws", "zrandmember"}


def shape(value: object) -> object:
    if isinstance(value, list | tuple):
        return (type(value).__name__, [shape(v) for v in value])
    return type(value).__name__


def run(client: redis.Redis) -> list[object]:
    client.flushall()
    out = []
    for name, call in SCENARIO:
        try:
            result = call(client)
        except redis.RedisError as exc:  # the reference raises nothing: a mismatch, shown
            result = f"{type(exc).__name__}: {exc}"
        out.append(shape(result) if name in RANDOM else result)
    return out


def check(reference: list[object], ours: list[object], where: str) -> None:
    for (name, _), want, got in zip(SCENARIO, reference, ours, strict=True):
        assert got == want, f"{where}: {name}: redis-server {want!r}, aspen {got!r}"
        assert type(got) is type(want), f"{where}: {name}: {type(want)} vs {type(got)}"


@pytest.fixture(scope="module")
def reference(redis_port: int) -> dict[int, list[object]]:
    out = {}
    for protocol in (2, 3):
        with redis.Redis(port=redis_port, protocol=protocol, socket_timeout=10) as r:
            out[protocol] = run(r)
    return out


@pytest.mark.parametrize("protocol", [3, 2])
def test_standalone_node(
    reference: dict[int, list[object]], aspen_port: int, protocol: int
) -> None:
    with redis.Redis(port=aspen_port, protocol=protocol, socket_timeout=10) as r:
        check(reference[protocol], run(r), f"standalone RESP{protocol}")


async def test_three_node_cluster(reference: dict[int, list[object]]) -> None:
    async with open_cluster(3, seed=8, tick_interval=0.05) as cluster:
        leader = await cluster.wait_leader()
        follower = next(n for n in (1, 2, 3) if n != leader.id)
        ports = {n: await cluster.serve_resp(n) for n in (leader.id, follower)}

        def scenario() -> None:
            for protocol in (3, 2):
                for node, consistency in (
                    (follower, None),
                    (follower, "lease"),
                    (leader.id, None),
                ):
                    with redis.Redis(port=ports[node], protocol=protocol, socket_timeout=10) as r:
                        if consistency is not None:
                            assert r.execute_command("ASPEN.CONSISTENCY", consistency)
                        where = f"node {node} ({consistency or 'default'}) RESP{protocol}"
                        check(reference[protocol], run(r), where)

        await trio.to_thread.run_sync(scenario)
        # The follower's lease reads really went to the leader (replies over the mesh).
        assert leader.stats.lease_reads > 0
