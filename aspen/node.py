"""One Aspen node: the trio supervisor that wires the keyspace to the RESP server.

For now a node is standalone: its keyspace lives in memory and every op runs at once on the
local executor (`aspen.kv.local`). The cluster runtime will put the Raft driver between the
session and the executor — `_LocalSession.handle` is the one place that changes: it will
hand ops to the driver and return a `Deferred` reply that completes at commit.

The node is also the `ServerContext` the kv sessions ask about the server: the password,
CONFIG GET, INFO facts, CLIENT LIST and the wall clock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable

import trio

from aspen import __version__
from aspen.config import Config
from aspen.kv.glob import glob_match
from aspen.kv.keyspace import Keyspace
from aspen.kv.local import LocalExecutor
from aspen.kv.ops import Op, ReadOp, TxnOp, WriteOp
from aspen.kv.session import ClientInfo, Session
from aspen.resp.server import Connection, RespServer, ServerOptions

log = logging.getLogger("aspen.node")

__all__ = ["Node", "run_node"]

_OPS = (ReadOp, WriteOp, TxnOp)
ACTIVE_EXPIRE_INTERVAL = 0.1  # seconds between active-expiry passes (Redis: hz 10)
ACTIVE_EXPIRE_BATCH = 200  # most keys dropped per pass, so a pass never stalls clients


class _LocalSession(Session):
    """A kv `Session` that runs its ops at once on the local executor.

    It *is* the server's connection handler: `protocol`, `should_close` and `authenticated`
    are the session's own attributes, so the per-command path has no adapter in between.
    """

    def __init__(self, client_id: int, ctx: Node, execute: Callable[[Op], object]) -> None:
        super().__init__(client_id, ctx)
        self._execute = execute

    def handle(self, argv: list[bytes]) -> object:
        out = Session.handle(self, argv)
        if type(out) in _OPS:
            return self.finish(out, self._execute(out))  # type: ignore[arg-type]
        return out


class Node:
    """A standalone node: keyspace + local executor + RESP server, and the ServerContext."""

    def __init__(self, config: Config, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        n = config.node
        self._requirepass = n.requirepass.encode() if n.requirepass else None
        self.keyspace = Keyspace()
        self.executor = LocalExecutor(self.keyspace, self.wall_clock_ms)
        self.server = RespServer(
            self._new_connection,
            ServerOptions(
                max_bulk_len=n.proto_max_bulk_len,
                max_argv=n.max_argv,
                max_clients=n.max_clients,
                max_query_buffer=n.client_query_buffer_limit,
                max_output_buffer=n.max_output_buffer,
                idle_timeout=n.timeout,
                shutdown_grace=n.shutdown_grace,
            ),
        )
        self.started_at = clock()
        self.ports: list[int] = []

    # -- ServerContext ---------------------------------------------------------------------------

    @property
    def requirepass(self) -> bytes | None:
        return self._requirepass

    def wall_clock_ms(self) -> int:
        return int(self._clock() * 1000)

    def config_get(self, pattern: bytes) -> list[tuple[bytes, bytes]]:
        settings = self.config.redis_settings()
        if self.ports:
            settings = [(k, str(self.ports[0]).encode()) if k == b"port" else (k, v)
                        for k, v in settings]
        return [(k, v) for k, v in settings if glob_match(pattern, k, nocase=True)]

    def info_sections(self) -> dict[str, list[tuple[str, str]]]:
        uptime = int(self._clock() - self.started_at)
        server = self.server
        return {
            "server": [
                ("aspen_version", __version__),
                ("redis_mode", "standalone"),
                ("os", f"{os.uname().sysname} {os.uname().release} {os.uname().machine}"),
                ("process_id", str(os.getpid())),
                ("tcp_port", str(self.ports[0] if self.ports else self.config.node.port)),
                ("uptime_in_seconds", str(uptime)),
                ("uptime_in_days", str(uptime // 86400)),
                ("executable", sys.argv[0]),
                ("config_file", str(self.config.source.resolve()) if self.config.source else ""),
            ],
            "clients": [
                ("connected_clients", str(len(server.connections))),
                ("maxclients", str(self.config.node.max_clients)),
            ],
            "memory": [("used_memory_rss", str(_rss_bytes()))],
            "stats": [
                ("total_connections_received", str(server.stats_connections_received)),
                ("total_commands_processed", str(server.stats_commands_processed)),
                ("rejected_connections", str(server.stats_rejected_connections)),
                ("total_reads_processed", str(server.stats_reads)),
                ("total_writes_processed", str(server.stats_writes)),
            ],
            # A standalone node keeps its keyspace in memory only (no AOF, no RDB).
            "persistence": [("loading", "0"), ("aof_enabled", "0")],
        }

    def client_list(self) -> list[ClientInfo]:
        now = trio.current_time()
        out = []
        for conn in list(self.server.connections.values()):
            handler = conn.handler
            if isinstance(handler, Session):
                out.append(
                    handler.client_info(
                        addr=conn.addr,
                        laddr=conn.laddr,
                        age_s=int(now - conn.created),
                        idle_s=int(now - conn.last_active),
                    )
                )
        return out

    # -- running ---------------------------------------------------------------------------------

    def _new_connection(self, conn: Connection) -> _LocalSession:
        return _LocalSession(conn.client_id, self, self.executor.execute)

    async def _active_expiry(self) -> None:
        """Drop expired keys in small batches, as Redis's active expire cycle does."""
        while True:
            await trio.sleep(ACTIVE_EXPIRE_INTERVAL)
            self.executor.expire_some(ACTIVE_EXPIRE_BATCH)

    async def run(
        self,
        *,
        handle_signals: bool = True,
        task_status: trio.TaskStatus[list[int]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve until SIGTERM/SIGINT (or `self.server.shutdown()`), then drain and return."""
        n = self.config.node
        n.dir.mkdir(parents=True, exist_ok=True)
        # Catch signals before announcing ourselves: whoever reads the "listening" line may
        # send SIGTERM at once.
        with contextlib.ExitStack() as stack:
            signals = (
                stack.enter_context(trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT))
                if handle_signals
                else None
            )
            await self._run(signals, task_status)
        log.info("aspen node stopped")

    async def _run(
        self, signals: AsyncIterator[int] | None, task_status: trio.TaskStatus[list[int]]
    ) -> None:
        n = self.config.node
        # Bind before starting tasks, so "address in use" surfaces as a plain OSError.
        listeners = await trio.open_tcp_listeners(n.port, host=n.bind)
        async with trio.open_nursery() as nursery:
            await nursery.start(self._serve, listeners, nursery.cancel_scope)
            self.ports = [listener.socket.getsockname()[1] for listener in listeners]
            for listener in listeners:
                host, port = listener.socket.getsockname()[:2]
                print(f"aspen node listening on {_hostport(host, port)}", file=sys.stderr,
                      flush=True)
            nursery.start_soon(self._active_expiry)
            if signals is not None:
                nursery.start_soon(self._watch_signals, signals)
            task_status.started(self.ports)

    async def _serve(
        self,
        listeners: list[trio.SocketListener],
        done: trio.CancelScope,
        *,
        task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        await self.server.serve_listeners(listeners, task_status=task_status)
        done.cancel()  # the server has drained: stop the node's other tasks

    async def _watch_signals(self, signals: AsyncIterator[int]) -> None:
        async for signum in signals:
            name = signal.Signals(signum).name
            print(f"aspen node: {name}, shutting down", file=sys.stderr, flush=True)
            self.server.shutdown()


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def run_node(config: Config) -> int:
    """Run a node in this process until it is told to stop; the exit status."""
    trio.run(Node(config).run)
    return 0
