"""The RESP server's per-connection handler for a cluster node.

Same shape as node.py's `_LocalConnection`: the kv `Session` classifies each command; reads and
writes go to the `ClusterNode` and come back as `Deferred` replies (the server awaits them in
request order). One connection-level command is handled here, before the session sees it:

    ASPEN.CONSISTENCY                         -> the connection's read consistency
    ASPEN.CONSISTENCY linearizable|lease|stale -> +OK (this connection only)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aspen.cluster.settings import READ_CONSISTENCIES, ReadConsistency
from aspen.kv.ops import ReadOp, TxnOp, WriteOp
from aspen.kv.session import Session
from aspen.resp.server import Deferred
from aspen.resp.values import OK, Error

if TYPE_CHECKING:
    from aspen.cluster.node import ClusterNode

CONSISTENCY_COMMAND = b"aspen.consistency"


class ClusterConnection:
    __slots__ = ("consistency", "node", "session")

    def __init__(self, node: ClusterNode, session: Session) -> None:
        self.node = node
        self.session = session
        self.consistency: ReadConsistency = node.settings.read_consistency

    @property
    def protocol(self) -> int:
        return self.session.protocol

    @property
    def should_close(self) -> bool:
        return self.session.should_close

    @property
    def authenticated(self) -> bool:
        return self.session.authenticated

    def handle(self, argv: list[bytes]) -> object:
        session = self.session
        if argv[0].lower() == CONSISTENCY_COMMAND and session.authenticated:
            return self._consistency(argv)
        out = session.handle(argv)
        t = type(out)
        if t is ReadOp:
            if self.consistency == "stale":
                return session.finish(out, self.node.execute_local(out))  # type: ignore[arg-type]
            return Deferred(lambda: self._read(out))  # type: ignore[arg-type]
        if t is WriteOp or t is TxnOp:
            return Deferred(lambda: self._write(out))  # type: ignore[arg-type]
        return out

    async def _read(self, op: ReadOp) -> object:
        return self.session.finish(op, await self.node.read(op, self.consistency))

    async def _write(self, op: WriteOp | TxnOp) -> object:
        return self.session.finish(op, await self.node.write(op))

    def _consistency(self, argv: list[bytes]) -> object:
        if len(argv) == 1:
            return self.consistency.encode()
        if len(argv) != 2:
            return Error("ERR wrong number of arguments for 'aspen.consistency' command")
        mode = argv[1].decode("utf-8", "replace").lower()
        if mode not in READ_CONSISTENCIES:
            return Error(f"ERR read consistency must be one of {', '.join(READ_CONSISTENCIES)}")
        self.consistency = mode
        return OK
