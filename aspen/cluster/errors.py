"""Errors of the cluster runtime: what control-plane calls raise, what clients see."""

from __future__ import annotations

from aspen.resp.values import Error

CLUSTERDOWN = Error("CLUSTERDOWN no leader")
"""No leader could be reached within the request deadline; nothing was applied. Retryable."""

WRITE_OUTCOME_UNKNOWN = Error(
    "TIMEOUT write outcome unknown: not committed within the request deadline (it may still apply)"
)
"""The write reached a leader but its commit was not seen in time: it may or may not apply."""


class ClusterError(Exception):
    """Base of the errors the cluster runtime raises to its callers."""


class NotLeaderError(ClusterError):
    """The call needs the leader; `leader_hint` is who this node believes leads (or None)."""

    def __init__(self, leader_hint: int | None) -> None:
        super().__init__(f"not the leader (leader: {leader_hint})")
        self.leader_hint = leader_hint


class ClusterTimeout(ClusterError):
    """A control-plane operation did not complete within its deadline."""


class AlreadyInitialized(ClusterError):
    """`init` on a node that already has Raft state (it is or was part of a cluster)."""
