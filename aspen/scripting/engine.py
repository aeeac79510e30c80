"""One Lua 5.1 state (lupa's `lupa.lua51`) and the Python side of what scripts can reach.

A `LuaEngine` belongs to one keyspace and is derived state: it can always be rebuilt from
the replicated script cache and function libraries, so it is never part of a snapshot. Scripts
run to completion inside `Keyspace.execute` (atomic, like Redis); the instruction budget
(a debug hook every `STEP` VM instructions) ends a runaway script at the same instruction on
every replica. A read-only script served by one node outside the log has no budget: the same
hook asks `CallContext.interrupted` now and then, so SCRIPT KILL can stop it.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import lupa.lua51 as lua51

from aspen.resp.values import Error
from aspen.scripting import convert
from aspen.scripting.boot import BOOT
from aspen.scripting.libs import install_libs

if TYPE_CHECKING:
    from aspen.scripting.dispatch import CallContext

log = logging.getLogger("aspen.scripting")

STEP = 1000
"""The hook's period in VM instructions: the budget is counted in these steps."""
UNBOUNDED = 1 << 53
"""The budget of a killable read-only run (no limit: only SCRIPT KILL ends it)."""
DEFAULT_BUDGET = 20_000_000
"""Lua instructions a script may run before it fails (see docs/compatibility.md): about 0.1 s
of pure Lua here, well inside an election timeout."""
# (aspen.scripting.dispatch.CALL_COST: what one redis.call counts against the budget)
MAX_MEMORY = 128 << 20
"""The Lua heap's limit: a script that builds more fails ("not enough memory") instead of
taking the node (and every replica) down. Like the budget, its writes are undone."""
REDIS_VERSION = b"7.0.15"
REDIS_VERSION_NUM = 0x07000F


class ScriptFailed(Exception):
    """A script ended with an error; `reply` is the error reply the client gets."""

    def __init__(self, reply: Error, budget_exceeded: bool = False) -> None:
        super().__init__(reply.message)
        self.reply = reply
        self.budget_exceeded = budget_exceeded


def sha1hex(body: bytes) -> bytes:
    return hashlib.sha1(body).hexdigest().encode()


def run_chunk(rt: Any, code: bytes, *args: object) -> Any:
    """Run Lua code under the bootstrap's chunk name ("=aspen"): error positions skip it."""
    chunk = rt.globals()[b"loadstring"](code, b"=aspen")
    return chunk(*args)


def _attribute_filter(obj: object, name: object, setting: bool) -> object:
    """Python objects a script can touch expose nothing but a failed call's `err`."""
    from aspen.scripting.dispatch import CallError
    from aspen.scripting.libs.errors import LibError

    if not setting and name in ("err", b"err") and isinstance(obj, CallError):
        return "err"
    if not setting and name in ("lib_message", b"lib_message") and isinstance(obj, LibError):
        return "lib_message"
    raise AttributeError("not accessible from a script")


class LuaEngine:
    def __init__(self, calls: tuple[Callable[..., object], Callable[..., object]]) -> None:
        rt = lua51.LuaRuntime(
            encoding=None, unpack_returned_tuples=True, register_eval=False,
            register_builtins=False, attribute_filter=_attribute_filter,
            max_memory=MAX_MEMORY,
        )
        self.rt = rt
        self._rng: random.Random | None = None
        self._seed = 0
        self.context: CallContext | None = None
        host = rt.table_from({
            b"libs": install_libs(rt),
            b"call": calls[0],
            b"pcall": calls[1],
            b"setresp": self._setresp,
            b"version": REDIS_VERSION,
            b"version_num": REDIS_VERSION_NUM,
            b"step": STEP,
            b"random": self._random,
            b"randomseed": self._randomseed,
            b"sha1hex": lambda s: sha1hex(s),
            b"log": self._log,
            b"register": self._register,
        })
        self.lua = run_chunk(rt, BOOT.encode(), host)
        self._eval: Callable[..., Any] = self.lua[b"eval"]
        self._fcall: Callable[..., Any] = self.lua[b"fcall"]
        self.rawget: Callable[[Any, object], Any] = self.lua[b"rawget"]
        self._next: Callable[..., Any] = self.lua[b"next"]
        self._type: Callable[[Any], Any] = rt.eval(b"type")
        self.compiled: dict[bytes, Any] = {}
        self.registering: Callable[[bytes, list[bytes], bytes | None], str | None] | None = None

    # -- helpers for conversions

    def table(self, items: list[object] | dict[bytes, object]) -> Any:
        return self.rt.table_from(items)

    def lua_type(self, value: object) -> str:
        return str(self._type(value).decode())

    def pairs(self, table: Any) -> Iterator[tuple[Any, Any]]:
        """(key, value) in Lua's `next` order (what Redis walks too), raw access."""
        nxt = self._next
        key = None
        while True:
            res = nxt(table, key)
            if res is None or (type(res) is tuple and res[0] is None):
                return
            key, value = res
            yield key, value

    # -- host callbacks

    def _setresp(self, v: int) -> None:
        if self.context is not None:
            self.context.lua_resp = int(v)

    def seed(self, seed: int) -> None:
        """math.random for the next script comes from `seed` (the log entry's)."""
        self._seed = seed
        self._rng = None

    def _random(self) -> float:
        if self._rng is None:
            self._rng = random.Random(self._seed)
        return self._rng.random()

    def _randomseed(self, value: object) -> None:
        self._rng = random.Random(convert.lua_number_to_int(value) if isinstance(
            value, (int, float)) else 0)

    @staticmethod
    def _log(level: int, message: bytes) -> None:
        py_level = (logging.DEBUG, logging.DEBUG, logging.INFO, logging.WARNING)[int(level)]
        log.log(py_level, "script: %s", message.decode("utf-8", "replace"))

    def _register(self, lib: Any, name: bytes, flags: Any, description: bytes | None) -> Any:
        if self.registering is None:
            return b"ERR redis.register_function can only be called on FUNCTION LOAD command"
        flag_list = [flags[i] for i in range(1, len(flags) + 1)]
        err = self.registering(name, flag_list, description)
        return err.encode() if err is not None else None

    # -- running

    def compile(self, body: bytes, chunkname: bytes) -> Any:
        """A compiled chunk, or ScriptFailed with Redis's compile error text."""
        res = self.lua[b"compile"](body, chunkname)
        fn, msg = res if type(res) is tuple else (res, None)
        if fn is None:
            text = msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)
            raise ScriptFailed(Error(f"ERR Error compiling script (new function): {text}"))
        return fn

    def eval(self, fn: Any, keys: list[bytes], argv: list[bytes], budget: int,
             funcname: str) -> object:
        ctx = self.context
        assert ctx is not None
        ok, value, used, exceeded = self._eval(
            fn, self.rt.table_from(keys), self.rt.table_from(argv), budget, ctx.interrupted)
        ctx.instructions = used
        ctx.exceeded = bool(exceeded)
        return self._result(ok, value, funcname, ctx)

    def fcall(self, lib: Any, name: bytes, keys: list[bytes], args: list[bytes], budget: int,
              funcname: str) -> object:
        ctx = self.context
        assert ctx is not None
        ok, value, used, exceeded = self._fcall(
            lib, name, self.rt.table_from(keys), self.rt.table_from(args), budget,
            ctx.interrupted)
        ctx.instructions = used
        ctx.exceeded = bool(exceeded)
        return self._result(ok, value, funcname, ctx)

    def load_library(self, fn: Any, lib: Any, budget: int) -> None:
        res = self.lua[b"load_library"](fn, lib, budget)
        ok, value = res
        if not ok:
            raise ScriptFailed(self._error_reply(value, None))

    def _result(self, ok: bool, value: Any, funcname: str, ctx: CallContext) -> object:
        if ok:
            return convert.from_lua(self, value, ctx.lua_resp)
        if value == b"not enough memory":  # the error handler does not run for these
            self.rt.eval(b"collectgarbage()")
            raise ScriptFailed(Error(f"ERR Error running script {funcname}, not enough memory "
                                     f"(the Lua heap is limited to {MAX_MEMORY >> 20} MiB)"),
                               budget_exceeded=True)
        raise ScriptFailed(self._error_reply(value, funcname), budget_exceeded=ctx.exceeded)

    def exceed(self) -> bytes:
        """The budget ran out inside a redis.call: from now on every instruction raises (as
        when the hook finds it spent); the error message for the call."""
        return bytes(self.lua[b"exceed"]())

    def _error_reply(self, value: Any, funcname: str | None) -> Error:
        if value is None or self.lua_type(value) != "table":
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else "?"
            return Error(f"ERR Error running script {funcname}, {text[:100]}")
        err = self.rawget(value, b"err")
        msg = convert.error_text(err if err is not None else b"ERR unknown error")
        source = self.rawget(value, b"source")
        line = self.rawget(value, b"line")
        if funcname is not None and source is not None and line is not None:
            src = source.decode("utf-8", "replace") if isinstance(source, bytes) else str(source)
            msg += f" script: {funcname}, on {src}:{int(line)}."
        return Error(msg.replace("\r", " ").replace("\n", " "))
