"""Compile Aspen's hot modules with mypyc, in place (extensions beside the .py files).

Run by `python3 scripts/dev.py build` (and by its `run` and `test`) with the venv's python,
which has mypy (the dev extra). The list of modules is aspen._native.COMPILED; the stamp
written last (aspen/_native.stamp, a hash of every aspen source) is what lets an import tell
a current build from a stale one, so it is removed first and written only after a whole
successful build. Nothing is rebuilt when the stamp already matches.

Exit status: 0 built or up to date, 1 compilation failed (the caller falls back to pure
Python with a notice; the stale build is refused at import).
"""

from __future__ import annotations

import os
import sys
import time
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["ASPEN_PURE"] = "1"  # this process imports aspen only for the list and the hash

from aspen import _native  # noqa: E402

GROUP = "aspen.hot"  # the shared library: aspen/hot__mypyc.<abi>.so
TARGET = ROOT / "build" / "mypyc"  # generated C and objects (gitignored)


def up_to_date(digest: str) -> bool:
    stamp = _native.STAMP.read_text().strip() if _native.STAMP.exists() else ""
    return stamp == digest and len(_native.built_files()) == len(_native.COMPILED)


def build(digest: str) -> None:
    from mypyc.build import mypycify
    from setuptools import Distribution

    paths = [str(Path(*name.split(".")).with_suffix(".py")) for name in _native.COMPILED]
    extensions = mypycify(paths, opt_level="3", debug_level="0", group_name=GROUP,
                          target_dir=str(TARGET))
    dist = Distribution({"name": "aspen-native", "ext_modules": extensions})
    command = dist.get_command_obj("build_ext")
    command.inplace = True  # type: ignore[attr-defined]
    command.build_temp = str(TARGET / "temp")  # type: ignore[attr-defined]
    command.parallel = os.cpu_count() or 1  # type: ignore[attr-defined]
    dist.run_command("build_ext")
    _native.STAMP.write_text(digest + "\n")


def main() -> int:
    os.chdir(ROOT)  # mypyc reads [tool.mypy] from pyproject.toml here
    digest = _native.source_digest()
    if up_to_date(digest):
        print("[build] compiled build is up to date", flush=True)
        return 0
    _native.STAMP.unlink(missing_ok=True)
    wanted = {*_native.COMPILED, GROUP + "__mypyc"}
    for suffix in EXTENSION_SUFFIXES:
        for old in _native.PACKAGE.rglob("*" + suffix):
            parts = old.relative_to(_native.PACKAGE.parent).parts
            if ".".join((*parts[:-1], old.name.removesuffix(suffix))) not in wanted:
                old.unlink()  # (a module dropped from the list must not load its old build)
    started = time.monotonic()
    try:
        build(digest)
    except BaseException as exc:  # (setuptools exits with SystemExit on a compiler error)
        print(f"[build] compilation failed: {exc!r}", flush=True)
        return 1
    took = time.monotonic() - started
    print(f"[build] compiled {len(_native.COMPILED)} modules in {took:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
