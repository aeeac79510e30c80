"""Redis 7.0's glob matcher (`stringmatchlen`, case-sensitive) for PSUBSCRIBE patterns.

Redis's matcher is recursive, but a flag it sets when the rest of a pattern fails after a
`*` at every position makes any earlier `*` give up too. So only the newest `*` ever
backtracks, and a loop with one saved position (pattern index after the star, next string
index to try) decides exactly the same. The quirks that follow from Redis's code are kept:

- a `*` tries the rest of the pattern only against non-empty remainders, and the string's
  end skips trailing stars only after a character was consumed: `*` does not match "";
- `[` classes: `^` negates, `\\x` escapes, `a-z` ranges in either order compared as C's
  signed chars (bytes >= 0x80 are negative), a `-` range may end in `]`, and a class left
  open at the end of the pattern still tests the characters it listed;
- `\\x` outside a class matches x; a trailing lone backslash matches a backslash;
- a path through more than 1000 non-final stars fails (Redis's nesting guard).
"""

from __future__ import annotations

_STAR, _QUESTION, _LBRACKET, _RBRACKET, _BACKSLASH, _DASH, _CARET = b"*?[]\\-^"
MAX_NESTING = 1000


def _signed(c: int) -> int:
    return c - 256 if c >= 128 else c


def _class_end(pattern: bytes, i: int, c: int) -> tuple[bool, int]:
    """Match byte `c` against the class whose `[` is at `i`; (matched, index of its last byte).

    The returned index is where Redis's pattern pointer rests when the class ends: on the
    closing `]`, or on the last pattern byte when the class is left open.
    """
    n = len(pattern)
    i += 1
    negate = i < n and pattern[i] == _CARET
    if negate:
        i += 1
    matched = False
    while True:
        left = n - i
        p = pattern[i] if i < n else 0  # C reads the terminating NUL
        if p == _BACKSLASH and left >= 2:
            i += 1
            if pattern[i] == c:
                matched = True
        elif p == _RBRACKET:
            break
        elif left == 0:
            i -= 1
            break
        elif left >= 3 and pattern[i + 1] == _DASH:
            lo, hi = _signed(p), _signed(pattern[i + 2])
            if lo > hi:
                lo, hi = hi, lo
            if lo <= _signed(c) <= hi:
                matched = True
            i += 2
        elif p == c:
            matched = True
        i += 1
    return matched != negate, i


def match(pattern: bytes, string: bytes) -> bool:
    """True if `string` matches the glob `pattern` exactly as Redis 7.0.15 decides."""
    n, m = len(pattern), len(string)
    p = s = 0
    star_p = -1  # pattern index just after the newest star, -1 before any
    star_s = 0  # the next string index that star's remainder will be tried at
    stars = 0  # stars on the current path (Redis's recursion depth)
    star_depth = 0  # `stars` just after the newest star
    while True:
        ok = True
        if p < n and s < m:
            c = pattern[p]
            if c == _STAR:
                while p + 1 < n and pattern[p + 1] == _STAR:
                    p += 1
                if p + 1 == n:
                    return True
                stars += 1
                if stars > MAX_NESTING:
                    return False
                star_p, star_s, star_depth = p + 1, s + 1, stars
                p += 1
                continue
            if c == _QUESTION:
                pass
            elif c == _LBRACKET:
                ok, p = _class_end(pattern, p, string[s])
            else:
                if c == _BACKSLASH and n - p >= 2:
                    p += 1
                ok = pattern[p] == string[s]
            if ok:
                p += 1
                s += 1
                if s == m:
                    while p < n and pattern[p] == _STAR:
                        p += 1
                    if p == n:
                        return True
                    ok = False
        elif p == n and s == m:
            return True
        else:
            ok = False
        if ok:
            continue
        # Mismatch: only the newest star may try its remainder one position further on.
        if star_p < 0 or star_s >= m:
            return False
        p, s, stars = star_p, star_s, star_depth
        star_s += 1
