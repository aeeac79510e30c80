"""An in-process standalone node with its control plane, and an HTTP call to it: shared by the
control-plane, ACL and console tests."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import trio

from aspen.daemon import Node
from aspen.node_config import parse_config
from harness.standalone import start_leading


@contextlib.asynccontextmanager
async def running_node(data_dir: Path, **node: Any) -> AsyncIterator[Node]:
    """A one-node group leading (tick 20 ms, HTTP on a free port); `node` adds [node] keys."""
    config = parse_config({
        "node": {"port": 0, "dir": str(data_dir), **node},
        "raft": {"tick_ms": 20},
        "http": {"listen": "127.0.0.1:0"},
    })
    n = Node(config)
    async with trio.open_nursery() as nursery:
        await start_leading(nursery, n, timeout=10)
        yield n
        n.server.shutdown()


def call(node: Node, path: str, body: Any = None, *, raw: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """GET (no body) or POST to the node's control plane: (status, JSON or text)."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(f"http://127.0.0.1:{node.http_port}{path}", data=data,
                                 method="GET" if data is None else "POST", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            text, status = resp.read(), resp.status
    except urllib.error.HTTPError as exc:
        text, status = exc.read(), exc.code
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text.decode()


async def acall(node: Node, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
    return await trio.to_thread.run_sync(lambda: call(node, path, body, **kw))
