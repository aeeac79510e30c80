"""`cmsgpack`: pack/unpack as lua-cmsgpack 0.4 (Redis's copy) encodes Lua values.

Integral numbers use the smallest integer format, other numbers float32 when exact else
float64; a table whose keys are exactly 1..n is an array, anything else a map (walked in
Lua's `next` order); nesting deeper than 16 tables packs nil.
"""

from __future__ import annotations

import math
import struct
from typing import Any

from lupa.lua51 import lua_type

from aspen.scripting.libs.errors import LibError

MAX_NESTING = 16


class MsgpackError(LibError):
    pass


def _int(n: int) -> bytes:
    if n >= 0:
        if n < 128:
            return bytes([n])
        for code, fmt, limit in ((0xCC, ">B", 1 << 8), (0xCD, ">H", 1 << 16),
                                 (0xCE, ">I", 1 << 32)):
            if n < limit:
                return bytes([code]) + struct.pack(fmt, n)
        return b"\xcf" + struct.pack(">Q", n & (2**64 - 1))
    if n >= -32:
        return struct.pack(">b", n)
    for code, fmt, limit in ((0xD0, ">b", 1 << 7), (0xD1, ">h", 1 << 15),
                             (0xD2, ">i", 1 << 31)):
        if n >= -limit:
            return bytes([code]) + struct.pack(fmt, n)
    return b"\xd3" + struct.pack(">q", max(n, -(2**63)))


def _number(x: float | int) -> bytes:
    f = float(x)
    if math.isfinite(f) and f == math.floor(f) and -(2**63) <= f < 2**64:
        return _int(int(f))
    try:
        if struct.unpack(">f", struct.pack(">f", f))[0] == f or math.isnan(f):
            return b"\xca" + struct.pack(">f", f)
    except OverflowError:
        pass
    return b"\xcb" + struct.pack(">d", f)


def _bytes(raw: bytes) -> bytes:
    n = len(raw)
    if n < 32:
        head = bytes([0xA0 | n])
    elif n < 1 << 8:
        head = b"\xd9" + bytes([n])
    elif n < 1 << 16:
        head = b"\xda" + struct.pack(">H", n)
    else:
        head = b"\xdb" + struct.pack(">I", n)
    return head + raw


def _header(n: int, small: int, c16: int, c32: int) -> bytes:
    if n < 16:
        return bytes([small | n])
    if n < 1 << 16:
        return bytes([c16]) + struct.pack(">H", n)
    return bytes([c32]) + struct.pack(">I", n)


def pack_value(value: Any, level: int = 0) -> bytes:
    t = type(value)
    if t is bytes:
        return _bytes(value)
    if t is bool:
        return b"\xc3" if value else b"\xc2"
    if t is int or t is float:
        return _number(value)
    if value is None or lua_type(value) != "table" or level >= MAX_NESTING:
        return b"\xc0"
    items = list(value.items())
    biggest = 0
    array = True
    for k, _ in items:
        if (type(k) is int or type(k) is float) and k > 0 and math.floor(k) == k:
            biggest = max(biggest, int(k))
        else:
            array = False
            break
    if array and biggest == len(items):
        by_index = dict(items)
        return _header(biggest, 0x90, 0xDC, 0xDD) + b"".join(
            [pack_value(by_index[i], level + 1) for i in range(1, biggest + 1)])
    return _header(len(items), 0x80, 0xDE, 0xDF) + b"".join(
        [pack_value(k, level + 1) + pack_value(v, level + 1) for k, v in items])


class Unpacker:
    def __init__(self, rt: Any, data: bytes) -> None:
        self.rt = rt
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise MsgpackError("Missing bytes in input.")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def value(self) -> Any:
        c = self.take(1)[0]
        if c < 0x80:
            return c
        if c >= 0xE0:
            return c - 0x100
        if 0xA0 <= c <= 0xBF:
            return self.take(c & 0x1F)
        if 0x90 <= c <= 0x9F:
            return self.array(c & 0x0F)
        if 0x80 <= c <= 0x8F:
            return self.map(c & 0x0F)
        simple = {0xC0: None, 0xC2: False, 0xC3: True}
        if c in simple:
            return simple[c]
        fixed = {0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q", 0xD0: ">b", 0xD1: ">h",
                 0xD2: ">i", 0xD3: ">q", 0xCA: ">f", 0xCB: ">d"}
        if c in fixed:
            fmt = fixed[c]
            v = struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]
            return float(v) if c in (0xCF, 0xD3) and abs(v) > 2**53 else v
        sized = {0xD9: (">B", "s"), 0xDA: (">H", "s"), 0xDB: (">I", "s"), 0xC4: (">B", "s"),
                 0xC5: (">H", "s"), 0xC6: (">I", "s"), 0xDC: (">H", "a"), 0xDD: (">I", "a"),
                 0xDE: (">H", "m"), 0xDF: (">I", "m")}
        if c in sized:
            fmt, kind = sized[c]
            n = struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]
            if kind == "s":
                return self.take(n)
            return self.array(n) if kind == "a" else self.map(n)
        raise MsgpackError("Bad data format in input.")

    def array(self, n: int) -> Any:
        return self.rt.table_from([self.value() for _ in range(n)])

    def map(self, n: int) -> Any:
        t = self.rt.table_from({})
        for _ in range(n):
            k = self.value()
            v = self.value()
            if k is not None:
                t[k] = v
        return t


def build(rt: Any, null: Any) -> Any:
    def run(data: object, limit: int, offset: object) -> tuple[int, list[Any]]:
        if type(data) is not bytes:
            raise MsgpackError("bad argument #1 to 'unpack' (string expected)")
        u = Unpacker(rt, data)
        u.pos = int(offset) if isinstance(offset, (int, float)) else 0
        values: list[Any] = []
        while u.pos < len(data) and (not limit or len(values) < limit):
            values.append(u.value())
        return u.pos, values

    def pack(*args: object) -> bytes:
        if not args:
            raise MsgpackError("MessagePack pack needs input.")
        return b"".join([pack_value(a) for a in args])

    def unpack(data: object = None) -> tuple[object, ...]:
        return tuple(run(data, 0, 0)[1])

    def unpack_limit(data: object = None, limit: object = 0, offset: object = 0
                     ) -> tuple[object, ...]:
        n = int(limit) if isinstance(limit, (int, float)) else 0
        pos, values = run(data, n, offset)
        return (-1 if pos >= len(data) else pos, *values)  # type: ignore[arg-type]

    def unpack_one(data: object = None, offset: object = 0) -> tuple[object, ...]:
        return unpack_limit(data, 1, offset)

    return rt.table_from({b"pack": pack, b"unpack": unpack, b"unpack_one": unpack_one,
                          b"unpack_limit": unpack_limit, b"_NAME": b"cmsgpack",
                          b"_VERSION": b"lua-cmsgpack 0.4.0"})
