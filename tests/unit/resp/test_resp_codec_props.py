"""Property tests for the RESP codec: chunking independence, robustness, round trips."""

from __future__ import annotations

import ctypes
import ctypes.util
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from aspen.resp.protocol import ProtocolError, RequestParser, encode, format_double
from aspen.resp.values import NULL_ARRAY, Boolean, Double, Error, Map, Set, SimpleString, Verbatim
from harness.resp_wire import encode_command as multibulk

argvs = st.lists(st.binary(max_size=40), min_size=1, max_size=6)
# Inline tokens without quotes, whitespace or NUL: they round-trip through a space-joined line.
inline_token = st.binary(min_size=1, max_size=12).filter(
    lambda b: not any(c in b for c in b" \t\r\n\x0b\x0c\"'\x00")
)
inline_argvs = st.lists(inline_token, min_size=1, max_size=5).filter(lambda a: a[0][:1] != b"*")


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[list[bytes]]]:
    """A valid request stream mixing multibulk, inline and empty commands, with its argvs."""
    data = b""
    expected: list[list[bytes]] = []
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["multibulk", "inline", "empty"]))
        if kind == "multibulk":
            argv = draw(argvs)
            data += multibulk(argv)
            expected.append(argv)
        elif kind == "inline":
            argv = draw(inline_argvs)
            data += b" ".join(argv) + draw(st.sampled_from([b"\r\n", b"\n"]))
            expected.append(argv)
        else:
            data += draw(st.sampled_from([b"*0\r\n", b"*-1\r\n", b"\r\n", b"\n", b"   \r\n"]))
    return data, expected


def feed_in_chunks(data: bytes, cuts: list[int]) -> list[list[bytes]]:
    parser = RequestParser()
    got: list[list[bytes]] = []
    start = 0
    for cut in sorted(set(cuts)):
        got += parser.feed(data[start:cut])
        start = cut
    got += parser.feed(data[start:])
    assert parser.idle
    return got


@settings(deadline=None)  # CPU-bound; the CI machine is shared
@given(streams(), st.data())
def test_every_chunking_parses_to_the_same_commands(
    stream: tuple[bytes, list[list[bytes]]], data: st.DataObject
) -> None:
    raw, expected = stream
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=12))
    assert feed_in_chunks(raw, cuts) == expected


@settings(deadline=None)  # CPU-bound; the CI machine is shared
@given(streams())
def test_byte_at_a_time_parses_to_the_same_commands(
    stream: tuple[bytes, list[list[bytes]]],
) -> None:
    raw, expected = stream
    assert feed_in_chunks(raw, list(range(len(raw)))) == expected


@settings(deadline=None)  # CPU-bound; the CI machine is shared
@given(argvs)
def test_encoded_argv_round_trips(argv: list[bytes]) -> None:
    """A request is an array of bulk strings: encoding it as a reply gives a parsable request."""
    assert RequestParser().feed(encode(argv, 2)) == [argv]


junk = st.one_of(
    st.binary(max_size=200),
    # Mostly-valid streams with a corrupted byte are the interesting inputs.
    st.tuples(streams(), st.integers(0, 1000), st.binary(min_size=1, max_size=3)).map(
        lambda t: t[0][0][: t[1] % (len(t[0][0]) + 1)] + t[2] + t[0][0][t[1] % (len(t[0][0]) + 1):]
    ),
    st.lists(st.sampled_from([b"*", b"$", b"\r", b"\n", b"-", b"1", b"0", b"9", b"\"", b"'",
                              b"\\", b"x", b" ", b"\x00"]), max_size=60).map(b"".join),
)


@settings(max_examples=300, deadline=None)
@given(junk, st.lists(st.integers(0, 300), max_size=5))
def test_any_bytes_raise_nothing_but_protocol_error(raw: bytes, cuts: list[int]) -> None:
    parser = RequestParser(max_bulk_len=100, max_argv=50, max_inline_len=120)
    start = 0
    try:
        for cut in [*sorted(set(cuts)), len(raw)]:
            for argv in parser.feed(raw[start:cut]):
                assert argv and all(type(a) is bytes for a in argv)
            start = max(start, cut)
    except ProtocolError as exc:
        assert exc.message.startswith("Protocol error: ")
        assert exc.reply_line().endswith(b"\r\n") and exc.reply_line().count(b"\r\n") == 1


@settings(deadline=None)  # CPU-bound; the CI machine is shared
@given(streams(), st.binary(min_size=1, max_size=20))
def test_error_keeps_the_commands_that_came_before(
    stream: tuple[bytes, list[list[bytes]]], tail: bytes
) -> None:
    raw, expected = stream
    try:
        got = RequestParser().feed(raw + b"*x\r\n" + tail)
    except ProtocolError as exc:
        assert exc.commands == expected
    else:
        raise AssertionError(f"no error, got {got!r}")


# -- replies -----------------------------------------------------------------------------------

scalars = st.one_of(
    st.binary(max_size=20),
    st.integers(-(2**63), 2**63 - 1),
    st.none(),
    st.builds(SimpleString, st.text("abcXYZ 019", max_size=10)),
    st.builds(Error, st.text("ERR abc", min_size=1, max_size=10)),
    st.builds(Double, st.floats(allow_nan=False)),
    st.builds(Boolean, st.booleans()),
    st.just(NULL_ARRAY),
    st.builds(Verbatim, st.binary(max_size=20)),
)


def nested(depth: int) -> st.SearchStrategy[object]:
    """Reply values nested up to `depth` levels of arrays, sets and maps."""
    if depth == 0:
        return scalars
    inner = nested(depth - 1)
    return st.one_of(
        scalars,
        st.lists(inner, max_size=3),
        st.builds(Set, st.lists(inner, max_size=3)),
        st.builds(Map, st.lists(st.tuples(inner, inner), max_size=2)),
    )


values = nested(3)


def decode_reply(data: bytes, pos: int = 0) -> tuple[object, int]:
    """A minimal independent RESP2/RESP3 reply decoder, for the round-trip property only."""
    kind = data[pos : pos + 1]
    end = data.index(b"\r\n", pos)
    line = data[pos + 1 : end]
    pos = end + 2
    if kind in (b"$", b"="):
        n = int(line)
        if n < 0:
            return None, pos
        return data[pos : pos + n], pos + n + 2
    if kind in (b"*", b"~", b"%", b">"):
        n = int(line)
        if n < 0:
            return NULL_ARRAY, pos
        items = []
        for _ in range(n * 2 if kind == b"%" else n):
            item, pos = decode_reply(data, pos)
            items.append(item)
        return (kind, items), pos
    if kind == b":":
        return int(line), pos
    if kind == b"_":
        return None, pos
    if kind == b",":
        return float(line), pos
    if kind == b"#":
        return line == b"t", pos
    return (kind, line), pos


def expected_shape(value: object, protocol: int) -> object:
    """What decode_reply should produce for `value` in `protocol`."""
    if isinstance(value, SimpleString):
        return (b"+", value.text.encode())
    if isinstance(value, Error):
        return (b"-", value.message.encode())
    if isinstance(value, Double):
        return format_double(value.value) if protocol == 2 else value.value
    if isinstance(value, Boolean):
        return int(value.value) if protocol == 2 else value.value
    if isinstance(value, Verbatim):
        return value.text if protocol == 2 else b"txt:" + value.text
    if value is NULL_ARRAY:
        return NULL_ARRAY if protocol == 2 else None
    if isinstance(value, list):
        return (b"*", [expected_shape(v, protocol) for v in value])
    if isinstance(value, Set):
        return (b"*" if protocol == 2 else b"~", [expected_shape(v, protocol) for v in value.items])
    if isinstance(value, Map):
        flat = [expected_shape(x, protocol) for pair in value.items for x in pair]
        return (b"*" if protocol == 2 else b"%", flat)
    return value


@settings(deadline=None)  # CPU-bound; the CI machine is shared
@given(values, st.sampled_from([2, 3]))
def test_encoded_replies_decode_back(value: object, protocol: int) -> None:
    data = encode(value, protocol)
    decoded, end = decode_reply(data)
    assert end == len(data)
    assert decoded == expected_shape(value, protocol)


_libc = ctypes.CDLL(ctypes.util.find_library("c"))


@settings(deadline=None)  # CPU-bound; the CI machine is shared
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_format_double_is_printf_17g(value: float) -> None:
    buf = ctypes.create_string_buffer(64)
    _libc.snprintf(buf, 64, b"%.17g", ctypes.c_double(value))
    assert format_double(value) == buf.value
    assert math.isclose(float(format_double(value)), value) or value == 0


@settings(deadline=None)  # CPU-bound; the CI machine is shared
@given(streams())
def test_pre_auth_parsing_hands_out_the_same_commands_one_at_a_time(
    stream: tuple[bytes, list[list[bytes]]],
) -> None:
    raw, expected = stream  # small commands: within Redis's pre-AUTH limits
    parser = RequestParser()
    parser.authenticated = False
    got = parser.feed(raw)
    assert len(got) <= 1
    while more := parser.feed(b""):
        assert len(more) == 1
        got += more
    assert got == expected and parser.idle


@settings(deadline=None)  # CPU-bound; the CI machine is shared
@given(streams(), st.data())
def test_buffered_never_exceeds_the_unparsed_bytes(
    stream: tuple[bytes, list[list[bytes]]], data: st.DataObject
) -> None:
    raw, _ = stream
    cuts = sorted(set(data.draw(st.lists(st.integers(0, len(raw)), max_size=8))))
    parser = RequestParser()
    fed = consumed = 0
    start = 0
    for cut in [*cuts, len(raw)]:
        for argv in parser.feed(raw[start:cut]):
            consumed += sum(len(a) for a in argv)
        fed += cut - start
        start = cut
        assert 0 <= parser.buffered <= fed - consumed
    assert parser.buffered == 0
