"""Node configuration: a TOML file -> frozen attrs classes, validated with errors naming the key.

    [node]
    bind = "127.0.0.1"            # address for Redis clients
    port = 6379                   # 0: any free port (the start-up log line names it)
    dir = "data"                  # relative paths are relative to the config file
    dbfilename = "dump.rdb"       # SAVE/BGSAVE write dir/dbfilename (an RDB file)
    requirepass = "s3cret"        # clients must AUTH; "" or absent: no password
    max_clients = 10000           # Redis maxclients
    timeout = 0                   # close clients idle this many seconds; 0: never
    proto_max_bulk_len = "512mb"  # largest bulk string a client may send (bytes or "64mb")
    max_argv = 2147483647         # most arguments in one command (Redis 7.0: INT_MAX)
    client_query_buffer_limit = "1gb"  # a client whose partial command outgrows this is closed
    max_output_buffer = "1gb"     # unsent replies beyond this pause reading that client
    client_output_buffer_limit_normal = "0 0 0"      # Redis's client-output-buffer-limit:
    client_output_buffer_limit_pubsub = "32mb 8mb 60"  # hard, soft, seconds (0: off)
    maxmemory = "0"               # the dataset's estimated size limit (docs/memory.md); 0: none
    maxmemory_policy = "noeviction"   # or allkeys-lru|lfu|random, volatile-lru|lfu|random|ttl
    maxmemory_samples = 5         # keys sampled per eviction choice
    shutdown_grace = 5.0          # SIGTERM: seconds to finish in-flight work before closing
    busy_reply_threshold = 5000   # ms a read-only script runs before others get BUSY
    databases = 16                # numbered databases (SELECT 0-15); the same on every node
    id = 1                        # this node's Raft id (a positive integer, unique in the cluster)

    [raft]                        # the replication group (see docs/getting-started.md)
    cluster_id = "aspen"          # every member must agree; messages from others are refused
    listen = "127.0.0.1:0"        # address of this node's peer transport
    transport = "zmq"             # zmq | websocket
    storage = "sqlite"            # sqlite | lmdb (under [node] dir)
    tick_ms = 50                  # one Raft tick
    election_ticks = 10           # election timeout (randomised up to twice this): 0.5-1 s
    heartbeat_ticks = 1           # (why these: docs/runtime.md, "Timing defaults")
    commit_linger_ms = 2          # a new commit index waits this long for the next append
    request_timeout = 5.0         # seconds a client command waits for a leader/commit
    read_consistency = "linearizable"   # linearizable | lease | stale
    snapshot_entries = 20000      # snapshot after this many applied entries ...
    snapshot_log_bytes = "64mb"   # ... or this many bytes of them
    bootstrap = [1, 2, 3]         # initial voters; empty: wait for POST /init (or ASPEN.INIT)

    [http]
    listen = "127.0.0.1:8001"     # control plane (health, metrics, init, ...); "": off

    [peers]                       # the other members: id -> raft address, or a table
    2 = "127.0.0.1:7002"
    3 = { raft = "127.0.0.1:7003", http = "127.0.0.1:8003", resp = "127.0.0.1:6381" }

    [security]
    curve_public_key = "n1.key"           # CURVE encryption of the peer mesh (zmq only);
    curve_secret_key = "n1.key_secret"    # all three keys or none
    curve_peer_keys = { 2 = "n2.key", 3 = "n3.key" }   # a file, or the 40-char Z85 text
    insecure = false              # true: allow exposed addresses without password/keys
    aclfile = "users.acl"         # ACL SAVE / ACL LOAD (users are replicated; not read at start)

    [redis]                       # any other Redis 7.0 parameter by its Redis name, checked
    notify-keyspace-events = "Ex" # as CONFIG SET checks it (aspen/server/nodeconfig.py);
    hash-max-listpack-entries = 256   # CONFIG REWRITE keeps this table up to date

    [tls]                         # Redis's tls-* settings (docs/security.md)
    port = 0                      # tls-port: RESP over TLS on node.bind; 0: off
    cert_file = "node.crt"        # tls-cert-file (PEM; the chain may follow the cert)
    key_file = "node.key"         # tls-key-file
    ca_cert_file = "ca.crt"       # tls-ca-cert-file: verifies client (and peer) certificates
    auth_clients = "yes"          # tls-auth-clients: yes | optional | no
    http = false                  # the control plane over HTTPS (same certificate)
    peers = false                 # the websocket transport over wss:// (mutual TLS)

A node without peers and without `bootstrap` is a standalone one-node Raft group (durable).

Every section is an attrs class whose fields carry a checker in their metadata; `load_config`
walks the sections generically, so a later section ([cluster], [raft], [http], [transport],
[security]) is one new class plus one line in `_SECTIONS`. Unknown sections and keys are
refused: a typo must not silently become a default.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from aspen.kv.memory import POLICIES
from aspen.limits import format_output_limits, parse_output_limit

__all__ = [
    "Config",
    "ConfigError",
    "HttpSettings",
    "LocalMember",
    "NodeSettings",
    "Peer",
    "RaftSettings",
    "SecuritySettings",
    "TlsSettings",
    "load_config",
    "parse_config",
    "render_local_config",
]


class ConfigError(ValueError):
    """A configuration problem, worded for the operator: "node.port: must be ..."."""


class _Invalid(Exception):
    """Raised by a checker; the loader prefixes the key and appends the offending value."""


Checker = Callable[[Any], Any]


def _setting(default: Any, check: Checker, doc: str) -> Any:
    return attrs.field(default=default, metadata={"check": check, "doc": doc})


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_range(low: int, high: int, what: str | None = None) -> Checker:
    def check(value: Any) -> int:
        if not _is_int(value) or not low <= value <= high:
            raise _Invalid(what or f"must be an integer {low}-{high}")
        return int(value)

    return check


_port_range = _int_range(0, 65535, "must be an integer 1-65535 (or 0: any free port)")


def _port(value: Any) -> int:
    port: int = _port_range(value)
    return port


def _seconds(value: Any) -> float:
    if not (_is_int(value) or isinstance(value, float)) or not 0 <= value < 10**9:
        raise _Invalid("must be a number of seconds >= 0")
    return float(value)


def _nonempty_str(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Invalid("must be a non-empty string")
    return value


def _file_name(value: Any) -> str:
    if not isinstance(value, str) or not value or "/" in value or value in (".", ".."):
        raise _Invalid("must be a file name (no path: the file goes in node.dir)")
    return value


def _optional_password(value: Any) -> str | None:
    if not isinstance(value, str):
        raise _Invalid("must be a string")
    if any(c in value for c in "\r\n\x00"):
        raise _Invalid("must not contain CR, LF or NUL")
    return value or None


def _path(value: Any) -> Path:
    if not isinstance(value, str) or not value:
        raise _Invalid("must be a path string")
    return Path(value)


_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2,
          "g": 1000**3, "gb": 1024**3}
_MEMORY = re.compile(r"^\s*(\d+)\s*([a-z]*)\s*$", re.IGNORECASE)


def _memory(low: int, high: int) -> Checker:
    """Bytes as an integer or Redis's memory units ("512mb", "1gb", "64k")."""

    def check(value: Any) -> int:
        number: int | None = None
        if _is_int(value):
            number = int(value)
        elif isinstance(value, str) and (m := _MEMORY.match(value)):
            unit = _UNITS.get(m.group(2).lower())
            if unit is not None:
                number = int(m.group(1)) * unit
        if number is None or not low <= number <= high:
            raise _Invalid(f"must be a size in bytes {low}-{high} (or like \"512mb\")")
        return number

    return check


def _output_limit(value: Any) -> tuple[int, int, float]:
    """Redis's "hard soft seconds" of one client class ("32mb 8mb 60"; "0 0 0": none)."""
    if isinstance(value, tuple):  # (a default)
        return value
    if not isinstance(value, str):
        raise _Invalid('must be a string "<hard> <soft> <seconds>", like "32mb 8mb 60"')
    try:
        return parse_output_limit(value)
    except ValueError:
        raise _Invalid('must be "<hard> <soft> <seconds>", like "32mb 8mb 60"') from None


def _policy(value: Any) -> str:
    if value not in POLICIES:
        raise _Invalid("must be one of " + ", ".join(f'"{p}"' for p in POLICIES))
    return str(value)


@attrs.frozen
class NodeSettings:
    """[node]: where this node listens for Redis clients, its data directory, client limits."""

    bind: str = _setting("127.0.0.1", _nonempty_str, "address for Redis clients")
    port: int = _setting(6379, _port, "TCP port for Redis clients")
    dir: Path = _setting(Path("data"), _path, "data directory")  # noqa: RUF009 (immutable)
    requirepass: str | None = _setting(None, _optional_password, "password clients must AUTH")
    dbfilename: str = _setting("dump.rdb", _file_name, "SAVE/BGSAVE's RDB file (in dir)")
    max_clients: int = _setting(10000, _int_range(1, 1_000_000), "most client connections")
    timeout: float = _setting(0.0, _seconds, "close idle clients after this; 0: never")
    proto_max_bulk_len: int = _setting(
        512 * 1024 * 1024, _memory(1, 2**63 - 1), "largest bulk string a client may send"
    )
    max_argv: int = _setting(2**31 - 1, _int_range(1, 2**31 - 1), "most arguments in one command")
    client_query_buffer_limit: int = _setting(
        1024**3, _memory(1024 * 1024, 2**63 - 1), "largest partial command a client may hold"
    )
    max_output_buffer: int = _setting(
        1024**3, _memory(64 * 1024, 2**63 - 1), "unsent replies that pause reading a client"
    )
    client_output_buffer_limit_normal: tuple[int, int, float] = _setting(
        (0, 0, 0.0), _output_limit, "hard soft seconds: output limits of normal clients"
    )
    client_output_buffer_limit_pubsub: tuple[int, int, float] = _setting(
        (32 * 1024**2, 8 * 1024**2, 60.0), _output_limit,
        "hard soft seconds: output limits of pub/sub clients"
    )
    maxmemory: int = _setting(0, _memory(0, 2**63 - 1), "dataset size limit; 0: none")
    maxmemory_policy: str = _setting("noeviction", _policy, "what to evict")
    maxmemory_samples: int = _setting(5, _int_range(1, 64), "keys sampled per eviction")
    shutdown_grace: float = _setting(5.0, _seconds, "seconds to drain clients on SIGTERM")
    busy_reply_threshold: int = _setting(
        5000, _int_range(1, 2**31 - 1),
        "ms a read-only script runs before other clients get BUSY (Redis busy-reply-threshold)"
    )
    databases: int = _setting(16, _int_range(1, 2**31 - 1),
                              "numbered databases (Redis databases); the same on every node")
    id: int = _setting(1, _int_range(1, 2**63 - 1, "must be a positive integer"),
                       "this node's Raft id, unique in the cluster")


def _address(allow_empty: bool) -> Checker:
    def check(value: Any) -> str:
        if allow_empty and value == "":
            return ""
        if isinstance(value, str):
            host, sep, port = value.rpartition(":")
            if sep and host.strip("[]") and port.isdigit() and int(port) <= 65535:
                return value
        extra = ' (or "" to turn it off)' if allow_empty else ""
        raise _Invalid(f'must be "host:port"{extra}')

    return check


def _choice(*options: str) -> Checker:
    def check(value: Any) -> str:
        if value not in options:
            raise _Invalid("must be one of " + ", ".join(f'"{o}"' for o in options))
        return str(value)

    return check


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid("must be true or false")
    return value


def _positive_number(value: Any) -> float:
    if not (_is_int(value) or isinstance(value, float)) or not 0 < value < 10**9:
        raise _Invalid("must be a number > 0")
    return float(value)


def _node_ids(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(_is_int(v) and v > 0 for v in value):
        raise _Invalid("must be a list of positive node ids")
    if len(set(value)) != len(value):
        raise _Invalid("must not repeat a node id")
    return tuple(sorted(value))


def _optional_path(value: Any) -> Path | None:
    if not isinstance(value, str):
        raise _Invalid("must be a path string")
    return Path(value) if value else None


def _key_table(value: Any) -> Mapping[int, str]:
    if not isinstance(value, Mapping):
        raise _Invalid("must be a table of node id = key file (or Z85 key)")
    out: dict[int, str] = {}
    for k, v in value.items():
        if not str(k).isdigit() or int(k) <= 0:
            raise _Invalid(f"key {k!r} must be a positive node id")
        if not isinstance(v, str) or not v:
            raise _Invalid(f"node {k}: must be a key file path or a 40-character Z85 key")
        out[int(k)] = v
    return out


@attrs.frozen
class RaftSettings:
    """[raft]: the replication group this node belongs to and how it behaves."""

    cluster_id: str = _setting("aspen", _nonempty_str, "cluster name; members must agree")
    listen: str = _setting("127.0.0.1:0", _address(False), "peer transport address (host:port)")
    transport: str = _setting("zmq", _choice("zmq", "websocket"), "peer transport")
    storage: str = _setting("sqlite", _choice("sqlite", "lmdb"), "on-disk log backend")
    # 50 ms x 10 ticks: followers campaign 0.5-1 s after the last heartbeat, so a killed
    # leader is replaced (and writes go through) within ~1.1 s; docs/runtime.md "Timing defaults"
    tick_ms: int = _setting(50, _int_range(1, 60_000), "one Raft tick, in ms")
    election_ticks: int = _setting(10, _int_range(2, 10_000), "election timeout in ticks")
    heartbeat_ticks: int = _setting(1, _int_range(1, 10_000), "heartbeat interval in ticks")
    commit_linger_ms: int = _setting(
        2, _int_range(0, 1000), "ms a new commit index waits to ride on the next append"
    )
    request_timeout: float = _setting(5.0, _positive_number,
                                      "seconds a command waits for a leader / commit")
    read_consistency: str = _setting(
        "linearizable", _choice("linearizable", "lease", "stale"), "default read mode"
    )
    snapshot_entries: int = _setting(20_000, _int_range(1, 2**62),
                                     "snapshot after this many applied entries")
    snapshot_log_bytes: int = _setting(64 << 20, _memory(1, 2**62),
                                       "... or after this many bytes of entries")
    log_window_entries: int = _setting(1024, _int_range(1, 2**62),
                                       "applied entries the Raft core keeps in memory ...")
    log_window_bytes: int = _setting(1 << 20, _memory(1, 2**62),
                                     "... and at most this many bytes of them")
    bootstrap: tuple[int, ...] = _setting((), _node_ids,
                                          "initial voters; []: wait for /init")


@attrs.frozen
class HttpSettings:
    """[http]: the control plane (health, metrics, init, membership, write, read)."""

    listen: str = _setting("", _address(True), 'control-plane address (host:port); "": off')


@attrs.frozen
class SecuritySettings:
    """[security]: client password and CURVE encryption of the peer mesh."""

    requirepass: str | None = _setting(None, _optional_password,
                                       "password clients must AUTH (same as node.requirepass)")
    curve_public_key: Path | None = _setting(None, _optional_path, "this node's CURVE public key")  # noqa: RUF009
    curve_secret_key: Path | None = _setting(None, _optional_path, "this node's CURVE secret key")  # noqa: RUF009
    curve_peer_keys: Mapping[int, str] = _setting(
        attrs.Factory(dict), _key_table, "peer id = public key file or Z85 text"
    )
    insecure: bool = _setting(False, _bool,
                              "allow addresses beyond loopback without a password or peer keys")
    aclfile: Path | None = _setting(None, _optional_path,  # noqa: RUF009
                                    "ACL file for ACL SAVE / ACL LOAD (not read at start)")


@attrs.frozen
class TlsSettings:
    """[tls]: TLS for Redis clients (Redis's tls-* settings), the control plane and wss peers."""

    port: int = _setting(0, _port, "tls-port: RESP over TLS on node.bind; 0: off")
    cert_file: Path | None = _setting(None, _optional_path, "tls-cert-file (PEM)")  # noqa: RUF009
    key_file: Path | None = _setting(None, _optional_path, "tls-key-file (PEM)")  # noqa: RUF009
    ca_cert_file: Path | None = _setting(None, _optional_path,  # noqa: RUF009
                                         "tls-ca-cert-file: CA for client and peer certificates")
    auth_clients: str = _setting("yes", _choice("yes", "optional", "no"),
                                 "tls-auth-clients: must clients present a certificate")
    http: bool = _setting(False, _bool, "serve the control plane over HTTPS")
    peers: bool = _setting(False, _bool, "websocket transport over wss:// (mutual TLS)")

    @property
    def enabled(self) -> bool:
        return self.port != 0 or self.http or self.peers


@attrs.frozen
class Peer:
    """One other member: its raft address, and (optionally) where it serves HTTP and RESP."""

    raft: str
    http: str = ""
    resp: str = ""


@attrs.frozen
class Config:
    """The whole configuration of one node."""

    node: NodeSettings = NodeSettings()
    raft: RaftSettings = RaftSettings()
    http: HttpSettings = HttpSettings()
    security: SecuritySettings = SecuritySettings()
    tls: TlsSettings = TlsSettings()
    peers: Mapping[int, Peer] = attrs.Factory(dict)
    source: Path | None = None  # the file it came from, if any
    # [redis]: other Redis parameters by their Redis names (aspen.server.nodeconfig)
    redis: Mapping[str, str] = attrs.Factory(dict)

    @property
    def standalone(self) -> bool:
        """No peers and no bootstrap list: a one-node Raft group that initialises itself."""
        return not self.peers and not self.raft.bootstrap

    def bootstrap_voters(self) -> tuple[int, ...]:
        return (self.node.id,) if self.standalone else self.raft.bootstrap

    def curve(self) -> Any:
        """The transport's CurveConfig (keys read from their files), or None."""
        sec = self.security
        if sec.curve_public_key is None:
            return None
        from transports.curve import load_curve_config

        assert sec.curve_secret_key is not None
        # a 40-character value that is not a file is the key itself (Z85 text)
        peers: dict[int, str | bytes] = {
            i: k.encode() if len(k) == 40 and not Path(k).exists() else k
            for i, k in sec.curve_peer_keys.items()
        }
        try:
            return load_curve_config(sec.curve_public_key, sec.curve_secret_key, peers)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"security: {exc}") from None

    def cluster_settings(self) -> Any:
        """The runtime's ClusterSettings for this node (aspen.cluster.ClusterSettings)."""
        from aspen.cluster import ClusterSettings

        r = self.raft
        try:
            return ClusterSettings(
                node_id=self.node.id,
                cluster_id=r.cluster_id,
                raft_address=r.listen,
                peers={i: p.raft for i, p in self.peers.items()},
                data_dir=self.node.dir,
                storage_backend=r.storage,  # type: ignore[arg-type]
                transport=r.transport,  # type: ignore[arg-type]
                tick_interval=r.tick_ms / 1000,
                election_ticks=r.election_ticks,
                heartbeat_ticks=r.heartbeat_ticks,
                commit_linger=r.commit_linger_ms / 1000,
                read_consistency=r.read_consistency,  # type: ignore[arg-type]
                request_timeout=r.request_timeout,
                snapshot_entries=r.snapshot_entries,
                snapshot_log_bytes=r.snapshot_log_bytes,
                log_window_entries=r.log_window_entries,
                log_window_bytes=r.log_window_bytes,
                databases=self.node.databases,
                bootstrap_voters=self.bootstrap_voters(),  # type: ignore[arg-type]
                busy_reply_threshold=self.node.busy_reply_threshold / 1000,
                maxmemory=self.node.maxmemory,
                maxmemory_policy=self.node.maxmemory_policy,
                maxmemory_samples=self.node.maxmemory_samples,
                curve=self.curve(),
                **self._peer_tls(),
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def _peer_tls(self) -> dict[str, Any]:
        """wss contexts for the websocket transport with tls.peers (mutual TLS), else none."""
        if not self.tls.peers:
            return {}
        from aspen.tls import client_context, server_context

        return {"tls_server": server_context(self.tls, verify="yes"),
                "tls_client": client_context(self.tls)}

    def with_overrides(self, **node_fields: Any) -> Config:
        """Apply command-line overrides (already typed) to [node], validating them the same way."""
        changes = {}
        fields = attrs.fields_dict(NodeSettings)
        for key, value in node_fields.items():
            if value is None:
                continue
            changes[key] = _check("node", key, fields[key], value)
        return attrs.evolve(self, node=attrs.evolve(self.node, **changes))

    def redis_settings(self) -> list[tuple[bytes, bytes]]:
        """CONFIG GET's view: Redis's names for the settings that exist here."""
        n = self.node
        pairs = [
            ("bind", n.bind),
            ("port", str(n.port)),
            ("dir", str(n.dir.resolve())),
            ("dbfilename", n.dbfilename),
            ("requirepass", n.requirepass or ""),
            ("aclfile", str(self.security.aclfile or "")),
            ("maxclients", str(n.max_clients)),
            ("timeout", str(int(n.timeout))),
            ("proto-max-bulk-len", str(n.proto_max_bulk_len)),
            ("client-query-buffer-limit", str(n.client_query_buffer_limit)),
            ("busy-reply-threshold", str(n.busy_reply_threshold)),
            ("lua-time-limit", str(n.busy_reply_threshold)),
            ("client-output-buffer-limit", format_output_limits(
                n.client_output_buffer_limit_normal, n.client_output_buffer_limit_pubsub)),
            ("maxmemory", str(n.maxmemory)),
            ("maxmemory-policy", n.maxmemory_policy),
            ("maxmemory-samples", str(n.maxmemory_samples)),
            # Facts rather than settings: every write is in the fsynced Raft log before its
            # reply (like appendfsync always).
            ("appendonly", "yes"),
            ("appendfsync", "always"),
            ("save", ""),
            ("databases", str(n.databases)),
        ]
        return [(k.encode(), v.encode()) for k, v in pairs]


_SECTIONS: dict[str, type] = {
    "node": NodeSettings,
    "raft": RaftSettings,
    "http": HttpSettings,
    "security": SecuritySettings,
    "tls": TlsSettings,
}
_PEER_KEYS = ("raft", "http", "resp")


def _show(value: object) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a table"
    return repr(value)


def _check(section: str, key: str, field: attrs.Attribute[Any], value: Any) -> Any:
    try:
        return field.metadata["check"](value)
    except _Invalid as exc:
        raise ConfigError(f"{section}.{key}: {exc}, got {_show(value)}") from None


def _load_section(name: str, cls: type, table: Any) -> Any:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{name}: must be a table ([{name}]), got {_show(table)}")
    fields = attrs.fields_dict(cls)
    unknown = sorted(set(table) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields))
        raise ConfigError(f"{name}.{unknown[0]}: unknown key (known keys: {known})")
    values = {key: _check(name, key, fields[key], value) for key, value in table.items()}
    return cls(**values)


def _load_peers(table: Any, own_id: int) -> dict[int, Peer]:
    if not isinstance(table, Mapping):
        raise ConfigError(f"peers: must be a table ([peers]), got {_show(table)}")
    address = _address(False)
    optional = _address(True)
    peers: dict[int, Peer] = {}
    for key, value in table.items():
        where = f"peers.{key}"
        if not str(key).isdigit() or int(key) <= 0:
            raise ConfigError(f"{where}: a peer's key must be its positive node id")
        node_id = int(key)
        if node_id == own_id:
            raise ConfigError(f"{where}: node {node_id} is this node (node.id); list only others")
        entry = {"raft": value} if isinstance(value, str) else value
        if not isinstance(entry, Mapping):
            raise ConfigError(f'{where}: must be "host:port" or a table with raft, http, resp, '
                              f"got {_show(value)}")
        unknown = sorted(set(entry) - set(_PEER_KEYS))
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}: unknown key (known keys: http, raft, resp)")
        if "raft" not in entry:
            raise ConfigError(f"{where}.raft: missing (the peer's raft address, host:port)")
        fields: dict[str, str] = {}
        for name in _PEER_KEYS:
            if name in entry:
                check = address if name == "raft" else optional
                try:
                    fields[name] = check(entry[name])
                except _Invalid as exc:
                    raise ConfigError(f"{where}.{name}: {exc}, got {_show(entry[name])}") from None
        peers[node_id] = Peer(**fields)
    return peers


def _relative(base_dir: Path | None, path: Path | None) -> Path | None:
    if path is None or base_dir is None or path.is_absolute():
        return path
    return base_dir / path


def parse_config(data: Mapping[str, Any], base_dir: Path | None = None) -> Config:
    """Validate an already-parsed TOML document; relative paths are taken from `base_dir`."""
    known_sections = [*_SECTIONS, "peers", "redis"]
    unknown = sorted(set(data) - set(known_sections))
    if unknown:
        known = ", ".join(f"[{s}]" for s in known_sections)
        raise ConfigError(f"{unknown[0]}: unknown section (known sections: {known})")
    sections = {name: _load_section(name, cls, data.get(name, {})) for name, cls in
                _SECTIONS.items()}
    node: NodeSettings = sections["node"]
    raft: RaftSettings = sections["raft"]
    sec: SecuritySettings = sections["security"]
    peers = _load_peers(data.get("peers", {}), node.id)
    if base_dir is not None and not node.dir.is_absolute():
        node = attrs.evolve(node, dir=base_dir / node.dir)
    if sec.requirepass is not None:
        if node.requirepass is not None and node.requirepass != sec.requirepass:
            raise ConfigError("security.requirepass: differs from node.requirepass (set one)")
        node = attrs.evolve(node, requirepass=sec.requirepass)
    curve = [sec.curve_public_key, sec.curve_secret_key]
    if any(p is not None for p in curve) and not all(p is not None for p in curve):
        missing = "curve_secret_key" if sec.curve_secret_key is None else "curve_public_key"
        raise ConfigError(f"security.{missing}: missing (CURVE needs both of this node's keys)")
    if sec.curve_public_key is None and sec.curve_peer_keys:
        raise ConfigError("security.curve_peer_keys: set, but this node has no CURVE keys")
    if sec.curve_public_key is not None:
        if raft.transport != "zmq":
            raise ConfigError(f"security.curve_public_key: CURVE needs raft.transport = \"zmq\", "
                              f'got "{raft.transport}"')
        lacking = sorted(set(peers) - set(sec.curve_peer_keys))
        if lacking:
            raise ConfigError(f"security.curve_peer_keys: no key for peer {lacking[0]}")
        peer_keys = {
            i: (str(_relative(base_dir, Path(k))) if len(k) != 40 else k)
            for i, k in sec.curve_peer_keys.items()
        }
        sec = attrs.evolve(
            sec,
            curve_public_key=_relative(base_dir, sec.curve_public_key),
            curve_secret_key=_relative(base_dir, sec.curve_secret_key),
            curve_peer_keys=peer_keys,
        )
    sec = attrs.evolve(sec, aclfile=_relative(base_dir, sec.aclfile))
    tls = _checked_tls(sections["tls"], raft, base_dir)
    if raft.heartbeat_ticks >= raft.election_ticks:
        raise ConfigError(
            f"raft.heartbeat_ticks: must be smaller than raft.election_ticks "
            f"({raft.election_ticks}), got {raft.heartbeat_ticks}"
        )
    if raft.bootstrap and node.id not in raft.bootstrap and not peers:
        raise ConfigError(f"raft.bootstrap: lists {list(raft.bootstrap)} but not this node "
                          f"({node.id}) and there are no [peers]")
    missing_peers = sorted(set(raft.bootstrap) - set(peers) - {node.id})
    if missing_peers:
        raise ConfigError(f"raft.bootstrap: node {missing_peers[0]} is not in [peers]")
    config = Config(node=node, raft=raft, http=sections["http"], security=sec, tls=tls,
                    peers=peers, redis=_load_redis(data.get("redis", {})))
    if not sec.insecure:
        from aspen.exposure import exposure_problems

        problems = exposure_problems(config)
        if problems:
            raise ConfigError(problems[0])
    return config


def _load_redis(table: Any) -> dict[str, str]:
    """[redis]: Redis parameters by name, checked as CONFIG SET checks them."""
    from aspen.server.nodeconfig import check_redis_table

    if not isinstance(table, Mapping):
        raise ConfigError(f"redis: must be a table ([redis]), got {_show(table)}")
    try:
        return check_redis_table(table)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _checked_tls(tls: TlsSettings, raft: RaftSettings, base_dir: Path | None) -> TlsSettings:
    if not tls.enabled:
        return tls
    for name in ("cert_file", "key_file"):
        if getattr(tls, name) is None:
            raise ConfigError(f"tls.{name}: missing (TLS needs this node's certificate and key)")
    if tls.auth_clients != "no" and tls.port and tls.ca_cert_file is None:
        raise ConfigError('tls.ca_cert_file: missing (needed to verify client certificates; '
                          'or set tls.auth_clients = "no")')
    if tls.peers and raft.transport != "websocket":
        raise ConfigError(f'tls.peers: TLS between peers is for raft.transport = "websocket" '
                          f'(zmq uses CURVE), got "{raft.transport}"')
    if tls.peers and tls.ca_cert_file is None:
        raise ConfigError("tls.ca_cert_file: missing (tls.peers verifies peers against it)")
    return attrs.evolve(
        tls,
        cert_file=_relative(base_dir, tls.cert_file),
        key_file=_relative(base_dir, tls.key_file),
        ca_cert_file=_relative(base_dir, tls.ca_cert_file),
    )


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config file."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return attrs.evolve(parse_config(data, base_dir=path.parent), source=path)


@attrs.frozen
class LocalMember:
    """Where one member of a generated local cluster listens (see `render_local_config`)."""

    id: int
    resp: int
    http: int
    raft: int
    host: str = "127.0.0.1"


def render_local_config(
    me: LocalMember,
    members: list[LocalMember],
    data_dir: str,
    *,
    bootstrap: bool = True,
    raft: Mapping[str, Any] | None = None,
    voters: list[int] | None = None,
    security: Mapping[str, Any] | None = None,
) -> str:
    """A TOML config for one member of a cluster on this machine (`aspen up`, the harness).

    Every member knows every other (`[peers]`); with `bootstrap` the initial voters are
    `voters` (default: all members)."""
    lines = [
        "# generated by aspen: one member of a cluster",
        "[node]",
        f"id = {me.id}",
        f'bind = "{me.host}"',
        f"port = {me.resp}",
        f'dir = "{data_dir}"',
        "shutdown_grace = 2.0",
        "",
        "[raft]",
        f'listen = "{me.host}:{me.raft}"',
    ]
    if bootstrap:
        ids = voters if voters is not None else [m.id for m in members]
        lines.append(f"bootstrap = [{', '.join(map(str, ids))}]")
    for key, value in (raft or {}).items():
        lines.append(f"{key} = {_toml_value(value)}")
    lines += ["", "[http]", f'listen = "{me.host}:{me.http}"']
    if security:
        lines += ["", "[security]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in security.items()]
    lines += ["", "[peers]"]
    for m in members:
        if m.id != me.id:
            lines.append(
                f'{m.id} = {{ raft = "{m.host}:{m.raft}", http = "{m.host}:{m.http}", '
                f'resp = "{m.host}:{m.resp}" }}'
            )
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return _show(str(value))
