"""The HTTP control plane takes ACL users: `Authorization: Basic user:password` of a user
allowed every @admin command; the shared requirepass (Bearer) still works; anyone else is
refused with 401 and nothing is written."""

from __future__ import annotations

import base64
from pathlib import Path

import redis
import trio
from standalone_node import acall, running_node


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"authorization": f"Basic {token}", "content-type": "application/json"}


async def test_admin_users_use_the_control_plane(tmp_path: Path) -> None:
    async with running_node(tmp_path / "d", requirepass="pw") as n:

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
