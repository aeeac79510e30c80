"""Redis 7.0.15's glob patterns (`stringmatchlen`): the one matcher for every pattern command.

KEYS, SCAN/HSCAN/SSCAN/ZSCAN MATCH, PSUBSCRIBE, PUBSUB CHANNELS/NUMPAT, CONFIG GET and
COMMAND LIST FILTERBY PATTERN all decide with `compile_glob`. Matching is polynomial with a
hard bound, whatever the pattern (CVE-2022-36021: `a*a*a*...b` made Redis, and a backtracking
regex, exponential): O(len(pattern) * len(string)) byte comparisons.

How: every non-star token of a pattern matches exactly one byte, so it compiles to a byte set,
and the pattern to fixed-length segments separated by star groups. Redis's recursion gives up
on every earlier star once the rest failed after a later one, which makes its answer the
classic one: the first segment is anchored at the start, the last at the end, and each middle
segment is placed at its leftmost occurrence after the previous one (leftmost leaves the most
room, so it never loses a match). Each segment is a quantifier-free regex, so a search is
O(len(segment) * len(string)); a pattern with at most one star group is one regex with one
`.*`, which is O(len(pattern) * len(string)) for a backtracking engine too.

Redis's quirks, kept because clients can observe them:
- a star tries the rest only against non-empty remainders, so the empty string matches only
  the empty pattern (`*` does not match ""; KEYS and SCAN special-case the pattern `*`);
- `[` classes: `^` negates, `\\x` escapes, `a-z` ranges in either order compared as C's
  signed chars (bytes >= 0x80 are negative), a range may end in `]`, a class left open at the
  end of the pattern still tests the bytes it listed, and `[` alone matches nothing;
- `\\x` outside a class matches x; a trailing lone backslash matches a backslash;
- nocase (CONFIG GET, COMMAND LIST) lowers ASCII letters, except an escape inside a class;
- a pattern with more than 1000 non-final star groups matches nothing (Redis's nesting guard).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

import attrs

_STAR, _Q, _LBR, _RBR, _BSL, _DASH, _CARET = b"*?[]\\-^"
MAX_NESTING = 1000
_UPPER = range(ord("A"), ord("Z") + 1)
_LOWER = range(ord("a"), ord("z") + 1)

__all__ = ["MAX_NESTING", "compile_glob", "glob_match", "match"]


def _lower(c: int) -> int:
    return c + 32 if c in _UPPER else c


def _signed(c: int) -> int:
    return c - 256 if c >= 128 else c


def _set_signed_range(table: bytearray, lo: int, hi: int) -> None:
    """Mark the bytes whose signed value lies in [lo, hi]."""
    if lo > hi:
        return
    if lo < 0:
        top = min(hi, -1)
        table[lo + 256:top + 257] = b"\x01" * (top - lo + 1)
    if hi >= 0:
        bottom = max(lo, 0)
        table[bottom:hi + 1] = b"\x01" * (hi - bottom + 1)


def _parse_class(pattern: bytes, i: int, nocase: bool) -> tuple[bytearray, int]:
    """The byte set of the class whose `[` is at `i`, and the index of its last pattern byte.

    The index is where Redis's pattern pointer rests when the class ends: on the closing `]`,
    or on the last pattern byte when the class is left open.
    """
    n = len(pattern)
    table = bytearray(256)
    i += 1
    negate = i < n and pattern[i] == _CARET
    if negate:
        i += 1
    while True:
        left = n - i
        p = pattern[i] if i < n else 0  # C reads the terminating NUL
        if p == _BSL and left >= 2:
            i += 1
            table[pattern[i]] = 1  # compared exactly, even under nocase
        elif p == _RBR:
            break
        elif left == 0:
            i -= 1
            break
        elif left >= 3 and pattern[i + 1] == _DASH:
            lo, hi = _signed(p), _signed(pattern[i + 2])
            if lo > hi:
                lo, hi = hi, lo
            if nocase:
                lo, hi = _lower(lo), _lower(hi)
                span = bytearray(256)
                _set_signed_range(span, lo, hi)
                for c in _UPPER:  # tolower(c) must be in the range, not c itself
                    span[c] = 1 if lo <= c + 32 <= hi else 0
                table[:] = bytes(a | b for a, b in zip(table, span, strict=True))
            else:
                _set_signed_range(table, lo, hi)
            i += 2
        else:
            table[p] = 1
            if nocase:
                table[_lower(p)] = 1
                if p in _LOWER:
                    table[p - 32] = 1
        i += 1
    if negate:
        table = bytearray(1 - b for b in table)
    return table, i


def _literal(c: int, nocase: bool) -> bytearray:
    table = bytearray(256)
    table[c] = 1
    if nocase and c in _UPPER:
        table[c + 32] = 1
    elif nocase and c in _LOWER:
        table[c - 32] = 1
    return table


def _byte_class(table: bytearray) -> bytes:
    """A regex (bytes, DOTALL) matching one byte of the set."""
    members = [c for c in range(256) if table[c]]
    if len(members) == 256:
        return b"."
    if not members:
        return b"(?!)"
    if len(members) == 1:
        return b"\\x%02x" % members[0]
    parts: list[bytes] = []
    start = prev = members[0]
    for c in [*members[1:], -2]:
        if c != prev + 1:
            parts.append(b"\\x%02x" % start if start == prev
                         else b"\\x%02x-\\x%02x" % (start, prev))
            start = c
        prev = c
    return b"[" + b"".join(parts) + b"]"


def _tokens(pattern: bytes, nocase: bool) -> list[bytearray | None]:
    """One byte set per single-byte token, None for a group of stars."""
    out: list[bytearray | None] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == _STAR:
            while i + 1 < n and pattern[i + 1] == _STAR:
                i += 1
            out.append(None)
        elif c == _Q:
            out.append(bytearray(b"\x01" * 256))
        elif c == _LBR:
            table, i = _parse_class(pattern, i, nocase)
            out.append(table)
        else:
            if c == _BSL and n - i >= 2:
                i += 1
            out.append(_literal(pattern[i], nocase))
        i += 1
    return out


@attrs.frozen
class _Segment:
    length: int
    rx: re.Pattern[bytes]


@attrs.frozen
class _Starred:
    """A pattern with two or more star groups: `stars + 1` segments, the middle ones non-empty."""

    segments: tuple[_Segment, ...]
    never: bool  # the nesting guard: nothing can match

    def __call__(self, s: bytes) -> bool:
        m = len(s)
        if m == 0 or self.never:
            return False
        segs = self.segments
        first = segs[0]
        if first.length > m or (first.length and first.rx.match(s) is None):
            return False
        pos = first.length
        last = segs[-1]
        end = m - last.length  # where the last segment must start
        for seg in segs[1:-1]:
            if pos >= m:
                return False  # the string ended with a non-star token left in the pattern
            found = seg.rx.search(s, pos, end)
            if found is None:
                return False
            pos = found.start() + seg.length
        if last.length == 0:
            return True  # a trailing star matches the rest, even nothing after a consumed byte
        return pos < m and pos <= end and last.rx.match(s, end) is not None


@functools.lru_cache(maxsize=512)
def compile_glob(pattern: bytes, nocase: bool = False) -> Callable[[bytes], bool]:
    """A predicate telling whether a whole string matches `pattern` as Redis decides."""
    groups: list[list[bytearray]] = [[]]
    for tok in _tokens(pattern, nocase):
        if tok is None:
            groups.append([])
        else:
            groups[-1].append(tok)
    segments = tuple(
        _Segment(len(g), re.compile(b"".join(_byte_class(t) for t in g), re.DOTALL))
        for g in groups
    )
    stars = len(groups) - 1
    if stars <= 1:
        whole = re.compile(b".*".join(seg.rx.pattern for seg in segments), re.DOTALL)
        fullmatch = whole.fullmatch
        if stars == 0:
            return lambda s: fullmatch(s) is not None
        if not segments[0].length and not segments[1].length:
            return bool  # `*`: every non-empty string
        # A star never meets an empty remainder: the empty string matches only "".
        return lambda s: bool(s) and fullmatch(s) is not None
    non_final = stars if groups[-1] else stars - 1
    return _Starred(segments, non_final > MAX_NESTING)


def glob_match(pattern: bytes, string: bytes, nocase: bool = False) -> bool:
    return compile_glob(pattern, nocase)(string)


def match(pattern: bytes, string: bytes) -> bool:
    """Case-sensitive match (PSUBSCRIBE, PUBSUB CHANNELS)."""
    return compile_glob(pattern)(string)
