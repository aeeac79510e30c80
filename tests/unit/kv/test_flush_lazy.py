"""FLUSHALL on a big keyspace: the O(TTL keys) path leaves exactly the state the per-key loop
left (counters, floor, tombstones: same digest, same WATCH tokens), and frees the old keys in
slices on later commands."""

from __future__ import annotations

from array import array

import pytest

from aspen.kv import keyspace as keyspace_module
from aspen.kv.keyspace import Keyspace
from aspen.kv.ops import WriteOp

NOW = 1_000_000


def _reference_flush(ks: Keyspace, now_ms: int) -> None:
    """The original FLUSHALL: bump every live key, clear, prune."""
    for key in list(ks._data):
        if ks.get_read(key, now_ms) is not None:
            ks._bump(key)
    ks._data.clear()
    ks._expires.clear()
    ks._order_keys.clear()
    ks._order_seqs = array("q")
    ks._reborn.clear()
    ks._maybe_prune()


def _build(n: int, deleted: int) -> Keyspace:
    ks = Keyspace()
    for i in range(n):
        ks.execute(WriteOp((b"SET", b"k%d" % i, b"v")), NOW, i)
    for i in range(0, n, 7):  # TTLs, some already past at flush time
        ks.execute(WriteOp((b"PEXPIRE", b"k%d" % i, b"%d" % (1 if i % 2 else 10_000))), NOW, 0)
    for i in range(deleted):  # tombstones
        ks.execute(WriteOp((b"DEL", b"k%d" % (n - 1 - i))), NOW, 0)
    return ks


@pytest.mark.parametrize(("n", "deleted"), [(3000, 0), (3000, 2500), (1500, 900), (600, 500),
                                            (200, 10)])
def test_big_flush_leaves_the_state_the_loop_left(n: int, deleted: int) -> None:
    fast, slow = _build(n, deleted), _build(n, deleted)
    later = NOW + 5
    fast.execute(WriteOp((b"FLUSHALL",)), later, 0)
    _reference_flush(slow, later)
    assert fast._clock == slow._clock and fast._floor == slow._floor
    assert fast._versions == slow._versions
    assert fast.digest() == slow.digest()
    for i in range(n + 5):
        key = b"k%d" % i
        assert fast.watch_token(key, later) == slow.watch_token(key, later)


def test_flushed_keys_are_freed_in_slices() -> None:
    # (the real slice: the compiled build binds `_free_some`'s default at import, so the
    # module constant cannot be patched smaller)
    slice_ = keyspace_module._FREE_SLICE
    ks = _build(slice_ * 5 // 2, 0)
    ks.execute(WriteOp((b"FLUSHALL",)), NOW, 0)
    held = sum(len(box) for box in ks._garbage)
    assert held >= slice_ * 5 // 2
    ks.execute(WriteOp((b"SET", b"a", b"1")), NOW, 0)
    assert sum(len(box) for box in ks._garbage) == held - slice_  # one slice per command
    for _ in range((held - slice_) // slice_):
        ks.execute(WriteOp((b"SET", b"a", b"2")), NOW, 0)
    assert ks._garbage != []
    ks.execute(WriteOp((b"SET", b"a", b"2")), NOW, 0)
    assert ks._garbage == []
    assert ks.key_count() == 1
