"""The request parser's whole-command fast path against its exact path, differentially.

`RequestParser._parse_whole` takes plainly written multibulk commands with one split of the
read; everything else goes to the exact path (Redis's rules and error texts). Both must give
the same commands per feed, the same errors (text and the commands before them) and the same
state (buffered bytes, idle) for any input cut into any chunks.
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from aspen.resp.protocol import ProtocolError, RequestParser
from harness.resp_wire import encode_command as multibulk

# Arguments that stress the fast path's checks: CRLF inside payloads, lone CR/LF, header-like
# bytes, lengths on both sides of the header table's end (4095).
plain = st.binary(max_size=12).filter(lambda b: b"\r\n" not in b)
arg = st.one_of(
    plain,
    plain,
    plain,
    st.lists(st.sampled_from([b"\r\n", b"\r", b"\n", b"$3", b"*2", b"x", b"\r\n$1\r\n"]),
             max_size=6).map(b"".join),
    st.sampled_from([b"a" * 4095, b"b" * 4096]),
)


piece = st.one_of(
    st.lists(plain, min_size=1, max_size=5).map(multibulk),  # the common case
    st.lists(arg, min_size=1, max_size=5).map(multibulk),
    st.sampled_from([b"PING\r\n", b"SET a b\n", b"\r\n", b"*0\r\n", b"*-1\r\n", b"*03\r\n",
                     b"$3\r\n", b"*1\r\n$-1\r\n", b"*1\r\n$03\r\nabc\r\n", b"*1024\r\n",
                     b"*1\r\n$3\r\nabcXY", b"*2\r\n$1\r\na\r\n:1\r\n", b"*1\r\n$1\r\na",
                     b"*1\r\n$5000\r\n", b"*1\rx$1\r\na\r\n", b"\"unbalanced\r\n"]),
    st.binary(min_size=1, max_size=6),
)


@st.composite
def chunked_streams(draw: st.DrawFn) -> list[bytes]:
    raw = b"".join(draw(st.lists(piece, min_size=1, max_size=10)))
    cuts = sorted(set(draw(st.lists(st.integers(0, len(raw)), max_size=6))))
    bounds = [0, *cuts, len(raw)]
    return [raw[a:b] for a, b in itertools.pairwise(bounds)]


def run(parser: RequestParser, chunks: list[bytes]) -> list[object]:
    """What the server would see: per feed the commands or the error, and the parser state."""
    trace: list[object] = []
    for chunk in chunks:
        try:
            trace.append(("ok", parser.feed(chunk), parser.buffered, parser.idle))
            # before AUTH the server takes one command per feed, then asks for the next
            while not parser.authenticated and trace[-1][1]:  # type: ignore[index]
                trace.append(("ok", parser.feed(b""), parser.buffered, parser.idle))
        except ProtocolError as exc:
            trace.append(("error", exc.message, exc.commands))
            break
    return trace


limits = st.sampled_from([
    {},
    {"max_bulk_len": 4095, "max_argv": 1023},  # the smallest limits that keep the fast path
    {"max_bulk_len": 4094},  # below: exact path only (and the same results)
    {"max_argv": 3},
    {"max_inline_len": 16},
])


@settings(max_examples=400, deadline=None)
@given(chunked_streams(), limits, st.booleans())
def test_fast_path_and_exact_path_agree(
    chunks: list[bytes], kw: dict[str, int], authenticated: bool
) -> None:
    fast, exact = RequestParser(**kw), RequestParser(**kw)
    exact._fast = False
    fast.authenticated = exact.authenticated = authenticated
    assert run(fast, chunks) == run(exact, chunks)


def test_fast_path_takes_plain_commands_and_hands_the_rest_over() -> None:
    parser = RequestParser()
    data = multibulk([b"SET", b"k", b"v"]) * 3 + b"PING\r\n" + multibulk([b"GET", b"k"])[:-3]
    assert parser.feed(data) == [[b"SET", b"k", b"v"]] * 3 + [[b"PING"]]
    assert not parser.idle
    assert parser.feed(b"k\r\n") == [[b"GET", b"k"]] and parser.idle
    # a payload holding CRLF is the exact path's: still the same argv
    assert parser.feed(multibulk([b"a\r\nb", b"$1"])) == [[b"a\r\nb", b"$1"]]


def test_fast_path_resumes_after_a_leftover_command_whose_payload_looks_like_a_header() -> None:
    first = multibulk([b"SET", b"*1", b"x"])
    cut = first.index(b"*1\r\n")  # the next read starts with the payload "*1"
    rest = first[cut:] + multibulk([b"GET", b"k"]) * 2
    for fast_on in (True, False):
        parser = RequestParser()
        parser._fast = fast_on
        assert parser.feed(first[:cut]) == []
        assert parser.feed(rest) == [[b"SET", b"*1", b"x"], [b"GET", b"k"], [b"GET", b"k"]]
        assert parser.idle
