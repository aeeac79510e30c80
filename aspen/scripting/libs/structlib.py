"""`struct`: Roberto Ierusalimschy's struct library (0.2) as Redis loads it.

Formats: endianness "<" ">" "=" and "!n" (alignment), "x" padding, "b/B h/H l/L T" and
"i/I[n]" integers, "f/d" floats, "s" zero-terminated and "c[n]" fixed strings ("c0": the
length is the previous number). Written for Aspen from the library's documentation.
"""

from __future__ import annotations

import math
import struct as pystruct
from typing import Any

from aspen.scripting.libs.errors import LibError

_SIZES = {"b": 1, "B": 1, "h": 2, "H": 2, "l": 8, "L": 8, "T": 8, "i": 4, "I": 4, "f": 4, "d": 8}
MAXINTSIZE = 32
MAXALIGN = 8


class StructError(LibError):
    pass


class FormatError(StructError):
    """A bad format string: luaL_argerror on argument 1."""


def _items(fmt: bytes) -> list[tuple[str, int]]:
    """(option, size) pairs, with endianness/alignment options as ("<", 0) and ("!", n)."""
    out: list[tuple[str, int]] = []
    text = fmt.decode("latin-1")
    i = 0
    while i < len(text):
        c = text[i]
        i += 1
        j = i
        while j < len(text) and text[j].isdigit():
            j += 1
        digits = text[i:j]
        if c in " ":
            continue
        if c in "<>=":
            out.append((c, 0))
        elif c == "!":
            out.append((c, int(digits) if digits else MAXALIGN))
            i = j
        elif c in "iI":
            size = int(digits) if digits else 4
            if size > MAXINTSIZE or size < 1:
                raise FormatError(f"integral size {size} is larger than limit of {MAXINTSIZE}")
            out.append((c, size))
            i = j
        elif c == "c":
            out.append((c, int(digits) if digits else 1))
            i = j
        elif c in _SIZES:
            out.append((c, _SIZES[c]))
        elif c in "xs":
            out.append((c, 1 if c == "x" else 0))
        else:
            raise FormatError(f"invalid format option '{c}'")
    return out


def _align(pos: int, size: int, maxalign: int, c: str) -> int:
    if c in "xsc" or maxalign <= 1:
        return 0
    a = min(size, maxalign)
    if a & (a - 1):
        raise FormatError("alignment must be power of 2")
    return (-pos) % a


def _num(x: object, pos: int) -> float:
    if type(x) is int or type(x) is float:
        return x
    if type(x) is bytes:
        try:
            return float(x)
        except ValueError:
            pass
    raise StructError(f"bad argument #{pos} to 'pack' (number expected, got "
                      f"{'string' if type(x) is bytes else 'no value' if x is None else 'table'})")


def pack(fmt: bytes, args: list[object]) -> bytes:
    out = bytearray()
    little, maxalign, arg = True, 1, 0
    for c, size in _items(fmt):
        if c in "<>=":
            little = c != ">"
            continue
        if c == "!":
            maxalign = size
            continue
        out += b"\0" * _align(len(out), size, maxalign, c)
        if c == "x":
            out += b"\0"
            continue
        value = args[arg] if arg < len(args) else None
        arg += 1
        if c in "fd":
            fmtc = ("<" if little else ">") + c
            out += pystruct.pack(fmtc, _num(value, arg + 1))
        elif c == "s":
            if type(value) is not bytes:
                raise StructError(f"bad argument #{arg + 1} to 'pack' (string expected)")
            out += value + b"\0"
        elif c == "c":
            if type(value) is not bytes:
                raise StructError(f"bad argument #{arg + 1} to 'pack' (string expected)")
            n = size if size else len(value)
            if len(value) < n:
                raise StructError(f"bad argument #{arg + 1} to 'pack' (string too short)")
            out += value[:n]
        else:
            num = _num(value, arg + 1)
            v = int(num) if math.isfinite(num) else 0
            v &= (1 << (8 * size)) - 1
            out += v.to_bytes(size, "little" if little else "big")
    return bytes(out)


def unpack(fmt: bytes, data: bytes, start: int) -> list[object]:
    values: list[object] = []
    little, maxalign = True, 1
    pos = start - 1
    if pos < 0 or pos > len(data):
        raise StructError("bad argument #3 to 'unpack' (offset must be 1 or greater)")
    last_number = 0
    for c, size in _items(fmt):
        if c in "<>=":
            little = c != ">"
            continue
        if c == "!":
            maxalign = size
            continue
        pos += _align(pos, size, maxalign, c)
        if c == "x":
            pos += 1
            continue
        if c == "s":
            end = data.find(b"\0", pos)
            if end < 0:
                raise StructError("unfinished string in data")
            values.append(data[pos:end])
            pos = end + 1
            continue
        if c == "c":
            n = size if size else last_number
            if pos + n > len(data):
                raise StructError("data string too short")
            values.append(data[pos:pos + n])
            pos += n
            continue
        if pos + size > len(data):
            raise StructError("data string too short")
        chunk = data[pos:pos + size]
        pos += size
        if c in "fd":
            values.append(pystruct.unpack(("<" if little else ">") + c, chunk)[0])
        else:
            v = int.from_bytes(chunk, "little" if little else "big", signed=c.islower())
            last_number = v
            values.append(v if abs(v) <= 2**53 else float(v))
    values.append(pos + 1)
    return values


def size(fmt: bytes) -> int:
    pos, maxalign = 0, 1
    for c, n in _items(fmt):
        if c in "<>=":
            continue
        if c == "!":
            maxalign = n
            continue
        if c == "s" or (c == "c" and n == 0):
            raise StructError("options 'c0' - 's' have undefined sizes")
        pos += _align(pos, n, maxalign, c) + n
    return pos


def build(rt: Any) -> Any:
    def py_pack(fmt: object = None, *args: object) -> bytes:
        if type(fmt) is not bytes:
            raise StructError("bad argument #1 to 'pack' (string expected)")
        try:
            return pack(fmt, list(args))
        except FormatError as exc:
            raise StructError(f"bad argument #1 to 'pack' ({exc})") from None

    def py_unpack(fmt: object = None, data: object = None, start: object = 1) -> tuple[object, ...]:
        if type(fmt) is not bytes or type(data) is not bytes:
            raise StructError("bad argument to 'unpack' (string expected)")
        at = int(start) if isinstance(start, (int, float)) else 1
        try:
            return tuple(unpack(fmt, data, at))
        except FormatError as exc:
            raise StructError(f"bad argument #1 to 'unpack' ({exc})") from None

    def py_size(fmt: object = None) -> int:
        if type(fmt) is not bytes:
            raise StructError("bad argument #1 to 'size' (string expected)")
        try:
            return size(fmt)
        except FormatError as exc:
            raise StructError(f"bad argument #1 to 'size' ({exc})") from None

    return rt.table_from({b"pack": py_pack, b"unpack": py_unpack, b"size": py_size})
