"""The systems under test, one context manager each: started on free loopback ports in the
benchmark's temp dir, stopped (process groups killed) on exit, whatever happened.

Aspen runs with its default Raft timing and read consistency (read from `aspen.node_config`, so
the benchmark follows the defaults as they change); only the ports and data dirs are chosen
here. Every target yields a `Running`: the port to drive (the leader's, for replicated ones)
and the pids whose CPU time counts as the server's.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs

from aspen.node_config import RaftSettings
from harness.bench.procs import BenchCluster, Server, env_with_path, redis_argv, start_server
from harness.daemons import free_ports, wait_until
from harness.resp_wire import RespClient

__all__ = ["Running", "Source", "aspen_cluster", "aspen_standalone", "export_source",
           "redis_target", "syncobj_cluster"]

ROOT = Path(__file__).resolve().parents[2]


@attrs.frozen
class Source:
    """Another Aspen source tree to run daemons from: `label` names it in the report; its
    targets are named `aspen-N-base`."""

    label: str
    root: Path


def export_source(ref: str, into: Path) -> Source:
    """The tree of git `ref` of this repository, exported (no build products, never the
    working tree's) into `into`/<ref>: the "before" of a before/after comparison."""
    commit = subprocess.run(["git", "rev-parse", "--short", f"{ref}^{{commit}}"], cwd=ROOT,
                            check=True, capture_output=True, text=True).stdout.strip()
    dest = into / f"src-{commit}"
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "archive", "--format=tar", commit], cwd=ROOT, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return Source(ref if ref == commit else f"{ref} ({commit})", dest)


@attrs.define
class Running:
    name: str
    label: str
    port: int
    pids: Callable[[], list[int]]
    info: dict[str, Any] = attrs.Factory(dict)
    cluster: BenchCluster | None = None


@contextlib.contextmanager
def redis_target(workdir: Path, *, durable: bool) -> Iterator[Running]:
    name = "redis-durable" if durable else "redis-ceiling"
    label = ("redis-server (appendfsync always)" if durable
             else "redis-server (no persistence)")
    (port,) = free_ports(1)
    wd = workdir / name
    wd.mkdir(parents=True, exist_ok=True)
    server = start_server(name, redis_argv(port, wd, durable), port, wd)
    try:
        yield Running(name, label, port, lambda: [server.pid],
                      info={"persistence": "appendonly yes, appendfsync always" if durable
                            else "none (save '', appendonly no)"})
    finally:
        server.stop()


def _syncobj_info(port: int) -> dict[str, str]:
    client = RespClient(port)
    try:
        raw = client.call([b"INFO"])
    finally:
        client.close()
    text = raw.decode() if isinstance(raw, bytes) else ""
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


@contextlib.contextmanager
def syncobj_cluster(workdir: Path, n: int = 3, timeout: float = 30.0) -> Iterator[Running]:
    """n PySyncObj nodes, each behind its RESP front (`harness.bench.syncobj_front`)."""
    wd = workdir / "pysyncobj"
    wd.mkdir(parents=True, exist_ok=True)
    ports = free_ports(2 * n)
    raft = [f"127.0.0.1:{ports[2 * i]}" for i in range(n)]
    resp = [ports[2 * i + 1] for i in range(n)]
    servers: list[Server] = []
    try:
        for i in range(n):
            argv = [sys.executable, "-m", "harness.bench.syncobj_front", "--self", raft[i],
                    "--resp-port", str(resp[i]), "--journal", str(wd / f"n{i + 1}.journal")]
            for j in range(n):
                if j != i:
                    argv += ["--partner", raft[j]]
            servers.append(start_server(f"n{i + 1}", argv, resp[i], wd, timeout,
                                        env=env_with_path()))

        def leader() -> int | None:
            views = [_syncobj_info(p) for p in resp]
            leaders = {v.get("leader") for v in views}
            if len(leaders) != 1 or not next(iter(leaders)):
                return None
            for p, v in zip(resp, views, strict=True):
                if v.get("role") == "leader":
                    return p
            return None

        port = wait_until("a PySyncObj leader", leader, timeout)
        yield Running("pysyncobj", f"PySyncObj {n} nodes (RESP front)", port,
                      lambda: [s.pid for s in servers if s.proc.poll() is None],
                      info={"nodes": n, "durability": "journal in an mmap'd file, never fsynced",
                            "reads": "local replica (not linearizable)"})
    finally:
        for s in servers:
            s.stop()


@contextlib.contextmanager
def aspen_cluster(workdir: Path, n: int = 3, timeout: float = 60.0,
                  raft: dict[str, Any] | None = None, name: str = "",
                  source: Source | None = None) -> Iterator[Running]:
    """n real `aspen node` daemons (ZeroMQ, sqlite with fsync, default timing); `source`: run
    them from that tree instead of this checkout."""
    defaults = RaftSettings()
    name = name or f"aspen-{n}" + ("-base" if source else "")
    cluster = BenchCluster(n, workdir / name, tick_ms=defaults.tick_ms,
                           election_ticks=defaults.election_ticks, raft=raft)
    cluster.source_root = source.root if source else None
    try:
        cluster.start_all(timeout)
        lead = cluster.wait_leader(timeout=timeout)
        # Every node must agree on the leader's log before the first figure.
        commit = cluster.status(lead)["commit_index"]
        cluster.wait_applied(commit, cluster.voters, timeout)
        consistency = {i: cluster.status(i)["read_consistency"] for i in cluster.voters}
        yield Running(
            name, f"Aspen {n} nodes" + (f" @{source.label}" if source else ""),
            cluster.resp_port(lead), cluster.pids,
            info={"nodes": n, "leader": lead, "tick_ms": defaults.tick_ms,
                  "election_ticks": defaults.election_ticks, "storage": defaults.storage,
                  "transport": defaults.transport, "read_consistency": consistency,
                  "started": time.time()},
            cluster=cluster,
        )
    finally:
        cluster.close()


@contextlib.contextmanager
def aspen_standalone(workdir: Path, source: Source | None = None) -> Iterator[Running]:
    """One `aspen node` without --config: a Raft group of one (its own sqlite log, fsync on).

    Not a competitor but a bound: the leader of a 3-node cluster runs exactly this process's
    work (RESP front, sessions, keyspace, log, fsync) and also replicates every entry to two
    followers that apply it on the same cores, so it cannot do better than this."""
    (port,) = free_ports(1)
    name = "aspen-1" + ("-base" if source else "")
    wd = workdir / name
    argv = [sys.executable, "-m", "aspen.cli", "node", "--port", str(port),
            "--dir", str(wd / "data")]
    server = start_server(name, argv, port, wd,
                          env=env_with_path(root=source.root if source else None))
    try:
        yield Running(name, "Aspen 1 node (no followers)"
                      + (f" @{source.label}" if source else ""),
                      port, lambda: [server.pid],
                      info={"nodes": 1, "storage": "sqlite, fsync on",
                            "replication": "none (a Raft group of one)"})
    finally:
        server.stop()
