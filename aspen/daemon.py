"""One Aspen node: the trio supervisor that wires the cluster runtime to its servers.

Every node is a member of a Raft group (`aspen.cluster.ClusterNode`): a node without peers
is a one-node group that initialises itself, so a standalone node and a cluster member run
the same code path and both keep every acknowledged write in the fsynced Raft log.

The node supervises, in one nursery: the cluster runtime (driver, transport, ticker,
expiry), the RESP server (each connection: the runtime's `ClusterConnection` -> a kv
`Session`, which routes ASPEN.* admin commands to the node's `AdminCommands`) and the HTTP
control plane (`aspen.api.control`).
It is also the `ServerContext` the kv sessions ask about the server: the password,
CONFIG GET, INFO facts (with a `# Raft` section), CLIENT LIST and the wall clock.

Pub/sub: the node's `PubSubHub` (aspen.pubsub) holds its connections' subscriptions; the
mesh task carries every PUBLISH to the other nodes, which deliver it to their own subscribers.

SIGTERM/SIGINT: hand leadership to another voter (no election pause for clients), stop
accepting clients, drain the commands received, close, stop the runtime, exit 0.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import logging
import os
import signal
import ssl
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import trio

from aspen import __version__
from aspen.acl.state import EPOCH
from aspen.api.control import ControlError, ControlPlane
from aspen.api.http import HttpServer
from aspen.cluster import ClusterNode
from aspen.cluster.blocking import wait_hangup
from aspen.cluster.connection import ClusterConnection
from aspen.kv.glob import glob_match
from aspen.kv.keyspace import Keyspace
from aspen.kv.notify import Notifier
from aspen.kv.session import COMPAT_VERSION, ClientInfo, Session
from aspen.kv.spec import Route
from aspen.limits import LIMITS
from aspen.node_config import Config, ConfigError, parse_config
from aspen.pubsub import PubSubHub
from aspen.pubsub.mesh import run_mesh
from aspen.rdb.save import Saver
from aspen.resp.server import Connection, Deferred, RespServer, ServerOptions
from aspen.resp.values import OK, Error
from aspen.server.commands import ServerCommands
from aspen.server.info import node_sections
from aspen.server.latency import LatencyMonitor
from aspen.server.live_config import NodeHooks, ServerConfig
from aspen.server.monitor import Monitors
from aspen.server.nodeconfig import FIXED, HONOURED_KEYS, rewrite_file, toml_value
from aspen.server.params import PARAMS, Invalid, notify_flags
from aspen.server.pause import PauseGate
from aspen.server.slowlog import SlowLog
from aspen.server.stats import CommandStats
from aspen.tls import server_context

log = logging.getLogger("aspen.daemon")

__all__ = ["AdminCommands", "Node", "run_node"]

class AdminCommands(ServerCommands):
    """The ASPEN.* cluster administration commands and the per-node server commands
    (`Route.NODE` in the command table; aspen.server.commands: SLOWLOG, WAIT, CLIENT KILL).

    The session has already checked them like any command (arity, AUTH, subscribed mode; they
    run at once inside MULTI) and calls the method its spec names. One per connection (`me`:
    its session)."""

    __slots__ = ("_me", "_node", "_push")

    def __init__(self, node: Node, me: Session | None = None, push: Any = None) -> None:
        self._node = node
        self._me = me
        self._push = push

    def cmd_status(self, argv: list[bytes]) -> object:
        return _status_reply(self._node.control.status())

    def cmd_save(self, argv: list[bytes]) -> object:
        return self._node.saver.cmd_save(argv)

    def cmd_bgsave(self, argv: list[bytes]) -> object:
        return self._node.saver.cmd_bgsave(argv)

    def cmd_lastsave(self, argv: list[bytes]) -> object:
        return self._node.saver.cmd_lastsave(argv)

    def cmd_init(self, argv: list[bytes]) -> object:
        try:
            ids = [_node_id(a) for a in argv[1:]]
            self._node.control.init(ids or None)
        except ValueError as exc:
            return Error(f"ERR {exc}")
        except ControlError as exc:
            return Error(f"ERR {exc}")
        return OK

    def cmd_add_learner(self, argv: list[bytes]) -> object:
        try:
            learner = _node_id(argv[1])
        except ValueError as exc:
            return Error(f"ERR {exc}")
        address = argv[2].decode("utf-8", "replace")
        control = self._node.control
        return _deferred(lambda: control.add_learner(learner, address))

    def cmd_change_membership(self, argv: list[bytes]) -> object:
        try:
            ids = [_node_id(a) for a in argv[1:]]
        except ValueError as exc:
            return Error(f"ERR {exc}")
        control = self._node.control
        return _deferred(lambda: control.change_membership(ids))

    def cmd_transfer_leader(self, argv: list[bytes]) -> object:
        try:
            target = _node_id(argv[1])
        except ValueError as exc:
            return Error(f"ERR {exc}")
        control = self._node.control
        return _deferred(lambda: control.transfer_leader(target))


def _node_id(arg: bytes) -> int:
    if not arg.isdigit() or int(arg) <= 0:
        shown = arg.decode(errors="replace")
        raise ValueError(f"node id must be a positive integer, got '{shown}'")
    return int(arg)


def _deferred(op: Callable[[], Coroutine[Any, Any, object]]) -> Deferred:
    async def run() -> object:
        try:
            await op()
        except ControlError as exc:
            return Error(f"ERR {exc}")
        return OK

    return Deferred(run)


def _status_reply(st: dict[str, Any]) -> list[bytes]:
    """ASPEN.STATUS: a flat field/value list (redis-cli prints it one per line)."""
    m = st["membership"]
    pairs = [
        ("id", st["id"]), ("role", st["role"]), ("term", st["term"]),
        ("leader", st["leader"] or ""), ("commit_index", st["commit_index"]),
        ("applied_index", st["applied_index"]), ("last_index", st["last_index"]),
        ("snapshot_index", st["snapshot_index"]),
        ("voters", ",".join(map(str, m["voters"]))),
        ("learners", ",".join(map(str, m["learners"]))),
        ("read_consistency", st["read_consistency"]),
    ]
    for peer, match in st["match_index"].items():
        pairs.append((f"peer_{peer}_match", "" if match is None else match))
    out: list[bytes] = []
    for k, v in pairs:
        out += [k.encode(), str(v).encode()]
    return out


def _human(n: int) -> str:
    """Redis's bytesToHuman (B, K, M, G with two decimals)."""
    if n < 1024:
        return f"{n}B"
    for unit, size in (("K", 1024), ("M", 1024**2), ("G", 1024**3), ("T", 1024**4)):
        if n < size * 1024 or unit == "T":
            return f"{n / size:.2f}{unit}"
    return f"{n}B"


class _TrustedContext:
    """The ServerContext of control-plane sessions: the HTTP layer checked the password."""

    def __init__(self, node: Node) -> None:
        self._node = node

    requirepass = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._node, name)


class Node:
    """One node: cluster runtime + RESP server + HTTP control plane, and the ServerContext."""

    def __init__(self, config: Config, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        n = config.node
        self._requirepass = n.requirepass.encode() if n.requirepass else None
        self.cluster = ClusterNode(config.cluster_settings())
        self.pubsub = PubSubHub()
        self.admin = AdminCommands(self)
        self.saver = Saver(lambda: self.cluster.keyspace.snapshot(),
                           lambda: n.dir / n.dbfilename, clock)
        self.control = ControlPlane(
            self.cluster, config, lambda: Session(0, _TrustedContext(self), trusted=True)
        )
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
                normal_output_limit=n.client_output_buffer_limit_normal[0],
                normal_soft_limit=n.client_output_buffer_limit_normal[1],
                normal_soft_seconds=n.client_output_buffer_limit_normal[2],
                pubsub_output_limit=n.client_output_buffer_limit_pubsub[0],
                pubsub_soft_limit=n.client_output_buffer_limit_pubsub[1],
                pubsub_soft_seconds=n.client_output_buffer_limit_pubsub[2],
            ),
        )
        self.control.sampler.resp = self.server  # the console's latency, clients and ops
        self.command_stats = CommandStats()
        self.slowlog = SlowLog()
        self.pause = PauseGate()  # CLIENT PAUSE on this node
        self.monitors = Monitors()  # MONITOR's connections
        self.latency = LatencyMonitor()  # LATENCY's events
        self.notifier = Notifier(self.pubsub.deliver)  # events of applied writes, this node's
        self.startup_rss = self._peak_rss = _rss_bytes()
        self.server_config = self._server_config()
        self.started_at = clock()
        self.ports: list[int] = []
        self.http_port: int | None = None
        self.raft_address: str | None = None

    # -- ServerContext ---------------------------------------------------------------------------

    @property
    def requirepass(self) -> bytes | None:
        return self._requirepass

    @property
    def keyspace(self) -> Keyspace:
        return self.cluster.keyspace  # looked up each time: a snapshot install replaces it

    def wall_clock_ms(self) -> int:
        return int(self._clock() * 1000)

    def _server_config(self) -> ServerConfig:
        """CONFIG's parameters on this node: the honoured ones change the running server."""
        initial = {k.decode(): v.decode() for k, v in self.config.redis_settings()}
        fixed = {name: (initial.get(name, ""), why) for name, why in FIXED.items()}
        fixed["tls-port"] = (str(self.config.tls.port), FIXED["tls-port"])
        facts = {k: v for k, v in initial.items() if k not in fixed}

        def requirepass(value: str) -> None:
            self._requirepass = value.encode() or None

        def notify(value: str) -> None:
            self.notifier.flags = notify_flags(value)
            self.cluster.set_notifier(self.notifier if self.notifier.flags else None)

        def limit(name: str) -> Callable[[str], None]:
            """A setting of aspen.limits' registry (client limits, maxmemory)."""
            def apply(value: str) -> None:
                try:
                    LIMITS[name].set(self, value)
                except ValueError as exc:
                    raise Invalid(str(exc)) from None
            return apply

        honoured: dict[str, Callable[[str], None]] = {name: limit(name) for name in LIMITS}
        honoured |= {
            "requirepass": requirepass,
            "notify-keyspace-events": notify,
            "slowlog-log-slower-than": lambda v: setattr(self.slowlog, "slower_than", int(v)),
            "slowlog-max-len": lambda v: self.slowlog.set_max_len(int(v)),
            "latency-monitor-threshold":
                lambda v: setattr(self.latency, "threshold_ms", int(v)),
        }
        rewrite = self._rewrite_config if self.config.source is not None else None
        hooks = NodeHooks(honoured=honoured, fixed=fixed, rewrite=rewrite,
                          resetstat=self._reset_stats)
        config = ServerConfig(self.config.redis, hooks, facts=facts)
        notify(config["notify-keyspace-events"])
        for name, apply in honoured.items():  # what the [redis] table set takes effect
            if name != "notify-keyspace-events" and config[name] != config.baseline[name]:
                apply(config[name])
        return config

    def _rewrite_config(self, changed: dict[str, str]) -> None:
        """CONFIG REWRITE: [node]'s honoured keys and the other changed parameters ([redis])
        into the file the node was started from."""
        source = self.config.source
        assert source is not None
        values = self.server_config.values
        node: dict[str, str | None] = {}
        for name, key in HONOURED_KEYS.items():
            node[key] = _toml_node_value(name, values[name])
        redis: dict[str, str | None] = {
            p.name: (toml_value(changed[p.name]) if p.name in changed else None)
            for p in PARAMS if p.name not in HONOURED_KEYS and p.name not in FIXED
        }
        rewrite_file(source, {"node": node, "redis": redis},
                     check=lambda data: parse_config(data, base_dir=source.parent))

    def config_get(self, pattern: bytes) -> list[tuple[bytes, bytes]]:
        # the limits as they are now (aspen.limits: a CONFIG SET may have changed them)
        settings = [(k, LIMITS[k.decode()].get(self).encode()) if k.decode() in LIMITS
                    else (k, v) for k, v in self.config.redis_settings()]
        if self.ports:
            settings = [(k, str(self.ports[0]).encode()) if k == b"port" else (k, v)
                        for k, v in settings]
        return [(k, v) for k, v in settings if glob_match(pattern, k, nocase=True)]

    def info_sections(self) -> dict[str, list[tuple[str, str]]]:
        rss = _rss_bytes()
        self._peak_rss = max(self._peak_rss, rss)
        return node_sections(self, rss, self._peak_rss)

    # facts INFO reports (aspen.server.info)
    compat_version = COMPAT_VERSION
    aspen_version = __version__

    @property
    def build_id(self) -> str:
        return hashlib.sha1(__version__.encode()).hexdigest()[:15]

    @property
    def replication_id(self) -> str:
        """The Raft group's id as Redis's 40-hex replication id (the same on every node)."""
        return hashlib.sha1(self.config.raft.cluster_id.encode()).hexdigest()

    def peer_resp(self, peer: object) -> tuple[str, int]:
        """Where node `peer` serves Redis clients, as far as [peers] says (else its raft host)."""
        if str(peer) == str(self.config.node.id):
            return self.config.node.bind, self.ports[0] if self.ports else self.config.node.port
        found = self.config.peers.get(int(str(peer)))
        address = (found.resp or found.raft) if found is not None else ""
        host, _, port = address.rpartition(":")
        return (host.strip("[]") or "?", int(port) if port.isdigit() and found is not None
                and found.resp else 0)

    def _reset_stats(self) -> None:
        self.server.reset_stats()
        self.command_stats.reset()

    def _memory_info(self) -> list[tuple[str, str]]:
        """INFO memory: used_memory is the keyspace's estimate (aspen.kv.memory), the figure
        maxmemory is compared with, while maxmemory is set; else (no estimate is kept) the
        process's resident size, which used_memory_rss always is."""
        ks, guard = self.keyspace, self.cluster.memory
        used = ks.total_used_memory() if ks.track_memory else _rss_bytes()
        return [
            ("used_memory", str(used)),
            ("used_memory_human", _human(used)),
            ("used_memory_rss", str(_rss_bytes())),
            ("maxmemory", str(guard.maxmemory)),
            ("maxmemory_human", _human(guard.maxmemory)),
            ("maxmemory_policy", guard.policy),
        ]

    def client_list(self) -> list[ClientInfo]:
        now = trio.current_time()
        out = []
        for conn in list(self.server.connections.values()):
            handler = conn.handler
            if isinstance(handler, ClusterConnection):
                handler = handler.session
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

    def _new_connection(self, conn: Connection) -> ClusterConnection:
        subscriber = self.pubsub.client(conn.push)
        conn.on_close.append(subscriber.close)
        conn.subscribed = lambda: subscriber.count > 0  # its output limits: pubsub's
        session = Session(conn.client_id, self, pubsub=subscriber)
        session.layers[Route.NODE] = AdminCommands(self, session, conn.push)
        conn.on_close.append(functools.partial(self.monitors.remove, conn.client_id))
        session.addr = conn.addr
        handler: ClusterConnection = self.cluster.connection_handler(session)
        handler.pause = self.pause
        sock = conn.sock
        if sock is not None:  # lets a client parked in BLPOP & co. be dropped when it leaves
            handler.hangup = functools.partial(wait_hangup, sock)
        return handler

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
        tls = self.config.tls
        tls_listeners: list[trio.SocketListener] = []
        serving_tls: tuple[list[trio.SocketListener], ssl.SSLContext] | None = None
        if tls.port:
            tls_listeners = await trio.open_tcp_listeners(tls.port, host=n.bind)
            serving_tls = (tls_listeners, server_context(tls))
        http_listeners: list[trio.SocketListener] = []
        if self.config.http.listen:
            host, _, port = self.config.http.listen.rpartition(":")
            http_listeners = await trio.open_tcp_listeners(int(port), host=host.strip("[]"))
        async with trio.open_nursery() as outer:
            await outer.start(self.cluster.run)
            await outer.start(run_mesh, self.pubsub, self.cluster)
            outer.start_soon(self.control.sampler.run)
            transport = self.cluster.transport
            self.raft_address = getattr(transport, "address", None)
            async with trio.open_nursery() as nursery:
                await nursery.start(self._serve, listeners, serving_tls, nursery.cancel_scope)
                self.ports = [listener.socket.getsockname()[1] for listener in listeners]
                self.server_config.fix("port", str(self.ports[0]))
                if http_listeners:
                    http = HttpServer(self.control.routes())
                    served: list[trio.abc.Listener[Any]] = list(http_listeners)
                    if tls.http:
                        https = server_context(tls, verify="no")  # the password guards it
                        served = [trio.SSLListener(listener, https, https_compatible=True)
                                  for listener in http_listeners]
                    nursery.start_soon(trio.serve_listeners, http.handle_connection, served)
                    self.http_port = http_listeners[0].socket.getsockname()[1]
                for listener in listeners:
                    host, port = listener.socket.getsockname()[:2]
                    print(f"aspen node listening on {_hostport(host, port)}", file=sys.stderr,
                          flush=True)
                for listener in tls_listeners:
                    host, port = listener.socket.getsockname()[:2]
                    print(f"aspen node tls on {_hostport(host, port)}", file=sys.stderr,
                          flush=True)
                for listener in http_listeners:
                    host, port = listener.socket.getsockname()[:2]
                    print(f"aspen node http on {_hostport(host, port)}", file=sys.stderr,
                          flush=True)
                print(f"aspen node {n.id} raft on {self.raft_address}", file=sys.stderr,
                      flush=True)
                if signals is not None:
                    nursery.start_soon(self._watch_signals, signals)
                nursery.start_soon(self._close_revoked_clients)
                task_status.started(self.ports)
            outer.cancel_scope.cancel()  # clients are drained: stop the runtime (storage closes)

    async def _serve(
        self,
        listeners: list[trio.SocketListener],
        tls: tuple[list[trio.SocketListener], ssl.SSLContext] | None,
        done: trio.CancelScope,
        *,
        task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        await self.server.serve_listeners(listeners, tls=tls, task_status=task_status)
        done.cancel()  # the server has drained: stop the node's other tasks

    async def _close_revoked_clients(self) -> None:
        """Close the connections an ACL change took the right from (a deleted user, revoked
        channels), on every node as it applies the change; polled, cheap while nothing
        changes."""
        seen = EPOCH.value
        while True:
            await trio.sleep(_ACL_POLL)
            if EPOCH.value == seen:
                continue
            seen = EPOCH.value
            for conn in list(self.server.connections.values()):
                session = getattr(conn.handler, "session", None)
                why = session.acl_revocation() if isinstance(session, Session) else None
                if why is not None:
                    conn.kill(why)

    async def _watch_signals(self, signals: AsyncIterator[int]) -> None:
        async for signum in signals:
            name = signal.Signals(signum).name
            print(f"aspen node: {name}, shutting down", file=sys.stderr, flush=True)
            if self.cluster.is_leader():
                with trio.move_on_after(2):
                    await self.cluster.step_down()
            self.cluster.blocking.shutdown()  # release clients parked in BLPOP & co.
            self.server.shutdown()


_ACL_POLL = 0.05  # seconds between looks at the ACL user table's change counter


def _toml_node_value(name: str, value: str) -> str:
    """A Redis parameter's value as its [node] key's TOML value."""
    text = name in ("requirepass", "maxmemory-policy", "client-output-buffer-limit")
    return toml_value(value if text else int(value))


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def tune_gc() -> None:
    """Fewer cyclic-GC passes in a serving process.

    Every in-flight request allocates a few tracked objects (tasks, events, replies), so at
    the default thresholds (700, 10, 10) the collector runs thousands of times a second and
    its older generations keep walking everything in flight: about a quarter of the leader's
    CPU per pipelined SET (docs/benchmarks.md, "Replicated path"). Data held by the keyspace
    (bytes in dicts) is not tracked, so rarer collections cost little memory. The objects of
    start-up (modules, config) are frozen out of every collection.
    """
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


def run_node(config: Config) -> int:
    """Run a node in this process until it is told to stop; the exit status."""
    import zmq

    from aspen.storage import StorageError

    tune_gc()
    try:
        trio.run(Node(config).run)
    except BaseException as exc:
        # A start-up failure arrives wrapped in nursery exception groups: report its one cause
        # in a line (data dir in use, port taken, damaged storage), not as a traceback.
        cause: BaseException = exc
        while isinstance(cause, BaseExceptionGroup) and len(cause.exceptions) == 1:
            cause = cause.exceptions[0]
        if isinstance(cause, StorageError | OSError | zmq.ZMQError | ConfigError):
            print(f"aspen node: {type(cause).__name__}: {cause}", file=sys.stderr)
            return 1
        raise
    return 0
