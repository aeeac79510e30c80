"""Quorum arithmetic against brute force."""

from __future__ import annotations

from itertools import combinations

from hypothesis import given
from hypothesis import strategies as st

from aspen.raft import Membership
from aspen.raft.quorum import VoteResult, joint_index, joint_vote, majority_index

voter_sets = st.frozensets(st.integers(min_value=1, max_value=7), min_size=1, max_size=7)


def _majorities(voters: frozenset[int]) -> list[frozenset[int]]:
    need = len(voters) // 2 + 1
    return [frozenset(c) for c in combinations(sorted(voters), need)]


@given(voter_sets, st.dictionaries(st.integers(1, 7), st.integers(0, 20)))
def test_majority_index_is_the_best_value_a_majority_reached(
    voters: frozenset[int], acked: dict[int, int]
) -> None:
    best = max(min(acked.get(v, 0) for v in q) for q in _majorities(voters))
    assert majority_index(voters, acked) == best


@given(voter_sets, voter_sets, st.dictionaries(st.integers(1, 7), st.integers(0, 20)))
def test_joint_index_needs_both(
    new: frozenset[int], old: frozenset[int], acked: dict[int, int]
) -> None:
    m = Membership(voters=new, voters_outgoing=old)
    assert joint_index(m, acked) == min(majority_index(new, acked), majority_index(old, acked))


@given(voter_sets, voter_sets, st.dictionaries(st.integers(1, 7), st.booleans()))
def test_joint_vote_matches_brute_force(
    new: frozenset[int], old: frozenset[int], votes: dict[int, bool]
) -> None:
    m = Membership(voters=new, voters_outgoing=old)

    def outcome(voters: frozenset[int]) -> VoteResult:
        yes = {v for v in voters if votes.get(v) is True}
        maybe = {v for v in voters if votes.get(v) is not False}
        if any(q <= yes for q in _majorities(voters)):
            return VoteResult.WON
        if not any(q <= maybe for q in _majorities(voters)):
            return VoteResult.LOST
        return VoteResult.PENDING

    a, b = outcome(new), outcome(old)
    if VoteResult.LOST in (a, b):
        expected = VoteResult.LOST
    elif a is b is VoteResult.WON:
        expected = VoteResult.WON
    else:
        expected = VoteResult.PENDING
    assert joint_vote(m, votes) is expected
