"""Fixtures for the in-process cluster tests (see harness/cluster.py).

pytest-trio hands a clock to trio.run only when the TEST function itself takes the clock
fixture: every test using these fixtures must also take `autojump_clock` (else it runs on the
real clock, ~20x slower).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio.testing

from harness.cluster import InProcessCluster, open_cluster


@pytest.fixture
async def cluster3(autojump_clock: trio.testing.MockClock) -> AsyncIterator[InProcessCluster]:
    """Three bootstrapped nodes on a perfect memory network, under an autojump clock."""
    async with open_cluster(3, seed=3) as cluster:
        await cluster.wait_leader()
        yield cluster


@pytest.fixture(params=[2, 3], ids=["2-nodes", "3-nodes"])
async def cluster_n(
    request: pytest.FixtureRequest, autojump_clock: trio.testing.MockClock
) -> AsyncIterator[InProcessCluster]:
    """Two and three bootstrapped nodes (tests using it run once per size)."""
    async with open_cluster(request.param, seed=request.param) as cluster:
        await cluster.wait_leader()
        yield cluster
