"""List commands (LPUSH, LRANGE, LPOS, LMOVE, ...), as Redis 7.0 does them.

A list is a `List` (a deque: O(1) at both ends). The blocking forms (BLPOP, BRPOP, BLMOVE,
BRPOPLPUSH, BLMPOP) are here as the keyspace sees them: their non-blocking form (what they do
when applied from the log, and inside MULTI) plus a serve from one key (`aspen.kv.blocking`);
parking the client is the node's job (`aspen.cluster.blocking`).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from aspen.kv.blocking import (
    BlockingCall,
    keys_then_timeout,
    numkeys,
    parse_timeout,
)
from aspen.kv.errors import SYNTAX, CommandError
from aspen.kv.spec import Blocking
from aspen.kv.typed import (
    Argv,
    check_count,
    drop_if_empty,
    get_read,
    get_write,
    int_arg,
    store,
    touched,
)
from aspen.kv.valuetypes import ValueType
from aspen.resp.values import NULL_ARRAY, OK

if TYPE_CHECKING:
    from aspen.kv.keyspace import Keyspace


class List(deque[bytes]):
    """A Redis list (its class is its type tag)."""


LIST_TYPE = ValueType(
    "list",
    List,
    lambda v: List(v),  # type: ignore[call-overload]
    lambda v: list(v),  # type: ignore[call-overload]
    lambda p: List(p),  # type: ignore[call-overload]
)


def _push(ks: Keyspace, argv: Argv, now: int, left: bool, only_existing: bool) -> int:
    key = argv[1]
    lst = get_write(ks, key, now, List)
    if lst is None:
        if only_existing:
            return 0
        lst = List()
        (lst.extendleft if left else lst.extend)(argv[2:])
        store(ks, key, lst)
        return len(lst)
    (lst.extendleft if left else lst.extend)(argv[2:])
    touched(ks, key, lst)
    return len(lst)


def lpush(ks: Keyspace, argv: Argv, now: int) -> object:
    return _push(ks, argv, now, left=True, only_existing=False)


def rpush(ks: Keyspace, argv: Argv, now: int) -> object:
    return _push(ks, argv, now, left=False, only_existing=False)


def lpushx(ks: Keyspace, argv: Argv, now: int) -> object:
    return _push(ks, argv, now, left=True, only_existing=True)


def rpushx(ks: Keyspace, argv: Argv, now: int) -> object:
    return _push(ks, argv, now, left=False, only_existing=True)


def _pop(ks: Keyspace, argv: Argv, now: int, left: bool, name: str) -> object:
    if len(argv) > 3:
        raise CommandError(f"ERR wrong number of arguments for '{name}' command")
    count = check_count(argv[2]) if len(argv) == 3 else None
    key = argv[1]
    lst = get_write(ks, key, now, List)
    if lst is None:
        return None if count is None else NULL_ARRAY
    pop = lst.popleft if left else lst.pop
    if count is None:
        value = pop()
        drop_if_empty(ks, key, lst, now)
        return value
    if count == 0:
        return []
    out = [pop() for _ in range(min(count, len(lst)))]
    drop_if_empty(ks, key, lst, now)
    return out


def lpop(ks: Keyspace, argv: Argv, now: int) -> object:
    return _pop(ks, argv, now, left=True, name="lpop")


def rpop(ks: Keyspace, argv: Argv, now: int) -> object:
    return _pop(ks, argv, now, left=False, name="rpop")


def llen(ks: Keyspace, argv: Argv, now: int) -> object:
    lst = get_read(ks, argv[1], now, List)
    return 0 if lst is None else len(lst)


def _span(start: int, stop: int, n: int) -> tuple[int, int] | None:
    """Redis's index normalisation for LRANGE/LTRIM: a [start, stop] slice or None if empty."""
    if start < 0:
        start += n
    if stop < 0:
        stop += n
    start = max(start, 0)
    if start > stop or start >= n:
        return None
    return start, min(stop, n - 1)


def lrange(ks: Keyspace, argv: Argv, now: int) -> object:
    start, stop = int_arg(argv[2]), int_arg(argv[3])
    lst = get_read(ks, argv[1], now, List)
    if lst is None:
        return []
    span = _span(start, stop, len(lst))
    if span is None:
        return []
    lo, hi = span
    n = len(lst)
    if lo > n - 1 - hi:  # nearer the tail: walk backwards
        tail = list(itertools.islice(reversed(lst), n - 1 - hi, n - lo))
        tail.reverse()
        return tail
    return list(itertools.islice(lst, lo, hi + 1))


def lindex(ks: Keyspace, argv: Argv, now: int) -> object:
    lst = get_read(ks, argv[1], now, List)  # Redis looks the key up first
    if lst is None:
        return None
    index = int_arg(argv[2])
    if index < 0:
        index += len(lst)
    if not 0 <= index < len(lst):
        return None
    return lst[index]


def lset(ks: Keyspace, argv: Argv, now: int) -> object:
    key = argv[1]
    lst = get_write(ks, key, now, List)  # Redis looks the key up first
    if lst is None:
        raise CommandError("ERR no such key")
    index = int_arg(argv[2])
    if index < 0:
        index += len(lst)
    if not 0 <= index < len(lst):
        raise CommandError("ERR index out of range")
    lst[index] = argv[3]
    touched(ks, key, lst)
    return OK


def linsert(ks: Keyspace, argv: Argv, now: int) -> object:
    where = argv[2].lower()
    if where not in (b"before", b"after"):
        raise CommandError(SYNTAX)
    key, pivot = argv[1], argv[3]
    lst = get_write(ks, key, now, List)
    if lst is None:
        return 0
    for i, item in enumerate(lst):
        if item == pivot:
            lst.insert(i if where == b"before" else i + 1, argv[4])
            touched(ks, key, lst)
            return len(lst)
    return -1


def lrem(ks: Keyspace, argv: Argv, now: int) -> object:
    key, value = argv[1], argv[3]
    count = int_arg(argv[2])
    lst = get_write(ks, key, now, List)
    if lst is None:
        return 0
    items = list(lst) if count >= 0 else list(reversed(lst))
    limit = abs(count) if count else len(items)
    kept: list[bytes] = []
    removed = 0
    for item in items:
        if removed < limit and item == value:
            removed += 1
        else:
            kept.append(item)
    if not removed:
        return 0
    if count < 0:
        kept.reverse()
    lst.clear()
    lst.extend(kept)
    drop_if_empty(ks, key, lst, now)
    return removed


def ltrim(ks: Keyspace, argv: Argv, now: int) -> object:
    key = argv[1]
    start, stop = int_arg(argv[2]), int_arg(argv[3])
    lst = get_write(ks, key, now, List)
    if lst is None:
        return OK
    n = len(lst)
    span = _span(start, stop, n)
    if span is None:
        lst.clear()
    else:
        lo, hi = span
        for _ in range(n - 1 - hi):
            lst.pop()
        for _ in range(lo):
            lst.popleft()
    drop_if_empty(ks, key, lst, now)
    return OK


_RANK_ZERO = (
    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... "
    "or use negative to start from the end of the list"
)


def lpos(ks: Keyspace, argv: Argv, now: int) -> object:
    rank, count, maxlen = 1, None, 0
    i = 3
    while i < len(argv):
        opt = argv[i].lower()
        if i + 1 >= len(argv):
            raise CommandError(SYNTAX)
        if opt == b"rank":
            rank = int_arg(argv[i + 1])
            if rank == 0:
                raise CommandError(_RANK_ZERO)
        elif opt == b"count":
            count = int_arg(argv[i + 1], "ERR COUNT can't be negative")
            if count < 0:
                raise CommandError("ERR COUNT can't be negative")
        elif opt == b"maxlen":
            maxlen = int_arg(argv[i + 1], "ERR MAXLEN can't be negative")
            if maxlen < 0:
                raise CommandError("ERR MAXLEN can't be negative")
        else:
            raise CommandError(SYNTAX)
        i += 2
    lst = get_read(ks, argv[1], now, List)
    if lst is None:
        return None if count is None else []
    want = argv[2]
    n = len(lst)
    walk: Iterator[tuple[int, bytes]]
    if rank > 0:
        walk = enumerate(lst)
        skip = rank - 1
    else:
        walk = zip(range(n - 1, -1, -1), reversed(lst), strict=True)
        skip = -rank - 1
    limit = count if count else None
    found: list[int] = []
    for seen, (index, item) in enumerate(walk):
        if maxlen and seen >= maxlen:
            break
        if item == want:
            if skip:
                skip -= 1
                continue
            found.append(index)
            if count is None or (limit is not None and len(found) >= limit):
                break
    if count is None:
        return found[0] if found else None
    return found


def _side(raw: bytes) -> bool:
    """True for LEFT, False for RIGHT."""
    side = raw.lower()
    if side == b"left":
        return True
    if side == b"right":
        return False
    raise CommandError(SYNTAX)


def _move(ks: Keyspace, now: int, src: bytes, dst: bytes, from_left: bool, to_left: bool) -> object:
    source = get_write(ks, src, now, List)
    if source is None:
        return None
    target = get_write(ks, dst, now, List)
    value = source.popleft() if from_left else source.pop()
    if src == dst:
        (source.appendleft if to_left else source.append)(value)
        touched(ks, src, source)
        return value
    drop_if_empty(ks, src, source, now)
    if target is None:
        store(ks, dst, List([value]))
    else:
        (target.appendleft if to_left else target.append)(value)
        touched(ks, dst, target)
    return value


def lmove(ks: Keyspace, argv: Argv, now: int) -> object:
    from_left, to_left = _side(argv[3]), _side(argv[4])
    return _move(ks, now, argv[1], argv[2], from_left, to_left)


def rpoplpush(ks: Keyspace, argv: Argv, now: int) -> object:
    return _move(ks, now, argv[1], argv[2], from_left=False, to_left=True)


# ------------------------------------------------------------------ LMPOP and the blocking forms
# Applied from the log they never block: pop at once or reply null. The node parks the client
# on that null and later replicates a serve (`_serve_*`) from the key that became non-empty.


def _list_to_serve(ks: Keyspace, key: bytes, now: int) -> List | None:
    """The list at `key` if it can serve a blocked client (a non-empty list), else None."""
    value = ks.get_write(key, now)
    return value if type(value) is List and value else None


def _pop_one(ks: Keyspace, key: bytes, lst: List, left: bool, now: int) -> list[object]:
    value = lst.popleft() if left else lst.pop()
    drop_if_empty(ks, key, lst, now)
    return [key, value]


def _bpop(ks: Keyspace, argv: Argv, now: int, left: bool) -> object:
    parse_timeout(argv[-1])
    for key in argv[1:-1]:
        lst = get_write(ks, key, now, List)
        if lst is not None:
            return _pop_one(ks, key, lst, left, now)
    return NULL_ARRAY


def blpop(ks: Keyspace, argv: Argv, now: int) -> object:
    return _bpop(ks, argv, now, left=True)


def brpop(ks: Keyspace, argv: Argv, now: int) -> object:
    return _bpop(ks, argv, now, left=False)


def _serve_bpop(left: bool) -> Callable[[Keyspace, bytes, Argv, int], object]:
    def serve(ks: Keyspace, key: bytes, argv: Argv, now: int) -> object:
        lst = _list_to_serve(ks, key, now)
        return None if lst is None else _pop_one(ks, key, lst, left, now)

    return serve


def _push_back(left: bool) -> Callable[[Argv, object], list[bytes] | None]:
    """BLPOP/BRPOP's give-back: push the popped element back where it came from."""

    def give_back(argv: Argv, reply: object) -> list[bytes] | None:
        if not isinstance(reply, list):
            return None
        key, value = reply
        return [b"lpush" if left else b"rpush", key, value]

    return give_back


BLPOP = Blocking(keys_then_timeout, _serve_bpop(left=True), List, _push_back(left=True))
BRPOP = Blocking(keys_then_timeout, _serve_bpop(left=False), List, _push_back(left=False))


def blmove(ks: Keyspace, argv: Argv, now: int) -> object:
    from_left, to_left = _side(argv[3]), _side(argv[4])
    parse_timeout(argv[5])
    return _move(ks, now, argv[1], argv[2], from_left, to_left)


def brpoplpush(ks: Keyspace, argv: Argv, now: int) -> object:
    parse_timeout(argv[3])
    return _move(ks, now, argv[1], argv[2], from_left=False, to_left=True)


def _serve_blmove(ks: Keyspace, key: bytes, argv: Argv, now: int) -> object:
    if _list_to_serve(ks, key, now) is None:
        return None
    if argv[0].lower() == b"brpoplpush":
        return _move(ks, now, key, argv[2], from_left=False, to_left=True)
    return _move(ks, now, key, argv[2], _side(argv[3]), _side(argv[4]))


def _move_back(argv: Argv, reply: object) -> list[bytes] | None:
    """BLMOVE/BRPOPLPUSH's give-back: move the element from the destination to its source."""
    if not isinstance(reply, bytes):
        return None
    src, dst = argv[1], argv[2]
    wherefrom, whereto = (argv[3], argv[4]) if argv[0].lower() == b"blmove" else (
        b"right", b"left")
    return [b"lmove", dst, src, whereto, wherefrom]


BLMOVE = Blocking(
    lambda argv: BlockingCall((argv[1],), parse_timeout(argv[5]), 1), _serve_blmove, List,
    _move_back,
)
BRPOPLPUSH = Blocking(
    lambda argv: BlockingCall((argv[1],), parse_timeout(argv[3]), 1), _serve_blmove, List,
    _move_back,
)


def _mpop_args(argv: Argv, first: int) -> tuple[list[bytes], bool, int]:
    """LMPOP's `numkeys key [key ...] LEFT|RIGHT [COUNT count]` from argv[first]: keys, side,
    count; checked in Redis's order."""
    n = numkeys(argv[first], len(argv) - first - 2)
    keys = list(argv[first + 1 : first + 1 + n])
    left = _side(argv[first + 1 + n])
    count = -1
    j = first + 2 + n
    while j < len(argv):
        if count == -1 and argv[j].lower() == b"count" and j + 1 < len(argv):
            parsed = int_arg(argv[j + 1], "ERR count should be greater than 0")
            if parsed <= 0:
                raise CommandError("ERR count should be greater than 0")
            count = parsed
            j += 2
        else:
            raise CommandError(SYNTAX)
    return keys, left, max(count, 1)


def _pop_many(ks: Keyspace, key: bytes, lst: List, left: bool, count: int, now: int) -> object:
    pop = lst.popleft if left else lst.pop
    out = [pop() for _ in range(min(count, len(lst)))]
    drop_if_empty(ks, key, lst, now)
    return [key, out]


def _mpop(ks: Keyspace, keys: list[bytes], left: bool, count: int, now: int) -> object:
    for key in keys:
        lst = get_write(ks, key, now, List)
        if lst is not None:
            return _pop_many(ks, key, lst, left, count, now)
    return NULL_ARRAY


def lmpop(ks: Keyspace, argv: Argv, now: int) -> object:
    keys, left, count = _mpop_args(argv, 1)
    return _mpop(ks, keys, left, count, now)


def blmpop(ks: Keyspace, argv: Argv, now: int) -> object:
    keys, left, count = _mpop_args(argv, 2)
    parse_timeout(argv[1])
    return _mpop(ks, keys, left, count, now)


def _blmpop_call(argv: Argv) -> BlockingCall:
    keys, _, count = _mpop_args(argv, 2)
    return BlockingCall(tuple(keys), parse_timeout(argv[1]), count)


def _serve_blmpop(ks: Keyspace, key: bytes, argv: Argv, now: int) -> object:
    lst = _list_to_serve(ks, key, now)
    if lst is None:
        return None
    _, left, count = _mpop_args(argv, 2)
    return _pop_many(ks, key, lst, left, count, now)


def _blmpop_back(argv: Argv, reply: object) -> list[bytes] | None:
    """BLMPOP's give-back: push the popped elements back, in their order, on their side."""
    if not isinstance(reply, list):
        return None
    key, values = reply
    side = argv[3 + int(argv[2])].lower()
    return [b"lpush" if side == b"left" else b"rpush", key, *reversed(values)]


BLMPOP = Blocking(_blmpop_call, _serve_blmpop, List, _blmpop_back)
