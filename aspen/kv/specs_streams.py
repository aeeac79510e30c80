"""Command specs for streams (appended to the command table, like `specs_types`).

Names, arities, flags, legacy key positions, ACL categories, summaries and versions are Redis
7.0.15's own (its COMMAND INFO / COMMAND DOCS). XREAD and XREADGROUP find their keys after the
STREAMS keyword (a keyword key spec); XGROUP and XINFO are containers whose subcommands carry
the details and the route (each names the container's handler; the containers themselves have
no flags, as in Redis, so their own route is READ). XREADGROUP is a write: it changes the
group's pending entries list.
"""

from __future__ import annotations

from aspen.kv import streams as x
from aspen.kv.spec import Blocking, CommandSpec, Handler, KeySpec
from aspen.kv.specs_types import _t as type_spec
from aspen.kv.streams_blocking import STREAM_BLOCKING

_STREAMS_FROM_1 = KeySpec(("RO", "access"), 0, lastkey=-1, limit=2, keyword="STREAMS",
                          startfrom=1)
_STREAMS_FROM_4 = KeySpec(("RO", "access"), 0, lastkey=-1, limit=2, keyword="STREAMS",
                          startfrom=4)


def _x(
    name: str,
    arity: int,
    flags: str,
    keys: tuple[int, int, int],
    handler: Handler,
    acl: str,
    summary: str,
    since: str = "5.0.0",
    key_specs: tuple[KeySpec, ...] = (),
    subcommands: tuple[CommandSpec, ...] = (),
    blocking: Blocking | None = None,
) -> CommandSpec:
    """A stream command's spec (the data types' builder, group "stream")."""
    return type_spec(name, arity, flags, keys, handler, acl, "stream", summary, since,
                     key_specs, blocking, subcommands)


_K1 = (1, 1, 1)
_K2 = (2, 2, 1)
_NONE = (0, 0, 0)

_XGROUP_SUBS = (
    _x("xgroup|create", -5, "write denyoom", _K2, x.xgroup, "@write @stream @slow",
       "Create a consumer group."),
    _x("xgroup|setid", -5, "write", _K2, x.xgroup, "@write @stream @slow",
       "Set a consumer group to an arbitrary last delivered ID value."),
    _x("xgroup|destroy", 4, "write", _K2, x.xgroup, "@write @stream @slow",
       "Destroy a consumer group."),
    _x("xgroup|createconsumer", 5, "write denyoom", _K2, x.xgroup, "@write @stream @slow",
       "Create a consumer in a consumer group.", "6.2.0"),
    _x("xgroup|delconsumer", 5, "write", _K2, x.xgroup, "@write @stream @slow",
       "Delete a consumer from a consumer group."),
    _x("xgroup|help", 2, "loading stale", _NONE, x.xgroup, "@stream @slow",
       "Show helpful text about the different subcommands"),
)

_XINFO_SUBS = (
    _x("xinfo|consumers", 4, "readonly", _K2, x.xinfo, "@read @stream @slow",
       "List the consumers in a consumer group"),
    _x("xinfo|groups", 3, "readonly", _K2, x.xinfo, "@read @stream @slow",
       "List the consumer groups of a stream"),
    _x("xinfo|stream", -3, "readonly", _K2, x.xinfo, "@read @stream @slow",
       "Get information about a stream"),
    _x("xinfo|help", 2, "loading stale", _NONE, x.xinfo, "@stream @slow",
       "Show helpful text about the different subcommands"),
)

STREAM_SPECS: tuple[CommandSpec, ...] = (
    _x("xadd", -5, "write denyoom fast", _K1, x.xadd, "@write @stream @fast",
       "Appends a new entry to a stream"),
    _x("xtrim", -4, "write", _K1, x.xtrim, "@write @stream @slow",
       "Trims the stream to (approximately if '~' is passed) a certain size"),
    _x("xrange", -4, "readonly", _K1, x.xrange_, "@read @stream @slow",
       "Return a range of elements in a stream, with IDs matching the specified IDs interval"),
    _x("xrevrange", -4, "readonly", _K1, x.xrevrange, "@read @stream @slow",
       "Return a range of elements in a stream, with IDs matching the specified IDs interval, "
       "in reverse order (from greater to smaller IDs) compared to XRANGE"),
    _x("xlen", 2, "readonly fast", _K1, x.xlen, "@read @stream @fast",
       "Return the number of entries in a stream"),
    _x("xread", -4, "readonly blocking movablekeys", _NONE, x.xread,
       "@read @stream @slow @blocking",
       "Return never seen elements in multiple streams, with IDs greater than the ones "
       "reported by the caller for each stream. Can block.", key_specs=(_STREAMS_FROM_1,),
       blocking=STREAM_BLOCKING),
    _x("xreadgroup", -7, "write blocking movablekeys", _NONE, x.xreadgroup,
       "@write @stream @slow @blocking",
       "Return new entries from a stream using a consumer group, or access the history of the "
       "pending entries for a given consumer. Can block.", key_specs=(_STREAMS_FROM_4,),
       blocking=STREAM_BLOCKING),
    _x("xdel", -3, "write fast", _K1, x.xdel, "@write @stream @fast",
       "Removes the specified entries from the stream. Returns the number of items actually "
       "deleted, that may be different from the number of IDs passed in case certain IDs do "
       "not exist."),
    _x("xsetid", -3, "write denyoom fast", _K1, x.xsetid, "@write @stream @fast",
       "An internal command for replicating stream values"),
    _x("xgroup", -2, "", _NONE, x.xgroup, "@slow", "A container for consumer groups commands",
       subcommands=_XGROUP_SUBS),
    _x("xack", -4, "write fast", _K1, x.xack, "@write @stream @fast",
       "Marks a pending message as correctly processed, effectively removing it from the "
       "pending entries list of the consumer group. Return value of the command is the number "
       "of messages successfully acknowledged, that is, the IDs we were actually able to "
       "resolve in the PEL."),
    _x("xpending", -3, "readonly", _K1, x.xpending, "@read @stream @slow",
       "Return information and entries from a stream consumer group pending entries list, "
       "that are messages fetched but never acknowledged."),
    _x("xclaim", -6, "write fast", _K1, x.xclaim, "@write @stream @fast",
       "Changes (or acquires) ownership of a message in a consumer group, as if the message "
       "was delivered to the specified consumer."),
    _x("xautoclaim", -6, "write fast", _K1, x.xautoclaim, "@write @stream @fast",
       "Changes (or acquires) ownership of messages in a consumer group, as if the messages "
       "were delivered to the specified consumer.", "6.2.0"),
    _x("xinfo", -2, "", _NONE, x.xinfo, "@slow", "A container for stream introspection commands",
       subcommands=_XINFO_SUBS),
)
