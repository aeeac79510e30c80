"""The control plane over HTTP and RESP on an in-process standalone node (a one-node group)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from standalone_node import acall, running_node

import aspen.cluster  # noqa: F401  (see test_config_cluster.py)
from aspen.api.http import HttpRequest, HttpServer
from aspen.daemon import Node


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    async with running_node(tmp_path / "data") as n:
        yield n


async def test_health_status_write_read(node: Node) -> None:
    code, body = await acall(node, "/health")
    assert code == 200 and body["status"] == "ok" and body["role"] == "leader"
    assert (await acall(node, "/write", {"key": "k", "value": "v"})) == (200, {"result": "OK"})
    assert (await acall(node, "/write", {"command": ["RPUSH", "l", "a", 2]})) == (
        200, {"result": 1 + 1})
    assert (await acall(node, "/read", {"key": "k"})) == (200, {"result": "v"})
    assert (await acall(node, "/read", {"key": "missing"})) == (200, {"result": None})
    for mode in ("linearizable", "lease", "stale"):
        got = await acall(node, "/read", {"command": ["LRANGE", "l", 0, -1], "consistency": mode})
        assert got == (200, {"result": ["a", "2"]})
    code, body = await acall(node, "/read", {"command": ["GET", "l"]})
    assert code == 422 and body["error"].startswith("WRONGTYPE")
    code, body = await acall(node, "/status")
    assert code == 200 and body["role"] == "leader" and body["applied_index"] >= 3
    assert body["membership"] == {"voters": [1], "learners": [], "joint": False}


BAD = [
    ("/write", b"{not json", "body is not valid JSON"),
    ("/write", b"[1, 2]", "body must be a JSON object"),
    ("/write", b"{}", 'give "command": [...] or "key": "..."'),
    ("/write", b'{"command": []}', '"command": must be a non-empty list'),
    ("/write", b'{"command": "SET k v"}', '"command": must be a non-empty list'),
    ("/write", b'{"command": ["SET", null]}', '"command": must be a non-empty list'),
    ("/write", b'{"key": "k"}', '"value": must be a string'),
    ("/write", b'{"command": ["GET", "k"]}', "GET is a read: use /read"),
    ("/read", b'{"command": ["DEL", "k"]}', "DEL is a write: use /write"),
    ("/read", b'{"key": "k", "consistency": "eventual"}', '"consistency": must be one of'),
    ("/add-learner", b'{"id": 0, "address": "127.0.0.1:1"}', '"id": must be a positive node id'),
    ("/add-learner", b'{"id": true, "address": "127.0.0.1:1"}', '"id": must be a positive'),
    ("/add-learner", b'{"id": 2}', '"address": must be the learner'),
    ("/add-learner", b'{"id": 2, "address": "nowhere"}', '"address": must be host:port'),
    ("/change-membership", b"{}", '"voters": missing'),
    ("/change-membership", b'{"voters": []}', '"voters": must be a non-empty list'),
    ("/change-membership", b'{"voters": [1, 1]}', '"voters": repeats a node id'),
    ("/change-membership", b'{"voters": ["1"]}', '"voters": must be a non-empty list'),
    ("/change-membership", b'{"voters": [1, 5]}', "node 5 is not a member: add it as a learner"),
    ("/transfer-leader", b'{"to": 9}', "node 9 is not a voter"),
    ("/init", b'{"voters": [2, 3]}', "voters [2, 3] must include this node (1)"),
    ("/init", b'{"voters": [1, 5]}', "node 5 has no address"),
]


async def test_bad_requests_get_clear_4xx(node: Node) -> None:
    for path, raw, message in BAD:
        code, body = await acall(node, path, raw=raw)
        assert 400 <= code < 500, (path, raw, code, body)
        assert body["error"].startswith(message), (path, raw, body)
    code, body = await acall(node, "/init", {})
    assert code == 409 and "already initialised" in body["error"]
    assert (await acall(node, "/nope"))[0] == 404
    assert (await acall(node, "/init"))[0] == 405  # GET on a POST route


async def test_metrics_are_prometheus_text_from_a_per_node_registry(node: Node) -> None:
    for i in range(5):
        await acall(node, "/write", {"key": f"k{i}", "value": "v"})
    code, text = await acall(node, "/metrics")
    assert code == 200
    families = {f.name: f for f in text_string_to_metric_families(text)}
    value = {f.name: f.samples[0].value for f in families.values() if f.samples}
    assert value["aspen_raft_is_leader"] == 1 and value["aspen_raft_leader"] == 1
    assert value["aspen_raft_term"] >= 1
    assert value["aspen_raft_commit_index"] == value["aspen_raft_applied_index"] >= 6
    roles = {s.labels["role"]: s.value for s in families["aspen_raft_role"].samples}
    assert roles["leader"] == 1 and roles["follower"] == 0
    fsync = {s.name: s.value for s in families["aspen_fsync_seconds"].samples
             if "le" not in s.labels}
    assert fsync["aspen_fsync_seconds_count"] >= 5 and fsync["aspen_fsync_seconds_sum"] > 0
    batches = [s for s in families["aspen_batch_size"].samples if s.labels.get("le") == "+Inf"]
    assert batches[0].value >= 5
    assert value["aspen_proposed_ops"] >= 5
    # not the process-global registry: a second node's metrics are its own
    from prometheus_client import REGISTRY
    assert "aspen_raft_term" not in {m.name for m in REGISTRY.collect()}


async def test_resp_admin_commands_and_info(node: Node) -> None:
    def run() -> None:
        r = redis.Redis(port=node.ports[0], socket_timeout=10)
        status = r.execute_command("ASPEN.STATUS")
        fields = dict(zip(status[::2], status[1::2], strict=True))
        assert fields[b"role"] == b"leader" and fields[b"voters"] == b"1"
        info = r.info("raft")
        assert info["raft_role"] == "leader" and info["raft_leader"] == 1
        assert r.info("all")["raft_role"] == "leader"
        with pytest.raises(redis.ResponseError, match="already initialised"):
            r.execute_command("ASPEN.INIT")
        with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
            r.execute_command("ASPEN.TRANSFER-LEADER")
        with pytest.raises(redis.ResponseError, match="node id must be a positive integer"):
            r.execute_command("ASPEN.CHANGE-MEMBERSHIP", "x")
        with pytest.raises(redis.ResponseError, match="node 4 is not a voter"):
            r.execute_command("ASPEN.TRANSFER-LEADER", "4")
        assert r.execute_command("ASPEN.TRANSFER-LEADER", "1") == b"OK"
        assert r.execute_command("ASPEN.CHANGE-MEMBERSHIP", "1") == b"OK"
        assert r.set("a", "1") and r.get("a") == b"1"
        info = r.execute_command("COMMAND", "INFO", "aspen.transfer-leader", "aspen.status")
        assert info["aspen.transfer-leader"]["arity"] == 2 and info["aspen.status"]["arity"] == 1

    await trio.to_thread.run_sync(run)


async def test_password_protects_everything_but_health_and_metrics(tmp_path: Path) -> None:
    async with running_node(tmp_path / "d", requirepass="pw") as n:
        code, body = await acall(n, "/write", {"key": "k", "value": "v"})
        assert code == 401 and "Authorization: Bearer" in body["error"]
        good = {"authorization": "Bearer pw", "content-type": "application/json"}
        assert (await acall(n, "/write", {"key": "k", "value": "v"}, headers=good))[0] == 200
        assert (await acall(n, "/health"))[0] == 200
        assert (await acall(n, "/metrics"))[0] == 200

        def resp() -> None:
            r = redis.Redis(port=n.ports[0], socket_timeout=5)
            with pytest.raises(redis.AuthenticationError):
                r.execute_command("ASPEN.STATUS")
            r2 = redis.Redis(port=n.ports[0], password="pw", socket_timeout=5)
            assert r2.get("k") == b"v"

        await trio.to_thread.run_sync(resp)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 10) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=10,
)
_KEYS = ["command", "key", "value", "consistency", "voters", "id", "address", "to"]
_bodies = st.dictionaries(st.sampled_from(_KEYS), _json, max_size=4) | _json


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(path=st.sampled_from(["/write", "/read", "/add-learner", "/change-membership",
                             "/transfer-leader", "/init"]), body=_bodies)
async def test_random_bodies_get_an_answer_never_a_500(node: Node, path: str, body: Any) -> None:
    server = HttpServer(node.control.routes())
    request = HttpRequest("POST", path, "", {}, json.dumps(body).encode())
    with trio.fail_after(10):
        response = await server._dispatch(request)
    assert response.status < 500, (path, body, response.body)
    # the one-node group is intact whatever was sent
    assert node.cluster.status()["membership"]["voters"] == [1]
    assert node.cluster.is_leader()
