"""What the blocking commands (BLPOP, BLMOVE, BZPOPMIN, ...) need from the keyspace.

The keyspace itself never blocks: a blocking command applied from the log behaves as its
non-blocking form (pop at once, or reply null), which is also what it does inside MULTI. The
node parks the client when that null comes back, and when a committed write later makes a key
it waits on non-empty, it replicates a *serve*:

    ASPEN.BSERVE <key> <the client's original argv...>

a conditional pop from that one key: the command's reply if the key holds a non-empty value of
the right type, else null (not served: someone else got there first; keep waiting). Clients
cannot send it (it is not in the command table); only the node proposes it.

A blocking command's spec carries a `Blocking` (aspen.kv.spec): how to park a client (the
`BlockingCall` parsed here: its keys, its timeout and how many elements a serve may take) and
how to serve it from one key. `aspen.kv.commands` holds `blocking_of` and the ASPEN.BSERVE
handler, which find those through the table.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation

import attrs

from aspen.kv.errors import CommandError
from aspen.kv.numbers import parse_int
from aspen.kv.typed import Argv, strtod

SERVE_COMMAND = b"aspen.bserve"

NOT_FLOAT = "ERR timeout is not a float or out of range"
NEGATIVE = "ERR timeout is negative"
_LLONG_MIN = -(2**63)
_MAX_LONG_DOUBLE_CHARS = 5 * 1024
_LDBL_MAX = Decimal("1.18973149535723176502e+4932")
_LDBL_TRUE_MIN = Decimal("3.6e-4951")


def parse_timeout(raw: bytes) -> int:
    """A blocking command's timeout in ms (0 = forever), exactly as Redis 7.0 reads it.

    Redis: `strtold`, then `(long long) ceill(seconds * 1000)` (a C cast of an out-of-range
    value gives LLONG_MIN on x86, hence "negative" for 1e300 or inf), then `< 0` is refused.
    """
    if not raw or len(raw) >= _MAX_LONG_DOUBLE_CHARS or raw[:1].isspace():
        raise CommandError(NOT_FLOAT)
    value, used, _ = strtod(raw)
    if used != len(raw) or value != value:
        raise CommandError(NOT_FLOAT)
    text = raw.lower().lstrip(b"+-")
    if text.startswith(b"0x"):
        seconds = Decimal(value) if math.isfinite(value) else None
    else:
        try:
            exact = Decimal(raw.decode("ascii"))  # long double has more range than a double
        except (InvalidOperation, UnicodeDecodeError) as exc:
            raise CommandError(NOT_FLOAT) from exc
        if exact.is_infinite():
            seconds = None
        elif abs(exact) >= _LDBL_MAX or (exact and abs(exact) < _LDBL_TRUE_MIN):
            raise CommandError(NOT_FLOAT)  # strtold's ERANGE
        else:
            seconds = exact
    ms = _LLONG_MIN
    if seconds is not None:
        scaled = math.ceil(seconds * 1000)
        if _LLONG_MIN <= scaled < 2**63:
            ms = scaled
    if ms < 0:
        raise CommandError(NEGATIVE)
    return ms


@attrs.frozen
class BlockingCall:
    """What the node needs to park a client whose blocking command found nothing."""

    keys: tuple[bytes, ...]
    timeout_ms: int  # 0 = forever
    want: int  # elements one serve may take (BLMPOP's COUNT, else 1)


def serve_argv(key: bytes, argv: Argv) -> list[bytes]:
    """The replicated serve of `argv` from `key`."""
    return [SERVE_COMMAND, key, *argv]


# ------------------------------------------------------------------ shared argument shapes


def keys_then_timeout(argv: Argv) -> BlockingCall:
    """BLPOP / BRPOP / BZPOPMIN / BZPOPMAX: key [key ...] timeout."""
    return BlockingCall(tuple(argv[1:-1]), parse_timeout(argv[-1]), 1)


def numkeys(raw: bytes, available: int) -> int:
    """LMPOP/BLMPOP's numkeys, with Redis's errors."""
    n = parse_int(raw)
    if n is None or n <= 0:
        raise CommandError("ERR numkeys should be greater than 0")
    if n > available:
        raise CommandError("ERR syntax error")
    return n
