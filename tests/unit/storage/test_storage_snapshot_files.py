"""Snapshot files on disk: atomic, checksummed, previous kept as a fallback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import ents

from aspen.raft.types import HardState, Membership, SnapshotMeta
from aspen.storage import StorageCorrupted, open_storage
from aspen.storage.snapshots import file_name

MEMBERS = Membership(voters={1, 2, 3})
DISK = ["sqlite", "lmdb"]


def snap_files(data: Path) -> list[str]:
    return sorted(p.name for p in (data / "snapshots").iterdir())


def corrupt(path: Path, how: str) -> None:
    raw = bytearray(path.read_bytes())
    if how == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif how == "flip":
        raw[len(raw) // 2] ^= 0x40
        path.write_bytes(bytes(raw))
    elif how == "empty":
        path.write_bytes(b"")
    else:
        raise AssertionError(how)


@pytest.mark.parametrize("backend", DISK)
def test_only_the_current_and_previous_snapshot_files_are_kept(
    tmp_path: Path, backend: str
) -> None:
    data = tmp_path / "d"
    with open_storage(data, backend) as s:  # type: ignore[arg-type]
        s.append(ents(1, 40, 1))
        metas = [SnapshotMeta(i, 1, MEMBERS) for i in (10, 20, 30)]
        for m in metas:
            s.save_snapshot(m, b"at %d" % m.index)
        assert snap_files(data) == sorted(file_name(m) for m in metas[1:])


@pytest.mark.parametrize("backend", DISK)
@pytest.mark.parametrize("how", ["truncate", "flip", "empty"])
def test_damaged_current_snapshot_falls_back_to_the_previous_one(
    tmp_path: Path, backend: str, how: str
) -> None:
    data = tmp_path / "d"
    with open_storage(data, backend) as s:  # type: ignore[arg-type]
        s.append(ents(1, 30, 1), HardState(1, 1, 25))
        s.save_snapshot(SnapshotMeta(10, 1, MEMBERS), b"ten" * 1000)
        s.save_snapshot(SnapshotMeta(20, 1, MEMBERS), b"twenty" * 1000)
    corrupt(data / "snapshots" / file_name(SnapshotMeta(20, 1, MEMBERS)), how)
    with open_storage(data, backend) as s:  # type: ignore[arg-type]
        assert s.load_snapshot() == (SnapshotMeta(10, 1, MEMBERS), b"ten" * 1000)
        state = s.load()
        # The rows between the two snapshots were kept: nothing acknowledged is lost.
        assert state.base_index == 10 and list(state.entries) == ents(11, 30, 1)
        assert state.hard_state == HardState(1, 1, 25)
        s.append(ents(31, 31, 1))
        s.save_snapshot(SnapshotMeta(25, 1, MEMBERS), b"again")
    assert any(n.endswith(".corrupt") for n in snap_files(data))  # kept aside for inspection
    with open_storage(data, backend) as s:  # type: ignore[arg-type]
        assert s.load_snapshot() == (SnapshotMeta(25, 1, MEMBERS), b"again")
        assert s.entries(26, 32) == ents(26, 31, 1)


@pytest.mark.parametrize("backend", DISK)
def test_damaged_only_snapshot_with_no_log_behind_it_is_a_clear_error(
    tmp_path: Path, backend: str
) -> None:
    data = tmp_path / "d"
    with open_storage(data, backend) as s:  # type: ignore[arg-type]
        s.save_snapshot(SnapshotMeta(50, 3, MEMBERS), b"installed from the leader")
    corrupt(data / "snapshots" / file_name(SnapshotMeta(50, 3, MEMBERS)), "flip")
    with pytest.raises(StorageCorrupted, match="wipe its data directory"):
        open_storage(data, backend)  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", DISK)
def test_leftover_temp_file_of_an_interrupted_write_is_ignored_and_removed(
    tmp_path: Path, backend: str
) -> None:
    data = tmp_path / "d"
    with open_storage(data, backend) as s:  # type: ignore[arg-type]
        s.append(ents(1, 5, 1))
        s.save_snapshot(SnapshotMeta(3, 1, MEMBERS), b"three")
    (data / "snapshots" / (".tmp-dead-" + file_name(SnapshotMeta(5, 1, MEMBERS)))).write_bytes(
        b"ASPNSNP1 half written"
    )
    with open_storage(data, backend) as s:  # type: ignore[arg-type]
        assert s.load_snapshot() == (SnapshotMeta(3, 1, MEMBERS), b"three")
    assert snap_files(data) == [file_name(SnapshotMeta(3, 1, MEMBERS))]


@pytest.mark.parametrize("backend", DISK)
def test_snapshot_durable_but_log_not_updated_is_finished_at_open(
    tmp_path: Path, backend: str
) -> None:
    """A crash between the file rename and the log transaction."""
    data = tmp_path / "d"
    with open_storage(data, backend) as s:  # type: ignore[arg-type]
        s.append(ents(1, 20, 1))
        s.save_snapshot(SnapshotMeta(5, 1, MEMBERS), b"five")
        s._install = lambda meta: None  # type: ignore[method-assign]  # "crash" before it
        s.save_snapshot(SnapshotMeta(15, 1, MEMBERS), b"fifteen")
    with open_storage(data, backend) as s:  # type: ignore[arg-type]
        assert s.load_snapshot() == (SnapshotMeta(15, 1, MEMBERS), b"fifteen")
        assert (s.first_index(), s.last_index()) == (16, 20)


@pytest.mark.parametrize("backend", DISK)
def test_streamed_read_detects_damage_done_after_open(tmp_path: Path, backend: str) -> None:
    data = tmp_path / "d"
    with open_storage(data, backend) as s:  # type: ignore[arg-type]
        s.append(ents(1, 5, 1))
        s.save_snapshot(SnapshotMeta(5, 1, MEMBERS), os.urandom(3 << 20))
        corrupt(data / "snapshots" / file_name(SnapshotMeta(5, 1, MEMBERS)), "flip")
        opened = s.open_snapshot()
        assert opened is not None
        with opened[1] as f, pytest.raises(StorageCorrupted, match="checksum"):
            f.read()
        with pytest.raises(StorageCorrupted):
            s.load_snapshot()
