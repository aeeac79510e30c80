"""redis-benchmark runs: the command line, its CSV or plain output parsed into a figure.

Each run is sized to last about `seconds`: a short calibration run gives the rate, and the
measured run gets `rate * seconds` requests (clamped). A calibration that already ran long
enough is the measurement, so slow targets (PySyncObj) do not pay twice.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence

import attrs

__all__ = ["RbResult", "RbRun", "parse_csv", "parse_plain", "run_sized"]


@attrs.frozen
class RbResult:
    """One redis-benchmark test's figures."""

    test: str
    rps: float
    p50_ms: float
    p99_ms: float | None
    avg_ms: float | None = None
    max_ms: float | None = None


def parse_csv(text: str) -> list[RbResult]:
    """redis-benchmark --csv (7.x): a header line, then one quoted row per test."""
    rows = []
    for row in csv.DictReader(io.StringIO(text.strip())):
        if not row.get("test") or row.get("rps") in (None, ""):
            continue

        def opt(key: str, r: dict[str, str] = row) -> float | None:
            v = r.get(key)
            return float(v) if v not in (None, "") else None

        rows.append(RbResult(
            test=row["test"], rps=float(row["rps"]), p50_ms=float(row["p50_latency_ms"]),
            p99_ms=opt("p99_latency_ms"), avg_ms=opt("avg_latency_ms"),
            max_ms=opt("max_latency_ms"),
        ))
    if not rows:
        raise ValueError(f"no figures in redis-benchmark CSV output: {text[:200]!r}")
    return rows


_QUIET = re.compile(r"^\s*(?P<test>[A-Za-z_ ()0-9-]+?): (?P<rps>[\d.]+) requests per second"
                    r"(?:, p50=(?P<p50>[\d.]+) msec)?", re.M)


def parse_plain(text: str) -> list[RbResult]:
    """redis-benchmark -q output ("SET: 48780.49 requests per second, p50=0.607 msec").

    The live progress it prints with carriage returns is skipped: only the final lines count.
    """
    lines = [seg.rsplit("\r", 1)[-1] for seg in text.splitlines()]
    out = []
    for m in _QUIET.finditer("\n".join(lines)):
        p50 = m.group("p50")
        out.append(RbResult(test=m.group("test").strip(), rps=float(m.group("rps")),
                            p50_ms=float(p50) if p50 else float("nan"), p99_ms=None))
    if not out:
        raise ValueError(f"no figures in redis-benchmark output: {text[:200]!r}")
    return out


def argv_for(port: int, test: str, clients: int, requests: int, pipeline: int,
             size: int, extra: Sequence[str] = ()) -> list[str]:
    exe = shutil.which("redis-benchmark")
    if exe is None:
        raise RuntimeError("redis-benchmark is not installed (apt-get install redis-tools)")
    return [exe, "-h", "127.0.0.1", "-p", str(port), "-t", test, "-c", str(clients),
            "-n", str(requests), "-P", str(pipeline), "-d", str(size), "--csv", *extra]


def run_once(port: int, test: str, clients: int, requests: int, pipeline: int, size: int,
             timeout: float, extra: Sequence[str] = ()) -> tuple[RbResult, float]:
    """One run: (its figure, its wall time). A run past `timeout` is killed and raises.
    `extra`: more redis-benchmark options (e.g. --tls and its certificates)."""
    start = time.monotonic()
    out = subprocess.run(argv_for(port, test, clients, requests, pipeline, size, extra),
                         capture_output=True, text=True, timeout=timeout, check=False)
    wall = time.monotonic() - start
    if out.returncode != 0:
        raise RuntimeError(f"redis-benchmark exited {out.returncode}: {out.stderr[-300:]}")
    results = parse_csv(out.stdout)
    return results[0], wall


@attrs.frozen
class RbRun:
    """A measured run: its figure, how many requests, its wall time and the servers' CPU."""

    result: RbResult
    requests: int
    wall_s: float
    server_cpu_s: float | None


def run_sized(
    port: int, test: str, *, clients: int, pipeline: int, size: int, seconds: float,
    min_requests: int, max_requests: int, timeout: float,
    cpu: Callable[[], float] | None = None,
) -> RbRun:
    """Calibrate, then run for about `seconds`. `cpu()` (the servers' CPU seconds so far) is
    sampled around the run that counts, so CPU per request covers exactly its requests."""
    n = min(max_requests, max(min_requests, clients * pipeline * 2))
    cpu0 = cpu() if cpu else None
    result, wall = run_once(port, test, clients, n, pipeline, size, timeout)
    if wall < 0.6 * seconds and n < max_requests:
        n = int(min(max_requests, max(n * 2, result.rps * seconds)))
        cpu0 = cpu() if cpu else None
        result, wall = run_once(port, test, clients, n, pipeline, size, timeout)
    used = cpu() - cpu0 if cpu and cpu0 is not None else None
    return RbRun(result, n, wall, used)
