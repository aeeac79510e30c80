"""Suite-wide settings.

Under CI (`CI` set, as `.ci/run` runs), hypothesis is derandomized: every run explores the
same examples, so a submission's verdict does not depend on the luck of the draw. Locally the
search stays random (and keeps its failure database) so it keeps finding new cases; a failure
found locally is fixed, then kept as an explicit test or a known-difference rule.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from harness.daemons import DaemonCluster, started_cluster

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[DaemonCluster]:
    """Three real `aspen node` daemons over ZeroMQ on loopback (integration and ecosystem
    tests); their logs are printed if the test fails."""
    with started_cluster(3, tmp_path) as c:
        yield c
