"""Random hash / list / set / sorted-set commands for the differential tests.

Keys: two per type, one string key and one key any command may hit (so WRONGTYPE comes up
often). `zlex` only ever holds members with score 0 and only lex-safe commands write it:
Redis leaves lexicographic ranges over mixed scores unspecified. Scores are dyadic (exact in
binary) so that sums cannot depend on the order Redis happens to add them in.
"""

from __future__ import annotations

from hypothesis import strategies as st

HKEYS = [b"h1", b"h2"]
LKEYS = [b"l1", b"l2"]
SKEYS = [b"s1", b"s2"]
ZKEYS = [b"z1", b"z2"]
LEXKEY = b"zlex"
SHARED = [b"any", b"str"]
ALL_KEYS = [*HKEYS, *LKEYS, *SKEYS, *ZKEYS, LEXKEY, *SHARED]

MEMBERS = [b"a", b"b", b"c", b"d", b"1", b"2", b"10", b"-1", b"", b"ab", b"\x00\xff"]
VALUES = [b"", b"0", b"1", b"-3", b"10", b"1.5", b"abc", b"9223372036854775807", b"x y"]
INTS = [b"0", b"1", b"2", b"-1", b"-2", b"3", b"-5", b"100", b"x", b"1.5", b""]
COUNTS = [b"0", b"1", b"2", b"3", b"5", b"-1", b"-2", b"-7", b"x", b""]
SCORES = [
    b"0",
    b"1",
    b"-1",
    b"1.5",
    b"2",
    b"0.5",
    b"-0.25",
    b"3",
    b"inf",
    b"-inf",
    b"+inf",
    b"1e3",
    b"-0",
    b"x",
    b"nan",
    b"",
    b" 1",
    b"0x10",
    b"(1",
]
INCRS = [b"1", b"-1", b"0.5", b"2.5", b"-inf", b"inf", b"abc", b"0"]
FLOAT_INCRS = [b"0.5", b"-1.25", b"2", b"1e3", b"0", b"abc", b"", b"inf"]
BOUNDS = [
    b"-inf",
    b"+inf",
    b"inf",
    b"0",
    b"(0",
    b"1",
    b"(1",
    b"1.5",
    b"(1.5",
    b"2",
    b"(3",
    b"-1",
    b"x",
    b"(",
    b"((1",
    b"1e3",
]
LEX = [b"-", b"+", b"[a", b"(a", b"[b", b"(b", b"[c", b"(d", b"[", b"(", b"a", b"[10", b"+a"]
PATTERNS = [b"*", b"a*", b"?", b"[ab]", b"*1*", b"\\"]

member = st.sampled_from(MEMBERS)
value = st.sampled_from(VALUES)
ints = st.sampled_from(INTS)
counts = st.sampled_from(COUNTS)
scores = st.sampled_from(SCORES)
bounds = st.sampled_from(BOUNDS)
lex = st.sampled_from(LEX)


def _key(own: list[bytes]) -> st.SearchStrategy[bytes]:
    return st.one_of(st.sampled_from(own), st.sampled_from(own), st.sampled_from(SHARED))


hkey, lkey, skey = _key(HKEYS), _key(LKEYS), _key(SKEYS)
zkey = _key(ZKEYS)
zread = st.one_of(zkey, st.just(LEXKEY))


def _cased(name: str) -> st.SearchStrategy[bytes]:
    return st.sampled_from([name.encode(), name.upper().encode()])


def cmd(*parts: st.SearchStrategy[object]) -> st.SearchStrategy[list[bytes]]:
    def flatten(items: tuple[object, ...]) -> list[bytes]:
        out: list[bytes] = []
        for item in items:
            if isinstance(item, list):
                out.extend(item)
            else:
                assert isinstance(item, bytes)
                out.append(item)
        return out

    return st.tuples(*parts).map(flatten)


def w(word: str) -> st.SearchStrategy[bytes]:
    return st.just(word.encode())


def some(s: st.SearchStrategy[bytes], lo: int = 1, hi: int = 4) -> st.SearchStrategy[list[bytes]]:
    return st.lists(s, min_size=lo, max_size=hi)


def opt(s: st.SearchStrategy[list[bytes]]) -> st.SearchStrategy[list[bytes]]:
    return st.one_of(st.just([]), s)


def pairs(
    a: st.SearchStrategy[bytes], b: st.SearchStrategy[bytes]
) -> st.SearchStrategy[list[bytes]]:
    return st.lists(st.tuples(a, b), min_size=1, max_size=4).map(
        lambda ps: [x for p in ps for x in p]
    )


def hash_commands() -> st.SearchStrategy[list[bytes]]:
    return st.one_of(
        cmd(_cased("hset"), hkey, pairs(member, value)),
        cmd(w("hset"), hkey, member),
        cmd(w("hmset"), hkey, pairs(member, value)),
        cmd(w("hsetnx"), hkey, member, value),
        cmd(w("hget"), hkey, member),
        cmd(w("hmget"), hkey, some(member)),
        cmd(w("hdel"), hkey, some(member)),
        cmd(w("hexists"), hkey, member),
        cmd(w("hlen"), hkey),
        cmd(w("hstrlen"), hkey, member),
        cmd(w("hkeys"), hkey),
        cmd(w("hvals"), hkey),
        cmd(w("hgetall"), hkey),
        cmd(w("hincrby"), hkey, member, ints),
        cmd(w("hincrbyfloat"), hkey, member, st.sampled_from(FLOAT_INCRS)),
        cmd(w("hrandfield"), hkey, st.sampled_from([[b"1", b"x"], [b"x"], [b"1", b"2", b"3"]])),
    )


def list_commands() -> st.SearchStrategy[list[bytes]]:
    side = st.sampled_from([b"left", b"RIGHT", b"right", b"LEFT", b"up"])
    return st.one_of(
        cmd(_cased("lpush"), lkey, some(member)),
        cmd(w("rpush"), lkey, some(member)),
        cmd(st.sampled_from([b"lpushx", b"rpushx"]), lkey, some(member)),
        cmd(st.sampled_from([b"lpop", b"rpop"]), lkey, opt(cmd(counts))),
        cmd(w("lpop"), lkey, w("1"), w("2")),
        cmd(w("llen"), lkey),
        cmd(w("lrange"), lkey, ints, ints),
        cmd(w("lindex"), lkey, ints),
        cmd(w("lset"), lkey, ints, member),
        cmd(w("linsert"), lkey, st.sampled_from([b"before", b"AFTER", b"middle"]), member, member),
        cmd(w("lrem"), lkey, ints, member),
        cmd(w("ltrim"), lkey, ints, ints),
        cmd(
            w("lpos"),
            lkey,
            member,
            st.lists(
                st.tuples(st.sampled_from([b"rank", b"count", b"maxlen", b"RANK", b"bogus"]), ints),
                max_size=2,
            ).map(lambda ps: [x for p in ps for x in p]),
        ),
        cmd(w("lmove"), lkey, lkey, side, side),
        cmd(w("rpoplpush"), lkey, lkey),
    )


def set_commands() -> st.SearchStrategy[list[bytes]]:
    keys = some(skey, 1, 3)
    return st.one_of(
        cmd(_cased("sadd"), skey, some(member)),
        cmd(w("srem"), skey, some(member)),
        cmd(w("sismember"), skey, member),
        cmd(w("smismember"), skey, some(member)),
        cmd(w("smembers"), skey),
        cmd(w("scard"), skey),
        cmd(w("smove"), skey, skey, member),
        cmd(st.sampled_from([b"sinter", b"sunion", b"sdiff"]), keys),
        cmd(st.sampled_from([b"sinterstore", b"sunionstore", b"sdiffstore"]), skey, keys),
        cmd(
            w("sintercard"),
            st.sampled_from([b"1", b"2", b"3", b"0", b"x"]),
            keys,
            opt(cmd(st.sampled_from([b"limit", b"LIMIT", b"bogus"]), counts)),
        ),
    )


def zset_commands() -> st.SearchStrategy[list[bytes]]:
    flags = st.lists(
        st.sampled_from([b"nx", b"xx", b"gt", b"lt", b"ch", b"incr", b"XX", b"CH"]),
        max_size=3,
        unique=True,
    )
    rangeopts = st.lists(
        st.sampled_from(
            [
                [b"withscores"],
                [b"limit", b"0", b"2"],
                [b"limit", b"1", b"-1"],
                [b"LIMIT", b"-1", b"1"],
                [b"limit", b"1"],
                [b"rev"],
                [b"byscore"],
                [b"bogus"],
            ]
        ),
        max_size=3,
    ).map(lambda parts: [x for p in parts for x in p])
    numkeys_form = st.lists(zkey | skey, min_size=1, max_size=3).flatmap(
        lambda ks: st.tuples(
            st.sampled_from([str(len(ks)).encode(), str(len(ks)).encode(), b"0", b"9", b"x"]),
            st.just(ks),
            st.one_of(
                st.just([]),
                st.lists(
                    st.sampled_from([b"2", b"0.5", b"-1", b"inf", b"x"]),
                    min_size=len(ks),
                    max_size=len(ks),
                ).map(lambda ws: [b"weights", *ws]),
            ),
            st.one_of(
                st.just([]),
                st.sampled_from([b"sum", b"MIN", b"max", b"avg"]).map(lambda a: [b"aggregate", a]),
            ),
        ).map(lambda t: [t[0], *t[1], *t[2], *t[3]])
    )
    diff_form = st.lists(zkey | skey, min_size=1, max_size=3).flatmap(
        lambda ks: st.tuples(
            st.sampled_from([str(len(ks)).encode(), str(len(ks)).encode(), b"0", b"9", b"x"]),
            st.just(ks),
        ).map(lambda t: [t[0], *t[1]])
    )
    return st.one_of(
        cmd(_cased("zadd"), zkey, flags, pairs(scores, member)),
        cmd(w("zadd"), zkey, flags, scores),
        cmd(w("zincrby"), zkey, st.sampled_from(INCRS), member),
        cmd(w("zrem"), zkey, some(member)),
        cmd(w("zscore"), zread, member),
        cmd(w("zmscore"), zread, some(member)),
        cmd(w("zcard"), zread),
        cmd(w("zcount"), zread, bounds, bounds),
        cmd(st.sampled_from([b"zrank", b"zrevrank"]), zread, member),
        cmd(w("zrange"), zread, ints, ints, rangeopts),
        cmd(w("zrange"), zread, bounds, bounds, w("byscore"), rangeopts),
        cmd(w("zrangestore"), zkey, zread, ints, ints, rangeopts),
        cmd(w("zrevrange"), zread, ints, ints, opt(cmd(w("withscores")))),
        cmd(
            st.sampled_from([b"zrangebyscore", b"zrevrangebyscore"]),
            zread,
            bounds,
            bounds,
            rangeopts,
        ),
        cmd(st.sampled_from([b"zpopmin", b"zpopmax"]), zkey, opt(cmd(counts))),
        cmd(w("zremrangebyrank"), zkey, ints, ints),
        cmd(w("zremrangebyscore"), zkey, bounds, bounds),
        cmd(st.sampled_from([b"zunionstore", b"zinterstore"]), zkey, numkeys_form),
        cmd(
            st.sampled_from([b"zunion", b"zinter"]),
            numkeys_form,
            opt(st.sampled_from([[b"withscores"], [b"WITHSCORES"], [b"withscores", b"x"]])),
        ),
        cmd(w("zdiff"), diff_form, opt(st.sampled_from([[b"withscores"], [b"weights", b"1"]]))),
        cmd(w("zdiffstore"), zkey, diff_form),
        cmd(
            w("zintercard"),
            diff_form,
            opt(cmd(st.sampled_from([b"limit", b"LIMIT", b"bogus"]), counts)),
        ),
        cmd(
            w("zmpop"),
            diff_form,
            st.sampled_from([b"min", b"MAX", b"max", b"bogus"]),
            opt(cmd(st.sampled_from([b"count", b"COUNT"]), counts)),
        ),
    )


def lex_commands() -> st.SearchStrategy[list[bytes]]:
    key = st.just(LEXKEY)
    limit = opt(st.sampled_from([[b"limit", b"0", b"2"], [b"limit", b"1", b"-1"], [b"withscores"]]))
    return st.one_of(
        cmd(
            w("zadd"),
            key,
            st.lists(member, min_size=1, max_size=3).map(
                lambda ms: [x for m in ms for x in (b"0", m)]
            ),
        ),
        cmd(w("zrem"), key, some(member)),
        cmd(st.sampled_from([b"zrangebylex", b"zrevrangebylex"]), key, lex, lex, limit),
        cmd(w("zrange"), key, lex, lex, w("bylex"), opt(cmd(w("rev"))), limit),
        cmd(w("zlexcount"), key, lex, lex),
        cmd(w("zremrangebylex"), key, lex, lex),
        cmd(w("zrangestore"), st.sampled_from(ZKEYS), key, lex, lex, w("bylex")),
        cmd(st.sampled_from([b"zpopmin", b"zpopmax"]), key),
    )


def misc_commands() -> st.SearchStrategy[list[bytes]]:
    key = st.sampled_from(ALL_KEYS)
    return st.one_of(
        cmd(w("set"), st.sampled_from([b"str", b"any"]), value),
        cmd(w("type"), key),
        cmd(w("del"), key),
        cmd(w("exists"), key),
        cmd(w("copy"), key, key, opt(cmd(w("replace")))),
        cmd(w("rename"), key, key),
    )


def type_command() -> st.SearchStrategy[list[bytes]]:
    return st.one_of(
        hash_commands(),
        list_commands(),
        set_commands(),
        zset_commands(),
        lex_commands(),
        misc_commands(),
    )


def random_command() -> st.SearchStrategy[list[bytes]]:
    """Commands whose replies are random: checked by shape and membership, not equality."""
    return st.one_of(
        cmd(w("spop"), skey, opt(cmd(counts))),
        cmd(w("srandmember"), skey, opt(cmd(counts))),
        cmd(w("hrandfield"), hkey, opt(cmd(counts, opt(cmd(w("withvalues")))))),
        cmd(w("zrandmember"), zkey, opt(cmd(counts, opt(cmd(w("withscores")))))),
    )
