"""Helpers shared by the aggregate types (hashes, lists, sets, sorted sets).

- typed lookups that answer WRONGTYPE;
- `store` / `touched` / `drop_if_empty`: every write goes through the keyspace's own
  `set_value` / `touch_value` / `delete`, so WATCH versions are bumped the one way they always are;
- Redis's two double parsers (`string2d` for values, bare `strtod` for range bounds);
- the deterministic RNG: seeded from the keyspace's `seed` (the log position), never global.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

from aspen.kv.errors import WRONGTYPE, CommandError
from aspen.kv.numbers import parse_int

if TYPE_CHECKING:
    from aspen.kv.keyspace import Keyspace

Argv = Sequence[bytes]
T = TypeVar("T")

NOT_FLOAT = "ERR value is not a valid float"


def get_read(ks: Keyspace, key: bytes, now: int, cls: type[T]) -> T | None:
    value = ks.get_read(key, now)
    if value is None or type(value) is cls:
        return value
    raise CommandError(WRONGTYPE)


def get_write(ks: Keyspace, key: bytes, now: int, cls: type[T]) -> T | None:
    value = ks.get_write(key, now)
    if value is None or type(value) is cls:
        return value
    raise CommandError(WRONGTYPE)


def store(ks: Keyspace, key: bytes, value: object) -> None:
    """Create `key` holding a new aggregate (the caller checked it was absent or expired)."""
    ks.set_value(key, value)


def touched(ks: Keyspace, key: bytes, value: object) -> None:
    """Record an in-place change to the aggregate at `key` (bumps its WATCH version)."""
    ks.touch_value(key, value)


def drop_if_empty(ks: Keyspace, key: bytes, value: object, now: int) -> None:
    """After a removal: an empty aggregate deletes its key, otherwise it is a modification."""
    if len(value):  # type: ignore[arg-type]
        ks.touch_value(key, value)
    else:
        ks.delete(key, now)


def replace(ks: Keyspace, key: bytes, value: object, now: int) -> None:
    """STORE-style destination write: delete what was there, store `value` unless empty."""
    ks.delete(key, now)
    if len(value):  # type: ignore[arg-type]
        ks.set_value(key, value)


def int_arg(raw: bytes, error: str = "ERR value is not an integer or out of range") -> int:
    value = parse_int(raw)
    if value is None:
        raise CommandError(error)
    return value


def rng(ks: Keyspace, salt: int = 0) -> random.Random:
    """Randomness every replica agrees on: a generator seeded from the log position."""
    return random.Random(ks.seed * 1_000_003 + salt)


# ------------------------------------------------------------------ doubles

_STRTOD = re.compile(
    rb"[ \t\n\v\f\r]*[+-]?(?:"
    rb"0x(?:[0-9a-f]+\.?[0-9a-f]*|\.[0-9a-f]+)(?:p[+-]?\d+)?"
    rb"|(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?"
    rb"|inf(?:inity)?"
    rb"|nan(?:\([0-9a-z_]*\))?"
    rb")",
    re.IGNORECASE,
)


_PLAIN = re.compile(rb"-?\d{1,15}(?:\.\d{1,15})?")


def strtod(raw: bytes) -> tuple[float, int, bool]:
    """C's strtod on `raw`: (value, bytes consumed, range error)."""
    m = _STRTOD.match(raw)
    if m is None:
        return 0.0, 0, False
    text = m.group().strip(b" \t\n\v\f\r")
    body = text.lstrip(b"+-").lower()
    neg = text.startswith(b"-")
    if body.startswith(b"inf"):
        value = float("inf")
    elif body.startswith(b"nan"):
        value = float("nan")
    elif body.startswith(b"0x"):
        try:
            value = float.fromhex(body.decode())
        except OverflowError:
            return (float("-inf") if neg else float("inf")), m.end(), True
        if value == 0.0 and _hex_mantissa_nonzero(body):
            return (-0.0 if neg else 0.0), m.end(), True
    else:
        value = float(body)
        if value == float("inf"):
            return (float("-inf") if neg else value), m.end(), True
        if value == 0.0 and body.split(b"e")[0].strip(b"0."):
            return (-0.0 if neg else 0.0), m.end(), True
    return (-value if neg else value), m.end(), False


def _hex_mantissa_nonzero(body: bytes) -> bool:
    mantissa = body[2:].split(b"p")[0].replace(b".", b"")
    return bool(mantissa.strip(b"0"))


def parse_double(raw: bytes) -> float | None:
    """Redis's `string2d` (ZADD scores, increments, weights): strict; no NaN; no range errors."""
    if _PLAIN.fullmatch(raw) is not None:
        return float(raw)  # the common case, exact in both parsers
    if not raw or raw[:1].isspace():
        return None
    value, used, erange = strtod(raw)
    if used != len(raw) or value != value:
        return None
    if erange and (value in (float("inf"), float("-inf")) or value == 0.0):
        return None
    return value


def double_arg(raw: bytes, error: str = NOT_FLOAT) -> float:
    value = parse_double(raw)
    if value is None:
        raise CommandError(error)
    return value


def parse_bound(raw: bytes) -> tuple[float, bool] | None:
    """A score range bound as `zslParseRange` reads it: `(x` is exclusive; bare strtod."""
    exclusive = raw[:1] == b"("
    body = raw[1:] if exclusive else raw
    value, used, _ = strtod(body)
    if used != len(body) or value != value:
        return None
    return value, exclusive


def check_count(raw: bytes) -> int:
    """A COUNT argument: an integer that must be positive (LPOP/SPOP style)."""
    value = parse_int(raw)
    if value is None or value < 0:
        raise CommandError("ERR value is out of range, must be positive")
    return value


MAX_REPEATS = 10_000_000
"""Aspen's cap on a negative SRANDMEMBER/HRANDFIELD count (Redis would try to build the reply)."""


def check_random_count(count: int, with_values: bool = False) -> None:
    """SRANDMEMBER/HRANDFIELD count bounds, with Redis's error texts."""
    if count < -(2**63 - 1):
        raise CommandError(
            "ERR value is out of range, value must between -9223372036854775807 and "
            "9223372036854775807"
        )
    if count < 0 and (-count > MAX_REPEATS or (with_values and -count > (2**63 - 1) // 2)):
        raise CommandError("ERR value is out of range")
