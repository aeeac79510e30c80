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
from aspen.kv.spec import Blocking
from aspen.kv.zsets import ZSet, mpop_args, score_arg, zmpop

if TYPE_CHECKING:
    from aspen.kv.keyspace import Keyspace

Argv = Sequence[bytes]


def bzmpop(ks: Keyspace, argv: Argv, now: int) -> object:
    mpop_args(argv, 2)
    parse_timeout(argv[1])
    return zmpop(ks, [b"zmpop", *argv[2:]], now)


def _call(argv: Argv) -> BlockingCall:
    keys, _, count = mpop_args(argv, 2)
    return BlockingCall(tuple(keys), parse_timeout(argv[1]), count)


def _serve(ks: Keyspace, key: bytes, argv: Argv, now: int) -> object:
    value = ks.get_write(key, now)
    if type(value) is not ZSet or not value:
        return None
    _, where, count = mpop_args(argv, 2)
    return zmpop(ks, [b"zmpop", b"1", key, where, b"count", str(count).encode()], now)


def _give_back(argv: Argv, reply: object) -> list[bytes] | None:
    if not isinstance(reply, list):
        return None
    key, pairs = reply
    back: list[bytes] = [b"zadd", key]
    for member, score in pairs:
        back += [score_arg(score), member]
    return back


BZMPOP: Blocking = Blocking(_call, _serve, ZSet, _give_back)
"""How the node parks a BZMPOP and serves it from a sorted set (`aspen.cluster.blocking`)."""
