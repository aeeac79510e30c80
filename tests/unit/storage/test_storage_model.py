"""Model-based test: random operation sequences against a trivial list model, per backend."""

from __future__ import annotations

import copy
import shutil
import tempfile
from pathlib import Path

import hypothesis.strategies as st
import pytest
from conftest import payload
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from aspen.raft.types import Entry, HardState, Membership, SnapshotMeta
from aspen.storage import LogStore, MemoryStorage, StorageCorrupted, open_storage
from aspen.storage.snapshots import file_name

MEMBERS = Membership(voters={1, 2, 3})


class Model:
    """The log as a list after a (base_index, base_term) point. Obviously correct."""

    def __init__(self) -> None:
        self.base = (0, 0)
        self.log: list[Entry] = []
        self.hs = HardState()
        self.snapshot: tuple[SnapshotMeta, bytes] | None = None
        # For damage tests: the snapshot before the current one, and whether the log
        # behind the current one was replaced (then no fallback can be bridged).
        self.previous: tuple[SnapshotMeta, bytes] | None = None
        self.replaced = False

    @property
    def last(self) -> int:
        return self.base[0] + len(self.log)

    def term(self, index: int) -> int:
        return self.base[1] if index == self.base[0] else self.log[index - self.base[0] - 1].term

    def append(self, entries: list[Entry]) -> None:
        entries = [e for e in entries if e.index > self.base[0]]
        if entries:
            del self.log[entries[0].index - self.base[0] - 1 :]
            self.log.extend(entries)

    def truncate(self, frm: int) -> None:
        del self.log[max(0, frm - self.base[0] - 1) :]

    def compact(self, through: int) -> None:
        if through > self.base[0]:
            term = self.term(through)
            del self.log[: through - self.base[0]]
            self.base = (through, term)

    def install(self, meta: SnapshotMeta, data: bytes) -> None:
        if self.snapshot is None or self.snapshot[0] != meta:
            self.previous, self.replaced = self.snapshot, False
        self.snapshot = (meta, data)
        if meta.index < self.base[0]:
            return
        if meta.index <= self.last and self.term(meta.index) == meta.term:
            self.compact(meta.index)
        else:
            self.base, self.log = (meta.index, meta.term), []
            self.replaced = True


class StorageMachine(RuleBasedStateMachine):
    backend = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.model = Model()
        self.dir = Path(tempfile.mkdtemp(prefix="aspen-model-"))
        self.store = self._open()
        self.kw: dict[str, bool] = {}  # extra arguments to mutating calls (memory: sync)

    def mutated(self) -> None:
        """Called after every mutating call has been mirrored in the model."""

    def _open(self) -> LogStore:
        if self.backend == "memory":
            return open_storage(None, "memory")
        return open_storage(self.dir / "data", self.backend)  # type: ignore[arg-type]

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(back=st.integers(0, 6), n=st.integers(0, 5), bump=st.integers(0, 2),
          with_hs=st.booleans())
    def append(self, back: int, n: int, bump: int, with_hs: bool) -> None:
        m = self.model
        first = max(1, m.last + 1 - back)
        if first - 1 < m.base[0]:  # overlapping the snapshot: resend what it holds
            entries = [Entry(i, m.base[1], data=payload(i, m.base[1]))
                       for i in range(first, m.base[0] + 1)]
            term = m.base[1]
        else:
            entries = []
            term = m.term(first - 1) + bump if first - 1 >= m.base[0] else m.base[1]
        start = first + len(entries)
        entries += [Entry(i, term, data=payload(i, term)) for i in range(start, start + n)]
        hs = HardState(term, 1, m.base[0]) if with_hs else None
        self.store.append(entries, hs, **self.kw)  # type: ignore[call-arg]
        m.append(entries)
        if hs is not None:
            m.hs = hs
        self.mutated()

    @rule(back=st.integers(0, 8))
    def truncate(self, back: int) -> None:
        frm = max(self.model.base[0] + 1, self.model.last + 2 - back)
        self.store.truncate_suffix(frm, **self.kw)  # type: ignore[call-arg]
        self.model.truncate(frm)
        self.mutated()

    @rule(back=st.integers(0, 8))
    def compact(self, back: int) -> None:
        through = max(self.model.base[0], self.model.last - back)
        self.store.compact(through, **self.kw)  # type: ignore[call-arg]
        self.model.compact(through)
        self.mutated()

    @rule(back=st.integers(-3, 8), conflict=st.booleans())
    def snapshot(self, back: int, conflict: bool) -> None:
        m = self.model
        floor = max(1, m.snapshot[0].index if m.snapshot else 1)
        # Never behind the compaction point (a conformance test covers that case).
        index = max(floor, m.base[0], m.last - back)
        if index <= m.last and index >= m.base[0] and not conflict:
            term = max(1, m.term(index))
        else:
            term = max(1, m.term(m.last) + 1)
        meta = SnapshotMeta(index, term, MEMBERS)
        data = payload(index, term) * 3
        self.store.save_snapshot(meta, data, **self.kw)  # type: ignore[call-arg]
        m.install(meta, data)
        self.mutated()

    @rule(term=st.integers(0, 9), vote=st.none() | st.integers(1, 3), commit=st.integers(0, 50))
    def hard_state(self, term: int, vote: int | None, commit: int) -> None:
        hs = HardState(term, vote, commit)
        self.store.set_hard_state(hs, **self.kw)  # type: ignore[call-arg]
        self.model.hs = hs
        self.mutated()

    @rule()
    def restart(self) -> None:
        if isinstance(self.store, MemoryStorage):
            self.store.crash()  # everything was synced: nothing may be lost
        else:
            self.store.close()
            self.store = self._open()

    @invariant()
    def agrees_with_the_model(self) -> None:
        m, s = self.model, self.store
        assert (s.first_index(), s.last_index()) == (m.base[0] + 1, m.last)
        assert s.term(m.base[0]) == m.base[1]
        assert s.entries(m.base[0] + 1, m.last + 1) == m.log
        assert s.hard_state() == m.hs
        assert s.load_snapshot() == m.snapshot
        state = s.load()
        assert (state.base_index, state.base_term, list(state.entries)) == (
            m.base[0], m.base[1], m.log,
        )


class MemoryCrashMachine(StorageMachine):
    """The memory backend's crash model: a crash returns to the state of the last sync."""

    def __init__(self) -> None:
        super().__init__()
        self.durable = copy.deepcopy(self.model)
        self.kw = {"sync": True}

    def mutated(self) -> None:
        if self.kw["sync"]:  # a synced call also makes everything before it durable
            self.durable = copy.deepcopy(self.model)

    @rule(sync=st.booleans())
    def next_calls_sync(self, sync: bool) -> None:
        self.kw = {"sync": sync}

    @rule()
    def sync_all(self) -> None:
        assert isinstance(self.store, MemoryStorage)
        self.store.sync()
        self.durable = copy.deepcopy(self.model)

    @rule()
    def restart(self) -> None:
        assert isinstance(self.store, MemoryStorage)
        self.store.crash()
        self.model = copy.deepcopy(self.durable)


class SnapshotDamageMachine(StorageMachine):
    """sqlite plus a rule that damages the current snapshot file and reopens."""

    backend = "sqlite"

    @rule(cut=st.booleans())
    def damage_current_snapshot(self, cut: bool) -> None:
        m = self.model
        if m.snapshot is None:
            return
        self.store.close()
        path = self.dir / "data" / "snapshots" / file_name(m.snapshot[0])
        original = path.read_bytes()
        path.write_bytes(original[: len(original) // 2] if cut else original[:-25] + b"X" * 25)
        if m.previous is None or m.replaced:
            with pytest.raises(StorageCorrupted):
                self._open()
            path.with_name(path.name + ".corrupt").rename(path)
            path.write_bytes(original)
            self.store = self._open()
            return
        self.store = self._open()
        state = self.store.load()
        prev_meta = m.previous[0]
        assert self.store.load_snapshot() == m.previous
        assert (state.base_index, state.base_term) == (prev_meta.index, prev_meta.term)
        # The rows between the two snapshots come back in front of the log.
        got = list(state.entries)
        assert got[len(got) - len(m.log) :] == m.log and state.last_index == m.last
        for e in got:
            assert e.data == payload(e.index, e.term)
        m.base, m.log = (prev_meta.index, prev_meta.term), got
        m.snapshot, m.previous, m.replaced = m.previous, None, False


@pytest.mark.slow
def test_snapshot_damage_falls_back_exactly_when_possible() -> None:
    SnapshotDamageMachine.TestCase.settings = settings(
        max_examples=20, stateful_step_count=30, deadline=None
    )
    SnapshotDamageMachine.TestCase().runTest()


def test_memory_crash_model_matches() -> None:
    MemoryCrashMachine.TestCase.settings = settings(
        max_examples=150, stateful_step_count=40, deadline=None
    )
    MemoryCrashMachine.TestCase().runTest()


def _machine(backend: str) -> type[StorageMachine]:
    return type(f"{backend}Machine", (StorageMachine,), {"backend": backend})


@pytest.mark.parametrize(
    ("backend", "examples"),
    [
        ("memory", 150),
        pytest.param("sqlite", 20, marks=pytest.mark.slow),  # fsync-bound
        pytest.param("lmdb", 20, marks=pytest.mark.slow),
    ],
)
def test_backend_matches_model(backend: str, examples: int) -> None:
    machine = _machine(backend)
    machine.TestCase.settings = settings(
        max_examples=examples, stateful_step_count=30, deadline=None
    )
    machine.TestCase().runTest()
