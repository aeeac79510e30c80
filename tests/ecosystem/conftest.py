"""Fixtures for the ecosystem tests: real client libraries against real daemons."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.daemons import DaemonCluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[DaemonCluster]:
    """Three `aspen node` daemons over ZeroMQ on loopback; logs printed if the test fails."""
    with DaemonCluster(3, tmp_path) as c:
        c.start_all()
        try:
            yield c
        except BaseException:
            for i in c.members:
                print(f"--- n{i}.log\n{c.log_tail(i)}")
            raise
