"""The replicated state machine: command table, keyspace, sessions (see docs/architecture.md)."""

from aspen.kv.commands import CommandSpec, lookup
from aspen.kv.keyspace import Keyspace
from aspen.kv.ops import ReadOp, TxnOp, WriteOp, decode
from aspen.kv.session import ClientInfo, ServerContext, Session

__all__ = [
    "ClientInfo",
    "CommandSpec",
    "Keyspace",
    "ReadOp",
    "ServerContext",
    "Session",
    "TxnOp",
    "WriteOp",
    "decode",
    "lookup",
]
