#!/usr/bin/env python3
"""Bootstrap and run Aspen from a fresh checkout, needing nothing but python3.

`python3 scripts/dev.py run`   sets up .venv and runs the main job (a local node/cluster).
`python3 scripts/dev.py test`  sets up .venv, installs redis-server/redis-tools when missing,
                               then runs ruff, mypy and the whole pytest suite.
`python3 scripts/dev.py bench [args]`  sets up .venv (with the bench extra), installs
                               redis-server/redis-tools when missing, then runs
                               `python -m harness.bench args` (e.g. --quick, --full, --write-docs).

Only the standard library is used here, because this runs before anything is installed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".aspen-installed"
PYTEST_NO_TESTS = 5


def say(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def run(argv: list[str], **kwargs: object) -> None:
    say(" ".join(str(a) for a in argv))
    subprocess.run(argv, check=True, **kwargs)  # type: ignore[call-overload]


def apt_install(packages: list[str]) -> None:
    """Install Debian packages; the machine may be fresh, so refresh the index once."""
    if shutil.which("apt-get") is None:
        sys.exit(f"[dev] need {' '.join(packages)} but apt-get is not available; install them")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run([*sudo, "apt-get", "update", "-qq"], env=env)
    run([*sudo, "apt-get", "install", "-y", "-qq", *packages], env=env)


def ensure_venv(extras: str) -> None:
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted and (BIN / "python").exists():
        return
    if not (BIN / "python").exists():
        probe = subprocess.run(
            [sys.executable, "-m", "venv", str(VENV)], capture_output=True, text=True
        )
        if probe.returncode != 0:
            # Debian splits venv/ensurepip into python3-venv.
            shutil.rmtree(VENV, ignore_errors=True)
            version = f"{sys.version_info.major}.{sys.version_info.minor}"
            apt_install([f"python{version}-venv"])
            run([sys.executable, "-m", "venv", str(VENV)])
    run([str(BIN / "python"), "-m", "pip", "install", "-q", "-U", "pip"])
    run([str(BIN / "python"), "-m", "pip", "install", "-q", "-e", f".[{extras}]"], cwd=ROOT)
    STAMP.write_text(wanted)


def ensure_redis() -> None:
    missing = [p for p, exe in (("redis-server", "redis-server"), ("redis-tools", "redis-cli"))
               if shutil.which(exe) is None]
    if shutil.which("redis-benchmark") is None and "redis-tools" not in missing:
        missing.append("redis-tools")
    if missing:
        apt_install(missing)


def cmd_run(args: list[str]) -> int:
    ensure_venv("test")
    argv = [str(BIN / "aspen"), "up", *args]
    say(" ".join(argv))
    try:
        return subprocess.call(argv, cwd=ROOT)
    except KeyboardInterrupt:
        return 0


def cmd_test(args: list[str]) -> int:
    ensure_venv("test,dev,bench")  # the bench smoke test runs PySyncObj too
    ensure_redis()
    for step in (
        [str(BIN / "ruff"), "check", "."],
        [str(BIN / "mypy")],
    ):
        say(" ".join(step))
        if subprocess.call(step, cwd=ROOT) != 0:
            say(f"FAILED: {step[0]}")
            return 1
    argv = [str(BIN / "pytest"), *args]
    say(" ".join(argv))
    code = subprocess.call(argv, cwd=ROOT)
    if code == PYTEST_NO_TESTS:
        say("FAILED: pytest collected no tests; an empty selection is an error here")
        return 1
    return code


def cmd_bench(args: list[str]) -> int:
    ensure_venv("test,dev,bench")
    ensure_redis()
    argv = [str(BIN / "python"), "-m", "harness.bench", *args]
    say(" ".join(argv))
    try:
        return subprocess.call(argv, cwd=ROOT)
    except KeyboardInterrupt:
        return 130


def main() -> int:
    commands = {"run": cmd_run, "test": cmd_test, "bench": cmd_bench}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        return 2
    return commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
