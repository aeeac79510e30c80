"""How a command handler fails: `CommandError` and Redis's shared error texts.

A leaf module (imports nothing of Aspen's kv), so handler modules can raise without importing
the keyspace, which imports the command table, which imports them.
"""

from __future__ import annotations

from aspen.resp.values import Error


class CommandError(Exception):
    """Raised inside a command handler to answer with an error reply (never on a fast path)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.reply = Error(message)


WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NOT_INTEGER = "ERR value is not an integer or out of range"
SYNTAX = "ERR syntax error"
MAX_STRING = 512 * 1024 * 1024
"""Redis's proto-max-bulk-len default: the largest string APPEND/SETRANGE may build."""
