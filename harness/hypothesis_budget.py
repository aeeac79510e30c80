"""How many examples a differential test draws.

CI runs each differential test with its own fixed, derandomized budget (tests/conftest.py), so a
verdict never depends on the luck of a draw. `python3 scripts/dev.py explore [N]` sets
`ASPEN_EXPLORE_SCALE=N` and runs the same tests N times longer with random draws: the search
for new deviations that developers run before they stop.
"""

from __future__ import annotations

import os


def scaled_examples(ci_budget: int) -> int:
    """`ci_budget` times the exploration scale (1 unless exploring)."""
    scale = float(os.environ.get("ASPEN_EXPLORE_SCALE", "1"))
    return max(1, round(ci_budget * scale))
