"""`python -m harness.sim`: the summary, and what a failure prints (seed, replay, trace)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from plants import DoubleVoteCore

import harness.sim.runner as runner
from harness.sim.seeds import main, params_for_seed, percentile


def test_summary_of_a_few_seeds(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["--seeds", "3", "--nodes", "3", "--duration-ms", "1500"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "seeds run: 3  passed: 3  failed: 0" in out
    ops = int(re.search(r"client ops checked: (\d+)", out).group(1))  # type: ignore[union-attr]
    assert ops > 0
    assert "elections:" in out and "first leader: p50" in out


def test_a_failure_prints_seed_replay_command_and_trace(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # test-only: make the CLI drive a core with a planted double vote
    monkeypatch.setattr(runner, "default_core_factory", lambda: DoubleVoteCore)
    rc = main(["--seeds", "20", "--nodes", "5", "--scenario", "partition"])
    out = capsys.readouterr().out
    assert rc == 1
    m = re.search(r"FAILED seed (\d+) \(5 nodes, scenario partition\): vote-safety", out)
    assert m, out
    seed = m.group(1)
    assert f"replay: python -m harness.sim --seed {seed} --nodes 5 --scenario partition" in out
    assert re.search(r"\d+ ms  n\d\s+(candidate|leader|follower)", out)  # the trace
    # replaying that exact seed fails the same way
    rc = main(["--seed", seed, "--nodes", "5", "--scenario", "partition"])
    again = capsys.readouterr().out
    assert rc == 1 and f"FAILED seed {seed}" in again and "vote-safety" in again


def test_replaying_one_seed_with_a_trace_file(tmp_path: object) -> None:
    import pathlib

    path = pathlib.Path(str(tmp_path)) / "trace.txt"
    proc = subprocess.run(
        [sys.executable, "-m", "harness.sim", "--seed", "4", "--nodes", "3", "--scenario",
         "crash", "--duration-ms", "1500", "--trace-file", str(path)],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "seed 4 (3 nodes, crash): ok" in proc.stdout
    lines = path.read_text().splitlines()
    assert any("LEADER of term" in line for line in lines)


def test_seed_parameters_are_a_function_of_the_seed() -> None:
    picked = {(params_for_seed(s).nodes, params_for_seed(s).scenario) for s in range(200)}
    assert {n for n, _ in picked} == {3, 5, 7}
    assert len({s for _, s in picked}) >= 6
    assert params_for_seed(42) == params_for_seed(42)
    assert params_for_seed(42, nodes=7).nodes == 7


def test_percentile() -> None:
    assert percentile([], 50) is None
    assert percentile([5], 99) == 5
    assert percentile(list(range(101)), 50) == 50
    assert percentile(list(range(101)), 99) == 99


def test_the_replay_command_rebuilds_the_exact_parameters() -> None:
    import shlex

    from harness.sim import SimParams
    from harness.sim.seeds import parse

    for p in [
        SimParams(nodes=3, scenario="crash"),
        SimParams(nodes=7, scenario="figure8", duration_ms=3000, final_quiet_ms=1000,
                  max_entries_per_msg=1, clients=8),
        SimParams(nodes=5, scenario="mixed", faults=("isolate_leader", "slow_clock"),
                  fault_combo_p=1.0, read_ratio=0.5),
    ]:
        replay = p.replay_args(17)
        assert "#" not in replay  # nothing left out of the command
        args, make = parse(shlex.split(replay))
        assert args.seed == 17
        assert make(17) == p
