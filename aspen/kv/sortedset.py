"""An ordered container of (score, member) pairs with logarithmic rank and range operations.

Why not a skip list: in Python a list of short sorted lists (each at most `2 * LOAD` long)
is several times faster than pointer chasing, and `bisect`/`insort` on a short list run in
C. `_maxes` holds the last pair of each sublist (binary search picks the sublist), and a
Fenwick tree over the sublist lengths turns "sublist i, offset j" into a rank and back in
O(log n). Splits and merges of sublists (rare: once per `LOAD` inserts) rebuild the tree
lazily.

Items are `(score, member)` tuples: Python's tuple order is Redis's order (score, then the
member's bytes, memcmp-style).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from operator import itemgetter

Item = tuple[float, bytes]

LOAD = 512

_by_score: Callable[[Item], float] = itemgetter(0)
_by_member: Callable[[Item], bytes] = itemgetter(1)


class SortedPairs:
    """A sorted multiset of `(score, member)` tuples, indexable by rank."""

    __slots__ = ("_len", "_lists", "_maxes", "_tree")

    def __init__(self) -> None:
        self._lists: list[list[Item]] = []
        self._maxes: list[Item] = []
        self._len = 0
        self._tree: list[int] | None = None

    @classmethod
    def from_sorted(cls, items: list[Item]) -> SortedPairs:
        """Build from items already in order (snapshots, copies, STORE commands)."""
        sp = cls()
        sp._lists = [items[i : i + LOAD] for i in range(0, len(items), LOAD)]
        sp._maxes = [sub[-1] for sub in sp._lists]
        sp._len = len(items)
        return sp

    def __len__(self) -> int:
        return self._len

    # ---------------------------------------------------------------- Fenwick index

    def _build_tree(self) -> list[int]:
        n = len(self._lists)
        tree = [0] * (n + 1)
        for i, sub in enumerate(self._lists, 1):
            tree[i] += len(sub)
            parent = i + (i & -i)
            if parent <= n:
                tree[parent] += tree[i]
        self._tree = tree
        return tree

    def _tree_add(self, i: int, delta: int) -> None:
        tree = self._tree
        if tree is None:
            return
        n = len(tree) - 1
        i += 1
        while i <= n:
            tree[i] += delta
            i += i & -i

    def _offset(self, i: int) -> int:
        """How many items precede sublist `i`."""
        if i == 0:
            return 0
        tree = self._tree
        if tree is None:
            tree = self._build_tree()
        total = 0
        while i > 0:
            total += tree[i]
            i -= i & -i
        return total

    def _locate(self, index: int) -> tuple[int, int]:
        """(sublist, offset) of the item at rank `index` (0 <= index < len)."""
        tree = self._tree
        if tree is None:
            tree = self._build_tree()
        n = len(tree) - 1
        pos = 0
        step = 1 << n.bit_length()
        while step:
            nxt = pos + step
            if nxt <= n and tree[nxt] <= index:
                index -= tree[nxt]
                pos = nxt
            step >>= 1
        return pos, index

    # ---------------------------------------------------------------- updates

    def add(self, item: Item) -> None:
        lists, maxes = self._lists, self._maxes
        self._len += 1
        if not lists:
            lists.append([item])
            maxes.append(item)
            self._tree = None
            return
        i = bisect.bisect_left(maxes, item)
        if i == len(maxes):
            i -= 1
            lists[i].append(item)
            maxes[i] = item
        else:
            bisect.insort(lists[i], item)
        sub = lists[i]
        if len(sub) > 2 * LOAD:
            lists.insert(i + 1, sub[LOAD:])
            del sub[LOAD:]
            maxes.insert(i, sub[-1])
            self._tree = None
        else:
            self._tree_add(i, 1)

    def remove(self, item: Item) -> None:
        """Remove `item`, which must be present."""
        lists, maxes = self._lists, self._maxes
        i = bisect.bisect_left(maxes, item)
        sub = lists[i]
        j = bisect.bisect_left(sub, item)
        del sub[j]
        self._len -= 1
        if not sub:
            del lists[i]
            del maxes[i]
            self._tree = None
            return
        maxes[i] = sub[-1]
        if len(sub) < LOAD // 4 and len(lists) > 1:
            k = i - 1 if i > 0 else i  # merge with a neighbour, re-split if too long
            merged = lists[k] + lists[k + 1]
            lists[k : k + 2] = [merged]
            maxes[k : k + 2] = [merged[-1]]
            if len(merged) > 2 * LOAD:
                lists.insert(k + 1, merged[LOAD:])
                del merged[LOAD:]
                maxes.insert(k, merged[-1])
            self._tree = None
        else:
            self._tree_add(i, -1)

    def pop_range(self, start: int, stop: int) -> list[Item]:
        """Remove and return the items with ranks in [start, stop)."""
        if start <= 0 and stop >= self._len:
            out = list(self.items())
            self.__init__()  # type: ignore[misc]
            return out
        out = list(self.islice(start, stop))
        for item in out:
            self.remove(item)
        return out

    # ---------------------------------------------------------------- queries

    def rank(self, item: Item) -> int:
        """Rank of `item`, which must be present."""
        i = bisect.bisect_left(self._maxes, item)
        return self._offset(i) + bisect.bisect_left(self._lists[i], item)

    def __getitem__(self, index: int) -> Item:
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError(index)
        i, j = self._locate(index)
        return self._lists[i][j]

    def bisect(self, value: object, right: bool, key: Callable[[Item], object] | None) -> int:
        """Rank of the first item whose key is >= `value` (> with `right`).

        `key` is None (compare whole items), `by_score` or `by_member`.
        """
        maxes = self._maxes
        find = bisect.bisect_right if right else bisect.bisect_left
        i: int = find(maxes, value, key=key)  # type: ignore[call-overload]
        if i == len(maxes):
            return self._len
        j: int = find(self._lists[i], value, key=key)  # type: ignore[call-overload]
        return self._offset(i) + j

    def islice(self, start: int, stop: int) -> Iterator[Item]:
        """Items with ranks in [start, stop), ascending."""
        start = max(start, 0)
        stop = min(stop, self._len)
        if start >= stop:
            return
        i, j = self._locate(start)
        remaining = stop - start
        lists = self._lists
        while remaining > 0:
            sub = lists[i]
            chunk = sub[j : j + remaining]
            yield from chunk
            remaining -= len(chunk)
            i += 1
            j = 0

    def islice_reversed(self, start: int, stop: int) -> Iterator[Item]:
        """Items with ranks in [start, stop), descending."""
        start = max(start, 0)
        stop = min(stop, self._len)
        if start >= stop:
            return
        i, j = self._locate(stop - 1)
        remaining = stop - start
        lists = self._lists
        while remaining > 0:
            sub = lists[i]
            lo = max(0, j + 1 - remaining)
            chunk = sub[lo : j + 1]
            yield from reversed(chunk)
            remaining -= len(chunk)
            i -= 1
            if i >= 0:
                j = len(lists[i]) - 1

    def items(self) -> Iterator[Item]:
        for sub in self._lists:
            yield from sub

    def check(self) -> None:
        """Internal consistency (tests)."""
        flat = list(self.items())
        assert flat == sorted(flat)
        assert len(flat) == self._len
        assert self._maxes == [sub[-1] for sub in self._lists]
        assert all(self._lists)
        for index in range(0, self._len, max(1, self._len // 50)):
            assert self[index] == flat[index]
            assert self.rank(flat[index]) == index


by_score = _by_score
by_member = _by_member
