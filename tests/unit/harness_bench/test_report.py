"""Targets evaluation, Markdown rendering and the generated docs section."""

from __future__ import annotations

from typing import Any

import pytest

from harness.bench.report import (
    BEGIN_MARKER,
    END_MARKER,
    evaluate_targets,
    render_markdown,
    replace_section,
    summarize_failover,
)

LABELS = {"aspen-3": "Aspen 3 nodes", "aspen-3-base": "Aspen 3 nodes @base",
          "aspen-1-base": "Aspen 1 node @base", "redis-durable": "redis durable",
          "redis-ceiling": "redis ceiling", "pysyncobj": "PySyncObj",
          "aspen-1": "Aspen 1 node"}


def rb(target: str, test: str, pipeline: int, rps: float, p99: float = 5.0,
       size: int = 100) -> dict[str, Any]:
    return {"target": target, "label": LABELS[target], "test": test, "pipeline": pipeline,
            "size": size, "clients": 50, "requests": 1000, "rps": rps, "p50_ms": 1.25,
            "p99_ms": p99, "server_cpu_us": 42.5}


def results(aspen_set1: float = 6000.0, aspen_p99: float = 5.0) -> dict[str, Any]:
    return {
        "meta": {"mode": "quick", "argv": "--quick", "started_utc": "2026-11-24 11:00 UTC",
                 "loadavg_start": [3.5, 3.0, 2.0], "loadavg_end": [4.25, 3.0, 2.0],
                 "cpus": 2, "python": "3.11.7", "commit": "abc1234",
                 "redis_version": "redis-server 7.0.15", "duration_s": 200.0},
        "throughput": [
            rb("redis-durable", "SET", 1, 10000.0), rb("redis-durable", "SET", 16, 100000.0),
            rb("redis-ceiling", "SET", 1, 40000.0),
            rb("pysyncobj", "SET", 1, 500.0), rb("pysyncobj", "SET", 16, 4000.0),
            rb("aspen-3", "SET", 1, aspen_set1, p99=aspen_p99),
            rb("aspen-3", "GET", 1, 9000.0, p99=12.0),
            rb("aspen-3", "SET", 16, 20000.0), rb("aspen-3", "GET", 16, 30000.0),
            rb("aspen-1", "SET", 1, 7500.0), rb("aspen-1", "SET", 16, 45000.0),
        ],
        "mixed": [{"target": "redis-durable", "label": "redis durable", "connections": 50,
                   "seconds": 3.0, "ops": 9000, "errors": 0, "ops_per_s": 3000.0,
                   "p50_ms": 1.0, "p99_ms": 9.0, "p999_ms": 20.0, "client_cpu_percent": 60.0},
                  {"target": "aspen-3", "label": "Aspen 3 nodes", "connections": 50,
                   "seconds": 3.0, "ops": 4500, "errors": 1, "ops_per_s": 1500.0,
                   "p50_ms": 3.0, "p99_ms": 19.0, "p999_ms": 41.0, "client_cpu_percent": 30.0}],
        "failover": summarize_failover([{"seconds": 0.9}, {"seconds": 1.2}, {"seconds": 1.4}]),
        "memory": {"value_size": 10,
                   "aspen": {"keys": 1000, "rss_per_key": 250.0, "load_s": 2.0,
                             "rss_per_key_by_node": {"1": 250.0, "2": 240.0}},
                   "redis": {"keys": 1000, "used_memory_per_key": 100.0, "rss_per_key": 110.0}},
        "snapshot": {"keys": 1000, "bytes": 30000, "encode_s": 0.5, "write_fsync_s": 0.25,
                     "snapshot_s": 0.75, "restore_s": 0.4},
        "restart": {"serving_s": 1.5, "caught_up_s": 2.5, "commit_index": 1234,
                    "snapshot_index": 1234,
                    "from_snapshot": {"serving_s": 1.5, "caught_up_s": 2.5,
                                      "snapshot_index": 1234},
                    "replay": {"serving_s": 0.5, "caught_up_s": 4.5, "snapshot_index": 0}},
        "catchup": {"serving_s": 1.0, "caught_up_s": 3.5, "leader_applied": 1300},
        "notes": ["a note"], "errors": [],
    }


def by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in rows}


def test_targets_compare_against_the_references_of_the_same_run() -> None:
    t = by_id(evaluate_targets(results()))
    assert t["5.1"]["met"] is True and t["5.1"]["value"] == pytest.approx(0.6)
    assert t["5.2"]["met"] is False and t["5.2"]["value"] == pytest.approx(0.2)
    assert t["5.3"]["met"] is True and t["5.4"]["met"] is True
    assert t["5.5"]["met"] is True and t["5.6"]["met"] is False  # GET p99 12 ms
    assert t["6.1"]["met"] is True and t["6.1"]["value"] == pytest.approx(12.0)
    assert t["6.2"]["met"] is True and t["6.2"]["value"] == pytest.approx(5.0)
    assert t["7.1"]["met"] is True and t["7.1"]["value"] == pytest.approx(1.4)
    assert t["7.2"]["met"] is True and t["7.2"]["value"] == pytest.approx(2.5)


def test_targets_missed_and_boundaries() -> None:
    t = by_id(evaluate_targets(results(aspen_set1=4999.0, aspen_p99=10.0)))
    assert t["5.1"]["met"] is False  # 0.4999x < 0.5x
    assert t["5.5"]["met"] is False  # "under 10 ms" excludes 10
    t = by_id(evaluate_targets(results(aspen_set1=5000.0)))
    assert t["5.1"]["met"] is True  # exactly half counts


def test_failover_with_a_trial_without_write_is_not_met() -> None:
    r = results()
    r["failover"] = summarize_failover([{"seconds": 0.5}, {"seconds": None}])
    assert r["failover"]["failed"] == 1 and r["failover"]["p99_s"] == 0.5
    assert by_id(evaluate_targets(r))["7.1"]["met"] is False


def test_targets_without_figures_are_not_measured_not_failed() -> None:
    rows = evaluate_targets({"throughput": []})
    assert {r["id"] for r in rows} == {"5.1", "5.2", "5.3", "5.4", "5.5", "5.6", "6.1",
                                       "6.2", "7.1", "7.2", "20.3"}
    assert all(r["met"] is None and r["measured"] == "not measured" for r in rows)


def test_markdown_has_every_figure_and_ratio() -> None:
    md = render_markdown(results())
    for text in ["6,000", "10,000", "100,000", "40,000", "500", "9,000", "20,000", "30,000",
                 "42.5", "12.00", "0.60x", "0.15x", "12.00x", "1,500", "19.00", "41.00",
                 "0.50x", "p50 1.20 s", "p99 1.40 s", "250 B/key", "2.50x",
                 "0.75 s", "0.50 s CBOR", "restore (decode) 0.40 s", "caught up after 2.50 s",
                 "caught up after 4.50 s",
                 "1,234", "after 3.50 s", "load average 3.5", "4.2", "abc1234",
                 "a note", "| 7.2 |", "**no**"]:
        assert text in md, text


def test_markdown_lists_failed_phases_and_a_wiped_follower_that_never_caught_up() -> None:
    r = results()
    r["errors"] = [{"phase": "pysyncobj: start/stop", "error": "TimeoutError: x"}]
    r["catchup"] = {"caught_up_s": None, "timeout_s": 20, "error": "waited",
                    "transfer": {"to": 3, "status": 200}, "after_transfer_s": 0.75}
    md = render_markdown(r)
    assert "pysyncobj: start/stop: TimeoutError: x" in md
    assert "did not catch up** within 20 s" in md and "to n3 it caught up in 0.75 s" in md


def test_docs_section_is_replaced_between_the_markers_only() -> None:
    doc = f"# B\n\nintro\n\n## S\n\n{BEGIN_MARKER}\nold figures\n{END_MARKER}\n\n## Other\nkeep\n"
    new = replace_section(doc, "new figures\n", "## S")
    assert new == doc.replace("old figures", "new figures")
    assert replace_section(new, "new figures\n", "## S") == new


def test_docs_section_is_appended_with_its_heading_when_missing() -> None:
    doc = "# B\n\n## Other\nkeep\n"
    new = replace_section(doc, "figures", "## S")
    assert new.startswith(doc.rstrip("\n"))
    assert new.endswith(f"## S\n\n{BEGIN_MARKER}\nfigures\n{END_MARKER}\n")
    assert replace_section(new, "figures 2", "## S").count("## S") == 1


def test_docs_section_text_with_backslashes_is_kept_verbatim() -> None:
    doc = f"{BEGIN_MARKER}\nx\n{END_MARKER}\n"
    assert r"a\1b\g<0>" in replace_section(doc, r"a\1b\g<0>", "## S")


def test_markdown_bounds_the_replicated_targets_by_the_standalone_node() -> None:
    md = render_markdown(results())
    assert "SET -P 1: one Aspen node without followers does 7,500 req/s (0.75x" in md
    assert "SET -P 16: one Aspen node without followers does 45,000 req/s (0.45x" in md
    assert "half of durable redis is 50,000 req/s" in md
    r = results()
    r["throughput"] = [row for row in r["throughput"] if row["target"] != "aspen-1"]
    assert "Bound for 5.1/5.2" not in render_markdown(r)


def test_markdown_says_when_the_memory_baseline_follows_a_warm_up() -> None:
    r = results()
    assert "warm-up" not in render_markdown(r)
    r["memory"]["aspen"].update(warmup_keys=250, rss_per_key_from_start=321.0)
    r["memory"]["redis"]["warmup_keys"] = 250
    md = render_markdown(r)
    assert "after a warm-up of 250 other keys" in md
    assert "from before the warm-up 321 B/key" in md


def test_a_baseline_run_gives_round_two_targets_and_a_before_after_table() -> None:
    r = results(aspen_set1=6000.0)  # aspen-3 SET -P 16 is 20,000; aspen-1 SET -P 1 7,500
    r["meta"]["baseline"] = "perf-base (c5b7af4)"
    r["throughput"] += [rb("aspen-3-base", "SET", 1, 4000.0, p99=7.5),
                        rb("aspen-3-base", "SET", 16, 10001.0),
                        rb("aspen-1-base", "SET", 1, 3000.0)]
    t = by_id(evaluate_targets(r))
    assert t["20.1"]["met"] is False and t["20.1"]["value"] == pytest.approx(20000 / 10001)
    assert t["20.2"]["met"] is True and t["20.2"]["value"] == pytest.approx(1.5)
    assert t["20.3"]["met"] is True and t["20.3"]["value"] == pytest.approx(0.75)
    md = render_markdown(r)
    assert "**Before / after** (the same cases from `perf-base (c5b7af4)`" in md
    assert "| Aspen 3 nodes | SET | 1 | 4,000 | 6,000 | 1.50x | 7.50 | 5.00 |" in md
    assert "| Aspen 1 node | SET | 1 | 3,000 | 7,500 | 2.50x |" in md
    assert "| Aspen 3 nodes | GET | 1 |" not in md.split("**Before / after**")[1].split(
        "**redis-benchmark**")[0]  # no baseline figure for it: no row


def test_without_a_baseline_there_are_no_round_two_comparisons() -> None:
    t = by_id(evaluate_targets(results()))
    assert "20.1" not in t and "20.2" not in t
    assert "Before / after" not in render_markdown(results())
