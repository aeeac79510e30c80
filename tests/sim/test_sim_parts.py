"""The simulator's own parts: clock, network, durable model, node crash semantics, trace."""

from __future__ import annotations

import random

import pytest

from aspen.raft.types import Entry, Membership, SnapshotMeta
from harness.sim import SimParams, Simulation
from harness.sim.clock import Clock
from harness.sim.durable import DurableLog
from harness.sim.invariants import Invariants, InvariantViolation
from harness.sim.network import NetParams, Network
from harness.sim.statemachine import Command


def test_clock_runs_events_in_time_then_scheduling_order() -> None:
    clock = Clock()
    seen: list[str] = []
    clock.at(5, seen.append, "b")
    clock.at(1, seen.append, "a")
    clock.at(5, seen.append, "c")
    clock.run_until(10)
    assert seen == ["a", "b", "c"]
    assert clock.now == 10
    with pytest.raises(ValueError):
        clock.at(3, seen.append, "past")


def _net(params: NetParams, seed: int = 1) -> tuple[Clock, Network, list[tuple[int, int, int]]]:
    clock = Clock()
    got: list[tuple[int, int, int]] = []
    net = Network(clock, random.Random(seed), lambda s, d, p: got.append((s, d, clock.now)),
                  params)
    return clock, net, got


def test_network_partition_is_symmetric_and_heals() -> None:
    clock, net, got = _net(NetParams())
    net.partition([[1, 2], [3]])
    for s, d in [(1, 3), (3, 1), (1, 2), (2, 1)]:
        net.send(s, d, b"x")
    clock.run_until(100)
    assert sorted((s, d) for s, d, _ in got) == [(1, 2), (2, 1)]
    net.heal()
    net.send(1, 3, b"x")
    clock.run_until(200)
    assert (1, 3) in [(s, d) for s, d, _ in got]


def test_network_one_way_block_and_in_flight_loss() -> None:
    clock, net, got = _net(NetParams(min_delay_ms=10, max_delay_ms=10))
    net.block_one_way(1, [2])
    net.send(1, 2, b"x")
    net.send(2, 1, b"y")
    net.send(3, 2, b"z")  # in flight when its link is cut
    clock.run_until(5)
    net.isolate(3, [1, 2])
    clock.run_until(100)
    assert [(s, d) for s, d, _ in got] == [(2, 1)]


def test_network_drops_duplicates_and_reorders_at_the_configured_rates() -> None:
    clock, net, got = _net(NetParams(min_delay_ms=1, max_delay_ms=2, slow_p=0.5, slow_ms=50,
                                     drop_p=0.2, dup_p=0.1))
    for i in range(2000):
        clock.at(i, net.send, 1, 2, i.to_bytes(2, "big"))
    clock.run_until(10_000)
    assert 0.15 < net.dropped / 2000 < 0.25
    assert 0.07 < net.duplicated / 2000 < 0.13
    assert len(got) == 2000 - net.dropped + net.duplicated


def test_network_reorders_messages() -> None:
    clock = Clock()
    order: list[int] = []
    net = Network(clock, random.Random(3), lambda s, d, p: order.append(p[0]),
                  NetParams(min_delay_ms=1, max_delay_ms=3, slow_p=0.3, slow_ms=40))
    for i in range(100):
        clock.at(i, net.send, 1, 2, bytes([i]))
    clock.run_until(1000)
    assert sorted(order) == list(range(100))
    assert order != list(range(100))


def test_durable_log_truncates_appends_and_snapshots() -> None:
    d = DurableLog()
    d.append([Entry(1, 1), Entry(2, 1), Entry(3, 1)])
    d.append([Entry(2, 2)])  # a conflicting suffix is replaced
    assert [(e.index, e.term) for e in d.entries] == [(1, 1), (2, 2)]
    assert d.term_at(2) == 2 and d.term_at(3) is None
    meta = SnapshotMeta(1, 1, Membership(voters={1}))
    d.save_snapshot(meta, b"s")
    assert d.snap_index == 1 and [e.index for e in d.entries] == [2]
    assert d.term_at(1) == 1 and d.term_at(0) is None
    d.install_snapshot(SnapshotMeta(9, 3, Membership(voters={1})), b"t")
    assert d.entries == [] and d.last_index() == 9
    with pytest.raises(AssertionError):
        d.append([Entry(11, 3)])  # a gap


def test_log_matching_check_flags_a_divergent_prefix() -> None:
    inv = Invariants()
    inv.entries_persisted(1, [Entry(1, 1, data=b"a"), Entry(2, 2, data=b"b")], 0)
    inv.entries_persisted(2, [Entry(2, 2, data=b"b")], 1)  # same entry, same predecessor
    with pytest.raises(InvariantViolation) as e:
        inv.entries_persisted(3, [Entry(2, 2, data=b"b")], 3)  # same (2, 2), other prefix
    assert e.value.check == "log-matching"
    with pytest.raises(InvariantViolation):
        inv.entries_persisted(3, [Entry(1, 1, data=b"other")], 0)


def test_election_vote_and_state_machine_checks() -> None:
    inv = Invariants()
    assert inv.note_leader(1, 5)
    assert not inv.note_leader(1, 5)
    with pytest.raises(InvariantViolation, match="election-safety"):
        inv.note_leader(2, 5)
    inv.vote_persisted(1, 3, 2)
    inv.vote_persisted(1, 3, 2)
    with pytest.raises(InvariantViolation, match="vote-safety"):
        inv.vote_persisted(1, 3, 4)
    inv.entry_applied(1, Entry(1, 1, data=b"x"))
    with pytest.raises(InvariantViolation, match="state-machine-safety"):
        inv.entry_applied(2, Entry(1, 2, data=b"y"))


def test_leader_completeness_check() -> None:
    inv = Invariants()
    inv.entry_applied(1, Entry(1, 1))
    inv.entry_applied(1, Entry(2, 2))
    inv.leader_commit_seen(2, 2)
    log = {1: 1, 2: 2}
    inv.check_leader_completeness(3, 3, 0, log.get)
    with pytest.raises(InvariantViolation, match="leader-completeness"):
        inv.check_leader_completeness(4, 4, 0, {1: 1, 2: 3}.get)
    inv.check_leader_completeness(5, 5, 2, {}.get)  # all of it inside its snapshot


def test_a_crash_loses_the_unpersisted_ready_and_keeps_the_persisted_state() -> None:
    params = SimParams(nodes=3, scenario="stable", disk_min_ms=5, disk_max_ms=5)
    sim = Simulation(7, params)
    boot = Membership(voters=sim.initial_voters)
    for i in sim.initial_voters:
        sim.nodes[i].start(boot)
    sim.clock.run_until(2000)
    leader = sim.leader()
    assert leader is not None
    before = leader.durable.hard_state
    assert before.commit >= 1
    leader.pump()
    index = leader.core.propose(Command((99, 1), "w", "k0", "lost").encode())
    leader.pump()
    assert leader.persisting  # the Ready with that entry is "being written"
    leader.crash()
    assert leader.durable.last_index() < index  # the entry never reached the disk
    assert leader.durable.hard_state == before
    leader.start()
    assert leader.core.last_index == leader.durable.last_index()
    assert leader.core.hard_state.term == before.term


def test_trace_window_and_tail() -> None:
    from harness.sim.trace import Trace

    t = Trace()
    for i in range(10):
        t.add(i * 10, i % 3 + 1, f"event {i}")
    assert t.render(2).splitlines()[-1].endswith("event 9")
    window = t.render_window(20, 40)
    assert "event 2" in window and "event 4" in window and "event 5" not in window
    assert "n3" in window
