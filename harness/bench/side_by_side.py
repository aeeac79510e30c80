"""`python -m harness.bench`: Aspen side by side with redis-server and PySyncObj, in one run.

    python -m harness.bench --quick              # < 5 min: 100 B only, short runs, 3 failovers
    python -m harness.bench --full               # everything: 100 B + 10 KB, 10 failovers, 1M keys
    python -m harness.bench --quick --write-docs # also replace the generated docs section
    python -m harness.bench --smoke              # seconds: tiny n, one pass of every phase (tests)

Targets run one after another, never together (the machine has 2 cores): redis-server without
persistence (the ceiling), redis-server with appendfsync always (durable), a 3-node PySyncObj
behind a RESP front, Aspen with 3 nodes, then Aspen with 5. Each one is started on free
loopback ports in a temp dir and killed (process group) when its phase ends, and everything
is killed and deleted on the way out, on Ctrl-C and SIGTERM too. Writes
.bench/report-<UTC time>.json and .md; `--write-docs` replaces only the generated section of
docs/benchmarks.md. Every phase is bounded in time; a failed phase is recorded in the report
and the run goes on.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs

from harness.bench import cluster_phases as cp
from harness.bench.loadgen import run_mixed
from harness.bench.procs import REGISTRY, cpu_seconds, install_sigterm_handler
from harness.bench.progress import Progress
from harness.bench.rb import run_sized
from harness.bench.report import (
    evaluate_targets,
    render_markdown,
    replace_section,
    summarize_failover,
)
from harness.bench.targets import (
    Running,
    Source,
    aspen_cluster,
    aspen_standalone,
    export_source,
    redis_target,
    syncobj_cluster,
)

ROOT = Path(__file__).resolve().parents[2]
DOCS_HEADING = "## Side by side (`python -m harness.bench`)"


@attrs.frozen
class Plan:
    """What one mode measures. `rb_seconds`: how long each redis-benchmark run should last."""

    mode: str
    sizes: tuple[int, ...]
    pipelines: tuple[int, ...] = (1, 16)
    tests: tuple[str, ...] = ("SET", "GET")
    aspen5_tests: tuple[tuple[str, int], ...] = (("SET", 1), ("GET", 1), ("SET", 16),
                                                 ("GET", 16))
    aspen5_sizes: tuple[int, ...] = (100,)
    rb_seconds: float = 2.0
    min_requests: int = 1000
    max_requests: int = 2_000_000
    rb_timeout: float = 120.0
    mixed_seconds: float = 3.0
    mixed_connections: int = 50
    failover_trials: int = 3
    keys: int = 100_000
    memory_warmup: int = 0  # keys loaded before the memory baseline (cluster_phases.memory_aspen)
    key_value_size: int = 10
    load_timeout: float = 600.0
    catchup_timeout: float = 30.0
    budget_s: float = 3600.0
    fresh_keys_cluster: bool = True
    subset: str = ""


PLANS = {
    "smoke": Plan("smoke", sizes=(100,), aspen5_tests=(("SET", 1),), rb_seconds=0.2,
                  min_requests=100, max_requests=400, rb_timeout=60, mixed_seconds=0.5,
                  mixed_connections=8, failover_trials=1, keys=2000, load_timeout=60,
                  catchup_timeout=1, budget_s=240, fresh_keys_cluster=False,
                  subset="smoke: tiny runs (at most 400 requests), 100 B only, one failover, "
                         "2,000 keys loaded into the cluster already used for the other "
                         "figures: checks the machinery, the figures mean nothing."),
    "quick": Plan("quick", sizes=(100,), rb_seconds=3.0, min_requests=1000, mixed_seconds=4.0,
                  failover_trials=5, keys=100_000, memory_warmup=25_000, catchup_timeout=10,
                  budget_s=270,
                  subset="quick: 100 B values only (no 10 KB), redis-benchmark runs of about "
                         "3 s each, mixed runs of 4 s, 5 failover trials (not 10), 100,000 keys "
                         "(not 1M) for memory / snapshot / restart / catch-up; the memory "
                         "baseline is taken after a warm-up of 25,000 other keys."),
    "full": Plan("full", sizes=(100, 10240), aspen5_sizes=(100, 10240), rb_seconds=8.0,
                 min_requests=2000, mixed_seconds=10.0, failover_trials=10, keys=1_000_000,
                 load_timeout=1800, catchup_timeout=30, budget_s=5400),
}


class Bench:
    """One run: the plan, the temp dir, the results dict and the progress line."""

    def __init__(self, plan: Plan, workdir: Path, progress: Progress, errlog: Path,
                 baseline: Source | None = None) -> None:
        self.plan = plan
        self.baseline = baseline
        self.errlog = errlog
        self.workdir = workdir
        self.progress = progress
        self.results: dict[str, Any] = {"throughput": [], "mixed": [], "errors": [],
                                        "notes": [], "targets_info": {}, "skipped": []}
        self.deadline = time.monotonic() + plan.budget_s

    def over_budget(self, name: str) -> bool:
        """Past the mode's time budget, the remaining phases are skipped (and listed)."""
        if time.monotonic() < self.deadline:
            return False
        self.results["skipped"].append(name)
        self.progress.result(f"skipped {name}: over the {self.plan.budget_s:.0f} s budget")
        return True

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """A phase that fails is recorded and skipped; Ctrl-C still stops the run."""
        self.progress.set(name)
        try:
            yield
        except Exception as exc:
            self.failed(name, exc)

    def failed(self, name: str, exc: Exception) -> None:
        self.results["errors"].append({"phase": name,
                                       "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
        self.progress.result(f"FAILED {name}: {exc!r}")
        with self.errlog.open("a") as f:
            f.write(f"--- {name}\n{traceback.format_exc()}\n")

    # -- workloads ---------------------------------------------------------------------------

    def throughput(self, target: Running, cases: list[tuple[str, int, int]],
                   before: Running | None = None) -> None:
        """redis-benchmark runs; with `before` (the same target from the baseline tree) each
        case runs on it first, then on `target`: before/after interleaved, case by case."""
        for case in cases:
            if before is not None:
                self.rb_case(before, case)
            self.rb_case(target, case)

    def paired_throughput(self, target: Running, cases: list[tuple[str, int, int]],
                          start_before: Callable[[], contextlib.AbstractContextManager[Running]]
                          | None) -> None:
        """`throughput`, interleaved with the baseline tree's target if one is given (it runs
        only for these cases and is stopped before anything else is measured)."""
        if start_before is None:
            self.throughput(target, cases)
            return
        self.progress.set(f"{target.name}: starting the baseline")
        try:
            with start_before() as before:
                self.results["targets_info"][before.name] = {"label": before.label,
                                                             **before.info}
                self.throughput(target, cases, before)
        except Exception as exc:
            self.failed(f"{target.name}: baseline start/stop", exc)
            self.throughput(target, cases)

    def rb_case(self, target: Running, case: tuple[str, int, int]) -> None:
        p = self.plan
        test, pipeline, size = case
        if self.over_budget(f"{target.name}: {test} -P {pipeline} -d {size}"):
            return
        with self.phase(f"{target.name}: redis-benchmark {test} -P {pipeline} -d {size}"):
            run = run_sized(
                target.port, test.lower(), clients=50, pipeline=pipeline, size=size,
                seconds=p.rb_seconds, min_requests=p.min_requests,
                max_requests=p.max_requests, timeout=p.rb_timeout,
                cpu=lambda: cpu_seconds(target.pids()),
            )
            r = run.result
            rps = r.rps if math.isfinite(r.rps) else run.requests / run.wall_s
            row = {"target": target.name, "label": target.label, "test": test,
                   "pipeline": pipeline, "clients": 50, "size": size,
                   "requests": run.requests, "wall_s": run.wall_s, "rps": rps,
                   "p50_ms": r.p50_ms, "p99_ms": r.p99_ms, "avg_ms": r.avg_ms,
                   "server_cpu_us": None if run.server_cpu_s is None
                   else run.server_cpu_s * 1e6 / run.requests}
            self.results["throughput"].append(row)
            self.progress.result(
                f"{target.label:36} {test} -P {pipeline:<2} {size:>5} B  {rps:>10,.0f} "
                f"req/s  p50 {r.p50_ms:.2f} ms  p99 {r.p99_ms or 0:.2f} ms")

    def mixed(self, target: Running) -> None:
        p = self.plan
        with self.phase(f"{target.name}: mixed 80/20 load generator"):
            m = run_mixed(target.port, connections=p.mixed_connections, seconds=p.mixed_seconds)
            self.results["mixed"].append({"target": target.name, "label": target.label,
                                          **m.as_dict()})
            self.progress.result(f"{target.label:36} mixed 80/20  {m.ops_per_s:>10,.0f} ops/s  "
                                 f"p50 {m.p50_ms:.2f}  p99 {m.p99_ms:.2f}  p999 "
                                 f"{m.p999_ms:.2f} ms")

    def cases(self, pipelines: tuple[int, ...] | None = None) -> list[tuple[str, int, int]]:
        p = self.plan
        return [(t, pl, s) for s in p.sizes for pl in (pipelines or p.pipelines)
                for t in p.tests]

    # -- targets -----------------------------------------------------------------------------

    def run_target(self, name: str, start: Callable[[], contextlib.AbstractContextManager[Running]],
                   body: Callable[[Running], None]) -> None:
        if self.over_budget(name):
            return
        self.progress.set(f"{name}: starting")
        try:
            with start() as target:
                self.results["targets_info"][name] = {"label": target.label, **target.info}
                body(target)
        except Exception as exc:
            self.failed(f"{name}: start/stop", exc)

    def redis_ceiling(self, t: Running) -> None:
        self.throughput(t, self.cases())
        self.mixed(t)
        # A fresh server, as Aspen's keys cluster is fresh: the throughput runs leave the
        # ceiling's hash table grown, which hides its growth from the delta (67 vs 88 B/key).
        with self.phase("redis-ceiling: memory per key"), \
                redis_target(self.workdir / "memory", durable=False) as fresh:
            mem = cp.memory_redis(fresh.port, fresh.pids()[0], self.plan.keys,
                                  self.plan.key_value_size, self.plan.memory_warmup)
            self.results.setdefault("memory", {"value_size": self.plan.key_value_size})
            self.results["memory"]["redis"] = mem
            self.progress.result(f"redis-server used_memory {mem['used_memory_per_key']:.0f} B/key")

    def plain(self, t: Running) -> None:
        self.throughput(t, self.cases())
        self.mixed(t)

    def standalone(self, t: Running) -> None:
        """redis-benchmark only: the bound for the replicated figures (see targets 5.1/5.2)."""
        base = self.baseline
        self.paired_throughput(t, [(test, pl, 100) for pl in self.plan.pipelines
                                   for test in self.plan.tests],
                               None if base is None
                               else lambda: aspen_standalone(self.workdir, base))

    def aspen3(self, t: Running) -> None:
        p = self.plan
        assert t.cluster is not None
        cluster = t.cluster
        base = self.baseline
        self.paired_throughput(t, self.cases(), None if base is None
                               else lambda: aspen_cluster(self.workdir, 3, source=base))
        self.mixed(t)
        trials: list[dict[str, Any]] = []
        for k in range(p.failover_trials):
            if self.over_budget(f"aspen-3: failover trial {k + 1}"):
                break
            with self.phase(f"aspen-3: failover trial {k + 1}/{p.failover_trials}"):
                trial = cp.failover_trial(cluster)
                trials.append(trial)
                s = trial["seconds"]
                self.progress.result(f"failover trial {k + 1}: "
                                     + ("no write" if s is None else f"{s:.2f} s"))
        if trials:
            self.results["failover"] = summarize_failover(trials)
        if not p.fresh_keys_cluster:
            self.keys(t)

    def keys(self, t: Running) -> None:
        """Memory per key, restart and wiped-follower catch-up: on a fresh 3-node cluster
        (quick, full), so the keyspace holds only the loaded keys, not the 10 KB values
        and snapshots of the throughput runs."""
        p = self.plan
        assert t.cluster is not None
        cluster = t.cluster
        if self.over_budget("aspen-3: memory, restart, catch-up"):
            return
        with self.phase(f"{t.name}: memory per key ({p.keys:,} keys)"):
            mem = cp.memory_aspen(cluster, p.keys, p.key_value_size, p.load_timeout,
                                  p.memory_warmup)
            self.results.setdefault("memory", {"value_size": p.key_value_size})
            self.results["memory"]["aspen"] = mem
            self.progress.result(f"Aspen leader RSS {mem['rss_per_key']:.0f} B/key "
                                 f"(loaded in {mem['load_s']:.1f} s)")
        with self.phase(f"{t.name}: restart a follower"):
            self.results["restart"] = rs = cp.restart_time(cluster, p.load_timeout)
            self.progress.result(f"restart: from snapshot caught up in {rs['caught_up_s']:.2f} s, "
                                 f"from the log in {rs['replay']['caught_up_s']:.2f} s")
        with self.phase(f"{t.name}: wiped follower catch-up"):
            self.results["catchup"] = cu = cp.wiped_catchup(cluster, p.catchup_timeout)
            if cu.get("caught_up_s") is not None:
                self.progress.result(
                    f"wiped follower: caught up in {cu['caught_up_s']:.2f} s "
                    + ("from the same leader" if cu.get("same_leader") else
                       "(after a leader change)"))
            else:
                self.progress.result(f"wiped follower: not caught up in {p.catchup_timeout} s; "
                                     f"after a leader transfer: {cu.get('after_transfer_s')}")

    def aspen5(self, t: Running) -> None:
        cases = [(test, pl, size) for size in self.plan.aspen5_sizes
                 for test, pl in self.plan.aspen5_tests]
        self.throughput(t, cases)

    def snapshot(self) -> None:
        if self.over_budget("snapshot"):
            return
        with self.phase(f"snapshot in process ({self.plan.keys:,} keys)"):
            self.results["snapshot"] = cp.snapshot_inprocess(
                self.plan.keys, self.plan.key_value_size, progress=self.progress.note)

    def run(self) -> None:
        wd = self.workdir
        self.run_target("redis-ceiling", lambda: redis_target(wd, durable=False),
                        self.redis_ceiling)
        self.run_target("redis-durable", lambda: redis_target(wd, durable=True), self.plain)
        self.run_target("pysyncobj", lambda: syncobj_cluster(wd, 3), self.plain)
        self.run_target("aspen-1", lambda: aspen_standalone(wd), self.standalone)
        self.run_target("aspen-3", lambda: aspen_cluster(wd, 3), self.aspen3)
        if self.plan.fresh_keys_cluster:
            self.run_target("aspen-3-keys", lambda: aspen_cluster(wd, 3, name="aspen-3-keys"),
                            self.keys)
        self.run_target("aspen-5", lambda: aspen_cluster(wd, 5), self.aspen5)
        self.snapshot()


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                             capture_output=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, text=True, capture_output=True, timeout=5).stdout
        return out.stdout.strip() + ("+dirty" if dirty.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "?"


def _redis_version() -> str:
    try:
        out = subprocess.run(["redis-server", "--version"], text=True, capture_output=True,
                             timeout=5).stdout
        return "redis-server " + out.split("v=")[1].split()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "redis-server ?"


NOTES = [
    "Aspen: real `aspen node` daemons, ZeroMQ between them, sqlite log with fsync (WAL, "
    "synchronous=FULL), the default Raft timing and read consistency (`linearizable`: every "
    "GET is a ReadIndex round); redis-benchmark and the load generator talk to the leader.",
    "PySyncObj 0.3.x with its default timing: a SET is answered once PySyncObj reports it "
    "committed and applied. Durability: its journal is an mmap'd file written before an entry "
    "is acknowledged and never fsynced (survives a process kill, not an OS crash). GET reads "
    "the local replica (PySyncObj has no read index: not linearizable).",
    "redis durable = `appendonly yes, appendfsync always` (one fsync per event-loop pass); "
    "ceiling = no persistence. Single processes: no replication.",
    "The machine has 2 cores shared with other work: the load average above says how "
    "depressed these figures are; server CPU per request is the steadier figure.",
    "A wiped follower comes back with a new incarnation (its start time): the leader resets "
    "its progress, probes and sends the log or a snapshot, without a leader change. The "
    "benchmark keeps a fallback (a leader transfer after the timeout) that should not run.",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_const", dest="mode", const="quick")
    mode.add_argument("--full", action="store_const", dest="mode", const="full")
    mode.add_argument("--smoke", action="store_const", dest="mode", const="smoke")
    parser.add_argument("--out", type=Path, default=ROOT / ".bench",
                        help="directory for report-<time>.json/.md (default .bench/)")
    parser.add_argument("--write-docs", action="store_true",
                        help="replace the generated section of docs/benchmarks.md")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--baseline", metavar="REF",
                        help="also run Aspen 1 and 3 nodes from git REF (e.g. perf-base), "
                             "interleaved case by case with this tree: before/after in one run")
    args = parser.parse_args(argv)
    plan = PLANS[args.mode or "quick"]
    for exe in ("redis-server", "redis-benchmark"):
        if shutil.which(exe) is None:
            print(f"{exe} is missing (apt-get install redis-server redis-tools)", file=sys.stderr)
            return 1
    install_sigterm_handler()
    started = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(started))
    args.out.mkdir(parents=True, exist_ok=True)
    ignore = args.out / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")  # reports are outputs, not sources
    workdir = Path(tempfile.mkdtemp(prefix="aspen-bench-"))
    meta: dict[str, Any] = {
        "mode": plan.mode, "argv": " ".join(sys.argv[1:] if argv is None else argv),
        "started_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "loadavg_start": list(os.getloadavg()), "cpus": os.cpu_count(),
        "python": platform.python_version(), "commit": _commit(),
        "redis_version": _redis_version(), "workdir": str(workdir), "subset": plan.subset,
        "plan": attrs.asdict(plan),
    }
    interrupted = False
    with Progress() as progress:
        baseline = export_source(args.baseline, workdir) if args.baseline else None
        if baseline is not None:
            meta["baseline"] = baseline.label
        bench = Bench(plan, workdir, progress, args.out / f"report-{stamp}.errors.log",
                      baseline)
        try:
            bench.run()
        except KeyboardInterrupt:
            interrupted = True
            bench.results["errors"].append({"phase": "run", "error": "interrupted"})
        finally:
            REGISTRY.kill_all()
            shutil.rmtree(workdir, ignore_errors=True)
    results = bench.results
    meta["loadavg_end"] = list(os.getloadavg())
    meta["duration_s"] = time.time() - started
    meta["pids"] = REGISTRY.pids
    results["meta"] = meta
    results["notes"] = NOTES
    results["targets"] = evaluate_targets(results)
    markdown = render_markdown(results, results["targets"])
    json_path = args.out / f"report-{stamp}.json"
    json_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    md_path = json_path.with_suffix(".md")
    md_path.write_text(f"# Aspen benchmark, {meta['started_utc']}\n\n{markdown}")
    if args.write_docs and not interrupted:
        doc = args.docs.read_text() if args.docs.exists() else "# Benchmarks\n"
        args.docs.write_text(replace_section(doc, markdown, DOCS_HEADING))
    print(markdown)
    print(f"reports: {json_path} {md_path}", file=sys.stderr)
    return 130 if interrupted else (1 if results["errors"] or results["skipped"] else 0)


if __name__ == "__main__":
    sys.exit(main())
