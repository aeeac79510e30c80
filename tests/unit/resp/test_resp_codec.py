"""The RESP codec: request parsing (multibulk, inline, limits, Redis's error texts) and replies.

The expected error texts were taken from redis-server 7.0 by sending it the same bytes;
tests/integration/test_resp_protocol_vs_redis.py re-checks them against a live redis-server.
"""

from __future__ import annotations

import pytest

from aspen.resp.protocol import ProtocolError, RequestParser, encode, format_double, split_inline
from aspen.resp.values import (
    NULL_ARRAY,
    OK,
    Boolean,
    Double,
    Error,
    Map,
    Push,
    Set,
    SimpleString,
    Verbatim,
)


def parse(data: bytes, **limits: int) -> list[list[bytes]]:
    return RequestParser(**limits).feed(data)


def error_of(data: bytes, **limits: int) -> str:
    with pytest.raises(ProtocolError) as info:
        parse(data, **limits)
    return info.value.message


# -- multibulk ---------------------------------------------------------------------------------


def test_multibulk_commands_and_pipelines() -> None:
    data = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nva\r\nl\r\n*1\r\n$4\r\nPING\r\n"
    assert parse(data) == [[b"SET", b"k", b"va\r\nl"], [b"PING"]]


def test_bulk_payload_is_binary_safe_and_may_be_empty() -> None:
    payload = bytes(range(256))
    data = b"*3\r\n$4\r\nECHO\r\n$256\r\n" + payload + b"\r\n$0\r\n\r\n"
    assert parse(data) == [[b"ECHO", payload, b""]]


def test_empty_multibulk_counts_run_nothing() -> None:
    assert parse(b"*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n") == [[b"PING"]]


def test_partial_command_waits_for_more_bytes() -> None:
    parser = RequestParser()
    assert parser.feed(b"*2\r\n$4\r\nECHO\r\n$5\r\nhel") == []
    assert not parser.idle
    assert parser.feed(b"lo\r") == []
    assert parser.feed(b"\n") == [[b"ECHO", b"hello"]]
    assert parser.idle


def test_trailing_crlf_of_a_bulk_is_skipped_unchecked_like_redis() -> None:
    assert parse(b"*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n") == [[b"PING"], [b"PING"]]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"*1\r\nx\r\n", "Protocol error: expected '$', got 'x'"),
        (b"*1\r\n\r\n", "Protocol error: expected '$', got '\r'"),
        (b"*abc\r\n", "Protocol error: invalid multibulk length"),
        (b"*01\r\n$4\r\nPING\r\n", "Protocol error: invalid multibulk length"),
        (b"*+1\r\n$4\r\nPING\r\n", "Protocol error: invalid multibulk length"),
        (b"* 1\r\n", "Protocol error: invalid multibulk length"),
        (b"*3000000000\r\n", "Protocol error: invalid multibulk length"),
        (b"*2147483648\r\n", "Protocol error: invalid multibulk length"),
        (b"*99999999999999999999\r\n", "Protocol error: invalid multibulk length"),
        (b"*1\r\n$-1\r\n", "Protocol error: invalid bulk length"),
        (b"*1\r\n$-0\r\n", "Protocol error: invalid bulk length"),
        (b"*1\r\n$04\r\nPING\r\n", "Protocol error: invalid bulk length"),
        (b"*1\r\n$abc\r\n", "Protocol error: invalid bulk length"),
        (b"*1\r\n$600000000\r\n", "Protocol error: invalid bulk length"),
        (b"x" * 70000, "Protocol error: too big inline request"),
        (b"*" + b"1" * 70000, "Protocol error: too big mbulk count string"),
        (b"*1\r\n$" + b"1" * 70000, "Protocol error: too big bulk count string"),
        (b'set "a b\r\n', "Protocol error: unbalanced quotes in request"),
        (b"set 'a'b c\r\n", "Protocol error: unbalanced quotes in request"),
        (b'echo "a"b\r\n', "Protocol error: unbalanced quotes in request"),
    ],
)
def test_protocol_errors_use_redis_texts(data: bytes, message: str) -> None:
    assert error_of(data) == message


def test_error_reply_line_is_one_line() -> None:
    with pytest.raises(ProtocolError) as info:
        parse(b"*1\r\n\r\n")
    assert info.value.reply_line() == b"-ERR Protocol error: expected '$', got ' '\r\n"


def test_commands_before_the_error_are_reported_and_parser_stays_failed() -> None:
    parser = RequestParser()
    with pytest.raises(ProtocolError) as info:
        parser.feed(b"*1\r\n$4\r\nPING\r\nECHO ok\r\n*x\r\n*1\r\n$4\r\nPING\r\n")
    assert info.value.commands == [[b"PING"], [b"ECHO", b"ok"]]
    with pytest.raises(ProtocolError):
        parser.feed(b"*1\r\n$4\r\nPING\r\n")


def test_limits_are_checked_before_the_payload_arrives() -> None:
    parser = RequestParser(max_bulk_len=10)
    assert parser.feed(b"*1\r\n$10\r\n") == []
    with pytest.raises(ProtocolError, match="invalid bulk length"):
        RequestParser(max_bulk_len=10).feed(b"*1\r\n$11\r\n")
    with pytest.raises(ProtocolError, match="invalid multibulk length"):
        RequestParser(max_argv=3).feed(b"*4\r\n")
    assert RequestParser(max_argv=3).feed(b"*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n") == [
        [b"a", b"b", b"c"]
    ]


def test_inline_limit_is_configurable_and_applies_only_without_newline() -> None:
    assert parse(b"ECHO " + b"a" * 100 + b"\r\n", max_inline_len=200) == [[b"ECHO", b"a" * 100]]
    assert error_of(b"a" * 201, max_inline_len=200) == "Protocol error: too big inline request"
    parser = RequestParser(max_inline_len=200)
    assert parser.feed(b"a" * 200) == []


def test_unauthenticated_clients_get_redis_small_limits() -> None:
    parser = RequestParser()
    parser.authenticated = False
    assert parser.feed(b"*2\r\n$4\r\nAUTH\r\n$16384\r\n") == []
    with pytest.raises(ProtocolError, match="unauthenticated bulk length"):
        strict = RequestParser()
        strict.authenticated = False
        strict.feed(b"*2\r\n$4\r\nAUTH\r\n$16385\r\n")
    strict = RequestParser()
    strict.authenticated = False
    assert strict.feed(b"*10\r\n") == []
    strict = RequestParser()
    strict.authenticated = False
    with pytest.raises(ProtocolError, match="unauthenticated multibulk length"):
        strict.feed(b"*11\r\n")


def test_buffered_counts_partial_command_bytes() -> None:
    parser = RequestParser()
    parser.feed(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nabc")
    assert parser.buffered == 3 + 1 + 3


# -- inline ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "argv"),
    [
        (b"PING", [b"PING"]),
        (b"  set  a   b  ", [b"set", b"a", b"b"]),
        (b'echo "\\x41\\n"', [b"echo", b"A\n"]),
        (b'echo "a\\"b"', [b"echo", b'a"b']),
        (b'echo "\\t\\r\\b\\a\\z\\\\"', [b"echo", b"\t\r\b\x07z\\"]),
        (b'echo "\\x4"', [b"echo", b"x4"]),
        (b"echo 'it\\'s' x", [b"echo", b"it's", b"x"]),
        (b"echo 'a\\nb'", [b"echo", b"a\\nb"]),
        (b'echo a"b c" d', [b"echo", b"ab c", b"d"]),
        (b"echo a\x0bb", [b"echo", b"a\x0bb"]),
        (b"\x0b\x0c echo a", [b"echo", b"a"]),
        (b'echo ""', [b"echo", b""]),
        (b"echo a\x00b c", [b"echo", b"a"]),
        (b"", []),
    ],
)
def test_inline_splitting_follows_sdssplitargs(line: bytes, argv: list[bytes]) -> None:
    assert split_inline(line) == argv


@pytest.mark.parametrize("line", [b'echo "abc', b"echo 'abc", b'echo "a"b', b"echo 'a'b"])
def test_inline_unbalanced_quotes(line: bytes) -> None:
    assert split_inline(line) is None


def test_inline_commands_mix_with_multibulk_and_blank_lines_are_skipped() -> None:
    data = b"\r\n\nPING\r\nset k v\n*1\r\n$4\r\nPING\r\n"
    assert parse(data) == [[b"PING"], [b"set", b"k", b"v"], [b"PING"]]


# -- replies -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "resp2", "resp3"),
    [
        (b"hi", b"$2\r\nhi\r\n", b"$2\r\nhi\r\n"),
        (b"", b"$0\r\n\r\n", b"$0\r\n\r\n"),
        (42, b":42\r\n", b":42\r\n"),
        (-7, b":-7\r\n", b":-7\r\n"),
        (None, b"$-1\r\n", b"_\r\n"),
        (OK, b"+OK\r\n", b"+OK\r\n"),
        (SimpleString("a\r\nb"), b"+a  b\r\n", b"+a  b\r\n"),
        (Error("ERR bad\nthing"), b"-ERR bad thing\r\n", b"-ERR bad thing\r\n"),
        (NULL_ARRAY, b"*-1\r\n", b"_\r\n"),
        ([], b"*0\r\n", b"*0\r\n"),
        ([b"a", 1, None], b"*3\r\n$1\r\na\r\n:1\r\n$-1\r\n", b"*3\r\n$1\r\na\r\n:1\r\n_\r\n"),
        ([[b"x"], []], b"*2\r\n*1\r\n$1\r\nx\r\n*0\r\n", b"*2\r\n*1\r\n$1\r\nx\r\n*0\r\n"),
        (Double(1.5), b"$3\r\n1.5\r\n", b",1.5\r\n"),
        (Double(0.1), b"$19\r\n0.10000000000000001\r\n", b",0.10000000000000001\r\n"),
        (Double(float("inf")), b"$3\r\ninf\r\n", b",inf\r\n"),
        (Double(float("-inf")), b"$4\r\n-inf\r\n", b",-inf\r\n"),
        (Double(3.0), b"$1\r\n3\r\n", b",3\r\n"),
        (Double(1e300), b"$23\r\n1.0000000000000001e+300\r\n", b",1.0000000000000001e+300\r\n"),
        (Double(2.5e-7), b"$22\r\n2.4999999999999999e-07\r\n", b",2.4999999999999999e-07\r\n"),
        (Boolean(True), b":1\r\n", b"#t\r\n"),
        (Boolean(False), b":0\r\n", b"#f\r\n"),
        (
            Map([(b"a", 1), (SimpleString("b"), [b"c"])]),
            b"*4\r\n$1\r\na\r\n:1\r\n+b\r\n*1\r\n$1\r\nc\r\n",
            b"%2\r\n$1\r\na\r\n:1\r\n+b\r\n*1\r\n$1\r\nc\r\n",
        ),
        (Set([b"a", 2]), b"*2\r\n$1\r\na\r\n:2\r\n", b"~2\r\n$1\r\na\r\n:2\r\n"),
        (Verbatim(b"x:1\r\n"), b"$5\r\nx:1\r\n\r\n", b"=9\r\ntxt:x:1\r\n\r\n"),
        (Verbatim(b"# md", "mkd"), b"$4\r\n# md\r\n", b"=8\r\nmkd:# md\r\n"),
        (Push([b"message", b"ch"]), b"*2\r\n$7\r\nmessage\r\n$2\r\nch\r\n",
         b">2\r\n$7\r\nmessage\r\n$2\r\nch\r\n"),
        ((b"t", 1), b"*2\r\n$1\r\nt\r\n:1\r\n", b"*2\r\n$1\r\nt\r\n:1\r\n"),
        (bytearray(b"ba"), b"$2\r\nba\r\n", b"$2\r\nba\r\n"),
        (True, b":1\r\n", b":1\r\n"),
    ],
)
def test_encode_resp2_and_resp3(value: object, resp2: bytes, resp3: bytes) -> None:
    assert encode(value, 2) == resp2
    assert encode(value, 3) == resp3


def test_nested_null_inside_map_follows_protocol() -> None:
    value = Map([(b"k", None)])
    assert encode(value, 2) == b"*2\r\n$1\r\nk\r\n$-1\r\n"
    assert encode(value, 3) == b"%1\r\n$1\r\nk\r\n_\r\n"


def test_format_double_matches_printf_17g() -> None:
    assert format_double(float("nan")) == b"nan"
    assert format_double(-0.0) == b"-0"
    assert format_double(123456789.123) == b"123456789.123"
    assert format_double(1e-5) == b"1.0000000000000001e-05"


def test_encode_refuses_values_that_are_not_replies() -> None:
    with pytest.raises(TypeError, match="str"):
        encode("text", 2)
    with pytest.raises(TypeError):
        encode([object()], 3)


def test_large_bulk_in_small_chunks_and_the_commands_around_it() -> None:
    big = bytes(range(256)) * 800  # 204,800 bytes: past the header table, many chunks
    stream = (
        b"*1\r\n$4\r\nPING\r\n"
        + b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n" % len(big) + big + b"\r\n"
        + b"ECHO tail\r\n"
    )
    parser = RequestParser()
    got: list[list[bytes]] = []
    for i in range(0, len(stream), 997):
        got += parser.feed(stream[i : i + 997])
    assert got == [[b"PING"], [b"SET", b"k", big], [b"ECHO", b"tail"]]
    assert parser.idle and parser.buffered == 0


def test_input_types_and_limits_below_the_header_table() -> None:
    parser = RequestParser(max_bulk_len=3, max_argv=2)
    assert parser.feed(bytearray(b"*2\r\n$3\r\nabc\r\n")) == []
    assert parser.feed(memoryview(b"$0\r\n\r\n")) == [[b"abc", b""]]
    with pytest.raises(ProtocolError, match="invalid bulk length"):
        parser.feed(b"*1\r\n$4\r\n")
    with pytest.raises(ProtocolError, match="invalid multibulk length"):
        RequestParser(max_argv=2).feed(b"*3\r\n")


def test_buffered_follows_a_partial_command_across_feeds() -> None:
    parser = RequestParser()
    parser.feed(b"*4\r\n$3\r\nSET\r\n$2\r\nab")
    assert parser.buffered == 3 + 2  # "SET" and the "ab" of a bulk whose header was read
    parser.feed(b"\r\n$5\r\nhello\r\n")
    assert parser.buffered == 3 + 2 + 5
    assert parser.feed(b"$1\r\nx\r\n") == [[b"SET", b"ab", b"hello", b"x"]]
    assert parser.buffered == 0
