"""Quorum arithmetic over simple and joint configurations."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final

from aspen.raft.types import Membership, NodeId

INFINITY: Final = 1 << 64


class VoteResult(enum.Enum):
    PENDING = 0
    WON = 1
    LOST = 2


def majority_index(voters: frozenset[NodeId], acked: Mapping[NodeId, int]) -> int:
    """The largest value that a majority of `voters` has reached (missing = 0)."""
    if not voters:
        return INFINITY  # an empty half of a joint config imposes nothing
    values = sorted((acked.get(v, 0) for v in voters), reverse=True)
    return values[len(values) // 2]


def joint_index(m: Membership, acked: Mapping[NodeId, int]) -> int:
    """Committed index under (possibly joint) consensus: a majority of each half."""
    idx = majority_index(m.voters, acked)
    if m.is_joint:
        idx = min(idx, majority_index(m.voters_outgoing, acked))
    return idx


def majority_vote(voters: frozenset[NodeId], votes: Mapping[NodeId, bool]) -> VoteResult:
    if not voters:
        return VoteResult.WON
    yes = sum(1 for v in voters if votes.get(v) is True)
    no = sum(1 for v in voters if votes.get(v) is False)
    need = len(voters) // 2 + 1
    if yes >= need:
        return VoteResult.WON
    if len(voters) - no < need:
        return VoteResult.LOST
    return VoteResult.PENDING


def joint_vote(m: Membership, votes: Mapping[NodeId, bool]) -> VoteResult:
    a = majority_vote(m.voters, votes)
    b = majority_vote(m.voters_outgoing, votes) if m.is_joint else VoteResult.WON
    if VoteResult.LOST in (a, b):
        return VoteResult.LOST
    if a is VoteResult.WON and b is VoteResult.WON:
        return VoteResult.WON
    return VoteResult.PENDING


def voters_of(m: Membership) -> frozenset[NodeId]:
    return m.voters | m.voters_outgoing
