"""A keyspace's scripting state: the replicated part (script cache, function libraries) and
the derived part (the Lua engine, compiled chunks), rebuilt on demand.

Only the script bodies and library codes are replicated and snapshotted; a replica that
restores a snapshot recompiles and re-registers them, so EVALSHA and FCALL work after a
restart, a failover or a snapshot install exactly as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from aspen.scripting.dispatch import make_call
from aspen.scripting.engine import DEFAULT_BUDGET, LuaEngine

FUNCTION_FLAGS = ("no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys")


@attrs.frozen
class FunctionInfo:
    name: bytes
    flags: tuple[str, ...]
    description: bytes | None


@attrs.define
class Library:
    name: bytes
    code: bytes
    functions: dict[bytes, FunctionInfo] = attrs.Factory(dict)
    handle: Any = None  # the engine's table for this library (callbacks, env)


class ScriptState:
    def __init__(self) -> None:
        self.scripts: dict[bytes, bytes] = {}
        """sha1 (lower-case hex) -> body: the replicated script cache."""
        self.local_scripts: dict[bytes, bytes] = {}
        """Bodies seen only by read-only runs on this node (EVAL_RO): not replicated."""
        self.libraries: dict[bytes, Library] = {}
        self.functions: dict[bytes, bytes] = {}
        """function name -> library name."""
        self.budget = DEFAULT_BUDGET
        self.interrupt: Callable[[], bool] | None = None
        """Set while `aspen.scripting.local.execute_killable` runs a read-only script: its
        kill switch (that run has no budget)."""
        self.holder: tuple[int, bool] | None = None
        """(thread id, is an eval) of that run: the Lua state is in use by that thread."""
        self._engine: LuaEngine | None = None
        self._engine_ref: list[LuaEngine] = []

    @property
    def engine(self) -> LuaEngine:
        if self._engine is None:
            self._engine = LuaEngine(make_call(self._engine_ref))
            self._engine_ref.append(self._engine)
            for lib in self.libraries.values():
                lib.handle = None  # compiled in the old engine: load again on first use
        return self._engine

    def is_empty(self) -> bool:
        return not self.scripts and not self.libraries

    def flush_scripts(self) -> None:
        self.scripts.clear()
        self.local_scripts.clear()
        if self._engine is not None:
            self._engine.compiled.clear()

    def reset_engine(self) -> None:
        """Drop the Lua state (SCRIPT FLUSH, FUNCTION FLUSH): a fresh one is made on demand."""
        self._engine = None
        self._engine_ref.clear()
        for lib in self.libraries.values():
            lib.handle = None

    # -- snapshots

    def dump(self) -> dict[str, object]:
        return {
            "scripts": [[sha, body] for sha, body in self.scripts.items()],
            "libraries": [[lib.name, lib.code] for lib in self.libraries.values()],
        }

    @classmethod
    def load(cls, obj: dict[str, Any], register: Any) -> ScriptState:
        """From `dump()`'s value; `register(state, code)` re-creates a library."""
        state = cls()
        for sha, body in obj.get("scripts", []):
            state.scripts[sha] = body
        for _name, code in obj.get("libraries", []):
            register(state, code)
        return state
