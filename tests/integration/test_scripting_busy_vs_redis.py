"""A long read-only script, side by side on redis-server 7.0.15 and an Aspen node, both with
busy-reply-threshold 300 ms: what the script's caller and the other clients get (BUSY, NOTBUSY,
SCRIPT KILL / FUNCTION KILL across eval and function, FUNCTION STATS, a transaction hit by
BUSY) must match, text for text.

Not compared (redis-server would hang on it): a write script in a loop. Redis answers SCRIPT
KILL with UNKILLABLE there; Aspen's write scripts run inside the Raft apply with a
deterministic instruction budget and end with its error (test_scripting_daemons.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from harness.bench.servers import aspen_node, redis_server
from harness.resp_wire import Err, RespClient
from harness.resp_wire import Map as WireMap

THRESHOLD_MS = 300
LIB = (b"#!lua name=spinlib\n"
       b"redis.register_function{function_name='spin', callback=function() "
       b"while true do end end, flags={'no-writes'}}\n"
       b"redis.register_function('w', function(keys) return redis.call('set', keys[1], 'v') end)")


@pytest.fixture(scope="module")
def ports() -> Iterator[dict[str, int]]:
    with (
        redis_server("--busy-reply-threshold", str(THRESHOLD_MS)) as redis,
        aspen_node(config=f"[node]\nbusy_reply_threshold = {THRESHOLD_MS}\n") as aspen,
    ):
        yield {"redis": redis.port, "aspen": aspen.port}


class _Spinner:
    """A client whose script runs in a thread (the call blocks until the script ends)."""

    def __init__(self, port: int, argv: list[bytes]) -> None:
        self.client = RespClient(port, timeout=30)
        self.reply: object = None
        self.ended = 0.0
        self.thread = threading.Thread(target=self._run, args=(argv,), daemon=True)
        self.thread.start()

    def _run(self, argv: list[bytes]) -> None:
        self.reply = self.client.call(argv)
        self.ended = time.monotonic()

    def join(self) -> object:
        self.thread.join(10)
        assert not self.thread.is_alive(), "the script was not killed"
        self.client.close()
        return self.reply


def _stats_shape(reply: object) -> object:
    """FUNCTION STATS with the running time masked."""
    if isinstance(reply, WireMap | dict):
        items = reply.items() if isinstance(reply, dict) else reply.items  # type: ignore[union-attr]
        return {k: ("<ms>" if k == b"duration_ms" else _stats_shape(v)) for k, v in items}
    if isinstance(reply, list) and len(reply) % 2 == 0 and b"duration_ms" in reply:
        pairs = dict(zip(reply[::2], reply[1::2], strict=True))
        return {k: ("<ms>" if k == b"duration_ms" else _stats_shape(v)) for k, v in pairs.items()}
    if isinstance(reply, list) and reply and reply[0] == b"running_script":
        return [_stats_shape(x) for x in reply]
    return reply


def _scenario(port: int) -> list[object]:
    """Everything both servers are asked, the answers in order."""
    out: list[object] = []
    other, txn = RespClient(port), RespClient(port)
    other.call([b"FUNCTION", b"FLUSH"])
    out.append(other.call([b"SCRIPT", b"KILL"]))
    out.append(other.call([b"FUNCTION", b"KILL"]))
    out.append(other.call([b"FUNCTION", b"LOAD", LIB]))
    out.append(other.call([b"SET", b"k", b"v"]))
    for argv, kill, wrong_kill in (
        ([b"EVAL_RO", b"while true do end", b"0"], b"SCRIPT", b"FUNCTION"),
        ([b"EVAL", b"#!lua flags=no-writes\nwhile true do end", b"0"], b"SCRIPT", b"FUNCTION"),
        ([b"FCALL_RO", b"spin", b"0"], b"FUNCTION", b"SCRIPT"),
        ([b"FCALL", b"spin", b"0"], b"FUNCTION", b"SCRIPT"),
    ):
        spinner = _Spinner(port, argv)
        time.sleep(0.1)
        # sent before the threshold: it waits, then gets BUSY
        started = time.monotonic()
        out.append(other.call([b"GET", b"k"]))
        out.append(time.monotonic() - started > 0.1)
        out.append(other.call([b"PING"]))
        out.append(txn.call([b"MULTI"]))
        out.append(txn.call([b"GET", b"k"]))  # refused: the transaction is doomed
        out.append(txn.call([b"SCRIPT", b"KILL"]))  # queued, as in Redis
        out.append(other.call([wrong_kill, b"KILL"]))
        out.append(_stats_shape(other.call([b"FUNCTION", b"STATS"])))
        out.append(other.call([kill, b"KILL"]))
        out.append(spinner.join())
        out.append(spinner.ended - started < 2.0)
        out.append(txn.call([b"EXEC"]))
        out.append(other.call([b"GET", b"k"]))
        out.append(other.call([kill, b"KILL"]))
    # the read-only refusals
    out.append(other.call([b"EVAL_RO", b"return redis.call('set', KEYS[1], 'x')", b"1", b"k"]))
    out.append(other.call([b"FCALL_RO", b"w", b"1", b"k"]))
    out.append(other.call([b"EVAL", b"#!lua flags=no-writes\nreturn redis.call('del', KEYS[1])",
                           b"1", b"k"]))
    out.append(other.call([b"GET", b"k"]))
    other.close()
    txn.close()
    return out


def test_a_long_read_only_script_as_redis_answers(ports: dict[str, int]) -> None:
    redis_answers = _scenario(ports["redis"])
    aspen_answers = _scenario(ports["aspen"])
    for i, (r, a) in enumerate(zip(redis_answers, aspen_answers, strict=True)):
        assert r == a, f"answer {i}: redis {r!r}, aspen {a!r}"
    # (and the scenario says what it should: BUSY texts, kills, NOTBUSY)
    assert Err("BUSY Redis is busy running a script. You can only call SCRIPT KILL or "
               "SHUTDOWN NOSAVE.") in aspen_answers
    assert Err("BUSY Redis is busy running a script. You can only call FUNCTION KILL or "
               "SHUTDOWN NOSAVE.") in aspen_answers
    assert aspen_answers.count(Err("NOTBUSY No scripts in execution right now.")) == 6
