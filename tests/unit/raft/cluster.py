"""A tiny in-test network for RaftCore: durable 'disks', message queues, cuts and restarts.

Deliberately simple and synchronous: `settle()` delivers messages until none are left.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

import attrs

from aspen.raft import (
    Entry,
    EntryKind,
    HardState,
    LostLog,
    Membership,
    Message,
    RaftConfig,
    RaftCore,
    ReadState,
    Role,
    SnapshotMeta,
    decode_message,
    encode_message,
)

CoreFactory = Callable[..., RaftCore]


@attrs.define
class Disk:
    """What survives a crash: exactly what ready() asked to persist, once advanced."""

    hard_state: HardState = attrs.Factory(HardState)
    entries: list[Entry] = attrs.Factory(list)
    snapshot: tuple[SnapshotMeta, bytes] | None = None
    reads: int = 0  # calls of read(): the core read released entries back

    def append(self, entries: list[Entry]) -> None:
        if not entries:
            return
        first = entries[0].index
        while self.entries and self.entries[-1].index >= first:
            self.entries.pop()
        self.entries.extend(entries)

    def read(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        """Entries [lo, hi): only what is durable here (a released entry must be)."""
        self.reads += 1
        first = self.entries[0].index if self.entries else 1
        assert self.entries and first <= lo <= hi <= self.entries[-1].index + 1, (lo, hi)
        out = self.entries[lo - first : hi - first]
        size = 0
        for n, e in enumerate(out):
            size += len(e.data)
            if n and max_bytes is not None and size > max_bytes:
                return out[:n]
        return out

    def install(self, meta: SnapshotMeta, data: bytes) -> None:
        self.snapshot = (meta, data)
        self.entries = []

    def compact(self, meta: SnapshotMeta, data: bytes) -> None:
        self.snapshot = (meta, data)
        self.entries = [e for e in self.entries if e.index > meta.index]


class Cluster:
    def __init__(
        self,
        ids: Iterable[int],
        *,
        config: RaftConfig | None = None,
        seed: int = 0,
        bootstrap: bool = True,
        voters: Iterable[int] | None = None,
        factory: CoreFactory = RaftCore,
        wire: bool = True,
        amnesia: bool = False,
    ) -> None:
        """`amnesia=False` starts the (empty) cores as known-new nodes, without the vote-amnesia
        rule of an empty start (`RaftCore._withholding_votes`); tests of that rule pass True.
        A wiped node (`wipe`) always follows the rule."""
        self.config = config or RaftConfig(election_tick=10, heartbeat_tick=1)
        self.seed = seed
        self.factory = factory
        self.wire = wire  # round-trip every message through the codec
        self.ids = sorted(ids)
        self.disks: dict[int, Disk] = {i: Disk() for i in self.ids}
        self.cores: dict[int, RaftCore] = {}
        self.applied: dict[int, list[Entry]] = {i: [] for i in self.ids}
        self.sm_base: dict[int, bytes] = {i: b"" for i in self.ids}  # state restored from snapshot
        self.reads: dict[int, list[ReadState]] = {i: [] for i in self.ids}
        self.queue: list[Message] = []
        self.cut: set[tuple[int, int]] = set()
        self.down: set[int] = set()
        self.sent: list[Message] = []  # everything that was put on the wire
        self.filter: Callable[[Message], bool] | None = None  # return False to drop
        self.transform: Callable[[Message], Message] | None = None  # rewrite in flight
        self.amnesia = amnesia
        self.lost_logs: list[tuple[int, LostLog]] = []  # (reporting leader, notice)
        self.lives: dict[int, int] = {i: 1 for i in self.ids}  # incarnation of each node
        for i in self.ids:
            self.cores[i] = self._fresh(i, random.Random(seed * 1000 + i))
        if bootstrap:
            members = Membership(voters=frozenset(voters if voters is not None else self.ids))
            for i in members.voters:
                self.cores[i].bootstrap(members)
            self.process_all()

    # -- plumbing -----------------------------------------------------------------------------

    def add_node(self, node_id: int) -> RaftCore:
        if node_id in self.cores:
            return self.cores[node_id]
        self.ids.append(node_id)
        self.disks[node_id] = Disk()
        self.applied[node_id] = []
        self.sm_base[node_id] = b""
        self.reads[node_id] = []
        self.lives[node_id] = 1
        core = self._fresh(node_id, random.Random(self.seed * 1000 + node_id))
        self.cores[node_id] = core
        return core

    def _fresh(self, i: int, rng: random.Random) -> RaftCore:
        core = self.factory(
            i, self.config, rng, reader=_Reader(self, i), incarnation=self.lives[i]
        )
        if not self.amnesia:
            core._started_empty = core._amnesia = False
        return core

    def process(self, i: int) -> None:
        core = self.cores[i]
        disk = self.disks[i]
        while core.has_ready():
            rd = core.ready()
            self._send(rd.messages)
            if rd.snapshot is not None:
                disk.install(*rd.snapshot)
                self.applied[i] = []
                self.sm_base[i] = rd.snapshot[1]
            disk.append(rd.entries)
            if rd.hard_state is not None:
                disk.hard_state = rd.hard_state
            self._send(rd.persisted_messages)
            self.applied[i].extend(rd.committed)
            self.reads[i].extend(rd.read_states)
            self.lost_logs.extend((i, n) for n in rd.lost_logs)
            core.advance(rd)

    def process_all(self) -> None:
        for i in self.ids:
            if i not in self.down:
                self.process(i)

    def _send(self, msgs: list[Message]) -> None:
        for m in msgs:
            self.sent.append(m)
            if self.wire:
                m = decode_message(encode_message(m))
            self.queue.append(m)

    def deliver_one(self) -> bool:
        while self.queue:
            m = self.queue.pop(0)
            if (m.src, m.dst) in self.cut or m.dst in self.down or m.src in self.down:
                continue
            if m.dst not in self.cores:
                continue
            if self.filter is not None and not self.filter(m):
                continue
            if self.transform is not None:
                m = self.transform(m)
            self.cores[m.dst].step(m)
            self.process(m.dst)
            return True
        return False

    def settle(self, limit: int = 100_000) -> None:
        self.process_all()
        for _ in range(limit):
            if not self.deliver_one():
                return
        raise AssertionError("network did not settle")

    def tick(self, ids: Iterable[int] | None = None, n: int = 1) -> None:
        for _ in range(n):
            for i in ids if ids is not None else self.ids:
                if i not in self.down:
                    self.cores[i].tick()
            self.settle()

    # -- scenarios ----------------------------------------------------------------------------

    def campaign(self, i: int) -> None:
        """Node i's election timer fires now (as if it ticked to its timeout); settle."""
        core = self.cores[i]
        core._campaign(pre=self.config.pre_vote)
        self.settle()

    def forget_leader(self, ids: Iterable[int]) -> None:
        """As if an election timeout passed without a heartbeat on these nodes (so they will
        consider vote requests again), without ticking them into their own campaign. Nodes
        that started empty are taken past their vote-amnesia window too."""
        for j in ids:
            self.cores[j]._election_elapsed = self.config.election_tick
            self.cores[j]._restart_lease = False
            self.cores[j]._amnesia = False

    def elect(self, i: int, attempts: int = 5) -> RaftCore:
        for _ in range(attempts):
            self.forget_leader(j for j in self.ids if j != i)
            self.campaign(i)
            if self.cores[i].role is Role.LEADER:
                break
        assert self.cores[i].role is Role.LEADER, self.cores[i].role
        return self.cores[i]

    def leader(self) -> RaftCore | None:
        leaders = [c for i, c in self.cores.items() if c.role is Role.LEADER and i not in self.down]
        return max(leaders, key=lambda c: c.term) if leaders else None

    def isolate(self, i: int) -> None:
        for j in self.ids:
            if j != i:
                self.cut.add((i, j))
                self.cut.add((j, i))

    def heal(self) -> None:
        self.cut.clear()

    def crash(self, i: int) -> None:
        self.down.add(i)

    def restart(self, i: int) -> RaftCore:
        """Rebuild node i from its disk only (whatever was not advanced is lost)."""
        self.down.discard(i)
        disk = self.disks[i]
        snap = disk.snapshot
        self.lives[i] += 1
        core = self.factory(
            i,
            self.config,
            random.Random(self.seed * 1000 + i + 7),
            hard_state=disk.hard_state,
            snapshot=snap[0] if snap else None,
            snapshot_data=snap[1] if snap else None,
            entries=list(disk.entries),
            reader=_Reader(self, i),
            incarnation=self.lives[i],
        )
        self.cores[i] = core
        self.applied[i] = []
        self.sm_base[i] = snap[1] if snap else b""
        self.process(i)
        return core

    def wipe(self, i: int) -> RaftCore:
        """Node i restarts with an empty data dir (its disk is lost; a new incarnation)."""
        self.disks[i] = Disk()
        return self.restart(i)

    def propose(self, data: bytes) -> int:
        leader = self.leader()
        assert leader is not None
        index = leader.propose(data)
        self.settle()
        return index

    def applied_data(self, i: int) -> list[bytes]:
        return [e.data for e in self.applied[i] if e.kind is EntryKind.NORMAL]


class _Reader:
    """Node i's LogReader: reads its current disk (disks may be swapped by a test)."""

    def __init__(self, cluster: Cluster, node: int) -> None:
        self._cluster, self._node = cluster, node

    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        return self._cluster.disks[self._node].read(lo, hi, max_bytes)
