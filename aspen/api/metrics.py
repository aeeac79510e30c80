"""Prometheus metrics of one node, read from the cluster runtime at scrape time.

A per-node `CollectorRegistry` (never the process-global one: tests run several nodes in one
process) with one custom collector: every scrape reads `ClusterNode.status()` and `NodeStats`,
so the runtime keeps plain counters and pays nothing per request for metrics.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from aspen.cluster import ClusterNode

__all__ = ["CONTENT_TYPE_LATEST", "NodeMetrics"]

ROLES = ("follower", "pre_candidate", "candidate", "leader")


class _Collector:
    def __init__(self, node: ClusterNode) -> None:
        self._node = node

    def describe(self) -> list[Metric]:
        return []  # unchecked collector: names are produced at collect time

    def collect(self) -> Iterator[Metric]:
        node = self._node
        if node.core is None:
            return
        st = node.status()
        stats = node.stats
        labels = ["node"]
        me = [str(st["id"])]

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            g = GaugeMetricFamily(name, doc, labels=labels)
            g.add_metric(me, value)
            return g

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            c = CounterMetricFamily(name, doc, labels=labels)
            c.add_metric(me, value)
            return c

        yield gauge("aspen_raft_term", "current Raft term", st["term"])
        role = GaugeMetricFamily("aspen_raft_role", "1 for this node's current role",
                                 labels=["node", "role"])
        roles = ROLES if st["role"] in ROLES else (*ROLES, st["role"])
        for r in roles:
            role.add_metric([me[0], r], 1.0 if r == st["role"] else 0.0)
        yield role
        yield gauge("aspen_raft_leader", "id of the leader this node knows (0: none)",
                    st["leader"] or 0)
        yield gauge("aspen_raft_is_leader", "1 if this node leads", 1.0 if st["role"] == "leader"
                    else 0.0)
        yield gauge("aspen_raft_commit_index", "highest committed log index", st["commit_index"])
        yield gauge("aspen_raft_applied_index", "highest applied log index", st["applied_index"])
        yield gauge("aspen_raft_last_index", "last log index", st["last_index"])
        yield gauge("aspen_raft_snapshot_index", "index of the latest snapshot",
                    st["snapshot_index"])
        yield gauge("aspen_raft_voters", "number of voters", len(st["membership"]["voters"]))
        match = GaugeMetricFamily("aspen_raft_peer_match_index",
                                  "per-peer match index (known on the leader)",
                                  labels=["node", "peer"])
        for peer, idx in st["match_index"].items():
            if idx is not None:
                match.add_metric([me[0], str(peer)], idx)
        yield match
        yield counter("aspen_proposals", "log entries proposed by this node (leader)",
                      stats.entries_proposed)
        yield counter("aspen_proposed_ops", "client operations proposed (sum of batch sizes)",
                      stats.ops_proposed)
        yield counter("aspen_writes_forwarded", "writes forwarded to the leader",
                      stats.writes_forwarded)
        yield counter("aspen_writes_retried", "writes re-submitted", stats.writes_retried)
        yield counter("aspen_duplicates_suppressed", "retried writes applied only once",
                      stats.duplicates_suppressed)
        yield counter("aspen_read_index_calls", "ReadIndex rounds", stats.read_index_calls)
        yield counter("aspen_reads_served", "reads served from the local keyspace",
                      stats.reads_served)
        yield counter("aspen_lease_reads", "reads served under the leader lease",
                      stats.lease_reads)
        yield counter("aspen_snapshots_taken", "snapshots taken", stats.snapshots_taken)
        yield counter("aspen_snapshots_installed", "snapshots installed from the leader",
                      stats.snapshots_installed)
        yield counter("aspen_peer_messages_dropped",
                      "peer payloads that did not decode (dropped, nothing applied)",
                      stats.peer_messages_dropped)
        yield counter("aspen_follower_logs_lost",
                      "followers found restarted without their log (wiped data dir), leader",
                      stats.follower_logs_lost)
        yield _histogram(
            "aspen_batch_size", "client operations per proposed log entry", me,
            sorted(stats.batch_sizes.items()), float(stats.ops_proposed),
        )
        yield from _transport_metrics(node, me[0])
        from aspen.cluster.stats import FSYNC_BUCKETS

        yield _histogram(
            "aspen_fsync_seconds", "latency of one persist (append + fsync) of the Raft log", me,
            list(zip(FSYNC_BUCKETS, stats.fsync_buckets, strict=True)), stats.fsync_seconds,
        )


def _transport_metrics(node: ClusterNode, me: str) -> Iterator[Metric]:
    """The peer transport's counters: traffic, drops by reason, refused handshakes."""
    transport = node.transport
    if transport is None:
        return
    stats = transport.stats
    for name, doc, value in [
        ("aspen_peer_messages_sent", "messages handed to the peer transport's sockets",
         stats.sent),
        ("aspen_peer_messages_received", "peer messages accepted", stats.received),
        ("aspen_peer_auth_refused", "peer connections refused by the CURVE key check (ZAP)",
         stats.auth_refused),
        ("aspen_peer_messages_compressed", "peer messages sent zlib-compressed (protocol 2)",
         stats.compressed),
    ]:
        c = CounterMetricFamily(name, doc, labels=["node"])
        c.add_metric([me], value)
        yield c
    for name, doc, value in [
        ("aspen_peer_protocol", "this release's peer protocol version", transport.protocol),
        ("aspen_cluster_protocol",
         "peer protocol every member announces (min with ours): what this node sends",
         transport.cluster_protocol),
    ]:
        g = GaugeMetricFamily(name, doc, labels=["node"])
        g.add_metric([me], value)
        yield g
    peers = GaugeMetricFamily("aspen_peer_announced_protocol",
                              "each peer's announced protocol (1: none lately)",
                              labels=["node", "peer"])
    for peer, version in sorted(transport.peer_protocols().items()):
        peers.add_metric([me, str(peer)], version)
    yield peers
    dropped = CounterMetricFamily(
        "aspen_peer_messages_dropped", "peer messages dropped, by reason", labels=["node", "reason"]
    )
    for reason, count in sorted(stats.dropped.items()):
        dropped.add_metric([me, reason.value], count)
    yield dropped
    refused = CounterMetricFamily(
        "aspen_peer_handshakes_refused",
        "peer connections whose handshake failed (auth, protocol, no_detail, no_handshake)",
        labels=["node", "reason"],
    )
    for reason_name, count in sorted(stats.handshakes_refused.items()):
        refused.add_metric([me, reason_name], count)
    yield refused
    ours = CounterMetricFamily(
        "aspen_peer_outgoing_handshakes_failed",
        "this node's handshakes a peer refused (auth: our key unknown to it), by reason",
        labels=["node", "reason"],
    )
    for reason_name, count in sorted(stats.outgoing_handshakes_failed.items()):
        ours.add_metric([me, reason_name], count)
    yield ours


def _histogram(
    name: str, doc: str, me: list[str], bins: list[tuple[float, int]], total: float
) -> HistogramMetricFamily:
    """A histogram from non-cumulative (upper bound, count) bins."""
    h = HistogramMetricFamily(name, doc, labels=["node"])
    running = 0
    buckets: list[tuple[str, float]] = []
    for bound, count in bins:
        running += count
        if bound != float("inf"):
            buckets.append((_bound(bound), running))
    buckets.append(("+Inf", running))
    h.add_metric(me, buckets, total)
    return h


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class NodeMetrics:
    """The registry of one node; `render()` is the body of GET /metrics."""

    def __init__(self, node: ClusterNode) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(node))

    def render(self) -> bytes:
        return generate_latest(self.registry)
