"""EVAL / EVALSHA / FCALL differential test: generated Lua scripts against a real redis-server.

Each example flushes both servers, writes the same small data set (every type), then runs
generated scripts: redis.call/pcall over the data types (replies of every RESP type, errors,
arity and unknown commands), return values of every Lua type (integers, floats, booleans, nil,
nested tables with holes, ok/err tables), error paths (error(), protected globals, readonly
tables), the libraries (cjson, cmsgpack, bit, struct), `redis.setresp(3)`, and RESP2 and RESP3
connections. Replies are compared type-exactly, then the data the scripts wrote.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_differential_wire import aspen_port, redis_port  # noqa: F401  (fixtures)

from harness.hypothesis_budget import scaled_examples
from harness.resp_wire import RespClient

pytestmark = pytest.mark.differential

SETUP: list[list[bytes]] = [
    [b"SET", b"s", b"10"],
    [b"SET", b"str", b"hello"],
    [b"HSET", b"h", b"f1", b"v1", b"f2", b"2"],
    [b"RPUSH", b"l", b"a", b"b", b"c"],
    [b"SADD", b"st", b"x"],
    [b"ZADD", b"z", b"1.5", b"a", b"2", b"b"],
]

CALLS = [
    "'get','s'", "'get','nokey'", "'incr','s'", "'incrbyfloat','s','1.5'", "'hgetall','h'",
    "'hget','h','f1'", "'hget','h','nof'", "'lrange','l',0,-1", "'sismember','st','x'",
    "'scard','st'", "'zrange','z',0,-1,'withscores'", "'zscore','z','a'", "'exists','s','h'",
    "'type','l'", "'set','new','1'", "'set','new',KEYS[1] or 'k'", "'del','str'",
    "'hset','h','f3','x'", "'lpush','l','d'", "'incr','str'", "'get','h'", "'ttl','s'",
    "'zadd','z',3,'c'", "'sadd','st','z'", "'hincrbyfloat','h','f2','0.5'", "'ping'",
    "'echo','x'", "'nosuch'", "'get'", "'set','f',1.5", "'set','big',2^53",
    "'set','neg',-7", "'mget','s','nokey','str'", "'lpop','nolist'", "'hmget','h','f1','zz'",
    "'expire','s',100", "'pttl','nokey'", "'getrange','str',0,2", "'strlen','str'",
    "'zincrby','z',1,'a'", "'zrangebyscore','z','-inf','+inf'", "'hlen','h'",
    "'select',0", "'eval','return 1',0", "'multi'", "'time_not'", "'set'", "true",
    "'get',{}", "'get',nil",
]

VALUES = [
    "1", "0", "-3", "3.99", "-2.5", "1e3", "0.1", "'str'", "''", "true", "false", "nil",
    "{}", "{1,2,3}", "{1,'a',{2,{3,'b'}}}", "{1,nil,3}", "{ok='fine'}", "{err='MYERR bad'}",
    "{err='-E2 x'}", "redis.status_reply('S')", "redis.error_reply('E x')",
    "redis.error_reply('plain')", "{double=2.5}", "{map={a=1}}", "{set={a=true}}",
    "{true,false,1}", "KEYS", "ARGV", "#KEYS", "ARGV[1]", "redis.sha1hex('abc')",
    "tostring(1.5)", "tonumber('12')", "string.format('%.3f', 1/3)", "2^31", "-2^63",
    "cjson.encode({1,2,{3}})", "cjson.encode({a=1})", "cjson.encode('a/\"b')",
    "cjson.encode({1,nil,3})", "cjson.encode(3.14159)", "cjson.encode({})",
    "cjson.decode('[1,2,{\"a\":[true,false]}]')", "cjson.decode('{\"x\":\"y\"}').x",
    "cjson.decode('\"\\\\u00e9\"')", "cjson.decode('[1.5e3]')[1]",
    "cjson.decode('0x10')", "cjson.decode('-inf') < 0", "cjson.decode(' [ 1 , {} ] ')",
    "cjson.decode('\"\\\\ud83d\\\\ude00\\\\n\"')", "cjson.decode('012')",
    "cjson.decode('{\"a\":{\"b\":[1,2,null]}}').a.b[2]",
    "bit.band(0xff, 0x0f)", "bit.bor(1, 2, 4)", "bit.bxor(5, 3)", "bit.lshift(1, 31)",
    "bit.rshift(-1, 28)", "bit.arshift(-256, 4)", "bit.tohex(255)", "bit.tohex(-1, -4)",
    "bit.bnot(5)", "bit.tobit(2^32 + 5)", "bit.rol(1, 33)", "bit.bswap(1)",
    "struct.pack('>I2', 258)", "struct.pack('<i4', -2)", "{struct.unpack('>I2', 'ab')}",
    "struct.size('>iHd')", "struct.pack('b', 200)", "{struct.unpack('<d', struct.pack('<d', 1.5))}",
    "cmsgpack.pack({1,2,'a'})", "cmsgpack.pack({a=1})", "cmsgpack.pack(1.5, -1, 300, 70000)",
    "{cmsgpack.unpack(cmsgpack.pack({1,{2,'x'}}, 'y'))}", "cmsgpack.pack(-40, 2^40, true)",
    "type(cjson.null)", "string.rep('ab', 3)", "('x'):upper()", "#'abc'", "math.floor(2.7)",
    "select('#', 1, 2)", "unpack({1, 2})", "table.concat({'a','b'}, '-')",
    "rawget(_G, 'KEYS') ~= nil", "type(os)", "loadstring('return 7')()",
    "pcall(error, 'x')", "select(2, pcall(error, {err='T'}))", "redis.REDIS_VERSION",
]

ERRORS = [
    "error('boom')", "error({err='CODE msg'})", "nosuchglobal = 1", "return undefinedvar",
    "string.x = 1", "redis.call = nil", "local t = nil; return t.x", "error(nil)",
    "redis.setresp(4)", "redis.set_repl(7)", "return 1 + {}", "redis.log(redis.LOG_WARNING)",
    "redis.log('x', 'y')", "return cjson.encode(function() end)", "return cjson.decode('[')",
    "return cjson.decode('[1,2')", "return cjson.decode('{\"a\" 1}')",
    "return cjson.decode('{1:2}')", "return cjson.decode('\"\\\\x\"')",
    "return cjson.decode('tru')", "return cjson.decode('[1] x')", "return cjson.decode('')",
    "return cjson.decode('\"abc')", "return cjson.decode('[1,]')", "return cjson.decode('-')",
    "return cjson.decode('\"\\\\ud800\"')",
    "return struct.pack('z', 1)", "return ('x'):rep(-1) .. nil",
    "return bit.band('zz')", "return cmsgpack.unpack('\\217')", "redis.sha1hex()",
]


def _call(kind: str, args: str) -> str:
    return f"redis.{kind}({args})"


@st.composite
def scripts(draw: st.DrawFn) -> str:
    lines: list[str] = []
    if draw(st.booleans()):
        lines.append("redis.setresp(3)")
    body = draw(st.lists(st.one_of(
        st.builds(lambda k, a: f"r[#r+1] = {_call(k, a)}",
                  st.sampled_from(["call", "pcall"]), st.sampled_from(CALLS)),
        st.builds(lambda v: f"r[#r+1] = {v}", st.sampled_from(VALUES)),
        st.builds(lambda k, a: f"r[#r+1] = {{{_call(k, a)}}}",
                  st.just("pcall"), st.sampled_from(CALLS)),
    ), max_size=5))
    lines.append("local r = {}")
    lines += body
    end = draw(st.sampled_from(["r", "value", "call", "error"]))
    if end == "r":
        lines.append("return r")
    elif end == "value":
        lines.append(f"return {draw(st.sampled_from(VALUES))}")
    elif end == "call":
        kind = draw(st.sampled_from(["call", "pcall"]))
        lines.append(f"return {_call(kind, draw(st.sampled_from(CALLS)))}")
    else:
        lines.append(draw(st.sampled_from(ERRORS)))
    return "\n".join(lines)


@pytest.fixture(scope="module")
def clients(redis_port: int, aspen_port: int) -> Iterator[dict[int, tuple[RespClient, ...]]]:  # noqa: F811
    pairs = {
        proto: (RespClient(redis_port, proto), RespClient(aspen_port, proto))
        for proto in (2, 3)
    }
    yield pairs
    for pair in pairs.values():
        for c in pair:
            c.close()


def _reset(pair: tuple[RespClient, ...]) -> None:
    for c in pair:
        assert c.call([b"FLUSHALL"]) is not None
        c.call([b"SCRIPT", b"FLUSH"])
        for argv in SETUP:
            c.call(argv)


def _same(pair: tuple[RespClient, ...], argv: list[bytes], what: str) -> object:
    ref, ours = (c.call(argv) for c in pair)
    assert type(ours) is type(ref) and ours == ref, f"{what}\nredis: {ref!r}\naspen: {ours!r}"
    return ref


STATE = [
    [b"GET", b"s"], [b"GET", b"new"], [b"GET", b"f"], [b"GET", b"big"], [b"GET", b"neg"],
    [b"EXISTS", b"str"], [b"HGET", b"h", b"f2"], [b"HGET", b"h", b"f3"],
    [b"LRANGE", b"l", b"0", b"-1"], [b"SCARD", b"st"], [b"ZSCORE", b"z", b"a"],
    [b"ZCARD", b"z"],
]


@settings(max_examples=scaled_examples(150), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=scripts(), proto=st.sampled_from([2, 3]),
       keys=st.lists(st.sampled_from([b"k1", b"s"]), max_size=2),
       args=st.lists(st.sampled_from([b"a1", b"7", b""]), max_size=2))
def test_eval_matches_redis(clients: dict[int, tuple[RespClient, ...]], body: str, proto: int,
                            keys: list[bytes], args: list[bytes]) -> None:
    pair = clients[proto]
    _reset(pair)
    script = body.encode()
    argv = [b"EVAL", script, str(len(keys)).encode(), *keys, *args]
    _same(pair, argv, f"EVAL (RESP{proto}):\n{body}")
    sha = hashlib.sha1(script).hexdigest().encode()
    _same(pair, [b"SCRIPT", b"EXISTS", sha], "SCRIPT EXISTS")
    for argv in STATE:
        _same(pair, argv, f"after the script, {argv!r}:\n{body}")


@settings(max_examples=scaled_examples(60), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=scripts(), proto=st.sampled_from([2, 3]),
       keys=st.lists(st.sampled_from([b"k1", b"s"]), max_size=2),
       args=st.lists(st.sampled_from([b"a1", b"7", b""]), max_size=2))
def test_fcall_matches_redis(clients: dict[int, tuple[RespClient, ...]], body: str, proto: int,
                             keys: list[bytes], args: list[bytes]) -> None:
    """The same generated bodies as a library function (KEYS/ARGV are its parameters)."""
    pair = clients[proto]
    _reset(pair)
    code = ("#!lua name=generated\nredis.register_function('gen', function(KEYS, ARGV)\n"
            f"{body}\nend)").encode()
    _same(pair, [b"FUNCTION", b"LOAD", b"REPLACE", code], f"FUNCTION LOAD:\n{body}")
    argv = [b"FCALL", b"gen", str(len(keys)).encode(), *keys, *args]
    _same(pair, argv, f"FCALL (RESP{proto}):\n{body}")
    for argv in STATE:
        _same(pair, argv, f"after the function, {argv!r}:\n{body}")


FIXED = [
    [b"EVAL", b"return 1", b"-1"], [b"EVAL", b"return 1", b"2", b"a"],
    [b"EVAL", b"return 1", b"x"], [b"EVALSHA", b"ffffffffffffffffffffffffffffffffffffffff", b"0"],
    [b"EVALSHA", b"abc", b"0"], [b"EVAL", b"return x(", b"0"],
    [b"EVAL", b"#!lua\nerror('x')", b"0"],
    [b"EVAL", b"#!lua flags=no-writes\nreturn redis.call('set','a','b')", b"0"],
    [b"EVAL_RO", b"#!lua\nreturn 1", b"0"], [b"EVAL", b"#!lua flags=bad\nreturn 1", b"0"],
    [b"EVAL", b"#!lua x=1\nreturn 1", b"0"], [b"EVAL", b"#!luajit\nreturn 1", b"0"],
    [b"EVAL", b"#!lua flags=allow-oom,no-cluster,allow-stale\nreturn 1", b"0"],
    [b"EVAL_RO", b"return redis.call('set','a','b')", b"0"],
    [b"EVAL_RO", b"return redis.call('get','s')", b"0"],
    [b"SCRIPT", b"LOAD", b"return 'loaded'"],
    [b"EVALSHA", hashlib.sha1(b"return 'loaded'").hexdigest().encode(), b"0"],
    [b"EVALSHA_RO", hashlib.sha1(b"return 'loaded'").hexdigest().encode(), b"0"],
    [b"SCRIPT", b"LOAD", b"return x("], [b"SCRIPT", b"FLUSH", b"bad"],
    [b"SCRIPT", b"FLUSH", b"ASYNC"], [b"SCRIPT", b"KILL"], [b"FUNCTION", b"KILL"],
    [b"EVALSHA", hashlib.sha1(b"return 'loaded'").hexdigest().encode(), b"0"],
    [b"FUNCTION", b"FLUSH"],
    [b"FUNCTION", b"LOAD", b"return 1"], [b"FUNCTION", b"LOAD", b"#!js name=x\nreturn 1"],
    [b"FUNCTION", b"LOAD", b"#!lua\nreturn 1"],
    [b"FUNCTION", b"LOAD", b"#!lua name=a foo=bar\nreturn 1"],
    [b"FUNCTION", b"LOAD", b"#!lua name=a-b\nreturn 1"],
    [b"FUNCTION", b"LOAD", b"#!lua name=lib1\nreturn 1"],
    [b"FUNCTION", b"LOAD", b"#!lua name=lib1\nredis.register_function('f-1', function() end)"],
    [b"FUNCTION", b"LOAD", b"#!lua name=lib1\nredis.register_function('f1', function() end)"
     b" redis.register_function('f1', function() end)"],
    [b"FUNCTION", b"LOAD", b"#!lua name=lib1\nredis.register_function('f1', function() end"],
    [b"FUNCTION", b"LOAD", b"#!lua name=lib1\nerror('x')"],
    [b"FUNCTION", b"LOAD", b"#!lua name=lib1\nredis.call('ping')"],
    [b"FUNCTION", b"LOAD", b"#!lua name=lib1\nlocal function helper(k) return "
     b"redis.call('get', k) end\nredis.register_function{function_name='f1', callback="
     b"function(keys, args) return {keys[1], args[1], helper(keys[1])} end, flags="
     b"{'no-writes'}}"],
    [b"FUNCTION", b"LOAD", b"#!lua name=lib1\nredis.register_function('f1', function() end)"],
    [b"FUNCTION", b"LOAD", b"#!lua name=lib2\nredis.register_function('f1', function() end)"],
    [b"FCALL", b"f1", b"1", b"s", b"a"], [b"FCALL_RO", b"f1", b"1", b"s", b"a"],
    [b"FCALL", b"nosuch", b"0"], [b"FCALL", b"f1", b"5"],
    [b"FUNCTION", b"LOAD", b"#!lua name=lib3\nredis.register_function{function_name='w', "
     b"callback=function() error('oops') end, flags={'bad'}}"],
    [b"FUNCTION", b"LOAD", b"#!lua name=lib3\nredis.register_function{function_name='w', "
     b"callback=function(k, a) redis.call('set', k[1], a[1]) error('oops') end}"],
    [b"FCALL", b"w", b"1", b"fk", b"fv"], [b"GET", b"fk"], [b"FCALL_RO", b"w", b"0"],
    [b"FUNCTION", b"LIST", b"LIBRARYNAME", b"lib3", b"WITHCODE"],
    [b"FUNCTION", b"LIST", b"LIBRARYNAME", b"nomatch"], [b"FUNCTION", b"LIST", b"bad"],
    [b"FUNCTION", b"LIST", b"LIBRARYNAME", b"LIB3"],  # Redis matches names without case
    [b"FUNCTION", b"STATS"], [b"FUNCTION", b"DELETE", b"nosuch"],
    [b"FUNCTION", b"DELETE", b"lib3"], [b"FCALL", b"w", b"0"],
    [b"FUNCTION", b"LOAD", b"REPLACE", b"#!lua name=lib1\nredis.register_function('g', "
     b"function() return redis.setresp(3) end)"],
    [b"FCALL", b"g", b"0"], [b"FCALL", b"f1", b"0"],
    [b"FUNCTION", b"RESTORE", b"garbage"], [b"FUNCTION", b"FLUSH", b"SYNC"],
    [b"FUNCTION", b"STATS"],
]


@pytest.mark.parametrize("proto", [2, 3])
def test_fixed_cases_match_redis(clients: dict[int, tuple[RespClient, ...]], proto: int) -> None:
    pair = clients[proto]
    _reset(pair)
    for argv in FIXED:
        _same(pair, argv, f"{argv!r} (RESP{proto})")


def test_function_dump_moves_both_ways(clients: dict[int, tuple[RespClient, ...]]) -> None:
    """A FUNCTION DUMP from redis-server restores into Aspen and the other way round."""
    pair = clients[2]
    libs = [
        b"#!lua name=short\nredis.register_function('s', function() return 1 end)",
        b"#!lua name=long\nredis.register_function('l', function() return 2 end)\n-- "
        + b"padding " * 40,  # long enough for redis-server to LZF-compress it
    ]
    for c in pair:
        assert c.call([b"FUNCTION", b"FLUSH"]) == "OK"
        for code in libs:
            c.call([b"FUNCTION", b"LOAD", code])
    dumps = [c.call([b"FUNCTION", b"DUMP"]) for c in pair]
    for source, target in ((0, 1), (1, 0)):
        payload = dumps[source]
        assert isinstance(payload, bytes)
        assert pair[target].call([b"FUNCTION", b"FLUSH"]) == "OK"
        assert pair[target].call([b"FUNCTION", b"RESTORE", payload]) == "OK"
        assert pair[target].call([b"FCALL", b"l", b"0"]) == 2
        listed = pair[target].call([b"FUNCTION", b"LIST", b"WITHCODE"])
        assert isinstance(listed, list) and len(listed) == 2
        again = [c.call([b"FUNCTION", b"RESTORE", payload]) for c in pair]
        for reply in again:  # which library collides first is each server's own order
            assert str(reply).startswith("ERR Library ") and str(reply).endswith(" already exists")
    bad = dumps[1][:-1] + bytes([dumps[1][-1] ^ 1])
    _same(pair, [b"FUNCTION", b"RESTORE", bad], "a payload with a wrong checksum")
