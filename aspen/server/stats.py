"""Per-command statistics of one node: INFO commandstats, errorstats and latencystats.

Counted where a connection's command gets its reply (`aspen.kv.session.Session`): `calls`
and `usec` for every command that ran, `rejected_calls` for one refused before running
(arity, NOAUTH, ACL, ...), `failed_calls` for one that ran and answered an error; every error
reply counts under its first word in errorstats. `usec` is the time from the command's
arrival at the session to its reply: for a write that includes its trip through the Raft log
(Redis counts only the execution). Latency percentiles come from a histogram with
log-linear buckets (8 per doubling: about 9% wide), reported like Redis's `p50=..,p99=..,p99.9=..`.
"""

from __future__ import annotations

import math

__all__ = ["CommandStats"]

_SUB_BITS = 3  # 8 buckets per doubling: about 9% wide


def _bucket(n: int) -> int:
    """A log-linear bucket of `n` microseconds (exact below 16)."""
    b = n.bit_length()
    if b <= _SUB_BITS + 1:
        return n
    return (b << _SUB_BITS) | ((n >> (b - _SUB_BITS - 1)) & ((1 << _SUB_BITS) - 1))


def bucket_upper(bucket: int) -> float:
    """The largest microseconds value in `bucket` (+1: its upper edge)."""
    if bucket < (1 << (_SUB_BITS + 1)) and bucket <= 16:
        return float(bucket + 1)
    b, sub = bucket >> _SUB_BITS, bucket & ((1 << _SUB_BITS) - 1)
    low = (1 << (b - 1)) | (sub << (b - _SUB_BITS - 1))
    return float(low + (1 << (b - _SUB_BITS - 1)))


class _Command:
    __slots__ = ("calls", "failed", "histogram", "rejected", "usec")

    def __init__(self) -> None:
        self.calls = 0
        self.usec = 0.0
        self.rejected = 0
        self.failed = 0
        self.histogram: dict[int, int] = {}


class CommandStats:
    """The counters of one node (shared by its connections; reset by CONFIG RESETSTAT)."""

    def __init__(self) -> None:
        self.commands: dict[str, _Command] = {}
        self.errors: dict[str, int] = {}
        self.total_errors = 0
        self.percentiles: tuple[float, ...] = (50.0, 99.0, 99.9)

    def reset(self) -> None:
        self.commands.clear()
        self.errors.clear()
        self.total_errors = 0

    def _entry(self, name: str) -> _Command:
        entry = self.commands.get(name)
        if entry is None:
            entry = self.commands[name] = _Command()
        return entry

    def ran(self, name: str, usec: float, failed: bool) -> None:
        entry = self.commands.get(name)
        if entry is None:
            entry = self.commands[name] = _Command()
        entry.calls += 1
        entry.usec += usec
        if failed:
            entry.failed += 1
        bucket = _bucket(int(usec))
        histogram = entry.histogram
        histogram[bucket] = histogram.get(bucket, 0) + 1

    def rejected(self, name: str) -> None:
        self._entry(name).rejected += 1

    def error(self, text: str) -> None:
        """An error reply (its text without the leading '-')."""
        code = text.split(" ", 1)[0] if text else "ERR"
        self.errors[code] = self.errors.get(code, 0) + 1
        self.total_errors += 1

    # -- INFO ----------------------------------------------------------------------------

    def commandstats(self) -> list[tuple[str, str]]:
        out = []
        for name, c in self.commands.items():
            if not (c.calls or c.rejected or c.failed):
                continue
            per_call = c.usec / c.calls if c.calls else 0.0
            out.append((f"cmdstat_{name}",
                        f"calls={c.calls},usec={int(c.usec)},usec_per_call={per_call:.2f},"
                        f"rejected_calls={c.rejected},failed_calls={c.failed}"))
        return out

    def errorstats(self) -> list[tuple[str, str]]:
        return [(f"errorstat_{code}", f"count={n}") for code, n in self.errors.items()]

    def latencystats(self) -> list[tuple[str, str]]:
        out = []
        for name, c in self.commands.items():
            if not c.calls:
                continue
            parts = []
            for pct in self.percentiles:
                parts.append(f"p{_pct(pct)}={_percentile(c.histogram, c.calls, pct):.3f}")
            out.append((f"latency_percentiles_usec_{name}", ",".join(parts)))
        return out


def _pct(value: float) -> str:
    return f"{value:f}".rstrip("0").rstrip(".")


def _percentile(histogram: dict[int, int], total: int, pct: float) -> float:
    """The upper edge of the bucket holding the pct-th percentile sample."""
    want = max(1, math.ceil(total * pct / 100.0))
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= want:
            return bucket_upper(bucket)
    return 0.0
