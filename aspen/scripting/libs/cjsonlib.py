"""`cjson`: encode/decode as lua-cjson 2.1 (Redis's copy) does with its default settings.

Objects are written in Lua's `next` order (the same order redis-server's Lua walks), numbers
with "%.14g", "/" escaped; a table is an array when its keys are 1..n (holes allowed up to
lua-cjson's sparse-array rule), an empty table is "{}".
"""

from __future__ import annotations

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
    if type(raw) is int or type(raw) is float:
        raw = b"%.14g" % raw
    if type(raw) is not bytes:
        raise CJsonError("bad argument #1 to 'decode' (string expected)")
    return _Decoder(rt, null, raw).decode()


_WS = b" \t\n\r"
_SINGLE = {ord("{"): "T_OBJ_BEGIN", ord("}"): "T_OBJ_END", ord("["): "T_ARR_BEGIN",
           ord("]"): "T_ARR_END", ord(","): "T_COMMA", ord(":"): "T_COLON"}
_ESCAPED = {ord('"'): b'"', ord("\\"): b"\\", ord("/"): b"/", ord("b"): b"\b",
            ord("f"): b"\f", ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t"}


class _Decoder:
    """lua-cjson's tokenizer and parser, with its error texts ("Expected value but found T_END
    at character 2"), and its default of accepting hex, inf and nan numbers."""

    def __init__(self, rt: Any, null: Any, data: bytes) -> None:
        self.rt, self.null, self.data = rt, null, data
        self.pos = 0
        self.depth = 0

    def decode(self) -> Any:
        token = self.token()
        value = self.value(token)
        token = self.token()
        if token[0] != "T_END":
            self.expected("the end", token)
        return value

    @staticmethod
    def expected(what: str, token: tuple[str, object, int]) -> None:
        found = token[1] if token[0] == "T_ERROR" else token[0]
        raise CJsonError(f"Expected {what} but found {found} at character {token[2] + 1}")

    def token(self) -> tuple[str, object, int]:
        data, n = self.data, len(self.data)
        while self.pos < n and data[self.pos] in _WS:
            self.pos += 1
        at = self.pos
        if at >= n:
            return ("T_END", None, at)
        c = data[at]
        kind = _SINGLE.get(c)
        if kind is not None:
            self.pos += 1
            return (kind, None, at)
        if c == 0x22:
            return self.string(at)
        if c == 0x2D or 0x30 <= c <= 0x39:
            return self.number(at)
        for word, kind, value in ((b"true", "T_BOOLEAN", True), (b"false", "T_BOOLEAN", False),
                                  (b"null", "T_NULL", None)):
            if data.startswith(word, at):
                self.pos += len(word)
                return (kind, value, at)
        if self.invalid_number(at):
            return self.number(at)
        return ("T_ERROR", "invalid token", at)

    def invalid_number(self, at: int) -> bool:
        rest = self.data[at:at + 9].lower()
        if rest.startswith(b"-"):
            rest = rest[1:]
        return rest.startswith((b"0x", b"inf", b"nan")) or (
            len(rest) > 1 and rest[:1] == b"0" and rest[1:2].isdigit())

    def number(self, at: int) -> tuple[str, object, int]:
        from aspen.kv.typed import strtod

        value, used, _ = strtod(self.data[at:at + 400])
        if used == 0:
            return ("T_ERROR", "invalid number", at)
        self.pos = at + used
        return ("T_NUMBER", value, at)

    def string(self, at: int) -> tuple[str, object, int]:
        data, n = self.data, len(self.data)
        out = bytearray()
        i = at + 1
        while True:
            if i >= n:
                return ("T_ERROR", "unexpected end of string", i)
            c = data[i]
            if c == 0x22:
                self.pos = i + 1
                return ("T_STRING", bytes(out), at)
            if c != 0x5C:
                out.append(c)
                i += 1
                continue
            if i + 1 >= n:
                return ("T_ERROR", "unexpected end of string", i + 1)
            e = data[i + 1]
            if e == ord("u"):
                code, i = self.unicode(i)
                if code is None:
                    return ("T_ERROR", "invalid unicode escape code", i)
                out += chr(code).encode("utf-8", "surrogatepass")
                continue
            escaped = _ESCAPED.get(e)
            if escaped is None:
                return ("T_ERROR", "invalid escape code", i)
            out += escaped
            i += 2

    def unicode(self, i: int) -> tuple[int | None, int]:
        def hex4(j: int) -> int | None:
            digits = self.data[j:j + 4]
            if len(digits) != 4 or not all(chr(d) in "0123456789abcdefABCDEF" for d in digits):
                return None
            return int(digits, 16)

        code = hex4(i + 2)
        if code is None:
            return None, i
        if 0xDC00 <= code <= 0xDFFF:
            return None, i
        if 0xD800 <= code <= 0xDBFF:
            if self.data[i + 6:i + 8] != b"\\u":
                return None, i
            low = hex4(i + 8)
            if low is None or not 0xDC00 <= low <= 0xDFFF:
                return None, i
            return 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00), i + 12
        return code, i + 6

    def descend(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise CJsonError(f"Found too many nested data structures ({self.depth}) at "
                             f"character {self.pos}")

    def value(self, token: tuple[str, object, int]) -> Any:
        kind = token[0]
        if kind in ("T_STRING", "T_NUMBER", "T_BOOLEAN"):
            return token[1]
        if kind == "T_NULL":
            return self.null
        if kind == "T_OBJ_BEGIN":
            return self.object()
        if kind == "T_ARR_BEGIN":
            return self.array()
        self.expected("value", token)
        return None

    def object(self) -> Any:
        self.descend()
        table = self.rt.table_from({})
        token = self.token()
        if token[0] == "T_OBJ_END":
            self.depth -= 1
            return table
        while True:
            if token[0] != "T_STRING":
                self.expected("object key string", token)
            key = token[1]
            token = self.token()
            if token[0] != "T_COLON":
                self.expected("colon", token)
            table[key] = self.value(self.token())
            token = self.token()
            if token[0] == "T_OBJ_END":
                self.depth -= 1
                return table
            if token[0] != "T_COMMA":
                self.expected("comma or object end", token)
            token = self.token()

    def array(self) -> Any:
        self.descend()
        items: list[Any] = []
        token = self.token()
        if token[0] == "T_ARR_END":
            self.depth -= 1
            return self.rt.table_from(items)
        while True:
            items.append(self.value(token))
            token = self.token()
            if token[0] == "T_ARR_END":
                self.depth -= 1
                return self.rt.table_from(items)
            if token[0] != "T_COMMA":
                self.expected("comma or array end", token)
            token = self.token()


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
