"""BZMPOP: ZMPOP's blocking form.

Applied from the log it never blocks: it pops at once like ZMPOP or replies null, after
checking its arguments in Redis's order (numkeys, the keys' MIN|MAX, COUNT, then the
timeout). The node parks the client on that null and later replicates a serve from the sorted
set that became non-empty (`aspen.kv.blocking`), taking up to COUNT members from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from aspen.kv.blocking import BlockingCall, parse_timeout
from aspen.kv.errors import SYNTAX, CommandError
from aspen.kv.numbers import parse_int
from aspen.kv.spec import Blocking
from aspen.kv.zsets import ZSet, zmpop

if TYPE_CHECKING:
    from aspen.kv.keyspace import Keyspace

Argv = Sequence[bytes]

_NUMKEYS = "ERR numkeys should be greater than 0"
_COUNT = "ERR count should be greater than 0"


def _args(argv: Argv) -> tuple[list[bytes], bytes, int]:
    """BZMPOP timeout numkeys key... MIN|MAX [COUNT n]: keys, MIN/MAX word, count (ZMPOP's
    checks and errors)."""
    n = parse_int(argv[2])
    if n is None or n < 1:
        raise CommandError(_NUMKEYS)
    where_at = 3 + n
    if where_at >= len(argv):
        raise CommandError(SYNTAX)
    where = argv[where_at].lower()
    if where not in (b"min", b"max"):
        raise CommandError(SYNTAX)
    count = -1
    j = where_at + 1
    while j < len(argv):
        if count == -1 and argv[j].lower() == b"count" and j + 1 < len(argv):
            parsed = parse_int(argv[j + 1])
            if parsed is None or parsed < 1:
                raise CommandError(_COUNT)
            count = parsed
            j += 2
        else:
            raise CommandError(SYNTAX)
    return list(argv[3:where_at]), where, max(count, 1)


def bzmpop(ks: Keyspace, argv: Argv, now: int) -> object:
    _args(argv)
    parse_timeout(argv[1])
    return zmpop(ks, [b"zmpop", *argv[2:]], now)


def _call(argv: Argv) -> BlockingCall:
    keys, _, count = _args(argv)
    return BlockingCall(tuple(keys), parse_timeout(argv[1]), count)


def _serve(ks: Keyspace, key: bytes, argv: Argv, now: int) -> object:
    value = ks.get_write(key, now)
    if type(value) is not ZSet or not value:
        return None
    _, where, count = _args(argv)
    return zmpop(ks, [b"zmpop", b"1", key, where, b"count", str(count).encode()], now)


BZMPOP = Blocking(_call, _serve, ZSet)
"""How the node parks a BZMPOP and serves it from a sorted set (`aspen.cluster.blocking`)."""
