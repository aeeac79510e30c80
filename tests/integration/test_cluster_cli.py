"""`aspen up`, `aspen status` and `aspen node` as an operator runs them (real processes)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from harness.daemons import free_base_port, free_ports, wait_until

pytestmark = pytest.mark.slow


def aspen(*args: str, cwd: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aspen.cli", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd)


def start_up(tmp_path: Path, base: int) -> tuple[subprocess.Popen[str], str]:
    """Run `aspen up` and wait for its banner (it prints once the cluster has a leader)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "aspen.cli", "up", "--base-port", str(base), "--tick-ms", "50"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []

    def banner() -> bool:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        lines.append(line)
        assert line or proc.poll() is None, "".join(lines)
        return "Ctrl-C stops the cluster" in line

    try:
        wait_until("aspen up's banner", banner, 60)
    except BaseException:
        proc.kill()
        proc.wait(10)
        raise
    return proc, "".join(lines)


def test_aspen_up_runs_a_cluster_status_prints_it_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    base = free_base_port()
    proc, text = start_up(tmp_path, base)
    try:
        assert f"redis-cli -p {base}" in text and f"redis-cli -p {base + 2}" in text
        assert (tmp_path / ".aspen" / "n3.toml").exists()
        # the mesh is authenticated: every member has CURVE keys and knows the others' keys
        assert "curve_peer_keys = { 1 = " in (tmp_path / ".aspen" / "n3.toml").read_text()
        secret = (tmp_path / ".aspen" / "n3.key_secret").read_bytes()
        assert redis.Redis(port=base, socket_timeout=10).set("up", "yes")
        assert redis.Redis(port=base + 2, socket_timeout=10).get("up") == b"yes"
        out = aspen("status", "--http", f"127.0.0.1:{base + 1000}", cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        rows = [line.split() for line in out.stdout.splitlines()[1:4]]
        assert [r[0] for r in rows] == ["1", "2", "3"]
        assert sorted(r[1] for r in rows) == ["follower", "follower", "leader"]
        leader = next(r[0] for r in rows if r[1] == "leader")
        assert all(r[3] == leader for r in rows)  # every node names the same leader
        out = aspen("status", "--config", str(tmp_path / ".aspen" / "n2.toml"), cwd=tmp_path)
        assert out.returncode == 0 and "voters: [1, 2, 3]" in out.stdout
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        # the children are gone: nothing answers on the RESP ports
        for i in range(3):
            with socket.socket() as s, pytest.raises(OSError):
                s.connect(("127.0.0.1", base + i))
        # `aspen up` again: the same cluster comes back with its data
        proc, _ = start_up(tmp_path, base)
        assert redis.Redis(port=base + 1, socket_timeout=10).get("up") == b"yes"
        assert (tmp_path / ".aspen" / "n3.key_secret").read_bytes() == secret  # keys kept
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_status_of_an_unreachable_node_fails_clearly(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    out = aspen("status", "--http", f"127.0.0.1:{port}", cwd=tmp_path)
    assert out.returncode == 1 and "unreachable" in out.stderr


def test_a_standalone_node_is_durable_and_bad_configs_exit_2(tmp_path: Path) -> None:
    (port,) = free_ports(1)

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "aspen.cli", "node", "--port", str(port)],
                                cwd=tmp_path, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

    proc = start()
    try:
        r = redis.Redis(port=port, socket_timeout=10)
        wait_until("the node to answer", r.ping, 20)
        assert r.set("durable", "yes") and r.incrby("n", 5) == 5
        proc.kill()  # kill -9: the acknowledged writes are in the fsynced log under ./data
        proc.wait(10)
        proc = start()
        wait_until("the node to answer again", r.ping, 20)
        assert r.get("durable") == b"yes" and r.get("n") == b"5"
        assert (tmp_path / "data").is_dir()
        # a second node on the same data directory is refused in one line, exit 1
        (other,) = free_ports(1)
        out = aspen("node", "--port", str(other), cwd=tmp_path)
        assert out.returncode == 1 and "in use by another Aspen process" in out.stderr
        assert "Traceback" not in out.stderr
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    bad = tmp_path / "bad.toml"
    bad.write_text('[raft]\ntransport = "carrier-pigeon"\n')
    out = aspen("node", "--config", str(bad), cwd=tmp_path)
    assert out.returncode == 2
    assert 'raft.transport: must be one of "zmq", "websocket", got "carrier-pigeon"' in out.stderr
