"""Membership: learners, promotion, removal (incl. the leader), joint changes of several nodes."""

from __future__ import annotations

import pytest

from aspen.raft import (
    EntryKind,
    Membership,
    ProposalDropped,
    RaftConfig,
    RequestVote,
    Role,
    decode_membership,
)

from .cluster import Cluster


def _membership_entries(c: Cluster, i: int) -> list[Membership]:
    return [decode_membership(e.data) for e in c.applied[i] if e.kind is EntryKind.MEMBERSHIP]


def _run(c: Cluster, n: int = 5) -> None:
    c.tick(n=n)


def test_add_learner_catches_up_but_does_not_vote_or_count() -> None:
    c = Cluster([1, 2, 3])
    leader = c.elect(1)
    for k in range(5):
        c.propose(b"%d" % k)
    c.add_node(4)
    leader.change_membership({1, 2, 3}, {4})
    _run(c)
    assert leader.membership == Membership(voters={1, 2, 3}, learners={4})
    assert not leader.membership.is_joint  # voters unchanged: no joint phase needed
    assert c.applied_data(4) == [b"%d" % k for k in range(5)]
    assert c.cores[4].membership.learners == {4}
    # a learner never campaigns
    c.cores[4].tick()
    for _ in range(100):
        c.cores[4].tick()
    assert c.cores[4].role is Role.FOLLOWER
    # and its acks do not count: with 2 and 3 down nothing commits
    c.crash(2)
    c.crash(3)
    before = leader.commit_index
    leader.propose(b"x")
    c.settle()
    assert leader.commit_index == before


def test_promote_learner_goes_through_joint_then_leaves_automatically() -> None:
    c = Cluster([1, 2, 3])
    leader = c.elect(1)
    c.add_node(4)
    leader.change_membership({1, 2, 3}, {4})
    _run(c)
    leader.change_membership({1, 2, 3, 4}, ())
    _run(c)
    seen = _membership_entries(c, 4)
    assert seen[-2] == Membership(voters={1, 2, 3, 4}, voters_outgoing={1, 2, 3})
    assert seen[-1] == Membership(voters={1, 2, 3, 4})
    for i in (1, 2, 3, 4):
        assert c.cores[i].membership == Membership(voters={1, 2, 3, 4})
    # 4 can now lead
    c.cores[1].transfer_leadership(4)
    c.settle()
    assert c.cores[4].role is Role.LEADER


def test_one_change_at_a_time() -> None:
    c = Cluster([1, 2, 3])
    leader = c.elect(1)
    c.add_node(4)
    leader.change_membership({1, 2, 3, 4})
    with pytest.raises(ProposalDropped):
        leader.change_membership({1, 2, 3})
    with pytest.raises(ValueError):
        Cluster([1], bootstrap=False).cores[1].bootstrap(Membership())


def test_remove_follower() -> None:
    c = Cluster([1, 2, 3])
    leader = c.elect(1)
    leader.change_membership({1, 2})
    _run(c)
    assert leader.membership == Membership(voters={1, 2})
    assert leader.progress(3) is None
    c.crash(3)
    c.propose(b"after")  # commits with {1, 2} only
    assert c.applied_data(2)[-1:] == [b"after"]
    # the removed node never campaigns
    c2 = c.cores[3]
    for _ in range(100):
        c2.tick()
    assert c2.role is Role.FOLLOWER


def test_remove_leader_steps_down_after_new_config_commits() -> None:
    c = Cluster([1, 2, 3])
    leader = c.elect(1)
    c.propose(b"before")
    leader.change_membership({2, 3})
    c.settle()
    c.tick(n=1)
    assert leader.role is Role.FOLLOWER
    assert leader.membership == Membership(voters={2, 3})
    c.tick([2, 3], n=40)
    new = c.leader()
    assert new is not None and new.id in (2, 3)
    c.propose(b"after")
    c.tick([2, 3], n=2)
    assert c.applied_data(2) == c.applied_data(3) == [b"before", b"after"]


def test_joint_change_of_several_nodes() -> None:
    c = Cluster([1, 2, 3])
    leader = c.elect(1)
    for n in (4, 5):
        c.add_node(n)
    leader.change_membership({1, 2, 3}, {4, 5})
    _run(c)
    leader.change_membership({3, 4, 5})  # replace two voters and keep one
    c.settle()
    _run(c, 3)
    for i in (3, 4, 5):
        assert c.cores[i].membership == Membership(voters={3, 4, 5})
    assert c.cores[1].role is Role.FOLLOWER  # the old leader left
    for i in (1, 2):
        c.crash(i)
    for _ in range(100):
        c.tick([3, 4, 5])
        if c.leader() is not None and c.leader().id in (3, 4, 5):  # type: ignore[union-attr]
            break
    c.propose(b"new-config")
    c.tick([3, 4, 5], n=2)
    assert all(c.applied_data(i)[-1] == b"new-config" for i in (3, 4, 5))


def test_joint_config_needs_both_majorities() -> None:
    c = Cluster([1, 2, 3])
    leader = c.elect(1)
    for n in (4, 5, 6):
        c.add_node(n)
    leader.change_membership({1, 2, 3}, {4, 5, 6})
    _run(c)
    # the new voters never acknowledge the joint entry: only the old majority has it
    for n in (4, 5, 6):
        c.crash(n)
    idx = leader.change_membership({4, 5, 6})
    c.settle()
    _run(c, 3)
    assert leader.membership.is_joint
    assert leader.commit_index < idx  # old majority alone does not commit C_old,new
    for n in (4, 5, 6):
        c.down.discard(n)
    _run(c, 5)
    assert c.cores[4].membership == Membership(voters={4, 5, 6})


def test_vote_counting_in_joint_config_requires_both_majorities() -> None:
    c = Cluster([1, 2, 3], config=RaftConfig(pre_vote=False, check_quorum=False))
    leader = c.elect(1)
    c.add_node(4)
    c.add_node(5)
    leader.change_membership({1, 2, 3}, {4, 5})
    _run(c)
    c.filter = lambda m: not (m.src == 1 and m.dst in (4, 5))  # C_old,new stays on 1, 2, 3
    leader.change_membership({1, 4, 5})
    c.settle()
    c.filter = None
    cand = c.cores[2]
    assert cand.membership.is_joint
    # 2 wins the old config ({2, 3} of {1, 2, 3}) but not the new one ({1, 4, 5})
    c.crash(1)
    c.crash(4)
    c.crash(5)
    c.campaign(2)
    assert cand.role is Role.CANDIDATE
    sent = [m for m in c.sent if isinstance(m, RequestVote) and m.src == 2]
    assert {m.dst for m in sent} >= {1, 3, 4, 5}
