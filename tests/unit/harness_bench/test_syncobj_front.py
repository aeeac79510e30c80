"""The PySyncObj front's request parser: any split of a pipelined stream gives the same
commands (redis-benchmark -P 16 sends many per read; TCP may cut them anywhere)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from harness.bench.loadgen import encode_command
from harness.bench.syncobj_front import _Parser

args = st.lists(st.binary(max_size=40), min_size=1, max_size=4)


@given(st.lists(args, min_size=1, max_size=20), st.lists(st.integers(1, 50), max_size=30))
def test_any_split_gives_the_same_commands(commands: list[list[bytes]],
                                           cuts: list[int]) -> None:
    stream = b"".join(encode_command(*c) for c in commands)
    parser = _Parser()
    got: list[list[bytes]] = []
    pos = 0
    for cut in cuts:
        got += parser.feed(stream[pos : pos + cut])
        pos += cut
    got += parser.feed(stream[pos:])
    assert got == commands
    assert parser.buf == b""


def test_inline_commands_are_split_on_spaces() -> None:
    assert _Parser().feed(b"PING\r\nSET a b\r\n") == [[b"PING"], [b"SET", b"a", b"b"]]
