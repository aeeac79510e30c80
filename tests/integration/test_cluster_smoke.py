"""scripts/cluster-smoke.sh passes (five daemons, init, learners, membership, failover)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_cluster_smoke_script_passes(tmp_path: Path) -> None:
    assert shutil.which("redis-cli") and shutil.which("curl")
    env = {**os.environ, "PYTHON": sys.executable, "TMPDIR": str(tmp_path)}
    out = subprocess.run(["bash", str(ROOT / "scripts" / "cluster-smoke.sh")],
                         capture_output=True, text=True, timeout=240, env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "smoke: PASSED" in out.stdout
    assert "new leader: node" in out.stdout
    assert list(tmp_path.iterdir()) == []  # the trap removed its work dir
