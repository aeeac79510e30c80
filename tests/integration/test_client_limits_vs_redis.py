"""Client limits on a real redis-server 7.0.15 and an Aspen node with the same settings.

maxclients, timeout (and who is exempt from it), proto-max-bulk-len and the normal
client-output-buffer-limit: the same bytes back and the connection closed at the same
moment. Then what the limits are for: a client that never reads its replies is
disconnected once they pass the limit, a slow sender (one byte per 100 ms) holds no more
than its partial command, and neither stalls the node for the other clients.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from harness.bench.servers import ServerProcess, aspen_node, redis_server

REDIS_ARGS = ("--maxclients", "4", "--timeout", "1", "--proto-max-bulk-len", "1mb",
              "--client-output-buffer-limit", "normal 1mb 256kb 2")
ASPEN_CONFIG = """
[node]
max_clients = 4
timeout = 1
proto_max_bulk_len = "1mb"
client_output_buffer_limit_normal = "1mb 256kb 2"
"""


@pytest.fixture(scope="module", params=["redis", "aspen"])
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    if request.param == "redis":
        with redis_server(*REDIS_ARGS) as s:
            yield s
    else:
        with aspen_node(config=ASPEN_CONFIG) as s:
            yield s


def connect(server: ServerProcess) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return s


def ask(s: socket.socket, data: bytes, size: int) -> bytes:
    s.sendall(data)
    out = b""
    while len(out) < size:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    return out


def closed_within(s: socket.socket, seconds: float) -> bool:
    """Does the server close `s` within `seconds` (whatever it sends first)?"""
    s.settimeout(seconds)
    try:
        while s.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


def test_maxclients_refuses_the_extra_connection(server: ServerProcess) -> None:
    time.sleep(0.5)  # (the start-up probe's connection must be gone)
    held = [connect(server) for _ in range(4)]
    try:
        for s in held:
            assert ask(s, b"PING\r\n", 7) == b"+PONG\r\n"
        extra = connect(server)
        extra.settimeout(5)
        assert extra.recv(100) == b"-ERR max number of clients reached\r\n"
        assert closed_within(extra, 5)
    finally:
        for s in held:
            s.close()
    time.sleep(0.3)  # the slots are free again
    with connect(server) as s:
        assert ask(s, b"PING\r\n", 7) == b"+PONG\r\n"


def test_idle_clients_time_out_but_subscribers_do_not(server: ServerProcess) -> None:
    with connect(server) as idle, connect(server) as subscriber:
        assert ask(idle, b"PING\r\n", 7) == b"+PONG\r\n"
        subscribed = b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"
        assert ask(subscriber, b"SUBSCRIBE ch\r\n", len(subscribed)) == subscribed
        time.sleep(2.5)
        assert closed_within(idle, 2)
        pong = b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"
        assert ask(subscriber, b"PING\r\n", len(pong)) == pong


def test_a_bulk_over_proto_max_bulk_len_is_a_protocol_error(server: ServerProcess) -> None:
    with connect(server) as s:
        s.sendall(b"*2\r\n$4\r\nECHO\r\n$1048577\r\n")
        s.settimeout(5)
        assert s.recv(200) == b"-ERR Protocol error: invalid bulk length\r\n"
        assert closed_within(s, 5)
    with connect(server) as s:  # exactly the limit is fine (the reply would be too big)
        s.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048576\r\n" + b"x" * 1048576 + b"\r\n")
        assert ask(s, b"STRLEN k\r\n", 5 + 12) == b"+OK\r\n:1048576\r\n"


def test_a_reply_over_the_hard_output_limit_closes_the_client(server: ServerProcess) -> None:
    with connect(server) as s:
        part = b"*3\r\n$5\r\nRPUSH\r\n$1\r\nL\r\n$550000\r\n" + b"x" * 550000 + b"\r\n"
        assert ask(s, part * 2, 8) == b":1\r\n:2\r\n"
        s.sendall(b"LRANGE L 0 -1\r\n")
        assert closed_within(s, 5)  # LRANGE's reply passes the 1mb hard limit: no reply
    with connect(server) as s:
        assert ask(s, b"LLEN L\r\n", 4) == b":2\r\n"


def test_a_client_that_never_reads_is_disconnected_and_others_are_served(
    server: ServerProcess,
) -> None:
    with connect(server) as writer:
        value = b"v" * 100_000
        assert ask(writer, b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$100000\r\n" + value + b"\r\n",
                   5) == b"+OK\r\n"
    reader = connect(server)
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    reader.settimeout(0.5)
    sent = 0
    try:  # ~10 MB of replies asked for, none read; the server must give up on us
        for _ in range(100):
            reader.sendall(b"GET big\r\n" * 10)
            sent += 10
            time.sleep(0.01)
    except (BrokenPipeError, ConnectionResetError, TimeoutError):
        pass
    with connect(server) as other:
        assert ask(other, b"PING\r\n", 7) == b"+PONG\r\n"
    reader.settimeout(5)
    got = 0
    try:
        while chunk := reader.recv(1 << 20):
            got += len(chunk)
    except ConnectionResetError:
        pass
    reader.close()
    assert got < sent * 100_000  # cut off: not every reply was delivered


def test_a_slow_sender_holds_nothing_and_stalls_nobody(server: ServerProcess) -> None:
    command = b"*3\r\n$3\r\nSET\r\n$4\r\nslow\r\n$5\r\nvalue\r\n"
    with connect(server) as slow, connect(server) as other:
        for i, byte in enumerate(command):
            slow.sendall(bytes([byte]))
            time.sleep(0.1)
            if i % 8 == 0:  # meanwhile the server answers others at once
                t = time.perf_counter()
                assert ask(other, b"PING\r\n", 7) == b"+PONG\r\n"
                assert time.perf_counter() - t < 0.5
        slow.settimeout(5)
        assert slow.recv(100) == b"+OK\r\n"
        assert ask(other, b"GET slow\r\n", 11) == b"$5\r\nvalue\r\n"
