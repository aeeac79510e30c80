"""The cluster runtime: Raft core + storage + transport + keyspace as one replicated node.

`ClusterNode(ClusterSettings(...))` is one node; `await nursery.start(node.run)` runs it.
See docs/runtime.md for the write path, read modes, request ids and error texts.
"""

from aspen.cluster.errors import (
    CLUSTERDOWN,
    WRITE_OUTCOME_UNKNOWN,
    AlreadyInitialized,
    ClusterError,
    ClusterTimeout,
    NotLeaderError,
)
from aspen.cluster.runtime import ClusterNode, NodeStats
from aspen.cluster.settings import READ_CONSISTENCIES, ClusterSettings, ReadConsistency

__all__ = [
    "CLUSTERDOWN",
    "READ_CONSISTENCIES",
    "WRITE_OUTCOME_UNKNOWN",
    "AlreadyInitialized",
    "ClusterError",
    "ClusterNode",
    "ClusterSettings",
    "ClusterTimeout",
    "NodeStats",
    "NotLeaderError",
    "ReadConsistency",
]
