"""Bad input: a data directory in use, or of another format/version/engine, is refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ents

from aspen.storage import IncompatibleFormat, StorageLocked, open_storage

DISK = ["sqlite", "lmdb"]

HOLDER = """
import sys, time
from aspen.storage import open_storage
s = open_storage(sys.argv[1], sys.argv[2])
print("open", flush=True)
time.sleep(60)
"""


def tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


@pytest.mark.parametrize("backend", DISK)
def test_second_open_in_the_same_process_is_refused(tmp_path: Path, backend: str) -> None:
    with (
        open_storage(tmp_path / "d", backend),  # type: ignore[arg-type]
        pytest.raises(StorageLocked, match="in use by another Aspen process"),
    ):
        open_storage(tmp_path / "d", backend)  # type: ignore[arg-type]
    with open_storage(tmp_path / "d", backend):  # type: ignore[arg-type]
        pass  # released by close()


@pytest.mark.parametrize("backend", DISK)
def test_another_process_holding_the_directory_is_named(tmp_path: Path, backend: str) -> None:
    data = tmp_path / "d"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(data), backend], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "open"
        with pytest.raises(StorageLocked, match=f"pid {proc.pid}"):
            open_storage(data, backend)  # type: ignore[arg-type]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    with open_storage(data, backend) as s:  # type: ignore[arg-type]  # the kernel freed the lock
        s.append(ents(1, 1, 1))


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("aspen-storage 2 sqlite\n", "format version 2"),
        ("aspen-storage 1 lmdb\n", "written by the 'lmdb' backend"),
        ("something-else 1 sqlite\n", "not an aspen-storage directory"),
        ("", "not an aspen-storage directory"),
    ],
)
def test_other_format_or_version_is_refused_and_untouched(
    tmp_path: Path, marker: str, message: str
) -> None:
    data = tmp_path / "d"
    data.mkdir()
    (data / "FORMAT").write_text(marker)
    (data / "log.db").write_bytes(b"precious bytes of some other program")
    before = tree(data)
    with pytest.raises(IncompatibleFormat, match=message):
        open_storage(data, "sqlite")
    after = tree(data)
    after.pop("LOCK", None)  # the lock file is the only thing an open may create
    assert after == before


def test_foreign_non_empty_directory_is_refused_without_creating_anything(
    tmp_path: Path,
) -> None:
    data = tmp_path / "d"
    data.mkdir()
    (data / "dump.rdb").write_bytes(b"REDIS0009")
    with pytest.raises(IncompatibleFormat, match="not an Aspen data directory"):
        open_storage(data, "sqlite")
    assert sorted(os.listdir(data)) == ["dump.rdb"]


def test_new_directory_gets_a_marker_and_reopens(tmp_path: Path) -> None:
    data = tmp_path / "a" / "b"
    with open_storage(data, "sqlite") as s:
        s.append(ents(1, 2, 1))
    assert (data / "FORMAT").read_text() == "aspen-storage 1 sqlite\n"
    with open_storage(data, "sqlite") as s:
        assert s.last_index() == 2
    with pytest.raises(IncompatibleFormat, match="open it with backend='sqlite'"):
        open_storage(data, "lmdb")


def test_factory_argument_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="path=None"):
        open_storage(tmp_path, "memory")
    with pytest.raises(ValueError, match="needs a data directory"):
        open_storage(None, "sqlite")
    with pytest.raises(ValueError, match="unknown storage backend"):
        open_storage(tmp_path / "x", "rocksdb")  # type: ignore[arg-type]


def test_an_init_interrupted_before_the_marker_was_renamed_is_finished(tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir()
    (data / "LOCK").write_text("12345\n")
    (data / ".tmp-FORMAT").write_text("aspen-sto")  # killed mid-write
    with open_storage(data, "sqlite") as s:
        s.append(ents(1, 1, 1))
    assert (data / "FORMAT").read_text() == "aspen-storage 1 sqlite\n"
    assert not (data / ".tmp-FORMAT").exists()
