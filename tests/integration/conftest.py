"""Fixtures the server-command tests share: `redis_port` (a reference redis-server) and
`aspen_port` (an `aspen node` from a config file), once per module (tests/integration/
vs_redis.py). A module that defines its own fixture of the same name uses its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from vs_redis import config_file_node, reference_redis


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with reference_redis(tmp_path_factory) as port:
        yield port


@pytest.fixture(scope="module")
def aspen_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with config_file_node(tmp_path_factory) as port:
        yield port
