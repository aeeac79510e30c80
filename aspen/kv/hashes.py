"""Hash commands (HSET, HGET, HINCRBYFLOAT, HRANDFIELD, HSCAN, ...), as Redis 7.0 does them.

A hash is a `Hash` (an insertion-ordered dict field -> value): iteration order is the order of
first insertion on every replica, which is also what Redis's small (listpack) hashes reply.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

from aspen.kv import scanning
from aspen.kv.errors import SYNTAX, CommandError
from aspen.kv.numbers import (
    INT64_MAX,
    INT64_MIN,
    Inf,
    format_long_double,
    parse_int,
    parse_long_double,
    round_ld,
)
from aspen.kv.typed import (
    Argv,
    check_random_count,
    drop_if_empty,
    get_read,
    get_write,
    int_arg,
    rng,
    store,
    touched,
)
from aspen.kv.valuetypes import ValueType
from aspen.resp.values import OK, Map, Pairs

if TYPE_CHECKING:
    from aspen.kv.keyspace import Keyspace


class Hash(dict[bytes, bytes]):
    """A Redis hash (its class is its type tag)."""

    __slots__ = ()


def _dump(value: object) -> object:
    assert isinstance(value, Hash)
    return [x for pair in value.items() for x in pair]


def _load(payload: object) -> object:
    assert isinstance(payload, list)
    it = iter(payload)
    return Hash(zip(it, it, strict=True))


def _copy(value: object) -> object:
    assert isinstance(value, Hash)
    return Hash(value)


HASH_TYPE = ValueType("hash", Hash, _copy, _dump, _load)


def _arity(name: str) -> CommandError:
    return CommandError(f"ERR wrong number of arguments for '{name}' command")


def _hset(ks: Keyspace, argv: Argv, now: int, name: str) -> int:
    if len(argv) < 4 or len(argv) % 2:
        raise _arity(name)
    key = argv[1]
    h = get_write(ks, key, now, Hash)
    fresh = h is None
    if h is None:
        h = Hash()
    before = len(h)
    for i in range(2, len(argv), 2):
        h[argv[i]] = argv[i + 1]
    if fresh:
        store(ks, key, h)
    else:
        touched(ks, key, h)
    return len(h) - before


def hset(ks: Keyspace, argv: Argv, now: int) -> object:
    return _hset(ks, argv, now, "hset")


def hmset(ks: Keyspace, argv: Argv, now: int) -> object:
    _hset(ks, argv, now, "hmset")
    return OK


def hsetnx(ks: Keyspace, argv: Argv, now: int) -> object:
    key, field = argv[1], argv[2]
    h = get_write(ks, key, now, Hash)
    if h is None:
        store(ks, key, Hash({field: argv[3]}))
        return 1
    if field in h:
        return 0
    h[field] = argv[3]
    touched(ks, key, h)
    return 1


def hget(ks: Keyspace, argv: Argv, now: int) -> object:
    h = get_read(ks, argv[1], now, Hash)
    return None if h is None else h.get(argv[2])


def hmget(ks: Keyspace, argv: Argv, now: int) -> object:
    h = get_read(ks, argv[1], now, Hash)
    if h is None:
        return [None] * (len(argv) - 2)
    return [h.get(f) for f in argv[2:]]


def hdel(ks: Keyspace, argv: Argv, now: int) -> object:
    key = argv[1]
    h = get_write(ks, key, now, Hash)
    if h is None:
        return 0
    removed = 0
    for field in argv[2:]:
        if h.pop(field, None) is not None:
            removed += 1
    if removed:
        drop_if_empty(ks, key, h, now)
    return removed


def hexists(ks: Keyspace, argv: Argv, now: int) -> object:
    h = get_read(ks, argv[1], now, Hash)
    return int(h is not None and argv[2] in h)


def hlen(ks: Keyspace, argv: Argv, now: int) -> object:
    h = get_read(ks, argv[1], now, Hash)
    return 0 if h is None else len(h)


def hstrlen(ks: Keyspace, argv: Argv, now: int) -> object:
    h = get_read(ks, argv[1], now, Hash)
    if h is None:
        return 0
    value = h.get(argv[2])
    return 0 if value is None else len(value)


def hkeys(ks: Keyspace, argv: Argv, now: int) -> object:
    h = get_read(ks, argv[1], now, Hash)
    return [] if h is None else list(h)


def hvals(ks: Keyspace, argv: Argv, now: int) -> object:
    h = get_read(ks, argv[1], now, Hash)
    return [] if h is None else list(h.values())


def hgetall(ks: Keyspace, argv: Argv, now: int) -> object:
    h = get_read(ks, argv[1], now, Hash)
    return Map([] if h is None else list(h.items()))


def hincrby(ks: Keyspace, argv: Argv, now: int) -> object:
    key, field = argv[1], argv[2]
    delta = int_arg(argv[3])
    h = get_write(ks, key, now, Hash)
    old = None if h is None else h.get(field)
    current = 0
    if old is not None:
        parsed = parse_int(old)
        if parsed is None:
            raise CommandError("ERR hash value is not an integer")
        current = parsed
    result = current + delta
    if result < INT64_MIN or result > INT64_MAX:
        raise CommandError("ERR increment or decrement would overflow")
    _put(ks, key, h, field, str(result).encode())
    return result


def _put(ks: Keyspace, key: bytes, h: Hash | None, field: bytes, value: bytes) -> None:
    if h is None:
        store(ks, key, Hash({field: value}))
    else:
        h[field] = value
        touched(ks, key, h)


_NAN_INF = "ERR increment would produce NaN or Infinity"


def hincrbyfloat(ks: Keyspace, argv: Argv, now: int) -> object:
    key, field = argv[1], argv[2]
    incr = parse_long_double(argv[3])
    if incr is None:
        raise CommandError("ERR value is not a valid float")
    if isinstance(incr, Inf):
        raise CommandError("ERR value is NaN or Infinity")
    h = get_write(ks, key, now, Hash)
    old = None if h is None else h.get(field)
    current: Fraction | Inf | None = Fraction(0) if old is None else parse_long_double(old)
    if current is None:
        raise CommandError("ERR hash value is not a float")
    if isinstance(current, Inf) or isinstance(incr, Inf):
        raise CommandError(_NAN_INF)
    result = round_ld(current + incr)
    if isinstance(result, Inf):
        raise CommandError(_NAN_INF)
    text = format_long_double(result)
    _put(ks, key, h, field, text)
    return text


def hrandfield(ks: Keyspace, argv: Argv, now: int) -> object:
    if len(argv) == 2:
        h = get_read(ks, argv[1], now, Hash)
        if h is None:
            return None
        return _nth_key(h, rng(ks).randrange(len(h)))
    count = int_arg(argv[2])
    check_random_count(count)
    if len(argv) > 4 or (len(argv) == 4 and argv[3].lower() != b"withvalues"):
        raise CommandError(SYNTAX)
    with_values = len(argv) == 4
    check_random_count(count, with_values)
    h = get_read(ks, argv[1], now, Hash)
    r = rng(ks)
    if h is None or count == 0:
        return []
    fields = list(h)
    if count < 0:
        chosen = [fields[r.randrange(len(fields))] for _ in range(-count)]
    elif count >= len(fields):
        chosen = fields
    else:
        picks = sorted(r.sample(range(len(fields)), count))
        chosen = [fields[i] for i in picks]
    if with_values:  # flat in RESP2, [field, value] pairs in RESP3 (as Redis 7)
        return Pairs([(f, h[f]) for f in chosen])
    return chosen


def _nth_key(h: Hash, n: int) -> bytes:
    for i, key in enumerate(h):
        if i == n:
            return key
    raise IndexError(n)


def hscan(ks: Keyspace, argv: Argv, now: int) -> object:
    args = scanning.parse(argv)
    h = get_read(ks, argv[1], now, Hash)
    if h is None:
        return [b"0", []]
    cursor, page = scanning.page_of(reversed(h), len(h), args)
    out: list[bytes] = []
    for field in page:
        out.append(field)
        out.append(h[field])
    return [cursor, out]
