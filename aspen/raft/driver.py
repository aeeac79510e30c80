"""The driver: the one sequence that feeds a RaftCore its inputs and carries out its Readies.

Both the runtime (`aspen.cluster.runtime.ClusterNode`) and the simulator (`harness.sim.simnode`)
run this code, so every simulator seed exercises the sequence that ships. It is sans-I/O like
the core: it never sends, writes or sleeps itself. A pass (`run_pass`) is a generator of
steps; the caller carries out each step (`Send`, `Flush`, `InstallSnapshot`, `Persist`,
`Compact`) and then resumes it, so what follows a `Persist` runs only once the write is
durable (the runtime awaits an fsync, the simulator lets virtual disk time pass, a crash
simply never resumes it). Everything that is not I/O goes through `DriverHost` calls.

The sequence (the Ready contract of `ready.py`, with the runtime's refinements):

1. `drain`: pending ticks first (less the host's tick credit), then inbound messages, then
   `host.after_inputs` (the host submits writes, proposes its batch, asks for a read index);
2. `Flush` (the host's own queued messages go out);
3. for each `ready()`: `host.on_ready`; `Send(messages)`; `InstallSnapshot`; apply the
   committed entries that are already durable here and serve read states BEFORE this Ready's
   fsync (all of them on a leader: it counts itself in a quorum only once its copy is
   stored), so their replies do not wait for the disk, unless acknowledgements wait on that
   fsync (`apply_before_persist`: a follower acknowledges first); `Persist(entries,
   hard_state)` (a hard state that changes only the commit index is not worth an fsync: it
   is written with the next entries); `Send(persisted_messages)`; apply the rest;
   `advance`; `Compact`; then drain and `Flush` again.

The methods named `split_committed`, `outgoing` and `persist_step` are the seams the
simulator's planted bugs override (tests/sim/plants.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import attrs

from aspen.raft.core import RaftCore
from aspen.raft.messages import Message
from aspen.raft.ready import ReadState, Ready
from aspen.raft.types import Entry, HardState, SnapshotMeta


@attrs.frozen
class Send:
    """Send these Raft messages now (best effort)."""

    messages: list[Message]


@attrs.frozen
class Flush:
    """Send what the host queued during the pass (forwarded writes, rejections)."""


@attrs.frozen
class InstallSnapshot:
    """Restore the state machine from `data` and store the snapshot (replacing the log)."""

    meta: SnapshotMeta
    data: bytes


@attrs.frozen
class Persist:
    """Append `entries` (truncating a conflicting stored suffix) and store `hard_state` if
    given, with one fsync. The pass resumes only once both are durable."""

    entries: list[Entry]
    hard_state: HardState | None


@attrs.frozen
class Compact:
    """The Ready is advanced: the host may snapshot its state machine and compact the log."""


Step = Send | Flush | InstallSnapshot | Persist | Compact


class DriverHost(Protocol):
    """What the driver asks of the node that runs it (no I/O: steps carry that)."""

    def on_ready(self, rd: Ready) -> None:
        """A Ready was taken: look at its soft state, hard state and notices first."""
        ...

    def after_inputs(self, ticked: bool) -> None:
        """Inputs were handed to the core: propose and ask for read indexes now."""
        ...

    def apply(self, entries: list[Entry]) -> None:
        """Apply committed entries, in log order."""
        ...

    def serve_reads(self, read_states: list[ReadState]) -> None:
        """The core answered read-index requests."""
        ...

    def after_apply(self) -> None:
        """Entries were applied: wake whatever waits for the applied index."""
        ...


class Driver:
    """Owns one core's inputs and the sequence of its Readies (see the module docstring)."""

    def __init__(self, core: RaftCore, host: DriverHost, durable_hs: HardState) -> None:
        self.core = core
        self.host = host
        self.durable_hs = durable_hs  # the hard state storage holds
        self.lazy_hs: HardState | None = None  # a newer commit index not yet written
        self.inbox: list[Message] = []
        self.ticks = 0
        # Ticks the next drains skip: a follower that spent long applying must not count that
        # time toward its election timeout (the leader applied the same entries meanwhile).
        self.tick_credit = 0

    # -- inputs -----------------------------------------------------------------------------

    def add_message(self, msg: Message) -> None:
        self.inbox.append(msg)

    def add_tick(self) -> None:
        self.ticks += 1

    def drain(self) -> None:
        """Hand the core every pending input, then let the host add its own.

        Ticks first: they were counted before now, so a message waiting in the inbox is
        treated as the newest event. The other order would let ticks that piled up during a
        stall count AFTER a leader's heartbeat and shorten the time this follower refuses
        votes, which the leader's read lease relies on."""
        core = self.core
        ticks, self.ticks = self.ticks, 0
        if self.tick_credit and ticks:
            used = min(ticks, self.tick_credit)
            ticks -= used
            self.tick_credit -= used
        for _ in range(ticks):
            core.tick()
        msgs, self.inbox = self.inbox, []
        for msg in msgs:
            core.step(msg)
        self.host.after_inputs(ticks > 0)

    # -- the pass ---------------------------------------------------------------------------

    def run_pass(self) -> Iterator[Step]:
        """One pass of the driver: drain, flush, then every Ready until none is left."""
        core = self.core
        self.drain()
        yield Flush()
        while core.has_ready():
            yield from self.handle_ready(core.ready())
            self.drain()
            yield Flush()

    def handle_ready(self, rd: Ready) -> Iterator[Step]:
        host = self.host
        host.on_ready(rd)
        now, after_persist = self.outgoing(rd)
        if now:
            yield Send(now)
        if rd.snapshot is not None:
            yield InstallSnapshot(*rd.snapshot)
        early, later = self.split_committed(rd)
        persist = self.persist_step(rd)
        deferred = not self.apply_before_persist(persist, after_persist)
        if not deferred:
            host.apply(early)
            host.serve_reads(rd.read_states)
            host.after_apply()
        if persist is not None:
            yield persist
            if persist.hard_state is not None:  # durable now
                self.durable_hs = persist.hard_state
                self.lazy_hs = None
        if after_persist:
            yield Send(after_persist)
        if deferred:
            host.apply(early + later)
            host.serve_reads(rd.read_states)
            host.after_apply()
        elif later:
            host.apply(later)
            host.after_apply()
        self.core.advance(rd)
        yield Compact()

    # -- the seams ----------------------------------------------------------------------------

    def outgoing(self, rd: Ready) -> tuple[list[Message], list[Message]]:
        """The messages sent at once, and those sent only once this Ready is durable (votes
        and append acks: a crash must not make a node forget what it acknowledged)."""
        return rd.messages, rd.persisted_messages

    def split_committed(self, rd: Ready) -> tuple[list[Entry], list[Entry]]:
        """The committed entries applied before this Ready's fsync (already durable here),
        and those applied after it (in `rd.entries`, not yet durable here)."""
        committed = rd.committed
        if rd.entries and committed and committed[-1].index >= rd.entries[0].index:
            first_unstable = rd.entries[0].index
            cut = next(i for i, e in enumerate(committed) if e.index >= first_unstable)
            return committed[:cut], committed[cut:]
        return committed, []

    def apply_before_persist(self, persist: Persist | None, after_persist: list[Message]) -> bool:
        """Apply the entries already durable here (and serve read states) before this
        Ready's fsync? Yes, so that the replies waiting on them do not wait for the disk
        (a leader's clients); but not when messages wait on this fsync (a follower's append
        acknowledgements): the leader commits only once they arrive, and applying first
        would put this node's apply of the previous batch (milliseconds, for a batch of
        hundreds of ops) on every write's path. Applied just after the acknowledgement, it
        overlaps the leader's next round (docs/benchmarks.md, "Issue 20, round 5")."""
        return persist is None or not after_persist

    def persist_step(self, rd: Ready) -> Persist | None:
        """Write `rd.entries` and the hard state with one fsync, or not at all.

        A hard state that differs from the durable one only by its commit index is not worth
        an fsync of its own (the commit index is volatile state in Raft: a restarted node
        learns it again, and the core clamps it to the log). It is written with the next
        batch of entries instead, or with the next term/vote change."""
        hs = rd.hard_state
        if hs is not None:
            durable = self.durable_hs
            if not rd.entries and hs.term == durable.term and hs.vote == durable.vote:
                self.lazy_hs = hs
                return None
        elif not rd.entries:
            return None
        else:
            hs = self.lazy_hs
        return Persist(rd.entries, hs)
