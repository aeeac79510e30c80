"""The bounded in-memory log tail: RaftLog against a plain list, and a follower that lags
beyond the tail catching up from entries read back from storage (not from a snapshot)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from aspen.raft import (
    EntryKind,
    InstallSnapshot,
    Membership,
    RaftConfig,
    SnapshotMeta,
)
from aspen.raft.log import RaftLog
from aspen.raft.types import Entry

from .cluster import Cluster


class _Disk:
    """What storage holds: every entry marked stable, keyed by index (a model, not a log)."""

    def __init__(self) -> None:
        self.rows: dict[int, Entry] = {}
        self.reads = 0

    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        self.reads += 1
        out: list[Entry] = []
        size = 0
        for i in range(lo, hi):
            e = self.rows[i]  # a KeyError: the core released an entry that is not durable
            size += len(e.data)
            if out and max_bytes is not None and size > max_bytes:
                break
            out.append(e)
        return out


_KINDS = ("append", "append", "truncate", "stable", "apply", "compact", "restore")
_ops = st.lists(
    st.tuples(st.sampled_from(_KINDS), st.integers(0, 8), st.integers(0, 2), st.integers(0, 40)),
    min_size=10,
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(ops=_ops, keep_entries=st.integers(1, 5), keep_bytes=st.sampled_from([1, 30, 1 << 20]))
def test_log_window_matches_a_plain_list(
    ops: list[tuple[str, int, int, int]], keep_entries: int, keep_bytes: int
) -> None:
    disk = _Disk()
    log = RaftLog(None, [], disk, keep_entries=keep_entries, keep_bytes=keep_bytes)
    model: list[Entry] = []  # every entry after the snapshot
    snap = (0, 0)
    applied = 0
    term = 1
    for kind, n, bump, size in ops:
        last = snap[0] + len(model)
        if kind == "append":
            term += bump
            new = [Entry(last + 1 + k, term, EntryKind.NORMAL, b"x" * size) for k in range(n)]
            log.append(new)
            model.extend(new)
        elif kind == "truncate":
            # only unapplied, unstable entries may be replaced (the core's contract)
            at = last + 1 - n
            if at >= max(log.unstable_from, applied + 1, snap[0] + 1):
                log.truncate_from(at)
                del model[at - snap[0] - 1 :]
        elif kind == "stable":
            upto = min(last, log.unstable_from - 1 + n)
            if upto >= log.unstable_from:
                for e in model[log.unstable_from - snap[0] - 1 : upto - snap[0]]:
                    disk.rows[e.index] = e
                log.stable_to(upto, log.term(upto) or 0)
            log.release(applied)  # the core's advance() marks stable, then releases
        elif kind == "apply":
            # a follower may apply a committed entry before its own copy is durable
            applied = min(last, applied + n)
            log.release(applied)
        elif kind == "compact":
            at = min(applied, snap[0] + n)
            if at > snap[0]:
                meta = SnapshotMeta(at, log.term(at) or 0, Membership(voters={1}))
                log.compact(meta)
                model = model[at - snap[0] :]
                snap = (at, meta.term)
        else:  # a snapshot from a leader replaces the log
            term += 1
            at = last + 1 + n
            log.restore(SnapshotMeta(at, term, Membership(voters={1})))
            model, snap, applied = [], (at, term), at
            disk.rows = {}
        _check(log, model, snap, applied, released=kind in ("stable", "apply"))


def _check(
    log: RaftLog, model: list[Entry], snap: tuple[int, int], applied: int, *, released: bool
) -> None:
    last = snap[0] + len(model)
    assert (log.snap_index, log.last_index()) == (snap[0], last)
    assert log.last_term() == (model[-1].term if model else snap[1])
    assert log.held_bytes == sum(len(e.data) for e in log.held)
    safe = min(applied, log.unstable_from - 1)
    assert log.held_from <= safe + 1 or log.held_from == snap[0] + 1  # nothing unsafe released
    k, b = log.keep_entries, log.keep_bytes
    # right after a release, the tail is bounded: if a releasable entry is still held, the
    # whole tail fits the (amortised) caps
    assert (
        not released
        or log.held_from > safe
        or (len(log.held) <= k + k // 4 and log.held_bytes <= b + b // 4)
    )

    def term_of(i: int) -> int | None:
        if i == snap[0]:
            return snap[1]
        return model[i - snap[0] - 1].term if snap[0] < i <= last else None

    for i in range(max(0, snap[0] - 1), last + 2):
        assert log.term(i) == term_of(i), i
    for i in range(snap[0] + 1, last + 1):  # every entry readable, from memory or storage
        assert log.slice(i, i + 1) == [model[i - snap[0] - 1]]
    if model:
        got = log.slice(snap[0] + 1, last + 1)
        assert got == model
        capped = log.slice(snap[0] + 1, last + 1, max_count=3, max_bytes=25)
        assert capped and capped == model[: len(capped)] and len(capped) <= 3
    for index in range(snap[0] - 1, last + 2):
        for t in range(0, (model[-1].term if model else snap[1]) + 2):
            want = min(index, last)
            while want > snap[0] and (term_of(want) or 0) > t:
                want -= 1
            assert log.last_index_with_term_at_most(index, t) == want, (index, t)


def test_follower_lagging_beyond_the_tail_catches_up_from_storage_not_a_snapshot() -> None:
    cfg = RaftConfig(election_tick=10, heartbeat_tick=1, log_window_entries=4, log_window_bytes=64)
    c = Cluster([1, 2, 3], config=cfg)
    leader = c.elect(1)
    c.isolate(3)
    for n in range(60):
        leader.propose(b"v%03d" % n)
        c.settle()
    assert leader.log.held_from > c.cores[3].last_index + 1  # 3 needs released entries
    assert len(leader.log.held) <= 5
    reads_before = c.disks[1].reads
    c.heal()
    for _ in range(30):
        c.tick()
        c.settle()
    assert c.cores[3].commit_index == leader.commit_index
    assert c.applied_data(3) == c.applied_data(1)
    assert b"v059" in c.applied_data(3)
    assert c.disks[1].reads > reads_before  # the catch-up came from storage...
    assert not any(isinstance(m, InstallSnapshot) for m in c.sent)  # ...not from a snapshot
    assert leader.snapshot is None
