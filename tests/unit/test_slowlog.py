"""SlowLog's bookkeeping (newest first, bounded, arguments cut as Redis cuts them)."""

from __future__ import annotations

from aspen.server.slowlog import SlowLog


def _log(n: int, max_len: int = 128) -> SlowLog:
    log = SlowLog()
    log.slower_than = 0
    log.set_max_len(max_len)
    for i in range(n):
        log.consider([b"SET", b"k%d" % i, b"v"], 5.0, "1.2.3.4:5", b"me")
    return log


def test_newest_first_and_bounded() -> None:
    log = _log(10, max_len=4)
    entries = log.get(-1)
    assert [e[0] for e in entries] == [9, 8, 7, 6]
    assert entries[0][3:] == [[b"SET", b"k9", b"v"], b"1.2.3.4:5", b"me"]
    assert [e[0] for e in log.get(2)] == [9, 8] and log.get(0) == []


def test_max_len_shrinks_to_the_newest_and_zero_stops_logging() -> None:
    log = _log(10)
    log.set_max_len(3)
    assert [e[0] for e in log.get(-1)] == [9, 8, 7]
    log.set_max_len(0)  # nothing is added, what is there stays
    log.consider([b"GET", b"x"], 50.0, "a:1", b"")
    assert [e[0] for e in log.get(-1)] == [9, 8, 7]
    log.set_max_len(5)
    log.consider([b"GET", b"x"], 50.0, "a:1", b"")
    assert [e[0] for e in log.get(-1)] == [10, 9, 8, 7]


def test_the_logged_arguments_are_a_copy_cut_as_redis_cuts() -> None:
    log = _log(0)
    argv = [b"SET", b"k", b"v" * 200]
    log.consider(argv, 5.0, "a:1", b"")
    argv[1] = b"changed"
    assert log.get(1)[0][3] == [b"SET", b"k", b"v" * 128 + b"... (72 more bytes)"]
    log.consider([b"RPUSH", *[b"%d" % i for i in range(40)]], 5.0, "a:1", b"")
    shown = log.get(1)[0][3]
    assert len(shown) == 32 and shown[-1] == b"... (10 more arguments)"
    small = [b"SET", b"k", b"v"]
    log.consider(small, 5.0, "a:1", b"")
    small[1] = b"changed"
    assert log.get(1)[0][3] == [b"SET", b"k", b"v"]


def test_fast_commands_are_not_logged() -> None:
    log = _log(0)
    log.slower_than = 100
    log.consider([b"GET", b"x"], 99.0, "a:1", b"")
    assert log.get(-1) == []
    log.slower_than = -1
    log.consider([b"GET", b"x"], 1e9, "a:1", b"")
    assert log.get(-1) == []
