"""Two real processes: a peer that is SIGSTOPped never blocks the sender, and a peer that is
killed with SIGKILL and started again (new process, new port) is reached again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import trio

from transports import DropReason, TransportConfig, open_transport
from transports.base import TransportBase

pytestmark = pytest.mark.slow


async def _spawn_echo(kind: str, address: str) -> tuple[trio.Process, str]:
    child = await trio.lowlevel.open_process(
        [sys.executable, "-m", "transports.testing", kind, address], stdout=subprocess.PIPE
    )
    assert child.stdout is not None
    line = b""
    with trio.fail_after(20):
        while not line.endswith(b"\n"):
            chunk = await child.stdout.receive_some(1)
            assert chunk, "echo node exited early"
            line += chunk
    return child, line.decode().strip()


async def _echoes(t: TransportBase, tag: bytes, timeout: float) -> bool:
    """Keep sending ``tag-N`` until one comes back (True) or ``timeout`` passes (False)."""
    with trio.move_on_after(timeout):
        i = 0
        while True:
            await t.send(2, b"%s-%d" % (tag, i))
            i += 1
            with trio.move_on_after(0.1):
                while True:
                    _, payload = await t.receive()
                    if payload.startswith(tag):
                        return True
    return False


async def _stop(child: trio.Process) -> None:
    if child.returncode is None:
        child.kill()
    await child.wait()


@pytest.mark.parametrize("kind", ["zmq", "websocket"])
async def test_stopped_then_killed_peer_process(kind: str) -> None:
    config = TransportConfig(node_id=1, cluster_id="test-cluster", send_timeout=0.5)
    async with open_transport(kind, config) as t:
        child, address = await _spawn_echo(kind, t.address)
        try:
            t.add_peer(2, address)
            assert await _echoes(t, b"up", 15)
            os.kill(child.pid, signal.SIGSTOP)
            # 20k sends to a frozen peer never wait on it. 4 KB each (80 MB): an idle sender's
            # messages go straight into ZeroMQ, so its pipe (SNDHWM) and the kernel's socket
            # buffers must fill before the bounded queue does and drops.
            with trio.fail_after(2):
                for _ in range(20_000):
                    await t.send(2, b"x" * 4096)
            assert t.stats.dropped[DropReason.QUEUE_FULL] > 0
            assert not await _echoes(t, b"frozen", 1)
            os.kill(child.pid, signal.SIGCONT)
            assert await _echoes(t, b"thawed", 15)
            os.kill(child.pid, signal.SIGKILL)
            await child.wait()
            child, address = await _spawn_echo(kind, t.address)
            t.add_peer(2, address)  # a restarted node on a new port: membership update
            assert await _echoes(t, b"reborn", 15)
        finally:
            await _stop(child)
