"""Numbered databases: MOVE, SWAPDB, and the database-index parsing that SELECT,
COPY ... DB and the session share (Redis 7.0's texts and checks, in its order).

The keyspace holds every database and selects the op's one before a handler runs
(`Keyspace.select`, aspen.kv.keyspace); a handler that touches another database selects it
and selects its own back before returning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aspen.kv.errors import NOT_INTEGER, CommandError
from aspen.kv.numbers import parse_int
from aspen.kv.typed import Argv
from aspen.resp.values import OK

if TYPE_CHECKING:
    from aspen.kv.keyspace import Keyspace

DB_RANGE = "ERR DB index is out of range"
SAME_OBJECT = "ERR source and destination objects are the same"


INT_RANGE = "ERR value is out of range, value must between -2147483648 and 2147483647"


def parse_index(raw: bytes) -> int | str:
    """A database index as Redis reads it (getIntFromObjectOrReply: a long that must fit a C
    int), or the error text."""
    value = parse_int(raw)
    if value is None:
        return NOT_INTEGER
    if not -(2**31) <= value < 2**31:
        return INT_RANGE
    return value


def index_arg(raw: bytes, error: str | None = None) -> int:
    """`parse_index`, raising; `error` replaces both texts (SWAPDB's "invalid ... index")."""
    value = parse_index(raw)
    if isinstance(value, str):
        raise CommandError(error or value)
    return value


def checked_db(ks: Keyspace, raw: bytes) -> int:
    """An existing database's index, or Redis's error (not an integer / out of range)."""
    index = index_arg(raw)
    if not ks.valid_db(index):
        raise CommandError(DB_RANGE)
    return index


def move(ks: Keyspace, argv: Argv, now: int) -> object:
    """MOVE key db: 1 if moved (with its TTL), 0 if absent here or present there."""
    key = argv[1]
    dst = checked_db(ks, argv[2])
    src = ks.db
    if dst == src:
        raise CommandError(SAME_OBJECT)
    value = ks.get_write(key, now)
    if value is None:
        return 0
    deadline = ks.deadline(key)
    ks.select(dst)
    try:
        if ks.get_write(key, now) is not None:
            return 0
        ks.set_value(key, value)
        if deadline is not None:
            ks.set_deadline(key, deadline)
    finally:
        ks.select(src)
    ks.delete(key, now)
    return 1


def swapdb(ks: Keyspace, argv: Argv, now: int) -> object:
    a = index_arg(argv[1], "ERR invalid first DB index")
    b = index_arg(argv[2], "ERR invalid second DB index")
    if not (ks.valid_db(a) and ks.valid_db(b)):
        raise CommandError(DB_RANGE)
    ks.swap_dbs(a, b)
    return OK

