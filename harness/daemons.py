"""Multi-process harness: real `aspen node` daemons from generated TOML on loopback.

    with DaemonCluster(3, tmp_path) as cluster:      # free ports, ZeroMQ, bootstrapped
        cluster.start_all()                           # waits until every node answers
        leader = cluster.wait_leader()
        cluster.kill(leader)                          # SIGKILL; .pause/.resume: SIGSTOP/SIGCONT
        cluster.start(leader)                         # restart from its data dir
        cluster.client(2).set("k", "v")               # redis-py

Every wait is bounded (a `TimeoutError` names what it waited for). `close()` (the context
manager's exit, and an atexit hook as a last resort) SIGKILLs every child that is still
alive, so a failing test leaks no process. Daemon output goes to `<dir>/nN.log`.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import redis

from aspen.node_config import LocalMember, render_local_config

__all__ = ["DaemonCluster", "free_ports", "wait_until"]

T = TypeVar("T")

_LIVE: set[subprocess.Popen[bytes]] = set()


def _reap_all() -> None:
    for proc in list(_LIVE):
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


atexit.register(_reap_all)


def free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1 (bound to port 0 together, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_base_port(n: int = 3) -> int:
    """A base port with base..base+n-1, +1000 and +2000 free (the layout of `aspen up` and
    `aspen keygen --cluster` for members sharing one host)."""
    for base in range(22000 + (time.time_ns() // 1000) % 5000, 60000, 97):
        ok = True
        for off in (0, 1000, 2000):
            for i in range(n):
                with socket.socket() as s:
                    try:
                        s.bind(("127.0.0.1", base + off + i))
                    except OSError:
                        ok = False
        if ok:
            return base
    raise RuntimeError("no free port range")


def wait_until(what: str, fn: Callable[[], T | None], timeout: float, interval: float = 0.05) -> T:
    """Poll `fn` until it returns something other than None/False; TimeoutError names `what`."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while True:
        try:
            value = fn()
            if value is not None and value is not False:
                return value
        except Exception as exc:  # polled operations fail while nodes come and go
            last_exc = exc
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f}s for {what}"
                               + (f" (last error: {last_exc!r})" if last_exc else ""))
        time.sleep(interval)


def http_json(address: str, path: str, body: Any = None, timeout: float = 5.0) -> tuple[int, Any]:
    """GET (body None) or POST JSON to a node's control plane: (status, decoded body)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://{address}{path}", data=data,
                                 method="GET" if body is None else "POST",
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode("utf-8", "replace")


class DaemonCluster:
    """N `aspen node` processes on loopback; node ids 1..n (more can be added as learners)."""

    def __init__(
        self,
        n: int,
        base_dir: Path,
        *,
        bootstrap: bool = True,
        tick_ms: int = 50,
        election_ticks: int = 10,
        raft: dict[str, Any] | None = None,
        spares: int = 0,
        hosts: Mapping[int, str] | None = None,
        exec_prefix: Callable[[int], list[str]] | None = None,
        security: Mapping[str, Any] | None = None,
    ) -> None:
        """`hosts`: each node's address (default 127.0.0.1); `exec_prefix(i)`: an argv prefix
        node i's process is started under (harness.netns: `ip netns exec <its namespace>`);
        `security`: the `[security]` table of every node."""
        self.dir = Path(base_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        ports = free_ports(3 * (n + spares))
        self.members = {
            i: LocalMember(i, resp=ports[3 * (i - 1)], http=ports[3 * (i - 1) + 1],
                           raft=ports[3 * (i - 1) + 2],
                           host=(hosts or {}).get(i, "127.0.0.1"))
            for i in range(1, n + spares + 1)
        }
        self.voters = list(range(1, n + 1))
        raft_opts = {"tick_ms": tick_ms, "election_ticks": election_ticks, **(raft or {})}
        for i, me in self.members.items():
            # Spares know every member (transports refuse unknown senders) but start without
            # a bootstrap list: they join through add-learner.
            members = list(self.members.values())
            text = render_local_config(me, members, f"n{i}", bootstrap=bootstrap and i <= n,
                                       raft=raft_opts, voters=self.voters,
                                       security=security)
            (self.dir / f"n{i}.toml").write_text(text)
        self.exec_prefix = exec_prefix
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.paused: set[int] = set()
        self.pythonpath: dict[int, str] = {}
        """Per node: run it from another source tree (e.g. an older release, for rolling
        upgrade tests); nodes not listed inherit this process's PYTHONPATH."""

    # -- processes ------------------------------------------------------------------------------

    def config_path(self, i: int) -> Path:
        return self.dir / f"n{i}.toml"

    def start(self, i: int, *, wait: bool = True, timeout: float = 20.0) -> None:
        if i in self.procs and self.procs[i].poll() is None:
            raise RuntimeError(f"node {i} is already running")
        log = (self.dir / f"n{i}.log").open("ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if i in self.pythonpath:
            env["PYTHONPATH"] = self.pythonpath[i]
        prefix = self.exec_prefix(i) if self.exec_prefix is not None else []
        proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "aspen.cli", "node",
             "--config", str(self.config_path(i))],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            cwd=self.dir,
        )
        log.close()
        self.procs[i] = proc
        _LIVE.add(proc)
        if wait:
            self.wait_serving(i, timeout)

    def start_all(self, timeout: float = 30.0) -> None:
        for i in self.voters:
            self.start(i, wait=False)
        for i in self.voters:
            self.wait_serving(i, timeout)

    def alive(self, i: int) -> bool:
        return i in self.procs and self.procs[i].poll() is None

    def running(self) -> list[int]:
        return [i for i in sorted(self.procs) if self.alive(i) and i not in self.paused]

    def kill(self, i: int, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[i]
        if proc.poll() is None:
            if i in self.paused and sig != signal.SIGKILL:
                proc.send_signal(signal.SIGCONT)
            proc.send_signal(sig)
            proc.wait(15)
        self.paused.discard(i)
        _LIVE.discard(proc)

    def stop(self, i: int) -> int:
        """SIGTERM (graceful); the exit status."""
        self.kill(i, signal.SIGTERM)
        return int(self.procs[i].returncode)

    def pause(self, i: int) -> None:
        self.procs[i].send_signal(signal.SIGSTOP)
        self.paused.add(i)

    def resume(self, i: int) -> None:
        self.procs[i].send_signal(signal.SIGCONT)
        self.paused.discard(i)

    def restart(self, i: int, *, wait: bool = True) -> None:
        self.kill(i)
        self.start(i, wait=wait)

    def close(self) -> None:
        for i, proc in self.procs.items():
            if proc.poll() is None:
                if i in self.paused:
                    proc.send_signal(signal.SIGCONT)
                proc.kill()
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
            _LIVE.discard(proc)

    def __enter__(self) -> DaemonCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- looking at the cluster -----------------------------------------------------------------

    def http(self, i: int) -> str:
        return f"{self.members[i].host}:{self.members[i].http}"

    def resp_port(self, i: int) -> int:
        return self.members[i].resp

    def raft_address(self, i: int) -> str:
        return f"{self.members[i].host}:{self.members[i].raft}"

    def client(self, i: int, **kw: Any) -> redis.Redis:
        kw.setdefault("socket_timeout", 10)
        kw.setdefault("socket_connect_timeout", 2)
        return redis.Redis(host=self.members[i].host, port=self.resp_port(i), **kw)

    def status(self, i: int, timeout: float = 2.0) -> dict[str, Any]:
        code, body = http_json(self.http(i), "/status", timeout=timeout)
        if code != 200:
            raise RuntimeError(f"node {i}: /status {code}: {body}")
        return body  # type: ignore[no-any-return]

    def wait_serving(self, i: int, timeout: float = 20.0) -> None:
        """The process is up and answers PING on RESP and /status on HTTP."""

        def ready() -> bool:
            if not self.alive(i):
                raise RuntimeError(f"node {i} exited with {self.procs[i].returncode}; "
                                   f"see {self.dir / f'n{i}.log'}")
            with self.client(i, socket_timeout=1) as c:
                c.ping()
            self.status(i, timeout=1)
            return True

        wait_until(f"node {i} to serve", ready, timeout)

    def leader(self, among: Iterable[int] | None = None) -> int | None:
        """The leader that every responsive node among `among` agrees on, else None."""
        views: dict[int, int | None] = {}
        for i in among if among is not None else self.running():
            try:
                st = self.status(i, timeout=1)
            except Exception:
                continue
            views[i] = st["leader"] if st["leader"] else None
        leaders = set(views.values())
        if len(leaders) != 1 or None in leaders:
            return None
        (lead,) = leaders
        assert lead is not None
        if lead not in views:
            return None  # everyone names a node we cannot see leading
        st = self.status(lead, timeout=1)
        return lead if st["role"] == "leader" else None

    def wait_leader(self, among: Iterable[int] | None = None, timeout: float = 20.0,
                    exclude: int | None = None) -> int:
        nodes = list(among) if among is not None else None

        def find() -> int | None:
            lead = self.leader(nodes)
            return None if lead is None or lead == exclude else lead

        return wait_until("an agreed leader", find, timeout)

    def wait_applied(self, index: int, nodes: Iterable[int], timeout: float = 20.0) -> None:
        for i in nodes:

            def applied(node: int = i) -> bool:
                return bool(self.status(node)["applied_index"] >= index)

            wait_until(f"node {i} to apply index {index}", applied, timeout)

    def log_tail(self, i: int, lines: int = 30) -> str:
        path = self.dir / f"n{i}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def started_cluster(n: int, base_dir: Path, **options: Any) -> Iterator[DaemonCluster]:
    """A started `DaemonCluster` (options as its constructor's); if the body fails, every
    node's log tail is printed (pytest shows it with the failure)."""
    with DaemonCluster(n, base_dir, **options) as c:
        c.start_all()
        try:
            yield c
        except BaseException:
            for i in c.members:
                print(f"--- n{i}.log\n{c.log_tail(i)}")
            raise
