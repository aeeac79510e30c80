"""redis-benchmark output parsing and latency percentiles."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.bench.rb import argv_for, parse_csv, parse_plain
from harness.bench.stats import percentile, summarize

# Captured from redis-benchmark 7.0.15 --csv -t set,get.
CSV = (
    '"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",'
    '"p99_latency_ms","max_latency_ms"\n'
    '"SET","47619.05","0.641","0.112","0.607","0.999","1.671","3.367"\n'
    '"GET","55555.56","0.566","0.144","0.559","0.823","1.415","1.535"\n'
)


def test_csv_gives_every_test_with_rate_and_percentiles() -> None:
    rows = parse_csv(CSV)
    assert [r.test for r in rows] == ["SET", "GET"]
    assert rows[0].rps == pytest.approx(47619.05)
    assert rows[0].p50_ms == pytest.approx(0.607)
    assert rows[0].p99_ms == pytest.approx(1.671)
    assert rows[1].avg_ms == pytest.approx(0.566)
    assert rows[1].max_ms == pytest.approx(1.535)


def test_csv_without_percentile_columns_keeps_p99_unknown() -> None:
    rows = parse_csv('"test","rps","p50_latency_ms"\n"SET","100.0","2.5"\n')
    assert rows[0].p99_ms is None and rows[0].p50_ms == 2.5


@pytest.mark.parametrize("text", ["", "ERROR: connection refused\n",
                                  '"test","rps","p50_latency_ms"\n'])
def test_csv_without_figures_is_an_error(text: str) -> None:
    with pytest.raises(ValueError, match="no figures"):
        parse_csv(text)


def test_plain_output_skips_the_live_progress() -> None:
    text = ("SET: rps=0.0 (overall: 0.0) avg_msec=-nan (overall: -nan)\r"
            "SET: 48780.49 requests per second, p50=0.607 msec\n"
            "GET: rps=1000.0 (overall: 900.0)\rGET: 51020.41 requests per second, "
            "p50=0.551 msec\n")
    rows = parse_plain(text)
    assert [(r.test, r.rps, r.p50_ms) for r in rows] == [
        ("SET", 48780.49, 0.607), ("GET", 51020.41, 0.551)]


def test_plain_output_without_figures_is_an_error() -> None:
    with pytest.raises(ValueError):
        parse_plain("SET: rps=0.0 (overall: 0.0)\r")


def test_benchmark_command_line_is_loopback_csv_with_the_requested_shape() -> None:
    argv = argv_for(6379, "set", 50, 1000, 16, 10240)
    joined = " ".join(argv)
    assert "-h 127.0.0.1 -p 6379" in joined and argv[-1] == "--csv"
    assert "-c 50" in joined and "-n 1000" in joined and "-P 16" in joined
    assert "-d 10240" in joined and "-t set" in joined


def test_percentile_nearest_rank_examples() -> None:
    values = [float(i) for i in range(1, 1001)]  # 1..1000
    assert percentile(values, 50) == 500
    assert percentile(values, 99) == 990
    assert percentile(values, 99.9) == 999
    assert percentile(values, 100) == 1000
    assert percentile(values, 0) == 1
    assert percentile([7.0], 99.9) == 7.0


def test_percentile_rejects_nothing_and_out_of_range() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=200),
       st.floats(min_value=0, max_value=100))
def test_percentile_is_the_smallest_value_covering_q_percent(
        values: list[float], q: float) -> None:
    ordered = sorted(values)
    p = percentile(ordered, q)
    assert p in ordered
    at_or_below = sum(v <= p for v in ordered)
    strictly_below = sum(v < p for v in ordered)
    assert at_or_below * 100 >= q * len(ordered) - 1e-5
    assert strictly_below * 100 < max(q, 1e-9) * len(ordered) + 1e-6 or strictly_below == 0


def test_summarize_reports_all_percentiles_in_the_input_unit() -> None:
    s = summarize([0.003, 0.001, 0.002, 0.010])
    assert s["p50"] == 0.002 and s["p99"] == 0.010 and s["p999"] == 0.010
    assert s["max"] == 0.010 and math.isclose(s["mean"], 0.004)
