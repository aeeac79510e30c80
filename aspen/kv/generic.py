"""Key-space and expiry commands (DEL, SCAN, RENAME, EXPIRE, TTL, ...), as Redis 7.0 does them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from aspen.kv.databases import SAME_OBJECT, checked_db
from aspen.kv.errors import SYNTAX, CommandError
from aspen.kv.glob import compile_glob
from aspen.kv.numbers import INT64_MAX, INT64_MIN
from aspen.kv.strings import expire_error, int_arg
from aspen.kv.valuetypes import type_name
from aspen.resp.values import OK, SimpleString

if TYPE_CHECKING:
    from aspen.kv.keyspace import Keyspace

Argv = Sequence[bytes]


def _delete_many(ks: Keyspace, argv: Argv, now: int) -> int:
    return sum(1 for key in argv[1:] if ks.delete(key, now))


def del_(ks: Keyspace, argv: Argv, now: int) -> object:
    return _delete_many(ks, argv, now)


def unlink(ks: Keyspace, argv: Argv, now: int) -> object:
    return _delete_many(ks, argv, now)


def exists(ks: Keyspace, argv: Argv, now: int) -> object:
    return sum(1 for key in argv[1:] if ks.get_read(key, now) is not None)


def touch(ks: Keyspace, argv: Argv, now: int) -> object:
    return sum(1 for key in argv[1:] if ks.get_read(key, now) is not None)


_TYPE_REPLIES: dict[str, SimpleString] = {}


def type_(ks: Keyspace, argv: Argv, now: int) -> object:
    value = ks.get_read(argv[1], now)
    name = "none" if value is None else type_name(value)
    reply = _TYPE_REPLIES.get(name)
    if reply is None:
        reply = _TYPE_REPLIES[name] = SimpleString(name)
    return reply


def keys(ks: Keyspace, argv: Argv, now: int) -> object:
    if argv[1] == b"*":  # Redis's allkeys shortcut: the empty key too
        return ks.live_keys(now)
    match = compile_glob(argv[1])
    return [k for k in ks.live_keys(now) if match(k)]


def _parse_cursor(raw: bytes) -> int:
    """Redis's strtoul-based cursor parse: decimal digits that fit in 64 unsigned bits."""
    if not raw.isdigit() or int(raw) >= 2**64:
        raise CommandError("ERR invalid cursor")
    return int(raw)


def scan(ks: Keyspace, argv: Argv, now: int) -> object:
    cursor = _parse_cursor(argv[1])
    count = 10
    pattern: bytes | None = None
    want_type: str | None = None
    i = 2
    while i < len(argv):
        opt = argv[i].lower()
        if i + 1 >= len(argv):
            raise CommandError(SYNTAX)
        if opt == b"count":
            count = int_arg(argv[i + 1])
            if count < 1:
                raise CommandError(SYNTAX)
        elif opt == b"match":
            pattern = argv[i + 1]
        elif opt == b"type":
            want_type = argv[i + 1].decode("utf-8", "replace").lower()
        else:
            raise CommandError(SYNTAX)
        i += 2
    match = compile_glob(pattern) if pattern is not None and pattern != b"*" else None

    def accept(key: bytes, value: object) -> bool:
        if match is not None and not match(key):
            return False
        return want_type is None or type_name(value) == want_type

    next_cursor, found = ks.scan(cursor, count, now, accept)
    return [str(next_cursor).encode(), found]


def dbsize(ks: Keyspace, argv: Argv, now: int) -> object:
    return ks.live_count(now)


def _flush_args(argv: Argv) -> None:
    if len(argv) > 2 or (len(argv) == 2 and argv[1].lower() not in (b"async", b"sync")):
        raise CommandError(SYNTAX)


def flushdb(ks: Keyspace, argv: Argv, now: int) -> object:
    _flush_args(argv)
    ks.flush(now)
    return OK


def flushall(ks: Keyspace, argv: Argv, now: int) -> object:
    _flush_args(argv)
    ks.flush_all(now)
    return OK


def _rename(ks: Keyspace, argv: Argv, now: int, nx: bool) -> object:
    src, dst = argv[1], argv[2]
    value = ks.get_write(src, now)
    if value is None:
        raise CommandError("ERR no such key")
    if src == dst:
        return 0 if nx else OK
    deadline = ks.deadline(src)
    if ks.get_write(dst, now) is not None:
        if nx:
            return 0
        ks.delete(dst, now)
    ks.delete(src, now)
    ks.set_value(dst, value)
    if deadline is not None:
        ks.set_deadline(dst, deadline)
    return 1 if nx else OK


def rename(ks: Keyspace, argv: Argv, now: int) -> object:
    return _rename(ks, argv, now, nx=False)


def renamenx(ks: Keyspace, argv: Argv, now: int) -> object:
    return _rename(ks, argv, now, nx=True)


def randomkey(ks: Keyspace, argv: Argv, now: int) -> object:
    return ks.random_key(now, ks.seed)


def copy(ks: Keyspace, argv: Argv, now: int) -> object:
    src, dst = argv[1], argv[2]
    replace = False
    here = db = ks.db
    i = 3
    while i < len(argv):
        opt = argv[i].lower()
        if opt == b"replace":
            replace = True
        elif opt == b"db" and i + 1 < len(argv):
            db = checked_db(ks, argv[i + 1])  # Redis checks the range at once
            i += 1
        else:
            raise CommandError(SYNTAX)
        i += 1
    if src == dst and db == here:
        raise CommandError(SAME_OBJECT)
    value = ks.get_write(src, now)
    if value is None:
        return 0
    deadline = ks.deadline(src)
    ks.select(db)
    try:
        if ks.get_write(dst, now) is not None:
            if not replace:
                return 0
            ks.delete(dst, now)
        ks.set_value(dst, ks.copy_value(value))
        if deadline is not None:
            ks.set_deadline(dst, deadline)
    finally:
        ks.select(here)
    return 1


# ------------------------------------------------------------------ expiry

_NX, _XX, _GT, _LT = 1, 2, 4, 8
_EXPIRE_FLAGS = {b"nx": _NX, b"xx": _XX, b"gt": _GT, b"lt": _LT}


def _expire(ks: Keyspace, argv: Argv, now: int, unit: int, relative: bool, name: str) -> object:
    flags = 0
    for raw in argv[3:]:
        flag = _EXPIRE_FLAGS.get(raw.lower())
        if flag is None:
            raise CommandError(f"ERR Unsupported option {raw.decode('utf-8', 'replace')}")
        flags |= flag
    if flags & _NX and flags & (_XX | _GT | _LT):
        raise CommandError("ERR NX and XX, GT or LT options at the same time are not compatible")
    if flags & _GT and flags & _LT:
        raise CommandError("ERR GT and LT options at the same time are not compatible")
    when = int_arg(argv[2])
    if unit == 1000:
        if when > INT64_MAX // 1000 or when < INT64_MIN // 1000:
            raise expire_error(name)
        when *= 1000
    base = now if relative else 0
    if when > INT64_MAX - base:
        raise expire_error(name)
    when += base
    key = argv[1]
    if ks.get_write(key, now) is None:
        return 0
    current = ks.deadline(key)
    if flags:
        if flags & _NX and current is not None:
            return 0
        if flags & _XX and current is None:
            return 0
        if flags & _GT and (current is None or when <= current):
            return 0
        if flags & _LT and current is not None and when >= current:
            return 0
    if when <= now:
        ks.delete(key, now)
    else:
        ks.set_deadline(key, when)
    return 1


def expire(ks: Keyspace, argv: Argv, now: int) -> object:
    return _expire(ks, argv, now, 1000, True, "expire")


def pexpire(ks: Keyspace, argv: Argv, now: int) -> object:
    return _expire(ks, argv, now, 1, True, "pexpire")


def expireat(ks: Keyspace, argv: Argv, now: int) -> object:
    return _expire(ks, argv, now, 1000, False, "expireat")


def pexpireat(ks: Keyspace, argv: Argv, now: int) -> object:
    return _expire(ks, argv, now, 1, False, "pexpireat")


def _ttl_ms(ks: Keyspace, key: bytes, now: int) -> int | None:
    """Remaining ms (>= 0), -1 for no TTL, or None for a missing key."""
    if ks.get_read(key, now) is None:
        return None
    deadline = ks.deadline(key)
    if deadline is None:
        return -1
    return max(deadline - now, 0)


def ttl(ks: Keyspace, argv: Argv, now: int) -> object:
    ms = _ttl_ms(ks, argv[1], now)
    if ms is None:
        return -2
    return -1 if ms == -1 else (ms + 500) // 1000


def pttl(ks: Keyspace, argv: Argv, now: int) -> object:
    ms = _ttl_ms(ks, argv[1], now)
    return -2 if ms is None else ms


def _expiretime(ks: Keyspace, argv: Argv, now: int, unit: int) -> object:
    if ks.get_read(argv[1], now) is None:
        return -2
    deadline = ks.deadline(argv[1])
    if deadline is None:
        return -1
    return deadline // unit


def expiretime(ks: Keyspace, argv: Argv, now: int) -> object:
    return _expiretime(ks, argv, now, 1000)


def pexpiretime(ks: Keyspace, argv: Argv, now: int) -> object:
    return _expiretime(ks, argv, now, 1)


def persist(ks: Keyspace, argv: Argv, now: int) -> object:
    key = argv[1]
    if ks.get_write(key, now) is None or ks.deadline(key) is None:
        return 0
    ks.set_deadline(key, None)
    return 1
