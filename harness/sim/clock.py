"""Virtual time: a heap of (time, sequence, callback) and nothing else.

Time is an integer number of virtual milliseconds. The sequence number breaks ties in
scheduling order, so a run depends only on the seed, never on dict or heap quirks.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any


class Clock:
    def __init__(self) -> None:
        self.now = 0
        self._seq = 0
        self._heap: list[tuple[int, int, Callable[..., None], tuple[Any, ...]]] = []

    def at(self, when: int, fn: Callable[..., None], *args: Any) -> None:
        if when < self.now:
            raise ValueError(f"scheduling in the past: {when} < {self.now}")
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, fn, args))

    def after(self, delay: int, fn: Callable[..., None], *args: Any) -> None:
        self.at(self.now + delay, fn, *args)

    def run_until(self, end: int, stop: Callable[[], bool] | None = None) -> None:
        heap = self._heap
        pop = heapq.heappop
        while heap and heap[0][0] <= end:
            when, _, fn, args = pop(heap)
            self.now = when
            fn(*args)
            if stop is not None and stop():
                return
        self.now = max(self.now, end)

    def pending(self) -> int:
        return len(self._heap)
