"""Streams in RDB: RDB_TYPE_STREAM_LISTPACKS (Redis 5-6.2), _2 (7.0, what we write) and _3
(7.2) to and from Aspen's `Stream`.

Aspen's stream already keeps Redis's layout (aspen/kv/stream.py: nodes cut where Redis cuts
its listpacks, a master entry per node, deleted flags), so a node maps to one listpack both
ways and XADD/XTRIM behave the same after a round trip. The listpack of a node:

    count | deleted | master-field-count | fields... | 0
    then per entry: flags | ms-diff | seq-diff | [field-count | field value ...] or values...
                    | element count of the entry
"""

from __future__ import annotations

from aspen.kv.dump import BadPayload, Reader, _length, _string, listpack_entries
from aspen.kv.numbers import parse_int
from aspen.kv.stream import (
    INVALID_ENTRIES_READ,
    MAX64,
    Consumer,
    Group,
    Nack,
    Node,
    Stream,
)

T_STREAM_1, T_STREAM_2, T_STREAM_3 = 15, 19, 21
_DELETED, _SAMEFIELDS = 1, 2


# ------------------------------------------------------------------ listpack writing


def _backlen(n: int) -> bytes:
    """The entry length a listpack stores after each entry (read right to left)."""
    if n <= 127:
        return bytes((n,))
    size = 2 if n < 16383 else 3 if n < 2097151 else 4 if n < 268435455 else 5
    return bytes([n >> (7 * (size - 1))]
                 + [((n >> (7 * k)) & 127) | 128 for k in range(size - 2, -1, -1)])


def _lp_int(v: int) -> bytes:
    if 0 <= v <= 127:
        return bytes((v,))
    if -4096 <= v <= 4095:
        u = v & 0x1FFF
        return bytes((0xC0 | (u >> 8), u & 0xFF))
    for tag, width in ((0xF1, 2), (0xF2, 3), (0xF3, 4), (0xF4, 8)):
        if -(1 << (8 * width - 1)) <= v < 1 << (8 * width - 1):
            return bytes((tag,)) + v.to_bytes(width, "little", signed=True)
    raise BadPayload


def _lp_str(s: bytes) -> bytes:
    n = len(s)
    if n < 64:
        return bytes((0x80 | n,)) + s
    if n < 4096:
        return bytes((0xE0 | (n >> 8), n & 0xFF)) + s
    return b"\xf0" + n.to_bytes(4, "little") + s


def listpack(items: list[bytes | int]) -> bytes:
    """A listpack of these elements (integer-looking strings stored as integers, as Redis)."""
    body = bytearray()
    for item in items:
        if isinstance(item, bytes):
            v = parse_int(item) if len(item) <= 20 else None
            enc = _lp_int(v) if v is not None else _lp_str(item)
        else:
            enc = _lp_int(item)
        body += enc + _backlen(len(enc))
    total = 6 + len(body) + 1
    count = min(len(items), 65535)
    return total.to_bytes(4, "little") + count.to_bytes(2, "little") + bytes(body) + b"\xff"


# ------------------------------------------------------------------ reading


def _raw_id(raw: bytes) -> int:
    if len(raw) != 16:
        raise BadPayload
    return int.from_bytes(raw, "big")  # ms then seq, both big endian: the packed form


def _int(raw: bytes) -> int:
    v = parse_int(raw)
    if v is None:
        raise BadPayload
    return v


def _node(master: int, blob: bytes) -> Node:
    items = listpack_entries(blob)
    if len(items) < 4:
        raise BadPayload  # Redis: "Empty listpack inside stream"
    count, deleted, nf = _int(items[0]), _int(items[1]), _int(items[2])
    fields = items[3 : 3 + nf]
    if len(fields) != nf or items[3 + nf] != b"0":
        raise BadPayload
    node = Node(master, tuple(fields))
    mms, mseq = master >> 64, master & MAX64
    p = 4 + nf
    for _ in range(count + deleted):
        flags = _int(items[p])
        ms, seq = mms + _int(items[p + 1]), mseq + _int(items[p + 2])
        p += 3
        if flags & _SAMEFIELDS:
            values = items[p : p + nf]
            p += nf
            pairs = [x for fv in zip(fields, values, strict=True) for x in fv]
        else:
            n = _int(items[p])
            pairs = items[p + 1 : p + 1 + 2 * n]
            p += 1 + 2 * n
        p += 1  # the entry's element count
        if not 0 <= ms <= MAX64 or not 0 <= seq <= MAX64:
            raise BadPayload
        node.append((ms << 64) | seq, pairs)
        if flags & _DELETED:
            node.mark_deleted(len(node) - 1)
    if p != len(items) or node.live != count:
        raise BadPayload
    return node


def read_stream(r: Reader, kind: int) -> Stream:
    s = Stream()
    for _ in range(r.plain_length()):
        master = _raw_id(r.string())
        node = _node(master, r.string())
        if node.live == 0:
            continue  # Redis drops a node whose entries are all deleted
        s.nodes.append(node)
        s.keys.append(master)
    s.length = r.plain_length()
    s.last_id = (r.plain_length() << 64) | r.plain_length()
    if kind >= T_STREAM_2:
        s.first_id = (r.plain_length() << 64) | r.plain_length()
        s.max_deleted = (r.plain_length() << 64) | r.plain_length()
        s.entries_added = r.plain_length()
    else:
        s.first_id = s.first_valid_id()
        s.max_deleted = 0
        s.entries_added = s.length
    if s.length != sum(n.live for n in s.nodes):
        raise BadPayload
    for _ in range(r.plain_length()):
        name = r.string()
        last = (r.plain_length() << 64) | r.plain_length()
        if kind >= T_STREAM_2:
            read = r.plain_length()
            entries_read = INVALID_ENTRIES_READ if read == MAX64 else read
        else:
            entries_read = s.estimate_read(last)
        g = Group(last, entries_read)
        for _ in range(r.plain_length()):
            sid = _raw_id(r.take(16))
            time = int.from_bytes(r.take(8), "little", signed=True)
            g.add_pending(sid, Nack(time, r.plain_length(), None))
        for _ in range(r.plain_length()):
            c = Consumer(r.string(), int.from_bytes(r.take(8), "little", signed=True))
            if kind >= T_STREAM_3:
                r.take(8)  # active time (7.2): Aspen keeps seen time only
            for _ in range(r.plain_length()):
                sid = _raw_id(r.take(16))
                nack = g.pel.get(sid)
                if nack is None or nack.consumer is not None:
                    raise BadPayload
                nack.consumer = c
                c.pel.append(sid)
            c.pel.sort()
            g.consumers[c.name] = c
        if any(n.consumer is None for n in g.pel.values()):
            raise BadPayload
        s.groups[name] = g
    return s


# ------------------------------------------------------------------ writing


def _id(sid: int) -> bytes:
    return _length(sid >> 64) + _length(sid & MAX64)


def _node_listpack(node: Node) -> bytes:
    nf = len(node.fields)
    items: list[bytes | int] = [node.live, node.deleted, nf, *node.fields, 0]
    mms, mseq = node.key >> 64, node.key & MAX64
    for i in range(len(node)):
        flags = node.flags[i]
        items += [flags, node.ms[i] - mms, node.seq[i] - mseq]
        pairs = node.pairs_at(i)
        if flags & _SAMEFIELDS:
            items += pairs[1::2]
            items.append(nf + 3)
        else:
            n = len(pairs) // 2
            items.append(n)
            items += pairs
            items.append(2 * n + 4)
    return listpack(items)


def write_stream(s: Stream) -> bytes:
    """The body of an RDB_TYPE_STREAM_LISTPACKS_2 value (what Redis 7.0 writes)."""
    out = bytearray(_length(len(s.nodes)))
    for node in s.nodes:
        out += _string(node.key.to_bytes(16, "big")) + _string(_node_listpack(node))
    out += _length(s.length) + _id(s.last_id) + _id(s.first_id) + _id(s.max_deleted)
    out += _length(s.entries_added)
    out += _length(len(s.groups))
    for name, g in s.groups.items():
        out += _string(name) + _id(g.last_id) + _length(g.entries_read & MAX64)
        out += _length(len(g.pel_ids))
        for sid in g.pel_ids:
            nack = g.pel[sid]
            out += sid.to_bytes(16, "big") + (nack.time & MAX64).to_bytes(8, "little")
            out += _length(nack.count)
        out += _length(len(g.consumers))
        for c in g.consumers.values():
            out += _string(c.name) + (c.seen & MAX64).to_bytes(8, "little")
            out += _length(len(c.pel))
            for sid in c.pel:
                out += sid.to_bytes(16, "big")
    return bytes(out)
