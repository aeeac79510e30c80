"""Pub/sub on a real `aspen node` with real clients: redis-py's PubSub in RESP2 and RESP3,
redis-cli SUBSCRIBE, a subscriber that disconnects, and one that never reads."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis

from harness.bench.servers import ServerProcess, aspen_node
from harness.daemons import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def node() -> Iterator[ServerProcess]:
    with aspen_node() as server:
        yield server


def numsub(port: int, channel: str) -> int:
    with redis.Redis(port=port, protocol=2) as r:
        return int(r.pubsub_numsub(channel)[0][1])


def next_message(ps: redis.client.PubSub, timeout: float = 5.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = ps.get_message(ignore_subscribe_messages=True, timeout=0.2)
        if msg is not None:
            return msg
    raise AssertionError("no message arrived")


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_pubsub(node: ServerProcess, protocol: int) -> None:
    with redis.Redis(port=node.port, protocol=protocol) as sub_conn, \
            redis.Redis(port=node.port, protocol=protocol) as pub:
        ps = sub_conn.pubsub()
        ps.subscribe("news")
        ps.psubscribe("ne*")
        assert ps.get_message(timeout=2)["type"] == "subscribe"  # type: ignore[index]
        assert ps.get_message(timeout=2)["type"] == "psubscribe"  # type: ignore[index]
        assert pub.publish("news", "hello") == 2
        first, second = next_message(ps), next_message(ps)
        assert (first["type"], first["channel"], first["data"]) == ("message", b"news", b"hello")
        assert (second["type"], second["pattern"], second["data"]) == ("pmessage", b"ne*",
                                                                        b"hello")
        assert pub.pubsub_numsub("news") == [(b"news", 1)]
        assert pub.pubsub_numpat() == 1
        assert pub.pubsub_channels() == [b"news"]
        ps.ping()  # allowed while subscribed, in either protocol
        assert next_message(ps)["type"] == "pong"
        ps.unsubscribe("news")
        ps.punsubscribe()
        assert ps.get_message(timeout=2)["type"] == "unsubscribe"  # type: ignore[index]
        assert ps.get_message(timeout=2)["type"] == "punsubscribe"  # type: ignore[index]
        assert pub.publish("news", "nobody") == 0
        ps.close()


def test_redis_cli_subscribe_is_a_real_client_and_cleanup_on_disconnect(
    node: ServerProcess,
) -> None:
    proc = subprocess.Popen(["redis-cli", "-p", str(node.port), "SUBSCRIBE", "cli-chan"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_until("redis-cli subscribed", lambda: numsub(node.port, "cli-chan") == 1, 10)
        with redis.Redis(port=node.port) as pub:
            assert pub.publish("cli-chan", "from-test") == 1
        assert proc.stdout is not None
        lines: list[bytes] = []
        deadline = time.monotonic() + 10
        while b"from-test" not in lines and time.monotonic() < deadline:
            lines.append(proc.stdout.readline().strip())
        assert lines[:3] == [b"subscribe", b"cli-chan", b"1"]
        assert lines[-3:] == [b"message", b"cli-chan", b"from-test"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    # the connection is gone: its subscription with it
    wait_until("subscription dropped", lambda: numsub(node.port, "cli-chan") == 0, 10)


def test_a_subscriber_that_never_reads_is_disconnected_not_waited_for(
    node: ServerProcess,
) -> None:
    slow = socket.create_connection(("127.0.0.1", node.port))
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nslow\r\n")
    wait_until("subscribed", lambda: numsub(node.port, "slow") == 1, 10)
    blob = b"x" * (1 << 20)
    started = time.monotonic()
    with redis.Redis(port=node.port, socket_timeout=10) as pub:
        # 48 MiB to a reader of none: past the 32 MiB pub/sub limit, whatever the kernel holds
        counts = [pub.publish("slow", blob) for _ in range(48)]
        assert pub.ping()
    assert time.monotonic() - started < 20  # (a stalled publisher would time out instead)
    assert counts[0] == 1 and counts[-1] == 0  # dropped on the way: later ones reach nobody
    assert numsub(node.port, "slow") == 0
    slow.settimeout(10)
    received = 0
    while chunk := _recv(slow):
        received += len(chunk)
    assert received < 48 * len(blob)  # the connection was closed, not served in full
    slow.close()


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(1 << 20)
    except ConnectionResetError:
        return b""
