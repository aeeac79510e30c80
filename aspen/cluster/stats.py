"""The node's counters (`NodeStats`) and its status as the control plane and INFO show it."""

from __future__ import annotations

import bisect
import math
from typing import Any

import attrs

FSYNC_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, math.inf)
"""Upper bounds (seconds) of the persist-latency histogram buckets."""


@attrs.define
class NodeStats:
    """Counters for metrics and benchmarks (the control plane exports them)."""

    entries_proposed: int = 0
    ops_proposed: int = 0
    max_batch: int = 0
    writes_forwarded: int = 0
    writes_retried: int = 0
    cut_offs: int = 0  # times this node found itself without a leader for too long
    duplicates_suppressed: int = 0
    read_index_calls: int = 0
    reads_served: int = 0
    lease_reads: int = 0
    fsyncs: int = 0
    fsync_seconds: float = 0.0
    snapshots_taken: int = 0
    snapshots_installed: int = 0
    peer_messages_dropped: int = 0  # undecodable Raft or client payloads from peers
    follower_logs_lost: int = 0  # (leader) a follower came back without its acknowledged log
    batch_sizes: dict[int, int] = attrs.Factory(dict)  # ops per entry -> count (power-of-2 bins)
    fsync_buckets: list[int] = attrs.Factory(lambda: [0] * len(FSYNC_BUCKETS))
    """Counts of persist calls by duration: fsync_buckets[i] counts those <= FSYNC_BUCKETS[i]
    (not cumulative; the last bucket is +Inf)."""

    def note_fsync(self, seconds: float) -> None:
        self.fsyncs += 1
        self.fsync_seconds += seconds
        self.fsync_buckets[bisect.bisect_left(FSYNC_BUCKETS, seconds)] += 1

    def note_batch(self, n: int) -> None:
        self.entries_proposed += 1
        self.ops_proposed += n
        self.max_batch = max(self.max_batch, n)
        b = 1 << max(n - 1, 0).bit_length()
        self.batch_sizes[b] = self.batch_sizes.get(b, 0) + 1


def info_fields(st: dict[str, Any], stats: NodeStats, cut_off: bool) -> list[tuple[str, str]]:
    """The `# Raft` section of INFO, as (field, value) pairs, from `ClusterNode.status()`."""
    fields = [
        ("raft_node_id", str(st["id"])),
        ("raft_role", st["role"]),
        ("raft_term", str(st["term"])),
        ("raft_leader", str(st["leader"] or "")),
        ("raft_cut_off", "1" if cut_off else "0"),
        ("raft_cut_offs", str(stats.cut_offs)),
        ("raft_commit_index", str(st["commit_index"])),
        ("raft_applied_index", str(st["applied_index"])),
        ("raft_last_index", str(st["last_index"])),
        ("raft_snapshot_index", str(st["snapshot_index"])),
        ("raft_voters", ",".join(map(str, st["membership"]["voters"]))),
        ("raft_learners", ",".join(map(str, st["membership"]["learners"]))),
        ("raft_read_consistency", st["read_consistency"]),
        ("raft_entries_proposed", str(stats.entries_proposed)),
        ("raft_ops_proposed", str(stats.ops_proposed)),
        ("raft_writes_forwarded", str(stats.writes_forwarded)),
        ("raft_peer_messages_dropped", str(stats.peer_messages_dropped)),
        ("raft_fsyncs", str(stats.fsyncs)),
        ("raft_read_index_calls", str(stats.read_index_calls)),
        ("raft_reads_served", str(stats.reads_served)),
    ]
    for peer, match in st["match_index"].items():
        fields.append((f"raft_peer_{peer}_match", "" if match is None else str(match)))
    return fields
