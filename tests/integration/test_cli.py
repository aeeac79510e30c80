"""The `aspen` command line: subcommands, help, version, keygen delegation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from aspen import __version__


def aspen(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aspen.cli", *args],
        capture_output=True, text=True, timeout=60, cwd=cwd,
    )


def test_version_and_a_missing_subcommand() -> None:
    out = aspen("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"aspen {__version__}"
    out = aspen()
    assert out.returncode == 2 and "COMMAND" in out.stderr


def test_help_lists_the_subcommands() -> None:
    out = aspen("--help")
    assert out.returncode == 0
    assert "node" in out.stdout and "keygen" in out.stdout


def test_keygen_is_delegated_to_the_transport(tmp_path: Path) -> None:
    out = aspen("keygen", "--help")
    assert out.returncode == 0 and "CURVE" in out.stdout
    out = aspen("keygen", "--dir", str(tmp_path), "--name", "n1")
    assert out.returncode == 0, out.stderr
    lines = (tmp_path / "n1.key").read_bytes().splitlines()
    assert len(lines[-1].strip()) == 40  # a Z85 CURVE public key (after a comment line)
    assert (tmp_path / "n1.key_secret").stat().st_mode & 0o077 == 0


def test_node_help_shows_a_config_file_that_loads_to_the_defaults(tmp_path: Path) -> None:
    import tomllib

    from aspen.node_config import Config, parse_config

    out = aspen("node", "--help")
    assert out.returncode == 0
    text = out.stdout.split("  [node]\n", 1)[1]
    document = tomllib.loads("[node]\n" + text)
    assert parse_config(document).node == Config().node
