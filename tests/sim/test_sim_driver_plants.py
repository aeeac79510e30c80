"""The simulator runs the runtime's driver (`aspen.raft.driver.Driver`, the sequence
`ClusterNode` runs), so a bug planted in that sequence must be caught within a bounded number
of seeds, through the expected check; the same seed must pass with the real driver (so the
plant, not the simulator, is at fault). Cores are the real one throughout."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from plants import ApplyBeforeCommitDriver, EarlyAckDriver, LazyVoteDriver

from harness.sim import SimFailure, SimParams, run_seed


def first_failure(driver: Callable[..., Any], params: SimParams, max_seeds: int) -> SimFailure:
    for seed in range(max_seeds):
        try:
            run_seed(seed, params, driver_factory=driver)
        except SimFailure as f:
            return f
    pytest.fail(f"the planted driver bug went unnoticed for {max_seeds} seeds")


def assert_real_driver_passes(f: SimFailure) -> None:
    run_seed(f.seed, f.params)  # raises SimFailure if the real driver fails too


def test_sending_acks_before_the_fsync_is_caught() -> None:
    f = first_failure(EarlyAckDriver, SimParams(nodes=3, scenario="crash", duration_ms=2000), 5)
    assert f.check == "persist-before-ack", f.report()
    assert_real_driver_passes(f)


def test_a_vote_not_written_before_it_is_sent_is_caught() -> None:
    """The lazy commit-index write stretched to votes: the vote leaves before it is durable."""
    f = first_failure(LazyVoteDriver, SimParams(nodes=3, scenario="crash", duration_ms=2000), 5)
    assert f.check == "persist-before-ack", f.report()
    assert "vote" in f.message
    assert_real_driver_passes(f)


def test_applying_before_commit_is_caught() -> None:
    f = first_failure(
        ApplyBeforeCommitDriver, SimParams(nodes=3, scenario="crash", duration_ms=2000), 5
    )
    assert f.check == "apply-before-commit", f.report()
    assert_real_driver_passes(f)


@pytest.mark.slow
def test_acknowledging_writes_before_a_majority_has_them_loses_acknowledged_writes() -> None:
    """Without the apply check, the consequence is caught: a leader that applies (and so
    acknowledges) its entries before they commit loses acknowledged writes when it crashes or
    is cut off, or applies entries that the next leader overwrites."""
    params = SimParams(nodes=3, scenario="mixed", check_apply=False, clients=8)
    f = first_failure(ApplyBeforeCommitDriver, params, 30)
    assert f.check in {"linearizability", "state-machine-safety"}, f.report()
    assert_real_driver_passes(f)
