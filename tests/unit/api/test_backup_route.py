"""GET /backup: protected like the other admin routes; its file holds the state at an index
at least the commit index when it was asked for, and `aspen restore` rebuilds it."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import trio
from standalone_node import running_node

from aspen.backup import BackupError, decode_backup, restore_into
from aspen.cluster.state import ReplicatedState
from aspen.storage import open_storage


def _get(port: int | None, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/backup", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), {}


async def test_backup_route_needs_the_password_and_holds_the_committed_state(
    tmp_path: Path,
) -> None:
    async with running_node(tmp_path / "d", requirepass="pw") as node:
        session_write = node.control.execute
        for i in range(50):
            await session_write([b"SET", b"k%d" % i, b"v%d" % i], None, True)
        commit = node.cluster.status()["commit_index"]
        status, _, _ = await trio.to_thread.run_sync(_get, node.http_port, {})
        assert status == 401
        status, blob, headers = await trio.to_thread.run_sync(
            _get, node.http_port, {"Authorization": "Bearer pw"})
        assert status == 200
    backup = decode_backup(blob)
    assert backup.index >= commit and headers["x-aspen-index"] == str(backup.index)
    assert backup.header["voters"] == [1]
    damaged = bytearray(blob)
    damaged[-3] ^= 1
    try:
        decode_backup(bytes(damaged))
        raise AssertionError("a damaged backup was accepted")
    except BackupError:
        pass
    target = tmp_path / "restored"
    restore_into(backup, [(7, target, "sqlite")])
    store = open_storage(target, "sqlite")
    try:
        snap = store.load_snapshot()
        assert snap is not None
        meta, data = snap
        assert (meta.index, meta.term) == (backup.index, backup.term)
        assert meta.membership.voters == frozenset({7})
        assert store.hard_state().term == backup.term
        ks = ReplicatedState.restore(data).keyspace
        assert ks.get_read(b"k49", 0) == b"v49"
    finally:
        store.close()
