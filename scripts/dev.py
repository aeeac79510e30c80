#!/usr/bin/env python3
"""Bootstrap and run Aspen from a fresh checkout, needing nothing but python3.

`python3 scripts/dev.py run`   sets up .venv, builds, and runs the main job (a local node/cluster).
`python3 scripts/dev.py build` sets up .venv and compiles the hot modules with mypyc in place
                               (installing gcc and the Python headers when missing); without a
                               compiler Aspen runs as pure Python, with a one-line notice.
                               Up to date: nothing is rebuilt. ASPEN_PURE=1 runs pure Python
                               even when the build is there.
`python3 scripts/dev.py test`  sets up .venv, builds, installs redis-server/redis-tools when
                               missing, then runs ruff, mypy and the whole pytest suite (against
                               the compiled build; ASPEN_PURE=1 for the pure-Python one).
`python3 scripts/dev.py bench [args]`  sets up .venv (with the bench extra), builds, installs
                               redis-server/redis-tools when missing, then runs
                               `python -m harness.bench args` (e.g. --quick, --full, --write-docs).
`python3 scripts/dev.py explore [N]`  the long randomized search of the differential tests
                               (N times their CI example budget, default 20): run it before you
                               stop; CI runs the same tests derandomized.
`python3 scripts/dev.py lock`  re-resolves every dependency to its newest release in a scratch
                               venv and rewrites constraints.txt; then run `test` and commit both.

Every set-up installs exactly the versions pinned in constraints.txt (pip, the build backend and
every dependency of every extra), so a fresh machine gets what was tested. pyproject.toml keeps
the unpinned ranges for people who install Aspen as a library.

Only the standard library is used here, because this runs before anything is installed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".aspen-installed"
CONSTRAINTS = ROOT / "constraints.txt"
ALL_EXTRAS = "test,dev,bench,lmdb"
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


def make_venv(where: Path) -> Path:
    """A fresh venv at `where`; its bin directory."""
    argv = [sys.executable, "-m", "venv", str(where)]
    probe = subprocess.run(argv, capture_output=True, text=True)
    if probe.returncode != 0:
        # Debian splits venv/ensurepip into python3-venv.
        shutil.rmtree(where, ignore_errors=True)
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        apt_install([f"python{version}-venv"])
        run(argv)
    return where / "bin"


def pinned_env() -> dict[str, str]:
    """pip's environment with the pins applied, also inside isolated build environments."""
    return dict(os.environ, PIP_CONSTRAINT=str(CONSTRAINTS), PIP_DISABLE_PIP_VERSION_CHECK="1")


def ensure_venv(extras: str) -> None:
    wanted = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + CONSTRAINTS.read_bytes() + extras.encode()
    ).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted and (BIN / "python").exists():
        return
    if not (BIN / "python").exists():
        make_venv(VENV)
    env = pinned_env()
    pip = [str(BIN / "python"), "-m", "pip", "install", "-q"]
    run([*pip, "pip", "setuptools", "wheel"], env=env)
    run([*pip, "-e", f".[{extras}]"], cwd=ROOT, env=env)
    STAMP.write_text(wanted)


def ensure_redis() -> None:
    """The Debian packages the tests use: the reference redis-server and its tools, and
    chromium for the web console's browser test (driven over the DevTools protocol); one
    apt-get call for whatever is missing."""
    missing = [p for p, exe in (("redis-server", "redis-server"), ("redis-tools", "redis-cli"),
                                ("chromium", "chromium"))
               if shutil.which(exe) is None]
    if shutil.which("redis-benchmark") is None and "redis-tools" not in missing:
        missing.append("redis-tools")
    if "chromium" in missing:
        missing.append("fonts-dejavu-core")  # (a Recommends only: readable screenshots)
    if missing:
        apt_install(missing)


def ensure_compiler() -> bool:
    """A C compiler and the venv interpreter's headers, from apt-get when missing; False when
    they cannot be had (no apt-get, no matching -dev package: pyenv or a custom build)."""
    probe = subprocess.run(
        [str(BIN / "python"), "-c",
         "import sysconfig; print(sysconfig.get_paths()['include']);"
         "print((sysconfig.get_config_var('CC') or 'cc').split()[0])"],
        check=True, capture_output=True, text=True,
    ).stdout.split("\n")
    include, cc = Path(probe[0]), probe[1]

    def missing() -> list[str]:
        wanted = []
        if shutil.which(cc) is None and shutil.which("gcc") is None:
            wanted.append("gcc")
        if not (include / "Python.h").exists():
            wanted.append(f"python{sys.version_info.major}.{sys.version_info.minor}-dev")
        return wanted

    if not missing():
        return True
    try:
        apt_install(missing())
    except (SystemExit, subprocess.CalledProcessError) as exc:
        say(f"could not install {' '.join(missing())}: {exc}")
    return not missing()


def build(extras: str) -> bool:
    """Compile the hot modules in place (scripts/native_build.py: nothing when up to date);
    False, after a one-line notice, when Aspen will run as pure Python instead."""
    ensure_venv(extras if "dev" in extras else f"{extras},dev")  # (mypyc comes with mypy)
    if os.environ.get("ASPEN_PURE", "") not in ("", "0"):
        say("ASPEN_PURE is set: not building; Aspen runs as pure Python")
        return False
    if not ensure_compiler():
        say("NOTICE: no C compiler or Python headers: Aspen runs as pure Python (slower)")
        return False
    code = subprocess.call([str(BIN / "python"), str(ROOT / "scripts" / "native_build.py")],
                           cwd=ROOT)
    if code != 0:
        say("NOTICE: compilation failed (see above): Aspen runs as pure Python (slower)")
        return False
    return True


def cmd_build(args: list[str]) -> int:
    return 0 if build("test") else 1


def cmd_run(args: list[str]) -> int:
    build("test")
    argv = [str(BIN / "aspen"), "up", *args]
    say(" ".join(argv))
    try:
        return subprocess.call(argv, cwd=ROOT)
    except KeyboardInterrupt:
        return 0


def cmd_test(args: list[str]) -> int:
    built = build("test,dev,bench")  # the bench smoke test runs PySyncObj too
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
    # tests/unit/test_native_build.py fails unless the compiled build is what runs
    env = dict(os.environ, ASPEN_EXPECT_BUILD="compiled" if built else "pure")
    say(f"ASPEN_EXPECT_BUILD={env['ASPEN_EXPECT_BUILD']} " + " ".join(argv))
    code = subprocess.call(argv, cwd=ROOT, env=env)
    if code == PYTEST_NO_TESTS:
        say("FAILED: pytest collected no tests; an empty selection is an error here")
        return 1
    return code


def cmd_bench(args: list[str]) -> int:
    build("test,dev,bench")
    ensure_redis()
    argv = [str(BIN / "python"), "-m", "harness.bench", *args]
    say(" ".join(argv))
    try:
        return subprocess.call(argv, cwd=ROOT)
    except KeyboardInterrupt:
        return 130


DIFFERENTIAL_SCALE = "20"


def cmd_explore(args: list[str]) -> int:
    """The differential tests with a bigger, random example budget (no CI derandomizing)."""
    ensure_venv("test,dev,bench")
    ensure_redis()
    given = bool(args) and args[0].replace(".", "", 1).isdigit()
    scale, rest = (args[0], args[1:]) if given else (DIFFERENTIAL_SCALE, args)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["ASPEN_EXPLORE_SCALE"] = scale
    argv = [str(BIN / "pytest"), "-m", "differential", *rest]
    say(f"ASPEN_EXPLORE_SCALE={scale} " + " ".join(argv))
    return subprocess.call(argv, cwd=ROOT, env=env)


def cmd_lock(args: list[str]) -> int:
    """Resolve every extra afresh and pin the result (pip, build backend and all)."""
    with tempfile.TemporaryDirectory(prefix="aspen-lock-") as scratch:
        bin_dir = make_venv(Path(scratch) / "venv")
        pip = [str(bin_dir / "python"), "-m", "pip", "install", "-q", "-U"]
        run([*pip, "pip", "setuptools>=77", "wheel"])
        run([*pip, f".[{ALL_EXTRAS}]"], cwd=ROOT)
        frozen = subprocess.run(
            [str(bin_dir / "python"), "-m", "pip", "freeze", "--all"],
            check=True, capture_output=True, text=True,
        ).stdout.splitlines()
    pins = sorted((line for line in frozen if line and not line.startswith("aspen")),
                  key=str.lower)
    header = [
        "# Every package a set-up installs, pinned (pip constraints; scripts/dev.py applies them).",
        "# Refresh: python3 scripts/dev.py lock && python3 scripts/dev.py test, then commit.",
        f"# Resolved for Python {sys.version_info.major}.{sys.version_info.minor},"
        f" extras {ALL_EXTRAS}.",
    ]
    CONSTRAINTS.write_text("\n".join([*header, *pins]) + "\n")
    say(f"wrote {len(pins)} pins to {CONSTRAINTS.name}")
    return 0


def main() -> int:
    commands = {"run": cmd_run, "build": cmd_build, "test": cmd_test, "bench": cmd_bench,
                "explore": cmd_explore, "lock": cmd_lock}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        return 2
    return commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
