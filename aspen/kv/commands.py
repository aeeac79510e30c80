"""The command table: what each command is, not how it runs.

One `CommandSpec` per command drives dispatch (a read goes to `ReadOp`, a write to `WriteOp`, a
connection command stays in the `Session`), arity errors, and the replies to `COMMAND`,
`COMMAND INFO`, `COMMAND DOCS` and `COMMAND GETKEYS`. Arity follows Redis: the count includes the
command name and a negative arity means "at least". Key positions are Redis's legacy
(first_key, last_key, step) triple; last_key -1 means "through the last argument".
"""

from __future__ import annotations

import enum

import attrs


class Route(enum.Enum):
    """Where a command runs."""

    READ = "read"  # Keyspace.execute via ReadOp (never mutates)
    WRITE = "write"  # Keyspace.execute via WriteOp (replicated)
    SESSION = "session"  # answered by the Session (connection state, server facts)


@attrs.frozen(slots=True)
class KeySpec:
    """One of Redis 7's key specs (COMMAND INFO's 9th field): where the key search begins
    (`begin_index`) and how keys are found from there.

    `find` is "range" (`lastkey`: the last key's offset from the first, negative counts from
    the end; `keystep`; `limit`) or "keynum" (the argument at `keynumidx` holds the number of
    keys, which start `firstkey` arguments after it, every `keystep`).
    """

    flags: tuple[str, ...]
    begin_index: int
    find: str = "range"
    lastkey: int = 0
    keystep: int = 1
    limit: int = 0
    keynumidx: int = 0
    firstkey: int = 1


def _atoi(raw: bytes) -> int:
    """C's atoi as glibc does it (strtol, then truncated to a 32-bit int).

    Redis's key extraction for numkeys commands reads the count with atoi, so "2abc" is 2 and
    "4294967298" is 2 there: COMMAND GETKEYS must agree, byte for byte.
    """
    i, n = 0, len(raw)
    while i < n and raw[i] in b" \t\n\v\f\r":
        i += 1
    sign = 1
    if i < n and raw[i] in b"+-":
        sign = -1 if raw[i] == 0x2D else 1
        i += 1
    start = i
    while i < n and 0x30 <= raw[i] <= 0x39:
        i += 1
    value = sign * int(raw[start:i]) if i > start else 0
    return _int32(max(-(2**63), min(2**63 - 1, value)))  # strtol saturates, (int) truncates


@attrs.frozen(slots=True)
class CommandSpec:
    name: str
    arity: int
    flags: frozenset[str]
    first_key: int
    last_key: int
    step: int
    route: Route
    group: str
    summary: str
    since: str = "1.0.0"
    acl: tuple[str, ...] = ()
    subcommands: tuple[CommandSpec, ...] = ()
    key_specs: tuple[KeySpec, ...] = ()
    """Redis's key specs when they say more than the legacy triple (numkeys commands)."""

    def arity_ok(self, argc: int) -> bool:
        """True if `argc` arguments (including the name) fit this command's arity."""
        a = self.arity
        return argc == a if a >= 0 else argc >= -a

    def key_positions(self, argc: int) -> range:
        """Indexes of the key arguments in an argv of length `argc`."""
        if self.first_key == 0:
            return range(0)
        last = self.last_key if self.last_key >= 0 else argc + self.last_key
        return range(self.first_key, last + 1, self.step)

    def keys(self, argv: list[bytes]) -> list[bytes]:
        """The key arguments of `argv` (which fits the arity), as COMMAND GETKEYS lists them.

        An empty list when a numkeys count is unusable (Redis: "Invalid arguments"). Like
        Redis 7.0, the key specs are tried first; if they fail (a count that is not a strict
        integer, or out of range), the command's own getkeys procedure decides, which reads
        the count with atoi and lists a destination key last instead of first.
        """
        if not self.key_specs:
            return [argv[i] for i in self.key_positions(len(argv)) if i < len(argv)]
        found = _keys_by_specs(self.key_specs, argv)
        return found if found is not None else _keys_by_numkeys_proc(self.key_specs, argv)


def _strict_int(raw: bytes) -> int | None:
    """Redis's string2ll: no sign but '-', no spaces, no leading zeros, 64-bit."""
    if not raw or len(raw) > 20 or not (raw.isdigit() or (raw[:1] == b"-" and raw[1:].isdigit())):
        return None
    digits = raw.lstrip(b"-")
    if (digits[:1] == b"0" and len(raw) > 1) or not digits:
        return None
    value = int(raw)
    return value if -(2**63) <= value < 2**63 else None


def _int32(value: int) -> int:
    """C's (int) cast of a 64-bit value: the low 32 bits, signed."""
    value &= 0xFFFFFFFF
    return value - 2**32 if value >= 2**31 else value


def _keys_by_specs(specs: tuple[KeySpec, ...], argv: list[bytes]) -> list[bytes] | None:
    """Redis's getKeysUsingKeySpecs; None where it finds a spec invalid for this argv."""
    argc = len(argv)
    out: list[bytes] = []
    for spec in specs:
        first = spec.begin_index
        if spec.find == "keynum":
            at = first + spec.keynumidx
            numkeys = _strict_int(argv[at]) if at < argc else None
            if numkeys is None or numkeys < 0:
                return None
            first += spec.firstkey
            last = first + _int32(numkeys) - 1
        else:
            last = first + spec.lastkey if spec.lastkey >= 0 else argc + spec.lastkey
        if last >= argc or last < first or first >= argc:
            return None
        out += argv[first : last + 1 : spec.keystep]
    return out


def _keys_by_numkeys_proc(specs: tuple[KeySpec, ...], argv: list[bytes]) -> list[bytes]:
    """Redis's genericGetKeys: `numkeys` keys by atoi, then the destination (if any)."""
    keynum = next(k for k in specs if k.find == "keynum")
    count_at = keynum.begin_index + keynum.keynumidx
    first = count_at + keynum.firstkey
    num = _atoi(argv[count_at]) if count_at < len(argv) else 0
    if num < 1 or num > (len(argv) - first) // keynum.keystep:
        return []
    keys = argv[first : first + num * keynum.keystep : keynum.keystep]
    stores = [argv[k.begin_index] for k in specs if k.find == "range" and k.begin_index < count_at]
    return keys + stores


_R, _W, _S = Route.READ, Route.WRITE, Route.SESSION


def _spec(
    name: str,
    arity: int,
    flags: str,
    keys: tuple[int, int, int],
    route: Route,
    group: str,
    summary: str,
    since: str = "1.0.0",
    subcommands: tuple[CommandSpec, ...] = (),
) -> CommandSpec:
    flagset = frozenset(flags.split())
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
        _S,
        "connection",
        "Sets the connection name.",
        "2.6.9",
    ),
    _spec(
        "client|getname",
        2,
        "noscript loading stale",
        _NOKEY,
        _S,
        "connection",
        "Returns the name of the connection.",
        "2.6.9",
    ),
    _spec(
        "client|id",
        2,
        "noscript loading stale",
        _NOKEY,
        _S,
        "connection",
        "Returns the unique client ID of the connection.",
        "5.0.0",
    ),
    _spec(
        "client|info",
        2,
        "noscript loading stale",
        _NOKEY,
        _S,
        "connection",
        "Returns information about the connection.",
        "6.2.0",
    ),
    _spec(
        "client|list",
        -2,
        "admin noscript loading stale",
        _NOKEY,
        _S,
        "connection",
        "Lists open connections.",
        "2.4.0",
    ),
    _spec(
        "client|unblock",
        -3,
        "admin noscript loading stale",
        _NOKEY,
        _S,
        "connection",
        "Unblock a client blocked in a blocking command from a different connection.",
        "5.0.0",
    ),
    _spec(
        "client|help",
        2,
        "loading stale",
        _NOKEY,
        _S,
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
        _S,
        "server",
        "Returns the effective values of configuration parameters.",
        "2.0.0",
    ),
    _spec(
        "config|help",
        2,
        "loading stale",
        _NOKEY,
        _S,
        "server",
        "Returns helpful text about the different subcommands.",
        "5.0.0",
    ),
)
_COMMAND_SUBS = (
    _spec(
        "command|count",
        2,
        "loading stale",
        _NOKEY,
        _S,
        "server",
        "Returns a count of commands.",
        "2.8.13",
    ),
    _spec(
        "command|info",
        -2,
        "loading stale",
        _NOKEY,
        _S,
        "server",
        "Returns information about one, multiple or all commands.",
        "2.8.13",
    ),
    _spec(
        "command|docs",
        -2,
        "loading stale",
        _NOKEY,
        _S,
        "server",
        "Returns documentary information about one, multiple or all commands.",
        "7.0.0",
    ),
    _spec(
        "command|getkeys",
        -4,  # Redis 7.0.15 wants at least one argument after the command name
        "loading stale",
        _NOKEY,
        _S,
        "server",
        "Extracts the key names from an arbitrary command.",
        "2.8.13",
    ),
    _spec(
        "command|list",
        -2,
        "loading stale",
        _NOKEY,
        _S,
        "server",
        "Returns a list of command names.",
        "7.0.0",
    ),
    _spec(
        "command|help",
        2,
        "loading stale",
        _NOKEY,
        _S,
        "server",
        "Returns helpful text about the different subcommands.",
        "5.0.0",
    ),
)

_PUBSUB = "pubsub noscript loading stale"
_PUBSUB_SUBS = (
    _spec("pubsub|channels", -2, "pubsub loading stale", _NOKEY, _S, "pubsub",
          "List active channels", "2.8.0"),
    _spec("pubsub|numsub", -2, "pubsub loading stale", _NOKEY, _S, "pubsub",
          "Get the count of subscribers for channels", "2.8.0"),
    _spec("pubsub|numpat", 2, "pubsub loading stale", _NOKEY, _S, "pubsub",
          "Get the count of unique patterns pattern subscriptions", "2.8.0"),
    _spec("pubsub|help", 2, "loading stale", _NOKEY, _S, "pubsub",
          "Show helpful text about the different subcommands", "6.2.0"),
)
_TABLE: tuple[CommandSpec, ...] = (
    # strings
    _spec("get", 2, "readonly fast", _KEY1, _R, "string", "Returns the string value of a key."),
    _spec(
        "set",
        -3,
        "write denyoom",
        _KEY1,
        _W,
        "string",
        "Sets the string value of a key, ignoring its type.",
    ),
    _spec(
        "setnx",
        3,
        "write denyoom fast",
        _KEY1,
        _W,
        "string",
        "Set the string value of a key only when the key doesn't exist.",
    ),
    _spec(
        "setex",
        4,
        "write denyoom",
        _KEY1,
        _W,
        "string",
        "Sets the string value and expiration time of a key.",
        "2.0.0",
    ),
    _spec(
        "psetex",
        4,
        "write denyoom",
        _KEY1,
        _W,
        "string",
        "Sets the string value and expiration time in milliseconds of a key.",
        "2.6.0",
    ),
    _spec(
        "getset",
        3,
        "write denyoom fast",
        _KEY1,
        _W,
        "string",
        "Returns the previous string value of a key after setting it to a new value.",
    ),
    _spec(
        "getdel",
        2,
        "write fast",
        _KEY1,
        _W,
        "string",
        "Returns the string value of a key after deleting the key.",
        "6.2.0",
    ),
    _spec(
        "getex",
        -2,
        "write fast",
        _KEY1,
        _W,
        "string",
        "Returns the string value of a key after setting its expiration time.",
        "6.2.0",
    ),
    _spec(
        "mget",
        -2,
        "readonly fast",
        _ALLKEYS,
        _R,
        "string",
        "Atomically returns the string values of one or more keys.",
    ),
    _spec(
        "mset",
        -3,
        "write denyoom",
        (1, -1, 2),
        _W,
        "string",
        "Atomically creates or modifies the string values of one or more keys.",
        "1.0.1",
    ),
    _spec(
        "msetnx",
        -3,
        "write denyoom",
        (1, -1, 2),
        _W,
        "string",
        "Atomically modifies the string values of one or more keys only when all keys don't exist.",
        "1.0.1",
    ),
    _spec(
        "append",
        3,
        "write denyoom fast",
        _KEY1,
        _W,
        "string",
        "Appends a string to the value of a key. Creates the key if it doesn't exist.",
        "2.0.0",
    ),
    _spec(
        "strlen",
        2,
        "readonly fast",
        _KEY1,
        _R,
        "string",
        "Returns the length of a string value.",
        "2.2.0",
    ),
    _spec(
        "getrange",
        4,
        "readonly",
        _KEY1,
        _R,
        "string",
        "Returns a substring of the string stored at a key.",
        "2.4.0",
    ),
    _spec(
        "setrange",
        4,
        "write denyoom",
        _KEY1,
        _W,
        "string",
        "Overwrites a part of a string value with another by an offset.",
        "2.2.0",
    ),
    _spec(
        "incr",
        2,
        "write denyoom fast",
        _KEY1,
        _W,
        "string",
        "Increments the integer value of a key by one.",
    ),
    _spec(
        "decr",
        2,
        "write denyoom fast",
        _KEY1,
        _W,
        "string",
        "Decrements the integer value of a key by one.",
    ),
    _spec(
        "incrby",
        3,
        "write denyoom fast",
        _KEY1,
        _W,
        "string",
        "Increments the integer value of a key by a number.",
    ),
    _spec(
        "decrby",
        3,
        "write denyoom fast",
        _KEY1,
        _W,
        "string",
        "Decrements a number from the integer value of a key.",
    ),
    _spec(
        "incrbyfloat",
        3,
        "write denyoom fast",
        _KEY1,
        _W,
        "string",
        "Increment the floating point value of a key by a number.",
        "2.6.0",
    ),
    # keys
    _spec("del", -2, "write", _ALLKEYS, _W, "generic", "Deletes one or more keys."),
    _spec(
        "unlink",
        -2,
        "write fast",
        _ALLKEYS,
        _W,
        "generic",
        "Asynchronously deletes one or more keys.",
        "4.0.0",
    ),
    _spec(
        "exists",
        -2,
        "readonly fast",
        _ALLKEYS,
        _R,
        "generic",
        "Determines whether one or more keys exist.",
    ),
    _spec(
        "type",
        2,
        "readonly fast",
        _KEY1,
        _R,
        "generic",
        "Determines the type of value stored at a key.",
    ),
    _spec(
        "keys", 2, "readonly", _NOKEY, _R, "generic", "Returns all key names that match a pattern."
    ),
    _spec(
        "scan",
        -2,
        "readonly",
        _NOKEY,
        _R,
        "generic",
        "Iterates over the key names in the database.",
        "2.8.0",
    ),
    _spec(
        "dbsize",
        1,
        "readonly fast",
        _NOKEY,
        _R,
        "server",
        "Returns the number of keys in the database.",
    ),
    _spec(
        "flushdb", -1, "write", _NOKEY, _W, "server", "Remove all keys from the current database."
    ),
    _spec("flushall", -1, "write", _NOKEY, _W, "server", "Removes all keys from all databases."),
    _spec(
        "rename",
        3,
        "write",
        (1, 2, 1),
        _W,
        "generic",
        "Renames a key and overwrites the destination.",
    ),
    _spec(
        "renamenx",
        3,
        "write fast",
        (1, 2, 1),
        _W,
        "generic",
        "Renames a key only when the target key name doesn't exist.",
    ),
    _spec(
        "randomkey",
        1,
        "readonly",
        _NOKEY,
        _R,
        "generic",
        "Returns a random key name from the database.",
    ),
    _spec(
        "copy",
        -3,
        "write denyoom",
        (1, 2, 1),
        _W,
        "generic",
        "Copies the value of a key to a new key.",
        "6.2.0",
    ),
    _spec(
        "touch",
        -2,
        "readonly fast",
        _ALLKEYS,
        _R,
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
        _W,
        "generic",
        "Sets the expiration time of a key in seconds.",
    ),
    _spec(
        "pexpire",
        -3,
        "write fast",
        _KEY1,
        _W,
        "generic",
        "Sets the expiration time of a key in milliseconds.",
        "2.6.0",
    ),
    _spec(
        "expireat",
        -3,
        "write fast",
        _KEY1,
        _W,
        "generic",
        "Sets the expiration time of a key to a Unix timestamp.",
        "1.2.0",
    ),
    _spec(
        "pexpireat",
        -3,
        "write fast",
        _KEY1,
        _W,
        "generic",
        "Sets the expiration time of a key to a Unix milliseconds timestamp.",
        "2.6.0",
    ),
    _spec(
        "ttl",
        2,
        "readonly fast",
        _KEY1,
        _R,
        "generic",
        "Returns the expiration time in seconds of a key.",
    ),
    _spec(
        "pttl",
        2,
        "readonly fast",
        _KEY1,
        _R,
        "generic",
        "Returns the expiration time in milliseconds of a key.",
        "2.6.0",
    ),
    _spec(
        "expiretime",
        2,
        "readonly fast",
        _KEY1,
        _R,
        "generic",
        "Returns the expiration time of a key as a Unix timestamp.",
        "7.0.0",
    ),
    _spec(
        "pexpiretime",
        2,
        "readonly fast",
        _KEY1,
        _R,
        "generic",
        "Returns the expiration time of a key as a Unix milliseconds timestamp.",
        "7.0.0",
    ),
    _spec(
        "persist",
        2,
        "write fast",
        _KEY1,
        _W,
        "generic",
        "Removes the expiration time of a key.",
        "2.2.0",
    ),
    # transactions
    _spec("multi", 1, _CONN, _NOKEY, _S, "transactions", "Starts a transaction.", "1.2.0"),
    _spec(
        "exec",
        1,
        "noscript loading stale skip_slowlog",
        _NOKEY,
        _S,
        "transactions",
        "Executes all commands in a transaction.",
        "1.2.0",
    ),
    _spec("discard", 1, _CONN, _NOKEY, _S, "transactions", "Discards a transaction.", "2.0.0"),
    _spec(
        "watch",
        -2,
        _CONN,
        _ALLKEYS,
        _S,
        "transactions",
        "Monitors changes to keys to determine the execution of a transaction.",
        "2.2.0",
    ),
    _spec(
        "unwatch",
        1,
        _CONN,
        _NOKEY,
        _S,
        "transactions",
        "Forgets about watched keys of a transaction.",
        "2.2.0",
    ),
    # connection / server
    _spec(
        "ping", -1, "fast", _NOKEY, _S, "connection", "Returns the server's liveliness response."
    ),
    _spec("echo", 2, "loading stale fast", _NOKEY, _S, "connection", "Returns the given string."),
    _spec(
        "hello",
        -1,
        _CONN + " no_auth",
        _NOKEY,
        _S,
        "connection",
        "Handshakes with the Redis server.",
        "6.0.0",
    ),
    _spec(
        "auth", -2, _CONN + " no_auth", _NOKEY, _S, "connection", "Authenticates the connection."
    ),
    _spec(
        "select",
        2,
        "loading stale fast",
        _NOKEY,
        _S,
        "connection",
        "Changes the selected database.",
    ),
    _spec("quit", -1, _CONN + " no_auth", _NOKEY, _S, "connection", "Closes the connection."),
    _spec(
        "reset", 1, _CONN + " no_auth", _NOKEY, _S, "connection", "Resets the connection.", "6.2.0"
    ),
    _spec(
        "client",
        -2,
        "",
        _NOKEY,
        _S,
        "connection",
        "A container for client connection commands.",
        "2.4.0",
        _CLIENT_SUBS,
    ),
    _spec(
        "info",
        -1,
        "loading stale",
        _NOKEY,
        _S,
        "server",
        "Returns information and statistics about the server.",
    ),
    _spec(
        "config",
        -2,
        "",
        _NOKEY,
        _S,
        "server",
        "A container for server configuration commands.",
        "2.0.0",
        _CONFIG_SUBS,
    ),
    _spec(
        "time", 1, "loading stale fast", _NOKEY, _S, "server", "Returns the server time.", "2.6.0"
    ),
    _spec(
        "command",
        -1,
        "loading stale",
        _NOKEY,
        _S,
        "server",
        "Returns detailed information about all commands.",
        "2.8.13",
        _COMMAND_SUBS,
    ),
    # pub/sub (aspen.pubsub; answered by the session)
    _spec("subscribe", -2, _PUBSUB, _NOKEY, _S, "pubsub",
          "Listen for messages published to the given channels", "2.0.0"),
    _spec("unsubscribe", -1, _PUBSUB, _NOKEY, _S, "pubsub",
          "Stop listening for messages posted to the given channels", "2.0.0"),
    _spec("psubscribe", -2, _PUBSUB, _NOKEY, _S, "pubsub",
          "Listen for messages published to channels matching the given patterns", "2.0.0"),
    _spec("punsubscribe", -1, _PUBSUB, _NOKEY, _S, "pubsub",
          "Stop listening for messages posted to channels matching the given patterns",
          "2.0.0"),
    _spec("publish", 3, "pubsub loading stale fast", _NOKEY, _S, "pubsub",
          "Post a message to a channel", "2.0.0"),
    _spec("pubsub", -2, "", _NOKEY, _S, "pubsub", "A container for Pub/Sub commands", "2.8.0",
          _PUBSUB_SUBS),
    # Aspen's cluster commands: answered by the node (aspen/node.py, aspen/cluster/connection.py)
    # before the session sees them; listed here so COMMAND and arity know them.
    _spec("aspen.status", 1, "loading stale", _NOKEY, _S, "server", "Returns the Raft status.",
          "0.1.0"),
    _spec("aspen.init", -1, "", _NOKEY, _S, "server", "Initialises a new cluster.", "0.1.0"),
    _spec("aspen.add-learner", 3, "", _NOKEY, _S, "server", "Adds a learner node.", "0.1.0"),
    _spec("aspen.change-membership", -2, "", _NOKEY, _S, "server",
          "Changes the voters (joint consensus).", "0.1.0"),
    _spec("aspen.transfer-leader", 2, "", _NOKEY, _S, "server", "Hands leadership to a voter.",
          "0.1.0"),
    _spec("aspen.consistency", -1, _CONN, _NOKEY, _S, "connection",
          "Gets or sets the connection's read consistency.", "0.1.0"),
)

# Hashes, lists, sets and sorted sets live in their own module.
from aspen.kv.specs_types import TYPE_SPECS  # noqa: E402

_TABLE = _TABLE + TYPE_SPECS

COMMANDS: dict[bytes, CommandSpec] = {}
"""Lower-case command name -> spec; also holds upper-case aliases for the hot path."""

for _c in _TABLE:
    COMMANDS[_c.name.encode()] = _c
    COMMANDS[_c.name.upper().encode()] = _c

ALL_COMMANDS: tuple[CommandSpec, ...] = _TABLE


def lookup(name: bytes) -> CommandSpec | None:
    """The spec for a command name in any letter case, or None if unknown."""
    spec = COMMANDS.get(name)
    if spec is None:
        spec = COMMANDS.get(name.lower())
    return spec


def lookup_subcommand(spec: CommandSpec, sub: bytes) -> CommandSpec | None:
    """The spec of `spec`'s subcommand `sub` (any case), or None."""
    want = spec.name + "|" + sub.decode("utf-8", "replace").lower()
    for s in spec.subcommands:
        if s.name == want:
            return s
    return None
