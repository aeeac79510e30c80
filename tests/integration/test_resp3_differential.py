"""RESP3 over the wire: redis-server 7.0.15 and `aspen node`, both after HELLO 3.

The same generated command sequences (strings, keys, transactions, hashes, lists, sets,
sorted sets) run on both servers; every reply is compared with its RESP3 type kept (a map is
not an array, a double is not a bulk string, `[[m, s], ...]` is not `[m, s, ...]`). RESP2 is
covered the same way by test_differential_wire.py and tests/unit/kv/test_types_differential.py.
Order-free replies (sets, KEYS, SCAN) are sorted; random ones (SRANDMEMBER, HRANDFIELD) are
compared by shape: the same nesting, types and lengths.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "kv"))
from kv_commandgen import command
from test_differential_wire import CONNECTION_SCRIPT, aspen_port, redis_port
from test_differential_wire import replay as wire_replay
from types_commandgen import SKEYS, counts, hkey, skey, type_command, w, zkey
from types_commandgen import cmd as tcmd

from harness.hypothesis_budget import scaled_examples
from harness.resp_wire import (
    BigNumber,
    Double,
    Err,
    Map,
    NullArray,
    Push,
    SetReply,
    Status,
    Verbatim,
)

pytestmark = [pytest.mark.slow, pytest.mark.differential]
__all__ = ["aspen_port", "redis_port"]  # module-scoped fixtures: one server of each per module

_CLOCK_TOLERANCE = {b"ttl": 2, b"expiretime": 2, b"pttl": 2000, b"pexpiretime": 2000}
_RANDOM = {b"srandmember", b"hrandfield", b"randomkey", b"zrandmember"}


def typed(reply: object) -> object:
    """A comparable tree that keeps every RESP3 type (Map == list would hold otherwise)."""
    if isinstance(reply, Map):
        return ("map", [(typed(k), typed(v)) for k, v in reply])
    if isinstance(reply, SetReply):
        return ("set", sorted((typed(x) for x in reply), key=repr))
    if isinstance(reply, Push):
        return ("push", [typed(x) for x in reply])
    if isinstance(reply, NullArray):
        return ("null-array",)
    if isinstance(reply, list):
        return ("array", [typed(x) for x in reply])
    for kind in (Err, Status, Double, BigNumber, Verbatim, bool):
        if isinstance(reply, kind):
            return (kind.__name__, reply)
    assert reply is None or type(reply) in (bytes, int), reply
    return reply


def shape(tree: object) -> object:
    """Only the structure: types and lengths, not the (random) elements."""
    if isinstance(tree, tuple) and tree and tree[0] in ("array", "set", "map", "push"):
        return (tree[0], [shape(x) for x in tree[1]])
    if isinstance(tree, tuple) and tree:
        return (tree[0],) if tree[0] != "Err" else tree
    return type(tree).__name__


def canonical(argv: list[bytes], reply: object) -> object:
    name = argv[0].lower()
    tree = typed(reply)
    if name in _RANDOM:
        return shape(tree)
    if name == b"keys" and isinstance(tree, tuple) and tree[0] == "array":
        return ("array", sorted(tree[1]))
    if name == b"scan" and isinstance(reply, list) and len(reply) == 2:
        return ("scan", reply[0], sorted(reply[1]))  # type: ignore[arg-type]
    return tree


def same(argv: list[bytes], a: object, b: object) -> bool:
    if argv[0].lower() == b"dbsize" and type(a) is int and type(b) is int:
        # docs/compatibility.md: Redis also counts keys already expired but not yet
        # reclaimed (e.g. right after SET ... EXAT <past>); Aspen counts live keys only
        return a >= b
    tolerance = _CLOCK_TOLERANCE.get(argv[0].lower())
    if tolerance is not None and type(a) is int and type(b) is int and a > 0 and b > 0:
        return abs(a - b) <= tolerance
    return canonical(argv, a) == canonical(argv, b)


def same_exec(queued: list[list[bytes]], a: object, b: object) -> bool:
    if type(a) is list and type(b) is list and len(a) == len(b) == len(queued):
        return all(same(q, x, y) for q, x, y in zip(queued, a, b, strict=True))
    return typed(a) == typed(b)


def replay(ports: tuple[int, int], steps: list[tuple[int, list[bytes]]]) -> None:
    """The RESP2 test's replay over two HELLO 3 connections per server, RESP3 types kept."""
    wire_replay(ports, steps, protocol=3, same=same, same_exec=same_exec)


def random_reply_commands() -> st.SearchStrategy[list[bytes]]:
    """Random replies that leave both keyspaces equal (SPOP only with a count above any size)."""
    return st.one_of(
        tcmd(w("srandmember"), skey, st.one_of(st.just([]), tcmd(counts))),
        tcmd(
            w("hrandfield"),
            hkey,
            st.one_of(st.just([]), tcmd(counts, st.sampled_from([[], [b"withvalues"]]))),
        ),
        tcmd(w("spop"), st.sampled_from(SKEYS), w("20")),
        tcmd(
            w("zrandmember"),
            zkey,
            st.one_of(st.just([]), tcmd(counts, st.sampled_from([[], [b"withscores"]]))),
        ),
    )


steps_strategy = st.lists(
    st.tuples(
        st.integers(0, 1),
        st.one_of(type_command(), type_command(), command(wire=True), random_reply_commands()),
    ),
    max_size=40,
)


@settings(
    max_examples=scaled_examples(200),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(steps=steps_strategy)
def test_resp3_replies_match_redis_server(
    redis_port: int, aspen_port: int, steps: list[tuple[int, list[bytes]]]
) -> None:
    replay((redis_port, aspen_port), steps)


# Every reply-shaped command once, in order, with the keys holding several members: the
# random sequences above reach these only by luck.
SHAPES_SCRIPT = """\
zadd z 1 a 2 b 3.5 c -inf d|zrange z 0 -1 withscores|zrange z 0 -1 rev withscores
zrange z (1 +inf byscore limit 0 2 withscores|zrangebyscore z -inf +inf withscores
zrevrangebyscore z +inf -inf withscores limit 1 2|zrevrange z 0 1 withscores|zrange z 0 -1
zscore z c|zscore z nope|zmscore z a nope d|zincrby z 0.5 a|zadd z incr 1 a|zadd z nx incr 1 a
zadd z xx incr 1 nope|zpopmin z|zpopmax z|zpopmin z 1|zpopmax z 0|zpopmin z 10|zpopmin z
zpopmin z 2|zscan z 0|zadd z 1 a 2 b|zunionstore u 2 z z weights 1 0.5|zrange u 0 -1 withscores
hset h f 1 g 2|hgetall h|hgetall nope|hrandfield h 5 withvalues|hrandfield h -3 withvalues
hrandfield nope 2 withvalues|hincrbyfloat h f 0.5|hscan h 0|hmget h f nope|hkeys h|hvals h
sadd s a b c|smembers s|smembers nope|sinter s nope|sunion s nope|sdiff s nope
srandmember s 10|srandmember s -4|spop s 10|smismember s a x|sintercard 1 s
rpush l a b c|lrange l 0 -1|lpop l 2|lpos l c count 0|lpop nope 2|rpop nope
zadd y 1 a 5 b 0.5 q|zunion 2 z y withscores|zinter 2 z y withscores|zdiff 2 y z withscores
zunion 2 z y|zdiffstore d 2 y z|zintercard 2 z y|zrandmember y 5 withscores|zrandmember y -2
zadd nz 0 x 1 y|zunion 1 nz weights -1 withscores|zinter 2 nz nz weights -1 0.5 withscores
zmpop 2 nope y max count 2|zmpop 1 y min|zmpop 1 nope min|zrandmember nope 2 withscores
multi|zrange z 0 -1 withscores|hgetall h|zpopmin z 5|smembers s|zscore z x|exec
config get maxmemory-none|incrbyfloat n 1.5|type z"""


def test_every_reply_shape_matches_redis_server(redis_port: int, aspen_port: int) -> None:
    steps = [(0, line.split(" ")) for row in SHAPES_SCRIPT.splitlines() for line in row.split("|")]
    replay((redis_port, aspen_port), [(c, [a.encode() for a in argv]) for c, argv in steps])


def test_connection_commands_match_redis_server_in_resp3(redis_port: int, aspen_port: int) -> None:
    """The RESP2 wire test's connection/server script, after HELLO 3 (CONFIG GET is a map...)."""
    steps = [
        (0, line.split(" ")) for row in CONNECTION_SCRIPT.splitlines() for line in row.split("|")
    ]
    replay((redis_port, aspen_port), [(c, [a.encode() for a in argv]) for c, argv in steps])
