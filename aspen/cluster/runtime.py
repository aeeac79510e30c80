"""ClusterNode: one replicated Redis node — Raft core + storage + transport + keyspace.

The facade the rest of Aspen uses, and `run`, which opens storage and transport and runs the
node's tasks. The work is done by its parts, one job each: the driver (below: it owns the
RaftCore and handles its `ready()`s), the write path (`writes.py`: submit, forward, retry,
batch), the read path (`reads.py`: ReadIndex, lease, forwarded reads), membership and
leadership transfer (`membership.py`), counters and status (`stats.py`). The parts see the
node through `host.NodeHost`, never this module.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import trio

from aspen.cluster import entry as entry_codec
from aspen.cluster import forward
from aspen.cluster.blocking import BlockingService
from aspen.cluster.connection import ClusterConnection
from aspen.cluster.diskthread import DiskThread
from aspen.cluster.entry import PeerItem
from aspen.cluster.errors import ClusterTimeout
from aspen.cluster.maxmemory import MemoryGuard
from aspen.cluster.membership import MembershipControl, learn_peer, valid_address
from aspen.cluster.reads import ReadPath
from aspen.cluster.requests import ReadIndexWaiter, WriteRequest
from aspen.cluster.scriptrun import ScriptRunner
from aspen.cluster.settings import ClusterSettings, ReadConsistency
from aspen.cluster.state import ReplicatedState
from aspen.cluster.stats import FSYNC_BUCKETS, NodeStats, info_fields
from aspen.cluster.writes import WritePath
from aspen.kv.keyspace import Keyspace
from aspen.kv.notify import Notifier
from aspen.kv.ops import ReadOp, TxnOp, WriteOp
from aspen.kv.session import Session
from aspen.raft import (
    Entry,
    EntryKind,
    Membership,
    Message,
    RaftConfig,
    RaftCore,
    RaftDecodeError,
    ReadState,
    Ready,
    Role,
    SnapshotMeta,
    decode_message,
    encode_message,
)
from aspen.raft.driver import Compact, Driver, Flush, Persist, Send
from aspen.storage import MemoryStorage, Storage, open_storage
from transports import MemoryHub, MessageKind, TransportConfig, open_transport
from transports.base import Message as TransportMessage
from transports.base import TransportBase

log = logging.getLogger("aspen.cluster")

__all__ = ["FSYNC_BUCKETS", "ClusterNode", "NodeStats"]


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


FAST_PERSIST = 0.002
"""Seconds: appends (with their fsync) faster than this on average run in the driver itself
(`ClusterNode._append_inline`)."""
_PERSIST_EWMA_WEIGHT = 0.2


def _timed_append(storage: Storage, step: Persist) -> float:
    """`storage.append` of a Persist step; the seconds it took (in whichever thread ran it)."""
    started = time.perf_counter()
    storage.append(step.entries, step.hard_state)
    return time.perf_counter() - started


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
            linger_commit=settings.commit_linger > 0,
            snapshot_chunk_size=settings.snapshot_chunk_size,
            log_window_entries=settings.log_window_entries,
            log_window_bytes=settings.log_window_bytes,
        )
        self._origin = (self.id, self.incarnation)  # our writes' (origin, incarnation)
        self.stats = NodeStats()
        self.notifier: Notifier | None = None  # keyspace notifications (set by the node)
        self.state = ReplicatedState(databases=settings.databases)
        self.memory = MemoryGuard(settings.maxmemory, settings.maxmemory_policy,
                                  settings.maxmemory_samples)
        self.memory.attach(self.state.keyspace)
        self.core: RaftCore | None = None
        self.storage: Storage | None = None
        self.transport: TransportBase | None = None
        self._nursery: trio.Nursery | None = None
        self._running = trio.Event()
        # PUBSUB envelopes go here (aspen.pubsub.mesh sets it); dropped while it is None
        self.pubsub_sink: Callable[[int, bytes], None] | None = None

        # the parts
        self.writes = WritePath(self)
        self.reads = ReadPath(self)
        self.members = MembershipControl(
            self, add_peer_item=self.writes.add_peer, drop_lease=self.reads.drop_lease
        )
        self.blocking = BlockingService(self)  # clients parked in BLPOP & co.
        self.scripts = ScriptRunner(self)  # read-only scripts in a worker thread (scriptrun.py)

        # driver inputs
        self._wakeup = trio.Event()
        self._driver_seq: Driver | None = None  # made by `_restore` with the core
        self._outbox: list[tuple[int, MessageKind, bytes]] = []

        self._snap_index = 0  # the latest snapshot taken (compacted in the core)
        self._snap_saved_index = 0  # the latest snapshot on disk: what /status reports
        self._bytes_since_snap = 0
        self._entries_since_snap = 0
        self._inline_disk = False
        self._persist_ewma = 0.0  # seconds: the moving average of an append's duration
        self._disk_thread = DiskThread(f"aspen-disk-{self.id}")
        # Fail fast when cut off: no leader known for `_cutoff_after` (trio time) means this
        # node is on the wrong side of a partition, not in an election (which takes one
        # randomised election timeout, rarely two); commands then get CLUSTERDOWN at once.
        self._leaderless_since: float | None = None
        self._cutoff_after = 2 * settings.election_timeout
        self.cut_off = False
        # the clock a long apply is measured with (tests replace it; MockClock: no credit)
        self.apply_clock: Callable[[], float] = trio.current_time

    # =========================================================================================
    # what the parts use (host.NodeHost)
    # =========================================================================================

    @property
    def raft(self) -> RaftCore:
        """The running core."""
        assert self.core is not None, "the node is not running"
        return self.core

    def kick(self) -> None:
        self._wakeup.set()

    def send_later(self, peer: int, kind: MessageKind, payload: bytes) -> None:
        self._outbox.append((peer, kind, payload))

    def clock_ms(self) -> int:
        return self._clock_ms()

    def start_task(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> bool:
        """Run `fn(*args)` as a task of the node; False (nothing started) once the node is
        stopping and takes no new tasks."""
        if self._nursery is None:
            return False
        try:
            self._nursery.start_soon(fn, *args)
        except RuntimeError:  # the nursery is closed to new arrivals
            return False
        return True

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
                if n != self.id and valid_address(a):
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
                transport.sink = self._on_peer_message
                # The cluster protocol is the minimum over the Raft members (not over every
                # address ever learned: a removed node or a spare must not hold it back).
                transport.members_source = lambda: (
                    transport.peers if self.core is None else self.core.membership.all_nodes
                )
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    nursery.start_soon(self._driver)
                    nursery.start_soon(self._ticker)
                    nursery.start_soon(self._expiry_loop)
                    nursery.start_soon(self.writes.deadlines)
                    self._running.set()
                    task_status.started(self)
        finally:
            self._nursery = None
            self.transport = None
            self.writes.release()
            self.reads.release()
            if owned:
                with trio.CancelScope(shield=True):  # a crash-stop must still free the dir lock
                    await self._disk(storage.close)
            self._disk_thread.close()

    async def _restore(self, storage: Storage) -> None:
        restored = await self._disk(storage.load)
        snap = await self._disk(storage.load_snapshot)
        snap_data = None
        if snap is not None:
            meta, snap_data = snap
            self.state = ReplicatedState.restore(snap_data, self.settings.databases)
            self.memory.attach(self.state.keyspace)
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
        self._driver_seq = Driver(self.core, self, restored.hard_state)
        voters = self.settings.bootstrap_voters
        if voters and self.core.last_index == 0 and self.core.term == 0:
            self.core.bootstrap(Membership(voters=frozenset(voters)))
            self.kick()
        self.members.campaign_if_alone()

    async def _disk(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Blocking storage work: inline for the memory backend, else in a worker thread."""
        if self._inline_disk:
            return fn(*args)
        return await self._disk_thread.run(fn, *args)

    # =========================================================================================
    # the driver
    # =========================================================================================

    async def _driver(self) -> None:
        """The driver task: each kick runs one pass of the shared sequence
        (`aspen.raft.driver`), carrying out its I/O steps here."""
        linger = self.settings.commit_linger
        while True:
            if self.raft.commit_owed:
                # Wait a little for a new entry to carry the commit index to the followers;
                # if none comes, an append tells them (RaftConfig.linger_commit).
                with trio.move_on_after(linger):
                    await self._wakeup.wait()
                if not self._wakeup.is_set():
                    self.raft.flush_commit()
            else:
                await self._wakeup.wait()
            # One scheduler round before draining lets every task that is runnable now (clients,
            # the receiver) add its work: bigger batches for the price of one checkpoint.
            await trio.lowlevel.checkpoint()
            self._wakeup = trio.Event()
            for step in self.driver.run_pass():
                if isinstance(step, Flush):
                    if self._outbox:
                        await self._flush_outbox()
                elif isinstance(step, Send):
                    await self._send_raft(step.messages)
                elif isinstance(step, Persist):
                    await self._persist(step)
                elif isinstance(step, Compact):
                    await self._maybe_snapshot()
                else:
                    await self._install_snapshot(step.meta, step.data)

    @property
    def driver(self) -> Driver:
        assert self._driver_seq is not None, "the node is not running"
        return self._driver_seq

    @property
    def tick_credit(self) -> int:
        """Ticks the driver skips after a long apply (`_apply_timed`)."""
        return self.driver.tick_credit

    @tick_credit.setter
    def tick_credit(self, value: int) -> None:
        self.driver.tick_credit = value

    # -- DriverHost ---------------------------------------------------------------------------

    def after_inputs(self, ticked: bool) -> None:
        if ticked:
            self.writes.rescan = True
        self._note_leader()
        self.writes.submit_pending()
        self.writes.propose_batch()
        self.reads.request_read_index()

    def on_ready(self, rd: Ready) -> None:
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

    def apply(self, entries: list[Entry]) -> None:
        if entries:
            self._apply_timed(entries)

    def serve_reads(self, read_states: list[ReadState]) -> None:
        if read_states:
            self.reads.serve_read_states(read_states)

    def after_apply(self) -> None:
        self.reads.wake_applied()
        self.blocking.after_apply()

    def _note_leader(self) -> None:
        """Track how long no leader has been known; past `_cutoff_after` the node is cut off:
        every write still waiting settles now (TIMEOUT if it was sent to a leader, else
        CLUSTERDOWN), instead of at its request deadline."""
        if self.raft.leader_id is not None:
            self._leaderless_since = None
            self.cut_off = False
            return
        now = trio.current_time()
        if self._leaderless_since is None:
            self._leaderless_since = now
        if not self.cut_off and now - self._leaderless_since >= self._cutoff_after:
            self.cut_off = True
            self.stats.cut_offs += 1
            self.writes.give_up_waiting()

    # -- the driver's I/O steps -----------------------------------------------------------------

    async def _persist(self, step: Persist) -> None:
        """Append and fsync: inline (`_append_inline`) or in the disk thread."""
        storage = self.storage
        assert storage is not None
        started = time.perf_counter()
        if self._append_inline():
            took = _timed_append(storage, step)
        else:
            took = await self._disk(_timed_append, storage, step)
        self.stats.note_fsync(time.perf_counter() - started)
        # The append alone: a wait for the event loop after a hand-off to the disk thread
        # must not make a fast disk look slow (and keep a busy node off the inline path).
        self._persist_ewma += (took - self._persist_ewma) * _PERSIST_EWMA_WEIGHT

    def _append_inline(self) -> bool:
        """Append (and fsync) in the driver itself, the event loop blocked meanwhile?

        Yes on a follower with no client request of its own in flight: it has nothing else
        to do until the entries are durable (its answer to the leader waits for them), and a
        hand-off to the disk thread costs two thread wake-ups per entry, about a tenth of a
        follower's CPU per request at -P 1 (docs/benchmarks.md, "Round 4"). A leader, or a
        follower whose clients wait on a write or a read, keeps its event loop free during
        the fsync: client requests are read and batched meanwhile. Ticks that pile up while
        blocked are handled before the next message (`Driver.drain`), as after any stall.

        Yes also on a node alone in its group (a standalone node: no peer to send to while
        the disk works), whatever the disk: like Redis's appendfsync always, the clients'
        requests wait in their sockets meanwhile and the next entry takes them all.

        And yes on every node while its appends are fast (their moving average under
        `FAST_PERSIST`): the event loop then stalls for a millisecond or two at most, and the
        disk thread's hand-off costs more than it frees: each sqlite call in that thread takes
        the GIL back from the event loop, whose every recv and send then waits for it (a third
        of a standalone node's CPU per SET at -P 1, ~15% of a 3-node leader's; docs/
        benchmarks.md, "Issue 20, round 4"). A disk that turns slow sends the appends of a
        node with peers back to the thread.
        """
        if self._persist_ewma <= FAST_PERSIST:
            return True
        core = self.raft
        if core.role is not Role.LEADER:
            return not self.writes.pending and not self.reads.busy
        m = core.membership
        return not m.learners and not m.voters_outgoing and m.voters == {self.id}

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
        leader = self.raft.role is Role.LEADER
        self.writes.on_role_change(leader)
        self.reads.drop_lease()
        if leader:
            self.members.publish_addresses()
        self.kick()

    # -- applying ---------------------------------------------------------------------------

    def _apply_timed(self, committed: list[Entry]) -> None:
        """`_apply`; on a follower, real time spent applying a long batch (a store over 1M
        members, say) does not count toward its election timeout: the leader applies the same
        entries at about the same time and sends no heartbeat meanwhile. Skipping ticks only
        makes the follower more patient (it also refuses votes longer: the leader's lease
        stays safe); the credit is capped at one election timeout. On the leader, its
        check-quorum is deferred as long (followers still applying cannot answer)."""
        if self.scripts.defer_apply(committed):
            return  # a read-only script holds the keyspace: applied when it ends
        started = self.apply_clock()
        self._apply(committed)
        spent = self.apply_clock() - started
        s = self.settings
        if spent <= s.tick_interval:
            return
        ticks = int(spent / s.tick_interval)
        if self.raft.role is Role.LEADER:
            # The followers apply the same batch and cannot answer meanwhile: check-quorum
            # must not depose this leader for it.
            self.raft.defer_quorum_check(ticks)
        else:
            self.tick_credit = min(self.tick_credit + ticks, s.election_ticks)

    def _apply(self, committed: list[Entry]) -> None:
        state = self.state
        for e in committed:
            mine = self.writes.take_proposed(e.index)
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
                    batch = entry_codec.decode_for_apply(e.data)
            except entry_codec.EntryDecodeError:
                log.error("node %d: undecodable entry %d skipped", self.id, e.index)
                state.skip(e.index)
                continue
            duplicates = state.duplicates
            self.writes.settle_applied(state.apply_batch(e.index, batch, self._origin))
            self.stats.duplicates_suppressed += state.duplicates - duplicates
            for item in batch.items:
                if type(item) is PeerItem:
                    learn_peer(self, item.node_id, item.address)

    async def _install_snapshot(self, meta: Any, data: bytes) -> None:
        storage = self.storage
        assert storage is not None
        self.state = ReplicatedState.restore(data, self.settings.databases)
        self.memory.attach(self.state.keyspace)
        await self._disk(storage.save_snapshot, meta, data)
        self._snap_index = self._snap_saved_index = meta.index
        self._entries_since_snap = self._bytes_since_snap = 0
        self.stats.snapshots_installed += 1
        for node, address in self.state.peers.items():
            learn_peer(self, node, address)

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
        core, storage = self.raft, self.storage
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

    async def backup_snapshot(self) -> tuple[SnapshotMeta, bytes]:
        """(meta, data) of a snapshot holding every write committed before the call: a
        ReadIndex round fixes the commit index, this node applies up to it and snapshots
        (writes go on meanwhile). For `aspen backup` (aspen/backup.py)."""
        for _ in range(100):
            index = await self.reads.read_index()
            if index is None:
                if self.cut_off:
                    break
                await trio.sleep(self.settings.tick_interval)  # no leader yet
                continue
            await self.reads.wait_applied(index)
            await self.snapshot_now()
            storage = self.storage
            assert storage is not None
            snap: tuple[SnapshotMeta, bytes] | None = await self._disk(storage.load_snapshot)
            if snap is not None and snap[0].index >= index:
                return snap
            await trio.sleep(self.settings.tick_interval)  # mid-apply: try again
        raise ClusterTimeout("no snapshot at a committed index could be taken (no leader?)")

    # =========================================================================================
    # background tasks
    # =========================================================================================

    def _on_peer_message(self, msg: TransportMessage) -> None:
        """The transport's sink: each message as it arrives, in the transport's receiving
        task (no channel and no receiver task between the socket and the driver's inbox)."""
        if msg.kind is MessageKind.RAFT:
            try:
                self.driver.add_message(decode_message(msg.payload))
            except RaftDecodeError as exc:
                self.stats.peer_messages_dropped += 1
                log.warning("node %d: bad raft message from %d: %s", self.id, msg.sender, exc)
                return
            self.kick()
        elif msg.kind is MessageKind.PUBSUB:
            sink = self.pubsub_sink
            if sink is not None:
                sink(msg.sender, msg.payload)
        else:
            try:
                fwd = forward.decode(msg.payload)
            except forward.ForwardDecodeError as exc:
                self.stats.peer_messages_dropped += 1
                log.warning("node %d: bad client message from %d: %s", self.id, msg.sender, exc)
                return
            self._on_forwarded(msg.sender, fwd)

    def _on_forwarded(self, sender: int, msg: forward.Forwarded) -> None:
        if type(msg) is forward.ForwardWrites:
            self.writes.on_forwarded(sender, msg)
        elif type(msg) is forward.ForwardRead:
            self.start_task(self.reads.serve_forwarded, sender, msg)
        elif type(msg) is forward.ReadReply:
            self.reads.on_reply(msg)
        elif type(msg) is forward.Rejected:
            if msg.token is not None:
                self.reads.on_rejected(msg.token)
            self.writes.on_rejected(msg.rids)

    async def _ticker(self) -> None:
        interval = self.settings.tick_interval
        while True:
            await trio.sleep(interval)
            self.driver.add_tick()
            self.kick()

    async def _expiry_loop(self) -> None:
        s = self.settings
        while True:
            await trio.sleep(s.expire_interval)
            core = self.raft
            if (
                core.role is Role.LEADER
                and not self.writes.batch_has_expire
                and self.state.keyspace.expires_count() > 0
            ):
                self.writes.add_expire(s.expire_batch)
                self.kick()

    # =========================================================================================
    # client API (writes.py, reads.py)
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
        return self.writes.submit(op)

    async def wait_write(self, w: WriteRequest) -> object:
        return await self.writes.wait(w)

    @staticmethod
    def write_reply(w: WriteRequest) -> object:
        """The reply of a settled write (its event is set): applied, or given up."""
        return WritePath.reply(w)

    def forget_write(self, w: WriteRequest) -> None:
        """Stop tracking `w` (its client is gone); it may still apply, once."""
        self.writes.forget(w)

    async def read(self, op: ReadOp, consistency: ReadConsistency | None = None) -> object:
        """Run a read at the given consistency (default: the node's setting)."""
        return await self.reads.read(op, consistency or self.settings.read_consistency)

    def lease_valid(self) -> bool:
        """May this leader serve a read locally? Both leases must hold: ours in real time
        (from a quorum-confirmed ReadIndex round; immune to a slow ticker on this node) and
        the core's in ticks."""
        return self.core is not None and self.reads.lease_valid()

    def execute_local(self, op: ReadOp) -> object:
        """Serve a read from the local keyspace (what every read mode ends with)."""
        return self.reads.execute_local(op)

    def start_read(self) -> ReadIndexWaiter | None:
        """Ask for a linearizable read index now; `finish_read` serves the read later.

        Split like `submit_write`/`wait_write` so that all reads of a pipeline join one
        ReadIndex round instead of one round each. None: not available (request timeout not
        longer than an election timeout); use `read`."""
        return self.reads.start()

    async def finish_read(self, op: ReadOp, waiter: ReadIndexWaiter) -> object:
        """Serve a linearizable read whose index `start_read` asked for."""
        return await self.reads.read(op, "linearizable", waiter=waiter)

    # =========================================================================================
    # control plane (membership.py, stats.py)
    # =========================================================================================

    def init(self, voters: Iterable[int]) -> None:
        """Make this node the first member of a new cluster with these voters.

        Call it on one node (it then elects itself and brings the others in) or with the same
        voters on every initial member. Refused on a node that has any Raft state.
        """
        self.members.init(voters)

    @property
    def state(self) -> ReplicatedState:
        return self._state

    @state.setter
    def state(self, value: ReplicatedState) -> None:
        """(A restored snapshot's keyspace emits the node's keyspace notifications too.)"""
        value.keyspace.notifier = self.notifier
        self._state = value

    def set_notifier(self, notifier: Notifier | None) -> None:
        self.notifier = notifier
        self._state.keyspace.notifier = notifier

    @property
    def keyspace(self) -> Keyspace:
        """The local replica's keyspace (replaced when a snapshot is installed: look it up
        each time, e.g. for a session's WATCH tokens)."""
        return self.state.keyspace

    @property
    def role(self) -> Role:
        return self.raft.role

    @property
    def leader_id(self) -> int | None:
        return self.raft.leader_id

    def is_leader(self) -> bool:
        return self.core is not None and self.core.role is Role.LEADER

    async def add_learner(self, node: int, address: str, curve_key: bytes | None = None) -> None:
        """Leader only: record `node`'s address and add it as a learner (waits for commit).

        With CURVE on, `curve_key` is the learner's public key (other members need it in
        their own config to talk to it should they lead)."""
        await self.members.add_learner(node, address, curve_key)

    async def change_membership(
        self, voters: Iterable[int], learners: Iterable[int] | None = None
    ) -> None:
        """Leader only: move to these voters (joint consensus); learners that become voters
        are promoted, voters left out are removed. `learners`, when given, is the new learner
        set (a learner left out is removed); otherwise the learners stay. Returns once the
        final config commits."""
        await self.members.change_membership(voters, learners)

    async def step_down(self, timeout: float | None = None) -> bool:
        """Before a graceful shutdown: if this node leads, hand leadership to the most
        up-to-date other voter (clients see no election timeout). True if it no longer leads."""
        return await self.members.step_down(timeout)

    async def transfer_leader(self, to: int) -> bool:
        """Leader only: hand leadership to voter `to`; True once it leads (within the deadline)."""
        return await self.members.transfer_leader(to)

    def status(self) -> dict[str, Any]:
        core = self.raft
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
        return info_fields(self.status(), self.stats, self.cut_off)

    def connection_handler(self, session: Session) -> ClusterConnection:
        """The RESP server's per-connection handler for a kv session."""
        return ClusterConnection(self, session)
