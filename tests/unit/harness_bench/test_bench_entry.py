"""harness.bench.entry runs the leader's and a follower's share of the entry path."""

from __future__ import annotations

from harness.bench.entry import main, measure


def test_measure_gives_both_shares_and_main_runs() -> None:
    r = measure(96, 32, 8)
    assert set(r) == {"leader_us", "follower_us"} and min(r.values()) > 0
    assert main(["-n", "64", "--batch", "16"]) == 0
