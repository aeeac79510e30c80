"""The pair of servers the server-command tests compare (CONFIG, INFO, notifications,
sharded pub/sub, CLIENT/SLOWLOG/...): a bare redis-server 7.0.15 and an `aspen node` started
from a config file (CONFIG REWRITE needs one), each once per test module."""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_differential_wire import free_port, running

from harness.resp_wire import RespClient

REDIS_SERVER = shutil.which("redis-server")
ASPEN = Path(sys.executable).with_name("aspen")

CONFIG_TOML = """\
# a node for the CONFIG tests
[node]
port = {port}
dir = "data"   # relative to this file
max_clients = 10000

[http]
listen = ""
"""


@contextlib.contextmanager
def reference_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A redis-server with no persistence on a free port; yields the port."""
    if REDIS_SERVER is None:
        pytest.fail("redis-server is not installed")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    args = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(workdir)]
    with running(args, port) as p:
        yield p


@contextlib.contextmanager
def config_file_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """An `aspen node --config node.toml` (CONFIG_TOML) on a free port; yields the port."""
    port = free_port()
    workdir = tmp_path_factory.mktemp("aspen")
    config = workdir / "node.toml"
    config.write_text(CONFIG_TOML.format(port=port))
    with running([str(ASPEN), "node", "--config", str(config)], port) as p:
        yield p


@contextlib.contextmanager
def clients(*ports: int) -> Iterator[list[RespClient]]:
    opened = [RespClient(p) for p in ports]
    try:
        yield opened
    finally:
        for c in opened:
            c.close()
