"""The Lua sandbox, determinism and the instruction budget, in process (no server).

Replies are keyspace reply values; the wire behaviour against redis-server is
tests/integration/test_scripting_differential.py.
"""

from __future__ import annotations

import hashlib

import pytest

from aspen.kv.keyspace import Keyspace
from aspen.kv.ops import ReadOp, WriteOp
from aspen.resp.values import Error, SimpleString

NOW = 1_700_000_000_123


def run(ks: Keyspace, script: str, *args: bytes, seed: int = 1, now: int = NOW) -> object:
    return ks.execute(WriteOp((b"EVAL", script.encode(), *args)), now, seed)


def err(reply: object) -> str:
    assert isinstance(reply, Error), reply
    return reply.message


def test_globals_are_protected_with_redis_texts() -> None:
    ks = Keyspace()
    assert "Attempt to modify a readonly table" in err(run(ks, "x = 1", b"0"))
    assert "Attempt to modify a readonly table" in err(run(ks, "string.x = 1", b"0"))
    assert "Attempt to modify a readonly table" in err(run(ks, "redis.call = nil", b"0"))
    for name in ("os", "io", "loadfile", "dofile", "require", "debug", "print", "getfenv",
                 "setfenv", "package", "python"):
        text = err(run(ks, f"return {name}", b"0"))
        assert f"Script attempted to access nonexistent global variable '{name}'" in text


def test_no_state_survives_a_script() -> None:
    ks = Keyspace()
    # raw writes into the proxies a run sees are gone in the next run
    assert run(ks, "rawset(string, 'leak', 'x') rawset(_G, 'leak2', 1) return 1", b"0") == 1
    assert "nonexistent global variable 'leak2'" in err(run(ks, "return leak2", b"0"))
    assert run(ks, "return string.leak", b"0") is None
    # a loadstring'd chunk runs in the script's environment, not the real globals
    assert "nonexistent" in err(run(ks, "return loadstring('return os')()", b"0"))
    assert run(ks, "return loadstring('return KEYS[1]')()", b"1", b"k") == b"k"
    binary = "return select(2, loadstring(string.dump(function() end)))"
    assert run(ks, binary, b"0") == b"attempt to load a binary chunk"
    assert "nonexistent" in err(run(ks, "return python", b"0"))
    assert "not accessible" in err(run(ks, "return redis.call.__class__", b"0"))


def test_scripts_are_deterministic_on_every_replica() -> None:
    """Two replicas applying the same entries (same now_ms and seed) end identical, though
    the scripts use random numbers, addresses and time."""
    script = (
        "local t = {} "
        "redis.call('set', 'r', tostring(math.random()) .. tostring(math.random(1, 100))) "
        "redis.call('set', 'addr', tostring({}) .. tostring(t) .. tostring(tostring)) "
        "redis.call('set', 'gc', collectgarbage('count') .. gcinfo()) "
        "redis.call('set', 'time', table.concat(redis.call('time'), '.')) "
        "return 1"
    )
    replicas = [Keyspace(), Keyspace()]
    for ks in replicas:
        ks.execute(WriteOp((b"SET", b"warmup", b"1")), NOW, 1)
        for seed in (5, 6):
            assert ks.execute(WriteOp((b"EVAL", script.encode(), b"0")), NOW, seed) == 1
    assert replicas[0].digest() == replicas[1].digest()
    ks = replicas[0]
    t = ks.execute(ReadOp((b"GET", b"time")), NOW, 0)
    assert t == f"{NOW // 1000}.{(NOW % 1000) * 1000}".encode()  # the entry's time
    a = run(Keyspace(), "return tostring(math.random())", b"0", seed=7)
    b = run(Keyspace(), "return tostring(math.random())", b"0", seed=7)
    c = run(Keyspace(), "return tostring(math.random())", b"0", seed=8)
    assert a == b != c


def test_the_budget_stops_a_runaway_script_and_undoes_its_writes() -> None:
    ks = Keyspace()
    ks.script_budget = 2_000_000
    ks.execute(WriteOp((b"SET", b"kept", b"before")), NOW, 1)
    ks.execute(WriteOp((b"HSET", b"h", b"f", b"1")), NOW, 1)
    before = ks.digest()
    runaway = (
        "redis.call('set', 'kept', 'changed') redis.call('set', 'new', 'x') "
        "redis.call('hset', 'h', 'g', '2') redis.call('del', 'h') "
        "while true do pcall(function() while true do end end) end"
    )
    text = err(run(ks, runaway, b"0"))
    assert text.startswith("ERR Script exceeded its budget of Lua instructions (2000000)")
    assert ks.execute(ReadOp((b"GET", b"kept")), NOW, 0) == b"before"
    assert ks.execute(ReadOp((b"EXISTS", b"new")), NOW, 0) == 0
    assert ks.execute(ReadOp((b"HGETALL", b"h")), NOW, 0) is not None
    # a keyless write (FLUSHALL) inside a runaway script is undone too
    assert "budget" in err(run(ks, "redis.call('flushall') while true do end", b"0"))
    assert ks.execute(ReadOp((b"GET", b"kept")), NOW, 0) == b"before"
    # redis.call counts against the budget: a loop of commands is bounded as well
    assert "budget" in err(run(ks, "while true do redis.call('incr', 'n') end", b"0"))
    assert ks.execute(ReadOp((b"GET", b"n")), NOW, 0) is None
    # coroutines are counted too
    assert "budget" in err(run(ks, "local co = coroutine.wrap(function() while true do end "
                               "end) co()", b"0"))
    assert before  # (versions moved on; the data is what the undo restores)


def test_an_ordinary_error_keeps_the_writes_before_it() -> None:
    """Redis never rolls a script back: only the budget case is undone."""
    ks = Keyspace()
    text = err(run(ks, "redis.call('set', 'a', '1') error('stop')", b"0"))
    assert text.startswith("ERR user_script:1: stop script: ")
    assert ks.execute(ReadOp((b"GET", b"a")), NOW, 0) == b"1"


def test_read_only_runs_refuse_writes_and_do_not_replicate_the_cache() -> None:
    ks = Keyspace()
    ro = ks.execute(ReadOp((b"EVAL_RO", b"return redis.call('set', 'a', 'b')", b"0")), NOW, 0)
    assert err(ro).startswith("ERR Write commands are not allowed from read-only scripts.")
    body = b"return redis.call('get', KEYS[1])"
    assert ks.execute(ReadOp((b"EVAL_RO", body, b"1", b"k")), NOW, 0) is None
    sha = hashlib.sha1(body).hexdigest().encode()
    # known to this node's read path, not to the replicated cache (not in the snapshot)
    assert ks.execute(ReadOp((b"EVALSHA_RO", sha, b"1", b"k")), NOW, 0) is None
    assert err(ks.execute(WriteOp((b"EVALSHA", sha, b"1", b"k")), NOW, 0)).startswith(
        "NOSCRIPT")


def test_snapshot_keeps_scripts_and_functions() -> None:
    ks = Keyspace()
    body = b"return redis.call('incr', KEYS[1])"
    sha = ks.execute(WriteOp((b"SCRIPT", b"LOAD", body)), NOW, 1)
    lib = (b"#!lua name=mylib\nlocal function twice(x) return x * 2 end\n"
           b"redis.register_function('dbl', function(keys, args) return twice(args[1]) end)")
    assert ks.execute(WriteOp((b"FUNCTION", b"LOAD", lib)), NOW, 1) == b"mylib"
    copy = Keyspace.restore(ks.snapshot())
    assert copy.digest() == ks.digest()
    for k in (ks, copy):
        assert k.execute(WriteOp((b"EVALSHA", sha, b"1", b"c")), NOW, 2) == 1
        assert k.execute(WriteOp((b"FCALL", b"dbl", b"0", b"21")), NOW, 2) == 42
    assert copy.digest() == ks.digest()
    # a snapshot without scripting state is the old format, byte for byte
    plain = Keyspace()
    plain.execute(WriteOp((b"SET", b"a", b"1")), NOW, 1)
    assert plain.snapshot()[:1] == b"\xa7"


@pytest.mark.parametrize("resp", [2, 3])
def test_conversions_follow_the_scripts_protocol(resp: int) -> None:
    ks = Keyspace()
    ks.execute(WriteOp((b"HSET", b"h", b"f", b"v")), NOW, 1)
    script = f"redis.setresp({resp}) return redis.call('hgetall', 'h')"
    reply = run(ks, script, b"0")
    if resp == 2:
        assert reply == [b"f", b"v"]
    else:
        from aspen.resp.values import Map
        assert reply == Map([(b"f", b"v")])
    assert run(ks, "return redis.status_reply('FINE')", b"0") == SimpleString("FINE")
    assert run(ks, "return {1, 2.9, -2.9, 'x', {true}, false, nil, 5}", b"0") == [
        1, 2, -2, b"x", [1], None]


def test_a_script_that_builds_too_much_fails_and_is_undone() -> None:
    ks = Keyspace()
    # string.rep is charged one instruction per byte it would build: refused at once
    for rep in ("string.rep('x', 2^30)", "('ab'):rep(2^29)"):
        text = err(run(ks, f"redis.call('set', 'm', '1') return #{rep}", b"0"))
        assert "exceeded its budget" in text
        assert ks.execute(ReadOp((b"GET", b"m")), NOW, 0) is None
    assert run(ks, "return #string.rep('ab', 1000)", b"0") == 2000
    # the Lua heap is limited: building past it fails (and is undone) instead of taking the
    # node down
    text = err(run(ks, "redis.call('set', 'm', '1') local t = {} local s = string.rep('x', "
                   "2^20) for i = 1, 200 do t[i] = s .. i end", b"0"))
    assert "not enough memory" in text
    assert ks.execute(ReadOp((b"GET", b"m")), NOW, 0) is None
    assert run(ks, "return 1", b"0") == 1  # the engine is still usable
