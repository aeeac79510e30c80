"""Read-only scripts served by one node (aspen.scripting.local), in process: no budget, a kill
switch the script cannot catch, and which EVAL/EVALSHA/FCALL are turned into reads."""

from __future__ import annotations

import threading
import time

from aspen.kv.keyspace import Keyspace
from aspen.kv.ops import ReadOp, WriteOp
from aspen.resp.values import Error
from aspen.scripting.local import execute_killable, read_form, script_call

NOW = 1_700_000_000_123
KILLED = "ERR Script killed by user with SCRIPT KILL..."
LONG = "local n = 0 for i = 1, 12000000 do n = n + 1 end return n"  # > the 20M budget


def _eval_ro(body: str, *args: bytes) -> ReadOp:
    return ReadOp([b"EVAL_RO", body.encode(), *args])


def test_a_local_run_has_no_budget_a_logged_one_has() -> None:
    ks = Keyspace()
    in_log = ks.execute(_eval_ro(LONG, b"0"), NOW, 1)  # (as inside MULTI: through the log)
    assert isinstance(in_log, Error) and "budget of Lua instructions" in in_log.message
    assert execute_killable(ks, _eval_ro(LONG, b"0"), NOW, 1, lambda: False) == 12_000_000
    # the kill switch is gone after the run: the next logged run has its budget again
    again = ks.execute(_eval_ro(LONG, b"0"), NOW, 1)
    assert isinstance(again, Error) and "budget" in again.message


def _kill_after(seconds: float, ks: Keyspace, op: ReadOp) -> tuple[object, float]:
    flag = threading.Event()
    timer = threading.Timer(seconds, flag.set)
    timer.start()
    start = time.perf_counter()
    try:
        reply = execute_killable(ks, op, NOW, 1, flag.is_set)
    finally:
        timer.cancel()
    return reply, time.perf_counter() - start - seconds


def test_kill_stops_a_loop_and_pcall_cannot_catch_it() -> None:
    ks = Keyspace()
    for body, line in (
        ("while true do end", 1),
        ("local i = 0\nwhile true do\n  pcall(function() while true do i = i + 1 end end)\nend",
         3),
        ("while true do redis.call('get', 'k') end", 1),
        ("local co = coroutine.wrap(function() while true do end end)\nco()", 1),
    ):
        op = _eval_ro(body, b"0")
        reply, late = _kill_after(0.1, ks, op)
        assert isinstance(reply, Error), (body, reply)
        assert reply.message.startswith(KILLED + " script: "), reply.message
        assert late < 0.5, (body, late)
        if "coroutine" not in body:
            assert reply.message.endswith(f"on @user_script:{line}."), reply.message


def test_a_killed_function_names_itself() -> None:
    ks = Keyspace()
    lib = (b"#!lua name=l\nredis.register_function{function_name='spin', "
           b"callback=function() while true do end end, flags={'no-writes'}}")
    assert ks.execute(WriteOp([b"FUNCTION", b"LOAD", lib]), NOW, 1) == b"l"
    reply, _ = _kill_after(0.05, ks, ReadOp([b"FCALL_RO", b"spin", b"0"]))
    assert reply == Error(KILLED + " script: spin, on @user_function:2.")


def test_read_form_picks_no_writes_scripts_only() -> None:
    ks = Keyspace()
    ro = b"#!lua flags=no-writes\nreturn 1"
    rw = b"#!lua\nreturn redis.call('set', 'a', 'b')"
    legacy = b"return 1"
    assert read_form(ks, [b"EVAL", ro, b"0"]) == ReadOp([b"eval_ro", ro, b"0"])
    assert read_form(ks, [b"eval", rw, b"0"]) is None
    assert read_form(ks, [b"EVAL", legacy, b"0"]) is None  # may write
    assert read_form(ks, [b"EVAL", ro, b"2", b"k"]) is None  # the log path answers errors
    assert read_form(ks, [b"EVAL", b"#!lua flags=bad\nreturn 1", b"0"]) is None
    assert read_form(ks, [b"EVAL", ro]) is None
    sha = ks.execute(WriteOp([b"SCRIPT", b"LOAD", ro]), NOW, 1)
    assert isinstance(sha, bytes)
    assert read_form(ks, [b"EVALSHA", sha.upper(), b"0"]) == ReadOp(
        [b"evalsha_ro", sha.upper(), b"0"])
    assert read_form(ks, [b"EVALSHA", b"f" * 40, b"0"]) is None  # unknown here: the log says
    lib = (b"#!lua name=l\nredis.register_function{function_name='peek', "
           b"callback=function() return 1 end, flags={'no-writes'}}\n"
           b"redis.register_function('poke', function() return 2 end)")
    assert ks.execute(WriteOp([b"FUNCTION", b"LOAD", lib]), NOW, 1) == b"l"
    assert read_form(ks, [b"FCALL", b"peek", b"0"]) == ReadOp([b"fcall_ro", b"peek", b"0"])
    assert read_form(ks, [b"FCALL", b"poke", b"0"]) is None
    assert read_form(ks, [b"FCALL", b"nosuch", b"0"]) is None
    # a restricted user's wrapped script keeps its user, as the read-only wrapper
    assert read_form(ks, [b"aspen.scriptas", b"u", b"EVAL", ro, b"0"]) == ReadOp(
        [b"aspen.scriptas_ro", b"u", b"eval_ro", ro, b"0"])
    assert read_form(ks, [b"SET", b"k", b"v"]) is None


def test_script_call_describes_what_runs() -> None:
    call = script_call([b"aspen.scriptas_ro", b"u", b"FCALL_RO", b"peek", b"0"])
    assert call is not None and not call.is_eval and call.name == b"peek"
    assert call.command == (b"FCALL_RO", b"peek", b"0")
    call = script_call([b"EVALSHA", b"abc", b"0"])
    assert call is not None and call.is_eval
    assert script_call([b"GET", b"k"]) is None


def test_another_thread_gets_busy_instead_of_waiting_for_the_lua_state() -> None:
    """While a killable run holds the Lua state in a worker thread, a script reaching the
    keyspace another way (the HTTP /read endpoint, on the event loop) is answered BUSY at once:
    waiting for the state would stall the event loop for as long as the script runs."""
    ks = Keyspace()
    flag = threading.Event()
    box: list[object] = []
    worker = threading.Thread(
        target=lambda: box.append(
            execute_killable(ks, _eval_ro("while true do end", b"0"), NOW, 1, flag.is_set)))
    worker.start()
    try:
        deadline = time.monotonic() + 5
        while ks.scripting is None or ks.scripting.holder is None:
            assert time.monotonic() < deadline
            time.sleep(0.001)
        start = time.perf_counter()
        reply = ks.execute(_eval_ro("return 1", b"0"), NOW, 2)
        assert time.perf_counter() - start < 0.5
        assert reply == Error("BUSY Redis is busy running a script. You can only call "
                              "SCRIPT KILL or SHUTDOWN NOSAVE.")
        assert ks.execute(ReadOp([b"FCALL_RO", b"f", b"0"]), NOW, 2) == reply
    finally:
        flag.set()
        worker.join(5)
    assert isinstance(box[0], Error) and box[0].message.startswith(KILLED)
    assert ks.execute(_eval_ro("return 1", b"0"), NOW, 3) == 1
