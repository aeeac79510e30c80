"""Leadership transfer and ReadIndex."""

from __future__ import annotations

import pytest

from aspen.raft import (
    AppendEntries,
    Heartbeat,
    NotLeader,
    ProposalDropped,
    RaftConfig,
    RaftCore,
    ReadIndexRequest,
    ReadState,
    RequestVote,
    Role,
    TimeoutNow,
)

from .cluster import Cluster


def test_transfer_to_up_to_date_follower() -> None:
    c = Cluster([1, 2, 3])
    leader = c.elect(1)
    c.propose(b"a")
    term = leader.term
    leader.transfer_leadership(3)
    c.settle()
    assert c.cores[3].role is Role.LEADER
    assert c.cores[3].term == term + 1
    assert leader.role is Role.FOLLOWER and leader.leader_id == 3
    c.propose(b"b")
    c.tick(n=2)
    assert c.applied_data(1) == [b"a", b"b"]


def test_transfer_catches_up_lagging_target_first() -> None:
    c = Cluster([1, 2, 3])
    leader = c.elect(1)
    c.crash(3)
    for k in range(5):
        c.propose(b"%d" % k)
    c.down.discard(3)
    c.sent.clear()
    leader.transfer_leadership(3)
    with pytest.raises(ProposalDropped):
        leader.propose(b"refused during transfer")
    c.settle()
    c.tick(n=1)
    timeout_now = [m for m in c.sent if isinstance(m, TimeoutNow)]
    first_tn = c.sent.index(timeout_now[0])
    assert any(isinstance(m, AppendEntries) and m.dst == 3 for m in c.sent[:first_tn])
    assert c.cores[3].role is Role.LEADER
    assert c.applied_data(3)[:5] == [b"%d" % k for k in range(5)]


def test_transfer_aborts_after_election_timeout() -> None:
    c = Cluster([1, 2, 3])
    leader = c.elect(1)
    c.isolate(3)
    c.cut.discard((1, 2))
    c.cut.discard((2, 1))
    leader.transfer_leadership(3)
    with pytest.raises(ProposalDropped):
        leader.propose(b"x")
    c.tick([1, 2], n=c.config.election_tick)
    assert leader.role is Role.LEADER and leader.lead_transferee is None
    c.propose(b"accepted again")


def test_transfer_requires_leader_and_voter() -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    with pytest.raises(NotLeader):
        c.cores[2].transfer_leadership(3)
    with pytest.raises(ValueError):
        c.cores[1].transfer_leadership(9)


def test_read_index_on_leader_needs_heartbeat_quorum() -> None:
    c = Cluster([1, 2, 3])
    leader = c.elect(1)
    c.propose(b"a")
    c.cut = {(2, 1), (3, 1)}  # acks cannot come back
    leader.read_index(b"r1")
    c.settle()
    assert c.reads[1] == []
    c.heal()
    leader.read_index(b"r2")
    c.settle()
    assert c.reads[1] == [
        ReadState(b"r1", leader.commit_index),
        ReadState(b"r2", leader.commit_index),
    ]


def test_concurrent_reads_share_one_heartbeat_round() -> None:
    c = Cluster([1, 2, 3])
    leader = c.elect(1)
    c.sent.clear()
    for k in range(10):
        leader.read_index(b"%d" % k)
    c.settle()
    rounds = {m.context for m in c.sent if isinstance(m, Heartbeat)}
    assert len(rounds) == 1
    assert len([m for m in c.sent if isinstance(m, Heartbeat)]) == 2
    assert [r.token for r in c.reads[1]] == [b"%d" % k for k in range(10)]


def test_read_waits_for_first_commit_of_term() -> None:
    c = Cluster([1, 2, 3])
    c.filter = lambda m: not (isinstance(m, AppendEntries) and m.entries)
    leader = c.elect(1)
    leader.read_index(b"early")
    c.settle()
    assert c.reads[1] == []  # the no-op has not committed yet
    c.filter = None
    c.tick(n=2)
    assert c.reads[1] == [ReadState(b"early", leader.commit_index)]


def test_follower_read_is_forwarded_to_leader() -> None:
    c = Cluster([1, 2, 3])
    leader = c.elect(1)
    c.propose(b"a")
    c.cores[3].read_index(b"f")
    c.settle()
    assert c.reads[3] == [ReadState(b"f", leader.commit_index)]
    assert any(isinstance(m, ReadIndexRequest) for m in c.sent)


def test_read_without_leader_fails_at_once() -> None:
    c = Cluster([1, 2, 3])
    c.cores[2].read_index(b"x")
    c.process_all()
    assert c.reads[2] == [ReadState(b"x", None)]


def test_deposed_leader_does_not_serve_reads() -> None:
    c = Cluster([1, 2, 3])
    old = c.elect(1)
    c.isolate(1)
    c.tick([2, 3], n=40)
    assert c.leader() is not None and c.leader().id != 1  # type: ignore[union-attr]
    c.propose(b"newer write")
    old.read_index(b"stale?")
    c.tick([1], n=2)
    assert c.reads[1] == []  # never confirmed: a minority cannot answer
    c.tick([1], n=c.config.election_tick)
    assert c.reads[1] == [ReadState(b"stale?", None)]  # fails instead of hanging
    c.tick([1], n=c.config.election_tick)
    assert old.role is not Role.LEADER  # CheckQuorum deposes it too


def test_forwarded_read_fails_when_leader_unreachable() -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    c.cut.add((2, 1))
    c.cores[2].read_index(b"lost")
    c.tick([2], n=c.config.election_tick)
    assert c.reads[2] == [ReadState(b"lost", None)]


def test_planted_read_seam_serves_without_quorum() -> None:
    class NoCheck(RaftCore):
        def _read_requires_quorum_check(self) -> bool:
            return False

    c = Cluster([1, 2, 3], factory=NoCheck)
    leader = c.elect(1)
    c.isolate(1)
    leader.read_index(b"r")
    c.process(1)
    assert c.reads[1] == [ReadState(b"r", leader.commit_index)]


def test_leader_lease_follows_quorum_heartbeats() -> None:
    c = Cluster([1, 2, 3])
    leader = c.elect(1)
    assert c.cores[2].lease_remaining() == 0
    c.tick(n=2)
    et = c.config.election_tick
    assert 0 < leader.lease_remaining() <= et - 2
    # cut off from both followers the lease runs out (before any follower would vote again)
    c.isolate(1)
    for _ in range(et):
        c.tick([1])
    assert leader.lease_remaining() == 0


def test_lease_void_after_timeout_now() -> None:
    c = Cluster([1, 2, 3])
    leader = c.elect(1)
    c.tick(n=2)
    assert leader.lease_remaining() > 0
    c.filter = lambda m: not isinstance(m, TimeoutNow) or m.src != 1
    leader.transfer_leadership(2)
    c.settle()
    assert leader.lease_remaining() == 0
    c.tick([1, 3], n=c.config.election_tick)  # transfer aborted, TimeoutNow may still arrive
    assert leader.role is Role.LEADER and leader.lead_transferee is None
    assert leader.lease_remaining() == 0


def test_restarted_follower_ignores_votes_for_one_election_timeout() -> None:
    cfg = RaftConfig(pre_vote=False)
    c = Cluster([1, 2, 3], config=cfg)
    leader = c.elect(1)
    c.tick(n=2)
    restarted = c.restart(3)
    term = restarted.term
    restarted.step(RequestVote(2, 3, term + 1, leader.last_index, leader.term))
    assert restarted.term == term  # ignored: it may have promised a lease before crashing
    for _ in range(cfg.election_tick):
        restarted.tick()
    restarted.step(RequestVote(2, 3, restarted.term + 1, leader.last_index, leader.term))
    assert restarted.term > term
