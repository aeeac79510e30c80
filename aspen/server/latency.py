"""LATENCY LATEST / HISTORY / RESET on one node: with `latency-monitor-threshold` > 0 (ms),
every command slower than it is a sample of the `command` event (`fast-command` for commands
flagged fast), as in Redis; samples of the same second keep the largest, and an event keeps
its last 160 seconds."""

from __future__ import annotations

import collections
import time

__all__ = ["LatencyMonitor"]

_HISTORY = 160


class _Event:
    __slots__ = ("max", "samples")

    def __init__(self) -> None:
        self.samples: collections.deque[list[int]] = collections.deque(maxlen=_HISTORY)
        self.max = 0


class LatencyMonitor:
    def __init__(self) -> None:
        self.threshold_ms = 0  # 0: off
        self.events: dict[str, _Event] = {}

    def consider(self, fast: bool, usec: float) -> None:
        if not self.threshold_ms:
            return
        ms = int(usec // 1000)
        if ms < self.threshold_ms:
            return
        name = "fast-command" if fast else "command"
        event = self.events.get(name)
        if event is None:
            event = self.events[name] = _Event()
        now = int(time.time())
        if event.samples and event.samples[-1][0] == now:
            event.samples[-1][1] = max(event.samples[-1][1], ms)
        else:
            event.samples.append([now, ms])
        event.max = max(event.max, ms)

    def latest(self) -> list[list[object]]:
        return [[name.encode(), e.samples[-1][0], e.samples[-1][1], e.max]
                for name, e in self.events.items() if e.samples]

    def history(self, name: bytes) -> list[list[int]]:
        event = self.events.get(name.decode("utf-8", "replace"))
        return [list(s) for s in event.samples] if event is not None else []

    def reset(self, names: list[bytes]) -> int:
        if not names:
            count = len(self.events)
            self.events.clear()
            return count
        count = 0
        for raw in names:
            if self.events.pop(raw.decode("utf-8", "replace"), None) is not None:
                count += 1
        return count
