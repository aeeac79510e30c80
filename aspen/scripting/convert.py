"""Values between Redis replies and Lua, both ways, as Redis 7.0's scripting converts them.

Reply -> Lua depends on the script's own protocol (`redis.setresp`, 2 by default); Lua -> reply
gives protocol-neutral reply values (aspen.resp.values) that the connection's codec then writes
as RESP2 or RESP3, which is what Redis does too (the Lua client's RESP version only decides how
booleans are returned).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from aspen.resp.protocol import format_double
from aspen.resp.values import (
    Boolean,
    Double,
    Error,
    Map,
    NullArray,
    Pairs,
    Set,
    SimpleString,
    Verbatim,
)

if TYPE_CHECKING:
    from aspen.scripting.engine import LuaEngine

_LLONG_MIN = -(2**63)


def to_lua(engine: LuaEngine, value: object, resp: int) -> object:
    """A command's reply as the script sees it (a Lua value or table)."""
    t = type(value)
    if t is bytes or t is int:
        return value
    if value is None or t is NullArray:
        return False if resp == 2 else None
    if t is list:
        return engine.table([to_lua(engine, v, resp) for v in value])  # type: ignore[attr-defined]
    if t is SimpleString:
        return engine.table({b"ok": value.text.encode()})  # type: ignore[attr-defined]
    if t is Error:
        return engine.table({b"err": value.message.encode()})  # type: ignore[attr-defined]
    if t is Double:
        v = value.value  # type: ignore[attr-defined]
        return format_double(v) if resp == 2 else engine.table({b"double": v})
    if t is Boolean:
        b = value.value  # type: ignore[attr-defined]
        return (1 if b else 0) if resp == 2 else bool(b)
    if t is Map:
        items = value.items  # type: ignore[attr-defined]
        if resp == 2:
            flat: list[object] = []
            for k, v in items:
                flat.append(to_lua(engine, k, resp))
                flat.append(to_lua(engine, v, resp))
            return engine.table(flat)
        inner = engine.table({})
        for k, v in items:
            inner[to_lua(engine, k, resp)] = to_lua(engine, v, resp)
        return engine.table({b"map": inner})
    if t is Pairs:
        items = value.items  # type: ignore[attr-defined]
        if resp == 2:
            return engine.table([to_lua(engine, x, resp) for pair in items for x in pair])
        return engine.table(
            [engine.table([to_lua(engine, a, resp), to_lua(engine, b, resp)]) for a, b in items]
        )
    if t is Set:
        members = value.items  # type: ignore[attr-defined]
        if resp == 2:
            return engine.table([to_lua(engine, v, resp) for v in members])
        inner = engine.table({})
        for v in members:
            inner[to_lua(engine, v, resp)] = True
        return engine.table({b"set": inner})
    if t is Verbatim:
        text = value.text  # type: ignore[attr-defined]
        if resp == 2:
            return text
        fmt = value.format.encode()  # type: ignore[attr-defined]
        return engine.table(
            {b"verbatim_string": engine.table({b"format": fmt, b"string": text})}
        )
    if t is float:  # not produced by handlers today; keep it a number
        return value
    raise TypeError(f"no Lua conversion for reply {value!r}")


def lua_number_to_int(x: float | int) -> int:
    """C's (long long) cast of a Lua number as x86 does it (out of range: LLONG_MIN)."""
    if type(x) is int:
        return x if _LLONG_MIN <= x < 2**63 else _LLONG_MIN
    if not math.isfinite(x):
        return _LLONG_MIN
    n = int(x)  # truncates toward zero
    return n if _LLONG_MIN <= n < 2**63 else _LLONG_MIN


def error_text(raw: object) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def from_lua(engine: LuaEngine, value: Any, lua_resp: int) -> object:
    """What a script returns, as a reply value (Redis's luaReplyToRedisReply)."""
    t = type(value)
    if t is bytes:
        return value
    if t is int or t is float:
        return lua_number_to_int(value)
    if t is bool:
        if lua_resp == 2:
            return 1 if value else None
        return Boolean(value)
    if value is None:
        return None
    err_attr = getattr(value, "err", None) if isinstance(value, Exception) else None
    if type(err_attr) is bytes:  # a failed redis.call caught by pcall and returned
        return Error(error_text(err_attr).replace("\r", " ").replace("\n", " "))
    if engine.lua_type(value) != "table":
        return None
    rawget = engine.rawget
    err = rawget(value, b"err")
    if type(err) is bytes:
        return Error(error_text(err).replace("\r", " ").replace("\n", " "))
    ok = rawget(value, b"ok")
    if type(ok) is bytes:
        return SimpleString(ok.decode("utf-8", "replace").replace("\r", " ").replace("\n", " "))
    dbl = rawget(value, b"double")
    if type(dbl) is int or type(dbl) is float:
        return Double(float(dbl))
    big = rawget(value, b"big_number")
    if type(big) is bytes:
        return big
    inner = rawget(value, b"map")
    if inner is not None and engine.lua_type(inner) == "table":
        return Map([(from_lua(engine, k, lua_resp), from_lua(engine, v, lua_resp))
                    for k, v in engine.pairs(inner)])
    inner = rawget(value, b"set")
    if inner is not None and engine.lua_type(inner) == "table":
        return Set([from_lua(engine, k, lua_resp) for k, _ in engine.pairs(inner)])
    inner = rawget(value, b"verbatim_string")
    if inner is not None and engine.lua_type(inner) == "table":
        text = rawget(inner, b"string")
        fmt = rawget(inner, b"format")
        if type(text) is bytes and type(fmt) is bytes:
            return Verbatim(text, fmt.decode("utf-8", "replace"))
    out: list[object] = []
    i = 1
    while True:
        item = rawget(value, i)
        if item is None:
            break
        out.append(from_lua(engine, item, lua_resp))
        i += 1
    return out
