"""The seeded network between simulated nodes: delay, loss, duplication, reordering and
partitions (symmetric, asymmetric, leader isolation).

Messages travel as bytes: every message goes through the real wire codec on the way, so a
message type the codec cannot carry fails the simulation instead of being passed by
reference. Reordering falls out of random per-message delays plus an occasional long delay.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

import attrs

from harness.sim.clock import Clock


@attrs.define
class NetParams:
    min_delay_ms: int = 1
    max_delay_ms: int = 6
    slow_p: float = 0.0  # probability of an extra long delay (reorders messages)
    slow_ms: int = 60
    drop_p: float = 0.0
    dup_p: float = 0.0


class Network:
    def __init__(
        self,
        clock: Clock,
        rng: random.Random,
        deliver: Callable[[int, int, bytes], None],
        params: NetParams | None = None,
    ) -> None:
        self.clock = clock
        self.rng = rng
        self.deliver = deliver  # (src, dst, payload)
        self.params = params or NetParams()
        self.blocked: set[tuple[int, int]] = set()  # directed links that lose everything
        self.sent = 0
        self.dropped = 0
        self.duplicated = 0

    # --- faults ----------------------------------------------------------------------
    def heal(self) -> None:
        self.blocked.clear()

    def partition(self, groups: Iterable[Iterable[int]]) -> None:
        """Nodes only reach nodes of their own group (both directions)."""
        gs = [set(g) for g in groups]
        for i, a in enumerate(gs):
            for j, b in enumerate(gs):
                if i != j:
                    self.blocked.update((x, y) for x in a for y in b)

    def isolate(self, node: int, others: Iterable[int]) -> None:
        for o in others:
            if o != node:
                self.blocked.add((node, o))
                self.blocked.add((o, node))

    def block_one_way(self, src: int, dsts: Iterable[int]) -> None:
        self.blocked.update((src, d) for d in dsts if d != src)

    def reachable(self, src: int, dst: int) -> bool:
        return (src, dst) not in self.blocked

    # --- traffic ---------------------------------------------------------------------
    def _delay(self) -> int:
        p = self.params
        d = self.rng.randint(p.min_delay_ms, p.max_delay_ms)
        if p.slow_p and self.rng.random() < p.slow_p:
            d += self.rng.randint(1, p.slow_ms)
        return d

    def send(self, src: int, dst: int, payload: bytes) -> None:
        self.sent += 1
        if (src, dst) in self.blocked:
            self.dropped += 1
            return
        p = self.params
        rng = self.rng
        if p.drop_p and rng.random() < p.drop_p:
            self.dropped += 1
            return
        self.clock.after(self._delay(), self._arrive, src, dst, payload)
        if p.dup_p and rng.random() < p.dup_p:
            self.duplicated += 1
            self.clock.after(self._delay(), self._arrive, src, dst, payload)

    def _arrive(self, src: int, dst: int, payload: bytes) -> None:
        if (src, dst) in self.blocked:  # the partition began while it was in flight
            self.dropped += 1
            return
        self.deliver(src, dst, payload)
