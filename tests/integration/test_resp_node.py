"""A real `aspen node` process driven by real clients: redis-cli, redis-cli --pipe, redis-py."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from harness.bench.servers import ServerProcess, aspen_node, free_port

# redis-cli is a test dependency (`python3 scripts/dev.py test` installs it): fail, never skip.
assert shutil.which("redis-cli"), "redis-cli is missing: apt-get install redis-tools"


@pytest.fixture(scope="module")
def node() -> Iterator[ServerProcess]:
    with aspen_node() as server:
        yield server


@pytest.fixture
def r(node: ServerProcess) -> Iterator[redis.Redis]:
    client = redis.Redis(port=node.port, socket_timeout=10)
    client.flushall()
    yield client
    client.close()


def cli(port: int, *args: str, stdin: bytes | None = None) -> str:
    out = subprocess.run(
        ["redis-cli", "-p", str(port), *args], input=stdin, capture_output=True, timeout=60,
        check=True,
    )
    return out.stdout.decode()


def raw_exchange(port: int, data: bytes, timeout: float = 10) -> bytes:
    """Send `data`, then read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_start_line_on_stderr(node: ServerProcess) -> None:
    # The port accepts as soon as it listens; the line follows a moment later.
    line = f"aspen node listening on 127.0.0.1:{node.port}"
    deadline = time.monotonic() + 10
    while line not in node.log() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert line in node.log()


def test_redis_cli_set_get(node: ServerProcess, r: redis.Redis) -> None:
    assert cli(node.port, "SET", "greeting", "hello world").strip() == "OK"
    assert cli(node.port, "GET", "greeting").strip() == "hello world"
    assert cli(node.port, "GET", "missing").strip() == ""
    assert cli(node.port, "PING").strip() == "PONG"


def test_redis_cli_pipe_mass_insertion_of_100k_keys(node: ServerProcess, r: redis.Redis) -> None:
    n = 100_000
    payload = b"".join(
        b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v)
        for k, v in ((b"key:%d" % i, b"value:%d" % i) for i in range(n))
    )
    out = cli(node.port, "--pipe", stdin=payload)
    assert f"errors: 0, replies: {n}" in out
    assert cli(node.port, "DBSIZE").strip() == str(n)
    assert r.get("key:99999") == b"value:99999"


def test_redis_py_pipeline_without_transaction(r: redis.Redis) -> None:
    pipe = r.pipeline(transaction=False)
    for i in range(1000):
        pipe.set(f"k{i}", i)
        pipe.incr(f"k{i}")
    pipe.mget([f"k{i}" for i in range(0, 1000, 100)])
    results = pipe.execute()
    assert results[:4] == [True, 1, True, 2]
    assert results[-1] == [str(i + 1).encode() for i in range(0, 1000, 100)]


def test_redis_py_big_pipeline_of_large_values_does_not_deadlock(r: redis.Redis) -> None:
    """redis-py writes the whole pipeline before reading: ~6 MB each way."""
    value = b"v" * 100_000
    pipe = r.pipeline(transaction=False)
    for i in range(60):
        pipe.set(f"big{i}", value)
        pipe.get(f"big{i}")
    results = pipe.execute()
    assert results == [True, value] * 60


def test_redis_py_transaction_is_atomic_and_replies_in_order(r: redis.Redis) -> None:
    with r.pipeline(transaction=True) as pipe:
        pipe.set("a", 1).incrby("a", 41).get("a").delete("a").exists("a")
        assert pipe.execute() == [True, 42, b"42", 1, 0]


def test_watch_conflict_aborts_exec(node: ServerProcess, r: redis.Redis) -> None:
    other = redis.Redis(port=node.port)
    r.set("balance", 10)
    with r.pipeline() as pipe:
        pipe.watch("balance")
        current = int(pipe.get("balance") or 0)
        other.set("balance", 999)  # a concurrent writer
        pipe.multi()
        pipe.set("balance", current - 1)
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert r.get("balance") == b"999"
    # Without interference the same transaction commits.
    with r.pipeline() as pipe:
        pipe.watch("balance")
        current = int(pipe.get("balance") or 0)
        pipe.multi()
        pipe.set("balance", current - 1)
        assert pipe.execute() == [True]
    assert r.get("balance") == b"998"
    other.close()


def test_hello_3_with_redis_py_protocol_3(node: ServerProcess) -> None:
    client = redis.Redis(port=node.port, protocol=3)
    try:
        hello = client.execute_command("HELLO", "3")
        assert hello[b"proto"] == 3 and hello[b"server"] == b"aspen"
        client.set("x", "1")
        assert client.get("x") == b"1"
        assert client.get("nope") is None
        # CONFIG GET is a RESP3 map, which redis-py turns into a dict.
        assert client.execute_command("CONFIG", "GET", "maxc*") == {b"maxclients": b"10000"}
    finally:
        client.close()
    # On the wire: a RESP3 map, and RESP3 null for a missing key.
    reply = raw_exchange(
        node.port,
        b"HELLO 3\r\nGET nope\r\nQUIT\r\n",
    )
    assert reply.startswith(b"%7\r\n$6\r\nserver\r\n$5\r\naspen\r\n")
    assert reply.endswith(b"_\r\n+OK\r\n")


def test_protocol_error_replies_then_closes(node: ServerProcess) -> None:
    reply = raw_exchange(node.port, b"PING\r\n*1\r\n$x\r\nPING\r\n")
    assert reply == b"+PONG\r\n-ERR Protocol error: invalid bulk length\r\n"


def test_inline_commands_work(node: ServerProcess) -> None:
    reply = raw_exchange(node.port, b'SET inl "two words"\r\nGET inl\r\nQUIT\r\n')
    assert reply == b"+OK\r\n$9\r\ntwo words\r\n+OK\r\n"


def test_requirepass() -> None:
    with aspen_node(config='[node]\nrequirepass = "s3cret"\n') as server:
        # No retries: redis-py treats auth errors as connection errors and backs off.
        no_retry = Retry(NoBackoff(), 0)
        anonymous = redis.Redis(port=server.port, retry=no_retry)
        # redis-py opens with HELLO, which Redis 7 refuses before AUTH with its own NOAUTH text.
        with pytest.raises(redis.AuthenticationError, match="authenticated"):
            anonymous.get("k")
        reply = raw_exchange(
            server.port, b"GET k\r\nAUTH nope\r\nAUTH s3cret\r\nGET k\r\nQUIT\r\n"
        )
        assert reply == (
            b"-NOAUTH Authentication required.\r\n"
            b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
            b"+OK\r\n$-1\r\n+OK\r\n"
        )
        with pytest.raises(redis.AuthenticationError, match="invalid username-password"):
            redis.Redis(port=server.port, password="wrong", retry=no_retry).ping()
        good = redis.Redis(port=server.port, password="s3cret")
        assert good.set("k", "v") and good.get("k") == b"v"
        assert cli(server.port, "-a", "s3cret", "--no-auth-warning", "GET", "k").strip() == "v"
        # Before AUTH only small requests are accepted (Redis's pre-auth limits).
        big = b"x" * 20000
        reply = raw_exchange(server.port, b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(big), big))
        assert reply == b"-ERR Protocol error: unauthenticated bulk length\r\n"
        anonymous.close()
        good.close()


def test_sigterm_with_a_pipeline_in_flight_answers_everything_then_exits_0() -> None:
    # The grace period is the hard cap on a drain; a generous one keeps this about the drain
    # (every command read is answered) and not about how fast a loaded machine runs.
    n = 20_000
    request = b"".join(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\nv\r\n" % (len(k), k)
                       for k in (b"p%d" % i for i in range(n)))
    with aspen_node(config="[node]\nshutdown_grace = 60.0\n") as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
        received = bytearray()

        def reader() -> None:
            while chunk := sock.recv(1 << 16):
                received.extend(chunk)

        thread = threading.Thread(target=reader)
        thread.start()
        half = len(request) // 2
        sock.sendall(request[:half])
        # Wait until the node is visibly busy with our pipeline, then stop it mid-stream.
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            time.sleep(0.001)
        server.proc.send_signal(signal.SIGTERM)
        sock.sendall(request[half:])
        thread.join(60)
        sock.close()
        assert not thread.is_alive()
        assert server.proc.wait(15) == 0
        replies = bytes(received)
        assert replies.count(b"+OK\r\n") == n, f"{replies.count(b'+OK')} of {n} answered"
        assert replies == b"+OK\r\n" * n  # and nothing else
        assert "SIGTERM, shutting down" in server.log()


def test_sigint_also_shuts_down_cleanly() -> None:
    with aspen_node() as server:
        assert redis.Redis(port=server.port).ping()
        assert server.stop(signal.SIGINT) == 0


def test_config_errors_exit_2_naming_the_key(tmp_path: object) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "aspen.cli", "node", "--port", "99999"],
        capture_output=True, text=True, timeout=30,
    )
    assert out.returncode == 2
    assert "node.port: must be an integer 1-65535" in out.stderr


def test_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as s:
        port = free_port()
        s.bind(("127.0.0.1", port))
        s.listen()
        out = subprocess.run(
            [sys.executable, "-m", "aspen.cli", "node", "--port", str(port), "--dir", "/tmp"],
            capture_output=True, text=True, timeout=30,
        )
    assert out.returncode == 1
    assert "aspen node:" in out.stderr and "in use" in out.stderr


def test_node_help_is_honest_about_durability() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "aspen.cli", "node", "--help"],
        capture_output=True, text=True, timeout=30, check=True,
    )
    assert "fsynced log" in out.stdout and "survives a restart" in out.stdout
    assert "--config" in out.stdout and "--dir" in out.stdout
