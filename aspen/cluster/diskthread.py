"""One long-lived thread for a node's blocking storage calls.

`trio.to_thread.run_sync` costs a capacity limiter, a context copy, a thread-cache hand-off and
a thread rename per call: a measurable share of a replica's CPU when every Raft `ready()`
makes one fsync. Storage calls of a node are serial anyway (the driver awaits each), so one
dedicated thread and a queue do the same job: the caller parks, the thread runs the call and
reschedules the caller through the trio token.

Like `to_thread.run_sync` (without abandon_on_cancel), a call is not abandoned on
cancellation: the caller waits for the storage call to finish (a half-done write must not be
raced by the next one), then sees the cancellation at its next checkpoint.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

import outcome
import trio

_Job = tuple[Callable[..., Any], tuple[Any, ...], trio.lowlevel.Task]


class DiskThread:
    def __init__(self, name: str = "aspen-disk") -> None:
        self._name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(*args)` in the disk thread; its result or exception."""
        if self._thread is None:
            self._token = trio.lowlevel.current_trio_token()
            self._thread = threading.Thread(target=self._work, name=self._name, daemon=True)
            self._thread.start()
        await trio.lowlevel.checkpoint_if_cancelled()
        self._jobs.put((fn, args, trio.lowlevel.current_task()))

        def abort(_: Any) -> trio.lowlevel.Abort:
            return trio.lowlevel.Abort.FAILED  # wait for the call to finish

        return await trio.lowlevel.wait_task_rescheduled(abort)  # the outcome, unwrapped

    def close(self) -> None:
        """Let the thread exit once the queued calls are done."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread = None

    def _work(self) -> None:
        token = self._token
        assert token is not None
        while (job := self._jobs.get()) is not None:
            fn, args, task = job
            result = outcome.capture(fn, *args)
            try:
                token.run_sync_soon(trio.lowlevel.reschedule, task, result)
            except trio.RunFinishedError:
                return
