"""Deterministic simulation of a cluster of `aspen.raft` cores (see DESIGN.md, "Tests").

`run_seed(seed, params)` runs one seeded scenario and returns its statistics, or raises
`SimFailure` carrying the failed check, the replay command and the trace that led there.
`python -m harness.sim --seeds 1000 --nodes 5` runs many.
"""

from harness.sim.runner import SCENARIOS, SimFailure, SimParams, SimResult, Simulation, run_seed

__all__ = ["SCENARIOS", "SimFailure", "SimParams", "SimResult", "Simulation", "run_seed"]
