"""The Ready/advance contract and persistence ordering."""

from __future__ import annotations

import random

import pytest

from aspen.raft import (
    AppendEntries,
    HardState,
    Membership,
    RaftConfig,
    RaftCore,
    RequestVote,
    RequestVoteResponse,
    Role,
    SoftState,
)

from .cluster import Cluster


def test_one_outstanding_ready_at_a_time() -> None:
    core = RaftCore(1, RaftConfig(), random.Random(1))
    core.bootstrap(Membership(voters={1}))
    assert core.has_ready()
    rd = core.ready()
    assert not core.has_ready()
    with pytest.raises(RuntimeError):
        core.ready()
    with pytest.raises(RuntimeError):
        core.advance(type(rd)())
    core.advance(rd)
    assert not core.has_ready()


def test_bootstrap_ready_persists_membership_and_commit() -> None:
    core = RaftCore(1, RaftConfig(), random.Random(1))
    core.bootstrap(Membership(voters={1, 2, 3}))
    rd = core.ready()
    assert rd.hard_state == HardState(term=1, vote=None, commit=1)
    assert [e.index for e in rd.entries] == [1]
    assert [e.index for e in rd.committed] == [1]
    with pytest.raises(RuntimeError):
        core.bootstrap(Membership(voters={1}))


def test_soft_state_reported_on_change_only() -> None:
    c = Cluster([1])
    core = c.cores[1]
    for _ in range(30):
        core.tick()
        if core.role is Role.LEADER:
            break
    rd = core.ready()
    assert rd.soft_state == SoftState(1, Role.LEADER)
    core.advance(rd)
    core.tick()
    if core.has_ready():
        rd = core.ready()
        assert rd.soft_state is None
        core.advance(rd)


def test_messages_under_a_new_term_wait_for_durability() -> None:
    c = Cluster([1, 2, 3], config=RaftConfig(pre_vote=False))
    core = c.cores[1]
    for _ in range(30):
        core.tick()
        if core.role is Role.CANDIDATE:
            break
    rd = core.ready()
    assert rd.hard_state is not None and rd.hard_state.vote == 1
    assert rd.messages == []
    assert {m.dst for m in rd.persisted_messages if isinstance(m, RequestVote)} == {2, 3}


def test_vote_survives_restart_no_second_vote_in_term() -> None:
    c = Cluster([1, 2, 3], config=RaftConfig(pre_vote=False, check_quorum=False))
    c.cores[3].step(RequestVote(1, 3, 7, 1, 1))
    c.process(3)
    c.queue.clear()
    restarted = c.restart(3)
    assert restarted.term == 7 and restarted.vote == 1
    restarted.step(RequestVote(2, 3, 7, 1, 1))
    rd = restarted.ready()
    resp = [m for m in rd.messages + rd.persisted_messages if isinstance(m, RequestVoteResponse)]
    assert len(resp) == 1 and not resp[0].granted


def test_unapplied_committed_entries_are_reapplied_after_restart() -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    c.propose(b"a")
    c.propose(b"b")
    c.tick(n=2)
    before = c.applied_data(2)
    c.restart(2)
    assert c.applied_data(2) == before == [b"a", b"b"]


def test_torn_write_loses_only_unacknowledged_entries() -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    c.propose(b"safe")
    follower = c.cores[2]
    leader = c.cores[1]
    leader.propose(b"maybe")
    lrd = leader.ready()
    (append,) = [m for m in lrd.messages if isinstance(m, AppendEntries) and m.dst == 2]
    leader.advance(lrd)
    follower.step(append)
    frd = follower.ready()  # the follower crashes before persisting: no ack ever leaves
    assert frd.persisted_messages
    c.crash(2)
    c.queue.clear()
    restarted = c.restart(2)
    assert restarted.last_index == append.prev_log_index
    assert b"safe" in c.applied_data(2)
