"""ClusterNode: one replicated Redis node — Raft core + storage + transport + keyspace.

One driver task owns the RaftCore. Each pass it drains everything pending (Raft messages,
ticks, client writes, read requests), then handles one `ready()` in the order ready.py
documents: send `messages` at once, install a snapshot, persist entries + hard state (one
fsync, in a worker thread, while the AppendEntries already travel), send
`persisted_messages`, apply `committed` in order, wake waiters, serve read states, maybe
snapshot. All client writes of one pass become ONE log entry (a batch): one fsync, one
AppendEntries per peer.

Writes from any node: the leader puts them straight into its next batch; a follower forwards
them (CLIENT_REQUEST) and learns the outcome by applying the entry that holds its request id
(apply is deterministic, so no reply message is needed). Unknown outcomes are retried with the
same request id; the replicated dedup table (state.py) applies each id at most once.

Reads: linearizable (ReadIndex; the reads of one pass share one read_index call, so one
heartbeat round), lease (the leader serves locally while a lease confirmed by a quorum holds;
followers forward to the leader), stale (local at once).
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import logging
import math
import random
import time
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import trio

from aspen.cluster import entry as entry_codec
from aspen.cluster import forward, replies
from aspen.cluster.blocking import BlockingService
from aspen.cluster.connection import ClusterConnection
from aspen.cluster.diskthread import DiskThread
from aspen.cluster.entry import ExpireItem, Item, OpItem, PeerItem, RequestId
from aspen.cluster.errors import (
    CLUSTERDOWN,
    WRITE_OUTCOME_UNKNOWN,
    AlreadyInitialized,
    ClusterTimeout,
    NotLeaderError,
)
from aspen.cluster.requests import ReadIndexWaiter, WriteRequest
from aspen.cluster.settings import ClusterSettings, ReadConsistency
from aspen.cluster.state import ReplicatedState
from aspen.kv.keyspace import Keyspace
from aspen.kv.ops import OpDecodeError, ReadOp, TxnOp, WriteOp, normalised
from aspen.kv.ops import decode as decode_op
from aspen.kv.session import Session
from aspen.raft import (
    Entry,
    EntryKind,
    HardState,
    Membership,
    Message,
    NotLeader,
    ProposalDropped,
    RaftConfig,
    RaftCore,
    RaftDecodeError,
    Ready,
    Role,
    decode_message,
    encode_message,
)
from aspen.resp.values import Error
from aspen.storage import MemoryStorage, Storage, open_storage
from transports import MemoryHub, MessageKind, TransportConfig, open_transport
from transports.base import TransportBase
from transports.config import split_address

log = logging.getLogger("aspen.cluster")

__all__ = ["ClusterNode", "NodeStats"]


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


FSYNC_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, math.inf)
"""Upper bounds (seconds) of the persist-latency histogram buckets."""


@attrs.define
class NodeStats:
    """Counters for metrics and benchmarks (the control plane exports them)."""

    entries_proposed: int = 0
    ops_proposed: int = 0
    max_batch: int = 0
    writes_forwarded: int = 0
    writes_retried: int = 0
    cut_offs: int = 0  # times this node found itself without a leader for too long
    duplicates_suppressed: int = 0
    read_index_calls: int = 0
    reads_served: int = 0
    lease_reads: int = 0
    fsyncs: int = 0
    fsync_seconds: float = 0.0
    snapshots_taken: int = 0
    snapshots_installed: int = 0
    follower_logs_lost: int = 0  # (leader) a follower came back without its acknowledged log
    batch_sizes: dict[int, int] = attrs.Factory(dict)  # ops per entry -> count (power-of-2 bins)
    fsync_buckets: list[int] = attrs.Factory(lambda: [0] * len(FSYNC_BUCKETS))
    """Counts of persist calls by duration: fsync_buckets[i] counts those <= FSYNC_BUCKETS[i]
    (not cumulative; the last bucket is +Inf)."""

    def note_fsync(self, seconds: float) -> None:
        self.fsyncs += 1
        self.fsync_seconds += seconds
        self.fsync_buckets[bisect.bisect_left(FSYNC_BUCKETS, seconds)] += 1

    def note_batch(self, n: int) -> None:
        self.entries_proposed += 1
        self.ops_proposed += n
        self.max_batch = max(self.max_batch, n)
        b = 1 << max(n - 1, 0).bit_length()
        self.batch_sizes[b] = self.batch_sizes.get(b, 0) + 1


class ClusterNode:
    """One node of a replicated Aspen cluster (a standalone node is a one-node group).

    Construct from `ClusterSettings`; `await nursery.start(node.run)` starts everything and
    returns once the node is up. `hub` is needed for the memory transport; `storage` lets a
    harness keep a store across restarts; `clock_ms` is the wall clock entries are stamped
    with (tests pass trio's clock); `incarnation` makes request ids unique across restarts.
    """

    def __init__(
        self,
        settings: ClusterSettings,
        *,
        hub: MemoryHub | None = None,
        storage: Storage | None = None,
        clock_ms: Callable[[], int] = wall_clock_ms,
        rng: random.Random | None = None,
        incarnation: int | None = None,
    ) -> None:
        self.settings = settings
        self.id = settings.node_id
        self._hub = hub
        self._given_storage = storage
        self._clock_ms = clock_ms
        self._rng = rng if rng is not None else random.Random()
        self.incarnation = (
            incarnation if incarnation is not None else time.time_ns() // 1000 & (2**62 - 1)
        )
        self.raft_config = RaftConfig(
            election_tick=settings.election_ticks,
            heartbeat_tick=settings.heartbeat_ticks,
            max_inflight=settings.max_inflight,
            snapshot_chunk_size=settings.snapshot_chunk_size,
            log_window_entries=settings.log_window_entries,
            log_window_bytes=settings.log_window_bytes,
        )
        self._origin = (self.id, self.incarnation)  # our writes' (origin, incarnation)
        self.stats = NodeStats()
        self.state = ReplicatedState()
        self.core: RaftCore | None = None
        self.storage: Storage | None = None
        self.transport: TransportBase | None = None
        self._nursery: trio.Nursery | None = None
        self._running = trio.Event()

        # driver inputs
        self._wakeup = trio.Event()
        self._inbox: list[Message] = []
        self._pending_ticks = 0
        self._batch: list[Item] = []
        self._batch_has_expire = False
        self._to_submit: list[WriteRequest] = []
        self._rescan = False
        self._outbox: list[tuple[int, MessageKind, bytes]] = []
        self._read_queue: list[ReadIndexWaiter] = []
        # PUBSUB envelopes go here (aspen.pubsub.mesh sets it); dropped while it is None
        self.pubsub_sink: Callable[[int, bytes], None] | None = None

        # waiters
        self._writes: dict[int, WriteRequest] = {}
        self._seq = 0
        self._read_tokens: dict[bytes, tuple[list[ReadIndexWaiter], float, int]] = {}
        self._token_seq = itertools.count(1)
        self._applied_waiters: list[tuple[int, int, trio.Event]] = []
        self._applied_seq = itertools.count()
        self._forwarded_reads: dict[bytes, tuple[trio.Event, list[object]]] = {}
        self._read_seed = 0
        self._lease_until = -math.inf
        self._lease_term = -1
        self._last_proposed_ms = 0
        self._snap_index = 0  # the latest snapshot taken (compacted in the core)
        self._snap_saved_index = 0  # the latest snapshot on disk: what /status reports
        self._bytes_since_snap = 0
        self._entries_since_snap = 0
        self._inline_disk = False
        self.blocking = BlockingService(self)  # clients parked in BLPOP & co.
        self._disk_thread = DiskThread(f"aspen-disk-{self.id}")
        self._proposed: dict[int, tuple[bytes, entry_codec.Batch]] = {}  # index -> (data, batch)
        self._fast_reads = settings.request_timeout > settings.election_timeout
        self._durable_hs = HardState()  # the hard state storage holds
        self._lazy_hs: HardState | None = None  # a newer commit index not yet written
        # Fail fast when cut off: no leader known for `_cutoff_after` (trio time) means this
        # node is on the wrong side of a partition, not in an election (which takes one
        # randomised election timeout, rarely two); commands then get CLUSTERDOWN at once.
        self._leaderless_since: float | None = None
        self._cutoff_after = 2 * settings.election_timeout
        self.cut_off = False
        self._tick_credit = 0  # ticks a follower skips after a long apply (`_apply_timed`)
        self._apply_clock: Callable[[], float] = trio.current_time  # (MockClock: no credit)

    # =========================================================================================
    # lifecycle
    # =========================================================================================

    async def run(
        self, *, task_status: trio.TaskStatus[ClusterNode] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Open storage and transport, restore state, and run every task until cancelled."""
        s = self.settings
        storage = self._given_storage
        owned = storage is None
        if storage is None:
            if s.data_dir is None or s.storage_backend == "memory":
                storage = open_storage(None, "memory")
            else:
                data_dir, backend = s.data_dir, s.storage_backend
                storage = await trio.to_thread.run_sync(lambda: open_storage(data_dir, backend))
        self.storage = storage
        self._inline_disk = isinstance(storage, MemoryStorage)
        try:
            await self._restore(storage)
            peers = {n: a for n, a in s.peers.items() if n != self.id}
            for n, a in self.state.peers.items():
                if n != self.id and _valid_address(a):
                    peers.setdefault(n, a)
            if s.curve is not None:  # a peer without a known public key cannot be admitted
                peers = {n: a for n, a in peers.items() if n in s.curve.peer_keys}
            tconf = TransportConfig(
                node_id=self.id,
                cluster_id=s.cluster_id,
                bind=s.raft_address,
                peers=peers,
                curve=s.curve,
                tls_server=s.tls_server,
                tls_client=s.tls_client,
            )
            async with open_transport(s.transport, tconf, hub=self._hub) as transport:
                self.transport = transport
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    nursery.start_soon(self._driver)
                    nursery.start_soon(self._receiver)
                    nursery.start_soon(self._ticker)
                    nursery.start_soon(self._expiry_loop)
                    nursery.start_soon(self._write_deadlines)
                    self._running.set()
                    task_status.started(self)
        finally:
            self._nursery = None
            self.transport = None
            for w in list(self._writes.values()):  # no deadline task any more: release them
                w.settle()
            for waiter in self._read_queue:
                waiter.event.set()  # index None: the reader's bounded retry loop takes over
            for waiters, _, _ in self._read_tokens.values():
                for waiter in waiters:
                    waiter.event.set()
            self._read_queue, self._read_tokens = [], {}
            if owned:
                with trio.CancelScope(shield=True):  # a crash-stop must still free the dir lock
                    await self._disk(storage.close)
            self._disk_thread.close()

    async def _restore(self, storage: Storage) -> None:
        restored = await self._disk(storage.load)
        self._durable_hs = restored.hard_state
        snap = await self._disk(storage.load_snapshot)
        snap_data = None
        if snap is not None:
            meta, snap_data = snap
            self.state = ReplicatedState.restore(snap_data)
            self._snap_index = self._snap_saved_index = meta.index
        self.core = RaftCore(
            self.id,
            self.raft_config,
            self._rng,
            hard_state=restored.hard_state,
            snapshot=restored.snapshot,
            entries=restored.entries,
            snapshot_data=snap_data,
            reader=storage,  # entries released from the core's in-memory tail
            incarnation=self.incarnation,  # start time in microseconds: grows across restarts
        )
        voters = self.settings.bootstrap_voters
        if voters and self.core.last_index == 0 and self.core.term == 0:
            self.core.bootstrap(Membership(voters=frozenset(voters)))
            self._kick()
        self._campaign_if_alone()

    def _campaign_if_alone(self) -> None:
        """The only voter need not wait an election timeout: fast-forward its logical clock
        (timing never affects Raft's safety, and nobody else can be elected)."""
        core = self._core
        if core.membership.voters == {self.id} and core.role is not Role.LEADER:
            for _ in range(2 * self.settings.election_ticks):
                core.tick()
                if core.leader_id == self.id:
                    break
            self._kick()

    async def _disk(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Blocking storage work: inline for the memory backend, else in a worker thread."""
        if self._inline_disk:
            return fn(*args)
        return await self._disk_thread.run(fn, *args)

    def _kick(self) -> None:
        self._wakeup.set()

    # =========================================================================================
    # the driver
    # =========================================================================================

    async def _driver(self) -> None:
        core = self._core
        while True:
            await self._wakeup.wait()
            # One scheduler round before draining lets every task that is runnable now (clients,
            # the receiver) add its work: bigger batches for the price of one checkpoint.
            await trio.lowlevel.checkpoint()
            self._wakeup = trio.Event()
            self._drain()
            await self._flush_outbox()
            while core.has_ready():
                await self._handle_ready(core.ready())
                self._drain()
                await self._flush_outbox()

    @property
    def _core(self) -> RaftCore:
        assert self.core is not None, "the node is not running"
        return self.core

    def _drain(self) -> None:
        core = self._core
        # Ticks first: they were counted before now, so a message waiting in the inbox is
        # treated as the newest event. The other order would let ticks that piled up during a
        # stall count AFTER a leader's heartbeat and shorten the time this follower refuses
        # votes — which the leader's read lease relies on.
        ticks, self._pending_ticks = self._pending_ticks, 0
        if self._tick_credit and ticks:
            used = min(ticks, self._tick_credit)
            ticks -= used
            self._tick_credit -= used
        for _ in range(ticks):
            core.tick()
        if ticks:
            self._rescan = True
        msgs, self._inbox = self._inbox, []
        for msg in msgs:
            core.step(msg)
        self._note_leader()
        self._submit_writes()
        self._propose_batch()
        self._request_read_index()

    def _note_leader(self) -> None:
        """Track how long no leader has been known; past `_cutoff_after` the node is cut off:
        every write still waiting settles now (TIMEOUT if it was sent to a leader, else
        CLUSTERDOWN), instead of at its request deadline."""
        if self._core.leader_id is not None:
            self._leaderless_since = None
            self.cut_off = False
            return
        now = trio.current_time()
        if self._leaderless_since is None:
            self._leaderless_since = now
        if not self.cut_off and now - self._leaderless_since >= self._cutoff_after:
            self.cut_off = True
            self.stats.cut_offs += 1
            for w in list(self._writes.values()):
                if not w.done:
                    w.settle()

    def _submit_writes(self) -> None:
        core = self._core
        todo, self._to_submit = self._to_submit, []
        if self.cut_off:  # answered at once: nothing was sent, nothing is applied
            for w in todo:
                if not w.submitted:
                    w.settle()
            todo = [w for w in todo if w.submitted]
        if self._rescan:
            self._rescan = False
            now = trio.current_time()
            retry_after = self.settings.election_timeout
            queued = {id(w) for w in todo}
            for w in self._writes.values():
                if w.done or id(w) in queued or (w.settled and not w.submitted):
                    continue  # (answered CLUSTERDOWN, "nothing applied": must stay unsent)
                if not w.submitted:
                    todo.append(w)
                elif core.role is Role.LEADER:
                    if w.leader != self.id or w.term != core.term:
                        todo.append(w)
                        self.stats.writes_retried += 1
                elif w.leader != core.leader_id or now - w.sent_at >= retry_after:
                    todo.append(w)
                    self.stats.writes_retried += 1
        if not todo:
            return
        leader = core.leader_id
        floor = self._floor()
        if core.role is Role.LEADER:
            for w in todo:
                self._batch.append(OpItem(w.rid, floor, w.op))
                w.submitted, w.leader, w.term = True, self.id, core.term
        elif leader is not None and leader != self.id:
            now = trio.current_time()
            for w in todo:
                w.submitted, w.leader, w.term, w.sent_at = True, leader, core.term, now
            self.stats.writes_forwarded += len(todo)
            step = self.settings.max_batch_items
            for lo in range(0, len(todo), step):
                msg = forward.ForwardWrites(
                    floor, tuple((w.rid, w.encoded()) for w in todo[lo : lo + step])
                )
                self._outbox.append((leader, MessageKind.CLIENT_REQUEST, forward.encode(msg)))
        # else: no leader known; the rescan after the next tick / leader change picks them up

    def _floor(self) -> int:
        for seq in self._writes:
            return seq  # insertion order == seq order: the first key is the oldest pending
        return self._seq + 1

    def _propose_batch(self) -> None:
        core = self._core
        if not self._batch:
            return
        if core.role is not Role.LEADER:
            self._batch = []  # forwarded items are retried by their origins, ours by rescan
            self._batch_has_expire = False
            return
        s = self.settings
        items = self._batch
        start = 0
        while start < len(items):
            end, size = start, 0
            while end < len(items) and end - start < s.max_batch_items:
                item = items[end]
                size += _op_size(item.op) if type(item) is OpItem else 32
                end += 1
                if size >= s.max_batch_bytes:
                    break
            chunk = items[start:end]
            now = max(self._clock_ms(), self._last_proposed_ms, self.state.last_time_ms)
            data = entry_codec.encode_items(now, chunk)
            try:
                index = core.propose(data)
            except ProposalDropped:
                break  # a transfer is in progress: keep the rest for a later pass
            except NotLeader:
                start = len(items)
                break
            self._last_proposed_ms = now
            self._proposed[index] = (data, entry_codec.Batch(now, tuple(chunk)))
            n_ops = sum(1 for i in chunk if type(i) is OpItem)
            self.stats.note_batch(n_ops)
            start = end
        self._batch = items[start:]
        self._batch_has_expire = any(type(i) is ExpireItem for i in self._batch)

    def _request_read_index(self) -> None:
        if not self._read_queue:
            return
        waiters, self._read_queue = self._read_queue, []
        token = b"%d.%d.%d" % (self.id, self.incarnation, next(self._token_seq))
        self._read_tokens[token] = (waiters, trio.current_time(), self._core.term)
        self.stats.read_index_calls += 1
        self._core.read_index(token)

    async def _handle_ready(self, rd: Ready) -> None:
        core, storage = self._core, self.storage
        assert storage is not None
        if rd.soft_state is not None:
            self._on_soft_state()
        for lost in rd.lost_logs:
            self.stats.follower_logs_lost += 1
            log.warning(
                "node %d: follower %d restarted WITHOUT ITS LOG (data dir wiped or lost): it had "
                "acknowledged entries up to %d, it now holds at most %d; catching it up "
                "(until then the cluster has one copy fewer of those entries)",
                self.id, lost.peer, lost.acked, lost.has,
            )
        await self._send_raft(rd.messages)
        if rd.snapshot is not None:
            await self._install_snapshot(*rd.snapshot)
        # Committed entries that are already durable here (all of them on a leader: it
        # counts itself in a quorum only once its own copy is stored) are applied BEFORE this
        # Ready's fsync, so their replies do not wait for the disk write of the next batch.
        committed, later = rd.committed, []
        if rd.entries and committed and committed[-1].index >= rd.entries[0].index:
            first_unstable = rd.entries[0].index
            cut = next(i for i, e in enumerate(committed) if e.index >= first_unstable)
            committed, later = committed[:cut], committed[cut:]
        self._apply_timed(committed)
        self._serve_read_states(rd)
        self._wake_applied()
        self.blocking.after_apply()
        await self._persist(storage, rd)
        await self._send_raft(rd.persisted_messages)
        if later:
            self._apply_timed(later)
            self._wake_applied()
            self.blocking.after_apply()
        core.advance(rd)
        await self._maybe_snapshot()

    async def _persist(self, storage: Storage, rd: Ready) -> None:
        """Write `rd.entries` and the hard state with one fsync, or not at all.

        A hard state that differs from the durable one only by its commit index is not worth
        an fsync of its own (the commit index is volatile state in Raft: a restarted node
        learns it again, and the core clamps it to the log). It is written with the next
        batch of entries instead, or with the next term/vote change.
        """
        hs = rd.hard_state
        if hs is not None:
            durable = self._durable_hs
            if not rd.entries and hs.term == durable.term and hs.vote == durable.vote:
                self._lazy_hs = hs
                return
        elif not rd.entries:
            return
        else:
            hs = self._lazy_hs
        started = time.perf_counter()
        if self._append_inline():
            storage.append(rd.entries, hs)
        else:
            await self._disk(storage.append, rd.entries, hs)
        self.stats.note_fsync(time.perf_counter() - started)
        if hs is not None:
            self._durable_hs = hs
            self._lazy_hs = None

    def _append_inline(self) -> bool:
        """Append (and fsync) in the driver itself, the event loop blocked meanwhile?

        Yes on a follower with no client request of its own in flight: it has nothing else
        to do until the entries are durable (its answer to the leader waits for them), and a
        hand-off to the disk thread costs two thread wake-ups per entry, about a tenth of a
        follower's CPU per request at -P 1 (docs/benchmarks.md, "Round 4"). A leader, or a
        follower whose clients wait on a write or a read, keeps its event loop free during
        the fsync: client requests are read and batched meanwhile. Ticks that pile up while
        blocked are handled before the next message (`_drain`), as after any stall.
        """
        return (
            self._core.role is not Role.LEADER
            and not self._writes
            and not self._read_tokens
            and not self._forwarded_reads
            and not self._applied_waiters
        )

    async def _send_raft(self, messages: list[Message]) -> None:
        transport = self.transport
        if transport is None:
            return
        for msg in messages:
            await transport.send(msg.dst, encode_message(msg), MessageKind.RAFT)

    async def _flush_outbox(self) -> None:
        transport = self.transport
        out, self._outbox = self._outbox, []
        if transport is None:
            return
        for peer, kind, payload in out:
            await transport.send(peer, payload, kind)

    def _on_soft_state(self) -> None:
        core = self._core
        self._rescan = True
        if core.role is not Role.LEADER:
            self._proposed.clear()  # what is left may never commit (or commit elsewhere)
        self._lease_until = -math.inf
        if core.role is Role.LEADER:
            self._publish_addresses()
        else:
            self._batch = []
            self._batch_has_expire = False
        self._kick()

    def _publish_addresses(self) -> None:
        """A new leader records the addresses it knows, so every member (and later learners)
        can reach every other through the replicated address book."""
        known: dict[int, str] = {}
        transport = self.transport
        if transport is not None:
            known.update(transport.peers)
            if _valid_address(transport.address):
                known[self.id] = transport.address
        for node, address in sorted(known.items()):
            if self.state.peers.get(node) != address and _valid_address(address):
                self._batch.append(PeerItem(node, address))

    # -- applying ---------------------------------------------------------------------------

    def _apply_timed(self, committed: list[Entry]) -> None:
        """`_apply`; on a follower, real time spent applying a long batch (a store over 1M
        members, say) does not count toward its election timeout: the leader applies the same
        entries at about the same time and sends no heartbeat meanwhile. Skipping ticks only
        makes the follower more patient (it also refuses votes longer: the leader's lease
        stays safe); the credit is capped at one election timeout. On the leader, its
        check-quorum is deferred as long (followers still applying cannot answer)."""
        started = self._apply_clock()
        self._apply(committed)
        spent = self._apply_clock() - started
        s = self.settings
        if spent <= s.tick_interval:
            return
        ticks = int(spent / s.tick_interval)
        if self._core.role is Role.LEADER:
            # The followers apply the same batch and cannot answer meanwhile: check-quorum
            # must not depose this leader for it.
            self._core.defer_quorum_check(ticks)
        else:
            self._tick_credit = min(self._tick_credit + ticks, s.election_ticks)

    def _apply(self, committed: list[Entry]) -> None:
        state = self.state
        for e in committed:
            mine = self._proposed.pop(e.index, None) if self._proposed else None
            if e.index <= state.applied_index:
                continue  # already inside an installed snapshot
            self._entries_since_snap += 1
            self._bytes_since_snap += len(e.data) + 24
            if e.kind is not EntryKind.NORMAL or not e.data:
                state.skip(e.index)
                continue
            try:
                if mine is not None and mine[0] is e.data:
                    # Our own proposal, the very same bytes: no need to decode what we
                    # encoded (decode(encode(items)) == items; the object identity rules
                    # out an entry replaced by another leader's at this index).
                    batch = mine[1]
                else:
                    batch = entry_codec.decode(e.data)
            except entry_codec.EntryDecodeError:
                log.error("node %d: undecodable entry %d skipped", self.id, e.index)
                state.skip(e.index)
                continue
            writes = self._writes
            duplicates = state.duplicates
            for applied in state.apply_batch(e.index, batch, self._origin):
                w = writes.get(applied.rid[2])
                if w is not None and not w.done:
                    w.reply, w.done = applied.reply, True
                    w.settle()
            self.stats.duplicates_suppressed += state.duplicates - duplicates
            for item in batch.items:
                if type(item) is PeerItem:
                    self._learn_peer(item.node_id, item.address)

    def _learn_peer(self, node: int, address: str, curve_key: bytes | None = None) -> None:
        transport = self.transport
        if transport is None or node == self.id or not _valid_address(address):
            return
        if transport.peers.get(node) != address and not (
            self.settings.transport == "memory" and node in transport.peers
        ):
            try:
                transport.add_peer(node, address, curve_key)
            except ValueError as exc:  # e.g. CURVE on and no public key known for it
                log.warning("node %d: cannot add peer %d at %s: %s", self.id, node, address, exc)

    async def _install_snapshot(self, meta: Any, data: bytes) -> None:
        storage = self.storage
        assert storage is not None
        self.state = ReplicatedState.restore(data)
        await self._disk(storage.save_snapshot, meta, data)
        self._snap_index = self._snap_saved_index = meta.index
        self._entries_since_snap = self._bytes_since_snap = 0
        self.stats.snapshots_installed += 1
        for node, address in self.state.peers.items():
            self._learn_peer(node, address)

    async def _maybe_snapshot(self) -> None:
        s = self.settings
        if (
            self._entries_since_snap < s.snapshot_entries
            and self._bytes_since_snap < s.snapshot_log_bytes
        ):
            return
        await self.snapshot_now()

    async def snapshot_now(self) -> int:
        """Snapshot the state at the applied index and compact the log behind it."""
        core, storage = self._core, self.storage
        assert storage is not None
        index = core.applied_index
        if index <= self._snap_index or self.state.applied_index != index:
            return self._snap_index
        data = self.state.snapshot()
        meta = core.compact(index, data)
        self._snap_index = index
        self._entries_since_snap = self._bytes_since_snap = 0
        await self._disk(storage.save_snapshot, meta, data)
        self._snap_saved_index = max(self._snap_saved_index, index)
        self.stats.snapshots_taken += 1
        return index

    # -- reads --------------------------------------------------------------------------------

    def _serve_read_states(self, rd: Ready) -> None:
        core = self._core
        for rs in rd.read_states:
            pending = self._read_tokens.pop(rs.token, None)
            if pending is None:
                continue
            waiters, issued_at, term = pending
            if rs.index is not None and core.role is Role.LEADER and term == core.term:
                # A quorum acknowledged us after `issued_at`: none of them votes for anyone
                # else for an election timeout, so we stay the only leader until the lease ends.
                lease_end = issued_at + self.settings.lease_duration
                if self._lease_term != term or lease_end > self._lease_until:
                    self._lease_until, self._lease_term = lease_end, term
            for w in waiters:
                w.index = rs.index
                w.event.set()

    def _wake_applied(self) -> None:
        applied = self.state.applied_index
        heap = self._applied_waiters
        while heap and heap[0][0] <= applied:
            heapq.heappop(heap)[2].set()

    async def _wait_applied(self, index: int) -> None:
        if self.state.applied_index >= index:
            return
        event = trio.Event()
        heapq.heappush(self._applied_waiters, (index, next(self._applied_seq), event))
        await event.wait()

    # =========================================================================================
    # background tasks
    # =========================================================================================

    async def _receiver(self) -> None:
        transport = self.transport
        assert transport is not None
        while True:
            # Everything already received in one wakeup (one task switch per batch).
            for msg in await transport.receive_batch():
                if msg.kind is MessageKind.RAFT:
                    try:
                        self._inbox.append(decode_message(msg.payload))
                    except RaftDecodeError as exc:
                        log.warning(
                            "node %d: bad raft message from %d: %s", self.id, msg.sender, exc
                        )
                        continue
                    self._kick()
                elif msg.kind is MessageKind.PUBSUB:
                    sink = self.pubsub_sink
                    if sink is not None:
                        sink(msg.sender, msg.payload)
                else:
                    try:
                        fwd = forward.decode(msg.payload)
                    except forward.ForwardDecodeError as exc:
                        log.warning(
                            "node %d: bad client message from %d: %s", self.id, msg.sender, exc
                        )
                        continue
                    self._on_forwarded(msg.sender, fwd)

    def _on_forwarded(self, sender: int, msg: forward.Forwarded) -> None:
        core = self._core
        if type(msg) is forward.ForwardWrites:
            if core.role is Role.LEADER:
                self._batch.extend(OpItem(rid, msg.floor, _held(op)) for rid, op in msg.writes)
                self._kick()
            else:
                reply = forward.Rejected(tuple(r for r, _ in msg.writes), None, core.leader_id)
                self._outbox.append((sender, MessageKind.CLIENT_REPLY, forward.encode(reply)))
                self._kick()
        elif type(msg) is forward.ForwardRead:
            assert self._nursery is not None
            self._nursery.start_soon(self._serve_forwarded_read, sender, msg)
        elif type(msg) is forward.ReadReply:
            waiting = self._forwarded_reads.get(msg.token)
            if waiting is not None:
                try:
                    waiting[1].append(replies.decode(msg.reply))
                except replies.ReplyCodecError:
                    return
                waiting[0].set()
        elif type(msg) is forward.Rejected:
            if msg.token is not None:
                waiting = self._forwarded_reads.get(msg.token)
                if waiting is not None:
                    waiting[0].set()  # no value: the reader falls back to ReadIndex
            for rid in msg.rids:
                w = self._writes.get(rid.seq) if rid.incarnation == self.incarnation else None
                if w is not None and not w.done:
                    w.sent_at = -math.inf  # re-forward at the next tick, to whoever leads then
                    w.leader = None

    async def _serve_forwarded_read(self, sender: int, msg: forward.ForwardRead) -> None:
        transport = self.transport
        if self._core.role is not Role.LEADER or transport is None:
            out: forward.Forwarded = forward.Rejected((), msg.token, self._core.leader_id)
        else:
            try:
                op = decode_op(msg.op)
            except ValueError:
                return
            if type(op) is not ReadOp:
                return
            reply = await self._read(op, "lease", allow_forward=False)
            if reply is CLUSTERDOWN:
                out = forward.Rejected((), msg.token, self._core.leader_id)
            else:
                out = forward.ReadReply(msg.token, replies.encode(reply))
        transport = self.transport
        if transport is not None:
            await transport.send(sender, forward.encode(out), MessageKind.CLIENT_REPLY)

    async def _ticker(self) -> None:
        interval = self.settings.tick_interval
        while True:
            await trio.sleep(interval)
            self._pending_ticks += 1
            self._kick()

    async def _write_deadlines(self) -> None:
        """Time out waiting writes. Every write gets the same timeout when it is submitted,
        so `_writes` (in submission order) is also in deadline order: only its head is looked
        at, and the task sleeps until the next deadline."""
        timeout = self.settings.request_timeout
        while True:
            now = trio.current_time()
            wake = now + timeout  # a write submitted later has a later deadline than this
            overdue = []
            for w in self._writes.values():
                if w.deadline > now:
                    wake = w.deadline
                    break
                overdue.append(w)
            for w in overdue:  # (a callback may forget its write: not while iterating)
                w.settle()  # (done or not: the waiter looks at w.done)
            await trio.sleep_until(wake)

    async def _expiry_loop(self) -> None:
        s = self.settings
        while True:
            await trio.sleep(s.expire_interval)
            core = self._core
            if (
                core.role is Role.LEADER
                and not self._batch_has_expire
                and self.state.keyspace.expires_count() > 0
            ):
                self._batch.append(ExpireItem(s.expire_batch))
                self._batch_has_expire = True
                self._kick()

    # =========================================================================================
    # client API
    # =========================================================================================

    async def write(self, op: WriteOp | TxnOp) -> object:
        """Replicate `op` and return its reply (computed when this node applies it).

        `-CLUSTERDOWN no leader` if no leader took it within the request deadline;
        `-TIMEOUT write outcome unknown ...` if a leader took it but its commit was not seen.
        """
        return await self.wait_write(self.submit_write(op))

    def submit_write(self, op: WriteOp | TxnOp) -> WriteRequest:
        """Queue `op` for the next proposal batch now; `wait_write` gives its reply.

        Split from `write` so that a connection can submit every write of a pipeline before
        waiting for the first: they then share one log entry instead of one commit each.
        Every submitted write must be passed to `wait_write` or `forget_write`.
        """
        self._seq += 1
        held = normalised(op)
        w = WriteRequest(
            RequestId(self.id, self.incarnation, self._seq),
            held if held is not None else op.encode(),
            trio.current_time() + self.settings.request_timeout,
        )
        self._writes[self._seq] = w
        self._to_submit.append(w)
        self._kick()
        return w

    async def wait_write(self, w: WriteRequest) -> object:
        # No cancel scope per write (it was a measurable share of a write's CPU time): the
        # `_write_deadlines` task sets the event of a write whose deadline has passed.
        try:
            await w.wait()
        finally:
            self.forget_write(w)
        return self.write_reply(w)

    @staticmethod
    def write_reply(w: WriteRequest) -> object:
        """The reply of a settled write (its event is set): applied, or given up."""
        if w.done:
            return w.reply
        return WRITE_OUTCOME_UNKNOWN if w.submitted else CLUSTERDOWN

    def forget_write(self, w: WriteRequest) -> None:
        """Stop tracking `w` (its client is gone); it may still apply, once."""
        self._writes.pop(w.rid.seq, None)

    async def read(self, op: ReadOp, consistency: ReadConsistency | None = None) -> object:
        """Run a read at the given consistency (default: the node's setting)."""
        return await self._read(op, consistency or self.settings.read_consistency)

    def lease_valid(self) -> bool:
        """May this leader serve a read locally? Both leases must hold: ours in real time
        (from a quorum-confirmed ReadIndex round; immune to a slow ticker on this node) and
        the core's in ticks."""
        core = self.core
        return (
            core is not None
            and core.role is Role.LEADER
            and self._lease_term == core.term
            and core.lead_transferee is None
            and trio.current_time() < self._lease_until
            # the core's own (tick-based) lease: also void after a TimeoutNow, whoever sent it
            and core.lease_remaining() > 0
        )

    def execute_local(self, op: ReadOp) -> object:
        """Serve a read from the local keyspace (what every read mode ends with)."""
        now = max(self._clock_ms(), self.state.last_time_ms)
        self._read_seed += 1
        self.stats.reads_served += 1
        return self.state.keyspace.execute(op, now, self._read_seed)

    def start_read(self) -> ReadIndexWaiter | None:
        """Ask for a linearizable read index now; `finish_read` serves the read later.

        Split like `submit_write`/`wait_write` so that all reads of a pipeline join one
        ReadIndex round instead of one round each. None: not available (request timeout not
        longer than an election timeout); use `read`."""
        if not self._fast_reads:
            return None
        waiter = ReadIndexWaiter()
        self._read_queue.append(waiter)
        self._kick()
        return waiter

    async def finish_read(self, op: ReadOp, waiter: ReadIndexWaiter) -> object:
        """Serve a linearizable read whose index `start_read` asked for."""
        return await self._read(op, "linearizable", waiter=waiter)

    async def _read(
        self,
        op: ReadOp,
        mode: ReadConsistency,
        *,
        allow_forward: bool = True,
        waiter: ReadIndexWaiter | None = None,
    ) -> object:
        if mode == "stale":
            return self.execute_local(op)
        if self.cut_off:
            return CLUSTERDOWN
        deadline = trio.current_time() + self.settings.request_timeout
        confirmed = None
        if mode == "linearizable" and self._fast_reads:
            # The common case without a cancel scope (a measurable share of a read's CPU):
            # the core answers every read_index within an election timeout (shorter than the
            # request timeout here), and a stopped node releases its waiters. Anything else
            # (no index, or not applied that far yet) takes the bounded path below.
            if waiter is None:
                waiter = self.start_read()
                assert waiter is not None
            await waiter.event.wait()
            confirmed = waiter.index
            if confirmed is not None and self.state.applied_index >= confirmed:
                return self.execute_local(op)
        with trio.move_on_at(deadline):
            if confirmed is not None:
                await self._wait_applied(confirmed)
                return self.execute_local(op)
            if mode == "lease":
                if self.lease_valid():
                    self.stats.lease_reads += 1
                    await self._wait_applied(self._core.commit_index)
                    return self.execute_local(op)
                core = self._core
                if allow_forward and core.role is not Role.LEADER and core.leader_id is not None:
                    reply = await self._forward_read(core.leader_id, op)
                    if reply is not None:
                        return reply[0]
            while True:
                index = await self._read_index()
                if index is not None:
                    await self._wait_applied(index)
                    return self.execute_local(op)
                if self.cut_off:
                    break
                await trio.sleep(self.settings.tick_interval)  # no leader yet: try again
        return CLUSTERDOWN

    async def _read_index(self) -> int | None:
        waiter = ReadIndexWaiter()
        self._read_queue.append(waiter)
        self._kick()
        await waiter.event.wait()
        return waiter.index

    async def _forward_read(self, leader: int, op: ReadOp) -> list[object] | None:
        transport = self.transport
        if transport is None:
            return None
        token = b"f%d.%d.%d" % (self.id, self.incarnation, next(self._token_seq))
        event, box = trio.Event(), list[object]()
        self._forwarded_reads[token] = (event, box)
        try:
            await transport.send(
                leader,
                forward.encode(forward.ForwardRead(token, op.encode())),
                MessageKind.CLIENT_REQUEST,
            )
            with trio.move_on_after(self.settings.election_timeout):
                await event.wait()
        finally:
            del self._forwarded_reads[token]
        return box or None

    # =========================================================================================
    # control plane
    # =========================================================================================

    def init(self, voters: Iterable[int]) -> None:
        """Make this node the first member of a new cluster with these voters.

        Call it on one node (it then elects itself and brings the others in) or with the same
        voters on every initial member. Refused on a node that has any Raft state.
        """
        core = self._core
        if core.last_index != 0 or core.term != 0 or core.snapshot is not None:
            raise AlreadyInitialized(f"node {self.id} already has raft state")
        core.bootstrap(Membership(voters=frozenset(voters)))
        self._campaign_if_alone()
        self._kick()

    @property
    def keyspace(self) -> Keyspace:
        """The local replica's keyspace (replaced when a snapshot is installed: look it up
        each time, e.g. for a session's WATCH tokens)."""
        return self.state.keyspace

    @property
    def role(self) -> Role:
        return self._core.role

    @property
    def leader_id(self) -> int | None:
        return self._core.leader_id

    def is_leader(self) -> bool:
        return self.core is not None and self.core.role is Role.LEADER

    def _require_leader(self) -> RaftCore:
        core = self._core
        if core.role is not Role.LEADER:
            raise NotLeaderError(core.leader_id)
        return core

    async def add_learner(self, node: int, address: str, curve_key: bytes | None = None) -> None:
        """Leader only: record `node`'s address and add it as a learner (waits for commit).

        With CURVE on, `curve_key` is the learner's public key (other members need it in
        their own config to talk to it should they lead)."""
        core = self._require_leader()
        if node in core.membership.all_nodes:
            return
        self._learn_peer(node, address, curve_key)
        self._batch.append(PeerItem(node, address))
        m = core.membership
        await self._change(m.voters, m.learners | {node})

    async def change_membership(
        self, voters: Iterable[int], learners: Iterable[int] | None = None
    ) -> None:
        """Leader only: move to these voters (joint consensus); learners that become voters
        are promoted, voters left out are removed. `learners`, when given, is the new learner
        set (a learner left out is removed); otherwise the learners stay. Returns once the
        final config commits."""
        core = self._require_leader()
        target = frozenset(voters)
        kept = core.membership.learners if learners is None else frozenset(learners)
        await self._change(target, kept - target)

    async def _change(self, voters: frozenset[int], learners: frozenset[int]) -> None:
        target = Membership(voters=voters, learners=learners)
        with trio.move_on_after(self.settings.request_timeout) as scope:
            while True:
                core = self._require_leader()
                try:
                    core.change_membership(voters, learners)
                    self._kick()
                    break
                except ProposalDropped:
                    await trio.sleep(self.settings.tick_interval)
            while True:
                core = self._core
                if core.membership == target and core.membership_index <= core.commit_index:
                    return  # (a leader that removed itself has stepped down by now)
                core = self._require_leader()
                if (
                    core.membership != target
                    and not core.membership.is_joint
                    and (core.membership_index <= core.commit_index)
                ):
                    raise ClusterTimeout("the membership change was superseded")
                await trio.sleep(self.settings.tick_interval / 4)
        if scope.cancelled_caught:
            raise ClusterTimeout("membership change did not commit within the request deadline")

    async def step_down(self, timeout: float | None = None) -> bool:
        """Before a graceful shutdown: if this node leads, hand leadership to the most
        up-to-date other voter (clients see no election timeout). True if it no longer leads."""
        core = self._core
        if core.role is not Role.LEADER:
            return True
        candidates = sorted(core.membership.voters - {self.id})
        if not candidates:
            return False  # a one-node group has nobody to hand over to

        def match(peer: int) -> int:
            pr = core.progress(peer)
            return -1 if pr is None else pr.match

        best = max(candidates, key=match)
        with trio.move_on_after(timeout if timeout is not None else self.settings.election_timeout):
            return await self.transfer_leader(best)
        return False

    async def transfer_leader(self, to: int) -> bool:
        """Leader only: hand leadership to voter `to`; True once it leads (within the deadline)."""
        core = self._require_leader()
        if to == self.id:
            return True
        self._lease_until = -math.inf  # TimeoutNow bypasses the followers' lease: drop ours
        core.transfer_leadership(to)
        self._kick()
        with trio.move_on_after(self.settings.request_timeout):
            while self._core.leader_id != to:
                await trio.sleep(self.settings.tick_interval / 4)
            return True
        return False

    def status(self) -> dict[str, Any]:
        core = self._core
        m = core.membership
        peers = {}
        for peer in sorted(m.all_nodes - {self.id}):
            pr = core.progress(peer)
            peers[peer] = None if pr is None else pr.match
        return {
            "id": self.id,
            "role": core.role.value,
            "term": core.term,
            "leader": core.leader_id,
            "commit_index": core.commit_index,
            "applied_index": self.state.applied_index,
            "last_index": core.last_index,
            "snapshot_index": self._snap_saved_index,
            "membership": {
                "voters": sorted(m.voters),
                "learners": sorted(m.learners),
                "joint": m.is_joint,
            },
            "match_index": peers,
            "read_consistency": self.settings.read_consistency,
            "lease_valid": self.lease_valid(),
        }

    def info_fields(self) -> list[tuple[str, str]]:
        """The `# Raft` section of INFO, as (field, value) pairs."""
        st = self.status()
        stats = self.stats
        fields = [
            ("raft_node_id", str(st["id"])),
            ("raft_role", st["role"]),
            ("raft_term", str(st["term"])),
            ("raft_leader", str(st["leader"] or "")),
            ("raft_cut_off", "1" if self.cut_off else "0"),
            ("raft_cut_offs", str(stats.cut_offs)),
            ("raft_commit_index", str(st["commit_index"])),
            ("raft_applied_index", str(st["applied_index"])),
            ("raft_last_index", str(st["last_index"])),
            ("raft_snapshot_index", str(st["snapshot_index"])),
            ("raft_voters", ",".join(map(str, st["membership"]["voters"]))),
            ("raft_learners", ",".join(map(str, st["membership"]["learners"]))),
            ("raft_read_consistency", st["read_consistency"]),
            ("raft_entries_proposed", str(stats.entries_proposed)),
            ("raft_ops_proposed", str(stats.ops_proposed)),
            ("raft_writes_forwarded", str(stats.writes_forwarded)),
            ("raft_fsyncs", str(stats.fsyncs)),
            ("raft_read_index_calls", str(stats.read_index_calls)),
            ("raft_reads_served", str(stats.reads_served)),
        ]
        for peer, match in st["match_index"].items():
            fields.append((f"raft_peer_{peer}_match", "" if match is None else str(match)))
        return fields

    def connection_handler(self, session: Session) -> ClusterConnection:
        """The RESP server's per-connection handler for a kv session."""
        return ClusterConnection(self, session)


def _valid_address(address: str) -> bool:
    try:
        split_address(address)
    except ValueError:
        return False
    return True


def _held(data: bytes) -> WriteOp | TxnOp | bytes:
    """A forwarded op as the leader proposes it: decoded (embedded in the entry), or its
    bytes if it is not a write we can decode (every replica then answers the same error)."""
    try:
        op = decode_op(data)
    except OpDecodeError:
        return data
    return data if isinstance(op, ReadOp) else op


def _op_size(op: WriteOp | TxnOp | bytes) -> int:
    """About the bytes `op` adds to an entry (the batch size bound)."""
    if isinstance(op, WriteOp):
        return sum(map(len, op.argv)) + 2 * len(op.argv) + 16
    if isinstance(op, TxnOp):
        return sum(sum(map(len, c)) + 2 * len(c) for c in op.commands) + 24 * len(op.watches) + 16
    return len(op) + 32


def error_reply(message: str) -> Error:
    return Error(message)
