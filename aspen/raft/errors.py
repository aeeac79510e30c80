"""The exceptions the Raft core raises to its caller."""

from __future__ import annotations

from aspen.raft.types import NodeId


class RaftError(Exception):
    """Base class of everything the core raises on purpose."""


class NotLeader(RaftError):
    """The call needs the leader; `leader_hint` is who this node believes leads (or None)."""

    def __init__(self, leader_hint: NodeId | None) -> None:
        super().__init__(f"not the leader (leader hint: {leader_hint})")
        self.leader_hint = leader_hint


class ProposalDropped(RaftError):
    """This node leads but cannot take the proposal now (transfer or change in progress).

    Retryable: the caller may try again shortly (possibly on another leader).
    """


class RaftDecodeError(RaftError, ValueError):
    """Bytes from the wire (or an entry's payload) are not a valid encoding."""
