"""The checks can fail: plant a bug in the core (test code only, see plants.py) and the
simulator must report it within a bounded number of seeds, through the expected check;
the same seed must pass with the real core (so the plant, not the simulator, is at fault)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from plants import DoubleVoteCore, EarlyAckCore, OldTermCommitCore, UnconfirmedReadCore

from harness.sim import SimFailure, SimParams, run_seed


def first_failure(core: Callable[..., Any], params: SimParams, max_seeds: int) -> SimFailure:
    for seed in range(max_seeds):
        try:
            run_seed(seed, params, core)
        except SimFailure as f:
            return f
    pytest.fail(f"the planted bug went unnoticed for {max_seeds} seeds")


def assert_real_core_passes(f: SimFailure) -> None:
    run_seed(f.seed, f.params)  # raises SimFailure if the real core fails too


@pytest.mark.slow
def test_a_node_voting_twice_in_a_term_is_caught_by_vote_safety() -> None:
    f = first_failure(DoubleVoteCore, SimParams(nodes=5, scenario="partition"), 20)
    assert f.check == "vote-safety", f.report()
    assert f"--seed {f.seed}" in f.replay
    assert_real_core_passes(f)


@pytest.mark.slow
def test_a_double_vote_elects_two_leaders_in_one_term() -> None:
    """Without the vote check, Election Safety itself catches the consequence."""
    params = SimParams(nodes=5, scenario="mixed", check_votes=False)
    f = first_failure(DoubleVoteCore, params, 40)
    assert f.check == "election-safety", f.report()
    assert "two leaders in term" in f.message
    assert_real_core_passes(f)


@pytest.mark.slow
def test_committing_an_old_term_entry_by_counting_replicas_is_caught() -> None:
    """The Figure 8 anomaly. One entry per AppendEntries lets an old-term entry reach a
    majority ahead of the new leader's no-op (batched appends carry both at once)."""
    params = SimParams(nodes=5, scenario="figure8", clients=8, max_entries_per_msg=1)
    f = first_failure(OldTermCommitCore, params, 30)
    assert f.check in {"leader-completeness", "state-machine-safety", "linearizability"}, \
        f.report()
    assert_real_core_passes(f)


@pytest.mark.slow
def test_a_read_served_without_confirming_leadership_is_caught() -> None:
    """A deposed leader whose clock runs slow (or that was paused) still believes it leads;
    serving a read without a quorum round returns a stale value."""
    params = SimParams(nodes=5, faults=("isolate_leader", "slow_clock", "pause_leader"),
                       fault_combo_p=1.0, clients=8, read_ratio=0.5)
    f = first_failure(UnconfirmedReadCore, params, 30)
    assert f.check == "linearizability", f.report()
    assert "not linearizable" in f.message
    assert "could not be linearized was called at" in f.trace
    assert_real_core_passes(f)


def test_acknowledging_before_persisting_is_caught() -> None:
    f = first_failure(EarlyAckCore, SimParams(nodes=3, scenario="crash", duration_ms=2000), 5)
    assert f.check == "persist-before-ack", f.report()
    assert_real_core_passes(f)
