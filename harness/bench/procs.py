"""Processes the benchmark starts: each in its own process group, all killed on the way out.

Every server of the benchmark runs in a new session (its own process group), so a Ctrl-C on
the terminal reaches only the benchmark, whose `finally` then kills every group it started
(SIGKILL to the group also takes any child a server forked, e.g. redis's AOF rewrite). The
registry is module-global so `atexit` and the SIGTERM handler see it too.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from harness.bench.servers import wait_for_port
from harness.daemons import DaemonCluster

__all__ = [
    "BenchCluster",
    "Registry",
    "Server",
    "cpu_seconds",
    "rss_bytes",
    "start_server",
]


class Registry:
    """Every process the benchmark started; `kill_all` kills their process groups."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.pids: list[int] = []

    def popen(self, argv: Sequence[str], *, log: Path, cwd: Path,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            proc = subprocess.Popen(
                list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=cwd, env=env, start_new_session=True,
            )
        self.add(proc)
        return proc

    def add(self, proc: subprocess.Popen[bytes]) -> None:
        self.procs.append(proc)
        self.pids.append(proc.pid)

    def kill_all(self) -> None:
        for proc in self.procs:
            kill_group(proc)
        self.procs.clear()


REGISTRY = Registry()
atexit.register(REGISTRY.kill_all)


def kill_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    """Signal the process group `proc` leads (it was started with start_new_session) and reap."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGCONT)
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    # A forked grandchild may outlive its leader: the group is still there until it goes.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def install_sigterm_handler() -> None:
    """SIGTERM unwinds like Ctrl-C, so every `finally` runs and nothing is left behind."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def _proc_stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rpartition(")")[2].split()


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time the processes have used so far (Linux /proc); gone ones count 0."""
    total = 0.0
    tck = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = _proc_stat(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += (int(fields[11]) + int(fields[12])) / tck
    return total


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (VmRSS)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


@attrs.define
class Server:
    """One server process of a target (a redis-server, a PySyncObj front, ...)."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        kill_group(self.proc, signal.SIGTERM)


def start_server(name: str, argv: Sequence[str], port: int, workdir: Path,
                 timeout: float = 20.0, env: dict[str, str] | None = None) -> Server:
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / f"{name}.log"
    proc = REGISTRY.popen(argv, log=log, cwd=workdir, env=env)
    server = Server(name, port, proc, log)
    try:
        wait_for_port(port, proc, timeout)
    except BaseException:
        kill_group(proc)
        raise
    return server


def redis_argv(port: int, workdir: Path, durable: bool) -> list[str]:
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not installed")
    persistence = (["--appendonly", "yes", "--appendfsync", "always"] if durable
                   else ["--appendonly", "no"])
    return [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(workdir),
            "--daemonize", "no", *persistence]


class BenchCluster(DaemonCluster):
    """`DaemonCluster` whose daemons run in their own process groups, in the registry;
    `source_root`: run them from another source tree (an older commit, for before/after)."""

    source_root: Path | None = None

    def start(self, i: int, *, wait: bool = True, timeout: float = 30.0) -> None:
        if i in self.procs and self.procs[i].poll() is None:
            raise RuntimeError(f"node {i} is already running")
        env = env_with_path(root=self.source_root)
        argv = [sys.executable, "-m", "aspen.cli", "node", "--config", str(self.config_path(i))]
        proc = REGISTRY.popen(argv, log=self.dir / f"n{i}.log", cwd=self.dir, env=env)
        self.procs[i] = proc
        if wait:
            self.wait_serving(i, timeout)

    def data_dir(self, i: int) -> Path:
        return self.dir / f"n{i}"

    def pids(self) -> list[int]:
        return [p.pid for i, p in self.procs.items() if self.alive(i)]

    def close(self) -> None:
        for proc in self.procs.values():
            kill_group(proc)


def env_with_path(extra: dict[str, Any] | None = None,
                  root: Path | None = None) -> dict[str, str]:
    """The environment for Python children: this checkout (or `root`, another source tree)
    first on sys.path."""
    first = str(root or Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = first + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for k, v in (extra or {}).items():
        env[k] = str(v)
    return env
