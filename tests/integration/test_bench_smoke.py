"""End to end: `python -m harness.bench --smoke` with real servers (tiny figures).

Checks the machinery, not the speed: every figure of the report is there, the docs section
is written between its markers, and no process the run started is left alive, nor its temp
dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.bench.report import BEGIN_MARKER, END_MARKER

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_smoke_run_reports_every_figure_and_leaves_nothing_behind(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\n## Hand-written\n\nkept\n")
    out = subprocess.run(
        [sys.executable, "-m", "harness.bench", "--smoke", "--out", str(tmp_path / "out"),
         "--write-docs", "--docs", str(docs)],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    reports = sorted((tmp_path / "out").glob("report-*.json"))
    assert reports, out.stderr[-3000:]
    results = json.loads(reports[-1].read_text())
    assert results["errors"] == [], (results["errors"], out.stderr[-3000:])
    assert out.returncode == 0, out.stderr[-3000:]

    rows = {(r["target"], r["test"], r["pipeline"]) for r in results["throughput"]}
    for target in ("redis-ceiling", "redis-durable", "pysyncobj", "aspen-1", "aspen-3"):
        for test in ("SET", "GET"):
            for pipeline in (1, 16):
                assert (target, test, pipeline) in rows
    assert ("aspen-5", "SET", 1) in rows
    for r in results["throughput"]:
        assert r["rps"] > 0 and r["p50_ms"] > 0 and r["p99_ms"] is not None
        assert r["server_cpu_us"] is not None
    assert {m["target"] for m in results["mixed"]} == {
        "redis-ceiling", "redis-durable", "pysyncobj", "aspen-3"}
    assert all(m["ops"] > 0 and m["p999_ms"] >= m["p99_ms"] >= m["p50_ms"] > 0
               for m in results["mixed"])
    fo = results["failover"]
    assert len(fo["trials"]) == 1 and fo["p99_s"] is not None and 0 < fo["p99_s"] < 15
    mem = results["memory"]
    assert mem["aspen"]["rss_per_key"] > 0 and mem["redis"]["used_memory_per_key"] > 0
    assert results["snapshot"]["bytes"] > 0 and results["snapshot"]["snapshot_s"] > 0
    rs = results["restart"]
    for key in ("replay", "from_snapshot"):
        assert rs[key]["caught_up_s"] >= rs[key]["serving_s"] > 0
    assert rs["from_snapshot"]["snapshot_index"] >= rs["commit_index"]
    cu = results["catchup"]
    assert cu["caught_up_s"] is not None or cu.get("after_transfer_s") is not None
    assert {t["id"] for t in results["targets"]} >= {"5.1", "5.5", "6.1", "7.1", "7.2"}
    assert all(t["met"] is not None for t in results["targets"])
    assert all(info["read_consistency"] == {"1": "linearizable", "2": "linearizable",
                                            "3": "linearizable", **(
                                                {"4": "linearizable", "5": "linearizable"}
                                                if info["nodes"] == 5 else {})}
               for name, info in results["targets_info"].items()
               if name.startswith("aspen") and info["nodes"] > 1)

    # Nothing left: every process the run started is gone, and its temp dir too.
    assert results["meta"]["pids"]
    assert [p for p in results["meta"]["pids"] if _alive(p)] == []
    assert not Path(results["meta"]["workdir"]).exists()

    text = docs.read_text()
    assert text.startswith("# Benchmarks\n\n## Hand-written\n\nkept\n")
    assert text.count(BEGIN_MARKER) == 1 and text.count(END_MARKER) == 1
    assert "| 7.1 |" in text
    assert reports[-1].with_suffix(".md").exists()
