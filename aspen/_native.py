"""Which build runs: the compiled hot modules (mypyc, `scripts/dev.py build`) or pure Python.

The extension modules sit beside their .py files, and Python's import system prefers an
extension to a source file, so choosing pure Python means steering the import, not deleting
files. `aspen/__init__.py` calls `choose()` before any other aspen module is imported:

- ASPEN_PURE=1 (any value but "" or "0") forces pure Python even when the build is there, so
  one checkout runs both ways;
- a build whose stamp does not match the sources (any aspen/**/*.py changed since it was
  compiled: mypyc compiles against the types of every module it imports) is refused, with a
  one-line notice on stderr, and pure Python runs;
- otherwise the compiled modules load.

Only the standard library is used: this runs first, in every process.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

# The modules the build compiles (docs/benchmarks.md, issue 20). Not aspen.raft.core or
# .driver: the tests' planted bugs subclass RaftCore and Driver, which a compiled (native)
# class forbids. aspen.resp.server is (its ServerOptions lives in aspen.resp.options: mypyc
# checks an attrs `field(factory=)` default against the field's type at import), and so is
# aspen.cluster.connection (its _PendingRead takes Protocols: the tests' fake connection).
COMPILED = (
    "aspen.resp.protocol",
    "aspen.resp.deferred",
    "aspen.cluster.writes",
    "aspen.cluster.requests",
    "aspen.cluster.entry",
    "aspen.cluster.state",
    "aspen.kv.session",
    "aspen.resp.server",
    "aspen.cluster.connection",
    "aspen.kv.keyspace",
    "aspen.kv.strings",
    "aspen.kv.ops",
    "aspen.server.stats",
    "aspen.server.slowlog",
    "aspen.storage.records",
)

PACKAGE = Path(__file__).resolve().parent
STAMP = PACKAGE / "_native.stamp"

# What runs (INFO server's aspen_build): "compiled", or "pure (<why>)".
MODE = "pure (not chosen yet)"


def source_digest(root: Path = PACKAGE) -> str:
    """One hash over every aspen source file (path and bytes) and the interpreter's ABI tag."""
    digest = hashlib.sha256(sys.implementation.cache_tag.encode())
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def built_files(root: Path = PACKAGE) -> list[Path]:
    """The compiled modules' extension files present beside their sources."""
    found: list[Path] = []
    for name in COMPILED:
        parts = name.split(".")[1:]
        folder = root.joinpath(*parts[:-1])
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            candidate = folder / (parts[-1] + suffix)
            if candidate.exists():
                found.append(candidate)
                break
    return found


class _PureFinder:
    """Finds aspen's .py sources ahead of the path finder's extensions (every aspen module, not
    only today's list: an extension left from an older list must not load either)."""

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if not name.startswith("aspen.") or path is None:
            return None
        leaf = name.rpartition(".")[2] + ".py"
        for entry in path:
            candidate = os.path.join(entry, leaf)
            if os.path.isfile(candidate):
                return importlib.util.spec_from_file_location(name, candidate)
        return None


def _force_pure() -> None:
    if not any(isinstance(f, _PureFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _PureFinder())


def choose() -> str:
    """Decide once per process; returns (and sets) MODE."""
    global MODE
    if os.environ.get("ASPEN_PURE", "") not in ("", "0"):
        _force_pure()
        MODE = "pure (ASPEN_PURE=1)"
    elif not built_files():
        MODE = "pure (not built)"
    else:
        stamp = STAMP.read_text().strip() if STAMP.exists() else ""
        if stamp != source_digest():
            _force_pure()
            MODE = "pure (stale build)"
            print("aspen: the compiled build is stale (sources changed since it was built; "
                  "run `python3 scripts/dev.py build`): running pure Python", file=sys.stderr)
        else:
            MODE = "compiled"
    return MODE
