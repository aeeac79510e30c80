"""Linearizability checker for register histories (Wing & Gong search, Porcupine-style).

Why this shape:

* Linearizability is compositional (P-compositionality), so a history is checked one key at a
  time: many small searches instead of one exponential one.
* The search walks a doubly linked list of call/return events. It tries to linearize the
  earliest pending call; a return reached before its call was linearized means "backtrack".
  Every (set of linearized operations, model state) pair reached is remembered, so the same
  configuration is never explored twice (Lowe's memoization; the set is an int bitset).
* The register model is made deterministic with the powerset construction: the search state is
  the frozenset of values the register might hold. That lets operations whose outcome is
  unknown (a compare-and-set that timed out) take either branch without special cases.
* An operation with unknown outcome (``ret is None``: the client timed out) gets an infinite
  return time: it may take effect at any point after its call. Putting it after everything
  else is the same as "it never happened", so "or never" needs no extra case either.
  Reads with unknown outcome tell nothing and are dropped.

Events with equal timestamps are ordered calls-first, which makes such operations concurrent:
the checker never reports a violation that depends on how a tie was broken.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import attrs

READ = "read"
WRITE = "write"
CAS = "cas"
_KINDS = (READ, WRITE, CAS)

INFINITY = float("inf")

State = frozenset[Any]


@attrs.frozen
class Op:
    """One client operation on one key of a register store.

    ``output``: the value read (``read``), ``True``/``False`` for whether the swap happened
    (``cas``), ignored for ``write``. ``ret is None`` means the outcome is unknown.
    """

    client: Hashable
    key: Hashable
    kind: str = attrs.field(validator=attrs.validators.in_(_KINDS))
    call: float
    ret: float | None
    value: Any = None  # write: the value written; cas: the new value
    expected: Any = None  # cas: the value compared against
    output: Any = None

    def __attrs_post_init__(self) -> None:
        if self.ret is not None and self.ret < self.call:
            raise ValueError(f"operation returns before it is called: {self}")

    @property
    def unknown(self) -> bool:
        return self.ret is None

    def describe(self) -> str:
        when = f"[{self.call:g}, {'?' if self.ret is None else f'{self.ret:g}'}]"
        if self.kind == READ:
            what = f"read() -> {self.output!r}"
        elif self.kind == WRITE:
            what = f"write({self.value!r})"
        else:
            res = "?" if self.unknown else repr(self.output)
            what = f"cas({self.expected!r} -> {self.value!r}) -> {res}"
        return f"client {self.client!r} {when} {what}"


def _step(state: State, op: Op) -> State | None:
    """Apply `op` to every value the register might hold; None if no value allows it."""
    if op.kind == WRITE:
        return frozenset((op.value,))
    if op.kind == READ:
        return frozenset((op.output,)) if op.output in state else None
    # compare-and-set
    if op.unknown:
        rest = state - {op.expected}
        return rest | {op.value} if op.expected in state else rest
    if op.output:
        return frozenset((op.value,)) if op.expected in state else None
    rest = state - {op.expected}
    return rest or None


@attrs.frozen
class KeyResult:
    key: Hashable
    ok: bool | None  # None: the search gave up (step budget exhausted)
    ops: tuple[Op, ...]
    linearized: tuple[Op, ...] = ()  # longest linearizable prefix found (for failures)
    steps: int = 0

    def explain(self, limit: int = 40) -> str:
        if self.ok:
            return f"key {self.key!r}: linearizable ({len(self.ops)} ops)"
        head = "not linearizable" if self.ok is False else "undecided (search budget exhausted)"
        lines = [f"key {self.key!r}: {head}; {len(self.ops)} ops"]
        lines.append(f"  longest linearization found ({len(self.linearized)} ops), its tail:")
        lines += [f"    {op.describe()}" for op in self.linearized[-limit // 2 :]]
        done = set(map(id, self.linearized))
        pending = sorted((op for op in self.ops if id(op) not in done), key=lambda o: o.call)
        lines.append("  operations that could not be placed after it (earliest first):")
        lines += [f"    {op.describe()}" for op in pending[: limit // 2]]
        return "\n".join(lines)


@attrs.frozen
class CheckResult:
    keys: tuple[KeyResult, ...]

    @property
    def ok(self) -> bool:
        return all(k.ok for k in self.keys)

    @property
    def violations(self) -> tuple[KeyResult, ...]:
        return tuple(k for k in self.keys if k.ok is False)

    @property
    def undecided(self) -> tuple[KeyResult, ...]:
        return tuple(k for k in self.keys if k.ok is None)

    def explain(self) -> str:
        bad = [k for k in self.keys if not k.ok]
        if not bad:
            return f"linearizable: {len(self.keys)} keys"
        return "\n".join(k.explain() for k in bad)


def check_key(
    ops: Sequence[Op], *, initial: Any = None, max_steps: int = 2_000_000, key: Hashable = None
) -> KeyResult:
    """Decide whether the operations on one register are linearizable."""
    ops = tuple(op for op in ops if not (op.unknown and op.kind == READ))
    n = len(ops)
    if n == 0:
        return KeyResult(key, True, ops)
    # Entries 0..n-1 are calls, n..2n-1 returns; 2n is the head sentinel, 2n+1 the tail.
    order = sorted(
        [(op.call, 0, i) for i, op in enumerate(ops)]
        + [(INFINITY if op.ret is None else op.ret, 1, n + i) for i, op in enumerate(ops)]
    )
    head, tail = 2 * n, 2 * n + 1
    nxt = [0] * (2 * n + 2)
    prv = [0] * (2 * n + 2)
    last = head
    for _, _, e in order:
        nxt[last] = e
        prv[e] = last
        last = e
    nxt[last] = tail
    prv[tail] = last

    state: State = frozenset((initial,))
    linearized = 0
    stack: list[tuple[int, State]] = []
    seen: set[tuple[int, State]] = set()
    best: list[int] = []
    steps = 0
    entry = nxt[head]
    while nxt[head] != tail:
        steps += 1
        if steps > max_steps:
            return KeyResult(key, None, ops, tuple(ops[i] for i in best), steps)
        if entry < n:  # a call: try to linearize it now
            new = _step(state, ops[entry])
            if new is not None:
                bits = linearized | (1 << entry)
                if (bits, new) not in seen:
                    seen.add((bits, new))
                    stack.append((entry, state))
                    state, linearized = new, bits
                    # lift the call and its return out of the list
                    for e in (entry, entry + n):
                        nxt[prv[e]] = nxt[e]
                        prv[nxt[e]] = prv[e]
                    if len(stack) > len(best):
                        best = [e for e, _ in stack]
                    entry = nxt[head]
                    continue
            entry = nxt[entry]
        else:  # a return whose call is not linearized yet: undo the last choice
            if not stack:
                return KeyResult(key, False, ops, tuple(ops[i] for i in best), steps)
            entry, state = stack.pop()
            linearized &= ~(1 << entry)
            for e in (entry + n, entry):  # unlift, in reverse order
                nxt[prv[e]] = e
                prv[nxt[e]] = e
            entry = nxt[entry]
    return KeyResult(key, True, ops, steps=steps)


def check(
    history: Iterable[Op], *, initial: Any = None, max_steps_per_key: int = 2_000_000
) -> CheckResult:
    """Check a multi-key register history, one key at a time."""
    by_key: dict[Hashable, list[Op]] = defaultdict(list)
    for op in history:
        by_key[op.key].append(op)
    return CheckResult(
        tuple(
            check_key(ops, initial=initial, max_steps=max_steps_per_key, key=k)
            for k, ops in by_key.items()
        )
    )
