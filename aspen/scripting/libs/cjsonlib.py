"""`cjson`: encode/decode as lua-cjson 2.1 (Redis's copy) does with its default settings.

Objects are written in Lua's `next` order (the same order redis-server's Lua walks), numbers
with "%.14g", "/" escaped; a table is an array when its keys are 1..n (holes allowed up to
lua-cjson's sparse-array rule), an empty table is "{}".
"""

from __future__ import annotations

import json
import math
from typing import Any

from lupa.lua51 import lua_type

from aspen.scripting.libs.errors import LibError

MAX_DEPTH = 1000


class CJsonError(LibError):
    pass


_ESCAPES = {
    0x22: b'\\"', 0x5C: b"\\\\", 0x2F: b"\\/", 0x08: b"\\b", 0x0C: b"\\f", 0x0A: b"\\n",
    0x0D: b"\\r", 0x09: b"\\t", 0x7F: b"\\u007f",
}
_ESCAPE_TABLE = [
    _ESCAPES.get(c, b"\\u%04x" % c if c < 0x20 else bytes([c])) for c in range(256)
]


def _string(raw: bytes) -> bytes:
    t = _ESCAPE_TABLE
    return b'"' + b"".join([t[c] for c in raw]) + b'"'


def _number(x: float | int) -> bytes:
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        raise CJsonError("Cannot serialise number: must not be NaN or Inf")
    return b"%.14g" % float(x)


class Encoder:
    def __init__(self, null: Any) -> None:
        self.null = null

    def encode(self, value: Any, depth: int = 0) -> bytes:
        t = type(value)
        if t is bytes:
            return _string(value)
        if t is bool:
            return b"true" if value else b"false"
        if t is int or t is float:
            return _number(value)
        if value is None:
            return b"null"
        kind = lua_type(value)
        if kind == "userdata":  # the only userdata a script can hold is cjson.null
            return b"null"
        if kind != "table":
            raise CJsonError(f"Cannot serialise {kind}: type not supported")
        depth += 1
        if depth > MAX_DEPTH:
            raise CJsonError(f"Cannot serialise, excessive nesting ({depth})")
        items = list(value.items())
        length = self._array_length(items)
        if length > 0:
            slots: list[bytes] = [b"null"] * length
            for k, v in items:
                slots[int(k) - 1] = self.encode(v, depth)
            return b"[" + b",".join(slots) + b"]"
        parts = []
        for k, v in items:
            if type(k) is bytes:
                key = _string(k)
            elif type(k) is int or type(k) is float:
                key = b'"' + _number(k) + b'"'
            else:
                raise CJsonError("Cannot serialise table: table key must be a number or string")
            parts.append(key + b":" + self.encode(v, depth))
        return b"{" + b",".join(parts) + b"}"

    @staticmethod
    def _array_length(items: list[tuple[Any, Any]]) -> int:
        """lua-cjson's rule: n > 0 for an array 1..n, 0 for an object (or empty table)."""
        biggest = 0
        for k, _ in items:
            if (type(k) is int or type(k) is float) and k >= 1 and math.floor(k) == k:
                biggest = max(biggest, int(k))
            else:
                return 0
        if biggest > 2 * len(items) and biggest > 10:
            raise CJsonError("Cannot serialise table: excessively sparse array")
        return biggest


def _decode(rt: Any, null: Any, raw: object) -> Any:
    if type(raw) is not bytes:
        raise CJsonError("bad argument #1 to 'decode' (string expected)")
    text = raw.decode("utf-8", "surrogateescape")
    try:
        value = json.loads(text, parse_constant=_constant, parse_int=float)
    except (ValueError, RecursionError) as exc:
        raise CJsonError(f"Expected value but found invalid token at character "
                         f"{getattr(exc, 'pos', 0) + 1}") from exc
    return _to_lua(rt, null, value, 0)


def _constant(name: str) -> float:
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[name]


def _to_lua(rt: Any, null: Any, value: object, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise CJsonError(f"Found too many nested data structures ({depth}) at character 1")
    if value is None:
        return null
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, list):
        return rt.table_from([_to_lua(rt, null, v, depth + 1) for v in value])
    if isinstance(value, dict):
        return rt.table_from({k.encode("utf-8", "surrogateescape"): _to_lua(rt, null, v, depth + 1)
                              for k, v in value.items()})
    return value


def build(rt: Any, null: Any) -> Any:
    encoder = Encoder(null)

    def encode(*args: object) -> bytes:
        if len(args) != 1:
            raise CJsonError("bad argument #1 to 'encode' (expected 1 argument)")
        return encoder.encode(args[0])

    def decode(*args: object) -> Any:
        if len(args) != 1:
            raise CJsonError("bad argument #1 to 'decode' (expected 1 argument)")
        return _decode(rt, null, args[0])

    return rt.table_from({b"encode": encode, b"decode": decode, b"null": null,
                          b"_NAME": b"cjson", b"_VERSION": b"2.1.0"})
