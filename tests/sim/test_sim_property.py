"""Hypothesis explores the simulator's knobs (not just seeds): network loss, duplication and
delay, disk latency, snapshot frequency, workload mix. The real core must pass all of them."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.sim import SCENARIOS, SimFailure, SimParams, run_seed
from harness.sim.network import NetParams

params_strategy = st.builds(
    SimParams,
    nodes=st.sampled_from([3, 5, 7]),
    scenario=st.sampled_from(SCENARIOS),
    duration_ms=st.just(2500),
    final_quiet_ms=st.just(1000),
    disk_min_ms=st.just(0),
    disk_max_ms=st.integers(0, 8),
    snapshot_every=st.sampled_from([0, 5, 17, 60]),
    clients=st.integers(1, 6),
    keys=st.integers(1, 4),
    read_ratio=st.floats(0.0, 0.8),
    cas_ratio=st.floats(0.0, 0.2),
    fault_combo_p=st.floats(0.0, 1.0),
    snapshot_chunk_size=st.sampled_from([1, 7, 64, 1 << 20]),
    net=st.builds(NetParams, min_delay_ms=st.integers(0, 2), max_delay_ms=st.integers(2, 12),
                  slow_p=st.floats(0.0, 0.2), drop_p=st.floats(0.0, 0.05),
                  dup_p=st.floats(0.0, 0.1)),
)


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), params=params_strategy)
def test_any_reasonable_configuration_keeps_every_check(seed: int, params: SimParams) -> None:
    try:
        res = run_seed(seed, params)
    except SimFailure as f:
        pytest.fail(f"{f.report(60)}\n(params: {params!r})", pytrace=False)
    assert res.elections >= 1
