"""The console's endpoints and sampler on an in-process standalone node: the page loads
without the password and the data does not; points carry ops/s and batch latency; events
note the start, the election and snapshots; /snapshot compacts the log."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis
import trio
from standalone_node import acall, running_node

import aspen.cluster  # noqa: F401  (see test_config_cluster.py)
from aspen.api.console import HISTORY, percentiles
from aspen.daemon import Node

AUTH = {"authorization": "Bearer pw", "content-type": "application/json"}


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    async with running_node(tmp_path / "data", requirepass="pw") as n:
        yield n


def test_percentiles() -> None:
    assert percentiles([], (0.5,)) == [None]
    samples = [float(i) for i in range(100, 0, -1)]
    assert percentiles(samples, (0.5, 0.99, 1.0)) == [51.0, 100.0, 100.0]


async def test_page_and_assets_load_without_the_password(node: Node) -> None:
    def get(path: str) -> tuple[int, str, bytes]:
        with urllib.request.urlopen(f"http://127.0.0.1:{node.http_port}{path}") as resp:
            return resp.status, resp.headers["content-type"], resp.read()

    for path, kind in (("/", "text/html"), ("/ui", "text/html"),
                       ("/console/app.js", "text/javascript"), ("/console/app.css", "text/css")):
        status, content_type, body = await trio.to_thread.run_sync(get, path)
        assert status == 200 and content_type.startswith(kind) and body, path
    status, page = await acall(node, "/")
    assert '<script src="/console/app.js">' in page and "http" not in page.split("<body>")[1]


async def test_data_and_actions_need_the_password(node: Node) -> None:
    for path, body in (("/console/state", None), ("/console/node", None),
                       ("/console/stream", None), ("/snapshot", {})):
        status, answer = await acall(node, path, body)
        assert status == 401 and "Bearer" in answer["error"], path
    status, state = await acall(node, "/console/state", headers=AUTH)
    assert status == 200
    assert [(m["id"], m["role"], m["health"]) for m in state["members"]] == [(1, "leader", "ok")]


async def test_points_carry_ops_latency_clients_and_events(node: Node) -> None:
    sampler = node.control.sampler
    sampler.sample()

    def traffic() -> None:
        r = redis.Redis(port=node.ports[0], password="pw", socket_timeout=5)
        pipe = r.pipeline(transaction=False)
        for i in range(200):
            pipe.set(f"k{i}", "v")
        pipe.execute()
        for i in range(50):
            r.get(f"k{i}")

    await trio.to_thread.run_sync(traffic)
    point = sampler.sample()
    assert point["writes"] > 0 and point["reads"] > 0 and point["cmds"] >= 250
    assert point["p50"] is not None and point["p99"] >= point["p50"] > 0
    # (log length counts entries: a pipeline's writes share entries)
    assert point["log"] == point["last_index"] - point["snapshot_index"] > 1
    assert point["rss"] > 1 << 20
    status, body = await acall(node, f"/console/node?since={point['seq'] - 1}&events=0",
                               headers=AUTH)
    assert status == 200 and [p["seq"] for p in body["points"]] == [point["seq"]]
    kinds = [e["kind"] for e in body["events"]]
    assert kinds[0] == "restart" and "election" in kinds
    assert body["status"]["role"] == "leader"
    assert (await acall(node, "/console/node?since=x", headers=AUTH))[0] == 400

    status, snap = await acall(node, "/snapshot", {}, headers=AUTH)
    assert status == 200 and snap["node"] == 1 and snap["snapshot_index"] > 1
    point = sampler.sample()
    assert point["snapshot_index"] == snap["snapshot_index"]
    assert point["log"] == point["last_index"] - snap["snapshot_index"]
    assert sampler.events[-1]["kind"] == "snapshot"
    status, bad = await acall(node, "/snapshot", {"node": 7}, headers=AUTH)
    assert status == 400 and "node 7" in bad["error"]
    for _ in range(HISTORY + 5):
        sampler.sample()
    assert len(sampler.points) == HISTORY


async def test_stream_sends_state_events_with_only_what_is_new(node: Node) -> None:
    stream = node.control.console.stream(period=0.05)
    first = json.loads((await stream.__anext__()).split(b"data: ", 1)[1])
    assert first["members"][0]["id"] == 1 and first["points"]["1"]
    assert any(e["kind"] == "election" for e in first["events"])
    node.control.console._refreshed = -1e9  # (refreshes are at most one a second)
    node.control.sampler.sample()
    second = json.loads((await stream.__anext__()).split(b"data: ", 1)[1])
    assert second["cursor"] > first["cursor"]
    assert all(p["n"] > first["cursor"] for p in second["points"]["1"])
    assert [e for e in second["events"] if e["n"] <= first["cursor"]] == []
    await stream.aclose()  # type: ignore[attr-defined]
