"""HSCAN / SSCAN / ZSCAN: argument parsing and deterministic cursors.

A collection of at most `SMALL` elements is returned whole with cursor 0 (what Redis does for
its compact encodings). A larger one is walked in its own deterministic order (insertion
order for hashes, array order for sets, rank for sorted sets) and the cursor is the position
reached. Elements present for the whole scan and not moved by concurrent deletions are
returned once; a deletion before the cursor can make a later element be skipped (documented
in docs/compatibility.md).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence

import attrs

from aspen.kv.glob import compile_glob
from aspen.kv.keyspace import SYNTAX, CommandError
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


def page_of(items: Iterable[bytes], size: int, args: ScanArgs) -> tuple[bytes, list[bytes]]:
    """The next page of `items` (a deterministic order of `size` elements) and its cursor."""
    if size <= SMALL:
        start, stop = 0, size
    else:
        start, stop = args.cursor, args.cursor + args.count
    page = list(itertools.islice(items, start, stop))
    nxt = stop if size > SMALL and stop < size else 0
    match = args.match
    if match is not None:
        page = [x for x in page if match(x)]
    return str(nxt).encode(), page
