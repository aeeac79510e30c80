"""Real network partitions between `aspen node` daemons, each in its own network namespace
(harness.netns, harness.faults): the bounded CI version of `python -m harness.faults`."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.faults import run_campaign
from harness.netns import Network, unavailable_reason

_REASON = unavailable_reason()
pytestmark = pytest.mark.skipif(
    _REASON is not None, reason=f"network namespaces unavailable: {_REASON}"
)

_LISTEN = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 7777)); s.listen(16); print("up", flush=True)
while True:
    c, _ = s.accept(); c.sendall(b"hi"); c.close()
"""
_CONNECT = """
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], 7777), timeout=1.0); print(s.recv(2).decode())
except TimeoutError: print("timeout")
except OSError as e: print(type(e).__name__)
"""


def _connect(net: Network, src: int, dst: int) -> str:
    out = subprocess.run([*net.exec_prefix(src), sys.executable, "-c", _CONNECT, net.host(dst)],
                         capture_output=True, text=True, timeout=20)
    return out.stdout.strip()


def _names(slot: int) -> tuple[list[str], str]:
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return [n for n in ns.split() if n.startswith(f"aspen{slot}-")], \
        links if f"aspbr{slot}:" in links else ""


def test_cuts_drop_packets_silently_one_way_or_both_and_heal() -> None:
    with Network(3) as net:
        slot = net.slot
        assert _names(slot)[0]
        servers = [subprocess.Popen([*net.exec_prefix(i), sys.executable, "-c", _LISTEN,
                                     net.host(i)], stdout=subprocess.PIPE, text=True)
                   for i in (2, 3)]
        try:
            for s in servers:
                assert s.stdout is not None and s.stdout.readline().strip() == "up"
            assert _connect(net, 1, 2) == "hi"
            net.cut(1, 2)  # silent: a timeout, not a refusal
            assert _connect(net, 1, 2) == "timeout" and _connect(net, 1, 3) == "hi"
            net.heal()
            assert _connect(net, 1, 2) == "hi"
            net.cut_oneway(2, 1)  # 1 -> 2 goes out, the answer never comes back
            assert _connect(net, 1, 2) == "timeout" and _connect(net, 3, 2) == "hi"
            net.heal()
            net.partition([1], [2, 3])
            assert _connect(net, 1, 3) == "timeout" and _connect(net, 3, 2) == "hi"
            net.heal()
            assert _connect(net, 1, 3) == "hi"
        finally:
            for s in servers:
                s.kill()
                s.wait(5)
    names, bridge = _names(slot)
    assert names == [] and bridge == ""  # nothing left behind


def test_partition_campaign_is_linearizable_loses_nothing_and_elects(tmp_path: Path) -> None:
    """Each fault once on 5 daemons (leader isolated, follower isolated, 2/3 split with the
    leader on the 2 side, partial partition) under clients on both sides of every cut."""
    lines: list[str] = []
    started = time.monotonic()
    with Network(5) as net:
        campaign = run_campaign(tmp_path, net, nodes=5, rounds=1, hold=3.0, settle=1.0,
                                seed=7, log=lines.append)
    print(campaign.report())
    print(f"campaign took {time.monotonic() - started:.1f} s")
    assert campaign.check.ok, campaign.check.explain()
    assert not any(campaign.lost.values()), campaign.lost
    assert not campaign.invented and not campaign.diverged
    assert campaign.acked_adds >= 100 and campaign.history_ops >= 500
    by_kind = {r.kind: r for r in campaign.results}
    assert set(by_kind) == {"leader", "follower", "split", "partial"}
    for kind in ("leader", "split"):  # the leader was cut off: the majority elects another
        r = by_kind[kind]
        assert r.time_to_leader is not None and r.leader_after != r.old_leader, r.line()
    for kind in ("follower", "partial"):  # the leader keeps a majority: it stays
        r = by_kind[kind]
        assert r.time_to_leader is None and r.leader_after == r.old_leader, r.line()
    for r in campaign.results:  # the majority side kept accepting writes through every fault
        assert r.acked["majority"] > 0, r.line()
