"""Leader election: basics, split votes, stale terms, PreVote, CheckQuorum."""

from __future__ import annotations

import random

import pytest

from aspen.raft import (
    AppendEntries,
    EntryKind,
    Heartbeat,
    RaftConfig,
    RaftCore,
    RequestVote,
    RequestVoteResponse,
    Role,
)

from .cluster import Cluster


def test_single_node_elects_itself_and_commits() -> None:
    c = Cluster([1])
    leader = c.elect(1)
    assert leader.term == 2
    index = c.propose(b"x")
    assert leader.commit_index == index
    assert c.applied_data(1) == [b"x"]


def test_three_nodes_elect_one_leader_and_replicate() -> None:
    c = Cluster([1, 2, 3])
    leader = c.elect(1)
    assert {c.cores[i].leader_id for i in (1, 2, 3)} == {1}
    assert {c.cores[i].role for i in (2, 3)} == {Role.FOLLOWER}
    c.propose(b"a")
    c.propose(b"b")
    c.tick(n=2)  # heartbeats carry the commit index to followers
    for i in (1, 2, 3):
        assert c.applied_data(i) == [b"a", b"b"]
        assert c.cores[i].commit_index == leader.last_index


def test_new_leader_appends_noop_of_its_term() -> None:
    c = Cluster([1, 2, 3])
    leader = c.elect(2)
    last = leader.entries(leader.last_index, leader.last_index + 1)[0]
    assert last.kind is EntryKind.NOOP and last.term == leader.term
    assert leader.commit_index == leader.last_index  # committed by a quorum


def test_randomized_timeouts_come_from_injected_rng() -> None:
    def first_campaign_tick(seed: int) -> int:
        c = Cluster([1, 2, 3], seed=seed)
        core = c.cores[1]
        for t in range(1, 100):
            core.tick()
            if core.role is not Role.FOLLOWER:
                return t
        raise AssertionError("never campaigned")

    ticks = {first_campaign_tick(s) for s in range(30)}
    assert all(10 <= t < 20 for t in ticks)
    assert len(ticks) > 3  # actually randomized
    assert first_campaign_tick(5) == first_campaign_tick(5)  # and deterministic


def test_split_vote_then_recovers() -> None:
    cfg = RaftConfig(election_tick=10, pre_vote=False)
    c = Cluster([1, 2, 3, 4], config=cfg, seed=3)
    # 1 and 2 campaign at the same moment; 3 hears only 1 and 4 hears only 2: 2 votes each.
    c.filter = lambda m: (m.src, m.dst) not in {(1, 4), (2, 3)}
    c.cores[1]._campaign(pre=False)
    c.cores[2]._campaign(pre=False)
    c.process_all()
    c.settle()
    c.filter = None
    assert c.cores[1].role is Role.CANDIDATE and c.cores[2].role is Role.CANDIDATE
    roles = {i: c.cores[i].role for i in c.ids}
    assert Role.LEADER not in roles.values()
    # ticking everyone eventually elects exactly one leader (randomized timeouts)
    for _ in range(200):
        c.tick()
        if c.leader() is not None:
            break
    leader = c.leader()
    assert leader is not None and leader.term >= 3
    assert sum(1 for x in c.cores.values() if x.role is Role.LEADER) == 1


def test_one_vote_per_term() -> None:
    c = Cluster([1, 2, 3], config=RaftConfig(pre_vote=False, check_quorum=False))
    voter = c.cores[3]
    voter.step(RequestVote(1, 3, 5, 1, 1))
    voter.step(RequestVote(2, 3, 5, 1, 1))
    rd = voter.ready()
    grants = [m for m in rd.persisted_messages + rd.messages if isinstance(m, RequestVoteResponse)]
    assert sorted((m.dst, m.granted) for m in grants) == [(1, True), (2, False)]
    assert rd.hard_state is not None and rd.hard_state.vote == 1 and rd.hard_state.term == 5
    # the grant waits for the vote to be durable
    assert any(m.granted for m in rd.persisted_messages if isinstance(m, RequestVoteResponse))
    assert not any(isinstance(m, RequestVoteResponse) and m.granted for m in rd.messages)


def test_vote_refused_for_stale_log() -> None:
    c = Cluster([1, 2, 3], config=RaftConfig(pre_vote=False, check_quorum=False))
    c.elect(1)
    c.propose(b"a")
    voter = c.cores[2]
    term = voter.term
    c.forget_leader([2])
    # candidate 3's log claims only the bootstrap entry: older than ours
    voter.step(RequestVote(3, 2, term + 1, 1, 1))
    rd = voter.ready()
    resp = [m for m in rd.messages + rd.persisted_messages if isinstance(m, RequestVoteResponse)]
    assert len(resp) == 1 and not resp[0].granted
    voter.advance(rd)


def test_stale_term_messages_are_ignored_and_answered_with_newer_term() -> None:
    c = Cluster([1, 2, 3], config=RaftConfig(pre_vote=False, check_quorum=False))
    c.elect(1)
    c.elect(2)  # 2 campaigns after 1: 1 steps down to term of 2
    old = c.cores[1]
    assert old.role is Role.FOLLOWER and old.leader_id == 2
    node3 = c.cores[3]
    before = (node3.term, node3.commit_index, node3.last_index)
    node3.step(AppendEntries(1, 3, 2, 0, 0, (), 99))
    node3.step(Heartbeat(1, 3, 2, 99))
    assert (node3.term, node3.commit_index, node3.last_index) == before
    rd = node3.ready()
    assert all(m.term == node3.term and m.dst == 1 for m in rd.messages)
    assert len(rd.messages) == 2


def test_stale_leader_steps_down_when_it_hears_newer_term() -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    c.isolate(1)
    c.campaign(2)
    assert c.cores[2].role is Role.PRE_CANDIDATE  # 3 still trusts its leader's lease
    c.tick([2, 3], n=3 * c.config.election_tick)
    assert c.cores[2].role is Role.LEADER or c.cores[3].role is Role.LEADER
    assert c.cores[1].role is Role.LEADER  # still believes
    c.heal()
    c.tick([1])  # its heartbeat reaches others, which answer with the newer term
    assert c.cores[1].role is Role.FOLLOWER
    assert c.cores[1].term == max(c.cores[2].term, c.cores[3].term)


def test_prevote_keeps_partitioned_node_from_bumping_terms() -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    term = c.cores[1].term
    c.isolate(3)
    c.tick(n=100)
    assert c.cores[3].term == term  # pre-votes never succeed, so the term never moves
    assert c.cores[3].role is Role.PRE_CANDIDATE
    c.heal()
    c.tick(n=5)
    assert c.cores[1].role is Role.LEADER and c.cores[1].term == term
    assert c.cores[3].role is Role.FOLLOWER and c.cores[3].leader_id == 1


def test_without_prevote_a_rejoining_node_disrupts() -> None:
    """The control for the test above: the same scenario without PreVote/CheckQuorum."""
    c = Cluster([1, 2, 3], config=RaftConfig(pre_vote=False, check_quorum=False))
    c.elect(1)
    term = c.cores[1].term
    c.isolate(3)
    c.tick(n=100)
    assert c.cores[3].term > term + 2
    c.heal()
    c.tick(n=1)
    assert c.cores[1].term > term  # deposed by the higher term


def test_check_quorum_leader_steps_down_when_isolated() -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    c.isolate(1)
    c.tick([1], n=2 * c.config.election_tick + 1)
    assert c.cores[1].role is Role.FOLLOWER
    assert c.cores[1].leader_id is None


@pytest.mark.parametrize("check_quorum", [True, False])
def test_lease_ignores_vote_requests(check_quorum: bool) -> None:
    """Thesis 4.2.3: within an election timeout of hearing from the leader, a follower ignores
    vote requests (a removed or partitioned server cannot disrupt the cluster)."""
    c = Cluster([1, 2, 3], config=RaftConfig(pre_vote=False, check_quorum=check_quorum))
    c.elect(1)
    term = c.cores[2].term
    c.cores[2].step(RequestVote(3, 2, term + 5, 100, term))
    assert c.cores[2].term == term and not c.cores[2].has_ready()


def test_leader_restarts_from_disk_and_cluster_recovers() -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    for k in range(5):
        c.propose(b"k%d" % k)
    c.crash(1)
    c.tick([2, 3], n=40)
    new = c.leader()
    assert new is not None and new.id != 1
    c.propose(b"after")
    c.restart(1)
    c.tick(n=5)
    assert c.cores[1].role is Role.FOLLOWER
    assert c.applied_data(1) == [b"k0", b"k1", b"k2", b"k3", b"k4", b"after"]


def test_restore_hard_state_snapshot_and_entries() -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    for k in range(4):
        c.propose(b"%d" % k)
    c.tick(n=2)
    core = c.cores[2]
    applied = core.applied_index
    meta = core.compact(applied - 1, b"state")
    c.disks[2].compact(meta, b"state")
    c.process(2)
    disk = c.disks[2]
    fresh = RaftCore(
        2,
        c.config,
        random.Random(1),
        hard_state=disk.hard_state,
        snapshot=meta,
        entries=disk.entries,
        snapshot_data=b"state",
    )
    assert fresh.applied_index == meta.index and fresh.commit_index == core.commit_index
    restored = c.restart(2)
    assert restored.term == core.term and restored.vote == core.vote
    assert restored.snapshot == meta
    assert restored.last_index == core.last_index
    assert restored.membership == core.membership
    assert [e.index for e in c.applied[2]] == list(range(meta.index + 1, core.commit_index + 1))


def test_removed_vote_check_uses_overridable_seam() -> None:
    class AlwaysVote(RaftCore):
        def _may_grant_vote(self, msg: RequestVote) -> bool:
            return True

    c = Cluster(
        [1, 2, 3], config=RaftConfig(pre_vote=False, check_quorum=False), factory=AlwaysVote
    )
    voter = c.cores[3]
    voter.step(RequestVote(1, 3, 5, 1, 1))
    voter.step(RequestVote(2, 3, 5, 1, 1))
    rd = voter.ready()
    grants = [m for m in rd.persisted_messages if isinstance(m, RequestVoteResponse)]
    assert [m.granted for m in grants] == [True, True]  # the plant double-votes


def test_defer_quorum_check_gives_busy_followers_as_long_again() -> None:
    """After a long apply the leader waits that much longer before check-quorum deposes it
    (its followers are applying the same entries); without the deferral it steps down."""
    for deferred in (False, True):
        c = Cluster([1, 2, 3])
        c.elect(1)
        c.isolate(1)  # the followers "are busy": nothing comes back
        et = c.config.election_tick
        if deferred:
            c.cores[1].defer_quorum_check(et)
        c.tick([1], n=2 * et + 1)
        assert (c.cores[1].role is Role.LEADER) is deferred
        c.tick([1], n=et)  # the deferral is capped at one election timeout
        assert c.cores[1].role is not Role.LEADER
