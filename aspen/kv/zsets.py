"""Sorted-set commands (ZADD, ZRANGE, ZUNIONSTORE, ZSCAN, ...), as Redis 7.0 does them.

A sorted set is a `ZSet`: member -> score (a dict) plus the `(score, member)` pairs in a
`SortedPairs` for O(log n) rank and range. Scores go out as `Double` (a bulk string with
"%.17g" in RESP2, a double in RESP3), as Redis 7.0 sends them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from typing import TYPE_CHECKING

from aspen.kv import scanning
from aspen.kv.errors import SYNTAX, WRONGTYPE, CommandError
from aspen.kv.sets import RSet
from aspen.kv.sortedset import Item, SortedPairs, by_member, by_score
from aspen.kv.typed import (
    Argv,
    check_count,
    check_random_count,
    double_arg,
    drop_if_empty,
    get_read,
    get_write,
    int_arg,
    parse_bound,
    replace,
    rng,
    store,
    touched,
)
from aspen.kv.valuetypes import ValueType
from aspen.resp.protocol import format_double
from aspen.resp.values import NULL_ARRAY, Double, Pairs

if TYPE_CHECKING:
    from aspen.kv.keyspace import Keyspace

NAN_SCORE = "ERR resulting score is not a number (NaN)"
NOT_FLOAT_RANGE = "ERR min or max is not a float"
NOT_LEX_RANGE = "ERR min or max not valid string range item"


class ZSet:
    """A Redis sorted set (its class is its type tag)."""

    __slots__ = ("order", "scores")

    def __init__(self) -> None:
        self.scores: dict[bytes, float] = {}
        self.order = SortedPairs()

    def __len__(self) -> int:
        return len(self.scores)

    def set(self, member: bytes, score: float) -> bool:
        """Set `member`'s score; True if it was added."""
        score += 0.0  # -0 becomes 0: Redis's compact encoding stores "0" (d2string)
        old = self.scores.get(member)
        if old is not None:
            if old == score:  # Redis keeps the old score (0.0 vs -0.0 included)
                return False
            self.order.remove((old, member))
        self.scores[member] = score
        self.order.add((score, member))
        return old is None

    def discard(self, member: bytes) -> bool:
        old = self.scores.pop(member, None)
        if old is None:
            return False
        self.order.remove((old, member))
        return True

    @classmethod
    def from_sorted(cls, items: list[Item]) -> ZSet:
        z = cls()
        z.order = SortedPairs.from_sorted(items)
        z.scores = {m: s for s, m in items}
        return z

    @classmethod
    def from_scores(cls, scores: dict[bytes, float]) -> ZSet:
        return cls.from_sorted(sorted((s + 0.0, m) for m, s in scores.items()))

    def copy(self) -> ZSet:
        z = ZSet()
        z.scores = dict(self.scores)  # same member order: ZSCAN walks it
        z.order = SortedPairs.from_sorted(list(self.order.items()))
        return z


def _dump(value: object) -> object:
    """Members in their dict order (which ZSCAN walks), so a restored replica scans alike."""
    assert isinstance(value, ZSet)
    return [x for m, s in value.scores.items() for x in (m, s)]


def _load(payload: object) -> object:
    assert isinstance(payload, list)
    it = iter(payload)
    z = ZSet()
    z.scores = {m: float(s) for m, s in zip(it, it, strict=True)}
    z.order = SortedPairs.from_sorted(sorted((s, m) for m, s in z.scores.items()))
    return z


ZSET_TYPE = ValueType("zset", ZSet, lambda v: v.copy(), _dump, _load)  # type: ignore[attr-defined]


def _pairs(items: Iterator[Item] | list[Item], with_scores: bool) -> object:
    """Members, or (member, score) pairs: flat in RESP2, nested in RESP3 (as Redis 7)."""
    if with_scores:
        return Pairs([(m, Double(s)) for s, m in items])
    return [m for _, m in items]


# ------------------------------------------------------------------ ZADD and friends

_ZADD_FLAGS = {b"nx", b"xx", b"gt", b"lt", b"ch", b"incr"}


def zadd(ks: Keyspace, argv: Argv, now: int) -> object:
    flags: set[bytes] = set()
    i = 2
    while i < len(argv):
        flag = argv[i].lower()
        if flag not in _ZADD_FLAGS:
            break
        flags.add(flag)
        i += 1
    rest = len(argv) - i
    if rest % 2 or not rest:
        raise CommandError(SYNTAX)
    nx, xx, gt, lt = b"nx" in flags, b"xx" in flags, b"gt" in flags, b"lt" in flags
    incr = b"incr" in flags
    if nx and xx:
        raise CommandError("ERR XX and NX options at the same time are not compatible")
    if (gt and nx) or (lt and nx) or (gt and lt):
        raise CommandError("ERR GT, LT, and/or NX options at the same time are not compatible")
    if incr and rest > 2:
        raise CommandError("ERR INCR option supports a single increment-element pair")
    pairs = [(double_arg(argv[j]), argv[j + 1]) for j in range(i, len(argv), 2)]
    key = argv[1]
    z = get_write(ks, key, now, ZSet)
    if z is None:
        if xx:
            return None if incr else 0
        z = ZSet()
        fresh = True
    else:
        fresh = False
    added = updated = processed = 0
    score = 0.0
    for score, member in pairs:
        cur = z.scores.get(member)
        if cur is None:
            if xx:
                continue
            z.set(member, score)
            added += 1
            processed += 1
            continue
        if nx:
            continue
        if incr:
            score += cur
            if score != score:
                _finish(ks, key, z, fresh, added + updated)
                raise CommandError(NAN_SCORE)
        if (lt and score >= cur) or (gt and score <= cur):
            continue
        processed += 1
        if score != cur:
            z.set(member, score)
            updated += 1
    _finish(ks, key, z, fresh, added + updated)
    if incr:
        return Double(score) if processed else None
    return added + updated if b"ch" in flags else added


def _finish(ks: Keyspace, key: bytes, z: ZSet, fresh: bool, changes: int) -> None:
    if fresh:
        if len(z):
            store(ks, key, z)
    elif changes:
        touched(ks, key, z)


def zincrby(ks: Keyspace, argv: Argv, now: int) -> object:
    delta = double_arg(argv[2])
    key, member = argv[1], argv[3]
    z = get_write(ks, key, now, ZSet)
    fresh = z is None
    if z is None:
        z = ZSet()
    cur = z.scores.get(member)
    score = delta if cur is None else cur + delta
    if score != score:
        raise CommandError(NAN_SCORE)
    z.set(member, score)
    if fresh:
        store(ks, key, z)
    elif cur is None or score != cur:  # Redis signals only an added or changed member
        touched(ks, key, z)
    return Double(score)


def zrem(ks: Keyspace, argv: Argv, now: int) -> object:
    key = argv[1]
    z = get_write(ks, key, now, ZSet)
    if z is None:
        return 0
    removed = sum(1 for m in argv[2:] if z.discard(m))
    if removed:
        drop_if_empty(ks, key, z, now)
    return removed


def zscore(ks: Keyspace, argv: Argv, now: int) -> object:
    z = get_read(ks, argv[1], now, ZSet)
    score = None if z is None else z.scores.get(argv[2])
    return None if score is None else Double(score)


def zmscore(ks: Keyspace, argv: Argv, now: int) -> object:
    z = get_read(ks, argv[1], now, ZSet)
    out: list[object] = []
    for m in argv[2:]:
        score = None if z is None else z.scores.get(m)
        out.append(None if score is None else Double(score))
    return out


def zcard(ks: Keyspace, argv: Argv, now: int) -> object:
    z = get_read(ks, argv[1], now, ZSet)
    return 0 if z is None else len(z)


def _rank(ks: Keyspace, argv: Argv, now: int, rev: bool) -> object:
    z = get_read(ks, argv[1], now, ZSet)
    if z is None:
        return None
    score = z.scores.get(argv[2])
    if score is None:
        return None
    r = z.order.rank((score, argv[2]))
    return len(z) - 1 - r if rev else r


def zrank(ks: Keyspace, argv: Argv, now: int) -> object:
    return _rank(ks, argv, now, rev=False)


def zrevrank(ks: Keyspace, argv: Argv, now: int) -> object:
    return _rank(ks, argv, now, rev=True)


# ------------------------------------------------------------------ ranges


class By(enum.Enum):
    RANK = 0
    SCORE = 1
    LEX = 2


def score_span(z: ZSet, lo_raw: bytes, hi_raw: bytes) -> tuple[int, int]:
    """Ranks [start, stop) of the members with scores in the range (errors first)."""
    lo, hi = parse_bound(lo_raw), parse_bound(hi_raw)
    if lo is None or hi is None:
        raise CommandError(NOT_FLOAT_RANGE)
    return _score_span_parsed(z, lo, hi)


def _score_span_parsed(z: ZSet, lo: tuple[float, bool], hi: tuple[float, bool]) -> tuple[int, int]:
    start = z.order.bisect(lo[0], lo[1], by_score)
    stop = z.order.bisect(hi[0], not hi[1], by_score)
    return start, max(start, stop)


LexBound = tuple[int, bytes]  # (-1 "-", 0 "[", 1 "(", 2 "+"), member


def parse_lex(raw: bytes) -> LexBound | None:
    if raw == b"-":
        return (-1, b"")
    if raw == b"+":
        return (2, b"")
    if raw[:1] == b"[":
        return (0, raw[1:])
    if raw[:1] == b"(":
        return (1, raw[1:])
    return None


def _lex_span_parsed(z: ZSet, lo: LexBound, hi: LexBound) -> tuple[int, int]:
    n = len(z)
    kind, member = lo
    start = 0 if kind == -1 else n if kind == 2 else z.order.bisect(member, kind == 1, by_member)
    kind, member = hi
    stop = n if kind == 2 else 0 if kind == -1 else z.order.bisect(member, kind == 0, by_member)
    return start, max(start, stop)


def lex_span(z: ZSet, lo_raw: bytes, hi_raw: bytes) -> tuple[int, int]:
    lo, hi = parse_lex(lo_raw), parse_lex(hi_raw)
    if lo is None or hi is None:
        raise CommandError(NOT_LEX_RANGE)
    return _lex_span_parsed(z, lo, hi)


def rank_span(start: int, stop: int, n: int) -> tuple[int, int]:
    """Redis's rank normalisation, as a half-open [start, stop)."""
    if start < 0:
        start += n
    if stop < 0:
        stop += n
    start = max(start, 0)
    if start > stop or start >= n:
        return 0, 0
    return start, min(stop, n - 1) + 1


class RangeQuery:
    """A parsed ZRANGE-family request; `items(z)` runs it."""

    def __init__(
        self,
        by: By,
        rev: bool,
        lo: bytes,
        hi: bytes,
        offset: int,
        limit: int,
        with_scores: bool,
    ) -> None:
        self.by, self.rev, self.offset, self.limit = by, rev, offset, limit
        self.with_scores = with_scores
        if rev and by is not By.RANK:
            lo, hi = hi, lo  # BYSCORE/BYLEX REV take max first
        if by is By.RANK:
            self.rank = (int_arg(lo), int_arg(hi))
        elif by is By.SCORE:
            slo, shi = parse_bound(lo), parse_bound(hi)
            if slo is None or shi is None:
                raise CommandError(NOT_FLOAT_RANGE)
            self.scores = (slo, shi)
        else:
            llo, lhi = parse_lex(lo), parse_lex(hi)
            if llo is None or lhi is None:
                raise CommandError(NOT_LEX_RANGE)
            self.lex = (llo, lhi)

    def items(self, z: ZSet) -> list[Item]:
        n = len(z)
        if self.by is By.RANK:
            start, stop = rank_span(self.rank[0], self.rank[1], n)
            if self.rev:
                start, stop = n - stop, n - start
        elif self.by is By.SCORE:
            start, stop = _score_span_parsed(z, *self.scores)
        else:
            start, stop = _lex_span_parsed(z, *self.lex)
        if self.by is not By.RANK:
            if self.offset < 0:
                return []
            if self.rev:
                stop = max(start, stop - self.offset)
                if self.limit >= 0:
                    start = max(start, stop - self.limit)
            else:
                start = min(stop, start + self.offset)
                if self.limit >= 0:
                    stop = min(stop, start + self.limit)
        if self.rev:
            return list(z.order.islice_reversed(start, stop))
        return list(z.order.islice(start, stop))


def parse_range(argv: Argv, first: int, by: By | None, rev: bool | None, store: bool) -> RangeQuery:
    """Options after `lo hi` at argv[first:first+2], as zrangeGenericCommand reads them."""
    with_scores = False
    offset, limit = 0, -1
    j = first + 2
    while j < len(argv):
        opt = argv[j].lower()
        left = len(argv) - j - 1
        if opt == b"withscores" and not store:  # ZRANGESTORE: a syntax error, where it stands
            with_scores = True
        elif opt == b"limit" and left >= 2:
            offset, limit = int_arg(argv[j + 1]), int_arg(argv[j + 2])
            j += 2
        elif rev is None and opt == b"rev":
            rev = True
        elif by is None and opt == b"bylex":
            by = By.LEX
        elif by is None and opt == b"byscore":
            by = By.SCORE
        else:
            raise CommandError(SYNTAX)
        j += 1
    by = By.RANK if by is None else by
    rev = bool(rev)
    if limit != -1 and by is By.RANK:  # Redis tests the count only: LIMIT 5 -1 passes
        raise CommandError(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
        )
    if with_scores and by is By.LEX:
        raise CommandError("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
    return RangeQuery(by, rev, argv[first], argv[first + 1], offset, limit, with_scores)


def _range(ks: Keyspace, argv: Argv, now: int, by: By | None, rev: bool | None) -> object:
    query = parse_range(argv, 2, by, rev, store=False)
    z = get_read(ks, argv[1], now, ZSet)
    if z is None:
        return []
    return _pairs(query.items(z), query.with_scores)


def zrange(ks: Keyspace, argv: Argv, now: int) -> object:
    return _range(ks, argv, now, None, None)


def zrevrange(ks: Keyspace, argv: Argv, now: int) -> object:
    return _range(ks, argv, now, By.RANK, True)


def zrangebyscore(ks: Keyspace, argv: Argv, now: int) -> object:
    return _range(ks, argv, now, By.SCORE, False)


def zrevrangebyscore(ks: Keyspace, argv: Argv, now: int) -> object:
    return _range(ks, argv, now, By.SCORE, True)


def zrangebylex(ks: Keyspace, argv: Argv, now: int) -> object:
    return _range(ks, argv, now, By.LEX, False)


def zrevrangebylex(ks: Keyspace, argv: Argv, now: int) -> object:
    return _range(ks, argv, now, By.LEX, True)


def zrangestore(ks: Keyspace, argv: Argv, now: int) -> object:
    query = parse_range(argv, 3, None, None, store=True)
    z = get_write(ks, argv[2], now, ZSet)
    items = [] if z is None else query.items(z)
    if query.rev:
        items.reverse()
    replace(ks, argv[1], ZSet.from_sorted(items), now)
    return len(items)


def zcount(ks: Keyspace, argv: Argv, now: int) -> object:
    lo, hi = parse_bound(argv[2]), parse_bound(argv[3])
    if lo is None or hi is None:
        raise CommandError(NOT_FLOAT_RANGE)
    z = get_read(ks, argv[1], now, ZSet)
    if z is None:
        return 0
    start, stop = _score_span_parsed(z, lo, hi)
    return stop - start


def zlexcount(ks: Keyspace, argv: Argv, now: int) -> object:
    lo, hi = parse_lex(argv[2]), parse_lex(argv[3])
    if lo is None or hi is None:
        raise CommandError(NOT_LEX_RANGE)
    z = get_read(ks, argv[1], now, ZSet)
    if z is None:
        return 0
    start, stop = _lex_span_parsed(z, lo, hi)
    return stop - start


def _remove_span(ks: Keyspace, key: bytes, z: ZSet, start: int, stop: int, now: int) -> int:
    if start >= stop:
        return 0
    for _, m in z.order.pop_range(start, stop):
        del z.scores[m]
    drop_if_empty(ks, key, z, now)
    return stop - start


def zremrangebyrank(ks: Keyspace, argv: Argv, now: int) -> object:
    start, stop = int_arg(argv[2]), int_arg(argv[3])
    z = get_write(ks, argv[1], now, ZSet)
    if z is None:
        return 0
    lo, hi = rank_span(start, stop, len(z))
    return _remove_span(ks, argv[1], z, lo, hi, now)


def zremrangebyscore(ks: Keyspace, argv: Argv, now: int) -> object:
    lo, hi = parse_bound(argv[2]), parse_bound(argv[3])
    if lo is None or hi is None:
        raise CommandError(NOT_FLOAT_RANGE)
    z = get_write(ks, argv[1], now, ZSet)
    if z is None:
        return 0
    start, stop = _score_span_parsed(z, lo, hi)
    return _remove_span(ks, argv[1], z, start, stop, now)


def zremrangebylex(ks: Keyspace, argv: Argv, now: int) -> object:
    lo, hi = parse_lex(argv[2]), parse_lex(argv[3])
    if lo is None or hi is None:
        raise CommandError(NOT_LEX_RANGE)
    z = get_write(ks, argv[1], now, ZSet)
    if z is None:
        return 0
    start, stop = _lex_span_parsed(z, lo, hi)
    return _remove_span(ks, argv[1], z, start, stop, now)


def _pop(ks: Keyspace, argv: Argv, now: int, top: bool) -> object:
    if len(argv) > 3:
        raise CommandError(SYNTAX)
    counted = len(argv) == 3
    count = check_count(argv[2]) if counted else 1
    key = argv[1]
    z = get_write(ks, key, now, ZSet)
    if z is None or count == 0:
        return []
    n = len(z)
    take = min(count, n)
    start, stop = (n - take, n) if top else (0, take)
    items = z.order.pop_range(start, stop)
    for _, m in items:
        del z.scores[m]
    if top:
        items.reverse()
    drop_if_empty(ks, key, z, now)
    if not counted:  # one member: a flat [member, score] under RESP3 too
        return [x for s, m in items for x in (m, Double(s))]
    return _pairs(items, True)


def zpopmin(ks: Keyspace, argv: Argv, now: int) -> object:
    return _pop(ks, argv, now, top=False)


def zpopmax(ks: Keyspace, argv: Argv, now: int) -> object:
    return _pop(ks, argv, now, top=True)


# ------------------------------------------------------------------ ZUNIONSTORE / ZINTERSTORE


def _source_scores(value: object) -> tuple[int, dict[bytes, float] | RSet]:
    if isinstance(value, ZSet):
        return len(value), value.scores
    assert isinstance(value, RSet)
    return len(value), value


def _aggregate(op: bytes, a: float, b: float) -> float:
    if op == b"sum":
        total = a + b
        return 0.0 if total != total else total
    if op == b"min":
        return a if a < b else b
    return a if a > b else b


def _weighted(weight: float, score: float) -> float:
    value = weight * score
    return 0.0 if value != value else value


class SetOp(enum.Enum):
    UNION = "union"
    INTER = "inter"
    DIFF = "diff"


def _setop(
    ks: Keyspace, argv: Argv, now: int, op: SetOp, store: bool, card: bool = False
) -> object:
    """ZUNION/ZINTER/ZDIFF, their STORE forms and ZINTERCARD (zunionInterDiffGenericCommand).

    Checks run in Redis's order: numkeys, the keys' types, then the options.
    """
    name = argv[0].decode("utf-8", "replace").lower()
    at = 2 if store else 1  # where numkeys stands
    numkeys = int_arg(argv[at])
    if numkeys < 1:
        raise CommandError(f"ERR at least 1 input key is needed for '{name}' command")
    if numkeys > len(argv) - at - 1:
        raise CommandError(SYNTAX)
    lookup = ks.get_write if store else ks.get_read
    sources: list[object | None] = []
    for key in argv[at + 1 : at + 1 + numkeys]:
        value = lookup(key, now)
        if value is not None and not isinstance(value, (ZSet, RSet)):
            raise CommandError(WRONGTYPE)
        sources.append(value)
    weights = [1.0] * numkeys
    aggregate = b"sum"
    with_scores = False
    limit = 0
    j = at + 1 + numkeys
    while j < len(argv):
        remaining = len(argv) - j
        word = argv[j].lower()
        if card:
            if word == b"limit" and remaining >= 2:
                limit = int_arg(argv[j + 1], "ERR LIMIT can't be negative")
                if limit < 0:
                    raise CommandError("ERR LIMIT can't be negative")
                j += 2
                continue
            raise CommandError(SYNTAX)
        if op is not SetOp.DIFF and word == b"weights" and remaining >= numkeys + 1:
            weights = [
                double_arg(w, "ERR weight value is not a float")
                for w in argv[j + 1 : j + 1 + numkeys]
            ]
            j += numkeys + 1
        elif op is not SetOp.DIFF and word == b"aggregate" and remaining >= 2:
            aggregate = argv[j + 1].lower()
            if aggregate not in (b"sum", b"min", b"max"):
                raise CommandError(SYNTAX)
            j += 2
        elif not store and word == b"withscores":
            with_scores = True
            j += 1
        else:
            raise CommandError(SYNTAX)
    inputs = []
    for weight, value in zip(weights, sources, strict=True):
        size, members = (0, {}) if value is None else _source_scores(value)
        inputs.append((size, weight, members))
    if card:
        return _inter_card(inputs, limit)
    if op is SetOp.DIFF:
        result = _diff(inputs)
    else:
        inputs.sort(key=lambda t: t[0])  # smallest first, as Redis orders them (stable here)
        union = op is SetOp.UNION
        result = _union(inputs, aggregate) if union else _inter(inputs, aggregate)
    if store:
        replace(ks, argv[1], ZSet.from_scores(result), now)
        return len(result)
    return _pairs(sorted((s, m) for m, s in result.items()), with_scores)  # -0 stays -0


_Input = tuple[int, float, "dict[bytes, float] | RSet"]


def _score(members: dict[bytes, float] | RSet, m: bytes) -> float:
    return members[m] if isinstance(members, dict) else 1.0


def _union(inputs: list[_Input], aggregate: bytes) -> dict[bytes, float]:
    result: dict[bytes, float] = {}
    for _, weight, members in inputs:
        if not result and weight == 1.0 and isinstance(members, dict):
            result = dict(members)  # 1.0 * score is the score: a C-speed copy (1M members)
            continue
        for m in members:
            score = _weighted(weight, _score(members, m))
            old = result.get(m)
            result[m] = score if old is None else _aggregate(aggregate, old, score)
    return result


def _inter(inputs: list[_Input], aggregate: bytes) -> dict[bytes, float]:
    result: dict[bytes, float] = {}
    if not inputs or inputs[0][0] == 0:
        return result
    _, weight0, first = inputs[0]
    for m in first:
        score = _weighted(weight0, _score(first, m))
        for _, weight, members in inputs[1:]:
            if m not in members:
                break
            score = _aggregate(aggregate, score, _weighted(weight, _score(members, m)))
        else:
            result[m] = score
    return result


def _diff(inputs: list[_Input]) -> dict[bytes, float]:
    """The first input's members (and scores) that no other input holds."""
    _, _, first = inputs[0]
    rest = [members for _, _, members in inputs[1:]]
    return {m: _score(first, m) for m in first if not any(m in other for other in rest)}


def _inter_card(inputs: list[_Input], limit: int) -> int:
    inputs = sorted(inputs, key=lambda t: t[0])
    if inputs[0][0] == 0:
        return 0
    count = 0
    rest = [members for _, _, members in inputs[1:]]
    for m in inputs[0][2]:
        if all(m in other for other in rest):
            count += 1
            if count == limit:
                break
    return count


def zunionstore(ks: Keyspace, argv: Argv, now: int) -> object:
    return _setop(ks, argv, now, SetOp.UNION, store=True)


def zinterstore(ks: Keyspace, argv: Argv, now: int) -> object:
    return _setop(ks, argv, now, SetOp.INTER, store=True)


def zdiffstore(ks: Keyspace, argv: Argv, now: int) -> object:
    return _setop(ks, argv, now, SetOp.DIFF, store=True)


def zunion(ks: Keyspace, argv: Argv, now: int) -> object:
    return _setop(ks, argv, now, SetOp.UNION, store=False)


def zinter(ks: Keyspace, argv: Argv, now: int) -> object:
    return _setop(ks, argv, now, SetOp.INTER, store=False)


def zdiff(ks: Keyspace, argv: Argv, now: int) -> object:
    return _setop(ks, argv, now, SetOp.DIFF, store=False)


def zintercard(ks: Keyspace, argv: Argv, now: int) -> object:
    return _setop(ks, argv, now, SetOp.INTER, store=False, card=True)


# ------------------------------------------------------------------ ZRANDMEMBER / ZMPOP


def zrandmember(ks: Keyspace, argv: Argv, now: int) -> object:
    """Like HRANDFIELD: the picks come from the RNG every replica seeds alike."""
    if len(argv) == 2:
        z = get_read(ks, argv[1], now, ZSet)
        if z is None:
            return None
        return z.order[rng(ks).randrange(len(z))][1]
    count = int_arg(argv[2])
    check_random_count(count)
    if len(argv) > 4 or (len(argv) == 4 and argv[3].lower() != b"withscores"):
        raise CommandError(SYNTAX)
    with_scores = len(argv) == 4
    check_random_count(count, with_scores)
    z = get_read(ks, argv[1], now, ZSet)
    if z is None or count == 0:
        return []
    r = rng(ks)
    n = len(z)
    if count < 0:
        picks = [r.randrange(n) for _ in range(-count)]
    elif count >= n:
        picks = list(range(n))
    else:
        picks = sorted(r.sample(range(n), count))
    items = [z.order[i] for i in picks]
    return _pairs(items, with_scores)


def mpop_args(argv: Argv, first: int) -> tuple[list[bytes], bytes, int]:
    """`numkeys key... MIN|MAX [COUNT n]` from argv[first] on (ZMPOP: 1, BZMPOP: 2, after its
    timeout): the keys, b"min" or b"max", and the count (1 if not given), with Redis's errors."""
    positive = "ERR numkeys should be greater than 0"
    numkeys = int_arg(argv[first], positive)
    if numkeys < 1:
        raise CommandError(positive)
    where_at = first + 1 + numkeys
    if where_at >= len(argv):
        raise CommandError(SYNTAX)
    where = argv[where_at].lower()
    if where not in (b"min", b"max"):
        raise CommandError(SYNTAX)
    count = -1
    j = where_at + 1
    while j < len(argv):
        if count == -1 and argv[j].lower() == b"count" and j + 1 < len(argv):
            count = int_arg(argv[j + 1], "ERR count should be greater than 0")
            if count < 1:
                raise CommandError("ERR count should be greater than 0")
            j += 2
        else:
            raise CommandError(SYNTAX)
    return list(argv[first + 1 : where_at]), where, max(count, 1)


def zmpop(ks: Keyspace, argv: Argv, now: int) -> object:
    """ZMPOP numkeys key... MIN|MAX [COUNT n]: pops from the first non-empty key.

    The pairs are nested in RESP2 too, as Redis 7.0 sends them; nothing to pop is a null array.
    """
    keys, where, count = mpop_args(argv, 1)
    for key in keys:
        z = get_write(ks, key, now, ZSet)
        if z is None:
            continue
        n = len(z)
        take = min(count, n)
        top = where == b"max"
        items = z.order.pop_range(n - take, n) if top else z.order.pop_range(0, take)
        for _, m in items:
            del z.scores[m]
        if top:
            items.reverse()
        drop_if_empty(ks, key, z, now)
        return [key, [[m, Double(s)] for s, m in items]]
    return NULL_ARRAY


def zscan(ks: Keyspace, argv: Argv, now: int) -> object:
    args = scanning.parse(argv)
    z = get_read(ks, argv[1], now, ZSet)
    if z is None:
        return [b"0", []]
    cursor, page = scanning.page_of(
        reversed(z.scores), len(z), args, (m for _, m in z.order.items())
    )
    out: list[bytes] = []
    for m in page:
        out.append(m)
        out.append(format_double(z.scores[m]))
    return [cursor, out]


# ------------------------------------------------------------------ BZPOPMIN / BZPOPMAX
# (the blocking forms; kept apart from the reply-shape code above). Applied from the log they
# never block: pop at once or reply null; the node parks the client on that null and later
# replicates a serve from the key that became non-empty (`aspen.kv.blocking`).

from aspen.kv.blocking import keys_then_timeout, parse_timeout  # noqa: E402
from aspen.kv.spec import Blocking  # noqa: E402


def _bzpop_one(ks: Keyspace, key: bytes, now: int, top: bool) -> list[object]:
    return [key, *_pop(ks, [b"zpop", key], now, top)]  # type: ignore[misc]


def _bzpop(ks: Keyspace, argv: Argv, now: int, top: bool) -> object:
    parse_timeout(argv[-1])
    for key in argv[1:-1]:
        if get_write(ks, key, now, ZSet) is not None:
            return _bzpop_one(ks, key, now, top)
    return NULL_ARRAY


def bzpopmin(ks: Keyspace, argv: Argv, now: int) -> object:
    return _bzpop(ks, argv, now, top=False)


def bzpopmax(ks: Keyspace, argv: Argv, now: int) -> object:
    return _bzpop(ks, argv, now, top=True)


def _serve_bzpop(ks: Keyspace, key: bytes, argv: Argv, now: int) -> object:
    value = ks.get_write(key, now)
    if type(value) is not ZSet or not value:
        return None
    return _bzpop_one(ks, key, now, top=argv[0].lower() == b"bzpopmax")


def score_arg(score: object) -> bytes:
    """A popped score (a RESP3 Double or RESP2 bytes) as ZADD's argument, exactly."""
    value = score.value if isinstance(score, Double) else float(score)  # type: ignore[arg-type]
    return repr(value).encode()


def _bzpop_back(argv: Argv, reply: object) -> list[bytes] | None:
    """BZPOPMIN/BZPOPMAX's give-back: ZADD the popped member with its score."""
    if not isinstance(reply, list):
        return None
    key, member, score = reply
    return [b"zadd", key, score_arg(score), member]


BZPOP: Blocking = Blocking(keys_then_timeout, _serve_bzpop, ZSet, _bzpop_back)
