"""The same raw bytes to a real redis-server and to an Aspen node: the same bytes back.

This pins the request parser to Redis's actual behaviour (multibulk and inline syntax, quoting,
limits, protocol error texts, when the connection closes) instead of to our reading of it.
Each exchange sends bytes, half-closes, and reads until the server closes.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.bench.servers import ServerProcess, aspen_node, redis_server
from harness.hypothesis_budget import scaled_examples

pytestmark = pytest.mark.differential


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[ServerProcess, ServerProcess]]:
    with redis_server() as reference, aspen_node() as aspen:
        yield reference, aspen


@pytest.fixture(scope="module")
def auth_pair() -> Iterator[tuple[ServerProcess, ServerProcess]]:
    with redis_server("--requirepass", "pw") as reference, aspen_node(
        config='[node]\nrequirepass = "pw"\n'
    ) as aspen:
        yield reference, aspen


def exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def same(pair: tuple[ServerProcess, ServerProcess], data: bytes) -> bytes:
    reference, aspen = pair
    expected = exchange(reference.port, data)
    assert exchange(aspen.port, data) == expected, f"input {data[:200]!r}"
    return expected


CASES = [
    b"*1\r\nx\r\n",
    b"*1\r\n\r\n",
    b"*abc\r\n",
    b"*01\r\n$4\r\nPING\r\n",
    b"*+1\r\n$4\r\nPING\r\n",
    b"*2147483648\r\n",
    b"*1\r\n$-1\r\n",
    b"*1\r\n$04\r\nPING\r\n",
    b"*1\r\n$536870913\r\n",
    b"*0\r\n*-1\r\nPING\r\n",
    b"*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n",
    b"\r\n\n  \r\nPING\r\n",
    b'ECHO "\\x41\\n\\t\\\\" \'it\\\'s\'\r\n',
    b'ECHO a"b c" d\r\n',
    b'ECHO "a"b\r\n',
    b"ECHO 'a\r\n",
    b"ECHO a\x0bb\r\n",
    b"\x0b\x0c ECHO a\r\n",
    b"x" * 70000,
    b"*" + b"1" * 70000,
    b"*1\r\n$" + b"1" * 70000,
    b"*2\r\n$4\r\nECHO\r\n$70000\r\n" + b"y" * 70000 + b"\r\n",
    b"PING\r\n*1\r\n$x\r\nPING\r\n",
    b"*3\r\n$4\r\nECHO\r\n",
]


@pytest.mark.parametrize("data", CASES, ids=range(len(CASES)))
def test_fixed_inputs_match_redis(pair: tuple[ServerProcess, ServerProcess], data: bytes) -> None:
    same(pair, data)


def test_a_protocol_error_really_closes_the_connection(
    pair: tuple[ServerProcess, ServerProcess],
) -> None:
    for server in pair:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(b"*1\r\n$x\r\n")
            data = b""
            while chunk := s.recv(4096):  # EOF without our half-close: the server closed
                data += chunk
            assert data == b"-ERR Protocol error: invalid bulk length\r\n"


@pytest.mark.parametrize(
    "data",
    [
        b"*10\r\n",
        b"*11\r\n",
        b"*2\r\n$4\r\nAUTH\r\n$16384\r\n",
        b"*2\r\n$4\r\nAUTH\r\n$16385\r\n",
        b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n*2\r\n$4\r\nECHO\r\n$20000\r\n" + b"z" * 20000 + b"\r\n",
        b"PING\r\nAUTH pw\r\nPING\r\n",
    ],
)
def test_pre_auth_limits_match_redis(
    auth_pair: tuple[ServerProcess, ServerProcess], data: bytes
) -> None:
    same(auth_pair, data)


TOKENS = [b"*", b"$", b"0", b"1", b"2", b"3", b"4", b"-", b"\r\n", b"\r", b"\n", b" ",
          b"PING", b"ECHO", b"x", b'"', b"'", b"\\", b"\\x4", b"1\r\n", b"$4\r\nPING\r\n"]


# Whole multibulk pieces, so that many streams get past the first line and break later.
PIECES = [b"*1\r\n", b"*2\r\n", b"*3\r\n", b"$4\r\nPING\r\n", b"$4\r\nECHO\r\n", b"$1\r\nx\r\n",
          b"$0\r\n\r\n", b"$", b"-1", b"\r\n", b"x", b"*", b"0", b"PING\r\n", b"\r"]
streams = st.one_of(
    st.lists(st.sampled_from(TOKENS), min_size=1, max_size=30).map(b"".join),
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=12).map(b"".join),
)


@settings(
    max_examples=scaled_examples(200),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(streams)
def test_random_token_streams_match_redis(
    pair: tuple[ServerProcess, ServerProcess], data: bytes
) -> None:
    same(pair, data)


# Inputs stay small (one segment): a server that closes while a big request is still arriving
# resets the connection, and whether its error reply survives the reset is a race.
AUTH_PIECES = [*PIECES, b"AUTH pw\r\n", b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n", b"AUTH x\r\n",
               b"*11\r\n", b"$16385\r\n", b"*2\r\n$4\r\nECHO\r\n$16385\r\n"]


@settings(
    max_examples=scaled_examples(80),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(st.sampled_from(AUTH_PIECES), min_size=1, max_size=8).map(b"".join))
def test_random_streams_with_auth_match_redis(
    auth_pair: tuple[ServerProcess, ServerProcess], data: bytes
) -> None:
    same(auth_pair, data)
