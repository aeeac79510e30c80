"""String commands (GET, SET and friends), as Redis 7.0 answers them."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import TYPE_CHECKING

from aspen.kv.errors import MAX_STRING, NOT_INTEGER, SYNTAX, CommandError
from aspen.kv.numbers import (
    INT64_MAX,
    INT64_MIN,
    Inf,
    format_long_double,
    parse_int,
    parse_long_double,
    round_ld,
)
from aspen.resp.values import OK

if TYPE_CHECKING:
    from aspen.kv.keyspace import Keyspace

Argv = Sequence[bytes]

_TOO_BIG = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"


def int_arg(raw: bytes) -> int:
    value = parse_int(raw)
    if value is None:
        raise CommandError(NOT_INTEGER)
    return value


def expire_error(name: str) -> CommandError:
    return CommandError(f"ERR invalid expire time in '{name}' command")


def deadline_from(raw: bytes, unit_ms: int, relative: bool, now_ms: int, name: str) -> int:
    """The absolute deadline of an EX/PX/EXAT/PXAT argument; Redis's checks and errors."""
    value = int_arg(raw)
    if value <= 0 or (unit_ms == 1000 and value > INT64_MAX // 1000):
        raise expire_error(name)
    value *= unit_ms
    if relative:
        value += now_ms
    if value <= 0 or value > INT64_MAX:
        raise expire_error(name)
    return value


# Option bits of SET / GETEX.
_NX, _XX, _GET, _KEEPTTL, _PERSIST = 1, 2, 4, 8, 16
_EXPIRE_OPTS = {b"ex": (1000, True), b"px": (1, True), b"exat": (1000, False), b"pxat": (1, False)}


def _parse_set_options(
    argv: Argv, start: int, for_set: bool
) -> tuple[int, tuple[bytes, int, bool] | None]:
    """Flags and raw expiry (value, unit ms, relative) of SET's (for_set) or GETEX's options."""
    flags = 0
    expire: tuple[bytes, int, bool] | None = None
    kind = b""  # the expiry option given; repeating the same one is allowed (last wins)
    i, n = start, len(argv)
    while i < n:
        opt = argv[i].lower()
        if for_set and opt == b"nx" and not flags & _XX:
            flags |= _NX
        elif for_set and opt == b"xx" and not flags & _NX:
            flags |= _XX
        elif for_set and opt == b"get":
            flags |= _GET
        elif for_set and opt == b"keepttl" and expire is None:
            flags |= _KEEPTTL
        elif not for_set and opt == b"persist" and expire is None:
            flags |= _PERSIST
        elif (
            opt in _EXPIRE_OPTS
            and i + 1 < n
            and kind in (b"", opt)
            and not flags & (_KEEPTTL | _PERSIST)
        ):
            unit, relative = _EXPIRE_OPTS[opt]
            expire = (argv[i + 1], unit, relative)
            kind = opt
            i += 1
        else:
            raise CommandError(SYNTAX)
        i += 1
    return flags, expire


def _deadline(expire: tuple[bytes, int, bool] | None, now_ms: int, name: str) -> int | None:
    if expire is None:
        return None
    return deadline_from(expire[0], expire[1], expire[2], now_ms, name)


def get(ks: Keyspace, argv: Argv, now: int) -> object:
    value = ks._data.get(argv[1])
    if value is None:
        return None
    if ks._expires:
        deadline = ks._expires.get(argv[1])
        if deadline is not None and now > deadline:
            return None
    if type(value) is bytes:
        return value
    return ks.get_string_read(argv[1], now)  # raises WRONGTYPE


def set_(ks: Keyspace, argv: Argv, now: int) -> object:
    key = argv[1]
    if len(argv) == 3:  # the plain SET fast path
        if ks._expires:
            ks.get_write(key, now)
        ks.set_value(key, argv[2])
        return OK
    flags, expire = _parse_set_options(argv, 3, for_set=True)
    deadline = _deadline(expire, now, "set")
    old = ks.get_string_write(key, now) if flags & _GET else ks.get_write(key, now)
    found = old is not None
    if (flags & _NX and found) or (flags & _XX and not found):
        return old if flags & _GET else None
    ks.set_value(key, argv[2], keep_ttl=bool(flags & _KEEPTTL))
    if deadline is not None:
        ks.set_deadline(key, deadline)
    return old if flags & _GET else OK


def setnx(ks: Keyspace, argv: Argv, now: int) -> object:
    if ks.get_write(argv[1], now) is not None:
        return 0
    ks.set_value(argv[1], argv[2])
    return 1


def _setex(ks: Keyspace, argv: Argv, now: int, unit: int, name: str) -> object:
    deadline = deadline_from(argv[2], unit, True, now, name)
    ks.get_write(argv[1], now)
    ks.set_value(argv[1], argv[3])
    ks.set_deadline(argv[1], deadline)
    return OK


def setex(ks: Keyspace, argv: Argv, now: int) -> object:
    return _setex(ks, argv, now, 1000, "setex")


def psetex(ks: Keyspace, argv: Argv, now: int) -> object:
    return _setex(ks, argv, now, 1, "psetex")


def getset(ks: Keyspace, argv: Argv, now: int) -> object:
    old = ks.get_string_write(argv[1], now)
    ks.set_value(argv[1], argv[2])
    return old


def getdel(ks: Keyspace, argv: Argv, now: int) -> object:
    old = ks.get_string_write(argv[1], now)
    if old is not None:
        ks.delete(argv[1], now)
    return old


def getex(ks: Keyspace, argv: Argv, now: int) -> object:
    flags, expire = _parse_set_options(argv, 2, for_set=False)
    key = argv[1]
    value = ks.get_string_write(key, now)
    if value is None:
        return None
    deadline = _deadline(expire, now, "getex")  # Redis checks the time after the lookup
    if deadline is not None:
        if deadline <= now:  # only EXAT/PXAT can be in the past: the key goes at once
            ks.delete(key, now)
        else:
            ks.set_deadline(key, deadline)
    elif flags & _PERSIST and ks.deadline(key) is not None:
        ks.set_deadline(key, None)
    return value


def mget(ks: Keyspace, argv: Argv, now: int) -> object:
    out: list[object] = []
    for key in argv[1:]:
        value = ks.get_read(key, now)
        out.append(value if type(value) is bytes else None)
    return out


def _check_pairs(argv: Argv, name: str) -> None:
    if len(argv) % 2 == 0:
        raise CommandError(f"ERR wrong number of arguments for '{name}' command")


def mset(ks: Keyspace, argv: Argv, now: int) -> object:
    _check_pairs(argv, "mset")
    for i in range(1, len(argv), 2):
        ks.get_write(argv[i], now)
        ks.set_value(argv[i], argv[i + 1])
    return OK


def msetnx(ks: Keyspace, argv: Argv, now: int) -> object:
    _check_pairs(argv, "msetnx")
    for i in range(1, len(argv), 2):
        if ks.get_write(argv[i], now) is not None:
            return 0
    for i in range(1, len(argv), 2):
        ks.set_value(argv[i], argv[i + 1])
    return 1


def _check_length(size: int, extra: int) -> None:
    if size + extra > MAX_STRING:
        raise CommandError(_TOO_BIG)


def append(ks: Keyspace, argv: Argv, now: int) -> object:
    key = argv[1]
    old = ks.get_string_write(key, now)
    if old is None:
        ks.set_value(key, argv[2])
        return len(argv[2])
    _check_length(len(old), len(argv[2]))
    new = old + argv[2]
    ks.touch_value(key, new)
    return len(new)


def strlen(ks: Keyspace, argv: Argv, now: int) -> object:
    value = ks.get_string_read(argv[1], now)
    return 0 if value is None else len(value)


def getrange(ks: Keyspace, argv: Argv, now: int) -> object:
    start, end = int_arg(argv[2]), int_arg(argv[3])
    if start < 0 and end < 0 and start > end:
        return b""
    value = ks.get_string_read(argv[1], now)
    if value is None:
        return b""
    n = len(value)
    if start < 0:
        start += n
    if end < 0:
        end += n
    start = max(start, 0)
    end = max(end, 0)
    if end >= n:
        end = n - 1
    if start > end or n == 0:
        return b""
    return value[start : end + 1]


def setrange(ks: Keyspace, argv: Argv, now: int) -> object:
    key, piece = argv[1], argv[3]
    offset = int_arg(argv[2])
    if offset < 0:
        raise CommandError("ERR offset is out of range")
    old = ks.get_string_write(key, now)
    if old is None:
        if not piece:
            return 0
        _check_length(offset, len(piece))
        ks.set_value(key, b"\x00" * offset + piece)
        return offset + len(piece)
    if not piece:
        return len(old)
    _check_length(offset, len(piece))
    if offset > len(old):
        new = old + b"\x00" * (offset - len(old)) + piece
    else:
        new = old[:offset] + piece + old[offset + len(piece) :]
    ks.touch_value(key, new)
    return len(new)


def _incr(ks: Keyspace, key: bytes, delta: int, now: int) -> object:
    old = ks.get_string_write(key, now)
    if old is None:
        current = 0
    else:
        parsed = parse_int(old)
        if parsed is None:
            raise CommandError(NOT_INTEGER)
        current = parsed
    result = current + delta
    if result < INT64_MIN or result > INT64_MAX:
        raise CommandError("ERR increment or decrement would overflow")
    if old is None:
        ks.set_value(key, str(result).encode())
    else:
        ks.touch_value(key, str(result).encode())
    return result


def incr(ks: Keyspace, argv: Argv, now: int) -> object:
    return _incr(ks, argv[1], 1, now)


def decr(ks: Keyspace, argv: Argv, now: int) -> object:
    return _incr(ks, argv[1], -1, now)


def incrby(ks: Keyspace, argv: Argv, now: int) -> object:
    return _incr(ks, argv[1], int_arg(argv[2]), now)


def decrby(ks: Keyspace, argv: Argv, now: int) -> object:
    delta = int_arg(argv[2])
    if delta == INT64_MIN:
        raise CommandError("ERR decrement would overflow")
    return _incr(ks, argv[1], -delta, now)


_NOT_FLOAT = "ERR value is not a valid float"
_NAN_INF = "ERR increment would produce NaN or Infinity"


def incrbyfloat(ks: Keyspace, argv: Argv, now: int) -> object:
    key = argv[1]
    old = ks.get_string_write(key, now)
    current: Fraction | Inf | None = Fraction(0) if old is None else parse_long_double(old)
    incr_by = parse_long_double(argv[2])
    if current is None or incr_by is None:
        raise CommandError(_NOT_FLOAT)
    if isinstance(current, Inf) or isinstance(incr_by, Inf):
        raise CommandError(_NAN_INF)
    result = round_ld(current + incr_by)
    if isinstance(result, Inf):
        raise CommandError(_NAN_INF)
    text = format_long_double(result)
    if old is None:
        ks.set_value(key, text)
    else:
        ks.touch_value(key, text)
    return text
