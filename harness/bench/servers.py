"""Start real server processes on free loopback ports: an Aspen node, a reference redis-server.

Used by the benchmarks and by the integration tests, so both exercise the same thing a user
runs (`aspen node`, `redis-server`). Every process is stopped on exit from its context, and
its stderr goes to a file rather than a pipe, so a chatty server can never block on output.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import attrs

__all__ = ["ServerProcess", "aspen_node", "free_port", "redis_server", "wait_for_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Block until something accepts on 127.0.0.1:port; fail early if `proc` exits."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on port {port} after {timeout}s") from None
            time.sleep(0.02)


@attrs.define
class ServerProcess:
    """A running server: its port, process and the file its stderr goes to."""

    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Signal the process and wait for it; kill it if it does not go in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@contextlib.contextmanager
def _running(argv: list[str], port: int, workdir: Path, **popen: object) -> Iterator[ServerProcess]:
    log_path = workdir / "server.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(  # type: ignore[call-overload]
            argv, stdout=log_file, stderr=subprocess.STDOUT, cwd=workdir, **popen
        )
    server = ServerProcess(port, proc, log_path)
    try:
        wait_for_port(port, proc)
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def aspen_node(
    *args: str, port: int | None = None, config: str | None = None
) -> Iterator[ServerProcess]:
    """Run `aspen node` (this interpreter's aspen) with its data dir in a temporary directory.

    `config` is TOML text written to node.toml and passed with --config; `args` are extra
    command-line options.
    """
    port = port or free_port()
    with tempfile.TemporaryDirectory(prefix="aspen-node-") as tmp:
        workdir = Path(tmp)
        argv = [sys.executable, "-m", "aspen.cli", "node", "--port", str(port),
                "--dir", str(workdir / "data")]
        if config is not None:
            (workdir / "node.toml").write_text(config)
            argv += ["--config", str(workdir / "node.toml")]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with _running([*argv, *args], port, workdir, env=env) as server:
            yield server


@contextlib.contextmanager
def redis_server(*args: str, port: int | None = None) -> Iterator[ServerProcess]:
    """Run the reference redis-server on 127.0.0.1 with no persistence unless `args` add some."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    port = port or free_port()
    with tempfile.TemporaryDirectory(prefix="aspen-redis-") as tmp:
        argv = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", tmp, *args]
        with _running(argv, port, Path(tmp)) as server:
            yield server
