"""Plain settings of one cluster node (the config layer builds this from TOML)."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import attrs

from transports.settings import CurveConfig

ReadConsistency = Literal["linearizable", "lease", "stale"]
READ_CONSISTENCIES: tuple[ReadConsistency, ...] = ("linearizable", "lease", "stale")


def _frozen_peers(value: Mapping[int, str]) -> Mapping[int, str]:
    return MappingProxyType({int(k): str(v) for k, v in value.items()})


def _positive(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"cluster: {attribute.name} must be positive, got {value!r}")


def _not_negative(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"cluster: {attribute.name} must be 0 or more, got {value!r}")


def _consistency(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in READ_CONSISTENCIES:
        raise ValueError(
            f"cluster: {attribute.name} must be one of {', '.join(READ_CONSISTENCIES)}, "
            f"got {value!r}"
        )


@attrs.frozen
class ClusterSettings:
    """Everything a `ClusterNode` needs; times are in seconds.

    peers: raft addresses of the OTHER nodes this node starts talking to (later members are
        learned from the replicated address book).
    data_dir: None keeps the Raft log in memory (tests; a restart loses everything).
    tick_interval * election_ticks is the election timeout (randomised up to twice that);
        a leader's read lease lasts lease_ratio of the smallest possible timeout.
    request_timeout: a client command waits at most this long for a leader / a commit.
    snapshot_entries / snapshot_log_bytes: take a snapshot when this many entries (or bytes
        of entries) were applied since the last one.
    commit_linger: a leader whose commit index advanced waits this long for a new entry to
        carry the index to the followers before it sends them an append of its own just for
        that (RaftConfig.linger_commit); 0 sends it at once.
    log_window_entries / log_window_bytes: the Raft core keeps at most this tail of applied,
        durable entries in memory; older ones are read back from storage for a lagging
        follower (RaftConfig.log_window_*).
    databases: how many numbered databases clients may SELECT (Redis's `databases`); every
        member must have the same number (it decides which ops fail on every replica).
    maxmemory, maxmemory_policy, maxmemory_samples: Redis's settings, enforced by the leader
        (aspen.cluster.maxmemory); the initial values of the mutable `ClusterNode.memory`.
    bootstrap_voters: if set and the node has no Raft state yet, `run()` initialises a new
        cluster with these voters (give every initial member the same list; `(node_id,)` is
        a standalone node). Ignored once the node has state.
    """

    node_id: int
    cluster_id: str = "aspen"
    raft_address: str = "127.0.0.1:0"
    peers: Mapping[int, str] = attrs.field(factory=dict, converter=_frozen_peers)
    data_dir: Path | None = None
    storage_backend: Literal["sqlite", "lmdb", "memory"] = "sqlite"
    transport: Literal["zmq", "memory", "websocket"] = "zmq"
    tick_interval: float = attrs.field(default=0.1, validator=_positive)
    election_ticks: int = attrs.field(default=10, validator=_positive)
    heartbeat_ticks: int = attrs.field(default=1, validator=_positive)
    read_consistency: ReadConsistency = attrs.field(default="linearizable", validator=_consistency)
    request_timeout: float = attrs.field(default=5.0, validator=_positive)
    lease_ratio: float = attrs.field(default=0.75, validator=_positive)
    snapshot_entries: int = attrs.field(default=20_000, validator=_positive)
    snapshot_log_bytes: int = attrs.field(default=64 << 20, validator=_positive)
    expire_interval: float = attrs.field(default=0.1, validator=_positive)
    expire_batch: int = attrs.field(default=200, validator=_positive)
    max_batch_items: int = attrs.field(default=4096, validator=_positive)
    max_batch_bytes: int = attrs.field(default=512 << 10, validator=_positive)
    snapshot_chunk_size: int = attrs.field(default=1 << 20, validator=_positive)
    max_inflight: int = attrs.field(default=256, validator=_positive)
    commit_linger: float = attrs.field(default=0.002, validator=_not_negative)
    log_window_entries: int = attrs.field(default=1024, validator=_positive)
    log_window_bytes: int = attrs.field(default=1 << 20, validator=_positive)
    databases: int = attrs.field(default=16, validator=_positive)
    bootstrap_voters: tuple[int, ...] = attrs.field(default=(), converter=tuple)
    busy_reply_threshold: float = attrs.field(default=5.0, validator=_positive)
    """Redis's busy-reply-threshold (lua-time-limit): once a read-only script served by this
    node has run this long, other clients get BUSY (aspen/cluster/scriptrun.py)."""
    maxmemory: int = 0
    """Redis maxmemory (bytes of the keyspace's estimate, aspen.kv.memory); 0: no limit."""
    maxmemory_policy: str = "noeviction"
    maxmemory_samples: int = 5
    curve: CurveConfig | None = None
    """CURVE keys for the mesh (zmq): passed to the transport as they are."""
    tls_server: ssl.SSLContext | None = None
    tls_client: ssl.SSLContext | None = None
    """wss between peers (websocket): passed to the transport as they are."""

    def __attrs_post_init__(self) -> None:
        if self.node_id <= 0:
            raise ValueError(f"cluster: node_id must be a positive integer, got {self.node_id}")
        if self.node_id in self.peers:
            raise ValueError(f"cluster: peers: node {self.node_id} cannot be its own peer")
        if self.heartbeat_ticks >= self.election_ticks:
            raise ValueError("cluster: heartbeat_ticks must be smaller than election_ticks")
        if self.lease_ratio >= 1:
            raise ValueError("cluster: lease_ratio must be below 1 (the lease must end first)")
        if self.data_dir is None and self.storage_backend != "memory":
            object.__setattr__(self, "storage_backend", "memory")

    @property
    def election_timeout(self) -> float:
        return self.tick_interval * self.election_ticks

    @property
    def lease_duration(self) -> float:
        # A follower that heard the leader refuses votes for election_ticks of ITS ticks; the
        # first of them may come right away, so only (election_ticks - 1) intervals are sure.
        return self.lease_ratio * self.tick_interval * max(self.election_ticks - 1, 0)
