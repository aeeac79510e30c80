"""The node's dedicated storage thread: results, exceptions, order, and no abandoned calls."""

from __future__ import annotations

import threading
import time

import pytest
import trio

from aspen.cluster.diskthread import DiskThread


async def test_runs_calls_in_one_other_thread_in_order() -> None:
    disk = DiskThread()
    seen: list[tuple[int, str]] = []

    def job(i: int) -> int:
        seen.append((i, threading.current_thread().name))
        return i * 2

    try:
        assert [await disk.run(job, i) for i in range(5)] == [0, 2, 4, 6, 8]
    finally:
        disk.close()
    assert [i for i, _ in seen] == list(range(5))
    names = {name for _, name in seen}
    assert names == {"aspen-disk"} and threading.current_thread().name not in names


async def test_exceptions_reach_the_caller() -> None:
    disk = DiskThread()

    def boom() -> None:
        raise ValueError("disk full")

    try:
        with pytest.raises(ValueError, match="disk full"):
            await disk.run(boom)
        assert await disk.run(lambda: "still works") == "still works"
    finally:
        disk.close()


async def test_a_cancelled_caller_waits_for_its_call_to_finish() -> None:
    disk = DiskThread()
    finished = threading.Event()

    def slow() -> None:
        time.sleep(0.2)
        finished.set()

    try:
        with trio.move_on_after(0.01) as scope:
            await disk.run(slow)
            assert finished.is_set()  # the write was not abandoned half-way
            await trio.lowlevel.checkpoint()  # the cancellation comes at the next checkpoint
        assert scope.cancelled_caught
    finally:
        disk.close()
