"""The memory backend's crash model, which the simulator relies on."""

from __future__ import annotations

from conftest import ents

from aspen.raft.types import HardState, Membership, SnapshotMeta
from aspen.storage import MemoryStorage, open_storage

MEMBERS = Membership(voters={1})


def mem() -> MemoryStorage:
    s = open_storage(None, "memory")
    assert isinstance(s, MemoryStorage)
    return s


def test_unsynced_writes_are_visible_but_lost_by_a_crash() -> None:
    s = mem()
    s.append(ents(1, 3, 1), HardState(1, 1, 0))
    s.append(ents(4, 6, 1), HardState(1, 1, 3), sync=False)
    s.set_hard_state(HardState(2, None, 3), sync=False)
    assert s.last_index() == 6 and s.hard_state() == HardState(2, None, 3) and s.unsynced
    s.crash()
    assert s.last_index() == 3 and s.hard_state() == HardState(1, 1, 0) and not s.unsynced
    assert s.entries(1, 4) == ents(1, 3, 1)


def test_sync_makes_earlier_writes_durable() -> None:
    s = mem()
    s.append(ents(1, 3, 1), sync=False)
    s.sync()
    s.append(ents(4, 5, 1), sync=False)
    s.set_hard_state(HardState(1, 1, 5))  # synced: covers the append before it, like fsync
    s.crash()
    assert s.last_index() == 5 and s.hard_state() == HardState(1, 1, 5)


def test_unsynced_truncation_compaction_and_snapshot_are_undone_by_a_crash() -> None:
    s = mem()
    s.append(ents(1, 10, 1))
    s.truncate_suffix(8, sync=False)
    s.compact(3, sync=False)
    s.save_snapshot(SnapshotMeta(5, 1, MEMBERS), b"five", sync=False)
    assert (s.first_index(), s.last_index()) == (6, 7)
    s.crash()
    assert (s.first_index(), s.last_index(), s.snapshot_meta()) == (1, 10, None)
    assert s.entries(1, 11) == ents(1, 10, 1)


def test_a_synced_snapshot_survives_and_a_later_unsynced_one_does_not() -> None:
    s = mem()
    s.append(ents(1, 10, 1))
    s.save_snapshot(SnapshotMeta(4, 1, MEMBERS), b"four")
    s.save_snapshot(SnapshotMeta(8, 1, MEMBERS), b"eight", sync=False)
    s.crash()
    assert s.load_snapshot() == (SnapshotMeta(4, 1, MEMBERS), b"four")
    assert (s.first_index(), s.last_index()) == (5, 10)


def test_one_fsync_per_call_whatever_the_batch_size() -> None:
    s = mem()
    before = s.fsyncs
    s.append(ents(1, 1000, 1), HardState(1, 1, 0))
    assert s.fsyncs == before + 1
    s.append(ents(1001, 1001, 1))
    assert s.fsyncs == before + 2
    s.append(ents(1002, 1100, 1), sync=False)
    s.set_hard_state(HardState(1, 1, 1), sync=False)
    assert s.fsyncs == before + 2
    s.sync()
    assert s.fsyncs == before + 3


def test_deterministic() -> None:
    def run() -> object:
        s = mem()
        s.append(ents(1, 20, 1))
        s.append(ents(15, 25, 2), HardState(2, 1, 10), sync=False)
        s.save_snapshot(SnapshotMeta(12, 2, MEMBERS), b"x", sync=False)
        s.sync()
        s.truncate_suffix(20, sync=False)
        s.crash()
        return s.load(), s.load_snapshot()

    assert run() == run()
