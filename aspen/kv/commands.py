"""The command table: every command Aspen knows, each spec paired with what runs it.

The table is the one source of dispatch. A `CommandSpec` (aspen.kv.spec) says what Redis says
about a command (arity, flags, key positions, docs: the replies to COMMAND, COMMAND INFO, COMMAND
DOCS and COMMAND GETKEYS) and how Aspen runs it: its `route` (which layer answers it) and its
`handler`. The session looks a command up here once and routes by the spec; the keyspace
(`Keyspace.execute`) finds its function here; nothing else matches command names.

- A keyspace command (READ or WRITE) is declared with its function, e.g. `strings.get`; whether
  it writes comes from its "write" flag alone.
- A command of an upper layer is declared with `_session`, `_connection` or `_node` and the
  name of the method of that layer's object that answers it.
- Hashes, lists, sets and sorted sets are declared in `aspen.kv.specs_types`.
- Bitmaps, HyperLogLog, geo, SORT, BZMPOP, OBJECT/MEMORY and DUMP/RESTORE in
  `aspen.kv.specs_data`.

`lookup` finds client commands; `lookup_executable` also finds the internal ASPEN.BSERVE, which
only the node proposes (clients cannot send it and COMMAND does not list it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from aspen.acl.replicated import aclop
from aspen.acl.scripts import script_as
from aspen.kv import generic, memory, strings
from aspen.kv.errors import CommandError
from aspen.kv.hashes import HASH_TYPE
from aspen.kv.lists import LIST_TYPE
from aspen.kv.sets import SET_TYPE
from aspen.kv.spec import (
    KEYSPACE_ROUTES,
    Argv,
    Blocking,
    CommandSpec,
    Handler,
    KeySpec,
    Route,
)
from aspen.kv.specs_data import DATA_SPECS
from aspen.kv.specs_db import DB_SPECS
from aspen.kv.specs_streams import STREAM_SPECS
from aspen.kv.specs_types import TYPE_SPECS
from aspen.kv.streams import STREAM_TYPE
from aspen.kv.valuetypes import register_types
from aspen.kv.zsets import ZSET_TYPE
from aspen.scripting.specs import SCRIPTING_SPECS
from aspen.server.specs import CLIENT_SUBS, PUBSUB_SPECS, PUBSUB_SUBS, SERVER_SPECS

if TYPE_CHECKING:
    from aspen.kv.keyspace import Keyspace

__all__ = [
    "ALL_COMMANDS",
    "COMMANDS",
    "Blocking",
    "CommandSpec",
    "KeySpec",
    "Route",
    "blocking_of",
    "lookup",
    "lookup_executable",
    "lookup_subcommand",
]


class _Layer:
    """An upper layer's command: its route and the name of the method that answers it."""

    __slots__ = ("method", "route")

    def __init__(self, route: Route, method: str) -> None:
        self.route = route
        self.method = method


def _session(method: str) -> _Layer:
    """Answered by `aspen.kv.session.Session.<method>(argv)`."""
    return _Layer(Route.SESSION, method)


def _connection(method: str) -> _Layer:
    """Answered by `aspen.cluster.connection.ClusterConnection.<method>(argv)`."""
    return _Layer(Route.CONNECTION, method)


def _node(method: str) -> _Layer:
    """Answered by `aspen.daemon.AdminCommands.<method>(argv)`."""
    return _Layer(Route.NODE, method)


_SUB = _Layer(Route.SESSION, "")
"""A subcommand answered by its container's method."""


def _spec(
    name: str,
    arity: int,
    flags: str,
    keys: tuple[int, int, int],
    runs: Handler | _Layer,
    group: str,
    summary: str,
    since: str = "1.0.0",
    subcommands: tuple[CommandSpec, ...] = (),
    *,
    immediate: bool = False,
    subscribed_ok: bool = False,
    usage: str = "",
) -> CommandSpec:
    flagset = frozenset(flags.split())
    handler: Handler | str
    if isinstance(runs, _Layer):
        route, handler = runs.route, runs.method
        subcommands = tuple(attrs.evolve(s, handler=s.handler or handler) for s in subcommands)
    else:
        route = Route.WRITE if "write" in flagset else Route.READ
        handler = runs
    acl = _acl_categories(flagset, group, route)
    return CommandSpec(
        name,
        arity,
        flagset,
        keys[0],
        keys[1],
        keys[2],
        route,
        group,
        summary,
        since,
        acl,
        subcommands,
        handler=handler,
        immediate=immediate,
        subscribed_ok=subscribed_ok,
        usage=usage,
    )


def _acl_categories(flags: frozenset[str], group: str, route: Route) -> tuple[str, ...]:
    cats: list[str] = []
    if group == "generic":
        cats.append("@keyspace")
    if route is Route.READ:
        cats.append("@read")
    elif route is Route.WRITE:
        cats.append("@write")
    if group == "string":
        cats.append("@string")
    elif group == "connection":
        cats.append("@connection")
    elif group == "transactions":
        cats.append("@transaction")
    elif group == "pubsub" and "pubsub" in flags:
        cats.append("@pubsub")
    cats.append("@fast" if "fast" in flags else "@slow")
    return tuple(cats)


_NOKEY = (0, 0, 0)
_KEY1 = (1, 1, 1)
_ALLKEYS = (1, -1, 1)
_CONN = "noscript loading stale fast allow_busy"

_CLIENT_SUBS = (
    _spec(
        "client|setname",
        3,
        "noscript loading stale",
        _NOKEY,
        _SUB,
        "connection",
        "Sets the connection name.",
        "2.6.9",
    ),
    _spec(
        "client|getname",
        2,
        "noscript loading stale",
        _NOKEY,
        _SUB,
        "connection",
        "Returns the name of the connection.",
        "2.6.9",
    ),
    _spec(
        "client|id",
        2,
        "noscript loading stale",
        _NOKEY,
        _SUB,
        "connection",
        "Returns the unique client ID of the connection.",
        "5.0.0",
    ),
    _spec(
        "client|info",
        2,
        "noscript loading stale",
        _NOKEY,
        _SUB,
        "connection",
        "Returns information about the connection.",
        "6.2.0",
    ),
    _spec(
        "client|list",
        -2,
        "admin noscript loading stale",
        _NOKEY,
        _SUB,
        "connection",
        "Lists open connections.",
        "2.4.0",
    ),
    _spec(
        "client|unblock",
        -3,
        "admin noscript loading stale",
        _NOKEY,
        _connection("cmd_client_unblock"),
        "connection",
        "Unblock a client blocked in a blocking command from a different connection.",
        "5.0.0",
    ),
    _spec(
        "client|help",
        2,
        "loading stale",
        _NOKEY,
        _SUB,
        "connection",
        "Returns helpful text about the different subcommands.",
        "5.0.0",
    ),
)
_CONFIG_SUBS = (
    _spec(
        "config|get",
        -3,
        "admin noscript loading stale",
        _NOKEY,
        _SUB,
        "server",
        "Returns the effective values of configuration parameters.",
        "2.0.0",
    ),
    _spec(
        "config|help",
        2,
        "loading stale",
        _NOKEY,
        _SUB,
        "server",
        "Returns helpful text about the different subcommands.",
        "5.0.0",
    ),
    _spec(
        "config|set",
        -4,
        "admin noscript loading stale",
        _NOKEY,
        _SUB,
        "server",
        "Set configuration parameters to the given values",
        "2.0.0",
    ),
    _spec(
        "config|resetstat",
        2,
        "admin noscript loading stale",
        _NOKEY,
        _SUB,
        "server",
        "Reset the stats returned by INFO",
        "2.0.0",
    ),
    _spec(
        "config|rewrite",
        2,
        "admin noscript loading stale",
        _NOKEY,
        _SUB,
        "server",
        "Rewrite the configuration file with the in memory configuration",
        "2.8.0",
    ),
)
_COMMAND_SUBS = (
    _spec(
        "command|count",
        2,
        "loading stale",
        _NOKEY,
        _SUB,
        "server",
        "Returns a count of commands.",
        "2.8.13",
    ),
    _spec(
        "command|info",
        -2,
        "loading stale",
        _NOKEY,
        _SUB,
        "server",
        "Returns information about one, multiple or all commands.",
        "2.8.13",
    ),
    _spec(
        "command|docs",
        -2,
        "loading stale",
        _NOKEY,
        _SUB,
        "server",
        "Returns documentary information about one, multiple or all commands.",
        "7.0.0",
    ),
    _spec(
        "command|getkeys",
        -4,  # Redis 7.0.15 wants at least one argument after the command name
        "loading stale",
        _NOKEY,
        _SUB,
        "server",
        "Extracts the key names from an arbitrary command.",
        "2.8.13",
    ),
    _spec(
        "command|list",
        -2,
        "loading stale",
        _NOKEY,
        _SUB,
        "server",
        "Returns a list of command names.",
        "7.0.0",
    ),
    _spec(
        "command|help",
        2,
        "loading stale",
        _NOKEY,
        _SUB,
        "server",
        "Returns helpful text about the different subcommands.",
        "5.0.0",
    ),
)

_PUBSUB = "pubsub noscript loading stale"
_PUBSUB_SUBS = (
    _spec(
        "pubsub|channels",
        -2,
        "pubsub loading stale",
        _NOKEY,
        _SUB,
        "pubsub",
        "List active channels",
        "2.8.0",
    ),
    _spec(
        "pubsub|numsub",
        -2,
        "pubsub loading stale",
        _NOKEY,
        _SUB,
        "pubsub",
        "Get the count of subscribers for channels",
        "2.8.0",
    ),
    _spec(
        "pubsub|numpat",
        2,
        "pubsub loading stale",
        _NOKEY,
        _SUB,
        "pubsub",
        "Get the count of unique patterns pattern subscriptions",
        "2.8.0",
    ),
    _spec(
        "pubsub|help",
        2,
        "loading stale",
        _NOKEY,
        _SUB,
        "pubsub",
        "Show helpful text about the different subcommands",
        "6.2.0",
    ),
)
_TABLE: tuple[CommandSpec, ...] = (
    # strings
    _spec(
        "get",
        2,
        "readonly fast",
        _KEY1,
        strings.get,
        "string",
        "Returns the string value of a key.",
    ),
    _spec(
        "set",
        -3,
        "write denyoom",
        _KEY1,
        strings.set_,
        "string",
        "Sets the string value of a key, ignoring its type.",
    ),
    _spec(
        "setnx",
        3,
        "write denyoom fast",
        _KEY1,
        strings.setnx,
        "string",
        "Set the string value of a key only when the key doesn't exist.",
    ),
    _spec(
        "setex",
        4,
        "write denyoom",
        _KEY1,
        strings.setex,
        "string",
        "Sets the string value and expiration time of a key.",
        "2.0.0",
    ),
    _spec(
        "psetex",
        4,
        "write denyoom",
        _KEY1,
        strings.psetex,
        "string",
        "Sets the string value and expiration time in milliseconds of a key.",
        "2.6.0",
    ),
    _spec(
        "getset",
        3,
        "write denyoom fast",
        _KEY1,
        strings.getset,
        "string",
        "Returns the previous string value of a key after setting it to a new value.",
    ),
    _spec(
        "getdel",
        2,
        "write fast",
        _KEY1,
        strings.getdel,
        "string",
        "Returns the string value of a key after deleting the key.",
        "6.2.0",
    ),
    _spec(
        "getex",
        -2,
        "write fast",
        _KEY1,
        strings.getex,
        "string",
        "Returns the string value of a key after setting its expiration time.",
        "6.2.0",
    ),
    _spec(
        "mget",
        -2,
        "readonly fast",
        _ALLKEYS,
        strings.mget,
        "string",
        "Atomically returns the string values of one or more keys.",
    ),
    _spec(
        "mset",
        -3,
        "write denyoom",
        (1, -1, 2),
        strings.mset,
        "string",
        "Atomically creates or modifies the string values of one or more keys.",
        "1.0.1",
    ),
    _spec(
        "msetnx",
        -3,
        "write denyoom",
        (1, -1, 2),
        strings.msetnx,
        "string",
        "Atomically modifies the string values of one or more keys only when all keys don't exist.",
        "1.0.1",
    ),
    _spec(
        "append",
        3,
        "write denyoom fast",
        _KEY1,
        strings.append,
        "string",
        "Appends a string to the value of a key. Creates the key if it doesn't exist.",
        "2.0.0",
    ),
    _spec(
        "strlen",
        2,
        "readonly fast",
        _KEY1,
        strings.strlen,
        "string",
        "Returns the length of a string value.",
        "2.2.0",
    ),
    _spec(
        "getrange",
        4,
        "readonly",
        _KEY1,
        strings.getrange,
        "string",
        "Returns a substring of the string stored at a key.",
        "2.4.0",
    ),
    _spec(
        "setrange",
        4,
        "write denyoom",
        _KEY1,
        strings.setrange,
        "string",
        "Overwrites a part of a string value with another by an offset.",
        "2.2.0",
    ),
    _spec(
        "incr",
        2,
        "write denyoom fast",
        _KEY1,
        strings.incr,
        "string",
        "Increments the integer value of a key by one.",
    ),
    _spec(
        "decr",
        2,
        "write denyoom fast",
        _KEY1,
        strings.decr,
        "string",
        "Decrements the integer value of a key by one.",
    ),
    _spec(
        "incrby",
        3,
        "write denyoom fast",
        _KEY1,
        strings.incrby,
        "string",
        "Increments the integer value of a key by a number.",
    ),
    _spec(
        "decrby",
        3,
        "write denyoom fast",
        _KEY1,
        strings.decrby,
        "string",
        "Decrements a number from the integer value of a key.",
    ),
    _spec(
        "incrbyfloat",
        3,
        "write denyoom fast",
        _KEY1,
        strings.incrbyfloat,
        "string",
        "Increment the floating point value of a key by a number.",
        "2.6.0",
    ),
    # keys
    _spec("del", -2, "write", _ALLKEYS, generic.del_, "generic", "Deletes one or more keys."),
    _spec(
        "unlink",
        -2,
        "write fast",
        _ALLKEYS,
        generic.unlink,
        "generic",
        "Asynchronously deletes one or more keys.",
        "4.0.0",
    ),
    _spec(
        "exists",
        -2,
        "readonly fast",
        _ALLKEYS,
        generic.exists,
        "generic",
        "Determines whether one or more keys exist.",
    ),
    _spec(
        "type",
        2,
        "readonly fast",
        _KEY1,
        generic.type_,
        "generic",
        "Determines the type of value stored at a key.",
    ),
    _spec(
        "keys",
        2,
        "readonly",
        _NOKEY,
        generic.keys,
        "generic",
        "Returns all key names that match a pattern.",
    ),
    _spec(
        "scan",
        -2,
        "readonly",
        _NOKEY,
        generic.scan,
        "generic",
        "Iterates over the key names in the database.",
        "2.8.0",
    ),
    _spec(
        "dbsize",
        1,
        "readonly fast",
        _NOKEY,
        generic.dbsize,
        "server",
        "Returns the number of keys in the database.",
    ),
    _spec(
        "flushdb",
        -1,
        "write",
        _NOKEY,
        generic.flushdb,
        "server",
        "Remove all keys from the current database.",
    ),
    _spec(
        "flushall",
        -1,
        "write",
        _NOKEY,
        generic.flushall,
        "server",
        "Removes all keys from all databases.",
    ),
    _spec(
        "rename",
        3,
        "write",
        (1, 2, 1),
        generic.rename,
        "generic",
        "Renames a key and overwrites the destination.",
    ),
    _spec(
        "renamenx",
        3,
        "write fast",
        (1, 2, 1),
        generic.renamenx,
        "generic",
        "Renames a key only when the target key name doesn't exist.",
    ),
    _spec(
        "randomkey",
        1,
        "readonly",
        _NOKEY,
        generic.randomkey,
        "generic",
        "Returns a random key name from the database.",
    ),
    _spec(
        "copy",
        -3,
        "write denyoom",
        (1, 2, 1),
        generic.copy,
        "generic",
        "Copies the value of a key to a new key.",
        "6.2.0",
    ),
    _spec(
        "touch",
        -2,
        "readonly fast",
        _ALLKEYS,
        generic.touch,
        "generic",
        "Returns the number of existing keys out of those specified after updating the time "
        "they were last accessed.",
        "3.2.1",
    ),
    # expiry
    _spec(
        "expire",
        -3,
        "write fast",
        _KEY1,
        generic.expire,
        "generic",
        "Sets the expiration time of a key in seconds.",
    ),
    _spec(
        "pexpire",
        -3,
        "write fast",
        _KEY1,
        generic.pexpire,
        "generic",
        "Sets the expiration time of a key in milliseconds.",
        "2.6.0",
    ),
    _spec(
        "expireat",
        -3,
        "write fast",
        _KEY1,
        generic.expireat,
        "generic",
        "Sets the expiration time of a key to a Unix timestamp.",
        "1.2.0",
    ),
    _spec(
        "pexpireat",
        -3,
        "write fast",
        _KEY1,
        generic.pexpireat,
        "generic",
        "Sets the expiration time of a key to a Unix milliseconds timestamp.",
        "2.6.0",
    ),
    _spec(
        "ttl",
        2,
        "readonly fast",
        _KEY1,
        generic.ttl,
        "generic",
        "Returns the expiration time in seconds of a key.",
    ),
    _spec(
        "pttl",
        2,
        "readonly fast",
        _KEY1,
        generic.pttl,
        "generic",
        "Returns the expiration time in milliseconds of a key.",
        "2.6.0",
    ),
    _spec(
        "expiretime",
        2,
        "readonly fast",
        _KEY1,
        generic.expiretime,
        "generic",
        "Returns the expiration time of a key as a Unix timestamp.",
        "7.0.0",
    ),
    _spec(
        "pexpiretime",
        2,
        "readonly fast",
        _KEY1,
        generic.pexpiretime,
        "generic",
        "Returns the expiration time of a key as a Unix milliseconds timestamp.",
        "7.0.0",
    ),
    _spec(
        "persist",
        2,
        "write fast",
        _KEY1,
        generic.persist,
        "generic",
        "Removes the expiration time of a key.",
        "2.2.0",
    ),
    # transactions
    _spec(
        "multi",
        1,
        _CONN,
        _NOKEY,
        _session("cmd_multi"),
        "transactions",
        "Starts a transaction.",
        "1.2.0",
        immediate=True,
    ),
    _spec(
        "exec",
        1,
        "noscript loading stale skip_slowlog",
        _NOKEY,
        _session("cmd_exec"),
        "transactions",
        "Executes all commands in a transaction.",
        "1.2.0",
        immediate=True,
    ),
    _spec(
        "discard",
        1,
        _CONN,
        _NOKEY,
        _session("cmd_discard"),
        "transactions",
        "Discards a transaction.",
        "2.0.0",
        immediate=True,
    ),
    _spec(
        "watch",
        -2,
        _CONN,
        _ALLKEYS,
        _session("cmd_watch"),
        "transactions",
        "Monitors changes to keys to determine the execution of a transaction.",
        "2.2.0",
        immediate=True,
    ),
    _spec(
        "unwatch",
        1,
        _CONN,
        _NOKEY,
        _session("cmd_unwatch"),
        "transactions",
        "Forgets about watched keys of a transaction.",
        "2.2.0",
    ),
    # connection / server
    _spec(
        "ping",
        -1,
        "fast",
        _NOKEY,
        _session("cmd_ping"),
        "connection",
        "Returns the server's liveliness response.",
        subscribed_ok=True,
    ),
    _spec(
        "echo",
        2,
        "loading stale fast",
        _NOKEY,
        _session("cmd_echo"),
        "connection",
        "Returns the given string.",
    ),
    _spec(
        "hello",
        -1,
        _CONN + " no_auth",
        _NOKEY,
        _session("cmd_hello"),
        "connection",
        "Handshakes with the Redis server.",
        "6.0.0",
    ),
    _spec(
        "auth",
        -2,
        _CONN + " no_auth",
        _NOKEY,
        _session("cmd_auth"),
        "connection",
        "Authenticates the connection.",
    ),
    _spec(
        "select",
        2,
        "loading stale fast",
        _NOKEY,
        _session("cmd_select"),
        "connection",
        "Changes the selected database.",
    ),
    _spec(
        "quit",
        -1,
        _CONN + " no_auth",
        _NOKEY,
        _session("cmd_quit"),
        "connection",
        "Closes the connection.",
        immediate=True,
        subscribed_ok=True,
    ),
    _spec(
        "reset",
        1,
        _CONN + " no_auth",
        _NOKEY,
        _session("cmd_reset"),
        "connection",
        "Resets the connection.",
        "6.2.0",
        immediate=True,
        subscribed_ok=True,
    ),
    _spec(
        "client",
        -2,
        "",
        _NOKEY,
        _session("cmd_client"),
        "connection",
        "A container for client connection commands.",
        "2.4.0",
        _CLIENT_SUBS + CLIENT_SUBS,
    ),
    _spec(
        "info",
        -1,
        "loading stale",
        _NOKEY,
        _session("cmd_info"),
        "server",
        "Returns information and statistics about the server.",
    ),
    _spec(
        "config",
        -2,
        "",
        _NOKEY,
        _session("cmd_config"),
        "server",
        "A container for server configuration commands.",
        "2.0.0",
        _CONFIG_SUBS,
    ),
    _spec(
        "time",
        1,
        "loading stale fast",
        _NOKEY,
        _session("cmd_time"),
        "server",
        "Returns the server time.",
        "2.6.0",
    ),
    _spec(
        "command",
        -1,
        "loading stale",
        _NOKEY,
        _session("cmd_command"),
        "server",
        "Returns detailed information about all commands.",
        "2.8.13",
        _COMMAND_SUBS,
    ),
    # pub/sub (aspen.pubsub; answered by the session)
    _spec(
        "subscribe",
        -2,
        _PUBSUB,
        _NOKEY,
        _session("cmd_subscribe"),
        "pubsub",
        "Listen for messages published to the given channels",
        "2.0.0",
        subscribed_ok=True,
    ),
    _spec(
        "unsubscribe",
        -1,
        _PUBSUB,
        _NOKEY,
        _session("cmd_unsubscribe"),
        "pubsub",
        "Stop listening for messages posted to the given channels",
        "2.0.0",
        subscribed_ok=True,
    ),
    _spec(
        "psubscribe",
        -2,
        _PUBSUB,
        _NOKEY,
        _session("cmd_psubscribe"),
        "pubsub",
        "Listen for messages published to channels matching the given patterns",
        "2.0.0",
        subscribed_ok=True,
    ),
    _spec(
        "punsubscribe",
        -1,
        _PUBSUB,
        _NOKEY,
        _session("cmd_punsubscribe"),
        "pubsub",
        "Stop listening for messages posted to channels matching the given patterns",
        "2.0.0",
        subscribed_ok=True,
    ),
    _spec(
        "publish",
        3,
        "pubsub loading stale fast",
        _NOKEY,
        _session("cmd_publish"),
        "pubsub",
        "Post a message to a channel",
        "2.0.0",
    ),
    _spec(
        "pubsub",
        -2,
        "",
        _NOKEY,
        _session("cmd_pubsub"),
        "pubsub",
        "A container for Pub/Sub commands",
        "2.8.0",
        _PUBSUB_SUBS + PUBSUB_SUBS,
    ),
    _spec(
        "acl",
        -2,
        "",
        _NOKEY,
        _session("cmd_acl"),
        "server",
        "A container for Access List Control commands.",
        "6.0.0",
        (
            _spec(
                "acl|cat",
                -2,
                "noscript loading stale",
                _NOKEY,
                _SUB,
                "server",
                "Lists the ACL categories, or the commands inside a category.",
                "6.0.0",
            ),
            _spec(
                "acl|deluser",
                -3,
                "admin noscript loading stale",
                _NOKEY,
                _SUB,
                "server",
                "Deletes ACL users, and terminates their connections.",
                "6.0.0",
            ),
            _spec(
                "acl|dryrun",
                -4,
                "admin noscript loading stale",
                _NOKEY,
                _SUB,
                "server",
                "Simulates the execution of a command by a user, without executing the command.",
                "6.0.0",
            ),
            _spec(
                "acl|genpass",
                -2,
                "noscript loading stale",
                _NOKEY,
                _SUB,
                "server",
                "Generates a pseudorandom, secure password that can be used to identify ACL users.",
                "6.0.0",
            ),
            _spec(
                "acl|getuser",
                3,
                "admin noscript loading stale",
                _NOKEY,
                _SUB,
                "server",
                "Lists the ACL rules of a user.",
                "6.0.0",
            ),
            _spec(
                "acl|help",
                2,
                "loading stale",
                _NOKEY,
                _SUB,
                "server",
                "Returns helpful text about the different subcommands.",
                "6.0.0",
            ),
            _spec(
                "acl|list",
                2,
                "admin noscript loading stale",
                _NOKEY,
                _SUB,
                "server",
                "Dumps the effective rules in ACL file format.",
                "6.0.0",
            ),
            _spec(
                "acl|load",
                2,
                "admin noscript loading stale",
                _NOKEY,
                _SUB,
                "server",
                "Reloads the rules from the configured ACL file.",
                "6.0.0",
            ),
            _spec(
                "acl|log",
                -2,
                "admin noscript loading stale",
                _NOKEY,
                _SUB,
                "server",
                "Lists recent security events generated due to ACL rules.",
                "6.0.0",
            ),
            _spec(
                "acl|save",
                2,
                "admin noscript loading stale",
                _NOKEY,
                _SUB,
                "server",
                "Saves the effective ACL rules in the configured ACL file.",
                "6.0.0",
            ),
            _spec(
                "acl|setuser",
                -3,
                "admin noscript loading stale",
                _NOKEY,
                _SUB,
                "server",
                "Creates and modifies an ACL user and its rules.",
                "6.0.0",
            ),
            _spec(
                "acl|users",
                2,
                "admin noscript loading stale",
                _NOKEY,
                _SUB,
                "server",
                "Lists all ACL users.",
                "6.0.0",
            ),
            _spec(
                "acl|whoami",
                2,
                "noscript loading stale",
                _NOKEY,
                _SUB,
                "server",
                "Returns the authenticated username of the current connection.",
                "6.0.0",
            ),
        ),
    ),
    # Aspen's cluster commands: answered by the node (aspen/daemon.py, aspen/cluster/connection.py)
    # before the session sees them; listed here so COMMAND and arity know them.
    # RDB files (aspen/rdb/save.py): per node, answered by the node
    _spec("save", 1, "admin noscript no_async_loading no_multi", _NOKEY, _node("cmd_save"),
          "server", "Synchronously saves the database(s) to disk."),
    _spec("bgsave", -1, "admin noscript no_async_loading", _NOKEY, _node("cmd_bgsave"),
          "server", "Asynchronously saves the database(s) to disk.", "1.0.0"),
    _spec("lastsave", 1, "loading stale fast", _NOKEY, _node("cmd_lastsave"), "server",
          "Returns the Unix timestamp of the last successful save to disk."),
    _spec(
        "aspen.status",
        1,
        "loading stale",
        _NOKEY,
        _node("cmd_status"),
        "server",
        "Returns the Raft status.",
        "0.1.0",
        immediate=True,
        usage="ASPEN.STATUS",
    ),
    _spec(
        "aspen.init",
        -1,
        "",
        _NOKEY,
        _node("cmd_init"),
        "server",
        "Initialises a new cluster.",
        "0.1.0",
        immediate=True,
        usage="ASPEN.INIT [voter-id ...]",
    ),
    _spec(
        "aspen.add-learner",
        3,
        "",
        _NOKEY,
        _node("cmd_add_learner"),
        "server",
        "Adds a learner node.",
        "0.1.0",
        immediate=True,
        usage="ASPEN.ADD-LEARNER id raft-host:port",
    ),
    _spec(
        "aspen.change-membership",
        -2,
        "",
        _NOKEY,
        _node("cmd_change_membership"),
        "server",
        "Changes the voters (joint consensus).",
        "0.1.0",
        immediate=True,
        usage="ASPEN.CHANGE-MEMBERSHIP voter-id [voter-id ...]",
    ),
    _spec(
        "aspen.transfer-leader",
        2,
        "",
        _NOKEY,
        _node("cmd_transfer_leader"),
        "server",
        "Hands leadership to a voter.",
        "0.1.0",
        immediate=True,
        usage="ASPEN.TRANSFER-LEADER id",
    ),
    _spec(
        "aspen.consistency",
        -1,
        _CONN,
        _NOKEY,
        _connection("cmd_consistency"),
        "connection",
        "Gets or sets the connection's read consistency.",
        "0.1.0",
        immediate=True,
    ),
)

_TABLE = _TABLE + TYPE_SPECS + STREAM_SPECS + DATA_SPECS + SCRIPTING_SPECS + DB_SPECS
_TABLE = _TABLE + SERVER_SPECS + PUBSUB_SPECS

ALL_COMMANDS: tuple[CommandSpec, ...] = _TABLE
"""Every client command, in COMMAND's order."""


def _bserve(ks: Keyspace, argv: Argv, now: int) -> object:
    """ASPEN.BSERVE key argv...: serve the blocking command `argv` from `key` (its reply, or
    null if `key` cannot serve it: aspen.kv.blocking)."""
    if len(argv) < 3:
        raise CommandError("ERR wrong number of arguments for 'aspen.bserve' command")
    spec = lookup(argv[2])
    if spec is None or spec.blocking is None:
        raise CommandError("ERR aspen.bserve: not a blocking command")
    return spec.blocking.serve(ks, argv[1], argv[2:], now)


_INTERNAL: tuple[CommandSpec, ...] = (
    _spec(
        "aspen.scriptas",
        -4,
        "write",
        _NOKEY,
        script_as,
        "scripting",
        "Runs a restricted user's script with its redis.calls checked (proposed by sessions).",
        "0.1.0",
    ),
    _spec(
        "aspen.scriptas_ro",
        -4,
        "readonly",
        _NOKEY,
        script_as,
        "scripting",
        "The read-only form of ASPEN.SCRIPTAS (EVAL_RO, EVALSHA_RO, FCALL_RO).",
        "0.1.0",
    ),
    _spec(
        "aspen.aclop",
        -3,
        "write",
        _NOKEY,
        aclop,
        "server",
        "Applies ACL SETUSER / DELUSER to the replicated user table (proposed by sessions).",
        "0.1.0",
    ),
    _spec(
        "aspen.bserve",
        -3,
        "write",
        _NOKEY,
        _bserve,
        "list",
        "Serves a parked blocking command from one key (proposed by the node only).",
        "0.1.0",
    ),    _spec(
        "aspen.evict",
        -1,
        "write",
        _NOKEY,
        memory.evict,
        "server",
        "Deletes the keys the leader chose to evict under maxmemory (proposed by the leader).",
        "0.1.0",
    ),
    _spec(
        "aspen.oom",
        -1,
        "write",
        _NOKEY,
        memory.refuse_oom,
        "server",
        "Answers -OOM for a write the leader refused under maxmemory (proposed by the leader).",
        "0.1.0",
    ),
)


def _index(specs: tuple[CommandSpec, ...]) -> dict[bytes, CommandSpec]:
    """Name -> spec, under the lower-case name and the upper-case one (the hot path's cases)."""
    out: dict[bytes, CommandSpec] = {}
    for spec in specs:
        out[spec.name.encode()] = spec
        out[spec.name.upper().encode()] = spec
    return out


COMMANDS: dict[bytes, CommandSpec] = _index(ALL_COMMANDS)

# The value types the commands above create (TYPE, COPY, snapshots find them here).
register_types(HASH_TYPE, LIST_TYPE, SET_TYPE, ZSET_TYPE, STREAM_TYPE)
"""Lower-case command name -> spec; also holds upper-case aliases for the hot path."""
_EXECUTABLE: dict[bytes, CommandSpec] = _index(ALL_COMMANDS + _INTERNAL)


def _handlers(route: Route) -> dict[bytes, Handler]:
    out: dict[bytes, Handler] = {}
    for name, spec in _EXECUTABLE.items():
        if spec.route is route:
            assert callable(spec.handler), spec.name
            out[name] = spec.handler
        for sub in spec.subcommands:  # a keyspace container (XGROUP, XINFO): by subcommand
            if sub.route is route and callable(sub.handler):
                out[name] = sub.handler
    return out


READ_HANDLERS: dict[bytes, Handler] = _handlers(Route.READ)
"""What `Keyspace.execute` runs for a ReadOp: an index of the table, not a second source."""
WRITE_HANDLERS: dict[bytes, Handler] = _handlers(Route.WRITE)
"""What `Keyspace.execute` runs for a WriteOp."""


def lookup(name: bytes) -> CommandSpec | None:
    """The spec for a client command name in any letter case, or None if unknown."""
    spec = COMMANDS.get(name)
    if spec is None:
        spec = COMMANDS.get(name.lower())
    return spec


def lookup_executable(name: bytes) -> CommandSpec | None:
    """Like `lookup`, but also finds the internal commands the node proposes."""
    spec = _EXECUTABLE.get(name)
    if spec is None:
        spec = _EXECUTABLE.get(name.lower())
    return spec


def lookup_subcommand(spec: CommandSpec, sub: bytes) -> CommandSpec | None:
    """The spec of `spec`'s subcommand `sub` (any case), or None."""
    want = spec.name + "|" + sub.decode("utf-8", "replace").lower()
    for s in spec.subcommands:
        if s.name == want:
            return s
    return None


def blocking_of(name: bytes) -> Blocking:
    """The `Blocking` of a blocking command (how to park it: `call(argv)` gives its keys,
    timeout and demand; `kind` the type it waits for)."""
    spec = lookup(name)
    assert spec is not None and spec.blocking is not None, name
    return spec.blocking


_REPLICATED_READS = frozenset({"pfcount"})
"""Flagged read-only by Redis but run as writes: PFCOUNT refreshes the cardinality cached in
the HLL's bytes, a change Redis propagates too (aspen.kv.hll)."""


def _check(specs: tuple[CommandSpec, ...]) -> None:
    """The table's own consistency (a wrong table fails at import, not on some request)."""
    for spec in specs:
        keyspace = spec.route in KEYSPACE_ROUTES
        assert keyspace == callable(spec.handler), spec.name
        writes = keyspace and (
            "write" in spec.flags or spec.replicated or spec.name in _REPLICATED_READS
        )
        assert (spec.route is Route.WRITE) == writes, spec.name
        assert (spec.blocking is not None) == ("blocking" in spec.flags), spec.name
        if not keyspace:
            assert isinstance(spec.handler, str) and spec.handler, spec.name
        _check(spec.subcommands)


_check(ALL_COMMANDS + _INTERNAL)
