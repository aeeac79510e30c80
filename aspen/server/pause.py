"""CLIENT PAUSE on one node: while a pause lasts, the node's connections hold their commands
(every command with ALL, the writes and may-replicate ones with WRITE) and run them when it
ends (its timeout, or CLIENT UNPAUSE). Per node, as in Redis per server: a client of another
node is not paused."""

from __future__ import annotations

import math

import trio

__all__ = ["PauseGate"]


class PauseGate:
    def __init__(self) -> None:
        self.mode: str | None = None  # "all" | "write" | None
        self.until = 0.0  # trio.current_time() when the pause ends
        self._released = trio.Event()

    def pause(self, mode: str, seconds: float) -> None:
        """Start a pause, or extend it: Redis keeps the longer end and the stronger mode."""
        until = trio.current_time() + seconds
        if self.active():
            self.until = max(self.until, until)
            if mode == "all":
                self.mode = "all"
        else:
            self.mode, self.until = mode, until
            self._released = trio.Event()

    def unpause(self) -> None:
        self.mode = None
        self.until = 0.0
        self._released.set()

    def active(self) -> bool:
        if self.mode is None:
            return False
        if trio.current_time() >= self.until:
            self.unpause()
            return False
        return True

    def holds(self, write: bool) -> bool:
        """Whether a command (a write or may-replicate one if `write`) must wait now."""
        return self.active() and (self.mode == "all" or write)

    async def wait(self) -> None:
        while self.active():
            with trio.move_on_at(self.until if math.isfinite(self.until) else math.inf):
                await self._released.wait()
