"""The benchmark's results: targets evaluation, Markdown rendering, the docs section.

Results are one JSON-able dict (the JSON report is exactly it); everything here is a pure
function of that dict, so the rendering and the targets can be tested without servers.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "BEGIN_MARKER",
    "END_MARKER",
    "evaluate_targets",
    "find_rb",
    "render_markdown",
    "replace_section",
    "summarize_failover",
]

BEGIN_MARKER = "<!-- BEGIN harness.bench generated section: do not edit by hand -->"
END_MARKER = "<!-- END harness.bench generated section -->"

Results = dict[str, Any]

REFERENCES = (("redis-durable", "redis durable"), ("redis-ceiling", "redis ceiling"),
              ("pysyncobj", "PySyncObj"))


def find_rb(results: Results, target: str, test: str, pipeline: int,
            size: int = 100) -> dict[str, Any] | None:
    """The redis-benchmark row of a target/test/pipeline/value size, if it was measured."""
    for row in results.get("throughput", []):
        if (row["target"], row["test"], row["pipeline"], row["size"]) == (
                target, test, pipeline, size):
            return row  # type: ignore[no-any-return]
    return None


def _rps(results: Results, target: str, test: str, pipeline: int) -> float | None:
    row = find_rb(results, target, test, pipeline)
    return None if row is None else float(row["rps"])


def _ratio_target(results: Results, tid: str, text: str, num: tuple[str, str, int],
                  den: tuple[str, str, int], at_least: float) -> dict[str, Any]:
    a, b = _rps(results, *num), _rps(results, *den)
    if a is None or b is None or b == 0:
        return {"id": tid, "target": text, "measured": "not measured", "met": None}
    ratio = a / b
    return {"id": tid, "target": text, "value": ratio,
            "measured": f"{a:,.0f} vs {b:,.0f} req/s = {ratio:.2f}x", "met": ratio >= at_least}


def _p99_target(results: Results, tid: str, test: str) -> dict[str, Any]:
    row = find_rb(results, "aspen-3", test, 1)
    text = f"{test} p99 at -c 50 -P 1 under 10 ms"
    if row is None or row.get("p99_ms") is None:
        return {"id": tid, "target": text, "measured": "not measured", "met": None}
    p99 = float(row["p99_ms"])
    return {"id": tid, "target": text, "value": p99, "measured": f"{p99:.2f} ms",
            "met": p99 < 10.0}


def evaluate_targets(results: Results) -> list[dict[str, Any]]:
    """Issue 7's targets (3 Aspen nodes, 100 B values) against the figures of this run.

    `met` is True/False, or None when a figure the target needs was not measured."""
    rows = [
        _ratio_target(results, "5.1", "replicated SET -P 1 >= 0.5x durable redis SET -P 1",
                      ("aspen-3", "SET", 1), ("redis-durable", "SET", 1), 0.5),
        _ratio_target(results, "5.2", "replicated SET -P 16 >= 0.5x durable redis SET -P 16",
                      ("aspen-3", "SET", 16), ("redis-durable", "SET", 16), 0.5),
        _ratio_target(results, "5.3", "linearizable GET -P 1 >= replicated SET -P 1",
                      ("aspen-3", "GET", 1), ("aspen-3", "SET", 1), 1.0),
        _ratio_target(results, "5.4", "linearizable GET -P 16 >= replicated SET -P 16",
                      ("aspen-3", "GET", 16), ("aspen-3", "SET", 16), 1.0),
        _p99_target(results, "5.5", "SET"),
        _p99_target(results, "5.6", "GET"),
        _ratio_target(results, "6.1", "replicated SET -P 1 >= 2x PySyncObj SET -P 1",
                      ("aspen-3", "SET", 1), ("pysyncobj", "SET", 1), 2.0),
        _ratio_target(results, "6.2", "replicated SET -P 16 >= 2x PySyncObj SET -P 16",
                      ("aspen-3", "SET", 16), ("pysyncobj", "SET", 16), 2.0),
    ]
    fo = results.get("failover") or {}
    text = "failover p99 (kill -9 leader -> first write) under 1.5 s"
    if fo.get("p99_s") is not None:
        rows.append({"id": "7.1", "target": text, "value": fo["p99_s"],
                     "measured": f"{fo['p99_s']:.2f} s over {len(fo['trials'])} trials"
                                 + (f" ({fo['failed']} without a write)" if fo.get("failed")
                                    else ""),
                     "met": fo["p99_s"] < 1.5 and not fo.get("failed")})
    else:
        rows.append({"id": "7.1", "target": text, "measured": "not measured", "met": None})
    rows += round2_targets(results)
    mem = results.get("memory") or {}
    text = "memory per small key within 3x redis-server used_memory"
    aspen, redis = mem.get("aspen"), mem.get("redis")
    if aspen and redis and redis.get("used_memory_per_key"):
        ratio = aspen["rss_per_key"] / redis["used_memory_per_key"]
        rows.append({"id": "7.2", "target": text, "value": ratio,
                     "measured": f"{aspen['rss_per_key']:.0f} vs "
                                 f"{redis['used_memory_per_key']:.0f} B/key = {ratio:.2f}x",
                     "met": ratio <= 3.0})
    else:
        rows.append({"id": "7.2", "target": text, "measured": "not measured", "met": None})
    return rows


def round2_targets(results: Results) -> list[dict[str, Any]]:
    """Issue 20's targets: against the baseline tree run in the same benchmark (`--baseline`,
    targets `aspen-N-base`) and against durable redis."""
    rows = []
    if any(r["target"] == "aspen-3-base" for r in results.get("throughput", [])):
        rows += [
            _ratio_target(results, "20.1", "replicated SET -P 16 >= 2x the baseline tree's",
                          ("aspen-3", "SET", 16), ("aspen-3-base", "SET", 16), 2.0),
            _ratio_target(results, "20.2", "replicated SET -P 1 >= 1.5x the baseline tree's",
                          ("aspen-3", "SET", 1), ("aspen-3-base", "SET", 1), 1.5),
        ]
    rows.append(_ratio_target(results, "20.3",
                              "standalone node SET -P 1 >= 0.5x durable redis SET -P 1",
                              ("aspen-1", "SET", 1), ("redis-durable", "SET", 1), 0.5))
    return rows


def before_after_lines(results: Results) -> list[str]:
    """Each case of a target next to the same case of its baseline (`--baseline`)."""
    rows = results.get("throughput", [])
    pairs = []
    for r in rows:
        b = find_rb(results, r["target"] + "-base", r["test"], r["pipeline"], r["size"])
        if b is not None and not r["target"].endswith("-base"):
            pairs.append((r, b))
    if not pairs:
        return []
    base = results.get("meta", {}).get("baseline", "the baseline")
    out = ["", f"**Before / after** (the same cases from `{base}`, run just before this tree's, "
           "case by case; server CPU us per request from /proc, all processes of the target):",
           "", "| target | test | -P | before req/s | after req/s | after / before "
           "| before p99 ms | after p99 ms | before CPU us/req | after CPU us/req |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r, b in pairs:
        out.append(f"| {r['label']} | {r['test']} | {r['pipeline']} | {b['rps']:,.0f} "
                   f"| {r['rps']:,.0f} | {_ratio(r['rps'], b['rps'])} "
                   f"| {_f(b.get('p99_ms'), '{:.2f}')} | {_f(r.get('p99_ms'), '{:.2f}')} "
                   f"| {_f(b.get('server_cpu_us'), '{:.1f}')} "
                   f"| {_f(r.get('server_cpu_us'), '{:.1f}')} |")
    return out


# -- Markdown -------------------------------------------------------------------------------


def _f(value: Any, fmt: str = "{:,.0f}", missing: str = "-") -> str:
    if value is None:
        return missing
    return fmt.format(value)


def _size(n: int) -> str:
    return f"{n // 1024} KB" if n >= 1024 and n % 1024 == 0 else f"{n} B"


def _met(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "not measured"}[met]


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or not b else f"{a / b:.2f}x"


def _throughput_table(results: Results) -> list[str]:
    lines = [
        "| target | test | -P | value | requests | req/s | p50 ms | p99 ms | server CPU us/req "
        "| vs redis durable | vs redis ceiling | vs PySyncObj |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results.get("throughput", []):
        ratios = []
        for ref, _ in REFERENCES:
            other = find_rb(results, ref, row["test"], row["pipeline"], row["size"])
            ratios.append("-" if ref == row["target"] or other is None
                          else _ratio(row["rps"], other["rps"]))
        lines.append(
            f"| {row['label']} | {row['test']} | {row['pipeline']} | {_size(row['size'])} "
            f"| {row['requests']:,} | {row['rps']:,.0f} | {row['p50_ms']:.2f} "
            f"| {_f(row.get('p99_ms'), '{:.2f}')} | {_f(row.get('server_cpu_us'), '{:.1f}')} "
            f"| {' | '.join(ratios)} |")
    return lines


def _mixed_table(results: Results) -> list[str]:
    rows = results.get("mixed", [])
    if not rows:
        return []
    ref = next((r for r in rows if r["target"] == "redis-durable"), None)
    lines = [
        "| target | connections | seconds | ops | errors | ops/s | p50 ms | p99 ms | p999 ms "
        "| client CPU % | vs redis durable |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        vs = "-" if ref is None or r is ref else _ratio(r["ops_per_s"], ref["ops_per_s"])
        lines.append(
            f"| {r['label']} | {r['connections']} | {r['seconds']:.1f} | {r['ops']:,} "
            f"| {r['errors']} | {r['ops_per_s']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
            f"| {r['p999_ms']:.2f} | {r['client_cpu_percent']:.0f} | {vs} |")
    return lines


def _cluster_lines(results: Results) -> list[str]:
    out: list[str] = []
    fo = results.get("failover")
    if fo:
        secs = ", ".join("-" if s is None else f"{s:.2f}" for s in fo["seconds"])
        out.append(f"- **Failover** (3 nodes, default timeouts, kill -9 of the leader under "
                   f"write load -> first successful write on a survivor): p50 "
                   f"{_f(fo.get('p50_s'), '{:.2f}')} s, p99 {_f(fo.get('p99_s'), '{:.2f}')} s, "
                   f"max {_f(fo.get('max_s'), '{:.2f}')} s over {len(fo['trials'])} trials "
                   f"[{secs}]" + (f"; {fo['failed']} trial(s) saw no write" if fo.get("failed")
                                  else "") + ".")
    mem = results.get("memory") or {}
    a, r = mem.get("aspen"), mem.get("redis")
    if a or r:
        parts = []
        if a:
            by_node = ", ".join(f"n{k} {v:,.0f}" for k, v in a["rss_per_key_by_node"].items())
            retried = (f", {a['writes_retried']:,} writes answered -TIMEOUT and sent again"
                       if a.get("writes_retried") else "")
            from_start = (f"; from before the warm-up {a['rss_per_key_from_start']:,.0f} B/key"
                          if a.get("warmup_keys") else "")
            parts.append(f"Aspen leader RSS delta {a['rss_per_key']:,.0f} B/key "
                         f"(every node: {by_node}; loaded in {a['load_s']:.1f} s{retried}"
                         f"{from_start})")
        if r:
            parts.append(f"redis-server used_memory delta {r['used_memory_per_key']:,.0f} B/key "
                         f"(a fresh server; RSS delta {r['rss_per_key']:,.0f} B/key)")
        keys = (a or r or {}).get("keys", 0)
        ratio = (f" = {a['rss_per_key'] / r['used_memory_per_key']:.2f}x"
                 if a and r and r["used_memory_per_key"] else "")
        warm = (a or r or {}).get("warmup_keys", 0)
        warmup = (f", measured after a warm-up of {warm:,} other keys that pays the fixed "
                  "costs (buffers, in-flight writes, log tail, caches)" if warm else "")
        out.append(f"- **Memory per key** ({keys:,} keys `key:%09d`, "
                   f"{mem.get('value_size', 10)}-byte values, pipelined SETs{warmup}): "
                   + "; ".join(parts) + ratio + ".")
    snap = results.get("snapshot")
    if snap:
        out.append(f"- **Snapshot** ({snap['keys']:,} keys, in process on the node's code path: "
                   f"`ReplicatedState.snapshot()` + sqlite `save_snapshot` with fsync): "
                   f"{snap['snapshot_s']:.2f} s ({snap['encode_s']:.2f} s CBOR encoding, "
                   f"{snap['write_fsync_s']:.2f} s write + fsync) for "
                   f"{snap['bytes'] / 1e6:.1f} MB; restore (decode) {snap['restore_s']:.2f} s.")
    rs = results.get("restart")
    if rs:
        parts = []
        for key, what in (("from_snapshot", "from a snapshot of everything"),
                          ("replay", "as it was")):
            r = rs.get(key)
            if r:
                parts.append(f"{what} (snapshot index {r['snapshot_index']:,}): serving after "
                             f"{r['serving_s']:.2f} s, caught up after "
                             f"{r['caught_up_s']:.2f} s")
        forced = rs.get("snapshot_taken_after_s")
        out.append(f"- **Restart** (kill -9 of a follower holding the loaded keys, start it "
                   f"again, until it serves (PING + /status) and until it re-applied the "
                   f"leader's commit index {rs['commit_index']:,}): " + "; ".join(parts) + "."
                   + (f" (Forcing that snapshot, a restart with `snapshot_entries = 1` until "
                      f"the snapshot file existed, took {forced:.2f} s.)" if forced else ""))
    cu = results.get("catchup")
    if cu:
        if cu.get("caught_up_s") is not None:
            same = cu.get("same_leader")
            who = (" from the same leader" if same else
                   " (after a leader change)" if same is not None else "")
            out.append(f"- **Wiped follower** (kill -9, data dir deleted, restarted, one write "
                       f"every 20 ms): serving after {cu['serving_s']:.2f} s, caught up "
                       f"with the leader's applied index {cu['leader_applied']:,}{who} after "
                       f"{cu['caught_up_s']:.2f} s.")
        else:
            after = cu.get("after_transfer_s")
            tr = cu.get("transfer") or {}
            then = (f"after a leader transfer to n{tr.get('to')} it caught up in {after:.2f} s"
                    if after is not None else
                    f"the leader transfer did not help ({tr.get('error', 'not tried')})")
            out.append(f"- **Wiped follower** (kill -9, data dir deleted, restarted, one write "
                       f"every 20 ms): **did not catch up** within {cu.get('timeout_s')} s "
                       f"(the leader kept its old match index); {then}.")
    return out


def bound_lines(results: Results) -> list[str]:
    """Targets 5.1/5.2 next to what one Aspen node without followers does in the same run:
    a 3-node leader does that node's work and more, so it cannot beat it."""
    out = []
    for pipeline in (1, 16):
        alone = _rps(results, "aspen-1", "SET", pipeline)
        durable = _rps(results, "redis-durable", "SET", pipeline)
        if alone is None or not durable:
            continue
        row = find_rb(results, "aspen-1", "SET", pipeline) or {}
        cpu = row.get("server_cpu_us")
        out.append(f"- SET -P {pipeline}: one Aspen node without followers does "
                   f"{alone:,.0f} req/s ({alone / durable:.2f}x durable redis"
                   + (f", {cpu:.1f} us CPU/request" if cpu is not None else "")
                   + f"); half of durable redis is {durable / 2:,.0f} req/s.")
    if not out:
        return []
    return ["", "**Bound for 5.1/5.2**: a standalone `aspen node` (a Raft group of one: the "
            "same RESP front, sessions, keyspace, sqlite log and fsync) is the leader's work "
            "without replication; a 3-node leader does all of it, sends every entry to two "
            "followers and shares the 2 cores with them:", "", *out]


def render_markdown(results: Results, targets: list[dict[str, Any]] | None = None) -> str:
    meta = results.get("meta", {})
    targets = targets if targets is not None else evaluate_targets(results)
    la0, la1 = meta.get("loadavg_start"), meta.get("loadavg_end")
    argv = meta.get("argv", "")
    out = [
        f"Generated by `python -m harness.bench{' ' + argv if argv else ''}` "
        f"({meta.get('mode', '?')} mode) on {meta.get('started_utc', '?')}, commit "
        f"{meta.get('commit', '?')}, {meta.get('cpus', '?')} cores, Python "
        f"{meta.get('python', '?')}, {meta.get('redis_version', 'redis ?')}; load average "
        f"{_f(la0 and la0[0], '{:.1f}')} at the start, {_f(la1 and la1[0], '{:.1f}')} at the "
        f"end; {meta.get('duration_s', 0):.0f} s in all.",
        "",
    ]
    if meta.get("subset"):
        out += [f"Subset: {meta['subset']}", ""]
    out += ["**Targets** (issues 7 and 20; 3 Aspen nodes unless said, 100 B values, this run):",
            "",
            "| # | target | measured | met |", "|---|---|---|---|"]
    out += [f"| {t['id']} | {t['target']} | {t['measured']} | {_met(t['met'])} |"
            for t in targets]
    out += bound_lines(results)
    out += before_after_lines(results)
    out += ["", "**redis-benchmark** (`-c 50`, keys `key:__rand_int__` without -r, i.e. one "
            "key; Aspen and PySyncObj driven on their leader; server CPU = user+system time of "
            "every process of the target, from /proc, per request):", ""]
    out += _throughput_table(results)
    mixed = _mixed_table(results)
    if mixed:
        out += ["", "**Mixed 80% GET / 20% SET** (Python asyncio load generator, raw RESP, "
                "closed loop per connection, 100 B values over 10,000 keys):", ""]
        out += mixed
    cl = _cluster_lines(results)
    if cl:
        out += ["", "**Cluster behaviour** (Aspen, 3 nodes):", "", *cl]
    notes = list(results.get("notes", []))
    for name, info in sorted(results.get("targets_info", {}).items()):
        modes = info.get("read_consistency")
        if isinstance(modes, dict):
            note = (f"{info.get('label', name)}: read consistency per node (from /status) "
                    f"{', '.join(f'n{k} {v}' for k, v in modes.items())}.")
            if note not in notes:
                notes.append(note)
    if notes:
        out += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    skipped = results.get("skipped", [])
    if skipped:
        out += ["", f"**Skipped (over the mode's time budget):** {', '.join(skipped)}."]
    errors = results.get("errors", [])
    if errors:
        out += ["", "**Phases that failed in this run:**", ""]
        out += [f"- {e['phase']}: {e['error']}" for e in errors]
    return "\n".join(out) + "\n"


def replace_section(doc: str, section: str, heading: str) -> str:
    """`doc` with the text between the markers replaced by `section` (markers kept); without
    markers, `heading` + markers + section are appended. Nothing else changes."""
    block = f"{BEGIN_MARKER}\n{section.rstrip()}\n{END_MARKER}"
    pattern = re.compile(re.escape(BEGIN_MARKER) + r".*?" + re.escape(END_MARKER), re.S)
    if pattern.search(doc):
        return pattern.sub(lambda _m: block, doc, count=1)
    return doc.rstrip("\n") + f"\n\n{heading}\n\n{block}\n"


def summarize_failover(trials: list[dict[str, Any]]) -> dict[str, Any]:
    """Trials (each with "seconds", None when no write succeeded in time) -> p50/p99/max."""
    from harness.bench.stats import percentile

    seconds = [t.get("seconds") for t in trials]
    ok = sorted(s for s in seconds if s is not None)
    return {
        "trials": trials,
        "seconds": seconds,
        "failed": len(seconds) - len(ok),
        "p50_s": percentile(ok, 50) if ok else None,
        "p99_s": percentile(ok, 99) if ok else None,
        "max_s": ok[-1] if ok else None,
    }
