"""Redis's glob patterns (KEYS, SCAN MATCH, CONFIG GET), compiled once to a regex.

The translation follows Redis's `stringmatchlen` token by token, quirks included: `\\x` escapes
outside and inside classes, `[^...]` negation, `a-z` ranges in either order, a `-` range whose
end is `]`, an unterminated class that still matches one character from what it listed, and a
trailing lone backslash that matches a backslash.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

_STAR, _Q, _LBR, _RBR, _BSL, _DASH, _CARET = b"*?[]\\-^"


def _byte(c: int) -> str:
    return f"\\x{c:02x}"


def translate(pattern: bytes) -> str:
    """The regex source equivalent to a Redis glob pattern (for bytes, DOTALL)."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == _STAR:
            while i + 1 < n and pattern[i + 1] == _STAR:
                i += 1
            out.append(".*")
        elif c == _Q:
            out.append(".")
        elif c == _LBR:
            i += 1
            negate = i < n and pattern[i] == _CARET
            if negate:
                i += 1
            items: list[str] = []
            while True:
                if i < n and pattern[i] == _BSL and n - i >= 2:
                    i += 1
                    items.append(_byte(pattern[i]))
                elif i >= n:
                    i -= 1  # unterminated: Redis steps back so the outer loop ends
                    break
                elif pattern[i] == _RBR:
                    break
                elif n - i >= 3 and pattern[i + 1] == _DASH:
                    lo, hi = pattern[i], pattern[i + 2]
                    if lo > hi:
                        lo, hi = hi, lo
                    items.append(f"{_byte(lo)}-{_byte(hi)}")
                    i += 2
                else:
                    items.append(_byte(pattern[i]))
                i += 1
            if items:
                out.append(("[^" if negate else "[") + "".join(items) + "]")
            else:
                out.append("." if negate else "(?!)")
        elif c == _BSL and n - i >= 2:
            i += 1
            out.append(_byte(pattern[i]))
        else:
            out.append(_byte(c))
        i += 1
    return "".join(out)


@functools.lru_cache(maxsize=256)
def compile_glob(pattern: bytes, nocase: bool = False) -> Callable[[bytes], bool]:
    """A predicate telling whether a whole string matches `pattern`."""
    if pattern == b"*":
        return lambda s: True
    flags = re.DOTALL | (re.IGNORECASE if nocase else 0)
    rx = re.compile(translate(pattern).encode(), flags)
    fullmatch = rx.fullmatch
    return lambda s: fullmatch(s) is not None


def glob_match(pattern: bytes, string: bytes, nocase: bool = False) -> bool:
    return compile_glob(pattern, nocase)(string)
