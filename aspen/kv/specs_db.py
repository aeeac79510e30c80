"""Command specs of the numbered databases (MOVE, SWAPDB; appended to the command table).
SELECT is the session's (aspen.kv.session), COPY ... DB, FLUSHDB and FLUSHALL are in the main
table. Names, arities, flags, keys, ACL categories and summaries are Redis 7.0.15's."""

from __future__ import annotations

from aspen.kv import databases
from aspen.kv.spec import CommandSpec, KeySpec
from aspen.kv.specs_types import _t

DB_SPECS: tuple[CommandSpec, ...] = (
    _t(
        "move",
        3,
        "write fast",
        (1, 1, 1),
        databases.move,
        "@keyspace @write @fast",
        "generic",
        "Move a key to another database",
        "1.0.0",
        key_specs=(KeySpec(("RW", "access", "update"), 1),),
    ),
    _t(
        "swapdb",
        3,
        "write fast",
        (0, 0, 0),
        databases.swapdb,
        "@keyspace @write @fast @dangerous",
        "server",
        "Swaps two Redis databases",
        "4.0.0",
    ),
)
