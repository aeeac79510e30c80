"""The simulated state machine: a few registers, with read / write / compare-and-set.

Commands travel in log entries as small CBOR arrays tagged with the request id, so the node
that proposed an entry can recognise it when it is applied (and reply to its client), and a
node that sees a *different* entry applied at the index it proposed at knows its proposal
was overwritten (a definite "not applied").
"""

from __future__ import annotations

from typing import Any

import attrs
import cbor2

WRITE = "w"
CAS = "c"

RequestId = tuple[int, int]  # (client id, operation number)


@attrs.frozen
class Command:
    req: RequestId
    kind: str  # WRITE or CAS
    key: str
    value: str
    expected: str | None = None

    def encode(self) -> bytes:
        return cbor2.dumps([self.req[0], self.req[1], self.kind, self.key, self.value,
                            self.expected])

    @classmethod
    def decode(cls, data: bytes) -> Command:
        c, n, kind, key, value, expected = cbor2.loads(data)
        return cls((c, n), kind, key, value, expected)


class RegisterMachine:
    """Deterministic: the same entries in the same order give the same state and results."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.applied = 0

    def apply(self, index: int, cmd: Command) -> Any:
        """Returns None for a write, True/False for a compare-and-set."""
        self.applied = index
        if cmd.kind == WRITE:
            self.values[cmd.key] = cmd.value
            return None
        if self.values.get(cmd.key) == cmd.expected:
            self.values[cmd.key] = cmd.value
            return True
        return False

    def skip(self, index: int) -> None:
        """A no-op or membership entry: nothing to do but move on."""
        self.applied = index

    def read(self, key: str) -> str | None:
        return self.values.get(key)

    def snapshot(self) -> bytes:
        return cbor2.dumps([self.applied, sorted(self.values.items())])

    def restore(self, data: bytes) -> None:
        applied, items = cbor2.loads(data)
        self.applied = applied
        self.values = dict(items)
