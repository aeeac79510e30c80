"""Log replication: conflicts and repair, fast backtracking, commit rules, in-flight window."""

from __future__ import annotations

import attrs

from aspen.raft import (
    AppendEntries,
    AppendEntriesResponse,
    Entry,
    EntryKind,
    HardState,
    Membership,
    Message,
    RaftConfig,
    RaftCore,
    Role,
    encode_membership,
)

from .cluster import Cluster

BOOT = Entry(1, 1, EntryKind.MEMBERSHIP, encode_membership(Membership(voters={1, 2, 3})))


def _log(*spans: tuple[int, int, int]) -> list[Entry]:
    """BOOT followed by entries (first, last, term) spans."""
    out = [BOOT]
    for first, last, term in spans:
        out.extend(
            Entry(i, term, EntryKind.NORMAL, b"t%d-%d" % (term, i)) for i in range(first, last + 1)
        )
    return out


def _cluster_with_logs(
    logs: dict[int, list[Entry]], terms: dict[int, int], **kw: object
) -> Cluster:
    c = Cluster(sorted(logs), bootstrap=False, **kw)  # type: ignore[arg-type]
    for i, entries in logs.items():
        c.disks[i].entries = entries
        c.disks[i].hard_state = HardState(term=terms[i], commit=1)
        c.restart(i)
    return c


def test_leader_repairs_divergent_follower_with_few_round_trips() -> None:
    logs = {
        1: _log((2, 30, 2), (31, 40, 4)),
        2: _log((2, 30, 2), (31, 40, 4)),
        3: _log((2, 10, 2), (11, 100, 3)),  # a long uncommitted tail from a deposed leader
    }
    c = _cluster_with_logs(logs, {1: 4, 2: 4, 3: 4})
    c.elect(1)
    c.tick(n=3)
    rejects = [m for m in c.sent if isinstance(m, AppendEntriesResponse) and not m.success]
    assert 1 <= len(rejects) <= 3, rejects
    leader = c.cores[1]
    for i in (2, 3):
        core = c.cores[i]
        assert core.last_index == leader.last_index
        assert core.entries(1, core.last_index + 1) == leader.entries(1, leader.last_index + 1)
    assert c.cores[3].commit_index == leader.last_index


def test_follower_with_short_log_is_caught_up() -> None:
    logs = {1: _log((2, 50, 2)), 2: _log((2, 50, 2)), 3: _log((2, 5, 2))}
    c = _cluster_with_logs(logs, {1: 2, 2: 2, 3: 2}, config=RaftConfig(max_entries_per_msg=8))
    c.elect(1)
    c.tick(n=3)
    assert c.cores[3].last_index == c.cores[1].last_index
    sizes = [len(m.entries) for m in c.sent if isinstance(m, AppendEntries) and m.dst == 3]
    assert max(sizes) <= 8


def test_conflicting_uncommitted_entries_are_overwritten() -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    c.propose(b"committed")
    # leader 1 appends entries that reach nobody, then loses leadership
    c.isolate(1)
    c.cores[1].propose(b"lost-1")
    c.cores[1].propose(b"lost-2")
    c.settle()
    c.tick([2, 3], n=40)
    new = c.leader()
    assert new is not None and new.id in (2, 3)
    c.propose(b"new")
    c.heal()
    c.tick(n=5)
    assert c.cores[1].role is Role.FOLLOWER
    for i in (1, 2, 3):
        assert c.applied_data(i) == [b"committed", b"new"]


def test_leader_commits_only_current_term_entries_by_counting() -> None:
    """Raft §5.4.2 / Figure 8: a replicated majority of an OLD-term entry is not committed."""
    logs = {1: _log((2, 2, 2)), 2: _log((2, 2, 2)), 3: _log()}
    c = _cluster_with_logs(logs, {1: 2, 2: 2, 3: 2})
    c.filter = lambda m: not isinstance(m, AppendEntries)  # hold all replication
    c.elect(1)
    leader = c.cores[1]
    assert leader.term == 3 and leader.commit_index == 1
    # node 2 acknowledges index 2 (term 2): a majority {1, 2} holds it, but it is from term 2
    leader.step(AppendEntriesResponse(2, 1, 3, True, 2))
    assert leader.commit_index == 1
    # once the term-3 no-op at index 3 is on a majority, everything up to it commits
    leader.step(AppendEntriesResponse(2, 1, 3, True, 3))
    assert leader.commit_index == 3


def test_figure8_seam_planted_bug_commits_old_term_entry() -> None:
    class CountsOldTerms(RaftCore):
        def _may_commit_at(self, index: int) -> bool:
            return True

    logs = {1: _log((2, 2, 2)), 2: _log((2, 2, 2)), 3: _log()}
    c = _cluster_with_logs(logs, {1: 2, 2: 2, 3: 2}, factory=CountsOldTerms)
    c.filter = lambda m: not isinstance(m, AppendEntries)
    c.elect(1)
    c.cores[1].step(AppendEntriesResponse(2, 1, 3, True, 2))
    assert c.cores[1].commit_index == 2  # the planted bug is observable through the seam


def test_figure8_full_scenario_old_entry_not_committed_then_overwritten() -> None:
    """S1 leads term 2, replicates index 2 to S2 only; S5 leads term 3 with its own index 2;
    S1 returns for term 4 and spreads index 2 (term 2) to S3: it must NOT count as committed,
    because S5 can still win and overwrite it."""
    cfg = RaftConfig(pre_vote=False, check_quorum=False, max_entries_per_msg=1)
    c = Cluster([1, 2, 3, 4, 5], config=cfg)
    c.elect(1)  # term 2, noop at index 2 committed everywhere
    base = c.cores[1].last_index
    # S1 appends X at base+1, only S2 gets it
    c.filter = lambda m: not (isinstance(m, AppendEntries) and m.dst not in (2,))
    c.cores[1].propose(b"X")
    c.settle()
    c.filter = None
    c.crash(1)
    # S5 is elected by S3, S4 (and itself); its entries at base+1.. replicate nowhere
    c.cut = {(5, 2), (2, 5)}
    c.filter = lambda m: not (isinstance(m, AppendEntries) and m.src == 5)
    c.elect(5)
    c.cores[5].propose(b"Y")
    c.settle()
    c.crash(5)
    c.heal()
    # S1 comes back, is elected with S2, S3, and replicates X to S3: a majority holds X
    c.down.discard(1)
    c.filter = None

    def strip_new_term(m: Message) -> Message:
        if isinstance(m, AppendEntries) and m.dst in (3, 4):
            return attrs.evolve(m, entries=[e for e in m.entries if e.term != m.term])
        return m

    c.transform = strip_new_term  # S3 and S4 get X but never S1's term-4 entries
    c.elect(1)
    c.tick([1, 2, 3, 4], n=3)
    x_index = base + 1
    assert all(c.cores[i].entries(x_index, x_index + 1)[0].data == b"X" for i in (1, 2, 3, 4))
    assert c.cores[1].commit_index < x_index  # not committed by counting old-term replicas
    # S1 crashes before its own-term entry spreads; S5 can still be elected and overwrite X
    c.transform = None
    c.crash(1)
    c.restart(5)
    c.cut = {(5, 2), (2, 5)}
    c.elect(5)
    c.tick([3, 4, 5], n=3)
    assert c.cores[3].term_at(x_index) == 3  # X (term 2) was overwritten by S5's term-3 entry
    assert b"Y" in c.applied_data(3)
    assert all(b"X" not in c.applied_data(i) for i in c.ids)


def test_inflight_window_bounds_unacknowledged_appends() -> None:
    c = Cluster([1, 2, 3], config=RaftConfig(max_inflight=3))
    c.elect(1)
    leader = c.cores[1]
    c.cut.add((2, 1))  # node 2's acks are lost
    c.sent.clear()
    for k in range(10):
        leader.propose(b"%d" % k)
        c.settle()
    to2 = [m for m in c.sent if isinstance(m, AppendEntries) and m.dst == 2 and m.entries]
    to3 = [m for m in c.sent if isinstance(m, AppendEntries) and m.dst == 3 and m.entries]
    assert len(to2) == 3
    assert len(to3) == 10
    assert leader.commit_index == leader.last_index  # 3 acks, so progress continues
    c.heal()
    c.tick(n=3)
    assert c.cores[2].last_index == leader.last_index


def test_proposals_batch_into_one_append_per_peer() -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    leader = c.cores[1]
    c.sent.clear()
    for k in range(20):
        leader.propose(b"%d" % k)
    c.settle()
    appends = [m for m in c.sent if isinstance(m, AppendEntries) and m.entries]
    assert sorted(m.dst for m in appends) == [2, 3]
    assert all(len(m.entries) == 20 for m in appends)


def test_follower_not_leader_raises_with_hint() -> None:
    import pytest

    from aspen.raft import NotLeader

    c = Cluster([1, 2, 3])
    c.elect(2)
    with pytest.raises(NotLeader) as info:
        c.cores[1].propose(b"x")
    assert info.value.leader_hint == 2


def test_entries_persist_before_ack_and_leader_counts_itself_only_when_durable() -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    leader = c.cores[1]
    idx = leader.propose(b"x")
    rd = leader.ready()
    assert [e.index for e in rd.entries] == [idx]
    assert any(isinstance(m, AppendEntries) for m in rd.messages)  # sent in parallel with disk
    # both followers ack before the leader's own write completes: 2 of 3 is enough
    for f in (2, 3):
        leader.step(AppendEntriesResponse(f, 1, leader.term, True, idx))
    assert leader.commit_index == idx
    leader.advance(rd)
    # a follower's ack only leaves once its entries are durable
    follower = c.cores[2]
    (append,) = [m for m in rd.messages if isinstance(m, AppendEntries) and m.dst == 2]
    follower.step(append)
    frd = follower.ready()
    assert [e.index for e in frd.entries] == [idx]
    assert any(isinstance(m, AppendEntriesResponse) for m in frd.persisted_messages)
    assert not any(isinstance(m, AppendEntriesResponse) for m in frd.messages)
    follower.advance(frd)
