"""redis.call / redis.pcall: a command from a script, run against the same keyspace.

The command table decides everything, as for a client: unknown commands, arity, the
`noscript` flag, and whether it writes (refused in a read-only script). Reads and writes run
through the keyspace's own handlers with the script's `now_ms`, so TIME and every expiry
decision inside a script use the log entry's time on every replica.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from aspen.acl.scripts import script_refusal
from aspen.kv import commands as cmdtable
from aspen.kv.databases import DB_RANGE, parse_index
from aspen.kv.spec import Route
from aspen.resp.values import Error, SimpleString
from aspen.scripting.convert import to_lua
from aspen.scripting.undo import UndoLog

CALL_COST = 2_000
"""What one redis.call/pcall counts against the instruction budget: a command costs far more
than a VM instruction (2-15 us against ~5 ns), and the budget must bound wall time."""

if TYPE_CHECKING:
    from aspen.kv.keyspace import Keyspace
    from aspen.scripting.engine import LuaEngine

NO_ARGS = "ERR Please specify at least one argument for this redis lib call"
BAD_ARG = "ERR Lua redis lib command arguments must be strings or integers"
UNKNOWN = "ERR Unknown Redis command called from script"
ARITY = "ERR Wrong number of args calling Redis command from script"
NOSCRIPT = "ERR This Redis command is not allowed from script"
READONLY = "ERR Write commands are not allowed from read-only scripts."


@attrs.define
class CallContext:
    """What redis.call needs while one script runs."""

    keyspace: Keyspace
    now_ms: int
    read_only: bool
    budget: int
    lua_resp: int = 2
    instructions: int = 0
    wrote: bool = False
    undoable: bool = False
    """Keep an undo log (made at the first write) in case the budget runs out."""
    undo: UndoLog | None = None
    exceeded: bool = False
    calls: int = 0
    interrupted: Callable[[], bool] | None = None
    """A killable run served outside the log: true once SCRIPT KILL / FUNCTION KILL asked
    (called from the Lua hook every few tens of thousands of instructions)."""


def _arg(value: object) -> bytes | None:
    t = type(value)
    if t is bytes:
        return value  # type: ignore[return-value]
    if t is int or t is float:
        # Redis formats numbers itself with "%.17g" (Lua's own "%.14g" would lose digits)
        return b"%.17g" % float(value)  # type: ignore[arg-type]
    return None


def _session_command(ctx: CallContext, name: str, argv: list[bytes], now_ms: int) -> object:
    """The connection-level commands that make sense inside a script."""
    if name == "ping":
        return SimpleString("PONG") if len(argv) == 1 else argv[1]
    if name == "echo":
        return argv[1]
    if name == "time":
        return [str(now_ms // 1000).encode(), str((now_ms % 1000) * 1000).encode()]
    if name == "select":  # for the rest of this script only: each op selects its own db
        index = parse_index(argv[1])
        if isinstance(index, str):
            return Error(index)
        if not ctx.keyspace.valid_db(index):
            return Error(DB_RANGE)
        ctx.keyspace.select(index)
        return SimpleString("OK")
    return Error(f"ERR '{name}' is not available inside a script in Aspen")


class CallError(Exception):
    """redis.call's failure: Lua sees this exception as the error object; its only readable
    field (the engine's attribute filter) is `err`, which the error handler turns into
    Redis's {err=...} table."""

    def __init__(self, err: bytes) -> None:
        super().__init__(err.decode("utf-8", "replace"))
        self.err = err


def make_call(engine_ref: list[LuaEngine]) -> tuple[Any, Any]:
    """The Python callables behind `redis.call` (raises CallError) and `redis.pcall`
    (returns the error table); `engine_ref` holds the engine once it exists."""

    def run(*args: object) -> tuple[bool, object]:
        engine = engine_ref[0]
        ctx = engine.context
        assert ctx is not None
        resp = ctx.lua_resp
        ctx.calls += 1
        if ctx.calls * CALL_COST > ctx.budget:
            return False, engine.exceed().decode()
        if not args:
            return False, NO_ARGS
        argv: list[bytes] = []
        for a in args:
            if type(a) is bytes:  # the common case, inline
                argv.append(a)
                continue
            b = _arg(a)
            if b is None:
                return False, BAD_ARG
            argv.append(b)
        spec = cmdtable.lookup(argv[0])
        if spec is None:
            return False, UNKNOWN
        if not spec.arity_ok(len(argv)):
            return False, ARITY
        target = spec
        if spec.subcommands:
            sub = cmdtable.lookup_subcommand(spec, argv[1])
            if sub is None:
                return False, UNKNOWN
            if not sub.arity_ok(len(argv)):
                return False, ARITY
            target = sub
        if "noscript" in target.flags:
            return False, NOSCRIPT
        user = ctx.keyspace.script_user
        if user is not None:
            refused = script_refusal(ctx.keyspace, user, target, argv, ctx.now_ms)
            if refused is not None:
                return False, refused
        if spec.route is Route.SESSION:
            reply = _session_command(ctx, spec.name, argv, ctx.now_ms)
        else:
            write = spec.route is Route.WRITE
            if write:
                if ctx.read_only:
                    return False, READONLY
                ctx.wrote = True
                if ctx.undoable:
                    undo = ctx.undo
                    if undo is None:
                        undo = ctx.undo = UndoLog(ctx.keyspace, ctx.now_ms)
                    undo.before_write(argv, spec)
            reply = ctx.keyspace.run_command(argv, write, ctx.now_ms)
        if type(reply) is Error:
            return False, reply.message
        return True, to_lua(engine, reply, resp)

    def call(*args: object) -> object:
        ok, value = run(*args)
        if ok:
            return value
        raise CallError(str(value).encode())

    def pcall(*args: object) -> object:
        ok, value = run(*args)
        if ok:
            return value
        return engine_ref[0].table({b"err": str(value).encode()})

    return call, pcall
