"""Snapshots: compaction, chunked InstallSnapshot, follower install, restart after install."""

from __future__ import annotations

import pytest

from aspen.raft import InstallSnapshot, Membership, ProgressState, RaftConfig

from .cluster import Cluster


def _state(c: Cluster, i: int) -> list[bytes]:
    """The follower's 'state machine': snapshot bytes as a list, then applied data."""
    base = c.sm_base[i].split(b",") if c.sm_base[i] else []
    return base + c.applied_data(i)


def test_compaction_drops_prefix_and_keeps_membership() -> None:
    c = Cluster([1, 2, 3])
    leader = c.elect(1)
    for k in range(10):
        c.propose(b"%d" % k)
    with pytest.raises(ValueError):
        leader.compact(leader.applied_index + 1, b"")
    meta = leader.compact(leader.applied_index, b"snap")
    assert leader.first_index == meta.index + 1
    assert meta.membership == Membership(voters={1, 2, 3})
    assert meta.term == leader.term
    assert leader.term_at(meta.index) == meta.term
    assert leader.term_at(meta.index - 1) is None


def test_lagging_follower_gets_chunked_snapshot_then_entries() -> None:
    cfg = RaftConfig(snapshot_chunk_size=7)
    c = Cluster([1, 2, 3], config=cfg)
    leader = c.elect(1)
    c.crash(3)
    for k in range(20):
        c.propose(b"%d" % k)
    state = b",".join(b"%d" % k for k in range(20))
    meta = leader.compact(leader.applied_index, state)
    c.disks[1].compact(meta, state)
    c.propose(b"20")
    c.down.discard(3)
    c.sent.clear()
    c.tick(n=3)
    chunks = [m for m in c.sent if isinstance(m, InstallSnapshot) and m.dst == 3]
    assert chunks and chunks[0].offset == 0 and chunks[-1].done
    distinct = {(m.offset, m.done) for m in chunks}
    assert len(distinct) == -(-len(state) // 7)
    assert c.cores[3].snapshot == meta
    assert _state(c, 3) == [b"%d" % k for k in range(21)]
    assert c.disks[3].snapshot == (meta, state)
    assert leader.progress(3).state is ProgressState.REPLICATE  # type: ignore[union-attr]
    # and it survives a restart from its disk
    c.crash(3)
    c.restart(3)
    c.tick(n=3)
    assert _state(c, 3) == [b"%d" % k for k in range(21)]


def test_snapshot_transfer_survives_lost_chunks() -> None:
    cfg = RaftConfig(snapshot_chunk_size=5)
    c = Cluster([1, 2, 3], config=cfg)
    leader = c.elect(1)
    c.crash(3)
    for k in range(10):
        c.propose(b"%d" % k)
    state = b",".join(b"%d" % k for k in range(10))
    meta = leader.compact(leader.applied_index, state)
    c.down.discard(3)
    dropped = []

    def drop_some(m: object) -> bool:
        if isinstance(m, InstallSnapshot) and m.offset in (5, 15) and len(dropped) < 2:
            dropped.append(m)
            return False
        return True

    c.filter = drop_some
    c.tick(n=10)
    assert len(dropped) == 2
    assert c.cores[3].snapshot == meta
    assert _state(c, 3) == [b"%d" % k for k in range(10)]


def test_follower_keeps_matching_suffix_when_snapshot_is_behind_its_log() -> None:
    c = Cluster([1, 2, 3])
    leader = c.elect(1)
    for k in range(5):
        c.propose(b"%d" % k)
    c.tick(n=2)
    follower = c.cores[2]
    meta = leader.compact(leader.applied_index - 2, b"x")
    last = follower.last_index
    follower.step(InstallSnapshot(1, 2, leader.term, meta, 0, b"x", True))
    assert follower.last_index == last  # nothing discarded: the prefix already matched
    assert follower.snapshot is None or follower.snapshot.index < meta.index


def test_can_compact_false_while_received_snapshot_awaits_ready() -> None:
    c = Cluster([1, 2, 3])
    leader = c.elect(1)
    c.crash(3)
    for k in range(6):
        c.propose(b"%d" % k)
    meta = leader.compact(leader.applied_index, b"s")
    follower = c.cores[3]
    c.down.discard(3)
    applied = follower.applied_index
    assert follower.can_compact(applied)
    follower.step(InstallSnapshot(1, 3, leader.term, meta, 0, b"s", True))
    # the runtime may still be applying an older Ready: compacting there must be refused
    assert not follower.can_compact(applied)
    with pytest.raises(ValueError):
        follower.compact(applied, b"old")
    c.process(3)
    assert follower.applied_index == meta.index and follower.can_compact(meta.index)


def test_new_learner_after_compaction_is_seeded_by_snapshot() -> None:
    c = Cluster([1, 2, 3], config=RaftConfig(snapshot_chunk_size=4))
    leader = c.elect(1)
    for k in range(8):
        c.propose(b"%d" % k)
    state = b",".join(b"%d" % k for k in range(8))
    leader.compact(leader.applied_index, state)
    c.add_node(4)
    leader.change_membership({1, 2, 3}, {4})
    c.tick(n=10)
    learner = c.cores[4]
    assert learner.snapshot is not None and learner.snapshot.index <= leader.last_index
    assert learner.membership == Membership(voters={1, 2, 3}, learners={4})
    assert _state(c, 4) == [b"%d" % k for k in range(8)]
    assert learner.last_index == leader.last_index
