"""One client connection's state, sans-I/O.

The server owns the socket; for every parsed command it calls `handle(argv)`, which returns
either a reply value (connection commands, errors, QUEUED) or an op (`ReadOp`, `WriteOp`,
`TxnOp`) for the executor. After the executor ran the op the server calls `finish(op, result)`
for the reply. Ops are finished in the order they were handed out (a pipelining server may
hand out several before finishing the first).

    session = Session(client_id, ctx)
    out = session.handle(argv)
    reply = session.finish(out, executor.execute(out)) if is_op(out) else out
    session.protocol      # 2 or 3: how the server encodes replies
    session.should_close  # True after QUIT: write the reply, then close

Routing: `handle` looks the command up in the table (aspen.kv.commands) once and goes by its
spec: READ and WRITE commands become ops; the others are answered by the object registered
in `session.layers` for the spec's route (the session itself for SESSION, e.g. `cmd_ping`;
the cluster connection and the node add themselves for CONNECTION and NODE), whose method
the spec names. Inside MULTI a command is queued unless its spec is `immediate`.

Pub/sub: a session given a `PubSubClient` (the node's hub, and a sink that pushes to this
connection) answers SUBSCRIBE and friends, PUBLISH and PUBSUB. While a RESP2 session has
subscriptions only (P)SUBSCRIBE, (P)UNSUBSCRIBE, PING, QUIT and RESET run (Redis's rule);
a RESP3 session may run anything, its messages arriving as pushes between replies.

`ServerContext` is what a session needs from the node; it is deliberately small:

- `requirepass`: the password of the "default" user, or None (no AUTH needed).
- `config_get(pattern)`: (name, value) pairs of the settings matching a glob (ACL's aclfile).
- `server_config`: the node's parameters (`aspen.server.live_config.ServerConfig`): CONFIG.
- `wall_clock_ms()`: for TIME, and to judge expiry of WATCHed keys at WATCH time.
- `info_sections()`: server-level INFO facts, section name (lower case) -> (field, value) pairs.
- `client_list()`: a `ClientInfo` per open connection (CLIENT LIST / CLIENT INFO).
- `keyspace`: a `KeyspaceView` of the local keyspace: WATCH tokens and INFO keyspace counts.
  In the cluster this is the local replica: a stale WATCH token can only cause an abort.

Databases: `db` is the connection's SELECTed database (0 at start and after RESET; HELLO
keeps it). It is the one place a connection's database lives: every op the session hands out
carries it (`ReadOp(argv, db)`, ...), so the executor, every replica, the blocking service and
keyspace notifications all know it from the op. A SELECT queued in MULTI travels inside the
TxnOp (the keyspace switches database there) and sets `db` when EXEC's reply is made.
"""

from __future__ import annotations

import collections
from time import perf_counter
from typing import TYPE_CHECKING, Protocol, cast

import attrs

from aspen.acl import command as aclcmd
from aspen.acl.check import Denied, check
from aspen.acl.scripts import SCRIPT_AS, SCRIPT_AS_READ
from aspen.acl.state import EPOCH, AclState
from aspen.kv import commands as cmdtable
from aspen.kv.commands import COMMANDS, CommandSpec, lookup_executable
from aspen.kv.databases import DB_RANGE, parse_index
from aspen.kv.glob import glob_match
from aspen.kv.introspect import command_docs, command_info
from aspen.kv.ops import Op, ReadOp, TxnOp, Watch, WriteOp
from aspen.kv.spec import KEYSPACE_ROUTES, Route
from aspen.resp.deferred import Deferred
from aspen.resp.values import (
    OK,
    PONG,
    QUEUED,
    ArrayHeader,
    Error,
    Map,
    Replies,
    SimpleString,
    Verbatim,
)
from aspen.server.lolwut import lolwut
from aspen.server.reply_mode import NOTHING, ReplyMode

if TYPE_CHECKING:
    from aspen.pubsub.hub import PubSubClient
    from aspen.server.latency import LatencyMonitor
    from aspen.server.live_config import ServerConfig
    from aspen.server.monitor import Monitors
    from aspen.server.slowlog import SlowLog
    from aspen.server.stats import CommandStats

SERVER_NAME = "aspen"
COMPAT_VERSION = "7.0.15"
"""The Redis version whose behaviour Aspen follows; reported by HELLO and INFO."""

Reply = object


class KeyspaceView(Protocol):
    @property
    def acl(self) -> AclState: ...
    @property
    def databases(self) -> int: ...
    def watch_token(self, key: bytes, now_ms: int, db: int | None = None) -> int: ...
    def db_stats(self, now_ms: int) -> list[tuple[int, int, int, int]]: ...


class ServerContext(Protocol):
    @property
    def requirepass(self) -> bytes | None: ...
    @property
    def keyspace(self) -> KeyspaceView: ...
    def config_get(self, pattern: bytes) -> list[tuple[bytes, bytes]]: ...
    @property
    def server_config(self) -> ServerConfig: ...
    def wall_clock_ms(self) -> int: ...
    def info_sections(self) -> dict[str, list[tuple[str, str]]]: ...
    def client_list(self) -> list[ClientInfo]: ...


@attrs.frozen
class ClientInfo:
    """One line of CLIENT LIST, in Redis's field order (fields Aspen cannot know are fixed)."""

    id: int
    addr: str = "?"
    laddr: str = "?"
    name: bytes = b""
    age_s: int = 0
    idle_s: int = 0
    db: int = 0
    multi: int = -1
    cmd: str = "NULL"
    resp: int = 2
    user: str = "default"
    sub: int = 0
    psub: int = 0

    @property
    def pubsub(self) -> bool:
        return bool(self.sub or self.psub)

    def line(self) -> bytes:
        name = self.name.decode("utf-8", "replace")
        flags = ("x" if self.multi >= 0 else "") + ("P" if self.pubsub else "")
        return (
            f"id={self.id} addr={self.addr} laddr={self.laddr} fd=-1 name={name} "
            f"age={self.age_s} idle={self.idle_s} flags={flags or 'N'} "
            f"db={self.db} sub={self.sub} psub={self.psub} ssub=0 multi={self.multi} qbuf=0 "
            f"qbuf-free=0 "
            f"argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r "
            f"cmd={self.cmd} user={self.user} redir=-1 resp={self.resp}"
        ).encode()


# Error texts, exactly as Redis 7.0 words them.
NOAUTH = Error("NOAUTH Authentication required.")
WRONGPASS = Error("WRONGPASS invalid username-password pair or user is disabled.")
SYNTAX = Error("ERR syntax error")
NOT_INTEGER = Error("ERR value is not an integer or out of range")
EXECABORT = Error("EXECABORT Transaction discarded because of previous errors.")
_AUTH_NOPASS = Error(
    "ERR AUTH <password> called without any password configured for the default user. "
    "Are you sure your configuration is correct?"
)
_HELLO_NOAUTH = Error(
    "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
    "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and "
    "select the RESP protocol version at the same time"
)
_RESET = SimpleString("RESET")
_NO_PUBSUB = Error("ERR pub/sub is not available on this connection")


def _c_string(raw: bytes) -> bytes:
    """What C's "%s" prints of `raw`: everything before the first NUL byte."""
    nul = raw.find(b"\x00")
    return raw if nul < 0 else raw[:nul]


def unknown_command_error(argv: list[bytes]) -> Error:
    """Redis's text: the name and the first arguments, quoted, capped near 128 characters."""
    name = _c_string(argv[0])[:128].decode("utf-8", "replace")
    args = ""
    for a in argv[1:]:
        if len(args) >= 128:
            break
        args += "'" + _c_string(a)[: 128 - len(args)].decode("utf-8", "replace") + "' "
    text = f"ERR unknown command '{name}', with args beginning with: {args}"
    return Error(text.replace("\r", " ").replace("\n", " "))


def subscribed_mode_error(name: str) -> Error:
    return Error(
        f"ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / "
        "RESET are allowed in this context"
    )


def arity_error(name: str, usage: str = "") -> Error:
    if usage:
        return Error(f"ERR wrong number of arguments for '{name}' command (usage: {usage})")
    return Error(f"ERR wrong number of arguments for '{name}' command")


def _parse_int(raw: bytes) -> int | None:
    """Redis's strict integer parse (no spaces, no '+', fits in a signed 64-bit int)."""
    if not raw or len(raw) > 20 or raw[0] == 43 or raw != raw.strip():  # 43 == '+'
        return None
    try:
        value = int(raw)
    except ValueError:
        return None
    if not -(2**63) <= value < 2**63 or (raw.startswith((b"0", b"-0")) and raw not in (b"0",)):
        return None
    return value


def _valid_client_name(name: bytes) -> bool:
    return all(33 <= c <= 126 for c in name)


SCRIPT_RUNNERS = frozenset(
    {"eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"}
)
"""The commands that run a script: a restricted user's are wrapped (aspen.acl.scripts)."""


class Session:
    """Connection state: auth, protocol, name, MULTI queue and WATCHed keys."""

    def __init__(
        self,
        client_id: int,
        ctx: ServerContext,
        pubsub: PubSubClient | None = None,
        *,
        trusted: bool = False,
    ) -> None:
        self.client_id = client_id
        self.ctx = ctx
        self.pubsub = pubsub
        self.protocol = 2
        self.should_close = False
        self.name = b""
        self.db = 0  # the SELECTed database: every op carries it
        self.username = b"default"
        self.trusted = trusted  # the node's own (the HTTP control plane's): no AUTH, no ACL
        self.authenticated = self._default_nopass()
        self._acl_epoch = -1  # the ACL EPOCH this session's permissions were computed at
        self._restricted = False  # the user may not run everything: check each command
        self.last_spec: CommandSpec | None = None  # the last command run (CLIENT LIST's cmd)
        # Who answers the commands of each upper route: this session its own; the layers in
        # front of it (the cluster connection, the node) add themselves.
        self.layers: dict[Route, object] = {Route.SESSION: self}
        self._in_multi = False
        self._multi_dirty = False
        self._queue: list[tuple[list[bytes], CommandSpec]] = []
        self._watches: dict[tuple[int, bytes], int] = {}  # (db, key) -> token
        # EXEC plans waiting for their TxnOp's result, in hand-out order.
        self._exec_plans: collections.deque[list[tuple[list[bytes], CommandSpec]]] = (
            collections.deque()
        )
        self._selects_pending = 0  # EXECs handed out with a queued SELECT, not finished yet
        self._gate = not self.authenticated  # any reason to leave the fast path
        self._acl_refresh()
        # INFO commandstats: the node's counters, and (name, start) of the ops handed out
        self.stats: CommandStats | None = getattr(ctx, "command_stats", None)
        self.slowlog: SlowLog | None = getattr(ctx, "slowlog", None)
        self.monitors: Monitors | None = getattr(ctx, "monitors", None)
        self.latency: LatencyMonitor | None = getattr(ctx, "latency", None)
        self.addr = ""  # the client's address (the node sets it; SLOWLOG shows it)
        self.in_exec = False  # running a queued upper-layer command of EXEC
        self._timing: collections.deque[tuple[CommandSpec, list[bytes], float]] = (
            collections.deque()
        )
        self.reply_mode = ReplyMode()  # CLIENT REPLY
        self._silent_ops: set[int] = set()  # ids of ops handed out whose reply is dropped
        # per EXEC plan handed out under CLIENT REPLY: (header kept, each entry's fate: True
        # keep its reply, False drop it, else the CLIENT REPLY entry's own reply or None)
        self._exec_masks: dict[int, tuple[bool, list[object]]] = {}
        self._exec_masked: tuple[bool, list[object]] | None = None

    # ---------------------------------------------------------------- public API

    @property
    def in_multi(self) -> bool:
        return self._in_multi

    @property
    def db_settled(self) -> bool:
        """False while an EXEC with a queued SELECT is in flight: the database of the next
        command is known only once it finished (a WATCH abort leaves it unchanged), so a
        pipelining server must not hand out the next op before."""
        return not self._selects_pending

    @property
    def last_command(self) -> str:
        return self.last_spec.name if self.last_spec is not None else "NULL"

    def handle(self, argv: list[bytes]) -> Reply | Op:
        """The reply to `argv` now, or an op to run (its reply comes from `finish`)."""
        mode = self.reply_mode
        if not mode.quiet:
            return self._handle_counted(argv)
        mode.begin()
        out = self._handle_counted(argv)
        masked, self._exec_masked = self._exec_masked, None
        if masked is not None and type(out) is TxnOp:
            self._exec_masks[id(out)] = masked  # EXEC: reply by reply, in `_finish`
        elif mode.dropping:
            out = self._silenced(out)
        mode.end()
        return out

    def _silenced(self, out: Reply | Op) -> Reply | Op:
        if type(out) in _OPS:
            self._silent_ops.add(id(out))
            return out
        if isinstance(out, Deferred):
            inner = out

            async def wait() -> object:
                await inner.wait_for()
                return NOTHING

            return Deferred(wait, inner.abandon if inner.started else None)
        return NOTHING

    def served(self, op: Op, reply: object) -> object:
        """The reply a blocked command got when served or timed out (not through `finish`):
        dropped if CLIENT REPLY was OFF or skipping when the command came."""
        if self._silent_ops and id(op) in self._silent_ops:
            self._silent_ops.discard(id(op))
            return NOTHING
        return reply

    def cmd_lolwut(self, argv: list[bytes]) -> Reply:
        return lolwut(argv)

    def cmd_client_reply(self, argv: list[bytes]) -> Reply:
        return self.reply_mode.apply(argv)

    def _handle_counted(self, argv: list[bytes]) -> Reply | Op:
        stats = self.stats
        if stats is None:
            return self._handle(argv)
        start = perf_counter()
        before = self.last_spec
        self.last_spec = _NO_SPEC  # (not None: mypy would take it as still None below, mypyc too)
        out = self._handle(argv)
        spec = self.last_spec
        monitors = self.monitors
        if monitors is not None and monitors.sinks and spec is not None and not (
            spec.flags & _NOT_MONITORED
        ):
            monitors.feed(argv, self.addr, self.client_id)
        if spec is None:  # refused before running (or queued in MULTI)
            self.last_spec = before
            if type(out) is Error:
                stats.error(out.message)
                name = _name_of(argv)
                if name is not None:
                    stats.rejected(name)
            return out
        if type(out) in _OPS:
            self._timing.append((spec, argv, start))
            return out
        self._ran(stats, spec, argv, start, out)
        return out

    def _ran(self, stats: CommandStats, spec: CommandSpec, argv: list[bytes], start: float,
             reply: object) -> None:
        """Count a command that ran (INFO commandstats) and maybe log it (SLOWLOG, LATENCY)."""
        usec = (perf_counter() - start) * 1e6
        failed = type(reply) is Error
        if failed:
            stats.error(cast(Error, reply).message)
        stats.ran(spec.name, usec, failed)
        latency = self.latency
        if latency is not None and latency.threshold_ms:
            latency.consider("fast" in spec.flags, usec)
        slowlog = self.slowlog
        if (slowlog is not None and usec >= slowlog.slower_than >= 0
                and "skip_slowlog" not in spec.flags):
            if spec.name == "config|set":
                argv = redact_config_set(argv)
            slowlog.consider(argv, usec, self.addr, self.name)

    def _handle(self, argv: list[bytes]) -> Reply | Op:
        """The reply to `argv` now, or an op to run; see the module docstring.

        The one place a command is looked up: every check (arity, AUTH, subscribed mode,
        MULTI) and the routing read the spec, never the name."""
        spec = COMMANDS.get(argv[0])
        if spec is None:
            spec = cmdtable.lookup(argv[0])
            if spec is None:
                return self._reject(unknown_command_error(argv))
        argc = len(argv)
        a = spec.arity
        if (argc != a) if a >= 0 else (argc < -a):
            return self._reject(arity_error(spec.name, spec.usage))
        target = spec
        if spec.subcommands:
            sub = cmdtable.lookup_subcommand(spec, argv[1])
            if sub is None:
                return self._reject(
                    Error(
                        f"ERR unknown subcommand '{argv[1][:128].decode('utf-8', 'replace')}'."
                        f" Try {spec.name.upper()} HELP."
                    )
                )
            if not sub.arity_ok(argc):
                return self._reject(arity_error(sub.name))
            target = sub
        if self._acl_epoch != EPOCH.value:
            self._acl_refresh()
        if self._gate:
            if not self.authenticated and "no_auth" not in spec.flags:
                return self._reject(NOAUTH)
            if self._restricted:
                refused = self._acl_check(target, argv)
                if refused is not None:
                    return self._reject(refused)
                if target.group == "scripting" and target.name in SCRIPT_RUNNERS:
                    # its redis.calls are checked where it runs, against this user's rules
                    wrap = SCRIPT_AS if target.route is Route.WRITE else SCRIPT_AS_READ
                    argv = [wrap, self.username, *argv]
                    wrapped = lookup_executable(wrap)
                    assert wrapped is not None
                    target = wrapped
            if self._subscribed_resp2() and not spec.subscribed_ok:
                return self._reject(subscribed_mode_error(target.name))
            if self._in_multi and "no_multi" in spec.flags:
                return self._reject(Error("ERR Command not allowed inside a transaction"))
            if self._in_multi and not spec.immediate:
                self._queue.append((argv, target))
                return QUEUED
        self.last_spec = target
        route = target.route
        if route is Route.READ:
            return ReadOp(argv, self.db)
        if route is Route.WRITE:
            return WriteOp(argv, self.db)
        return self._run_layer(target, argv)

    def finish(self, op: Op, result: object) -> Reply:
        """The reply for `op` given what the executor returned."""
        reply = self._finish(op, result)
        if self._silent_ops and id(op) in self._silent_ops:
            self._silent_ops.discard(id(op))
            reply = NOTHING
        stats = self.stats
        if stats is not None and self._timing:
            spec, argv, start = self._timing.popleft()
            self._ran(stats, spec, argv, start, reply)
        return reply

    def _finish(self, op: Op, result: object) -> Reply:
        if isinstance(op, TxnOp):
            plan = self._exec_plans.popleft()
            if any(s.name == "select" for _, s in plan):
                self._selects_pending -= 1
            masked = self._exec_masks.pop(id(op), None) if self._exec_masks else None
            if not isinstance(result, list):
                return result  # aborted by WATCH (null array) or an error
            if masked is not None:
                return self._finish_masked(plan, result, *masked)
            replies: list[object] = []
            it = iter(result)
            for argv, spec in plan:
                if spec.route not in KEYSPACE_ROUTES:
                    self.in_exec = True
                    try:
                        reply = self._run_layer(spec, argv)
                    finally:
                        self.in_exec = False
                    if type(reply) is Replies:  # SUBSCRIBE a b: one element per reply
                        replies += reply.items
                    else:
                        replies.append(reply)
                else:
                    replies.append(next(it))
            return replies
        return result

    def _finish_masked(self, plan: list[tuple[list[bytes], CommandSpec]], result: list[object],
                       header: bool, fates: list[object]) -> Reply:
        """EXEC's replies under CLIENT REPLY (see aspen.server.reply_mode)."""
        items: list[object] = [ArrayHeader(len(plan))] if header else []
        it = iter(result)
        for (argv, spec), fate in zip(plan, fates, strict=True):
            if spec.name == "client|reply":
                if fate is not None and fate is not NOTHING:
                    items.append(fate)
                continue
            if spec.route in KEYSPACE_ROUTES:
                reply: object = next(it)
            else:
                self.in_exec = True
                try:
                    reply = self._run_layer(spec, argv)
                finally:
                    self.in_exec = False
            if fate:
                items += reply.items if type(reply) is Replies else [reply]
        return Replies(items)

    def client_info(
        self, addr: str = "?", laddr: str = "?", age_s: int = 0, idle_s: int = 0
    ) -> ClientInfo:
        """This connection as a CLIENT LIST line; the node fills in what only it knows."""
        return ClientInfo(
            id=self.client_id,
            addr=addr,
            laddr=laddr,
            name=self.name,
            age_s=age_s,
            idle_s=idle_s,
            db=self.db,
            multi=len(self._queue) if self._in_multi else -1,
            cmd=self.last_command,
            resp=self.protocol,
            user=self.username.decode("utf-8", "replace"),
            sub=len(self.pubsub.channels) if self.pubsub is not None else 0,
            psub=len(self.pubsub.patterns) if self.pubsub is not None else 0,
        )

    # ---------------------------------------------------------------- internals

    def _reject(self, err: Error) -> Error:
        """A command refused before running; inside MULTI it dooms the transaction."""
        if self._in_multi:
            self._multi_dirty = True
        return err

    def _update_gate(self) -> None:
        self._gate = (
            self._in_multi or not self.authenticated or self._restricted or self._subscribed_resp2()
        )

    # -- ACL

    @property
    def acl(self) -> AclState:
        return self.ctx.keyspace.acl

    def _default_nopass(self) -> bool:
        """Does a new connection start logged in as "default"? (Redis: if it has nopass.)"""
        acl = self.acl
        if self.trusted:
            return True
        if not acl.default_touched:
            return not self.ctx.requirepass
        user = acl.users[b"default"]
        return user.nopass and user.enabled

    def _acl_refresh(self) -> None:
        """The user table changed (here or by a replicated op): recompute whether this
        connection's user is restricted; a deleted user's connection is closed (Redis)."""
        self._acl_epoch = EPOCH.value
        user = self.acl.users.get(self.username)
        if user is None:
            user = self.acl.users[b"default"]
            if not self.trusted:
                self.username = b"default"
                self.authenticated = False
                self.should_close = True
        self._restricted = not self.trusted and not user.unrestricted()
        self._update_gate()

    def acl_revocation(self) -> str | None:
        """After a change to the user table: why this connection must close now, or None.

        Redis closes, at once rather than at their next command, the clients of a deleted user
        and the clients subscribed to a channel or pattern their user may no longer use."""
        if self.trusted or not self.authenticated:
            return None
        user = self.acl.users.get(self.username)
        if user is None:
            return f"ACL user '{self.username.decode('utf-8', 'replace')}' was deleted"
        if user.unrestricted() or self.pubsub is None:
            return None
        for name, subscribed in ((b"subscribe", self.pubsub.channels),
                                 (b"psubscribe", self.pubsub.patterns),
                                 (b"ssubscribe", self.pubsub.shard_channels)):
            for channel in subscribed:
                if check(user, name.decode(), [name, channel])[0] is not Denied.OK:
                    return "ACL channel permissions revoked"
        return None

    def _acl_check(self, spec: CommandSpec, argv: list[bytes]) -> Error | None:
        user = self.acl.users.get(self.username)
        if user is None:
            return NOAUTH
        keys = [] if _channels_only(spec) else list(spec.key_positions(len(argv)))
        result, idx = check(user, spec.name, argv, keys)
        if result is Denied.OK:
            return None
        if result is Denied.CMD:
            reason, obj = "command", spec.name
            err = f"NOPERM this user has no permissions to run the '{spec.name}' command"
        elif result is Denied.KEY:
            reason, obj = "key", argv[idx].decode("utf-8", "replace")
            err = "NOPERM this user has no permissions to access one of the keys used as arguments"
        else:
            reason, obj = "channel", argv[idx].decode("utf-8", "replace")
            err = (
                "NOPERM this user has no permissions to access one of the channels used as "
                "arguments"
            )
        self._acl_log(reason, obj, self.username)
        return Error(err)

    def _acl_log(self, reason: str, obj: str, username: bytes) -> None:
        context = "multi" if self._in_multi else "toplevel"
        self.acl.add_log(
            reason,
            context,
            obj,
            username.decode("utf-8", "replace"),
            self.ctx.wall_clock_ms(),
            self._own_info().line().decode("utf-8", "replace"),
        )

    def cmd_acl(self, argv: list[bytes]) -> Reply | Op:
        sub = argv[1].lower()
        path = ""
        if sub in (b"save", b"load"):
            found = self.ctx.config_get(b"aclfile")
            path = found[0][1].decode("utf-8", "surrogateescape") if found else ""
        return aclcmd.run(self.acl, self.username, argv, self.ctx.wall_clock_ms(), path)

    def _subscribed_resp2(self) -> bool:
        """Redis's "subscribed context": RESP2 and at least one subscription."""
        return self.protocol == 2 and self.pubsub is not None and self.pubsub.total > 0

    def _set_protocol(self, protocol: int) -> None:
        self.protocol = protocol
        if self.pubsub is not None:
            self.pubsub.resp = protocol
        self._update_gate()

    def _run_layer(self, spec: CommandSpec, argv: list[bytes]) -> Reply | Op:
        """Answer a command of an upper layer (SESSION, CONNECTION, NODE): the spec names the
        method of the object registered for its route in `layers`."""
        target = self.layers.get(spec.route)
        if target is None:
            # Known to the table (COMMAND lists it) but served by a layer this session is not
            # behind, e.g. ASPEN.* admin commands outside a full node.
            return Error(f"ERR '{spec.name}' is not available on this connection")
        reply: Reply | Op = getattr(target, cast(str, spec.handler))(argv)
        return reply

    # -- transactions

    def cmd_multi(self, argv: list[bytes]) -> Reply:
        if self._in_multi:
            return Error("ERR MULTI calls can not be nested")
        self._in_multi = True
        self._multi_dirty = False
        self._queue = []
        self._update_gate()
        return OK

    def _end_multi(self) -> None:
        self._in_multi = False
        self._multi_dirty = False
        self._queue = []
        self._watches = {}
        self._update_gate()

    def cmd_exec(self, argv: list[bytes]) -> Reply | Op:
        if not self._in_multi:
            return Error("ERR EXEC without MULTI")
        if self._multi_dirty:
            self._end_multi()
            return EXECABORT
        plan = self._queue
        watches: tuple[Watch, ...] = tuple(
            (key, token) if db == 0 else (key, token, db)
            for (db, key), token in self._watches.items()
        )
        self._end_multi()
        # a queued SELECT goes too: the keyspace runs what follows it in its database
        commands = tuple(
            tuple(a) for a, s in plan if s.route in KEYSPACE_ROUTES or s.name == "select"
        )
        self._exec_plans.append(plan)
        mode = self.reply_mode
        quiet = mode.quiet
        if quiet or any(s.name == "client|reply" for _, s in plan):
            self._exec_masked = self._plan_replies(plan)
            if not quiet:  # (the fast path in `handle` does not look)
                masked, self._exec_masked = self._exec_masked, None
                txn = TxnOp(commands, watches, self.db)
                self._exec_masks[id(txn)] = masked
                if any(s.name == "select" for _, s in plan):
                    self._selects_pending += 1
                return txn
        if any(s.name == "select" for _, s in plan):
            self._selects_pending += 1
        return TxnOp(commands, watches, self.db)

    def _plan_replies(self, plan: list[tuple[list[bytes], CommandSpec]]
                      ) -> tuple[bool, list[object]]:
        """Settle the CLIENT REPLY modes an EXEC's plan passes through, now (see `handle`)."""
        mode = self.reply_mode
        header = not mode.dropping
        fates: list[object] = []
        for argv, spec in plan:
            if spec.name == "client|reply":
                own = mode.apply(argv)
                fates.append(None if mode.dropping else own)
            else:
                fates.append(not mode.dropping)
        return header, fates

    def cmd_discard(self, argv: list[bytes]) -> Reply:
        if not self._in_multi:
            return Error("ERR DISCARD without MULTI")
        self._end_multi()
        return OK

    def cmd_watch(self, argv: list[bytes]) -> Reply:
        if self._in_multi:
            return Error("ERR WATCH inside MULTI is not allowed")
        view = self.ctx.keyspace
        now = self.ctx.wall_clock_ms()
        db = self.db
        for key in argv[1:]:
            if (db, key) not in self._watches:
                self._watches[db, key] = view.watch_token(key, now, db)
        return OK

    def cmd_unwatch(self, argv: list[bytes]) -> Reply:
        self._watches = {}
        return OK

    # -- connection

    def cmd_ping(self, argv: list[bytes]) -> Reply:
        if len(argv) > 2:
            return arity_error("ping")
        if self._subscribed_resp2():
            return [b"pong", argv[1] if len(argv) == 2 else b""]
        return PONG if len(argv) == 1 else argv[1]

    def cmd_echo(self, argv: list[bytes]) -> Reply:
        return argv[1]

    def cmd_quit(self, argv: list[bytes]) -> Reply:
        self.should_close = True
        return OK

    def cmd_select(self, argv: list[bytes]) -> Reply:
        index = parse_index(argv[1])
        if isinstance(index, str):
            return Error(index)
        if not 0 <= index < self.ctx.keyspace.databases:
            return Error(DB_RANGE)
        self.db = index
        return OK

    def _check_password(self, user: bytes, password: bytes) -> bool:
        acl = self.acl
        if user == b"default" and not acl.default_touched:
            required = self.ctx.requirepass
            return not required or password == required
        found = acl.users.get(user)
        return found is not None and found.check_password(password)

    def _login(self, user: bytes, password: bytes, argv0: bytes) -> bool:
        """AUTH / HELLO AUTH: log in as `user`, or log the failure (ACL LOG, reason auth)."""
        if not self._check_password(user, password):
            self._acl_log("auth", argv0.decode("utf-8", "replace"), user)
            return False
        self.username = user
        self.authenticated = True
        self._acl_refresh()
        return True

    def cmd_auth(self, argv: list[bytes]) -> Reply:
        if len(argv) > 3:
            return SYNTAX
        if len(argv) == 2:
            if self._default_nopass():
                return _AUTH_NOPASS
            user, password = b"default", argv[1]
        else:
            user, password = argv[1], argv[2]
        if not self._login(user, password, argv[0]):
            return WRONGPASS
        return OK

    def cmd_hello(self, argv: list[bytes]) -> Reply:
        protocol = self.protocol
        if len(argv) >= 2:
            version = _parse_int(argv[1])
            if version is None:
                return Error("ERR Protocol version is not an integer or out of range")
            if version < 2 or version > 3:
                return Error("NOPROTO unsupported protocol version")
            protocol = version
        i = 2
        auth: tuple[bytes, bytes] | None = None
        name: bytes | None = None
        while i < len(argv):
            opt = argv[i].lower()
            more = len(argv) - i - 1
            if opt == b"auth" and more >= 2:
                auth = (argv[i + 1], argv[i + 2])
                i += 3
            elif opt == b"setname" and more >= 1:
                name = argv[i + 1]
                i += 2
            else:
                return Error(
                    f"ERR Syntax error in HELLO option '{argv[i].decode('utf-8', 'replace')}'"
                )
        if auth is not None and not self._login(auth[0], auth[1], argv[0]):
            return WRONGPASS
        if not self.authenticated:
            return _HELLO_NOAUTH
        if name is not None:
            if not _valid_client_name(name):
                return Error(
                    "ERR Client names cannot contain spaces, newlines or special characters."
                )
            self.name = name
        self._set_protocol(protocol)
        return Map(
            [
                (b"server", SERVER_NAME.encode()),
                (b"version", COMPAT_VERSION.encode()),
                (b"proto", protocol),
                (b"id", self.client_id),
                (b"mode", b"standalone"),
                (b"role", b"master"),
                (b"modules", []),
            ]
        )

    def cmd_reset(self, argv: list[bytes]) -> Reply:
        self._end_multi()
        if self.pubsub is not None:
            self.pubsub.close()
        self.name = b""
        self.db = 0
        self.username = b"default"
        self.authenticated = self._default_nopass()
        self._acl_refresh()
        self._set_protocol(2)
        return _RESET

    def cmd_client(self, argv: list[bytes]) -> Reply:
        sub = argv[1].lower()
        if sub == b"setname":
            if not _valid_client_name(argv[2]):
                return Error(
                    "ERR Client names cannot contain spaces, newlines or special characters."
                )
            self.name = argv[2]
            return OK
        if sub == b"getname":
            return self.name or None
        if sub == b"id":
            return self.client_id
        if sub == b"info":
            return Verbatim(self._own_info().line() + b"\n")
        if sub == b"list":
            return self._client_list(argv)
        return [SimpleString(line) for line in _CLIENT_HELP]

    def _own_info(self) -> ClientInfo:
        for info in self.ctx.client_list():
            if info.id == self.client_id:
                return info
        return self.client_info()

    def _client_list(self, argv: list[bytes]) -> Reply:
        clients = self.ctx.client_list()
        i = 2
        while i < len(argv):
            opt = argv[i].lower()
            if opt == b"type" and i + 1 < len(argv):
                kind = argv[i + 1].lower()
                if kind not in (b"normal", b"master", b"replica", b"pubsub", b"slave"):
                    return Error(
                        f"ERR Unknown client type '{argv[i + 1].decode('utf-8', 'replace')}'"
                    )
                if kind == b"normal":
                    clients = [c for c in clients if not c.pubsub]
                elif kind == b"pubsub":
                    clients = [c for c in clients if c.pubsub]
                else:
                    clients = []
                i += 2
            elif opt == b"id" and i + 1 < len(argv):
                ids: set[int] = set()
                for raw in argv[i + 1 :]:
                    value = _parse_int(raw)
                    if value is None or value <= 0:
                        return Error("ERR Invalid client ID")
                    ids.add(value)
                clients = [c for c in clients if c.id in ids]
                i = len(argv)
            else:
                return SYNTAX
        return Verbatim(b"".join(c.line() + b"\n" for c in clients))

    # -- server

    def cmd_time(self, argv: list[bytes]) -> Reply:
        ms = self.ctx.wall_clock_ms()
        return [str(ms // 1000).encode(), str((ms % 1000) * 1000).encode()]

    def cmd_config(self, argv: list[bytes]) -> Reply:
        sub = argv[1].lower()
        if sub == b"help":
            return [SimpleString(line) for line in _CONFIG_HELP]
        config = self.ctx.server_config  # the node's parameters (aspen.server.live_config)
        if sub == b"get":
            return Map(list[tuple[object, object]](config.get(argv[2:])))
        if sub == b"set":
            return config.set(argv[2:])
        if sub == b"resetstat":
            return config.resetstat()
        return config.rewrite()

    def cmd_info(self, argv: list[bytes]) -> Reply:
        return Verbatim(
            render_info(self.ctx, [a.lower().decode("utf-8", "replace") for a in argv[1:]])
        )

    def cmd_command(self, argv: list[bytes]) -> Reply:
        if len(argv) == 1:
            return [command_info(s) for s in cmdtable.ALL_COMMANDS]
        sub = argv[1].lower()
        if sub == b"count":
            return len(cmdtable.ALL_COMMANDS)
        if sub == b"list":
            return self._command_list(argv)
        if sub == b"info":
            if len(argv) == 2:
                return [command_info(s) for s in cmdtable.ALL_COMMANDS]
            return [_info_or_none(name) for name in argv[2:]]
        if sub == b"docs":
            specs = (
                cmdtable.ALL_COMMANDS
                if len(argv) == 2
                else [s for s in (cmdtable.lookup(n) for n in argv[2:]) if s is not None]
            )
            return Map([(s.name.encode(), command_docs(s)) for s in specs])
        if sub == b"getkeys":
            return _getkeys(argv[2:])
        return [SimpleString(line) for line in _COMMAND_HELP]

    def _command_list(self, argv: list[bytes]) -> Reply:
        names = [s.name.encode() for s in cmdtable.ALL_COMMANDS]
        if len(argv) == 2:
            return names
        if len(argv) == 5 and argv[2].lower() == b"filterby":
            kind, value = argv[3].lower(), argv[4]
            if kind == b"pattern":
                return [n for n in names if glob_match(value, n, nocase=True)]
            if kind == b"aclcat":
                cat = b"@" + value.lower()
                return [s.name.encode() for s in cmdtable.ALL_COMMANDS if cat.decode() in s.acl]
            if kind == b"module":
                return []
        return SYNTAX

    # -- pub/sub

    def cmd_subscribe(self, argv: list[bytes]) -> Reply:
        return self._subscription(argv, "subscribe")

    def cmd_unsubscribe(self, argv: list[bytes]) -> Reply:
        return self._subscription(argv, "unsubscribe")

    def cmd_psubscribe(self, argv: list[bytes]) -> Reply:
        return self._subscription(argv, "psubscribe")

    def cmd_punsubscribe(self, argv: list[bytes]) -> Reply:
        return self._subscription(argv, "punsubscribe")

    def cmd_ssubscribe(self, argv: list[bytes]) -> Reply:
        if self.in_exec:  # (Redis 7.0 refuses it inside a transaction)
            return Error("ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client")
        return self._subscription(argv, "ssubscribe")

    def cmd_sunsubscribe(self, argv: list[bytes]) -> Reply:
        return self._subscription(argv, "sunsubscribe")

    def cmd_spublish(self, argv: list[bytes]) -> Reply:
        if self.pubsub is None:
            return _NO_PUBSUB
        return self.pubsub.hub.spublish(argv[1], argv[2])

    def _subscription(self, argv: list[bytes], what: str) -> Reply:
        client = self.pubsub
        if client is None:
            return _NO_PUBSUB
        pushes = getattr(client, what)(argv[1:])
        self._update_gate()
        return Replies(pushes)

    def cmd_publish(self, argv: list[bytes]) -> Reply:
        if self.pubsub is None:
            return _NO_PUBSUB
        return self.pubsub.hub.publish(argv[1], argv[2])

    def cmd_pubsub(self, argv: list[bytes]) -> Reply:
        sub = argv[1].lower()
        if sub == b"help":
            return [SimpleString(line) for line in _PUBSUB_HELP]
        if self.pubsub is None:
            return _NO_PUBSUB
        hub = self.pubsub.hub
        if sub == b"channels":
            if len(argv) > 3:
                shown = argv[1][:128].decode("utf-8", "replace")
                return Error(
                    f"ERR unknown subcommand or wrong number of arguments for '{shown}'. "
                    "Try PUBSUB HELP."
                )
            return hub.active_channels(argv[2] if len(argv) == 3 else None)
        if sub == b"numsub":
            return hub.numsub(argv[2:])
        if sub == b"shardchannels":
            if len(argv) > 3:
                shown = argv[1][:128].decode("utf-8", "replace")
                return Error(
                    f"ERR unknown subcommand or wrong number of arguments for '{shown}'. "
                    "Try PUBSUB HELP."
                )
            return hub.shard_active_channels(argv[2] if len(argv) == 3 else None)
        if sub == b"shardnumsub":
            return hub.shard_numsub(argv[2:])
        return hub.numpat()


_OPS = frozenset({ReadOp, WriteOp, TxnOp})
_NO_SPEC: CommandSpec | None = None
_NOT_MONITORED = frozenset({"admin", "skip_monitor"})
"""Commands MONITOR does not show (Redis: admin commands and those flagged skip_monitor)."""
_SENSITIVE_CONFIG = frozenset({b"requirepass", b"masterauth", b"masteruser"})


def redact_config_set(argv: list[bytes]) -> list[bytes]:
    """CONFIG SET's argv with the values of sensitive parameters replaced, as Redis does."""
    out = list(argv)
    for i in range(2, len(out) - 1, 2):
        if out[i].lower() in _SENSITIVE_CONFIG:
            out[i + 1] = b"(redacted)"
    return out


def _channels_only(spec: CommandSpec) -> bool:
    """Every key spec is not_key (SSUBSCRIBE, SPUBLISH: shard channels): no keys for
    COMMAND GETKEYS or ACL key patterns, as in Redis."""
    return bool(spec.key_specs) and all("not_key" in ks.flags for ks in spec.key_specs)


def _name_of(argv: list[bytes]) -> str | None:
    """The table name (`config|get` for a subcommand) of a command refused before running."""
    spec = cmdtable.lookup(argv[0])
    if spec is None:
        return None
    if spec.subcommands and len(argv) > 1:
        sub = cmdtable.lookup_subcommand(spec, argv[1])
        if sub is not None:
            return sub.name
    return spec.name


def _info_or_none(name: bytes) -> object:
    spec = cmdtable.lookup(name)
    return command_info(spec) if spec is not None else None


def _getkeys(argv: list[bytes]) -> Reply:
    """COMMAND GETKEYS, with Redis 7.0's checks in its order (keys, then arity, then keys)."""
    spec = cmdtable.lookup(argv[0])
    if spec is not None and spec.subcommands and len(argv) > 1:
        spec = cmdtable.lookup_subcommand(spec, argv[1])
    if spec is None:
        return Error("ERR Invalid command specified")
    if (spec.first_key == 0 and not spec.key_specs) or _channels_only(spec):
        return Error("ERR The command has no key arguments")
    if not spec.arity_ok(len(argv)):
        return Error("ERR Invalid number of arguments specified for command")
    keys = spec.keys(argv)
    if not keys and "no_mandatory_keys" not in spec.flags:  # EVAL 0: no keys is fine
        return Error("ERR Invalid arguments specified for command")
    return keys


_INFO_TITLES = {
    "server": "Server", "clients": "Clients", "memory": "Memory",
    "persistence": "Persistence", "stats": "Stats", "replication": "Replication",
    "cpu": "CPU", "modules": "Modules", "commandstats": "Commandstats",
    "errorstats": "Errorstats", "latencystats": "Latencystats", "cluster": "Cluster",
    "keyspace": "Keyspace", "raft": "Raft",
}
"""Redis's sections in its output order (and Aspen's Raft section last but one)."""
_INFO_DEFAULT = frozenset({"server", "clients", "memory", "persistence", "stats",
                           "replication", "cpu", "modules", "errorstats", "cluster",
                           "keyspace"})
_INFO_ALL = _INFO_DEFAULT | {"commandstats", "latencystats", "raft"}


def render_info(ctx: ServerContext, wanted: list[str]) -> bytes:
    """INFO text: Redis's "# Section" blocks of "field:value" lines, CRLF separated; the
    sections asked for (default, all, everything or names) in Redis's order."""
    server = ctx.info_sections()
    stats = ctx.keyspace.db_stats(ctx.wall_clock_ms())
    sections: dict[str, list[tuple[str, str]]] = {
        "server": [("redis_version", COMPAT_VERSION), ("aspen_server", SERVER_NAME)],
    }
    for name, fields in server.items():
        sections[name] = list(fields)
    sections["keyspace"] = [
        (f"db{db}", f"keys={keys},expires={expires},avg_ttl={avg_ttl}")
        for db, keys, expires, avg_ttl in stats
    ]
    chosen: set[str] = set()
    for name in wanted or ["default"]:
        if name == "default":
            chosen |= _INFO_DEFAULT
        elif name in ("all", "everything"):
            chosen |= _INFO_ALL
        else:
            chosen.add(name)
    blocks = []
    order = [*_INFO_TITLES, *(name for name in sections if name not in _INFO_TITLES)]
    for name in order:
        if name not in chosen or (name not in sections and name not in _INFO_TITLES):
            continue
        title = _INFO_TITLES.get(name, name.capitalize())
        lines = [f"# {title}"] + [f"{k}:{v}" for k, v in sections.get(name, [])]
        blocks.append("\r\n".join(lines) + "\r\n")
    return "\r\n".join(blocks).encode()


_CLIENT_HELP = (
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "    * ID <client-id> [<client-id> ...]",
    "      Return clients of specified IDs only.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "HELP",
    "    Print this help.",
)
_CONFIG_HELP = (
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
    "HELP",
    "    Prints this help.",
)
_COMMAND_HELP = (
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all Aspen commands.",
    "COUNT",
    "    Return the total number of commands in this server.",
    "LIST",
    "    Return a list of all commands in this server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple commands.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple commands.",
    "GETKEYS <full-command>",
    "    Return the keys from a full command.",
    "HELP",
    "    Print this help.",
)

_PUBSUB_HELP = (
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
)
