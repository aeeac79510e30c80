"""BLPOP & co. end to end: real `aspen node` daemons (ZeroMQ, loopback), redis-py (RESP3) and
redis-cli clients, a raw socket that hangs up while parked, and SIGTERM with a parked client."""

from __future__ import annotations

import socket
import subprocess
import threading
import time

import pytest

from harness.daemons import DaemonCluster, wait_until

pytestmark = pytest.mark.slow


def blocked(cluster: DaemonCluster, i: int) -> int:
    return int(cluster.client(i).info("clients")["blocked_clients"])


def wait_blocked(cluster: DaemonCluster, i: int, n: int) -> None:
    wait_until(f"{n} clients parked on node {i}", lambda: blocked(cluster, i) == n, 10)


def test_blocking_commands_across_real_daemons(cluster: DaemonCluster) -> None:
    leader = cluster.wait_leader()
    follower = next(i for i in cluster.voters if i != leader)
    pusher = cluster.client(leader)

    # redis-py (RESP3) parks on a follower; a push on the leader serves it
    got: list[object] = []
    waiter = threading.Thread(
        target=lambda: got.append(cluster.client(follower).blpop(["q"], timeout=0))
    )
    waiter.start()
    wait_blocked(cluster, follower, 1)
    assert pusher.rpush("q", "a", "b") == 2
    waiter.join(10)
    assert got == [(b"q", b"a")]  # redis-py hands BLPOP over as a tuple
    assert cluster.client(follower).lrange("q", 0, -1) == [b"b"]

    # a timeout is a null reply; redis-cli (RESP2) gets the element at once when there is one
    assert cluster.client(follower).blmove("nothing", "d", 0.2, "LEFT", "RIGHT") is None
    out = subprocess.run(
        ["redis-cli", "-p", str(cluster.resp_port(follower)), "BRPOP", "q", "1"],
        capture_output=True, text=True, timeout=20,
    )
    assert out.stdout.split() == ["q", "b"]

    # nothing behind a parked command on its connection runs before it completes
    piped = socket.create_connection(("127.0.0.1", cluster.resp_port(follower)), timeout=10)
    piped.sendall(b"*3\r\n$5\r\nBLPOP\r\n$2\r\nq3\r\n$1\r\n0\r\n"
                  b"*3\r\n$3\r\nSET\r\n$5\r\nafter\r\n$1\r\n1\r\n")
    wait_blocked(cluster, follower, 1)
    time.sleep(0.2)
    assert pusher.get("after") is None
    assert pusher.rpush("q3", "x") == 1
    expected = b"*2\r\n$2\r\nq3\r\n$1\r\nx\r\n+OK\r\n"
    data = b""
    while len(data) < len(expected):
        data += piped.recv(4096)
    piped.close()
    assert data == expected
    assert pusher.get("after") == b"1"

    # a client that hangs up while parked is dropped and takes nothing
    raw = socket.create_connection(("127.0.0.1", cluster.resp_port(follower)))
    raw.sendall(b"*3\r\n$5\r\nBLPOP\r\n$2\r\nq2\r\n$1\r\n0\r\n")
    wait_blocked(cluster, follower, 1)
    raw.close()
    wait_blocked(cluster, follower, 0)
    assert pusher.rpush("q2", "kept") == 1
    time.sleep(0.3)
    assert cluster.client(follower).lrange("q2", 0, -1) == [b"kept"]


def test_sigterm_does_not_hang_on_a_parked_client(cluster: DaemonCluster) -> None:
    leader = cluster.wait_leader()
    follower = next(i for i in cluster.voters if i != leader)
    raw = socket.create_connection(("127.0.0.1", cluster.resp_port(follower)), timeout=10)
    raw.sendall(b"*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\n0\r\n")
    wait_blocked(cluster, follower, 1)
    started = time.monotonic()
    assert cluster.stop(follower) == 0
    assert time.monotonic() - started < 4  # well under the 5 s shutdown grace
    data = b""
    while chunk := raw.recv(4096):
        data += chunk
    raw.close()
    assert data == b"-UNBLOCKED the node is shutting down\r\n"
