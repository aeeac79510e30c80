"""`bit`: Lua BitOp's operations on 32-bit integers (results are signed 32-bit numbers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aspen.scripting.libs.errors import LibError

_MASK = 0xFFFFFFFF


class BitArgError(LibError):
    pass


def _num(name: str, pos: int, x: object) -> float:
    if type(x) is int or type(x) is float:
        return x
    if type(x) is bytes:
        try:
            return float(x)
        except ValueError:
            pass
        kind = "string"
    else:
        kind = {bool: "boolean", type(None): "no value"}.get(type(x), "table")
    raise BitArgError(f"bad argument #{pos} to '{name}' (number expected, got {kind})")


def _u32(x: float) -> int:
    """BitOp's number -> 32 bits: round to nearest (ties to even), then modulo 2^32."""
    return round(x) & _MASK if x == x and abs(x) != float("inf") else 0


def _s32(u: int) -> int:
    u &= _MASK
    return u - (1 << 32) if u & 0x80000000 else u


def _fold(name: str, op: Callable[[int, int], int]) -> Callable[..., int]:
    def fn(*args: object) -> int:
        acc = _u32(_num(name, 1, args[0] if args else None))
        for i, a in enumerate(args[1:], start=2):
            acc = op(acc, _u32(_num(name, i, a)))
        return _s32(acc)

    return fn


def _shift(name: str, op: Callable[[int, int], int]) -> Callable[..., int]:
    def fn(x: object = None, n: object = None) -> int:
        return _s32(op(_u32(_num(name, 1, x)), _u32(_num(name, 2, n)) & 31))

    return fn


def _tohex(x: object = None, n: object = None) -> bytes:
    v = _u32(_num("tohex", 1, x))
    digits = 8 if n is None else int(_s32(_u32(_num("tohex", 2, n))))
    upper = digits < 0
    digits = min(abs(digits), 8)
    if digits < 8:
        v &= (1 << (4 * digits)) - 1
    text = f"{v:0{digits}x}" if digits else ""
    return (text.upper() if upper else text).encode()


def _arshift(u: int, n: int) -> int:
    return (_s32(u) >> n) & _MASK


def _rol(u: int, n: int) -> int:
    return ((u << n) | (u >> (32 - n))) & _MASK if n else u


def _ror(u: int, n: int) -> int:
    return ((u >> n) | (u << (32 - n))) & _MASK if n else u


def _bswap(x: object = None) -> int:
    return _s32(int.from_bytes(_u32(_num("bswap", 1, x)).to_bytes(4, "little"), "big"))


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "tobit": lambda x=None: _s32(_u32(_num("tobit", 1, x))),
    "bnot": lambda x=None: _s32(~_u32(_num("bnot", 1, x))),
    "band": _fold("band", lambda a, b: a & b),
    "bor": _fold("bor", lambda a, b: a | b),
    "bxor": _fold("bxor", lambda a, b: a ^ b),
    "lshift": _shift("lshift", lambda u, n: (u << n) & _MASK),
    "rshift": _shift("rshift", lambda u, n: u >> n),
    "arshift": _shift("arshift", _arshift),
    "rol": _shift("rol", _rol),
    "ror": _shift("ror", _ror),
    "bswap": _bswap,
    "tohex": _tohex,
}

def wrap_table(rt: Any, functions: dict[str, Callable[..., Any]]) -> Any:
    """A Lua table of the Python functions themselves: C functions to Lua, so an error names
    the script's line even in `return bit.band(...)` (a Lua wrapper would be a tail call)."""
    return rt.table_from({k.encode(): f for k, f in functions.items()})


def build(rt: Any) -> Any:
    return wrap_table(rt, FUNCTIONS)
