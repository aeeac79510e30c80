"""/status reports a snapshot only once it is on disk: a crash before that would lose it."""

from __future__ import annotations

import threading
from pathlib import Path

import trio

from aspen.resp.values import OK
from harness.cluster import open_cluster


async def test_status_shows_the_snapshot_index_after_the_file_is_written(tmp_path: Path) -> None:
    # on-disk storage: its writes run in the node's storage thread, as in a daemon
    async with open_cluster(1, seed=3, data_dir=tmp_path) as cluster:
        node = await cluster.wait_leader()
        client = cluster.client(node.id)
        for i in range(20):
            assert await client.cmd("SET", f"k{i}", i) == OK
        storage = node.storage
        assert storage is not None
        real_save = storage.save_snapshot
        release = threading.Event()
        saving = threading.Event()

        def slow_save(meta: object, data: bytes) -> None:
            saving.set()
            release.wait(10)
            real_save(meta, data)  # type: ignore[arg-type]

        storage.save_snapshot = slow_save  # type: ignore[method-assign]
        before = node.status()["snapshot_index"]
        taken: list[int] = []

        async def snapshot() -> None:
            taken.append(await node.snapshot_now())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(snapshot)
            with trio.fail_after(10):
                while not saving.is_set():
                    await trio.sleep(0.01)
            # compacted in the core, still being written: /status must not claim it yet
            assert node.status()["snapshot_index"] == before
            release.set()
        assert taken[0] > before
        assert node.status()["snapshot_index"] == taken[0]
