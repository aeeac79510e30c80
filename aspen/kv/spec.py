"""The command table's types: what a command is (`CommandSpec`) and where it runs (`Route`).

Arity follows Redis: the count includes the command name and a negative arity means "at
least". Key positions are Redis's legacy (first_key, last_key, step) triple; last_key -1 means
"through the last argument". The table itself (every spec, paired with its handler) is
`aspen.kv.commands`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from aspen.kv.blocking import BlockingCall
    from aspen.kv.keyspace import Keyspace

Argv = Sequence[bytes]
Handler = Callable[["Keyspace", "list[bytes] | tuple[bytes, ...]", int], object]
"""A READ or WRITE command's implementation: `(keyspace, argv, now_ms) -> reply`. It may raise
`aspen.kv.errors.CommandError`; it must be deterministic (time and randomness come from
`now_ms` and `keyspace.seed`)."""


class Route(enum.Enum):
    """Which layer answers a command. Every layer routes by this, never by the name.

    READ and WRITE run in the keyspace (`Keyspace.execute`, the spec's `handler` is a keyspace
    function); the others are answered by the object the session holds for that route (the
    spec's `handler` names its method): the session itself, the cluster connection in front of
    it, or the node (the server process).
    """

    READ = "read"  # Keyspace.execute via ReadOp (never mutates)
    WRITE = "write"  # Keyspace.execute via WriteOp (replicated)
    SESSION = "session"  # kv.session.Session: connection state, server facts, MULTI, pub/sub
    CONNECTION = "connection"  # cluster.connection.ClusterConnection: read consistency, unblock
    NODE = "node"  # aspen.daemon.AdminCommands: ASPEN.* cluster administration


KEYSPACE_ROUTES = frozenset({Route.READ, Route.WRITE})


@attrs.frozen(slots=True)
class KeySpec:
    """One of Redis 7's key specs (COMMAND INFO's 9th field): where the key search begins
    (`begin_index`) and how keys are found from there.

    `find` is "range" (`lastkey`: the last key's offset from the first, negative counts from
    the end; `keystep`; `limit`) or "keynum" (the argument at `keynumidx` holds the number of
    keys, which start `firstkey` arguments after it, every `keystep`).

    `keyword` (XREAD's STREAMS): the search begins after the first argument equal to it (any
    case), looked for from `startfrom` up to the one before last; `begin_index` is unused.
    """

    flags: tuple[str, ...]
    begin_index: int
    find: str = "range"
    lastkey: int = 0
    keystep: int = 1
    limit: int = 0
    keynumidx: int = 0
    firstkey: int = 1
    keyword: str = ""
    startfrom: int = 0
    notes: str = ""


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
class Blocking:
    """What makes a command blocking (BLPOP & co.): how the node parks a client whose command
    found nothing (`call`: its keys, timeout and demand) and how a replicated serve pops for it
    from one key (`serve`: the reply, or None if that key cannot serve it)."""

    call: Callable[[Argv], BlockingCall]
    serve: Callable[[Keyspace, bytes, Argv, int], object]
    kind: type
    """The value type it waits for (a key holding another type cannot serve it)."""
    give_back: Callable[[Argv, object], list[bytes] | None] | None = None
    """The write (argv) that undoes a serve whose reply found its client gone, from the
    command and that reply; None: nothing to give back (nothing was popped)."""


@attrs.frozen(slots=True)
class CommandSpec:
    """One command: what Redis says about it (name, arity, flags, keys, docs) and how Aspen
    runs it (`route`, `handler`, `blocking`, `immediate`, `subscribed_ok`).

    `handler` is the keyspace function `(keyspace, argv, now_ms) -> reply` of a READ or WRITE
    command, and for the other routes the name of the method of that route's layer object
    that answers it (`method(argv) -> reply`).
    """

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
    handler: Handler | str | None = None
    blocking: Blocking | None = None
    immediate: bool = False
    """Runs at once inside MULTI instead of being queued (EXEC, DISCARD, WATCH, ...)."""
    subscribed_ok: bool = False
    """Allowed on a RESP2 connection with subscriptions (SUBSCRIBE, PING, QUIT, ...)."""
    usage: str = ""
    """Shown after an arity error (Aspen's own commands)."""
    keys_proc: Callable[[list[bytes]], list[bytes]] | None = None
    """The command's own key finder where its keys move with its options (SORT's STORE,
    GEORADIUS's STORE/STOREDIST): COMMAND GETKEYS asks it instead of the specs."""
    replicated: bool = False
    """A WRITE command Redis does not flag "write": it runs a script or changes the script
    cache or the function libraries (EVAL, FCALL, SCRIPT, FUNCTION), which every replica must
    see, so it goes through the log."""

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
        if self.keys_proc is not None:
            return self.keys_proc(argv)
        if not self.key_specs:
            return [argv[i] for i in self.key_positions(len(argv)) if i < len(argv)]
        found = _keys_by_specs(self.key_specs, argv)
        if found is not None:
            return found
        if any(k.find == "keynum" for k in self.key_specs):
            return _keys_by_numkeys_proc(self.key_specs, argv)
        return []  # range specs only (BITOP, PFMERGE ...): no procedure, invalid arguments


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
        if spec.keyword:
            word = spec.keyword.lower().encode()
            found = [i for i in range(spec.startfrom, argc - 1) if argv[i].lower() == word]
            if not found:
                continue
            first = found[0] + 1
        if spec.find == "keynum":
            at = first + spec.keynumidx
            numkeys = _strict_int(argv[at]) if at < argc else None
            if numkeys is None or numkeys < 0:
                return None
            first += spec.firstkey
            last = first + _int32(numkeys) - 1
        elif spec.lastkey >= 0:
            last = first + spec.lastkey
        elif spec.limit:
            last = first + (argc - first) // spec.limit + spec.lastkey
        else:
            last = argc + spec.lastkey
        if spec.keyword and last < first:
            continue
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
