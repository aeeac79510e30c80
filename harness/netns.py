"""Test hosts in Linux network namespaces, and real network partitions between them.

    with Network(5) as net:                   # namespaces, a bridge, node i at net.host(i)
        net.isolate(1)                        # 1 <-/-> everyone else
        net.partition([1, 2], [3, 4, 5])      # a split
        net.cut(1, 2)                         # one link (both ways): a partial partition
        net.heal()

Layout: one namespace per node with a veth `eth0` whose other end is on a bridge in the root
namespace, so the test process (the clients) reaches every node whatever is cut; nodes reach
each other through that bridge. A cut is a host route inside the sending node's namespace
sending the peer's address into a dead-end veth (`void0`, ARP off, its peer down): packets
vanish silently, as on a real partition (no ICMP, no RST, connects hang), and the route cache
is invalidated at once, so established TCP connections stall too. A route per (sender,
receiver) expresses anything, one-way cuts included, with iproute2 alone: no iptables/nft
(often absent) and no netem (not permitted on these machines).

Names carry a slot number allocated under a file lock (`aspenN-nI`, bridge `aspbrN`), so
parallel runs do not clash; each slot's subnet is 10.213.N.0/24 (the bridge .254, node i .i),
reachable only on this machine. `close()` (also the context exit and an atexit hook) deletes
the namespaces and the bridge; a slot left behind by a killed run is reclaimed by the next run
once its owner process is gone.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable

__all__ = ["NetnsUnavailable", "Network", "unavailable_reason"]

_LOCK = "/tmp/aspen-netns.lock"
_SUBNET = "10.213"
_SLOTS = 250
_LIVE: set[Network] = set()


class NetnsUnavailable(RuntimeError):
    """Network namespaces cannot be used here (the message says why)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if check and proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip() or proc.returncode}")
    return proc


def unavailable_reason() -> str | None:
    """Why namespaces cannot be used on this machine, or None if they can (tried for real)."""
    if not sys.platform.startswith("linux"):
        return f"network namespaces need Linux (this is {sys.platform})"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    if os.geteuid() != 0:
        return "creating network namespaces needs root (CAP_NET_ADMIN)"
    probe = f"aspenprobe-{os.getpid()}"
    try:
        made = _ip("netns", "add", probe, check=False)
        if made.returncode != 0:
            return f"`ip netns add` is not permitted here: {made.stderr.strip()}"
        veth = _ip("-n", probe, "link", "add", "p0", "type", "veth", "peer", "name", "p1",
                   check=False)
        if veth.returncode != 0:
            return f"veth pairs are not available here: {veth.stderr.strip()}"
        return None
    finally:
        _ip("netns", "del", probe, check=False)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Network:
    """`n` test hosts (ids 1..n), each in its own namespace, all on one bridge."""

    def __init__(self, n: int) -> None:
        if not 1 <= n <= 200:
            raise ValueError("between 1 and 200 hosts")
        self.n = n
        self.slot = -1
        self.cuts: set[tuple[int, int]] = set()  # (from, to): from's packets to `to` vanish

    # -- names and addresses -------------------------------------------------------------------

    @property
    def ids(self) -> list[int]:
        return list(range(1, self.n + 1))

    def ns(self, i: int) -> str:
        return f"aspen{self.slot}-n{i}"

    @property
    def bridge(self) -> str:
        return f"aspbr{self.slot}"

    def _root_veth(self, i: int) -> str:
        return f"asp{self.slot}v{i}"

    def host(self, i: int) -> str:
        return f"{_SUBNET}.{self.slot}.{i}"

    def exec_prefix(self, i: int) -> list[str]:
        """Prefix an argv with this to run it inside host i's namespace."""
        return ["ip", "netns", "exec", self.ns(i)]

    # -- set-up and tear-down ------------------------------------------------------------------

    def __enter__(self) -> Network:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        reason = unavailable_reason()
        if reason is not None:
            raise NetnsUnavailable(reason)
        with open(_LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.slot = self._claim_slot()
        _LIVE.add(self)
        try:
            for i in self.ids:
                self._add_host(i)
        except BaseException:
            self.close()
            raise

    def _claim_slot(self) -> int:
        """The first slot whose bridge does not exist (or whose owner is dead: reclaimed);
        creating the bridge, tagged with our pid, claims it. Called under the file lock."""
        for slot in range(_SLOTS):
            bridge = f"aspbr{slot}"
            shown = _ip("-o", "link", "show", bridge, check=False)
            if shown.returncode == 0:
                owner = shown.stdout.split("alias aspen-pid-")[-1].split()[0] \
                    if "alias aspen-pid-" in shown.stdout else ""
                if owner.isdigit() and not _pid_alive(int(owner)):
                    _remove_slot(slot)
                else:
                    continue
            _ip("link", "add", bridge, "type", "bridge")
            _ip("link", "set", bridge, "alias", f"aspen-pid-{os.getpid()}")
            _ip("addr", "add", f"{_SUBNET}.{slot}.254/24", "dev", bridge)
            _ip("link", "set", bridge, "up")
            return slot
        raise NetnsUnavailable(f"all {_SLOTS} namespace slots are in use")

    def _add_host(self, i: int) -> None:
        ns, root = self.ns(i), self._root_veth(i)
        _ip("netns", "add", ns)
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("link", "add", root, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _ip("link", "set", root, "master", self.bridge, "up")
        _ip("-n", ns, "addr", "add", f"{self.host(i)}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        # the dead end that cut links are routed into (its peer stays down: nothing arrives)
        _ip("-n", ns, "link", "add", "void0", "type", "veth", "peer", "name", "void1")
        _ip("-n", ns, "link", "set", "void0", "arp", "off", "up")

    def close(self) -> None:
        if self.slot >= 0:
            _remove_slot(self.slot)
            self.slot = -1
        _LIVE.discard(self)

    # -- faults --------------------------------------------------------------------------------

    def cut_oneway(self, src: int, dst: int) -> None:
        """`src`'s packets to `dst` vanish (dst -> src still flows)."""
        if (src, dst) not in self.cuts:
            _ip("-n", self.ns(src), "route", "replace", f"{self.host(dst)}/32", "dev", "void0")
            self.cuts.add((src, dst))

    def cut(self, a: int, b: int) -> None:
        """No packet between `a` and `b`, either way."""
        self.cut_oneway(a, b)
        self.cut_oneway(b, a)

    def partition(self, *groups: Iterable[int]) -> None:
        """Hosts in different groups cannot reach each other (hosts in no group: untouched)."""
        sets = [set(g) for g in groups]
        for x, gx in enumerate(sets):
            for gy in sets[x + 1:]:
                for a in gx:
                    for b in gy:
                        self.cut(a, b)

    def isolate(self, i: int) -> None:
        self.partition([i], [j for j in self.ids if j != i])

    def heal(self) -> None:
        for src, dst in sorted(self.cuts):
            _ip("-n", self.ns(src), "route", "del", f"{self.host(dst)}/32", "dev", "void0",
                check=False)
        self.cuts.clear()

    def reachable(self, src: int, dst: int) -> bool:
        return (src, dst) not in self.cuts


def _remove_slot(slot: int) -> None:
    # the root ends of the veths first: deleting one deletes its pair at once, where a
    # deleted namespace's veths go away asynchronously (and would clash with the next user)
    for line in _ip("-o", "link", "show", check=False).stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if name.startswith(f"asp{slot}v"):
            _ip("link", "del", name, check=False)
    for ns in _ip("netns", "list", check=False).stdout.split("\n"):
        name = ns.split(" ")[0]
        if name.startswith(f"aspen{slot}-n"):
            _ip("netns", "del", name, check=False)
    _ip("link", "del", f"aspbr{slot}", check=False)


def _close_all() -> None:
    for net in list(_LIVE):
        with contextlib.suppress(Exception):
            net.close()


atexit.register(_close_all)
