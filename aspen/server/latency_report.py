"""LATENCY HISTOGRAM and LATENCY DOCTOR of one node, in Redis 7.0.15's reply shapes.

HISTOGRAM reports the per-command latency histogram INFO latencystats is computed from
(aspen.server.stats): Redis's buckets double from 1024 ns, each named by its highest value in
microseconds as its HDR histogram (2 significant digits) names it (1, 2, 4, 8, 16, 33, 66,
...), with the cumulative count of calls at or below it; buckets that add nothing are left
out. Aspen's samples sit in log-linear buckets of its own (8 per doubling), so a sample near a
bucket edge may fall one Redis bucket apart. DOCTOR writes Redis's report for the events this
node records (`command`, `fast-command`) and the advice Redis gives for them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from aspen.kv.commands import lookup
from aspen.kv.spec import CommandSpec
from aspen.resp.values import Map
from aspen.server.latency import LatencyMonitor
from aspen.server.stats import CommandStats, bucket_upper

__all__ = ["doctor", "histograms"]

_MAX_STEP = 20  # 1024 ns << 20 is past Redis's 1 s ceiling: everything slower lands there


def _label(step: int) -> int:
    """Redis's bucket name: the highest value equivalent to 1024 << step ns, in us."""
    value = 1024 << step
    return (value + (value >> 7) - 1) // 1000


def _cdf(histogram: dict[int, int], calls: int) -> Map:
    out: list[tuple[object, object]] = []
    edges = sorted((bucket_upper(b), n) for b, n in histogram.items())
    seen = i = 0
    for step in range(_MAX_STEP + 1):
        edge = ((1024 << step) + ((1024 << step) >> 7)) / 1000
        before = seen
        while i < len(edges) and (edges[i][0] <= edge or step == _MAX_STEP):
            seen += edges[i][1]
            i += 1
        if seen > before:
            out.append((_label(step), seen))
        if seen >= calls:
            break
    return Map(out)


def _entry(stats: CommandStats, name: str) -> tuple[object, object] | None:
    c = stats.commands.get(name)
    if c is None or not c.calls:
        return None
    return name.encode(), Map([(b"calls", c.calls), (b"histogram_usec", _cdf(c.histogram,
                                                                            c.calls))])


def histograms(stats: CommandStats, names: Iterable[bytes]) -> Map:
    """LATENCY HISTOGRAM [name ...]: every command that ran when no names are given; a named
    container brings its subcommands; unknown names are skipped, repeats repeated (Redis)."""
    wanted = list(names)
    out: list[tuple[object, object]] = []
    if not wanted:
        for name in list(stats.commands):
            entry = _entry(stats, name)
            if entry is not None:
                out.append(entry)
        return Map(out)
    for raw in wanted:
        spec = _find(raw)
        if spec is None:
            continue
        for name in (spec.name, *(s.name for s in spec.subcommands)):
            entry = _entry(stats, name)
            if entry is not None:
                out.append(entry)
    return Map(out)


def _find(raw: bytes) -> CommandSpec | None:
    name, _, sub = raw.partition(b"|")
    spec = lookup(name)
    if spec is None or not sub:
        return spec
    want = spec.name + "|" + sub.decode("utf-8", "replace").lower()
    return next((s for s in spec.subcommands if s.name == want), None)


_SORRY = ("I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis "
          "instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in "
          "order to enable it. If we weren't in a deep space mission I'd suggest to take a look "
          "at https://redis.io/topics/latency-monitor.\n")
_CALM = ("Dave, no latency spike was observed during the lifetime of this Redis instance, not "
         "in the slightest bit. I honestly think you ought to sit down calmly, take a stress "
         "pill, and think things over.\n")
_SPIKES = ("Dave, I have observed latency spikes in this Redis instance. You don't mind talking "
           "about it, do you Dave?\n\n")
_ADVICE_SLOWLOG_ON = (
    "- There are latency issues with potentially slow commands you are using. Try to enable "
    "the Slow Log Redis feature using the command 'CONFIG SET slowlog-log-slower-than %d'. If "
    "the Slow log is disabled Redis is not able to log slow commands execution for you.\n")
_ADVICE_SLOWLOG_TUNE = (
    "- Your current Slow Log configuration only logs events that are slower than your "
    "configured latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than "
    "%d'.\n")
_ADVICE_SLOWLOG_READ = (
    "- Check your Slow Log to understand what are the commands you are running which are too "
    "slow to execute. Please check https://redis.io/commands/slowlog for more information.\n")
_ADVICE_SCHEDULER = (
    "- The system is slow to execute Redis code paths not containing system calls. This "
    "usually means the system does not provide Redis CPU time to run for long periods. You "
    "should try to:\n"
    "  1) Lower the system load.\n"
    "  2) Use a computer / VM just for Redis if you are running other software in the same "
    "system.\n"
    "  3) Check if you have a \"noisy neighbour\" problem.\n"
    "  4) Check with 'redis-cli --intrinsic-latency 100' what is the intrinsic latency in "
    "your system.\n"
    "  5) Check if the problem is allocator-related by recompiling Redis with MALLOC=libc, if "
    "you are using Jemalloc. However this may create fragmentation problems.\n")
_ADVICE_LARGE = (
    "- Deleting, expiring or evicting (because of maxmemory policy) large objects is a "
    "blocking operation. If you have very large objects that are often deleted, expired, or "
    "evicted, try to fragment those objects into multiple smaller objects.\n")
_ADVICE_THP = (
    "- I detected a non zero amount of anonymous huge pages used by your process. This "
    "creates very serious latency events in different conditions, especially when Redis is "
    "persisting on disk. To disable THP support use the command 'echo never > "
    "/sys/kernel/mm/transparent_hugepage/enabled', make sure to also add it into "
    "/etc/rc.local so that the command will be executed again after a reboot. Note that even "
    "if you have already disabled THP, you still need to restart the Redis process to get rid "
    "of the huge pages already created.\n")


def _huge_pages() -> bool:
    """AnonHugePages in use by this process (Redis's THP advice)."""
    try:
        text = Path("/proc/self/smaps_rollup").read_text()
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("AnonHugePages:"):
            return line.split()[1] != "0"
    return False


def doctor(latency: LatencyMonitor, slower_than_us: int, now: float | None = None) -> str:
    """LATENCY DOCTOR's report (Redis's createLatencyReport, for this node's events)."""
    if not latency.events and not latency.threshold_ms:
        return _SORRY
    clock = int(time.time() if now is None else now)
    report = ""
    advices: list[str] = []
    number = 0
    for name, event in latency.events.items():
        samples = [ms for _, ms in event.samples]
        if not samples:
            continue
        number += 1
        if number == 1:
            report += _SPIKES
        avg = sum(samples) // len(samples)
        mad = sum(abs(avg - ms) for ms in samples) // len(samples)
        period = max(1, clock - min(t for t, _ in event.samples))
        report += (f"{number}. {name}: {len(samples)} latency spikes (average {avg}ms, mean "
                   f"deviation {mad}ms, period {period / len(samples):.2f} sec). Worst all time "
                   f"event {event.max}ms.\n")
        if name == "command":
            if slower_than_us < 0:
                advices.append("slowlog-on")
            elif slower_than_us // 1000 > latency.threshold_ms:
                advices.append("slowlog-tune")
            advices += ["slowlog-read", "large"]
        elif name == "fast-command":
            advices.append("scheduler")
    if _huge_pages():
        advices.append("thp")
    if not number and not advices:
        return _CALM
    if not advices:
        return report + ("\nWhile there are latency events logged, I'm not able to suggest any "
                         "easy fix. Please use the Redis community to get some help, providing "
                         "this report in your help request.\n")
    report += "\nI have a few advices for you:\n\n"
    threshold_us = latency.threshold_ms * 1000
    if "slowlog-on" in advices:
        report += _ADVICE_SLOWLOG_ON % threshold_us
    if "slowlog-tune" in advices:
        report += _ADVICE_SLOWLOG_TUNE % threshold_us
    if "slowlog-read" in advices:
        report += _ADVICE_SLOWLOG_READ
    if "scheduler" in advices:
        report += _ADVICE_SCHEDULER
    if "large" in advices:
        report += _ADVICE_LARGE
    if "thp" in advices:
        report += _ADVICE_THP
    return report
