"""A follower whose data dir is wiped: the same leader catches it up (incarnations), the
stale-rejection rule still holds within one life, and the wiped voter does not vote twice
in a term it may have voted in before (the vote-amnesia rule)."""

from __future__ import annotations

import random

import cbor2

from aspen.raft import (
    AppendEntries,
    AppendEntriesResponse,
    Entry,
    HardState,
    Heartbeat,
    HeartbeatResponse,
    ProgressState,
    RaftConfig,
    RaftCore,
    RequestVote,
    RequestVoteResponse,
    Role,
    decode_message,
    encode_message,
)
from aspen.raft.wire import VERSION

from .cluster import Cluster

ET = 10  # election_tick of the Cluster helper's default config


def replicated(n: int = 20, **kw: object) -> Cluster:
    c = Cluster([1, 2, 3], **kw)  # type: ignore[arg-type]
    c.elect(1)
    for i in range(n):
        c.propose(b"v%d" % i)
    return c


def grants(c: Cluster, voter: int, msg: RequestVote) -> bool:
    c.queue.clear()
    c.cores[voter].step(msg)
    c.process(voter)
    answers = [m for m in c.queue if isinstance(m, RequestVoteResponse) and m.dst == msg.src]
    c.queue.clear()
    assert len(answers) == 1, answers
    return answers[0].granted


# -- liveness: the same leader catches a wiped follower up ------------------------------------


def test_wiped_follower_catches_up_from_the_same_leader_and_is_reported() -> None:
    c = replicated()
    leader = c.cores[1]
    term, last = leader.term, leader.last_index
    assert leader.progress(3).match == last  # type: ignore[union-attr]
    c.wipe(3)
    c.tick(n=3)  # heartbeats; the answer carries the new incarnation
    c.propose(b"after")  # and writes keep flowing meanwhile
    assert leader.role is Role.LEADER and leader.term == term  # no election needed
    assert c.cores[3].last_index == leader.last_index == last + 1
    assert c.cores[3].commit_index == leader.commit_index
    assert leader.progress(3).match == leader.last_index  # type: ignore[union-attr]
    assert [(n.peer, n.incarnation, n.acked, n.has) for _, n in c.lost_logs] == [
        (3, 2, last, 0)
    ]
    assert c.applied_data(3) == c.applied_data(1)


def test_wiped_follower_catches_up_when_only_writes_reach_it() -> None:
    """No heartbeat in between: the rejection of a new append carries the new incarnation."""
    c = replicated()
    leader = c.cores[1]
    c.wipe(3)
    for i in range(5):
        c.propose(b"w%d" % i)
    assert c.cores[3].last_index == leader.last_index
    assert leader.progress(3).state is ProgressState.REPLICATE  # type: ignore[union-attr]
    assert len(c.lost_logs) == 1


def test_wiped_follower_of_a_compacted_leader_gets_a_snapshot() -> None:
    c = replicated()
    leader = c.cores[1]
    for i in c.ids:  # compact everywhere: the wiped node can only be seeded by a snapshot
        core = c.cores[i]
        core.compact(core.applied_index, b"state@%d" % core.applied_index)
    c.wipe(3)
    c.tick(n=3)
    assert c.cores[3].snapshot is not None
    assert c.cores[3].last_index == leader.last_index
    assert c.sm_base[3] == b"state@%d" % leader.snapshot.index  # type: ignore[union-attr]


def test_restart_with_data_intact_resets_progress_but_reports_nothing() -> None:
    c = replicated()
    c.crash(3)
    c.restart(3)  # same disk, new incarnation
    c.tick(n=3)
    c.propose(b"x")
    assert c.cores[3].last_index == c.cores[1].last_index
    assert c.lost_logs == []


# -- the stale-rejection rule still holds ---------------------------------------------------


def test_reordered_old_rejection_of_the_same_life_is_ignored() -> None:
    c = replicated()
    leader = c.cores[1]
    pr = leader.progress(2)
    assert pr is not None and pr.state is ProgressState.REPLICATE
    match, nxt = pr.match, pr.next
    # An answer to an append from long ago (it was rejected then) arrives late.
    late = AppendEntriesResponse(2, 1, leader.term, False, match - 5, match - 7, 1, 1)
    c.queue.clear()
    leader.step(late)
    assert (pr.state, pr.match, pr.next) == (ProgressState.REPLICATE, match, nxt)
    assert not leader.has_ready()  # no probe either


def test_message_of_an_earlier_life_after_the_new_one_is_ignored() -> None:
    c = replicated()
    leader = c.cores[1]
    c.wipe(3)
    c.tick(n=3)
    pr = leader.progress(3)
    assert pr is not None and pr.incarnation == 2 and pr.match == leader.last_index
    state = (pr.state, pr.match, pr.next)
    for old in (
        AppendEntriesResponse(3, 1, leader.term, False, 4, 0, 0, incarnation=1),
        AppendEntriesResponse(3, 1, leader.term, True, 2, incarnation=1),
        HeartbeatResponse(3, 1, leader.term, 0, incarnation=1),
    ):
        leader.step(old)
        assert (pr.state, pr.match, pr.next, pr.incarnation) == (*state, 2)
    assert not leader.has_ready()


def test_new_life_rejection_below_match_resets_progress_in_probe_state_too() -> None:
    """The wiped follower answers while the leader is probing it (not replicating)."""
    c = replicated()
    leader = c.cores[1]
    pr = leader.progress(3)
    assert pr is not None
    pr.become_probe()
    c.wipe(3)
    c.tick(n=3)
    assert c.cores[3].last_index == leader.last_index


def test_heartbeat_commit_of_another_life_is_not_trusted() -> None:
    """The leader caps a heartbeat's commit at what a follower acknowledged, but a wiped
    follower's log may hold other entries there (from a stale leader): not committed."""
    cfg = RaftConfig()
    log = [Entry(i, 2, data=b"stale") for i in range(1, 6)]
    core = RaftCore(3, cfg, random.Random(1), hard_state=HardState(term=2), entries=log,
                    incarnation=7)
    core.step(Heartbeat(1, 3, 3, commit=5, incarnation=6))  # capped at an earlier life's ack
    assert core.commit_index == 0
    core.step(Heartbeat(1, 3, 3, commit=5, incarnation=7))
    assert core.commit_index == 5


# -- the wire: the new field is optional ---------------------------------------------------


def test_incarnation_is_left_out_at_zero_and_old_layout_decodes() -> None:
    old = cbor2.dumps([VERSION, 4, 2, 1, 5, False, 9, 3, 1])  # a pre-incarnation answer
    assert decode_message(old) == AppendEntriesResponse(2, 1, 5, False, 9, 3, 1)
    assert encode_message(AppendEntriesResponse(2, 1, 5, False, 9, 3, 1)) == old
    with_inc = AppendEntriesResponse(2, 1, 5, False, 9, 3, 1, incarnation=1 << 40)
    assert decode_message(encode_message(with_inc)) == with_inc
    assert decode_message(cbor2.dumps([VERSION, 7, 1, 2, 5, 4, 0])) == Heartbeat(1, 2, 5, 4, 0)


# -- safety: the vote-amnesia rule -----------------------------------------------------------


def test_wiped_voter_does_not_vote_again_in_its_window() -> None:
    c = Cluster([1, 2, 3], config=RaftConfig(pre_vote=False, check_quorum=False))
    assert grants(c, 1, RequestVote(2, 1, 7, 1, 1))
    c.wipe(1)  # it forgot that it voted for 2 in term 7
    assert not grants(c, 1, RequestVote(3, 1, 7, 1, 1))
    assert not grants(c, 1, RequestVote(3, 1, 8, 1, 1, pre_vote=True))
    c.tick([1], n=2 * ET - 1)
    assert not grants(c, 1, RequestVote(3, 1, 9, 1, 1))
    c.tick([1], n=1)  # the window is over: every candidacy of term 7 has ended by now
    assert grants(c, 1, RequestVote(3, 1, 10, 1, 1))


def test_without_the_rule_the_wiped_voter_votes_twice() -> None:
    c = Cluster([1, 2, 3], config=RaftConfig(pre_vote=False, check_quorum=False),
                factory=Forgetful)
    assert grants(c, 1, RequestVote(2, 1, 7, 1, 1))
    c.wipe(1)
    assert grants(c, 1, RequestVote(3, 1, 7, 1, 1))  # the double vote the rule prevents


def test_brand_new_cluster_elects_after_the_window() -> None:
    c = Cluster([1, 2, 3], amnesia=True)
    c.tick(n=2 * ET - 1)
    assert all(core.role is Role.FOLLOWER and core.term == 1 for core in c.cores.values())
    c.tick(n=2 * ET)
    leaders = [core for core in c.cores.values() if core.role is Role.LEADER]
    assert len(leaders) == 1


def test_single_voter_is_exempt() -> None:
    c = Cluster([1], amnesia=True)
    c.tick(n=2 * ET)
    assert c.cores[1].role is Role.LEADER


def test_vote_for_the_leader_is_recorded_and_survives_a_restart() -> None:
    c = replicated(config=RaftConfig(election_tick=ET, check_quorum=False))
    leader = c.cores[1]
    c.wipe(3)
    c.tick(n=3)
    assert c.cores[3].vote == 1 and c.cores[3].term == leader.term
    c.crash(3)
    restarted = c.restart(3)  # data intact now: not amnesiac, its vote binds the term
    restarted._restart_lease = False
    c.tick([3], n=2 * ET)
    assert not grants(c, 3, RequestVote(2, 3, leader.term, 100, leader.term))


def test_wiped_voter_holds_votes_until_it_caught_up_with_the_first_leader() -> None:
    c = replicated()
    leader = c.cores[1]
    c.wipe(3)
    # only heartbeats and empty probes reach node 3: it cannot catch up
    c.filter = lambda m: not (isinstance(m, AppendEntries) and m.dst == 3 and m.entries)
    c.tick(n=2 * ET + 1)
    wiped = c.cores[3]
    assert not wiped._amnesia and wiped.commit_index < leader.commit_index
    c.forget_leader([3])
    up_to_date = RequestVote(2, 3, leader.term + 1, 100, leader.term)
    assert not grants(c, 3, up_to_date)
    c.filter = None  # (the request above moved node 3 to a new term: a new election follows)
    c.tick(n=4 * ET)
    leader = c.leader()  # type: ignore[assignment]
    assert leader is not None and wiped.commit_index == leader.commit_index
    c.forget_leader([3])
    assert grants(c, 3, RequestVote(2, 3, leader.term + 1, 100, leader.term))



def test_a_new_life_with_a_smaller_incarnation_is_taken_once_the_newer_falls_silent() -> None:
    """A runtime whose clock went back gives a restart a smaller incarnation: ignored as a
    straggler at first, but not for longer than an election timeout."""
    c = replicated()
    leader = c.cores[1]
    c.lives[3] = 10
    c.wipe(3)  # incarnation 11
    c.tick(n=3)
    c.lives[3] = 3
    c.wipe(3)  # incarnation 4: smaller than the life the leader knows
    c.tick(n=ET // 2)
    assert c.cores[3].last_index == 0  # still taken for a straggler of an older life
    c.tick(n=ET)
    pr = leader.progress(3)
    assert pr is not None and pr.incarnation == 4
    assert c.cores[3].last_index == leader.last_index


def test_wiped_voter_never_votes_in_a_term_it_saw_another_node_in() -> None:
    """The double vote the window alone misses: a node that lagged behind campaigns, after
    the window, for a term the wiped node had voted in; the wiped node saw that term."""
    c = Cluster([1, 2, 3], config=RaftConfig(pre_vote=False, check_quorum=False))
    assert grants(c, 1, RequestVote(2, 1, 7, 1, 1))  # 1 votes for 2 in term 7
    c.wipe(1)
    c.tick([1], n=2 * ET)  # past the window
    assert grants(c, 1, RequestVote(2, 1, 8, 1, 1, pre_vote=True))  # so 2 is in term 7
    assert not grants(c, 1, RequestVote(3, 1, 7, 1, 1))  # 3 lagged, campaigns for 7 now
    assert grants(c, 1, RequestVote(3, 1, 8, 1, 1))  # a term nobody was seen in


class Forgetful(RaftCore):
    """No vote-amnesia rule (test plant)."""

    def _guards_lost_votes(self) -> bool:
        return False


def two_leaders_in_one_term(factory: type[RaftCore]) -> list[int]:
    """2 wins term 2 with 1's vote; 1 is wiped; 3, cut off from 2 all along (still in term
    1), campaigns for term 2 and asks 1. Returns who leads term 2."""
    c = Cluster([1, 2, 3], config=RaftConfig(pre_vote=False, check_quorum=False),
                factory=factory)
    c.cut |= {(2, 3), (3, 2)}
    c.isolate(3)
    c.elect(2)
    assert c.cores[2].term == 2
    c.wipe(1)
    c.heal()
    c.cut |= {(2, 3), (3, 2)}
    c.campaign(3)
    return sorted(i for i, core in c.cores.items()
                  if core.role is Role.LEADER and core.term == 2)


def test_a_forgetful_wiped_voter_elects_a_second_leader_in_the_same_term() -> None:
    assert two_leaders_in_one_term(Forgetful) == [2, 3]  # what the rule is for
    assert two_leaders_in_one_term(RaftCore) == [2]


def test_leadership_can_move_to_a_node_inside_its_window() -> None:
    """A node added (empty) and caught up moments ago can take over by transfer."""
    c = replicated()
    c.wipe(3)
    c.tick(n=3)
    assert c.cores[3]._amnesia
    c.cores[1].transfer_leadership(3)
    c.settle()
    assert c.cores[3].role is Role.LEADER
