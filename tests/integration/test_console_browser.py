"""The web console in a real browser (headless Chromium over the DevTools protocol).

A 3-node daemon cluster under a steady trickle of writes; the page is opened on a follower,
shows the members and chart data, hands leadership to its own node and away again through
its confirm dialog, and shows the new leader after the leader is killed. Screenshots go to
the test's tmp dir (and to $ASPEN_CONSOLE_SCREENSHOT if set: docs/console.png is made with
ASPEN_CONSOLE_WARMUP=120, seconds of traffic before the failover, for fuller charts).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest
import redis
import trio

import aspen.cluster  # noqa: F401  (see test_config_cluster.py)
from aspen.daemon import Node
from aspen.node_config import parse_config
from harness.browser import Browser, chromium_path, open_browser
from harness.daemons import DaemonCluster

pytestmark = pytest.mark.slow

FAILOVER_S = 10.0
"""The page must name the new leader within this: election (0.5-1 s at the harness's 50 ms
ticks) plus the console's sampling (1 s), the aggregator's poll (1 s) and the stream (1 s)."""


@pytest.fixture(autouse=True)
def _need_chromium() -> None:
    if chromium_path() is None:
        pytest.fail("chromium is not installed: `scripts/dev.py test` installs it (apt)")


class Writer:
    """SETs in a thread against whichever node answers, so the charts have something to show."""

    def __init__(self, c: DaemonCluster) -> None:
        self.c = c
        self.stop = threading.Event()
        self.done = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        clients = {i: self.c.client(i, socket_timeout=2) for i in self.c.voters}
        i = 0
        while not self.stop.is_set():
            for node in [n for n in self.c.running() if n in clients]:
                try:
                    clients[node].set(f"k{i}", "v" * 32)
                    clients[node].get(f"k{i}")
                    self.done += 1
                except redis.RedisError:
                    time.sleep(0.05)
                i += 1
            time.sleep(0.01)

    def __enter__(self) -> Writer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def _member(node: int) -> str:
    return f"window.aspenConsole.members.find(m => m.id === {node})"


async def _click(b: Browser, node: int, action: str) -> None:
    await b.evaluate(f'document.querySelector(\'#members tr[data-node="{node}"] '
                     f'button[data-action="{action}"]\').click()')


async def _confirm(b: Browser, expect: str) -> None:
    text = await b.wait_for("document.getElementById('confirm').open && "
                            "document.getElementById('confirm-text').textContent", 5)
    assert expect in text
    await b.evaluate("document.getElementById('confirm-ok').click()")


async def test_console_members_charts_actions_and_failover(tmp_path: Path) -> None:
    with DaemonCluster(3, tmp_path / "cluster") as c:
        c.start_all()
        leader = await trio.to_thread.run_sync(c.wait_leader)
        served = next(i for i in c.voters if i != leader)
        other = next(i for i in c.voters if i not in (leader, served))
        with Writer(c) as writer:
            async with open_browser() as b:
                await b.set_viewport(1280, 1180)
                await b.navigate(f"http://{c.http(served)}/ui")
                # The members: all three, one leader, every row healthy.
                await b.wait_for("window.aspenConsole.members.length === 3 && "
                                 "window.aspenConsole.members.every(m => m.health === 'ok')", 20)
                members = await b.evaluate("window.aspenConsole.members")
                assert {m["id"] for m in members} == {1, 2, 3}
                assert [m["id"] for m in members if m["role"] == "leader"] == [leader]
                assert all(m["member"] == "voter" and m["leader"] == leader for m in members)
                rows = await b.evaluate("[...document.querySelectorAll('#members tbody tr')]"
                                        ".map(r => r.innerText)")
                assert len(rows) == 3 and any("leader" in r for r in rows)
                # A chart's data: the cluster's writes/s and each node's p99 latency.
                ops = await b.wait_for(
                    "(() => { const s = window.aspenConsole.charts.ops?.[0];"
                    " return s && s.points.filter(p => p[1] > 0).length >= 2 ? s : null })()",
                    20)
                assert ops["label"] == "writes/s"
                await b.wait_for("window.aspenConsole.charts.latency.some(s => "
                                 "s.label.endsWith('p99') && s.points.length > 0)", 10)
                assert await b.evaluate(f"{_member(served)}.clients") >= 1  # the writer's
                # (a longer run for the picture in the docs: fuller charts)
                await trio.sleep(float(os.environ.get("ASPEN_CONSOLE_WARMUP", "0")) / 2)
                await _click(b, served, "snapshot")
                await _confirm(b, f"snapshot on node {served}")
                await b.wait_for(f"{_member(served)}.snapshot_index > 0", 10)
                await b.wait_for("window.aspenConsole.events.some(e => e.kind === 'snapshot'"
                                 f" && e.node === {served})", 10)
                await trio.sleep(float(os.environ.get("ASPEN_CONSOLE_WARMUP", "0")) / 2)

                # Actions through the confirm dialog: leadership to the serving node, then
                # away from it to the third node (the page does not depend on its leading).
                await _click(b, served, "make leader")
                await _confirm(b, f"to node {served}")
                await b.wait_for(f"window.aspenConsole.leader === {served}", 15)
                await _click(b, other, "make leader")
                text = await b.wait_for("document.getElementById('confirm').open && "
                                        "document.getElementById('confirm-text').textContent",
                                        5)
                assert f"to node {other}" in text
                await b.evaluate("document.getElementById('confirm-ok').click()")
                await b.wait_for(f"window.aspenConsole.leader === {other}", 15)
                assert await b.evaluate(
                    "document.getElementById('leader-badge').textContent") == \
                    f"leader: node {other}"
                await b.wait_for("window.aspenConsole.events.some(e => e.text === "
                                 f"'node {served} handed leadership to node {other}')", 10)
                assert await b.evaluate("window.aspenConsole.events.some(e => e.text === "
                                        f"'node {leader} handed leadership to node {served}')")

                # Kill the leader: the page (served by a follower) names the new one.
                started = time.monotonic()
                await trio.to_thread.run_sync(c.kill, other)
                new = await b.wait_for(
                    f"(() => {{ const s = window.aspenConsole, m = {_member(other)};"
                    f" return s.leader !== null && s.leader !== {other} &&"
                    f" m.health === 'down' ? s.leader : 0 }})()", FAILOVER_S)
                elapsed = time.monotonic() - started
                print(f"console showed node {new} leading {elapsed:.2f} s after the kill")
                assert new in (leader, served)
                assert await trio.to_thread.run_sync(c.wait_leader) == new
                await b.wait_for(f"window.aspenConsole.events.some(e => e.kind === 'election'"
                                 f" && e.node === {new} && e.t >= Date.now() - 60000)", 10)
                assert await b.evaluate("window.aspenConsole.connected") is True
                await trio.sleep(3)  # a few more points after the failover, for the picture
                shot = tmp_path / "console.png"
                await b.screenshot(shot)
        assert writer.done > 0
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("ASPEN_CONSOLE_SCREENSHOT"):
        shutil.copy(shot, os.environ["ASPEN_CONSOLE_SCREENSHOT"])


async def test_console_adds_promotes_and_removes_a_member(tmp_path: Path) -> None:
    with DaemonCluster(3, tmp_path / "cluster", spares=1) as c:
        c.start_all()
        await trio.to_thread.run_sync(c.wait_leader)
        await trio.to_thread.run_sync(c.start, 4)  # empty: it waits to be added
        async with open_browser() as b:
            await b.navigate(f"http://{c.http(1)}/")
            # Node 4 is in [peers], so the page shows it, up but not a member.
            await b.wait_for(f"{_member(4)}?.member === 'not a member' && {_member(4)}.up",
                             20)
            # A cancelled dialog does nothing.
            await b.evaluate("document.getElementById('learner-id').value = '4';"
                             f"document.getElementById('learner-addr').value = "
                             f"'{c.raft_address(4)}';"
                             "document.getElementById('add-learner').requestSubmit()")
            await b.wait_for("document.getElementById('confirm').open", 5)
            await b.evaluate("document.getElementById('confirm-cancel').click()")
            await trio.sleep(2.5)
            assert await b.evaluate(f"{_member(4)}.member") == "not a member"
            await b.evaluate("document.getElementById('add-learner').requestSubmit()")
            await _confirm(b, f"Add node 4 at {c.raft_address(4)} as a learner?")
            await b.wait_for(f"{_member(4)}.member === 'learner'", 20)
            # A learner can be removed again (voters untouched), then added back.
            await _click(b, 4, "remove")
            await _confirm(b, "Remove learner 4 (voters stay 1, 2, 3)?")
            await b.wait_for(f"{_member(4)}.member === 'not a member'", 20)
            await b.evaluate("document.getElementById('add-learner').requestSubmit()")
            await _confirm(b, f"Add node 4 at {c.raft_address(4)} as a learner?")
            await b.wait_for(f"{_member(4)}.member === 'learner'", 20)
            await _click(b, 4, "promote")
            await _confirm(b, "voters become 1, 2, 3, 4")
            await b.wait_for(f"{_member(4)}.member === 'voter' && {_member(4)}.role", 20)
            await _click(b, 4, "remove")
            await _confirm(b, "voters become 1, 2, 3")
            await b.wait_for(f"{_member(4)}.member === 'not a member'", 20)
            kinds = await b.evaluate("window.aspenConsole.events.filter(e => e.kind === "
                                     "'membership').map(e => e.text)")
            added = (f"node 4 ({c.raft_address(4)}) added as a learner: "
                     "voters [1, 2, 3], learners [4]")
            assert kinds[0].startswith(added) and kinds[2].startswith(added)
            assert kinds[1] == "membership changed: voters [1, 2, 3], learners []"
            assert kinds[3:] == ["membership changed: voters [1, 2, 3, 4], learners []",
                                 "membership changed: voters [1, 2, 3], learners []"]
            assert "failed" not in await b.evaluate(
                "document.getElementById('action-result').textContent")


async def test_console_login_with_requirepass(tmp_path: Path) -> None:
    """The page loads without the password, asks for it, keeps it for the session and sends
    it as the Bearer header; a wrong one is refused."""
    config = parse_config({
        "node": {"port": 0, "dir": str(tmp_path / "d"), "requirepass": "s3cret"},
        "raft": {"tick_ms": 20}, "http": {"listen": "127.0.0.1:0"},
    })
    n = Node(config)
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: n.run(handle_signals=False,
                                                       task_status=task_status))
        async with open_browser() as b:
            await b.navigate(f"http://127.0.0.1:{n.http_port}/")
            await b.wait_for("!document.getElementById('login').hidden", 10)
            assert await b.evaluate("window.aspenConsole.members.length") == 0
            for password, expect in (("wrong", "wrong password"), ("s3cret", None)):
                await b.evaluate(f"document.getElementById('password').value = '{password}';"
                                 "document.getElementById('login-form').requestSubmit()")
                if expect:
                    await b.wait_for("document.getElementById('login-error').textContent"
                                     f" === '{expect}'", 10)
            await b.wait_for("window.aspenConsole.members.length === 1 && "
                             "window.aspenConsole.members[0].role === 'leader'", 15)
            assert await b.evaluate("sessionStorage.getItem('aspen.password')") == "s3cret"
            assert await b.evaluate("document.getElementById('login').hidden") is True
            # An action with the stored password: a snapshot of the node, confirmed.
            await _click(b, 1, "snapshot")
            await b.wait_for("document.getElementById('confirm').open", 5)
            await b.evaluate("document.getElementById('confirm-ok').click()")
            await b.wait_for("document.getElementById('action-result').textContent"
                             ".includes('/snapshot: done')", 10)
        n.server.shutdown()
