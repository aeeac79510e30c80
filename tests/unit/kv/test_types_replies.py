"""Replies and error texts per type, recorded from redis-server 7.0.15 (one session per type).

Each table is a command sequence on a fresh database holding `str` = "v"; every reply, status
vs bulk vs nil vs null array included, must be what redis-server answered. The differential
tests explore random sequences; these pin the corner cases and every error text by name.
"""

from __future__ import annotations

import shlex

import pytest
from test_types_differential import Aspen, Err, NullArray, Status

NULL_ARRAY = NullArray()


def E(text: str) -> Err:
    return Err(text)


def S(text: str) -> Status:
    return Status(text)


CASES: dict[str, list[tuple[str, object]]] = {
    "hash": [
        ("hset h", E("ERR wrong number of arguments for 'hset' command")),
        ("hset h f", E("ERR wrong number of arguments for 'hset' command")),
        ("hset h f v g", E("ERR wrong number of arguments for 'hset' command")),
        ("hset h f v g w", 2),
        ("hset h f v2", 0),
        ("hsetnx h f x", 0),
        ("hsetnx h n 1", 1),
        ("hmset h a 1 b", E("ERR wrong number of arguments for 'hmset' command")),
        ("hincrby h f 1", E("ERR hash value is not an integer")),
        ("hincrby h n x", E("ERR value is not an integer or out of range")),
        ("hincrby h n 9223372036854775807", E("ERR increment or decrement would overflow")),
        ("hincrby h n -5", -4),
        ("hincrbyfloat h f 1", E("ERR hash value is not a float")),
        (
            "hincrbyfloat h n 1e400",
            b"10000000000000000000281880683947586514586453433629052038625910693539685534008629862039363994848324160522094053927317616200295822777259255734023828976593340661017797447434546173917862448116674971723778943824391593338047470675026246684401359237513603830343735485505244955964979021825038280091068414947402456898653040951017512658092615827588920183472511643316591362664138176309734806343732497430221946880",
        ),
        ("hincrbyfloat h n inf", E("ERR value is NaN or Infinity")),
        (
            "hincrbyfloat h n 0.1",
            b"10000000000000000000281880683947586514586453433629052038625910693539685534008629862039363994848324160522094053927317616200295822777259255734023828976593340661017797447434546173917862448116674971723778943824391593338047470675026246684401359237513603830343735485505244955964979021825038280091068414947402456898653040951017512658092615827588920183472511643316591362664138176309734806343732497430221946880",
        ),
        (
            "hincrbyfloat h n 0.2",
            b"10000000000000000000281880683947586514586453433629052038625910693539685534008629862039363994848324160522094053927317616200295822777259255734023828976593340661017797447434546173917862448116674971723778943824391593338047470675026246684401359237513603830343735485505244955964979021825038280091068414947402456898653040951017512658092615827588920183472511643316591362664138176309734806343732497430221946880",
        ),
        ("hstrlen h f", 2),
        ("hstrlen h missing", 0),
        (
            "hmget h f missing n",
            [
                b"v2",
                None,
                b"10000000000000000000281880683947586514586453433629052038625910693539685534008629862039363994848324160522094053927317616200295822777259255734023828976593340661017797447434546173917862448116674971723778943824391593338047470675026246684401359237513603830343735485505244955964979021825038280091068414947402456898653040951017512658092615827588920183472511643316591362664138176309734806343732497430221946880",
            ],
        ),
        ("hexists h f", 1),
        ("hdel h f missing", 1),
        ("hlen h", 2),
        ("hrandfield h 0", []),
        ("hrandfield h x", E("ERR value is not an integer or out of range")),
        ("hrandfield h 1 2", E("ERR syntax error")),
        (
            "hrandfield h -9223372036854775808",
            E(
                "ERR value is out of range, value must between -9223372036854775807 and "
                "9223372036854775807"
            ),
        ),
        ("hrandfield missing", None),
        ("hrandfield missing 3 withvalues", []),
        ("hscan h x", E("ERR invalid cursor")),
        ("hscan h 0 count 0", E("ERR syntax error")),
        ("hscan h 0 count x", E("ERR value is not an integer or out of range")),
        ("hscan h 0 bogus 1", E("ERR syntax error")),
        ("hscan h 0 match", E("ERR syntax error")),
        ("hget str f", E("WRONGTYPE Operation against a key holding the wrong kind of value")),
        ("hdel h n g", 2),
        ("exists h", 0),
    ],
    "list": [
        ("lpush l", E("ERR wrong number of arguments for 'lpush' command")),
        ("rpush l a b c a", 4),
        ("lpushx nol a", 0),
        ("lpop l -1", E("ERR value is out of range, must be positive")),
        ("lpop l x", E("ERR value is out of range, must be positive")),
        ("lpop l 0", []),
        ("lpop nol 2", NULL_ARRAY),
        ("lpop l 1 2", E("ERR wrong number of arguments for 'lpop' command")),
        ("lrange l 0 -1", [b"a", b"b", b"c", b"a"]),
        ("lrange l x 1", E("ERR value is not an integer or out of range")),
        ("lrange l -100 100", [b"a", b"b", b"c", b"a"]),
        ("lrange l 5 1", []),
        ("lindex l -1", b"a"),
        ("lindex l 99", None),
        ("lindex l x", E("ERR value is not an integer or out of range")),
        ("lindex nol x", None),
        ("lset nol 0 x", E("ERR no such key")),
        ("lset l 99 x", E("ERR index out of range")),
        ("lset l -1 z", S("OK")),
        ("linsert l middle a x", E("ERR syntax error")),
        ("linsert l before zzz x", -1),
        ("linsert nol before a x", 0),
        ("linsert l after a a2", 5),
        ("lrem l 0 a", 1),
        ("lrem l x a", E("ERR value is not an integer or out of range")),
        (
            "lpos l a2 rank 0",
            E(
                "ERR RANK can't be zero: use 1 to start from the first match, 2 from the "
                "second ... or use negative to start from the end of the list"
            ),
        ),
        ("lpos l a2 count -1", E("ERR COUNT can't be negative")),
        ("lpos l a2 maxlen -1", E("ERR MAXLEN can't be negative")),
        ("lpos l a2 count x", E("ERR COUNT can't be negative")),
        ("lpos l a2 rank x", E("ERR value is not an integer or out of range")),
        ("lpos l a2 bogus 1", E("ERR syntax error")),
        ("lpos l a2 count 0", [0]),
        ("lpos nol a count 0", []),
        ("lpos nol a", None),
        ("lmove l l2 up left", E("ERR syntax error")),
        ("lmove nol l2 left left", None),
        ("lmove l l left right", b"a2"),
        ("lmove l l2 right left", b"a2"),
        (
            "rpoplpush l2 str",
            E("WRONGTYPE Operation against a key holding the wrong kind of value"),
        ),
        ("ltrim l x 1", E("ERR value is not an integer or out of range")),
        ("ltrim l 1 0", S("OK")),
        ("exists l", 0),
    ],
    "set": [
        ("sadd s", E("ERR wrong number of arguments for 'sadd' command")),
        ("sadd s a b c", 3),
        ("sadd s a", 0),
        ("srem s a zz", 1),
        ("sismember s b", 1),
        ("smismember s b zz", [1, 0]),
        ("scard s", 2),
        ("spop s -1", E("ERR value is out of range, must be positive")),
        ("spop s x", E("ERR value is out of range, must be positive")),
        ("spop s 0", []),
        ("spop nos", None),
        ("spop nos 1", []),
        ("spop s 1 2", E("ERR syntax error")),
        ("srandmember s 0", []),
        ("srandmember s x", E("ERR value is not an integer or out of range")),
        ("srandmember s 1 2", E("ERR syntax error")),
        ("srandmember nos", None),
        ("srandmember nos 5", []),
        (
            "srandmember s -9223372036854775808",
            E(
                "ERR value is out of range, value must between -9223372036854775807 and "
                "9223372036854775807"
            ),
        ),
        ("smove s str b", E("WRONGTYPE Operation against a key holding the wrong kind of value")),
        ("smove nos str b", 0),
        ("smove s s2 b", 1),
        ("smove s s2 zz", 0),
        ("sintercard 0 s", E("ERR numkeys should be greater than 0")),
        ("sintercard x s", E("ERR numkeys should be greater than 0")),
        ("sintercard 3 s", E("ERR Number of keys can't be greater than number of args")),
        ("sintercard 1 s limit -1", E("ERR LIMIT can't be negative")),
        ("sintercard 1 s limit x", E("ERR LIMIT can't be negative")),
        ("sintercard 1 s bogus", E("ERR syntax error")),
        ("sintercard 2 s s2 limit 1", 0),
        ("sinterstore d s nos", 0),
        ("exists d", 0),
        ("sunionstore d s s2", 2),
        ("sdiffstore d s", 1),
        ("sinter s str", E("WRONGTYPE Operation against a key holding the wrong kind of value")),
        ("sunion nos str", E("WRONGTYPE Operation against a key holding the wrong kind of value")),
        ("sdiff nos str", E("WRONGTYPE Operation against a key holding the wrong kind of value")),
    ],
    "zset": [
        ("zadd z", E("ERR wrong number of arguments for 'zadd' command")),
        ("zadd z 1", E("ERR wrong number of arguments for 'zadd' command")),
        ("zadd z 1 a 2", E("ERR syntax error")),
        ("zadd z nx xx 1 a", E("ERR XX and NX options at the same time are not compatible")),
        (
            "zadd z nx gt 1 a",
            E("ERR GT, LT, and/or NX options at the same time are not compatible"),
        ),
        (
            "zadd z gt lt 1 a",
            E("ERR GT, LT, and/or NX options at the same time are not compatible"),
        ),
        ("zadd z incr 1 a 2 b", E("ERR INCR option supports a single increment-element pair")),
        ("zadd z nan a", E("ERR value is not a valid float")),
        ("zadd z x a", E("ERR value is not a valid float")),
        ("zadd z 1 a 2 b 3 c", 3),
        ("zadd z xx 5 missing", 0),
        ("zadd z xx incr 5 missing", None),
        ("zadd z nx incr 5 a", None),
        ("zadd z gt ch 0 a 5 b", 1),
        ("zadd z lt incr 1 c", None),
        ("zadd z ch 1 a 1 b", 1),
        ("zadd z incr 1.1 d", b"1.1000000000000001"),
        ("zadd z -0 e", 1),
        ("zscore z e", b"0"),
        ("zincrby z inf a", b"inf"),
        ("zincrby z -inf a", E("ERR resulting score is not a number (NaN)")),
        ("zincrby z x a", E("ERR value is not a valid float")),
        ("zscore z d", b"1.1000000000000001"),
        ("zmscore z a missing", [b"inf", None]),
        ("zmscore nz a", [None]),
        ("zrank z missing", None),
        ("zrevrank z c", 1),
        ("zcount z x 1", E("ERR min or max is not a float")),
        ("zcount z (1 +inf", 3),
        ('zcount z "" 1', 2),
        (
            "zrange z 0 -1 withscores",
            [b"e", b"0", b"b", b"1", b"d", b"1.1000000000000001", b"c", b"3", b"a", b"inf"],
        ),
        ("zrange z 0 1 byscore withscores", [b"e", b"0", b"b", b"1"]),
        ("zrange z (1 +inf byscore limit 1 1 withscores", [b"c", b"3"]),
        ("zrange z +inf -inf byscore rev", [b"a", b"c", b"d", b"b", b"e"]),
        (
            "zrange z 0 -1 rev withscores",
            [b"a", b"inf", b"c", b"3", b"d", b"1.1000000000000001", b"b", b"1", b"e", b"0"],
        ),
        (
            "zrange z 0 -1 limit 0 1",
            E(
                "ERR syntax error, LIMIT is only supported in combination with either "
                "BYSCORE or BYLEX"
            ),
        ),
        (
            "zrange z 0 -1 bylex withscores",
            E("ERR syntax error, WITHSCORES not supported in combination with BYLEX"),
        ),
        ("zrange z a b bylex", E("ERR min or max not valid string range item")),
        ("zrange z - + bylex limit 0 2", [b"e", b"b"]),
        ("zrange z 0 -1 byscore byscore", E("ERR syntax error")),
        ("zrange z 0 -1 rev rev", E("ERR syntax error")),
        ("zrange z 0 -1 withscores limit", E("ERR syntax error")),
        ("zrangebyscore z -inf +inf limit 1 -1", [b"b", b"d", b"c", b"a"]),
        ("zrangebyscore z -inf +inf limit -1 5", []),
        ("zrangebyscore z x y", E("ERR min or max is not a float")),
        ("zrevrangebyscore z +inf -inf withscores limit 0 2", [b"a", b"inf", b"c", b"3"]),
        ("zrangebylex z - + limit 1 1", [b"b"]),
        ("zrangebylex z a +", E("ERR min or max not valid string range item")),
        ("zrevrangebylex z + - limit 0 1", [b"a"]),
        ("zlexcount z - +", 5),
        ("zlexcount z [a x", E("ERR min or max not valid string range item")),
        ("zrangestore d z 0 -1 withscores", E("ERR syntax error")),
        ("zrangestore d z 0 1", 2),
        ("zrangestore d nz 0 1", 0),
        ("exists d", 0),
        ("zrangestore d z (1 3 byscore rev", 0),
        ("zpopmin z -1", E("ERR value is out of range, must be positive")),
        ("zpopmin z x", E("ERR value is out of range, must be positive")),
        ("zpopmin z 0", []),
        ("zpopmin nz", []),
        ("zpopmin z 1 2", E("ERR syntax error")),
        ("zpopmax z", [b"a", b"inf"]),
        ("zpopmin z 2", [b"e", b"0", b"b", b"1"]),
        ("zremrangebyrank z x 1", E("ERR value is not an integer or out of range")),
        ("zremrangebyscore z x 1", E("ERR min or max is not a float")),
        ("zremrangebylex z x y", E("ERR min or max not valid string range item")),
        ("zremrangebyrank z 0 0", 1),
        ("zunionstore d 0 z", E("ERR at least 1 input key is needed for 'zunionstore' command")),
        ("zunionstore d x z", E("ERR value is not an integer or out of range")),
        ("zunionstore d 2 z", E("ERR syntax error")),
        (
            "zunionstore d 1 str",
            E("WRONGTYPE Operation against a key holding the wrong kind of value"),
        ),
        ("zunionstore d 1 z weights", E("ERR syntax error")),
        ("zunionstore d 1 z weights x", E("ERR weight value is not a float")),
        ("zunionstore d 1 z aggregate avg", E("ERR syntax error")),
        ("zunionstore d 1 z withscores", E("ERR syntax error")),
        ("zadd z2 1 a 2 q", 2),
        ("sadd zs a q r", 3),
        ("zunionstore d 3 z z2 zs weights 2 0.5 inf aggregate max", 4),
        ("zrange d 0 -1 withscores", [b"c", b"6", b"a", b"inf", b"q", b"inf", b"r", b"inf"]),
        ("zinterstore d 3 z z2 zs aggregate min", 0),
        ("zrange d 0 -1 withscores", []),
        ("zinterstore d 2 z nz", 0),
        ("exists d", 0),
        ("zscan z 0 count 0", E("ERR syntax error")),
        ("zscan z x", E("ERR invalid cursor")),
        ("zscan z 0 match *", [b"0", [b"c", b"3"]]),
        ("zrem z missing a", 0),
    ],
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_replies_match_redis(kind: str) -> None:
    aspen = Aspen()
    aspen.call([b"set", b"str", b"v"])
    for line, expected in CASES[kind]:
        argv = [a.encode() for a in shlex.split(line)]
        got = aspen.call(argv)
        assert got == expected, (line, got, expected)
        assert type(got) is type(expected), (line, got, expected)
