"""HSCAN / SSCAN / ZSCAN: argument parsing and deterministic cursors.

A collection of at most `SMALL` elements is returned whole with cursor 0 (what Redis does for
its compact encodings). A larger one is walked from its last position to its first in an
order that only changes by removal or by appending: insertion order for hashes and for
sorted sets (their member dict), array order for sets. The cursor is the position reached.

Walking backwards keeps Redis's guarantee: an element present for the whole scan is returned.
Appends land behind the cursor (new elements may be missed, as Redis allows); a removal only
moves already-visited elements across the cursor (hash and sorted-set entries shift down by
one, a set moves its last member into the hole), so they may come back twice, as Redis allows,
but no unvisited element ever moves past the cursor.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence

import attrs

from aspen.kv.errors import SYNTAX, CommandError
from aspen.kv.glob import compile_glob
from aspen.kv.numbers import parse_int

SMALL = 128


@attrs.frozen
class ScanArgs:
    cursor: int
    count: int
    match: Callable[[bytes], bool] | None


def parse(argv: Sequence[bytes]) -> ScanArgs:
    """`KEY CURSOR [MATCH pattern] [COUNT n]` (argv[0] is the command name)."""
    raw = argv[2]
    if not raw.isdigit() or int(raw) >= 2**64:
        raise CommandError("ERR invalid cursor")
    cursor = int(raw)
    count = 10
    match: Callable[[bytes], bool] | None = None
    i = 3
    while i < len(argv):
        opt = argv[i].lower()
        if i + 1 >= len(argv):
            raise CommandError(SYNTAX)
        if opt == b"count":
            value = parse_int(argv[i + 1])
            if value is None:
                raise CommandError("ERR value is not an integer or out of range")
            if value < 1:
                raise CommandError(SYNTAX)
            count = value
        elif opt == b"match":
            pattern = argv[i + 1]
            match = None if pattern == b"*" else compile_glob(pattern)
        else:
            raise CommandError(SYNTAX)
        i += 2
    return ScanArgs(cursor, count, match)


def page_of(
    backwards: Iterable[bytes],
    size: int,
    args: ScanArgs,
    small: Iterable[bytes] | None = None,
) -> tuple[bytes, list[bytes]]:
    """The next page and its cursor; `backwards` yields the `size` elements last to first.

    A small collection is returned whole, in `small`'s order if given (Redis's listpack
    order: by rank for sorted sets), else first to last.
    """
    if size <= SMALL:
        if small is not None:
            page = list(small)
        else:
            page = list(backwards)
            page.reverse()
        nxt = 0
    else:
        pos = size if args.cursor == 0 else min(args.cursor, size)
        lo = max(pos - args.count, 0)
        page = list(itertools.islice(backwards, size - pos, size - lo))
        nxt = lo
    match = args.match
    if match is not None:
        page = [x for x in page if match(x)]
    return str(nxt).encode(), page
