"""Sessions over a bare keyspace, no Raft: what the kv unit and differential tests drive.

`LocalExecutor` runs ops straight against a keyspace with the wall clock, standing in for
"propose, commit, apply". It keeps time monotonic (as the Raft leader does) and derives
RANDOMKEY's seed from a counter, the stand-in for the log position.

`LocalContext` is a ready-made `ServerContext` for such sessions. Test-only: the product never
imports it (it lived in aspen/kv until issue 19).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import attrs

from aspen.kv.glob import compile_glob
from aspen.kv.keyspace import Keyspace
from aspen.kv.ops import Op
from aspen.kv.session import ClientInfo
from aspen.server import params
from aspen.server.live_config import ServerConfig

Clock = Callable[[], int]


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class LocalExecutor:
    """Runs ops against `keyspace` at `clock()` milliseconds (never going backwards)."""

    def __init__(self, keyspace: Keyspace, clock: Clock = wall_clock_ms) -> None:
        self.keyspace = keyspace
        self.clock = clock
        self._last_ms = 0
        self._position = 0

    def now_ms(self) -> int:
        now = self.clock()
        if now < self._last_ms:
            now = self._last_ms
        self._last_ms = now
        return now

    def execute(self, op: Op) -> object:
        self._position += 1
        return self.keyspace.execute(op, self.now_ms(), self._position)

    def expire_some(self, limit: int = 20) -> list[bytes]:
        """Active expiry: drop up to `limit` keys past their deadline."""
        return self.keyspace.expire_some(self.now_ms(), limit)


@attrs.define
class LocalContext:
    """A `ServerContext` backed by a local keyspace; settings as a flat name -> value dict."""

    keyspace: Keyspace
    requirepass: bytes | None = None
    settings: dict[bytes, bytes] = attrs.Factory(dict)
    clock: Clock = wall_clock_ms
    sections: dict[str, list[tuple[str, str]]] = attrs.Factory(dict)
    clients: Callable[[], list[ClientInfo]] = list
    server_config: ServerConfig = attrs.Factory(lambda self: _server_config(self.settings),
                                                takes_self=True)

    def config_get(self, pattern: bytes) -> list[tuple[bytes, bytes]]:
        match = compile_glob(pattern, nocase=True)
        return [(k, v) for k, v in self.settings.items() if match(k)]

    def wall_clock_ms(self) -> int:
        return self.clock()

    def info_sections(self) -> dict[str, list[tuple[str, str]]]:
        return self.sections

    def client_list(self) -> list[ClientInfo]:
        return self.clients()


def _server_config(settings: dict[bytes, bytes]) -> ServerConfig:
    """Redis's defaults and the settings given, honouring nothing."""
    facts = {k.decode(): v.decode() for k, v in settings.items() if params.lookup(k.decode())}
    return ServerConfig(facts=facts)
