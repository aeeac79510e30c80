"""The console over HTTPS with a password: the serving node reaches its peers' /console/node
over HTTPS (verified against the cluster's CA) with the password, so every member shows up."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from test_tls import Certs, Daemon

from aspen.node_config import LocalMember, render_local_config
from harness.daemons import free_ports, wait_until


def _get(url: str, ctx: ssl.SSLContext, password: str | None = None) -> tuple[int, Any]:
    headers = {"authorization": f"Bearer {password}"} if password else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), context=ctx,
                                    timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.slow
def test_console_gathers_its_peers_over_https(tmp_path: Path) -> None:
    certs = Certs(tmp_path / "certs")
    ports = free_ports(9)
    members = [LocalMember(i, ports[3 * i - 3], ports[3 * i - 2], ports[3 * i - 1])
               for i in (1, 2, 3)]
    daemons = []
    ctx = ssl.create_default_context(cafile=str(certs.ca_file))
    try:
        for m in members:
            text = render_local_config(m, members, f"n{m.id}", raft={"tick_ms": 50})
            text = text.replace("[node]\n", '[node]\nrequirepass = "pw"\n', 1)
            config = tmp_path / f"n{m.id}.toml"
            config.write_text(text + certs.tls_table(http=True))
            daemons.append(Daemon(config))
        for d in daemons:
            d.wait_log("raft on")
        url = f"https://127.0.0.1:{members[0].http}"
        status, page = _get(f"{url}/", ctx)  # the page itself needs no password
        assert status == 200 and b"/console/app.js" in page
        assert _get(f"{url}/console/state", ctx)[0] == 401

        def all_up() -> list[Any] | None:
            status, body = _get(f"{url}/console/state", ctx, "pw")
            rows = json.loads(body)["members"] if status == 200 else []
            ok = len(rows) == 3 and all(r["health"] == "ok" for r in rows)
            return rows if ok else None

        rows = wait_until("every member seen over HTTPS", all_up, 30, interval=0.5)
        assert sorted(r["role"] for r in rows) == ["follower", "follower", "leader"]
    finally:
        for d in daemons:
            d.stop()
