"""Read-only scripts served by this node: run in a worker thread, killable, BUSY meanwhile.

A read-only script (EVAL_RO & co., or a `no-writes` one: aspen.scripting.local) is a read:
no log entry, served at the connection's read consistency. Unlike a write script it has no
instruction budget, so it may run for seconds, and Redis's rules apply: after
`busy_reply_threshold` other clients get `-BUSY ...` (their commands wait until then, as in
Redis, where nothing is read meanwhile), SCRIPT KILL / FUNCTION KILL stop it.

The node must not stall meanwhile: the script runs in a worker thread (`trio.to_thread`; lupa
releases the GIL while Lua runs, the hook takes it every ~32k instructions to look at the kill
flag) while the trio loop keeps the Raft driver, heartbeats, the other clients and SCRIPT KILL
going. The script reads the keyspace as it was when it started: while it runs the node
*holds* the keyspace: committed entries are kept in order (`defer_apply`) and applied when it
ends. Raft is unaffected (commit, persistence, replication go on; only this node's apply
lags), writes of this node's clients wait for that apply, and its other clients are answered
BUSY anyway. One script runs at a time (one Lua state per keyspace), as in Redis.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs
import trio

from aspen.cluster.settings import ReadConsistency
from aspen.kv.ops import ReadOp
from aspen.resp.values import OK, Error, Map
from aspen.scripting.commands import BUSY_EVAL, BUSY_FUNCTION, NOTBUSY, function_stats
from aspen.scripting.local import ScriptCall, execute_killable

if TYPE_CHECKING:
    from aspen.cluster.runtime import ClusterNode
    from aspen.raft import Entry

_BARRIER = ReadOp([b"dbsize"])
"""A read the node serves at a consistency: once it returns, the local state is new enough
for that consistency (and stays so: it only moves forward)."""


@attrs.define(eq=False)
class RunningScript:
    call: ScriptCall
    started: float  # trio time
    killed: bool = False
    ended: trio.Event = attrs.Factory(trio.Event)

    def is_killed(self) -> bool:  # (the worker thread asks: a plain attribute read)
        return self.killed

    @property
    def busy_error(self) -> Error:
        return BUSY_EVAL if self.call.is_eval else BUSY_FUNCTION


@attrs.define
class ScriptStats:
    scripts_run: int = 0
    scripts_killed: int = 0
    busy_replies: int = 0
    entries_deferred: int = 0
    longest_hold: float = 0.0  # seconds the keyspace was held by one script


class ScriptRunner:
    """The node's read-only scripts (see the module docstring)."""

    def __init__(self, node: ClusterNode) -> None:
        self._node = node
        self.running: RunningScript | None = None
        self._lock = trio.Lock()  # FIFO: scripts run one at a time, in arrival order
        self._backlog: list[Entry] = []
        self._seed = 0
        self.stats = ScriptStats()

    @property
    def threshold(self) -> float:
        return self._node.settings.busy_reply_threshold

    # -- the hold on the keyspace

    def defer_apply(self, committed: list[Entry]) -> bool:
        """True if `committed` was kept for later: a script holds the keyspace."""
        if self.running is None:
            return False
        self._backlog.extend(committed)
        self.stats.entries_deferred += len(committed)
        return True

    def _release(self) -> None:
        """The script ended: apply what was committed meanwhile (in log order, before anything
        committed later: this runs in the same step that cleared `running`)."""
        if not self._backlog:
            return
        node = self._node
        todo, self._backlog = self._backlog, []
        node.apply(todo)
        node.after_apply()
        node.kick()

    # -- running

    async def run(self, op: ReadOp, call: ScriptCall, mode: ReadConsistency) -> object:
        """Serve the read-only script `op` at read consistency `mode`."""
        node = self._node
        if mode == "lease" and not node.lease_valid():
            # a follower would forward a lease read to the leader, which would then run the
            # script: a script is served here, after a ReadIndex round
            mode = "linearizable"
        if mode != "stale":
            barrier = await node.read(_BARRIER, mode)
            if type(barrier) is Error:
                return barrier  # CLUSTERDOWN
        async with self._lock:
            state = node.state
            now_ms = max(node.clock_ms(), state.last_time_ms)
            self._seed += 1  # (math.random of a read: any seed will do, nothing replicates it)
            if mode == "stale":
                node.stats.reads_served += 1  # (else the barrier read counted it)
            run = RunningScript(call, trio.current_time())
            self.running = run
            work = functools.partial(execute_killable, state.keyspace, op, now_ms, self._seed,
                                     run.is_killed)
            try:
                # abandon_on_cancel: if this task is cancelled (the node stops, the client
                # goes away) the script is killed; the thread ends at its next check
                reply = await trio.to_thread.run_sync(work, abandon_on_cancel=True)
            except BaseException:
                run.killed = True
                raise
            finally:
                self.running = None
                run.ended.set()
                held = trio.current_time() - run.started
                self.stats.scripts_run += 1
                self.stats.longest_hold = max(self.stats.longest_hold, held)
                if run.killed:
                    self.stats.scripts_killed += 1
                self._release()
        return reply

    # -- what other connections see meanwhile

    async def wait_turn(self) -> Error | None:
        """For another connection's command while a script runs: wait until no script runs
        (None: go ahead) or until the running one passes the busy threshold (its BUSY)."""
        while (run := self.running) is not None:
            deadline = run.started + self.threshold
            if trio.current_time() >= deadline:
                self.stats.busy_replies += 1
                return run.busy_error
            with trio.move_on_at(deadline):
                await run.ended.wait()
        return None

    def kill(self, is_eval: bool) -> object:
        """SCRIPT KILL (is_eval) / FUNCTION KILL, with Redis 7.0's answers. A script served
        here never wrote (it is read-only), so UNKILLABLE does not arise; a write script runs
        inside the apply, bounded by its budget, and no command is read meanwhile."""
        run = self.running
        if run is None:
            return NOTBUSY
        if is_eval and not run.call.is_eval:
            return BUSY_FUNCTION
        if not is_eval and run.call.is_eval:
            return BUSY_EVAL
        run.killed = True
        return OK

    def function_stats(self) -> object:
        run = self.running
        if run is not None and run.call.is_eval:
            return BUSY_EVAL
        running = None
        if run is not None:
            ms = int((trio.current_time() - run.started) * 1000)
            running = Map([(b"name", run.call.name), (b"command", list(run.call.command)),
                           (b"duration_ms", ms)])
        return function_stats(self._node.state.keyspace, running)


def allowed_while_busy(argv: Sequence[bytes]) -> bool:
    """Redis's `allow_busy` commands (SCRIPT KILL, FUNCTION KILL/STATS, MULTI, WATCH, AUTH,
    HELLO, QUIT, RESET, SHUTDOWN, ...): served while a script runs; unknown commands and
    arity errors are answered by the session (Redis checks those first too)."""
    from aspen.kv.commands import lookup, lookup_subcommand

    spec = lookup(argv[0])
    if spec is None or not spec.arity_ok(len(argv)):
        return True
    if spec.subcommands:
        sub = lookup_subcommand(spec, argv[1])
        if sub is None or not sub.arity_ok(len(argv)):
            return True
        spec = sub
    return "allow_busy" in spec.flags
