"""Set commands (SADD, SPOP, SINTERCARD, SSCAN, ...), as Redis 7.0 does them.

A set is a `RSet`: an array of members plus member -> position. Python's own `set` would
iterate in an order that depends on the per-process hash seed, so two replicas would reply
differently; the array order depends only on the commands applied. Removal swaps the last
member into the hole, so SPOP and SRANDMEMBER pick by index in O(1) with the seeded RNG.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from aspen.kv import scanning
from aspen.kv.errors import SYNTAX, CommandError
from aspen.kv.typed import (
    Argv,
    check_count,
    check_random_count,
    drop_if_empty,
    get_read,
    get_write,
    int_arg,
    replace,
    rng,
    store,
    touched,
)
from aspen.kv.valuetypes import ValueType
from aspen.resp.values import Set

if TYPE_CHECKING:
    from aspen.kv.keyspace import Keyspace


class RSet:
    """A Redis set (its class is its type tag)."""

    __slots__ = ("members", "pos")

    def __init__(self, members: Iterable[bytes] = ()) -> None:
        self.members: list[bytes] = []
        self.pos: dict[bytes, int] = {}
        for m in members:
            self.add(m)

    def __len__(self) -> int:
        return len(self.members)

    def __contains__(self, member: object) -> bool:
        return member in self.pos

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.members)

    def add(self, member: bytes) -> bool:
        if member in self.pos:
            return False
        self.pos[member] = len(self.members)
        self.members.append(member)
        return True

    def discard(self, member: bytes) -> bool:
        i = self.pos.pop(member, None)
        if i is None:
            return False
        last = self.members.pop()
        if i < len(self.members):
            self.members[i] = last
            self.pos[last] = i
        return True

    def pop_at(self, i: int) -> bytes:
        member = self.members[i]
        self.discard(member)
        return member

    @classmethod
    def from_unique(cls, members: list[bytes]) -> RSet:
        """A set of `members`, which must hold no duplicates (built at C speed: a Python
        loop of `add` made SUNIONSTORE of 1M members take seconds of every replica's apply)."""
        new = cls()
        new.members = members
        new.pos = dict(zip(members, range(len(members)), strict=True))
        return new

    def copy(self) -> RSet:
        new = RSet()
        new.members = list(self.members)
        new.pos = dict(self.pos)
        return new


SET_TYPE = ValueType(
    "set",
    RSet,
    lambda v: v.copy(),  # type: ignore[attr-defined]
    lambda v: list(v.members),  # type: ignore[attr-defined]
    lambda p: RSet(p),  # type: ignore[arg-type]
)


def sadd(ks: Keyspace, argv: Argv, now: int) -> object:
    key = argv[1]
    s = get_write(ks, key, now, RSet)
    if s is None:
        s = RSet(argv[2:])
        store(ks, key, s)
        return len(s)
    added = sum(1 for m in argv[2:] if s.add(m))
    if added:
        touched(ks, key, s)
    return added


def srem(ks: Keyspace, argv: Argv, now: int) -> object:
    key = argv[1]
    s = get_write(ks, key, now, RSet)
    if s is None:
        return 0
    removed = sum(1 for m in argv[2:] if s.discard(m))
    if removed:
        drop_if_empty(ks, key, s, now)
    return removed


def sismember(ks: Keyspace, argv: Argv, now: int) -> object:
    s = get_read(ks, argv[1], now, RSet)
    return int(s is not None and argv[2] in s)


def smismember(ks: Keyspace, argv: Argv, now: int) -> object:
    s = get_read(ks, argv[1], now, RSet)
    if s is None:
        return [0] * (len(argv) - 2)
    return [int(m in s) for m in argv[2:]]


def smembers(ks: Keyspace, argv: Argv, now: int) -> object:
    s = get_read(ks, argv[1], now, RSet)
    return Set([] if s is None else list(s.members))


def scard(ks: Keyspace, argv: Argv, now: int) -> object:
    s = get_read(ks, argv[1], now, RSet)
    return 0 if s is None else len(s)


def spop(ks: Keyspace, argv: Argv, now: int) -> object:
    if len(argv) > 3:
        raise CommandError(SYNTAX)
    count = check_count(argv[2]) if len(argv) == 3 else None
    key = argv[1]
    s = get_write(ks, key, now, RSet)
    if s is None:
        return None if count is None else Set([])
    r = rng(ks)
    if count is None:
        member = s.pop_at(r.randrange(len(s)))
        drop_if_empty(ks, key, s, now)
        return member
    if count == 0:
        return Set([])
    if count >= len(s):
        out = list(s.members)
        ks.delete(key, now)
        return Set([*out])
    out = [s.pop_at(r.randrange(len(s))) for _ in range(count)]
    touched(ks, key, s)
    return Set([*out])


def srandmember(ks: Keyspace, argv: Argv, now: int) -> object:
    if len(argv) > 3:
        raise CommandError(SYNTAX)
    s = get_read(ks, argv[1], now, RSet) if len(argv) == 2 else None
    r = rng(ks)
    if len(argv) == 2:
        if s is None:
            return None
        return s.members[r.randrange(len(s))]
    count = int_arg(argv[2])
    check_random_count(count)
    s = get_read(ks, argv[1], now, RSet)
    if s is None or count == 0:
        return []
    return random_members(s.members, count, r)


def random_members(members: list[bytes], count: int, r: random.Random) -> list[bytes]:
    """SRANDMEMBER/HRANDFIELD-style picks: distinct for count > 0, with repeats for < 0."""
    n = len(members)
    if count < 0:
        return [members[r.randrange(n)] for _ in range(-count)]
    if count >= n:
        return list(members)
    return [members[i] for i in sorted(r.sample(range(n), count))]


def smove(ks: Keyspace, argv: Argv, now: int) -> object:
    src, dst, member = argv[1], argv[2], argv[3]
    if ks.get_write(src, now) is None:
        return 0  # Redis answers 0 before it looks at either type
    source = get_write(ks, src, now, RSet)
    target = get_write(ks, dst, now, RSet)
    assert source is not None
    if src == dst:
        return int(member in source)
    if not source.discard(member):
        return 0
    drop_if_empty(ks, src, source, now)
    if target is None:
        store(ks, dst, RSet([member]))
    elif target.add(member):
        touched(ks, dst, target)  # Redis signals the destination only if it gained the member
    return 1


def _load_sets(ks: Keyspace, keys: Argv, now: int, write: bool) -> list[RSet | None]:
    get = get_write if write else get_read
    return [get(ks, k, now, RSet) for k in keys]


def _inter(sets: list[RSet | None], limit: int = 0) -> list[bytes]:
    if not sets or any(s is None for s in sets):
        return []
    live = sorted((s for s in sets if s is not None), key=len)
    first, rest = live[0], live[1:]
    out: list[bytes] = []
    for m in first.members:
        if all(m in s for s in rest):
            out.append(m)
            if limit and len(out) >= limit:
                break
    return out


def _union(sets: list[RSet | None]) -> list[bytes]:
    """Members in first-seen order (C speed: dict.fromkeys over the chained member lists)."""
    return list(dict.fromkeys(itertools.chain.from_iterable(s.members for s in sets if s)))


def _diff(sets: list[RSet | None]) -> list[bytes]:
    first = sets[0]
    if first is None:
        return []
    rest = [s for s in sets[1:] if s is not None]
    return [m for m in first.members if not any(m in s for s in rest)]


def sinter(ks: Keyspace, argv: Argv, now: int) -> object:
    return Set([*_inter(_load_sets(ks, argv[1:], now, False))])


def sunion(ks: Keyspace, argv: Argv, now: int) -> object:
    return Set([*_union(_load_sets(ks, argv[1:], now, False))])


def sdiff(ks: Keyspace, argv: Argv, now: int) -> object:
    return Set([*_diff(_load_sets(ks, argv[1:], now, False))])


def _store(ks: Keyspace, argv: Argv, now: int, members: list[bytes]) -> int:
    replace(ks, argv[1], RSet.from_unique(members), now)
    return len(members)


def sinterstore(ks: Keyspace, argv: Argv, now: int) -> object:
    return _store(ks, argv, now, _inter(_load_sets(ks, argv[2:], now, True)))


def sunionstore(ks: Keyspace, argv: Argv, now: int) -> object:
    return _store(ks, argv, now, _union(_load_sets(ks, argv[2:], now, True)))


def sdiffstore(ks: Keyspace, argv: Argv, now: int) -> object:
    return _store(ks, argv, now, _diff(_load_sets(ks, argv[2:], now, True)))


def sintercard(ks: Keyspace, argv: Argv, now: int) -> object:
    numkeys = int_arg(argv[1], "ERR numkeys should be greater than 0")
    if numkeys <= 0:
        raise CommandError("ERR numkeys should be greater than 0")
    if numkeys > len(argv) - 2:
        raise CommandError("ERR Number of keys can't be greater than number of args")
    limit = 0
    i = 2 + numkeys
    while i < len(argv):
        if argv[i].lower() == b"limit" and i + 1 < len(argv):
            limit = int_arg(argv[i + 1], "ERR LIMIT can't be negative")
            if limit < 0:
                raise CommandError("ERR LIMIT can't be negative")
            i += 2
        else:
            raise CommandError(SYNTAX)
    return len(_inter(_load_sets(ks, argv[2 : 2 + numkeys], now, False), limit))


def sscan(ks: Keyspace, argv: Argv, now: int) -> object:
    args = scanning.parse(argv)
    s = get_read(ks, argv[1], now, RSet)
    if s is None:
        return [b"0", []]
    cursor, page = scanning.page_of(reversed(s.members), len(s), args)
    return [cursor, page]
