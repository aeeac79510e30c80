"""One warning line per refused peer connection or message, rate-limited.

An attacker who can reach the Raft port can open connections (or, once admitted, send
frames) as fast as the network allows; logging each one would let it fill the disk. So every
refusal is counted (`TransportStats`), and logged as a warning only for the first `burst` in
each `interval`; after that the rest are summed into one line when the interval ends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger("aspen.transports.refused")

BURST = 10
INTERVAL = 60.0


class RefusalLog:
    """Rate-limited warnings: the first `burst` per `interval`, then one summary line."""

    def __init__(
        self,
        burst: int = BURST,
        interval: float = INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger = log,
    ) -> None:
        self.burst = burst
        self.interval = interval
        self._clock = clock
        self._log = logger
        self._window_start = clock()
        self._logged = 0
        self._suppressed = 0

    def warn(self, message: str, *args: object) -> None:
        """Log `message % args` as a warning unless this interval's burst is spent."""
        self.flush()
        if self._logged < self.burst:
            self._logged += 1
            self._log.warning(message, *args)
        else:
            self._suppressed += 1

    def flush(self) -> None:
        """Close the interval if it is over: one summary line for what was not logged."""
        now = self._clock()
        if now - self._window_start < self.interval:
            return
        if self._suppressed:
            self._log.warning(
                "%d more refused peer connections or messages in the last %.0f s "
                "(not logged one by one; see the transport counters)",
                self._suppressed,
                now - self._window_start,
            )
        self._window_start = now
        self._logged = 0
        self._suppressed = 0
