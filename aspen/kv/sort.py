"""SORT and SORT_RO, as Redis 7.0 answers them.

The elements of a list, set or sorted set, ordered numerically (by their own value or a
weight key found through a BY pattern) or lexically (ALPHA), windowed by LIMIT, mapped through
GET patterns (`#` is the element, `pre*post` a string key, `pre*->field` a hash field), and
returned or stored as a list (STORE).

Orders Redis leaves to its data structures: BY a constant pattern ("nosort") keeps a list's or
sorted set's own order; a set comes out in Aspen's set order, except a set Redis would keep as
an intset (only integers, at most 512 of them), which Redis walks in ascending integer order,
and so does Aspen. Lexical order without STORE is strcoll's in the C locale (bytes up to the
first NUL, as strcmp); with STORE it is binary.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

from aspen.kv.errors import SYNTAX, WRONGTYPE, CommandError
from aspen.kv.hashes import Hash
from aspen.kv.lists import List
from aspen.kv.numbers import parse_int
from aspen.kv.sets import RSet
from aspen.kv.typed import replace, strtod
from aspen.kv.zsets import ZSet

if TYPE_CHECKING:
    from aspen.kv.keyspace import Keyspace

Argv = Sequence[bytes]

INTSET_MAX_ENTRIES = 512
"""Redis's set-max-intset-entries default."""


def lookup_by_pattern(ks: Keyspace, pattern: bytes, element: bytes, now: int) -> bytes | None:
    """The value a BY/GET pattern names for `element` (None: nothing there)."""
    if pattern == b"#":
        return element
    star = pattern.find(b"*")
    if star < 0:
        return None
    arrow = pattern.find(b"->", star + 1)
    field: bytes | None = None
    key_end = len(pattern)
    if arrow >= 0 and arrow + 2 < len(pattern):
        field = pattern[arrow + 2 :]
        key_end = arrow
    key = pattern[:star] + element + pattern[star + 1 : key_end]
    value = ks.get_read(key, now)
    if value is None:
        return None
    if field is not None:
        return value.get(field) if type(value) is Hash else None
    return value if type(value) is bytes else None


def _strcmp(a: bytes, b: bytes) -> int:
    a = a.split(b"\0", 1)[0]
    b = b.split(b"\0", 1)[0]
    return (a > b) - (a < b)


def _bincmp(a: bytes, b: bytes) -> int:
    return (a > b) - (a < b)


def _is_intset(members: RSet) -> bool:
    if len(members) > INTSET_MAX_ENTRIES:
        return False
    return all(parse_int(m) is not None for m in members)


def set_order(members: RSet) -> list[bytes]:
    """A set's elements in the order Redis iterates them where that order is defined."""
    if _is_intset(members):
        return sorted(members, key=lambda m: parse_int(m) or 0)
    return list(members)


def _sort(ks: Keyspace, argv: Argv, now: int, readonly: bool) -> object:
    desc = alpha = dontsort = False
    limit_start, limit_count = 0, -1
    sort_by: bytes | None = None
    store: bytes | None = None
    gets: list[bytes] = []
    j, argc = 2, len(argv)
    while j < argc:
        left = argc - j - 1
        opt = argv[j].lower()
        if opt == b"asc":
            desc = False
        elif opt == b"desc":
            desc = True
        elif opt == b"alpha":
            alpha = True
        elif opt == b"limit" and left >= 2:
            start_v, count_v = parse_int(argv[j + 1]), parse_int(argv[j + 2])
            if start_v is None or count_v is None:
                raise CommandError("ERR value is not an integer or out of range")
            limit_start, limit_count = start_v, count_v
            j += 2
        elif not readonly and opt == b"store" and left >= 1:
            store = argv[j + 1]
            j += 1
        elif opt == b"by" and left >= 1:
            sort_by = argv[j + 1]
            if b"*" not in sort_by:
                dontsort = True  # and it stays so, even if a later BY has a '*' (Redis)
            j += 1
        elif opt == b"get" and left >= 1:
            gets.append(argv[j + 1])
            j += 1
        else:
            raise CommandError(SYNTAX)
        j += 1
    value = ks.get_read(argv[1], now)
    if value is not None and type(value) not in (List, RSet, ZSet):
        raise CommandError(WRONGTYPE)
    if dontsort and type(value) is RSet and store is not None:
        dontsort, alpha, sort_by = False, True, None  # a stable order for what is stored
    if value is None:
        elements: list[bytes] = []
    elif type(value) is ZSet:
        elements = [m for _, m in value.order.items()] if dontsort else list(value.scores)
    elif type(value) is RSet:
        elements = set_order(value)
    elif type(value) is List:
        elements = list(value)
    else:
        elements = []
    n = len(elements)
    start = min(max(limit_start, 0), n)
    count = min(max(limit_count, -1), n)
    end = n - 1 if count < 0 else start + count - 1
    if start >= n:
        start, end = n - 1, n - 2
    end = min(end, n - 1)
    if dontsort and type(value) in (List, ZSet) and desc:
        elements.reverse()
    if not dontsort:
        elements = _sorted(ks, elements, sort_by, alpha, desc, store is not None, now)
    window = elements[start : end + 1] if end >= start else []
    if store is None:
        if not gets:
            return window
        out: list[object] = []
        for element in window:
            for pattern in gets:
                out.append(lookup_by_pattern(ks, pattern, element, now))
        return out
    result = List()
    for element in window:
        if not gets:
            result.append(element)
        for pattern in gets:
            found = lookup_by_pattern(ks, pattern, element, now)
            result.append(b"" if found is None else found)
    replace(ks, store, result, now)
    return len(result)


def _sorted(
    ks: Keyspace, elements: list[bytes], sort_by: bytes | None, alpha: bool, desc: bool,
    storing: bool, now: int,
) -> list[bytes]:
    """`elements` in SORT's order (a stable sort, as glibc's qsort is here)."""
    weights: list[object] = []
    bad = False
    for element in elements:
        weight = element if sort_by is None else lookup_by_pattern(ks, sort_by, element, now)
        if alpha:
            weights.append(weight if sort_by is not None else None)
            continue
        if weight is None:
            weights.append(0.0)
            continue
        text = weight.split(b"\0", 1)[0]
        score, used, range_error = strtod(text)
        if used != len(text) or range_error or score != score:
            bad = True
        weights.append(score)
    if bad:
        raise CommandError("ERR One or more scores can't be converted into double")
    strcmp = _bincmp if storing else _strcmp
    sign = -1 if desc else 1

    def compare(a: tuple[object, bytes], b: tuple[object, bytes]) -> int:
        wa, ea = a
        wb, eb = b
        if not alpha:
            fa, fb = float(wa), float(wb)  # type: ignore[arg-type]
            cmp = (fa > fb) - (fa < fb) or _bincmp(ea, eb)
        elif sort_by is not None:
            if wa is None or wb is None:
                cmp = 0 if wa is wb else (-1 if wa is None else 1)
            else:
                cmp = strcmp(wa, wb)  # type: ignore[arg-type]
        else:
            cmp = strcmp(ea, eb)
        return sign * cmp

    pairs = sorted(zip(weights, elements, strict=True), key=functools.cmp_to_key(compare))
    return [e for _, e in pairs]


def sort(ks: Keyspace, argv: Argv, now: int) -> object:
    return _sort(ks, argv, now, readonly=False)


def sort_ro(ks: Keyspace, argv: Argv, now: int) -> object:
    return _sort(ks, argv, now, readonly=True)
