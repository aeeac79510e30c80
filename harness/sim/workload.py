"""Clients of the simulated cluster: register operations over a few keys.

Each client runs one operation at a time against some node: reads go through ReadIndex,
writes and compare-and-sets are proposals. A "not leader" answer (with or without a hint)
or a definite "not applied" makes the client try again elsewhere with the same operation;
a client that hears nothing within its timeout records the operation with an unknown
outcome and moves on. Every value written is unique, so a read names the write it saw.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from harness.linearizability import CAS as L_CAS
from harness.linearizability import READ as L_READ
from harness.linearizability import WRITE as L_WRITE
from harness.linearizability import Op
from harness.sim.simnode import CAS, READ, WRITE

if TYPE_CHECKING:
    from harness.sim.runner import Simulation


@attrs.define
class Pending:
    req: tuple[int, int]
    kind: str
    key: str
    value: str | None
    expected: str | None
    call: float
    call_ms: int
    attempts: int = 0


class Client:
    """`probe=True`: the health-check client. It writes only after a full heal, until one
    write is acknowledged, with a short timeout: it measures how soon the cluster takes
    writes again, independently of ordinary clients stuck waiting on lost requests."""

    def __init__(self, sim: Simulation, client_id: int, *, probe: bool = False) -> None:
        self.sim = sim
        self.id = client_id
        self.probe = probe
        self.idle = probe
        self.seq = 0
        self.op: Pending | None = None
        self.target = sim.rng.choice(sorted(sim.initial_voters))
        self.seen: dict[str, str | None] = {}  # last value this client saw per key
        self.done = False

    # -- issuing --------------------------------------------------------------------------
    def next_op(self) -> None:
        sim = self.sim
        if sim.clock.now >= sim.workload_end:
            self.done = True
            return
        if self.probe and sim.awaiting_progress is None:
            self.idle = True
            return
        rng = sim.rng
        p = sim.params
        self.seq += 1
        key = f"k{rng.randrange(p.keys)}"
        r = rng.random()
        value: str | None = None
        expected: str | None = None
        if self.probe:
            kind = WRITE
            value = f"{self.id}.{self.seq}"
        elif r < p.read_ratio:
            kind = READ
        elif r < p.read_ratio + p.cas_ratio:
            kind = CAS
            value = f"{self.id}.{self.seq}"
            expected = self.seen.get(key)
        else:
            kind = WRITE
            value = f"{self.id}.{self.seq}"
        if rng.random() < p.random_target_p:
            self.target = rng.choice(sorted(sim.nodes))
        self.op = Pending((self.id, self.seq), kind, key, value, expected, sim.stamp(),
                          sim.clock.now)
        timeout = p.probe_timeout_ms if self.probe else p.client_timeout_ms
        sim.clock.after(timeout, self._timeout, self.op.req)
        self._send(self.op.req)

    def _send(self, req: tuple[int, int]) -> None:
        op = self.op
        if op is None or op.req != req:
            return
        sim = self.sim
        op.attempts += 1
        node = sim.nodes[self.target]
        sim.clock.after(sim.client_delay(), node.client_request, self.id, op.req, op.kind,
                        op.key, op.value, op.expected)

    # -- answers --------------------------------------------------------------------------
    def on_reply(self, req: tuple[int, int], status: str, payload: Any) -> None:
        op = self.op
        if op is None or op.req != req:
            return  # an answer to an operation we already gave up on
        sim = self.sim
        if status == "ok":
            self._record(op, payload, sim.stamp())
            if op.kind == READ:
                self.seen[op.key] = payload
            elif op.kind == WRITE or payload:
                self.seen[op.key] = op.value
            sim.op_succeeded(op)
            self._finish()
            return
        # not applied: try again, at the hinted leader or anywhere
        if status == "not_leader" and payload is not None and payload in sim.nodes:
            self.target = payload
        else:
            self.target = sim.rng.choice(sorted(sim.nodes))
        backoff = sim.rng.randint(1, sim.params.retry_backoff_ms)
        sim.retries += 1
        sim.clock.after(backoff, self._send, req)

    def _timeout(self, req: tuple[int, int]) -> None:
        op = self.op
        if op is None or op.req != req:
            return
        sim = self.sim
        sim.trace.add(sim.clock.now, f"client {self.id}", f"timeout {op.kind} {op.key}")
        if op.kind != READ:  # a read that timed out tells nothing
            self._record(op, None, None)
        sim.timeouts += 1
        self.target = sim.rng.choice(sorted(sim.nodes))
        self._finish()

    def _finish(self) -> None:
        self.op = None
        sim = self.sim
        sim.clock.after(sim.rng.randint(0, sim.params.think_ms), self.next_op)

    def wake(self) -> None:
        """A heal happened: a probe that was idle starts writing."""
        if self.idle:
            self.idle = False
            self.sim.clock.after(0, self.next_op)

    @property
    def finished(self) -> bool:
        return self.done or (self.probe and self.idle and self.op is None)

    def _record(self, op: Pending, output: Any, ret: float | None) -> None:
        sim = self.sim
        kind = {READ: L_READ, WRITE: L_WRITE, CAS: L_CAS}[op.kind]
        sim.history.append(Op(client=self.id, key=op.key, kind=kind, call=op.call, ret=ret,
                              value=op.value, expected=op.expected, output=output))
        res = "?" if ret is None else repr(output)
        what = {READ: f"read {op.key} -> {res}", WRITE: f"write {op.key}={op.value} -> "
                f"{'?' if ret is None else 'ok'}",
                CAS: f"cas {op.key} {op.expected}->{op.value} -> {res}"}[op.kind]
        sim.trace.add(sim.clock.now, f"client {self.id}", what)
