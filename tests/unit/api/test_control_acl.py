"""The HTTP control plane takes ACL users: `Authorization: Basic user:password` of a user
allowed every @admin command; the shared requirepass (Bearer) still works; anyone else is
refused with 401 and nothing is written."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import redis
import trio

from aspen.config import parse_config
from aspen.node import Node


async def acall(node: Node, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
    def call() -> tuple[int, Any]:
        req = urllib.request.Request(f"http://127.0.0.1:{node.http_port}{path}",
                                     data=json.dumps(body).encode(), method="POST",
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    return await trio.to_thread.run_sync(call)


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"authorization": f"Basic {token}", "content-type": "application/json"}


async def test_admin_users_use_the_control_plane(tmp_path: Path) -> None:
    config = parse_config({
        "node": {"port": 0, "dir": str(tmp_path / "d"), "requirepass": "pw"},
        "raft": {"tick_ms": 20}, "http": {"listen": "127.0.0.1:0"},
    })
    n = Node(config)
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: n.run(handle_signals=False,
                                                       task_status=task_status))
        with trio.fail_after(10):
            while n.cluster.leader_id != 1:
                await trio.sleep(0.02)

        def users() -> None:
            r = redis.Redis(port=n.ports[0], password="pw", socket_timeout=5)
            assert r.execute_command("ACL", "SETUSER", "ops", "on", ">opspw", "+@all", "~*")
            assert r.execute_command("ACL", "SETUSER", "app", "on", ">apppw", "+@read",
                                     "+@write", "~*")
            assert r.execute_command("ACL", "SETUSER", "off", "off", ">offpw", "+@all", "~*")

        await trio.to_thread.run_sync(users)
        write = {"key": "k", "value": "v"}
        assert (await acall(n, "/write", write, headers=_basic("ops", "opspw")))[0] == 200
        assert (await acall(n, "/write", write, headers=_basic("default", "pw")))[0] == 200
        bearer = {"authorization": "Bearer pw", "content-type": "application/json"}
        assert (await acall(n, "/write", write, headers=bearer))[0] == 200
        for headers in (_basic("ops", "wrong"), _basic("app", "apppw"),
                        _basic("off", "offpw"), _basic("ghost", "x"), _basic("default", "x"),
                        {"authorization": "Basic !!!"}, {"authorization": "Bearer nope"}, {}):
            code, body = await acall(n, "/write", {"key": "k2", "value": "v"}, headers=headers)
            assert code == 401 and "Basic" in body["error"], headers
        code, body = await acall(n, "/read", {"key": "k2"}, headers=bearer)
        assert (code, body) == (200, {"result": None})

        # once ACL gives the default user its own password and rules, the control plane
        # still works for admins (its own session is the node's, not the default user's)
        def restrict_default() -> None:
            r = redis.Redis(port=n.ports[0], password="pw", socket_timeout=5)
            assert r.execute_command("ACL", "SETUSER", "default", "resetpass", ">new",
                                     "-@all")

        await trio.to_thread.run_sync(restrict_default)
        assert (await acall(n, "/write", write, headers=_basic("ops", "opspw")))[0] == 200
        assert (await acall(n, "/write", write, headers=_basic("default", "new")))[0] == 401
        assert (await acall(n, "/write", write, headers=bearer))[0] == 200
        n.server.shutdown()
