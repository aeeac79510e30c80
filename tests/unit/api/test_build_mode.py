"""Which build runs (issue 20): the compiled hot modules, or pure Python when ASPEN_PURE=1,
when nothing was built, or when the build is stale; INFO server's `aspen_build` says which.

`scripts/dev.py test` sets ASPEN_EXPECT_BUILD to what its build step produced ("compiled", or
"pure" when it could not compile or ASPEN_PURE is set), so CI fails if the suite it calls the
compiled one ran as pure Python. Without it the expectation comes from the tree (a complete,
current build present or not)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

from standalone_node import running_node

import aspen
from aspen import _native

PROBE = (
    "import aspen._native as n, importlib\n"
    "print(n.MODE)\n"
    "for name in n.COMPILED: print(importlib.import_module(name).__file__)\n"
)


def _probe(env: dict[str, str], path: Path | None = None) -> tuple[str, list[str], str]:
    """(MODE, the compiled modules' files, stderr) in a fresh interpreter."""
    full = dict(env)
    if path is not None:
        full["PYTHONPATH"] = str(path)
    done = subprocess.run([sys.executable, "-c", PROBE], env=full, capture_output=True,
                          text=True, check=True, timeout=120, cwd=path or None)
    mode, *files = done.stdout.splitlines()
    return mode, files, done.stderr


def _without_pure() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "ASPEN_PURE"}


def _expected() -> str:
    given = os.environ.get("ASPEN_EXPECT_BUILD")
    if given:
        return given
    if os.environ.get("ASPEN_PURE", "") not in ("", "0"):
        return "pure"
    complete = len(_native.built_files()) == len(_native.COMPILED)
    fresh = _native.STAMP.exists() and _native.STAMP.read_text().strip() == _native.source_digest()
    return "compiled" if complete and fresh else "pure"


def test_the_expected_build_runs() -> None:
    mode, files, _ = _probe(dict(os.environ))
    assert mode.split()[0] == _expected()
    assert mode == _native.MODE  # this pytest process chose the same way
    suffix = tuple(EXTENSION_SUFFIXES) if mode == "compiled" else (".py",)
    assert len(files) == len(_native.COMPILED)
    assert all(f.endswith(suffix) for f in files), files


def test_aspen_pure_forces_pure_python_even_over_a_build() -> None:
    mode, files, _ = _probe(dict(_without_pure(), ASPEN_PURE="1"))
    assert mode == "pure (ASPEN_PURE=1)"
    assert all(f.endswith(".py") for f in files), files
    mode, files, _ = _probe(dict(_without_pure(), ASPEN_PURE="0"))  # "0" is not set
    assert mode == "compiled" or mode.startswith("pure (not built)") or (
        mode == "pure (stale build)")


def test_a_stale_build_is_refused(tmp_path: Path) -> None:
    """A build whose stamp does not match the sources never loads (here a planted extension
    file that would fail to import if it were tried)."""
    root = Path(aspen.__file__).parent
    shutil.copytree(root, tmp_path / "aspen", ignore=shutil.ignore_patterns(
        "*.so", "*.pyd", "__pycache__", _native.STAMP.name))
    copy = tmp_path / "aspen"
    planted = copy / "resp" / ("protocol" + EXTENSION_SUFFIXES[0])
    planted.write_bytes(b"not an extension module")
    (copy / _native.STAMP.name).write_text(_native.source_digest(copy) + "\n")
    with (copy / "resp" / "protocol.py").open("a") as f:
        f.write("\n# changed after the build\n")
    mode, files, err = _probe(_without_pure(), tmp_path)
    assert mode == "pure (stale build)"
    assert all(f.endswith(".py") and f.startswith(str(tmp_path)) for f in files), files
    assert "stale" in err and err.count("\n") == 1  # one line


async def test_info_server_says_which_build(tmp_path: Path) -> None:
    async with running_node(tmp_path) as node:
        server = dict(node.info_sections()["server"])
    assert server["aspen_build"] == _native.MODE
