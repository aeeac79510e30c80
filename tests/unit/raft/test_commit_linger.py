"""RaftConfig.linger_commit: a commit index rides on the next append instead of an append
of its own, and reaches every follower once the runtime's linger calls flush_commit."""

from __future__ import annotations

from aspen.raft import AppendEntries, RaftConfig

from .cluster import Cluster


def _commit_only(c: Cluster) -> list[AppendEntries]:
    return [m for m in c.sent if isinstance(m, AppendEntries) and not m.entries]


def _lingering_cluster() -> Cluster:
    c = Cluster([1, 2, 3], config=RaftConfig(linger_commit=True))
    c.elect(1)
    c.settle()
    c.cores[1].flush_commit()  # the no-op's commit
    c.settle()
    return c


def test_without_linger_a_commit_is_told_at_once_by_an_empty_append() -> None:
    c = Cluster([1, 2, 3])
    c.elect(1)
    c.settle()
    c.sent.clear()
    index = c.cores[1].propose(b"x")
    c.settle()
    assert sorted(m.dst for m in _commit_only(c) if m.commit == index) == [2, 3]
    assert not c.cores[1].commit_owed
    assert all(c.cores[i].commit_index == index for i in (2, 3))


def test_with_linger_the_commit_waits_for_flush_commit() -> None:
    c = _lingering_cluster()
    leader = c.cores[1]
    c.sent.clear()
    index = leader.propose(b"x")
    c.settle()
    assert leader.commit_index == index
    assert _commit_only(c) == []  # no append just to tell the commit index
    assert leader.commit_owed
    assert all(c.cores[i].commit_index < index for i in (2, 3))
    leader.flush_commit()
    c.settle()
    assert sorted(m.dst for m in _commit_only(c)) == [2, 3]
    assert not leader.commit_owed
    assert all(c.cores[i].commit_index == index for i in (2, 3))


def test_with_linger_the_next_append_carries_the_commit() -> None:
    c = _lingering_cluster()
    leader = c.cores[1]
    first = leader.propose(b"x")
    c.settle()
    assert leader.commit_owed
    c.sent.clear()
    leader.propose(b"y")
    c.settle()
    carried = [m for m in c.sent if isinstance(m, AppendEntries) and m.entries]
    assert sorted(m.dst for m in carried) == [2, 3]
    assert all(m.commit >= first for m in carried)
    assert _commit_only(c) == []
    # the followers know `first` is committed without any append of its own
    assert all(c.cores[i].commit_index >= first for i in (2, 3))


def test_a_deposed_leader_owes_nothing() -> None:
    c = _lingering_cluster()
    leader = c.cores[1]
    leader.propose(b"x")
    c.settle()
    assert leader.commit_owed
    c.elect(2)
    c.settle()
    assert not leader.commit_owed
    c.sent.clear()
    leader.flush_commit()  # a late linger: nothing to send as a follower
    c.settle()
    assert not [m for m in c.sent if m.src == 1 and isinstance(m, AppendEntries)]


def test_heartbeats_still_carry_the_commit_without_flush() -> None:
    c = _lingering_cluster()
    leader = c.cores[1]
    index = leader.propose(b"x")
    c.settle()
    c.tick(n=RaftConfig().heartbeat_tick)
    c.settle()
    assert all(c.cores[i].commit_index == index for i in (2, 3))
