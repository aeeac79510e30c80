"""Redis's number parsing and formatting, exactly.

- `parse_int`: `string2ll` — optional '-', digits, no '+', no spaces, no leading zeros, 64-bit.
- `parse_long_double` / `format_long_double`: INCRBYFLOAT works in x87 80-bit long doubles
  (64-bit mantissa) and prints with "%.17Lf" minus trailing zeros. Python floats are doubles,
  so 0.1 + 0.2 would print differently; we emulate the long double exactly with fractions.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def parse_int(raw: bytes) -> int | None:
    """A signed 64-bit integer in Redis's strict syntax, or None."""
    n = len(raw)
    if n == 0 or n > 20:
        return None
    if raw.isdigit():
        if raw[0] == 48 and n > 1:  # leading zero
            return None
    elif raw[0] == 45 and n > 1 and raw[1:].isdigit():  # '-'
        if raw[1] == 48:  # "-0..." is rejected too
            return None
    else:
        return None
    value = int(raw)
    if value < INT64_MIN or value > INT64_MAX:
        return None
    return value


_MANT_BITS = 64
_MAX_EXP = 16384  # values >= 2**16384 overflow an x87 long double
_MIN_EXP = -16445  # below the smallest denormal: underflow to zero
_DEC = re.compile(rb"([+-]?)(\d+\.?\d*|\.\d+)(?:[eE]([+-]?\d+))?")
_HEX = re.compile(rb"([+-]?)0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP]([+-]?\d+))?")
_INF = re.compile(rb"([+-]?)(?:inf|infinity)", re.IGNORECASE)


class Inf:
    """Marker for ±infinity (INCRBYFLOAT then refuses it)."""


INF = Inf()


def round_ld(x: Fraction) -> Fraction | Inf:
    """`x` rounded to the nearest x87 long double (round half to even)."""
    if x == 0:
        return Fraction(0)
    sign = -1 if x < 0 else 1
    a = abs(x)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1
    # now 2**e <= a < 2**(e+1)
    if e >= _MAX_EXP:
        return INF
    e = max(e, -16382)  # denormals keep the exponent of the smallest normal
    scale = _MANT_BITS - 1 - e
    m = round(a * Fraction(2) ** scale)
    result = Fraction(m) / Fraction(2) ** scale
    if result >= Fraction(2) ** _MAX_EXP:
        return INF
    return sign * result


def parse_long_double(raw: bytes) -> Fraction | Inf | None:
    """`string2ld`: what strtold accepts, minus NaN, leading space, range errors, or None."""
    if not raw or len(raw) >= 5 * 1024 or raw[:1].isspace():
        return None
    m = _DEC.fullmatch(raw)
    if m is not None:
        sign, digits, exp = m.group(1), m.group(2), m.group(3)
        exponent = int(exp) if exp else 0
        if b"." in digits:
            whole, frac = digits.split(b".")
        else:
            whole, frac = digits, b""
        mantissa = int(whole + frac or b"0")
        exponent -= len(frac)
        if mantissa == 0:
            return Fraction(0)
        magnitude = len(str(mantissa)) + exponent
        if magnitude > 4940:
            return None  # overflow (ERANGE)
        if magnitude < -4960:
            return None  # underflow to zero (ERANGE)
        value = Fraction(mantissa) * Fraction(10) ** exponent
        if sign == b"-":
            value = -value
    else:
        h = _HEX.fullmatch(raw)
        if h is not None:
            sign, digits, exp = h.group(1), h.group(2), h.group(3)
            whole, _, frac = digits.partition(b".")
            mantissa = int((whole + frac) or b"0", 16)
            exponent = (int(exp) if exp else 0) - 4 * len(frac)
            if mantissa == 0:
                return Fraction(0)
            if abs(exponent) > 20000:
                return None
            value = Fraction(mantissa) * Fraction(2) ** exponent
            if sign == b"-":
                value = -value
        elif _INF.fullmatch(raw) is not None:
            return INF
        else:
            return None
    rounded = round_ld(value)
    if isinstance(rounded, Inf) or (rounded == 0 and value != 0):
        return None
    return rounded


def format_long_double(x: Fraction) -> bytes:
    """Redis's human-friendly "%.17Lf" with trailing zeros (and a bare '.') removed."""
    with localcontext() as ctx:
        ctx.prec = 6000
        d = Decimal(x.numerator) / Decimal(x.denominator)
        text = format(d.quantize(Decimal(1).scaleb(-17), rounding=ROUND_HALF_EVEN), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text == "-0":
        text = "0"
    return text.encode()
