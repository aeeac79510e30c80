"""A hostile glob pattern (CVE-2022-36021's shape) cannot take a real `aspen node` down.

Before the polynomial matcher, `KEYS a*a*...*b` against a key of 40 `a`s ran a backtracking
regex for minutes inside one C call: the node answered nobody, and since Python runs signal
handlers only between bytecodes of the main thread, SIGTERM was never even seen.
"""

from __future__ import annotations

import signal
import socket
import threading
import time

from harness.bench.servers import aspen_node
from harness.resp_wire import RespClient

CVE_PATTERN = b"a*" * 20 + b"b"


def _keys_command(pattern: bytes) -> bytes:
    return b"*2\r\n$4\r\nKEYS\r\n$%d\r\n%s\r\n" % (len(pattern), pattern)


def test_cve_pattern_answers_in_bounded_time_and_ping_meanwhile() -> None:
    with aspen_node() as node:
        client = RespClient(node.port)
        for n in (40, 100, 1000):
            assert client.call([b"SET", b"a" * n, b"1"]) == "OK"
        stop = threading.Event()
        slowest_keys = [0.0]

        def hammer() -> None:  # one client sends the hostile KEYS back to back
            c = RespClient(node.port)
            while not stop.is_set():
                t = time.monotonic()
                assert c.call([b"KEYS", CVE_PATTERN]) == []
                slowest_keys[0] = max(slowest_keys[0], time.monotonic() - t)
            c.close()

        worker = threading.Thread(target=hammer)
        worker.start()
        try:
            pinger = RespClient(node.port)
            slowest_ping = 0.0
            for _ in range(50):
                t = time.monotonic()
                assert pinger.call([b"PING"]) == "PONG"
                slowest_ping = max(slowest_ping, time.monotonic() - t)
                time.sleep(0.02)
        finally:
            stop.set()
            worker.join(30)
        # generous bounds for a shared 2-core machine; the bug was minutes
        assert slowest_keys[0] < 5, slowest_keys
        assert slowest_ping < 5, slowest_ping
        assert client.call([b"KEYS", b"a*a*b"]) == []
        assert len(client.call([b"KEYS", b"a*a*a"])) == 3  # type: ignore[arg-type]


def test_sigterm_runs_the_shutdown_handler_while_busy() -> None:
    with aspen_node() as node:
        client = RespClient(node.port)
        for i in range(2000):
            client.call([b"SET", b"a" * 1000 + b"%d" % i, b"1"])
        busy = socket.create_connection(("127.0.0.1", node.port))
        busy.sendall(_keys_command(CVE_PATTERN) * 2000)  # many seconds of pipelined work
        time.sleep(0.5)
        start = time.monotonic()
        node.proc.send_signal(signal.SIGTERM)
        code = node.proc.wait(30)
        took = time.monotonic() - start
        busy.close()
        assert code == 0
        assert "SIGTERM, shutting down" in node.log()
        # the drain is capped by shutdown_grace (5 s), plus the command in hand
        assert took < 15, took
