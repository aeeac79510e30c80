"""Aspen (in process) next to a real redis-server 7.0.15, reply by reply, in RESP2 and RESP3.

Shared by the differential tests of the bitmap, HyperLogLog, geo and SORT families. Every
step names the protocol it is checked in: redis-server answers on a connection that said
HELLO 2 or HELLO 3, Aspen's reply value is encoded by Aspen's codec for that protocol, and
both byte streams are parsed by the same reader (harness.resp_wire), which keeps every RESP3
type (a map is not an array, a double is not a bulk string) and RESP2's `*-1` vs `$-1`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from test_types_differential import redis_server

from aspen.kv.keyspace import Keyspace
from aspen.kv.ops import ReadOp, TxnOp, WriteOp
from aspen.kv.session import Session
from aspen.resp.protocol import encode
from harness.local_kv import LocalContext, LocalExecutor
from harness.resp_wire import (
    BigNumber,
    Double,
    Err,
    Map,
    NullArray,
    RespClient,
    SetReply,
    Status,
    Verbatim,
    parse_reply,
)

NOW = 1_700_000_000_000

__all__ = ["NOW", "Pair", "redis_pair", "typed"]


def typed(reply: object) -> object:
    """A comparable tree that keeps every reply type (an error is not a status, a map is not
    an array, RESP2's null array is not a null bulk string)."""
    if isinstance(reply, Map):
        return ("map", [(typed(k), typed(v)) for k, v in reply])
    if isinstance(reply, SetReply):
        return ("set", sorted((typed(x) for x in reply), key=repr))
    if isinstance(reply, NullArray):
        return ("null-array",)
    if isinstance(reply, list):
        return ("array", [typed(x) for x in reply])
    for kind in (Err, Status, Double, BigNumber, Verbatim, bool):
        if isinstance(reply, kind):
            return (kind.__name__, reply)
    return reply


class Pair:
    """One redis-server (two connections: RESP2, RESP3) and one in-process Aspen keyspace."""

    def __init__(self, port: int) -> None:
        self.clients = {2: RespClient(port), 3: RespClient(port, protocol=3)}
        self.reset()

    def reset(self) -> None:
        assert self.clients[2].call([b"FLUSHALL"]) == "OK"
        self.keyspace = Keyspace()
        self.executor = LocalExecutor(self.keyspace, lambda: NOW)
        self.session = Session(1, LocalContext(self.keyspace, clock=lambda: NOW))

    def redis(self, argv: list[bytes], protocol: int = 2) -> object:
        return self.clients[protocol].call(argv)

    def aspen(self, argv: list[bytes], protocol: int = 2) -> object:
        out = self.session.handle(argv)
        if isinstance(out, (ReadOp, WriteOp, TxnOp)):
            out = self.session.finish(out, self.executor.execute(out))
        return parse_reply(encode(out, protocol))

    def check(
        self,
        argv: list[bytes],
        protocol: int = 2,
        same: Callable[[list[bytes], object, object], bool] | None = None,
    ) -> object:
        """Run `argv` on both; fail with both replies unless they are equal (or `same`)."""
        theirs = self.redis(argv, protocol)
        ours = self.aspen(argv, protocol)
        ok = same(argv, ours, theirs) if same is not None else typed(ours) == typed(theirs)
        assert ok, f"RESP{protocol} {argv!r}:\n  aspen: {ours!r}\n  redis: {theirs!r}"
        return ours

    def close(self) -> None:
        for c in self.clients.values():
            c.close()


def redis_pair() -> Iterator[Pair]:
    """A module fixture's body: a fresh redis-server and the pair around it."""
    with redis_server() as port:
        pair = Pair(port)
        try:
            yield pair
        finally:
            pair.close()
