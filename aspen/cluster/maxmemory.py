"""maxmemory on the leader: evict through the log, refuse denyoom writes with -OOM.

Before each proposal pass the leader compares the keyspace's used memory (aspen.kv.memory:
a deterministic estimate of the dataset, the same figure on every replica) with `maxmemory`.
Above it, and with an evicting policy, it chooses victims (Redis's sampling: best of
`samples` random keys by idle time, frequency, TTL or at random) and puts ONE `ASPEN.EVICT
key...` op in front of the pass's client ops: every replica deletes the same keys. Bytes whose
eviction is proposed but not applied yet count as freed, so a flood does not evict twice for
the same excess. If the excess cannot be freed (noeviction, or a volatile-* policy with no
key that has a TTL), every write of the pass whose command Redis flags `denyoom` (and every
MULTI/EXEC holding one) is replaced by `ASPEN.OOM`, which every replica answers with Redis's
`-OOM command not allowed when used memory > 'maxmemory'.` (applied, so its origin, maybe a
follower that forwarded it, gets that reply). Other writes (DEL, EXPIRE, ...) always pass.

The settings are mutable (`configure`): CONFIG SET may change them at runtime. The keyspace
keeps its used-memory figure only while maxmemory is set (it costs about a microsecond per
write); setting it counts the dataset once.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from aspen.cluster.entry import Item, OpItem, RequestId
from aspen.kv.commands import lookup
from aspen.kv.keyspace import Keyspace
from aspen.kv.memory import POLICIES, AccessHints, choose_victims
from aspen.kv.ops import TxnOp, WriteOp

OOM_OP = WriteOp((b"ASPEN.OOM",))
MAX_EVICT_PER_PASS = 4096


def _denyoom(argv: tuple[bytes, ...] | list[bytes]) -> bool:
    spec = lookup(argv[0]) if argv else None
    return spec is not None and "denyoom" in spec.flags


def denied(op: object) -> bool:
    """Would Redis refuse this op when over maxmemory? (a denyoom command, or EXEC of one)"""
    if type(op) is WriteOp:
        return _denyoom(op.argv)
    if type(op) is TxnOp:
        return any(_denyoom(argv) for argv in op.commands)
    return False


MAX_SAMPLES = 64
"""Keys sampled per victim at most, whatever `maxmemory-samples` says (Redis 7.0 accepts up to
2^31-1 there; sampling that many keys per eviction would stall the leader)."""


class MemoryGuard:
    """The leader's maxmemory decisions (see the module docstring)."""

    def __init__(self, maxmemory: int = 0, policy: str = "noeviction", samples: int = 5,
                 rng: random.Random | None = None) -> None:
        self.maxmemory = 0
        self.policy = "noeviction"
        self.samples = 5
        self.rng = rng or random.Random()
        self._pending: dict[bytes, int] = {}  # proposed evictions -> their size
        self._term = -1
        self.refused = 0  # writes answered -OOM by this leader (a stat)
        self._keyspace: Keyspace | None = None
        self.configure(maxmemory=maxmemory, policy=policy, samples=samples)

    def configure(self, *, maxmemory: int | None = None, policy: str | None = None,
                  samples: int | None = None) -> None:
        if policy is not None:
            if policy not in POLICIES:
                raise ValueError(f"maxmemory-policy must be one of {', '.join(POLICIES)}")
            self.policy = policy
        if maxmemory is not None:
            if maxmemory < 0:
                raise ValueError("maxmemory must be >= 0")
            self.maxmemory = maxmemory
        if samples is not None:
            if not 1 <= samples <= 2**31 - 1:  # Redis 7.0's range (7.2 narrowed it to 1-64)
                raise ValueError("maxmemory-samples must be 1-2147483647")
            self.samples = samples
        if self._keyspace is not None:
            self.attach(self._keyspace)

    def attach(self, ks: Keyspace) -> None:
        """Give the keyspace the access record its policy needs (after a restore too)."""
        self._keyspace = ks
        ks.set_memory_tracking(self.maxmemory > 0)
        lfu = self.policy.endswith("-lfu")
        wanted = self.policy.endswith(("-lru", "-lfu"))
        if not wanted:
            ks.hints = None
        elif ks.hints is None or ks.hints.lfu != lfu:
            ks.hints = AccessHints(lfu)

    def admit(
        self,
        items: list[Item],
        ks: Keyspace,
        term: int,
        now_ms: int,
        new_rid: Callable[[], RequestId],
        floor: int,
    ) -> list[Item]:
        """The pass's items, behind an eviction op and with refused writes replaced."""
        if term != self._term:  # a new leadership: earlier proposals may be lost
            self._term = term
            self._pending.clear()
        pending = self._pending
        if pending:
            data = ks._data
            for key in [k for k in pending if k not in data]:
                del pending[key]
        excess = ks.total_used_memory() - sum(pending.values()) - self.maxmemory
        if excess <= 0:
            return items
        out: list[Item] = []
        if self.policy != "noeviction":
            sizes = ks.memory_by_db()
            db = max(sizes, key=sizes.__getitem__)  # victims from the largest database
            selected = ks.db
            ks.select(db)  # a swap of references; restored before anything else runs
            try:
                victims = choose_victims(ks, self.policy, excess, now_ms, self.rng, pending,
                                         min(self.samples, MAX_SAMPLES), MAX_EVICT_PER_PASS)
            finally:
                ks.select(selected)
            if victims:
                for key, size in victims:
                    pending[key] = size
                    excess -= size
                op = WriteOp((b"ASPEN.EVICT", *(k for k, _ in victims)), db)
                out.append(OpItem(new_rid(), floor, op))
        if excess <= 0:
            return out + items
        for item in items:
            if type(item) is OpItem and denied(item.op):
                self.refused += 1
                item = OpItem(item.rid, item.floor, OOM_OP)
            out.append(item)
        return out
