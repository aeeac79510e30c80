"""Reading pipelined SET replies while loading keys: errors are found at their position
wherever they fall in the stream (the fast path compares the bytes of n `+OK` replies)."""

from __future__ import annotations

import asyncio

import pytest

from harness.bench.cluster_phases import _read_status_replies

TIMEOUT = b"-TIMEOUT write outcome unknown: not committed within the request deadline\r\n"


def read(stream: bytes, n: int) -> tuple[list[int], bytes]:
    async def go() -> tuple[list[int], bytes]:
        reader = asyncio.StreamReader()
        reader.feed_data(stream)
        reader.feed_eof()
        bad = await _read_status_replies(reader, n)
        return bad, await reader.read()

    return asyncio.run(go())


def test_all_ok_is_the_fast_path_and_leaves_the_next_replies() -> None:
    assert read(b"+OK\r\n" * 3 + b"+OK\r\n", 3) == ([], b"+OK\r\n")


@pytest.mark.parametrize("at", [0, 1, 3, 4])
def test_an_error_anywhere_is_found_at_its_position(at: int) -> None:
    replies = [b"+OK\r\n"] * 5
    replies[at] = TIMEOUT
    assert read(b"".join(replies) + b"+OK\r\n", 5) == ([at], b"+OK\r\n")


def test_several_errors_and_a_short_error_line() -> None:
    stream = b"-ERR x\r\n+OK\r\n" + TIMEOUT + b"-E\r\n"
    assert read(stream, 4) == ([0, 2, 3], b"")
