"""The storage contract, run against every backend (memory, sqlite, LMDB)."""

from __future__ import annotations

import pytest
from conftest import Harness, ents, payload

from aspen.raft.types import Entry, EntryKind, HardState, Membership, SnapshotMeta
from aspen.storage import (
    Compacted,
    LogRangeError,
    LogStore,
    StorageClosed,
    Unavailable,
)

MEMBERS = Membership(voters={1, 2, 3}, learners={4})


def positions(entries: list[Entry]) -> list[tuple[int, int]]:
    return [(e.index, e.term) for e in entries]


def test_empty_store(store: LogStore) -> None:
    assert (store.first_index(), store.last_index()) == (1, 0)
    assert store.term(0) == 0
    assert store.entries(1, 1) == []
    assert store.hard_state() == HardState()
    assert store.snapshot_meta() is None and store.load_snapshot() is None
    state = store.load()
    assert (state.entries, state.snapshot, state.base_index, state.last_index) == ((), None, 0, 0)


def test_append_and_read_back(store: LogStore) -> None:
    batch = ents(1, 5, 1) + ents(6, 9, 2)
    store.append(batch)
    assert (store.first_index(), store.last_index()) == (1, 9)
    assert store.entries(1, 10) == batch
    assert store.entries(3, 6) == batch[2:5]
    assert [store.term(i) for i in range(0, 10)] == [0, 1, 1, 1, 1, 1, 2, 2, 2, 2]
    store.append(ents(10, 10, 3))
    assert store.last_index() == 10 and store.term(10) == 3


def test_entry_kinds_and_large_data_round_trip(harness: Harness) -> None:
    big = bytes(range(256)) * 8192  # 2 MiB: a big batch of Redis commands
    batch = [
        Entry(1, 1, EntryKind.NOOP, b""),
        Entry(2, 1, EntryKind.MEMBERSHIP, b"\x00\xff membership"),
        Entry(3, 1, EntryKind.NORMAL, big),
    ]
    harness.store.append(batch)
    assert harness.restart().entries(1, 4) == batch


def test_overwrite_on_conflict_truncates_the_suffix(store: LogStore) -> None:
    store.append(ents(1, 10, 1))
    store.append(ents(6, 7, 2))  # a new leader overwrote from 6 on
    assert store.last_index() == 7
    assert store.entries(1, 8) == ents(1, 5, 1) + ents(6, 7, 2)
    with pytest.raises(Unavailable):
        store.entries(1, 9)
    with pytest.raises(Unavailable):
        store.term(8)


def test_append_with_hard_state_is_one_call(harness: Harness) -> None:
    hs = HardState(term=3, vote=2, commit=4)
    harness.store.append(ents(1, 5, 3), hs)
    store = harness.restart()
    assert store.hard_state() == hs
    assert store.entries(1, 6) == ents(1, 5, 3)
    store.append([], HardState(term=3, vote=2, commit=5))  # hard state alone
    assert harness.restart().hard_state() == HardState(term=3, vote=2, commit=5)


def test_append_rejects_gaps_and_bad_batches(store: LogStore) -> None:
    store.append(ents(1, 3, 2))
    with pytest.raises(Unavailable, match="gap"):
        store.append(ents(5, 6, 2))
    with pytest.raises(ValueError, match="consecutive"):
        store.append([Entry(4, 2), Entry(6, 2)])
    with pytest.raises(ValueError, match="non-decreasing"):
        store.append([Entry(4, 3), Entry(5, 2)])
    with pytest.raises(ValueError, match="lower term"):
        store.append([Entry(4, 1)])
    assert store.entries(1, 4) == ents(1, 3, 2)  # nothing half-applied


def test_truncate_suffix(harness: Harness) -> None:
    store = harness.store
    store.append(ents(1, 10, 1))
    store.truncate_suffix(8)
    assert store.last_index() == 7
    store.truncate_suffix(20)  # beyond the end: nothing to drop
    assert store.last_index() == 7
    store.append(ents(8, 8, 2))
    store = harness.restart()
    assert store.entries(1, 9) == ents(1, 7, 1) + ents(8, 8, 2)
    store.truncate_suffix(1)
    assert (store.first_index(), store.last_index()) == (1, 0)
    assert harness.restart().last_index() == 0


def test_compact(harness: Harness) -> None:
    store = harness.store
    store.append(ents(1, 10, 1) + ents(11, 12, 2))
    store.compact(5)
    assert (store.first_index(), store.last_index()) == (6, 12)
    assert store.term(5) == 1  # the compaction point keeps its term (for AppendEntries)
    with pytest.raises(Compacted):
        store.term(4)
    with pytest.raises(Compacted):
        store.entries(5, 7)
    store.compact(3)  # behind the compaction point: nothing to do
    assert store.first_index() == 6
    with pytest.raises(Unavailable):
        store.compact(13)
    with pytest.raises(Compacted):
        store.truncate_suffix(5)
    store = harness.restart()
    assert (store.first_index(), store.last_index(), store.term(5)) == (6, 12, 1)
    assert store.entries(6, 13) == ents(6, 10, 1) + ents(11, 12, 2)
    store.compact(12)  # everything
    assert (store.first_index(), store.last_index(), store.term(12)) == (13, 12, 2)
    store.append(ents(13, 14, 2))
    store = harness.restart()
    assert store.entries(13, 15) == ents(13, 14, 2)


def test_out_of_range_errors_are_clear(store: LogStore) -> None:
    store.append(ents(1, 10, 1))
    store.compact(4)
    with pytest.raises(Compacted, match="compacted"):
        store.entries(2, 6)
    with pytest.raises(Unavailable, match="beyond"):
        store.entries(6, 12)
    with pytest.raises(Unavailable):
        store.term(11)
    with pytest.raises(ValueError):
        store.entries(7, 6)
    # Both kinds are IndexError-like, for code that only cares about "not there".
    assert issubclass(Compacted, IndexError) and issubclass(Unavailable, LogRangeError)


def test_entries_max_bytes_returns_a_prefix_of_at_least_one(store: LogStore) -> None:
    batch = [Entry(i, 1, data=b"x" * 100) for i in range(1, 11)]
    store.append(batch)
    assert store.entries(1, 11, max_bytes=350) == batch[:3]
    assert store.entries(1, 11, max_bytes=10) == batch[:1]
    assert store.entries(1, 11, max_bytes=10**6) == batch


def test_append_skips_entries_already_in_the_snapshot(store: LogStore) -> None:
    store.append(ents(1, 10, 1))
    store.save_snapshot(SnapshotMeta(8, 1, MEMBERS), b"s")
    store.append(ents(5, 12, 1))  # a leader resending from before the snapshot
    assert (store.first_index(), store.last_index()) == (9, 12)
    assert store.entries(9, 13) == ents(9, 12, 1)
    store.append(ents(3, 7, 1))  # entirely inside the snapshot: a no-op
    assert store.last_index() == 12


def test_hard_state_round_trip(harness: Harness) -> None:
    for hs in [HardState(1, None, 0), HardState(2, 3, 0), HardState(7, 1, 42)]:
        harness.store.set_hard_state(hs)
        assert harness.store.hard_state() == hs
        assert harness.restart().hard_state() == hs


def test_reopen_keeps_everything(harness: Harness) -> None:
    store = harness.store
    store.append(ents(1, 20, 1), HardState(1, 1, 10))
    store.append(ents(15, 25, 2), HardState(2, 2, 14))
    store.save_snapshot(SnapshotMeta(12, 1, MEMBERS), b"state@12")
    before = store.load()
    after = harness.restart().load()
    assert after == before
    assert after.snapshot == SnapshotMeta(12, 1, MEMBERS)
    assert positions(list(after.entries)) == [(i, 1) for i in range(13, 15)] + [
        (i, 2) for i in range(15, 26)
    ]
    assert harness.store.load_snapshot() == (SnapshotMeta(12, 1, MEMBERS), b"state@12")


def test_snapshot_inside_the_log_compacts_behind_it(harness: Harness) -> None:
    store = harness.store
    store.append(ents(1, 20, 1))
    store.save_snapshot(SnapshotMeta(10, 1, MEMBERS), b"ten")
    assert (store.first_index(), store.last_index(), store.term(10)) == (11, 20, 1)
    with pytest.raises(Compacted):
        store.entries(10, 12)
    store = harness.restart()
    assert (store.first_index(), store.last_index()) == (11, 20)
    assert store.entries(11, 21) == ents(11, 20, 1)
    state = store.load()
    assert (state.base_index, state.base_term, state.snapshot) == (
        10, 1, SnapshotMeta(10, 1, MEMBERS),
    )


def test_snapshot_ahead_of_the_log_replaces_it(harness: Harness) -> None:
    store = harness.store
    store.append(ents(1, 5, 1))
    meta = SnapshotMeta(50, 4, MEMBERS)
    store.save_snapshot(meta, b"from the leader")
    assert (store.first_index(), store.last_index(), store.term(50)) == (51, 50, 4)
    store.append(ents(51, 52, 4))
    store = harness.restart()
    assert store.load_snapshot() == (meta, b"from the leader")
    assert store.entries(51, 53) == ents(51, 52, 4)
    assert store.load().entries == tuple(ents(51, 52, 4))


def test_snapshot_contradicting_the_log_replaces_it(harness: Harness) -> None:
    store = harness.store
    store.append(ents(1, 10, 1))  # uncommitted entries 6..10 of a deposed leader
    meta = SnapshotMeta(8, 3, MEMBERS)  # the cluster committed 8 at term 3
    store.save_snapshot(meta, b"x")
    assert (store.first_index(), store.last_index(), store.term(8)) == (9, 8, 3)
    store = harness.restart()
    assert (store.first_index(), store.last_index(), store.load().entries) == (9, 8, ())


def test_newer_snapshot_replaces_older_and_compaction_interplay(harness: Harness) -> None:
    store = harness.store
    store.append(ents(1, 30, 1))
    store.save_snapshot(SnapshotMeta(10, 1, MEMBERS), b"10")
    store.save_snapshot(SnapshotMeta(20, 1, MEMBERS), b"20")
    assert store.load_snapshot() == (SnapshotMeta(20, 1, MEMBERS), b"20")
    assert store.first_index() == 21
    store.compact(25)  # compaction beyond the snapshot is allowed, the log follows it
    assert store.first_index() == 26
    with pytest.raises(ValueError, match="older"):
        store.save_snapshot(SnapshotMeta(15, 1, MEMBERS), b"old")
    store.save_snapshot(SnapshotMeta(28, 1, MEMBERS), b"28")
    store = harness.restart()
    assert store.load_snapshot() == (SnapshotMeta(28, 1, MEMBERS), b"28")
    assert (store.first_index(), store.last_index()) == (29, 30)
    assert store.entries(29, 31) == ents(29, 30, 1)


def test_snapshot_streaming_write_and_read(harness: Harness) -> None:
    store = harness.store
    store.append(ents(1, 5, 1))
    meta = SnapshotMeta(5, 1, MEMBERS)
    chunks = [bytes([i]) * 70_000 for i in range(20)]
    with store.begin_snapshot(meta) as w:
        for c in chunks:
            w.write(c)
    opened = harness.restart().open_snapshot()
    assert opened is not None
    got_meta, f = opened
    with f:
        assert got_meta == meta and f.read() == b"".join(chunks)


def test_aborted_snapshot_leaves_nothing(harness: Harness) -> None:
    store = harness.store
    store.append(ents(1, 5, 1))
    with pytest.raises(RuntimeError), store.begin_snapshot(SnapshotMeta(5, 1, MEMBERS)) as w:
        w.write(b"half")
        raise RuntimeError("the state machine failed mid-snapshot")
    assert store.snapshot_meta() is None and store.first_index() == 1
    assert harness.restart().snapshot_meta() is None


def test_closed_store_refuses_calls(harness: Harness) -> None:
    harness.store.close()
    harness.store.close()  # idempotent
    with pytest.raises(StorageClosed):
        harness.store.append(ents(1, 1, 1))


def test_store_is_usable_from_another_thread(harness: Harness) -> None:
    import threading

    errors: list[BaseException] = []

    def work() -> None:
        try:
            harness.store.append(ents(1, 3, 1), HardState(1, 1, 0))
            assert harness.store.entries(1, 4) == ents(1, 3, 1)
        except BaseException as e:
            errors.append(e)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert errors == []
    assert harness.store.entries(2, 3)[0].data == payload(2, 1)


def test_context_manager_closes(harness: Harness) -> None:
    with harness.store as s:
        s.append(ents(1, 1, 1))
    with pytest.raises(StorageClosed):
        s.last_index()


def test_snapshot_behind_the_compaction_point(harness: Harness) -> None:
    store = harness.store
    store.append(ents(1, 20, 1))
    store.save_snapshot(SnapshotMeta(5, 1, MEMBERS), b"5")
    store.compact(15)
    with pytest.raises(ValueError, match="contradicts"):
        store.save_snapshot(SnapshotMeta(10, 2, MEMBERS), b"impossible in Raft")
    store.save_snapshot(SnapshotMeta(10, 1, MEMBERS), b"10")  # agrees: the log stays as is
    assert (store.first_index(), store.last_index()) == (16, 20)
    store = harness.restart()
    assert store.load_snapshot() == (SnapshotMeta(10, 1, MEMBERS), b"10")
    assert (store.first_index(), store.last_index()) == (16, 20)


def test_snapshot_streams_while_appends_continue_in_another_thread(harness: Harness) -> None:
    """The node streams a snapshot off the driver thread while batches keep being persisted."""
    import threading

    store = harness.store
    assert store.open_snapshot() is None
    store.append(ents(1, 10, 1))
    writer = store.begin_snapshot(SnapshotMeta(10, 1, MEMBERS))
    errors: list[BaseException] = []

    def appender() -> None:
        try:
            for i in range(11, 41):
                store.append(ents(i, i, 1), HardState(1, 1, i - 1))
        except BaseException as e:
            errors.append(e)

    t = threading.Thread(target=appender)
    t.start()
    for i in range(30):
        writer.write(bytes([i]) * 10_000)
    t.join()
    writer.commit()
    assert errors == []
    store = harness.restart()
    assert (store.first_index(), store.last_index()) == (11, 40)
    assert store.entries(11, 41) == ents(11, 40, 1)
    assert store.hard_state() == HardState(1, 1, 39)
    loaded = store.load_snapshot()
    assert loaded is not None and loaded[1] == b"".join(bytes([i]) * 10_000 for i in range(30))
