"""Command specs for the bitmap, HyperLogLog, geo and SORT families, LCS, SUBSTR, BZMPOP and
OBJECT / MEMORY USAGE (appended to the command table).

Names, arities, flags, legacy key positions, ACL categories, groups, summaries and versions are
Redis 7.0.15's own (from its COMMAND INFO / COMMAND DOCS).
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from aspen.kv import bitmaps, bzmpop, dump, geo, hll, objinfo, sort
from aspen.kv.spec import CommandSpec, Handler, KeySpec, Route
from aspen.kv.specs_types import _POP_AT_2, _t

_HANDLERS: dict[str, Handler] = {
    "setbit": bitmaps.setbit,
    "getbit": bitmaps.getbit,
    "bitcount": bitmaps.bitcount,
    "bitpos": bitmaps.bitpos,
    "bitop": bitmaps.bitop,
    "bitfield": bitmaps.bitfield,
    "bitfield_ro": bitmaps.bitfield_ro,
    "lcs": bitmaps.lcs,
    "substr": bitmaps.substr,
    "pfadd": hll.pfadd,
    "pfcount": hll.pfcount,
    "pfmerge": hll.pfmerge,
    "pfdebug": hll.pfdebug,
    "pfselftest": hll.pfselftest,
    "geoadd": geo.geoadd,
    "geopos": geo.geopos,
    "geodist": geo.geodist,
    "geohash": geo.geohash,
    "geosearch": geo.geosearch,
    "geosearchstore": geo.geosearchstore,
    "georadius": geo.georadius,
    "georadius_ro": geo.georadius_ro,
    "georadiusbymember": geo.georadiusbymember,
    "georadiusbymember_ro": geo.georadiusbymember_ro,
    "sort": sort.sort,
    "sort_ro": sort.sort_ro,
    "bzmpop": bzmpop.bzmpop,
    "object": objinfo.object_,
    "memory": objinfo.memory,
    "dump": dump.dump,
    "restore": dump.restore,
}


def _d(
    name: str,
    arity: int,
    flags: str,
    keys: tuple[int, int, int],
    acl: str,
    group: str,
    summary: str,
    since: str,
) -> CommandSpec:
    """A spec with its handler (a container's subcommands share the container's)."""
    handler = _HANDLERS[name.split("|")[0]]
    return _t(name, arity, flags, keys, handler, acl, group, summary, since)


BITMAP_SPECS: tuple[CommandSpec, ...] = (
    _d(
        "setbit",
        4,
        "write denyoom",
        (1, 1, 1),
        "@write @bitmap @slow",
        "bitmap",
        "Sets or clears the bit at offset in the string value stored at key",
        "2.2.0",
    ),
    _d(
        "getbit",
        3,
        "readonly fast",
        (1, 1, 1),
        "@read @bitmap @fast",
        "bitmap",
        "Returns the bit value at offset in the string value stored at key",
        "2.2.0",
    ),
    _d(
        "bitcount",
        -2,
        "readonly",
        (1, 1, 1),
        "@read @bitmap @slow",
        "bitmap",
        "Count set bits in a string",
        "2.6.0",
    ),
    _d(
        "bitpos",
        -3,
        "readonly",
        (1, 1, 1),
        "@read @bitmap @slow",
        "bitmap",
        "Find first bit set or clear in a string",
        "2.8.7",
    ),
    _d(
        "bitop",
        -4,
        "write denyoom",
        (2, -1, 1),
        "@write @bitmap @slow",
        "bitmap",
        "Perform bitwise operations between strings",
        "2.6.0",
    ),
    _d(
        "bitfield",
        -2,
        "write denyoom",
        (1, 1, 1),
        "@write @bitmap @slow",
        "bitmap",
        "Perform arbitrary bitfield integer operations on strings",
        "3.2.0",
    ),
    _d(
        "bitfield_ro",
        -2,
        "readonly fast",
        (1, 1, 1),
        "@read @bitmap @fast",
        "bitmap",
        "Perform arbitrary bitfield integer operations on strings. Read-only variant of BITFIELD",
        "6.0.0",
    ),
    _d(
        "lcs",
        -3,
        "readonly",
        (1, 2, 1),
        "@read @string @slow",
        "string",
        "Find longest common substring",
        "7.0.0",
    ),
    _d(
        "substr",
        4,
        "readonly",
        (1, 1, 1),
        "@read @string @slow",
        "string",
        "Get a substring of the string stored at a key",
        "1.0.0",
    ),
)

HLL_SPECS: tuple[CommandSpec, ...] = (
    _d(
        "pfadd",
        -2,
        "write denyoom fast",
        (1, 1, 1),
        "@write @hyperloglog @fast",
        "hyperloglog",
        "Adds the specified elements to the specified HyperLogLog.",
        "2.8.9",
    ),
    _d(
        "pfcount",
        -2,
        "readonly",
        (1, -1, 1),
        "@read @hyperloglog @slow",
        "hyperloglog",
        "Return the approximated cardinality of the set(s) observed by the HyperLogLog at key(s).",
        "2.8.9",
    ),
    _d(
        "pfmerge",
        -2,
        "write denyoom",
        (1, -1, 1),
        "@write @hyperloglog @slow",
        "hyperloglog",
        "Merge N different HyperLogLogs into a single one.",
        "2.8.9",
    ),
    _d(
        "pfdebug",
        3,
        "write denyoom admin",
        (2, 2, 1),
        "@write @hyperloglog @admin @slow @dangerous",
        "hyperloglog",
        "Internal commands for debugging HyperLogLog values",
        "2.8.9",
    ),
    _d(
        "pfselftest",
        1,
        "admin",
        (0, 0, 0),
        "@hyperloglog @admin @slow @dangerous",
        "hyperloglog",
        "An internal command for testing HyperLogLog values",
        "2.8.9",
    ),
)
# PFCOUNT refreshes the cardinality cached inside the value (Redis propagates that change):
# Aspen replicates it as a write, with Redis's flags kept for COMMAND INFO.
HLL_SPECS = tuple(
    attrs.evolve(s, route=Route.WRITE) if s.name == "pfcount" else s for s in HLL_SPECS
)

GEO_SPECS: tuple[CommandSpec, ...] = (
    _d(
        "geoadd",
        -5,
        "write denyoom",
        (1, 1, 1),
        "@write @geo @slow",
        "geo",
        "Add one or more geospatial items in the geospatial index represented using a sorted set",
        "3.2.0",
    ),
    _d(
        "geopos",
        -2,
        "readonly",
        (1, 1, 1),
        "@read @geo @slow",
        "geo",
        "Returns longitude and latitude of members of a geospatial index",
        "3.2.0",
    ),
    _d(
        "geodist",
        -4,
        "readonly",
        (1, 1, 1),
        "@read @geo @slow",
        "geo",
        "Returns the distance between two members of a geospatial index",
        "3.2.0",
    ),
    _d(
        "geohash",
        -2,
        "readonly",
        (1, 1, 1),
        "@read @geo @slow",
        "geo",
        "Returns members of a geospatial index as standard geohash strings",
        "3.2.0",
    ),
    _d(
        "geosearch",
        -7,
        "readonly",
        (1, 1, 1),
        "@read @geo @slow",
        "geo",
        "Query a sorted set representing a geospatial index to fetch members inside an area of a "
        "box or a circle.",
        "6.2.0",
    ),
    _d(
        "geosearchstore",
        -8,
        "write denyoom",
        (1, 2, 1),
        "@write @geo @slow",
        "geo",
        "Query a sorted set representing a geospatial index to fetch members inside an area of a "
        "box or a circle, and store the result in another key.",
        "6.2.0",
    ),
    _d(
        "georadius",
        -6,
        "write denyoom movablekeys",
        (1, 1, 1),
        "@write @geo @slow",
        "geo",
        "Query a sorted set representing a geospatial index to fetch members matching a given "
        "maximum distance from a point",
        "3.2.0",
    ),
    _d(
        "georadius_ro",
        -6,
        "readonly",
        (1, 1, 1),
        "@read @geo @slow",
        "geo",
        "A read-only variant for GEORADIUS",
        "3.2.10",
    ),
    _d(
        "georadiusbymember",
        -5,
        "write denyoom movablekeys",
        (1, 1, 1),
        "@write @geo @slow",
        "geo",
        "Query a sorted set representing a geospatial index to fetch members matching a given "
        "maximum distance from a member",
        "3.2.0",
    ),
    _d(
        "georadiusbymember_ro",
        -5,
        "readonly",
        (1, 1, 1),
        "@read @geo @slow",
        "geo",
        "A read-only variant for GEORADIUSBYMEMBER",
        "3.2.10",
    ),
)

SORT_SPECS: tuple[CommandSpec, ...] = (
    _d(
        "sort",
        -2,
        "write denyoom movablekeys",
        (1, 1, 1),
        "@write @set @sortedset @list @slow @dangerous",
        "generic",
        "Sort the elements in a list, set or sorted set",
        "1.0.0",
    ),
    _d(
        "sort_ro",
        -2,
        "readonly movablekeys",
        (1, 1, 1),
        "@read @set @sortedset @list @slow @dangerous",
        "generic",
        "Sort the elements in a list, set or sorted set. Read-only variant of SORT.",
        "7.0.0",
    ),
    _d(
        "bzmpop",
        -5,
        "write blocking movablekeys",
        (0, 0, 0),
        "@write @sortedset @slow @blocking",
        "sorted-set",
        "Remove and return members with scores in a sorted set or block until one is available",
        "7.0.0",
    ),
)

# BZMPOP's keys: `numkeys` keys after the timeout, as BLMPOP's.
SORT_SPECS = tuple(
    attrs.evolve(s, key_specs=(_POP_AT_2,), blocking=bzmpop.BZMPOP) if s.name == "bzmpop" else s
    for s in SORT_SPECS
)

_OBJECT_SUBS: tuple[CommandSpec, ...] = (
    _d(
        "object|encoding",
        3,
        "readonly",
        (2, 2, 1),
        "@keyspace @read @slow",
        "generic",
        "Inspect the internal encoding of a Redis object",
        "2.2.3",
    ),
    _d(
        "object|refcount",
        3,
        "readonly",
        (2, 2, 1),
        "@keyspace @read @slow",
        "generic",
        "Get the number of references to the value of the key",
        "2.2.3",
    ),
    _d(
        "object|idletime",
        3,
        "readonly",
        (2, 2, 1),
        "@keyspace @read @slow",
        "generic",
        "Get the time since a Redis object was last accessed",
        "2.2.3",
    ),
    _d(
        "object|freq",
        3,
        "readonly",
        (2, 2, 1),
        "@keyspace @read @slow",
        "generic",
        "Get the logarithmic access frequency counter of a Redis object",
        "4.0.0",
    ),
    _d(
        "object|help",
        2,
        "loading stale",
        (0, 0, 0),
        "@keyspace @slow",
        "generic",
        "Show helpful text about the different subcommands",
        "6.2.0",
    ),
)
_MEMORY_SUBS: tuple[CommandSpec, ...] = (
    _d(
        "memory|usage",
        -3,
        "readonly",
        (2, 2, 1),
        "@read @slow",
        "server",
        "Estimate the memory usage of a key",
        "4.0.0",
    ),
    _d(
        "memory|help",
        2,
        "loading stale",
        (0, 0, 0),
        "@slow",
        "server",
        "Show helpful text about the different subcommands",
        "4.0.0",
    ),
)
_OBJECT, _MEMORY = (
    _d(
        "object",
        -2,
        "",
        (0, 0, 0),
        "@slow",
        "generic",
        "A container for object introspection commands",
        "2.2.3",
    ),
    _d(
        "memory",
        -2,
        "",
        (0, 0, 0),
        "@slow",
        "server",
        "A container for memory diagnostics commands",
        "4.0.0",
    ),
)
INTROSPECTION_SPECS: tuple[CommandSpec, ...] = (
    attrs.evolve(_OBJECT, subcommands=_OBJECT_SUBS),
    attrs.evolve(_MEMORY, subcommands=_MEMORY_SUBS),
)

DUMP_SPECS: tuple[CommandSpec, ...] = (
    _d(
        "dump",
        2,
        "readonly",
        (1, 1, 1),
        "@keyspace @read @slow",
        "generic",
        "Return a serialized version of the value stored at the specified key.",
        "2.6.0",
    ),
    _d(
        "restore",
        -4,
        "write denyoom",
        (1, 1, 1),
        "@keyspace @write @slow @dangerous",
        "generic",
        "Create a key using the provided serialized value, previously obtained using DUMP.",
        "2.6.0",
    ),
)

# Redis 7.0.15's key specs where one legacy (first, last, step) triple does not say it all: a
# destination then sources, or two keys (COMMAND GETKEYS refuses argvs these do not fit).
_KEY_SPECS: dict[str, tuple[KeySpec, ...]] = {
    "bitop": (KeySpec(("OW", "update"), 2), KeySpec(("RO", "access"), 3, lastkey=-1)),
    "pfmerge": (
        KeySpec(("RW", "access", "insert"), 1),
        KeySpec(("RO", "access"), 2, lastkey=-1),
    ),
    "geosearchstore": (KeySpec(("OW", "update"), 1), KeySpec(("RO", "access"), 2)),
    "lcs": (KeySpec(("RO", "access"), 1, lastkey=1),),
}


def _sort_keys(argv: list[bytes]) -> list[bytes]:
    """Redis's sortGetKeys: the key, then the last STORE's destination (LIMIT, GET and BY
    arguments skipped)."""
    skip = {b"limit": 2, b"get": 1, b"by": 1}
    store: bytes | None = None
    i = 2
    while i < len(argv):
        word = argv[i].lower()
        if word in skip:
            i += skip[word]
        elif word == b"store" and i + 1 < len(argv):
            store = argv[i + 1]
        i += 1
    return [argv[1]] if store is None else [argv[1], store]


def _georadius_keys(start: int) -> Callable[[list[bytes]], list[bytes]]:
    """Redis's key specs of GEORADIUS[BYMEMBER]: the key, then the argument after the first
    STORE and after the first STOREDIST found from `start` on (never the last argument)."""

    def keys(argv: list[bytes]) -> list[bytes]:
        out = [argv[1]]
        for keyword in (b"store", b"storedist"):
            for i in range(start, len(argv) - 1):
                if argv[i].lower() == keyword:
                    out.append(argv[i + 1])
                    break
        return out

    return keys


_KEYS_PROCS: dict[str, Callable[[list[bytes]], list[bytes]]] = {
    "sort": _sort_keys,
    "georadius": _georadius_keys(6),
    "georadiusbymember": _georadius_keys(5),
}


def _with_key_specs(specs: tuple[CommandSpec, ...]) -> tuple[CommandSpec, ...]:
    out = []
    for s in specs:
        if s.name in _KEY_SPECS:
            s = attrs.evolve(s, key_specs=_KEY_SPECS[s.name])
        if s.name in _KEYS_PROCS:
            s = attrs.evolve(s, keys_proc=_KEYS_PROCS[s.name])
        out.append(s)
    return tuple(out)


DATA_SPECS: tuple[CommandSpec, ...] = _with_key_specs(
    BITMAP_SPECS + HLL_SPECS + GEO_SPECS + SORT_SPECS + INTROSPECTION_SPECS + DUMP_SPECS
)
