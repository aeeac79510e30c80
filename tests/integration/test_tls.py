"""TLS for clients (redis-cli --tls, redis-py ssl=True), the control plane (HTTPS) and the
websocket mesh (wss with mutual TLS), on real daemons; and `aspen keygen --cluster` configs
that start an authenticated cluster (issue 18 items 2-4)."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import trio
import trio_websocket
import trustme

from aspen.node_config import LocalMember, render_local_config
from harness.daemons import free_base_port, free_ports, wait_until

pytestmark = pytest.mark.skipif(shutil.which("redis-cli") is None, reason="needs redis-cli")


class Certs:
    """A CA, a server certificate for 127.0.0.1, and a client certificate, as PEM files."""

    def __init__(self, where: Path, ca: trustme.CA | None = None) -> None:
        self.ca = ca or trustme.CA()
        where.mkdir(parents=True, exist_ok=True)
        self.ca_file = where / "ca.crt"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        server = self.ca.issue_cert("127.0.0.1", "localhost")
        self.cert_file, self.key_file = where / "node.crt", where / "node.key"
        server.cert_chain_pems[0].write_to_path(str(self.cert_file))
        server.private_key_pem.write_to_path(str(self.key_file))
        client = self.ca.issue_cert("client.aspen.test")
        self.client_cert, self.client_key = where / "client.crt", where / "client.key"
        client.cert_chain_pems[0].write_to_path(str(self.client_cert))
        client.private_key_pem.write_to_path(str(self.client_key))

    def tls_table(self, **extra: Any) -> str:
        lines = ["[tls]", f'cert_file = "{self.cert_file}"', f'key_file = "{self.key_file}"',
                 f'ca_cert_file = "{self.ca_file}"']
        lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
        return "\n".join(lines) + "\n"


class Daemon:
    def __init__(self, config: Path) -> None:
        self.log = config.with_suffix(".log")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "aspen.cli", "node", "--config", str(config)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=config.parent)

    def wait_log(self, text: str, timeout: float = 30.0) -> None:
        def seen() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.log.name}: exited {self.proc.returncode}:\n"
                                     + self.log.read_text()[-2000:])
            return text in self.log.read_text()

        try:
            wait_until(f"{text!r} in {self.log.name}", seen, timeout)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{self.log.read_text()[-2000:]}") from None

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def certs(tmp_path: Path) -> Certs:
    return Certs(tmp_path / "certs")


@pytest.fixture
def tls_node(tmp_path: Path, certs: Certs) -> Iterator[tuple[int, int, int]]:
    """A standalone node: plain RESP, RESP over TLS (client certificates required), HTTPS."""
    port, tls_port, http = free_ports(3)
    config = tmp_path / "node.toml"
    config.write_text(f'[node]\nport = {port}\ndir = "data"\n[http]\nlisten = "127.0.0.1:{http}"\n'
                      + certs.tls_table(port=tls_port, http=True))
    node = Daemon(config)
    try:
        node.wait_log("aspen node tls on")
        yield port, tls_port, http
    finally:
        node.stop()


def redis_cli(
    port: int, *args: str, tls: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["redis-cli", "-p", str(port), *(tls or []), *args],
                          capture_output=True, text=True, timeout=20)


def test_redis_cli_over_tls_with_a_client_certificate(tls_node: tuple[int, int, int],
                                                      certs: Certs) -> None:
    port, tls_port, _ = tls_node
    flags = ["--tls", "--cacert", str(certs.ca_file), "--cert", str(certs.client_cert),
             "--key", str(certs.client_key)]
    assert redis_cli(tls_port, "SET", "k", "over tls", tls=flags).stdout.strip() == "OK"
    assert redis_cli(tls_port, "GET", "k", tls=flags).stdout.strip() == "over tls"
    assert redis_cli(port, "GET", "k").stdout.strip() == "over tls"  # the plain port too
    # No client certificate: the handshake is refused and nothing runs.
    out = redis_cli(tls_port, "SET", "k", "no cert", tls=["--tls", "--cacert", str(certs.ca_file)])
    assert "OK" not in out.stdout
    # Plain text to the TLS port is not a Redis conversation either.
    assert redis_cli(tls_port, "PING").stdout.strip() != "PONG"
    assert redis_cli(port, "GET", "k").stdout.strip() == "over tls"


def test_redis_py_with_ssl(tls_node: tuple[int, int, int], certs: Certs) -> None:
    _, tls_port, _ = tls_node
    client = redis.Redis(port=tls_port, ssl=True, ssl_ca_certs=str(certs.ca_file),
                         ssl_certfile=str(certs.client_cert), ssl_keyfile=str(certs.client_key))
    assert client.set("py", "tls") is True
    assert client.get("py") == b"tls"
    assert client.incr("n") == 1 and client.incr("n") == 2
    with client.pipeline() as pipe:
        assert pipe.set("a", 1).get("a").execute() == [True, b"1"]
    client.close()
    stranger = Certs(certs.ca_file.parent.parent / "other")  # a certificate from another CA
    bad = redis.Redis(port=tls_port, ssl=True, ssl_ca_certs=str(certs.ca_file),
                      ssl_certfile=str(stranger.client_cert), ssl_keyfile=str(stranger.client_key))
    with pytest.raises(redis.ConnectionError):
        bad.set("py", "forged")
    assert redis.Redis(port=tls_port, ssl=True, ssl_ca_certs=str(certs.ca_file),
                       ssl_certfile=str(certs.client_cert),
                       ssl_keyfile=str(certs.client_key)).get("py") == b"tls"


def test_a_tls_client_parked_in_blpop_is_released_when_it_hangs_up(
    tls_node: tuple[int, int, int], certs: Certs
) -> None:
    port, tls_port, _ = tls_node
    parked = redis.Redis(port=tls_port, ssl=True, ssl_ca_certs=str(certs.ca_file),
                         ssl_certfile=str(certs.client_cert), ssl_keyfile=str(certs.client_key))
    conn = parked.connection_pool.get_connection()
    conn.send_command("BLPOP", "queue", "0")
    plain = redis.Redis(port=port)
    wait_until("the TLS client parked", lambda: plain.info("clients")["blocked_clients"] == 1, 10)
    conn.disconnect()  # close_notify, then FIN: the node must notice without reading
    wait_until("the parked client released",
               lambda: plain.info("clients")["blocked_clients"] == 0, 10)
    assert plain.lpush("queue", "job") == 1
    assert plain.lrange("queue", 0, -1) == [b"job"]  # nobody took it for the gone client


def test_control_plane_over_https(tls_node: tuple[int, int, int], certs: Certs) -> None:
    _, _, http = tls_node
    ctx = ssl.create_default_context(cafile=str(certs.ca_file))
    with urllib.request.urlopen(f"https://127.0.0.1:{http}/health", context=ctx,
                                timeout=10) as resp:
        assert resp.status == 200
    with pytest.raises(OSError):  # plain HTTP to the HTTPS port gets no answer
        urllib.request.urlopen(f"http://127.0.0.1:{http}/health", timeout=5).read()


def test_a_wss_mesh_with_mutual_tls_replicates(tmp_path: Path, certs: Certs) -> None:
    ports = free_ports(9)
    members = [LocalMember(i, ports[3 * i - 3], ports[3 * i - 2], ports[3 * i - 1])
               for i in (1, 2, 3)]
    daemons = []
    try:
        for m in members:
            text = render_local_config(m, members, f"n{m.id}",
                                       raft={"transport": "websocket", "tick_ms": 50})
            config = tmp_path / f"n{m.id}.toml"
            config.write_text(text + certs.tls_table(peers=True))
            daemons.append(Daemon(config))
        for d in daemons:
            d.wait_log("raft on")
        leader = wait_until("a leader over wss", lambda: _leader(members), 30)
        follower = next(m for m in members if m.id != leader)
        client = redis.Redis(port=follower.resp)
        wait_until("a write through a follower", lambda: client.set("wss", "ok"), 20)
        for m in members:
            wait_until(f"n{m.id} has the write",
                       lambda m=m: redis.Redis(port=m.resp).get("wss") == b"ok", 20)
        # A peer without the cluster's certificates cannot even open the websocket.
        raft = next(m for m in members if m.id == leader).raft
        assert trio.run(_plain_ws_refused, raft)
    finally:
        for d in daemons:
            d.stop()


def _leader(members: list[LocalMember]) -> int | None:
    for m in members:
        with urllib.request.urlopen(f"http://127.0.0.1:{m.http}/status", timeout=2) as resp:
            status = json.loads(resp.read())
        if status["role"] == "leader":
            return int(status["id"])
    return None


async def _plain_ws_refused(port: int) -> bool:
    try:
        with trio.fail_after(5):
            async with trio_websocket.open_websocket_url(f"ws://127.0.0.1:{port}/aspen"):
                return False
    except (trio_websocket.HandshakeError, trio_websocket.ConnectionClosed, OSError,
            trio.TooSlowError):
        return True


def test_keygen_cluster_configs_start_an_authenticated_cluster(tmp_path: Path) -> None:
    base = free_base_port(3)
    out = subprocess.run(
        [sys.executable, "-m", "aspen.cli", "keygen", "--cluster", "127.0.0.1", "127.0.0.1",
         "127.0.0.1", "--dir", str(tmp_path), "--base-port", str(base)],
        capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    text = (tmp_path / "n1.toml").read_text()
    assert "curve_public_key" in text and "requirepass" in text
    assert (tmp_path / "n1.key_secret").stat().st_mode & 0o077 == 0
    password = next(line.split('"')[1] for line in text.splitlines()
                    if line.startswith("requirepass"))
    daemons = [Daemon(tmp_path / f"n{i}.toml") for i in (1, 2, 3)]
    try:
        for d in daemons:
            d.wait_log("raft on")
        client = redis.Redis(port=base + 1, password=password)
        wait_until("a write", lambda: client.set("k", "v"), 30)
        assert redis.Redis(port=base + 2, password=password).get("k") == b"v"
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=base + 2).get("k")
    finally:
        for d in daemons:
            d.stop()
