"""The stream value type: entries, consumer groups and their pending entries lists.

An entry ID is (ms, seq), both unsigned 64-bit; here it is packed into one int,
`ms << 64 | seq`, so IDs compare, sort and bisect as plain ints.

Entries live in *nodes* cut exactly where Redis 7.0 cuts its listpacks (a new node when the
tail one holds `NODE_MAX_ENTRIES` entries, deleted ones included, or when its modelled
listpack size plus the new entry's field and value bytes reaches `NODE_MAX_BYTES`). That is
not an optimisation detail: `MAXLEN ~`/`MINID ~` trimming removes whole nodes only, so XADD
and XTRIM replies and XLEN after them depend on where the boundaries are. Each node keeps its
entries' IDs in two `array('Q')`, a deleted flag per entry (deleted entries stay in their node
until the node is empty, as in Redis) and the field/value bytes of all its entries in one
`bytearray` (an entry with the node's first field names stores its values only), so a small
entry costs a few tens of bytes and no Python object of its own.

Lookups bisect the nodes' first IDs, then the node: XRANGE of 100 entries anywhere in a
stream of N entries is O(log N + 100).

Groups hold a PEL: packed ID -> `Nack` (delivery time, delivery count, consumer) plus a sorted
list of the IDs; each consumer holds a sorted list of its own. Every time value comes from the
`now` a command is applied with (the log entry's time), so replicas agree.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterator
from typing import Any

MAX64 = 2**64 - 1
MAX_ID = (MAX64 << 64) | MAX64
NODE_MAX_ENTRIES = 100  # stream-node-max-entries
NODE_MAX_BYTES = 4096  # stream-node-max-bytes
INVALID_ENTRIES_READ = -1  # SCG_INVALID_ENTRIES_READ, shown as null


def pack(ms: int, seq: int) -> int:
    return (ms << 64) | seq


def id_bytes(sid: int) -> bytes:
    return b"%d-%d" % (sid >> 64, sid & MAX64)


# ------------------------------------------------------------------ listpack size model


def _int_size(v: int) -> int:
    """Bytes of a listpack integer element (encoding + backlen)."""
    if 0 <= v <= 127:
        return 2
    if -4096 <= v <= 4095:
        return 3
    if -32768 <= v <= 32767:
        return 4
    if -8388608 <= v <= 8388607:
        return 5
    if -(2**31) <= v < 2**31:
        return 6
    return 10


def _as_int64(raw: bytes) -> int | None:
    """listpack's lpStringToInt64: canonical decimal that fits an int64."""
    n = len(raw)
    if n == 0 or n >= 21:
        return None
    if raw == b"0":
        return 0
    body = raw[1:] if raw[:1] == b"-" else raw
    if not body or not body.isdigit() or body[:1] == b"0":
        return None
    v = int(raw)
    return v if -(2**63) <= v < 2**63 else None


def _str_size(raw: bytes) -> int:
    """Bytes of a listpack element holding `raw` (stored as an integer when it is one)."""
    v = _as_int64(raw)
    if v is not None:
        return _int_size(v)
    n = len(raw)
    enc = 1 + n if n < 64 else (2 + n if n < 4096 else 5 + n)
    if enc <= 127:
        return enc + 1
    if enc < 16383:
        return enc + 2
    if enc < 2097151:
        return enc + 3
    if enc < 268435455:
        return enc + 4
    return enc + 5


def _signed64(v: int) -> int:
    v &= MAX64
    return v - 2**64 if v >= 2**63 else v


# ------------------------------------------------------------------ entry encoding


def _put(out: bytearray, raw: bytes) -> None:
    n = len(raw)
    if n < 255:
        out.append(n)
    else:
        out.append(255)
        out += n.to_bytes(4, "little")
    out += raw


def _get(data: bytearray | bytes, pos: int) -> tuple[bytes, int]:
    n = data[pos]
    pos += 1
    if n == 255:
        n = int.from_bytes(data[pos : pos + 4], "little")
        pos += 4
    return bytes(data[pos : pos + n]), pos + n


_DELETED = 1
_SAMEFIELDS = 2


class Node:
    """One listpack's worth of entries (see the module docstring)."""

    __slots__ = ("data", "deleted", "fields", "flags", "key", "live", "lp_bytes", "ms",
                 "offsets", "seq")

    def __init__(self, key: int, fields: tuple[bytes, ...]) -> None:
        self.key = key  # the master ID: the first entry ever added to the node
        self.fields = fields  # the master entry's field names
        self.ms: array[int] = array("Q")
        self.seq: array[int] = array("Q")
        self.flags = bytearray()
        self.offsets: array[int] = array("I")
        self.data = bytearray()
        self.live = 0
        self.deleted = 0
        # lpNew + count, deleted, num-fields, fields..., 0
        self.lp_bytes = 7 + 2 + 2 + _int_size(len(fields)) + sum(map(_str_size, fields)) + 2

    def __len__(self) -> int:
        return len(self.flags)

    def id_at(self, i: int) -> int:
        return (self.ms[i] << 64) | self.seq[i]

    def last_id(self) -> int:
        """The last entry's ID, deleted or not (what Redis's MINID trim looks at)."""
        return self.id_at(len(self.flags) - 1)

    def append(self, sid: int, pairs: list[bytes]) -> None:
        fields = tuple(pairs[0::2])
        same = fields == self.fields
        flag = _SAMEFIELDS if same else 0
        ms, seq = sid >> 64, sid & MAX64
        kms, kseq = self.key >> 64, self.key & MAX64
        size = 2 + _int_size(_signed64(ms - kms)) + _int_size(_signed64(seq - kseq))
        nf = len(fields)
        self.offsets.append(len(self.data))
        out = self.data
        if same:
            for v in pairs[1::2]:
                size += _str_size(v)
                _put(out, v)
            lp_count = nf + 3
        else:
            size += _int_size(nf)
            _put(out, nf.to_bytes(4, "little"))
            for x in pairs:
                size += _str_size(x)
                _put(out, x)
            lp_count = 2 * nf + 4
        size += _int_size(lp_count)
        self.lp_bytes += size
        self.ms.append(ms)
        self.seq.append(seq)
        self.flags.append(flag)
        self.live += 1

    def pairs_at(self, i: int) -> list[bytes]:
        data = self.data
        pos = self.offsets[i]
        if self.flags[i] & _SAMEFIELDS:
            out: list[bytes] = []
            for f in self.fields:
                v, pos = _get(data, pos)
                out.append(f)
                out.append(v)
            return out
        raw, pos = _get(data, pos)
        n = int.from_bytes(raw, "little")
        out = []
        for _ in range(2 * n):
            x, pos = _get(data, pos)
            out.append(x)
        return out

    def is_deleted(self, i: int) -> bool:
        return bool(self.flags[i] & _DELETED)

    def mark_deleted(self, i: int) -> None:
        self.flags[i] |= _DELETED
        self.live -= 1
        self.deleted += 1

    def find(self, sid: int) -> int:
        """Index of the first entry with ID >= sid (len if none)."""
        ms_arr, seq_arr = self.ms, self.seq
        lo, hi = 0, len(self.flags)
        while lo < hi:
            mid = (lo + hi) // 2
            if ((ms_arr[mid] << 64) | seq_arr[mid]) < sid:
                lo = mid + 1
            else:
                hi = mid
        return lo


class Nack:
    """A pending entry: when it was last delivered, how often, and to whom."""

    __slots__ = ("consumer", "count", "time")

    def __init__(self, time: int, count: int, consumer: Consumer | None) -> None:
        self.time = time
        self.count = count
        self.consumer = consumer


class Consumer:
    __slots__ = ("name", "pel", "seen")

    def __init__(self, name: bytes, seen: int) -> None:
        self.name = name
        self.seen = seen
        self.pel: list[int] = []  # sorted IDs (the Nacks are in the group's PEL)


class Group:
    __slots__ = ("consumers", "entries_read", "last_id", "pel", "pel_ids")

    def __init__(self, last_id: int, entries_read: int) -> None:
        self.last_id = last_id
        self.entries_read = entries_read
        self.pel: dict[int, Nack] = {}
        self.pel_ids: list[int] = []  # sorted
        self.consumers: dict[bytes, Consumer] = {}

    def add_pending(self, sid: int, nack: Nack) -> None:
        self.pel[sid] = nack
        _insort(self.pel_ids, sid)

    def remove_pending(self, sid: int) -> Nack | None:
        nack = self.pel.pop(sid, None)
        if nack is not None:
            _discard(self.pel_ids, sid)
            if nack.consumer is not None:
                _discard(nack.consumer.pel, sid)
        return nack

    def pending_from(self, start: int) -> Iterator[int]:
        """PEL IDs >= start, in order; tolerant of removals of already-yielded IDs."""
        ids = self.pel_ids
        i = bisect.bisect_left(ids, start)
        while i < len(ids):
            sid = ids[i]
            yield sid
            if i < len(ids) and ids[i] == sid:
                i += 1
            else:
                i = bisect.bisect_right(ids, sid)


def _insort(lst: list[int], x: int) -> None:
    if not lst or lst[-1] < x:
        lst.append(x)
    else:
        i = bisect.bisect_left(lst, x)
        if i == len(lst) or lst[i] != x:
            lst.insert(i, x)


def _discard(lst: list[int], x: int) -> None:
    i = bisect.bisect_left(lst, x)
    if i < len(lst) and lst[i] == x:
        del lst[i]


class Stream:
    """A Redis stream (its class is its type tag)."""

    __slots__ = ("entries_added", "first_id", "groups", "keys", "last_id", "length",
                 "max_deleted", "nodes")

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.keys: list[int] = []  # each node's master ID, ascending
        self.length = 0
        self.last_id = 0
        self.first_id = 0
        self.max_deleted = 0
        self.entries_added = 0
        self.groups: dict[bytes, Group] = {}

    def __len__(self) -> int:
        # A stream key exists even when empty: the keyspace must never drop it.
        return 1

    # -------------------------------------------------------------- adding

    def append(self, sid: int, pairs: list[bytes]) -> None:
        """Add an entry whose ID the caller checked is > last_id."""
        node = self.nodes[-1] if self.nodes else None
        if node is not None:
            total = sum(map(len, pairs))
            if (node.lp_bytes + total >= NODE_MAX_BYTES
                    or node.live + node.deleted >= NODE_MAX_ENTRIES):
                node = None
        if node is None:
            node = Node(sid, tuple(pairs[0::2]))
            self.nodes.append(node)
            self.keys.append(sid)
        node.append(sid, pairs)
        self.length += 1
        self.entries_added += 1
        self.last_id = sid
        if self.length == 1:
            self.first_id = sid

    # -------------------------------------------------------------- iterating

    def _seek(self, sid: int) -> tuple[int, int]:
        """(node index, entry index) of the first entry with ID >= sid."""
        n = bisect.bisect_right(self.keys, sid) - 1
        if n < 0:
            return 0, 0
        i = self.nodes[n].find(sid)
        if i == len(self.nodes[n]):
            return n + 1, 0
        return n, i

    def range(self, start: int, end: int, count: int = 0,
              rev: bool = False) -> Iterator[tuple[int, Node, int]]:
        """Live entries with start <= ID <= end as (id, node, index); `count` 0 = all."""
        if start > end or not self.nodes:
            return
        emitted = 0
        nodes = self.nodes
        if not rev:
            n, i = self._seek(start)
            while n < len(nodes):
                node = nodes[n]
                size = len(node)
                while i < size:
                    sid = node.id_at(i)
                    if sid > end:
                        return
                    if not node.flags[i] & _DELETED:
                        yield sid, node, i
                        emitted += 1
                        if emitted == count:
                            return
                    i += 1
                n += 1
                i = 0
        else:
            n, i = self._seek(end + 1)  # the first entry past `end`, then one back
            if n >= len(nodes):
                n = len(nodes) - 1
                i = len(nodes[n])
            i -= 1
            if i < 0:
                n -= 1
                i = len(nodes[n]) - 1 if n >= 0 else -1
            while n >= 0:
                node = nodes[n]
                while i >= 0:
                    sid = node.id_at(i)
                    if sid < start:
                        return
                    if sid <= end and not node.flags[i] & _DELETED:
                        yield sid, node, i
                        emitted += 1
                        if emitted == count:
                            return
                    i -= 1
                n -= 1
                if n >= 0:
                    i = len(nodes[n]) - 1

    def entry(self, sid: int) -> list[bytes] | None:
        """The field/value pairs of live entry `sid`, or None."""
        for _, node, i in self.range(sid, sid, 1):
            return node.pairs_at(i)
        return None

    def exists(self, sid: int) -> bool:
        for _ in self.range(sid, sid, 1):
            return True
        return False

    def last_valid_id(self) -> int:
        for sid, _, _ in self.range(0, MAX_ID, 1, rev=True):
            return sid
        return 0

    def first_valid_id(self) -> int:
        for sid, _, _ in self.range(0, MAX_ID, 1):
            return sid
        return 0

    # -------------------------------------------------------------- removing

    def delete(self, sid: int) -> bool:
        n, i = self._seek(sid)
        if n >= len(self.nodes):
            return False
        node = self.nodes[n]
        if i >= len(node) or node.id_at(i) != sid or node.is_deleted(i):
            return False
        if node.live == 1:
            del self.nodes[n]
            del self.keys[n]
        else:
            node.mark_deleted(i)
        self.length -= 1
        return True

    def trim(self, maxlen: int | None, minid: int | None, approx: bool, limit: int) -> int:
        """Redis's streamTrim: MAXLEN (maxlen) or MINID (minid); entries removed."""
        deleted = 0
        nodes = self.nodes
        while nodes:
            if maxlen is not None and self.length <= maxlen:
                break
            node = nodes[0]
            entries = node.live
            if limit and deleted + entries > limit:
                break
            if maxlen is not None:
                remove = self.length - entries >= maxlen
            else:
                assert minid is not None
                remove = node.last_id() < minid
            if remove:
                del nodes[0]
                del self.keys[0]
                self.length -= entries
                deleted += entries
                continue
            if approx:
                break
            for i in range(len(node)):
                if maxlen is not None:
                    if self.length <= maxlen:
                        break
                elif node.id_at(i) >= minid:  # type: ignore[operator]
                    break
                if not node.is_deleted(i):
                    node.mark_deleted(i)
                    self.length -= 1
                    deleted += 1
            break
        if self.length == 0:
            self.first_id = 0
        elif deleted:
            self.first_id = self.first_valid_id()
        return deleted

    # -------------------------------------------------------------- groups

    def has_tombstones_in(self, start: int) -> bool:
        """streamRangeHasTombstones(start, +inf)."""
        md = self.max_deleted
        if not self.length or md == 0:
            return False
        if self.first_id > md:
            return False
        return start <= md

    def estimate_read(self, sid: int) -> int:
        """streamEstimateDistanceFromFirstEverEntry."""
        if not self.entries_added:
            return 0
        if not self.length and sid <= self.last_id:
            return self.entries_added
        if sid == self.last_id:
            return self.entries_added
        if sid > self.last_id:
            return INVALID_ENTRIES_READ
        md = self.max_deleted
        if md == 0 or md < self.first_id:
            if sid < self.first_id:
                return self.entries_added - self.length
            if sid == self.first_id:
                return self.entries_added - self.length + 1
        return INVALID_ENTRIES_READ

    def lag(self, g: Group) -> int | None:
        if not self.entries_added:
            return 0
        if g.entries_read != INVALID_ENTRIES_READ and not self.has_tombstones_in(g.last_id):
            return self.entries_added - g.entries_read
        read = self.estimate_read(g.last_id)
        if read != INVALID_ENTRIES_READ:
            return self.entries_added - read
        return None

    # -------------------------------------------------------------- copy / snapshot

    def copy(self) -> Stream:
        return load(dump(self))


def dump(s: Stream) -> list[object]:
    """A CBOR-able form: every field, nodes as their raw arrays and bytes."""
    nodes = [[n.key, list(n.fields), n.ms.tobytes(), n.seq.tobytes(), bytes(n.flags),
              n.offsets.tobytes(), bytes(n.data), n.live, n.deleted, n.lp_bytes]
             for n in s.nodes]
    groups = []
    for name, g in s.groups.items():
        consumers = [[c.name, c.seen, c.pel] for c in g.consumers.values()]
        pel = [[sid, nk.time, nk.count, nk.consumer.name if nk.consumer else None]
               for sid, nk in ((sid, g.pel[sid]) for sid in g.pel_ids)]
        groups.append([name, g.last_id, g.entries_read, consumers, pel])
    return [nodes, s.length, s.last_id, s.first_id, s.max_deleted, s.entries_added, groups]


def load(obj: object) -> Stream:
    parts: list[Any] = obj  # type: ignore[assignment]
    nodes, length, last_id, first_id, max_deleted, added, groups = parts
    s = Stream()
    for key, fields, ms, seq, flags, offsets, data, live, deleted, lp_bytes in nodes:
        n = Node(key, tuple(fields))
        n.ms.frombytes(ms)
        n.seq.frombytes(seq)
        n.flags = bytearray(flags)
        n.offsets.frombytes(offsets)
        n.data = bytearray(data)
        n.live, n.deleted, n.lp_bytes = live, deleted, lp_bytes
        s.nodes.append(n)
        s.keys.append(key)
    s.length, s.last_id, s.first_id = length, last_id, first_id
    s.max_deleted, s.entries_added = max_deleted, added
    for name, last, entries_read, consumers, pel in groups:
        g = Group(last, entries_read)
        for cname, seen, cpel in consumers:
            c = Consumer(cname, seen)
            c.pel = list(cpel)
            g.consumers[cname] = c
        for sid, time, count, owner in pel:
            g.pel[sid] = Nack(time, count, g.consumers[owner] if owner is not None else None)
            g.pel_ids.append(sid)
        s.groups[name] = g
    return s
