"""Crash tests with real processes: SIGKILL a writer at random moments, reopen, check.

Every third round also damages the current snapshot file (cut short or a flipped bit): the
store must fall back to the previous snapshot and lose no entry, or -- when no previous
snapshot can be bridged to the log -- refuse to open with a clear error.

The writer (harness/storage_writer.py) reports every call before it starts and after it
returns. After each kill the store must equal the log built from the acknowledged calls,
or that log plus the one call that was in flight -- nothing acknowledged lost, nothing
half-applied, every entry's self-checking payload intact, the hard state one that was
written. Set ASPEN_CRASH_SEED to replay a run.
"""

from __future__ import annotations

import copy
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
import pytest

from aspen.raft.types import HardState
from aspen.storage import StorageCorrupted, open_storage
from harness.storage_writer import payload_is_intact, snapshot_payload

REPO = Path(__file__).resolve().parents[2]


@attrs.define
class Expected:
    """What the store must hold, rebuilt from the writer's acknowledged calls."""

    base: tuple[int, int] = (0, 0)
    log: list[tuple[int, int]] = attrs.field(factory=list)  # (index, term) after base
    hs: HardState = attrs.field(factory=HardState)
    snapshot: tuple[int, int, int] | None = None  # index, term, size
    previous: tuple[int, int, int] | None = None  # the snapshot before, kept as a fallback
    replaced: bool = False  # the current snapshot replaced the log (no fallback possible)

    @property
    def last(self) -> int:
        return self.base[0] + len(self.log)

    def term(self, index: int) -> int:
        return self.base[1] if index == self.base[0] else self.log[index - self.base[0] - 1][1]

    def apply(self, op: dict[str, Any]) -> None:
        kind = op["op"]
        if kind == "append":
            first = max(op["first"], self.base[0] + 1)
            end = op["first"] + op["n"]
            if first < end:
                del self.log[first - self.base[0] - 1 :]
                self.log.extend((i, op["term"]) for i in range(first, end))
            if op["hs"] is not None:
                self.hs = HardState(*op["hs"])
        elif kind == "hard_state":
            self.hs = HardState(*op["hs"])
        elif kind == "truncate":
            del self.log[op["from"] - self.base[0] - 1 :]
        elif kind == "compact":
            self._compact(op["through"])
        elif kind == "snapshot":
            index, term = op["index"], op["term"]
            if self.snapshot is None or self.snapshot[:2] != (index, term):
                self.previous = self.snapshot
                self.replaced = False
            # (saving the same snapshot again keeps its fallback situation as it was)
            self.snapshot = (index, term, op["size"])
            if index < self.base[0]:
                return
            if index <= self.last and self.term(index) == term:
                self._compact(index)
            else:
                self.base, self.log = (index, term), []
                self.replaced = True
        else:
            raise AssertionError(kind)

    def _compact(self, through: int) -> None:
        if through > self.base[0]:
            term = self.term(through)
            del self.log[: through - self.base[0]]
            self.base = (through, term)


def read_report(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any] | None, bool]:
    """(acknowledged ops, the op in flight or None, ready seen)."""
    acked: list[dict[str, Any]] = []
    pending: dict[str, Any] | None = None
    ready = False
    for line in path.read_text().splitlines(keepends=True):
        if not line.endswith("\n"):
            break  # cut by the kill: never reported
        msg = json.loads(line)
        if "ready" in msg:
            ready = True
        elif "begin" in msg:
            assert pending is None
            pending = msg["begin"]
        else:
            assert pending is not None
            acked.append(pending)
            pending = None
    return acked, pending, ready


def matches(data: Path, backend: str, exp: Expected) -> str | None:
    """None when the store equals `exp`, else what differs."""
    with open_storage(data, backend) as store:  # type: ignore[arg-type]
        state = store.load()
        if state.hard_state != exp.hs:
            return f"hard state {state.hard_state} != {exp.hs}"
        if (state.base_index, state.base_term) != exp.base:
            return f"base {(state.base_index, state.base_term)} != {exp.base}"
        got = [(e.index, e.term) for e in state.entries]
        if got != exp.log:
            return f"log differs: {len(got)} vs {len(exp.log)} entries"
        snap = store.load_snapshot()
        if exp.snapshot is None:
            if snap is not None:
                return f"unexpected snapshot {snap[0]}"
        else:
            index, term, size = exp.snapshot
            if snap is None or (snap[0].index, snap[0].term) != (index, term):
                return f"snapshot {snap and snap[0]} != {exp.snapshot}"
            if snap[1] != snapshot_payload(index, term, size):
                return f"snapshot {exp.snapshot} has other content ({len(snap[1])} bytes)"
        for e in state.entries:  # nothing partial or foreign: every payload checks out
            assert payload_is_intact(e.index, e.term, e.data), f"entry {e.index} damaged"
    return None


def damage_current_snapshot(data: Path, backend: str, exp: Expected, how: str) -> Expected:
    """Damage the current snapshot file; the store must fall back to the previous one."""
    assert exp.snapshot is not None
    index, term, _size = exp.snapshot
    path = data / "snapshots" / f"snap-{index:016x}-{term:016x}.snap"
    original = path.read_bytes()
    damaged = bytearray(original)
    if how == "cut":
        del damaged[len(damaged) * 2 // 3 :]
    else:
        damaged[len(damaged) // 2] ^= 0x01
    path.write_bytes(bytes(damaged))
    if exp.previous is None or exp.replaced:
        # No previous snapshot, or the log behind it is gone: only a clear refusal is right.
        with pytest.raises(StorageCorrupted, match="wipe its data directory"):
            open_storage(data, backend)  # type: ignore[arg-type]
        path.with_name(path.name + ".corrupt").unlink()
        path.write_bytes(original)  # put it back and carry on
        return exp
    p_index, p_term, p_size = exp.previous
    with open_storage(data, backend) as store:  # type: ignore[arg-type]
        snap = store.load_snapshot()
        assert snap is not None and (snap[0].index, snap[0].term) == (p_index, p_term)
        assert snap[1] == snapshot_payload(p_index, p_term, p_size)
        state = store.load()
        assert (state.base_index, state.base_term) == (p_index, p_term)
        got = [(e.index, e.term) for e in state.entries]
        assert [i for i, _ in got] == list(range(p_index + 1, p_index + 1 + len(got)))
        assert got[len(got) - len(exp.log) :] == exp.log and state.last_index == exp.last
        assert state.hard_state == exp.hs
        for e in state.entries:
            assert payload_is_intact(e.index, e.term, e.data), f"entry {e.index} damaged"
    return Expected(base=(p_index, p_term), log=got, hs=exp.hs, snapshot=exp.previous)


def run_kills(tmp_path: Path, backend: str, kills: int) -> None:
    seed = int(os.environ.get("ASPEN_CRASH_SEED", random.randrange(1 << 32)))
    print(f"storage crash test: backend={backend} seed={seed} (ASPEN_CRASH_SEED replays)")
    rng = random.Random(seed)
    data = tmp_path / "data"
    expected = Expected()
    stats: Counter[str] = Counter()
    deadline = time.monotonic() + 150
    round_no = -1
    while True:
        round_no += 1
        mid_call = sum(v for k, v in stats.items() if k.startswith("killed during"))
        # Kill at least `kills` times, and on until half of the kills landed inside a call
        # (how often they do depends on the machine's speed), within 3x the rounds.
        if round_no >= 3 * kills or (round_no >= kills and mid_call >= kills // 2):
            break
        assert time.monotonic() < deadline, f"too slow; seed={seed}"
        report = tmp_path / f"report-{round_no}.jsonl"
        with report.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "harness.storage_writer", str(data), backend,
                 str(rng.randrange(1 << 32))],
                stdout=out, cwd=REPO,
            )
        try:
            if rng.random() < 0.15:
                # Sometimes kill it while it opens: recovery (finishing a snapshot install,
                # pruning files) must itself survive being interrupted.
                time.sleep(rng.uniform(0.0, 0.5))
                stats["killed before ready"] += not read_report(report)[2]
            else:
                t0 = time.monotonic()
                while not read_report(report)[2]:
                    assert proc.poll() is None, f"writer died on its own; seed={seed}"
                    assert time.monotonic() - t0 < 30, f"writer never became ready; seed={seed}"
                    time.sleep(0.01)
                time.sleep(rng.uniform(0.0, 0.3))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        assert proc.returncode == -signal.SIGKILL, f"writer exited {proc.returncode}; seed={seed}"
        acked, pending, _ = read_report(report)
        for op in acked:
            expected.apply(op)
        stats["acked ops"] += len(acked)
        candidates = [("acknowledged", expected)]
        if pending is not None:
            stats[f"killed during {pending['op']}"] += 1
            with_pending = copy.deepcopy(expected)
            with_pending.apply(pending)
            candidates.append(("acknowledged + in flight", with_pending))
        problems = []
        for name, exp in candidates:
            problem = matches(data, backend, exp)
            if problem is None:
                expected = exp
                stats[f"reopened to {name}"] += 1
                break
            problems.append(f"{name}: {problem}")
        else:
            pytest.fail(f"round {round_no}, seed={seed}: store matches no allowed state: "
                        f"{problems}; in flight: {pending}")
        if round_no % 3 == 2 and expected.snapshot is not None:
            fallback = expected.previous is not None and not expected.replaced
            stats["snapshot damaged, fell back" if fallback else "snapshot damaged, refused"] += 1
            keep = os.environ.get("ASPEN_CRASH_KEEP")  # debugging: keep the evidence
            if keep:
                shutil.copytree(tmp_path, Path(keep) / f"{seed}-{round_no}")
            expected = damage_current_snapshot(data, backend, expected, rng.choice(["cut", "flip"]))
    print(dict(stats))
    assert stats["snapshot damaged, fell back"] >= 1
    assert sum(v for k, v in stats.items() if k.startswith("killed during")) >= kills // 2
    assert stats["acked ops"] > kills


@pytest.mark.slow
def test_sqlite_survives_sigkill_at_random_moments(tmp_path: Path) -> None:
    run_kills(tmp_path, "sqlite", kills=40)


@pytest.mark.slow
def test_lmdb_survives_sigkill_at_random_moments(tmp_path: Path) -> None:
    run_kills(tmp_path, "lmdb", kills=20)
