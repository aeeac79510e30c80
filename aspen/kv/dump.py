"""DUMP and RESTORE in Redis's serialization format (RDB version 10, CRC64), so values move
between Aspen and redis-server 7.0 both ways.

A payload is one RDB value (a type byte, then the value), the RDB version (2 bytes, little
endian) and the CRC64 (Jones polynomial, reflected, as Redis computes it) of everything before
it (8 bytes, little endian).

RESTORE reads what Redis 7.0 writes: strings (raw, integer-encoded or LZF-compressed), lists
as quicklists of listpack (or plain) nodes, sets as hash tables or intsets, hashes and sorted
sets as hash tables / skiplists or listpacks, streams (aspen/rdb/streams.py); also the plain
list and string-scored sorted-set types of older versions. Modules and the ziplist/zipmap
types of Redis before 7.0 are "Bad data format" here (the RDB file reader, aspen/rdb, reads
those).

DUMP writes the plain types every Redis since 2.x reads (string, list, set, hash, sorted set
with binary scores) and streams as Redis 7.0 does (listpacks); redis-server converts them to
its compact encodings when it restores them. So Aspen's payloads restore into Redis and back,
but are not byte-identical to the ones Redis would write for the same value (those use
listpacks, intsets and LZF).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence, Sized
from typing import TYPE_CHECKING

from aspen.kv.errors import SYNTAX, CommandError
from aspen.kv.hashes import Hash
from aspen.kv.lists import List
from aspen.kv.numbers import parse_int
from aspen.kv.sets import RSet
from aspen.kv.stream import Stream
from aspen.kv.zsets import ZSet
from aspen.resp.values import OK

if TYPE_CHECKING:
    from aspen.kv.keyspace import Keyspace

Argv = Sequence[bytes]

RDB_VERSION = 10
T_STRING, T_LIST, T_SET, T_ZSET, T_HASH, T_ZSET_2 = 0, 1, 2, 3, 4, 5
T_SET_INTSET, T_HASH_LISTPACK, T_ZSET_LISTPACK, T_LIST_QUICKLIST_2 = 11, 16, 17, 18
T_STREAMS = (15, 19, 21)  # stream listpacks: Redis 5-6.2, 7.0, 7.2
_PLAIN, _PACKED = 1, 2

_BAD = "ERR Bad data format"


class BadPayload(Exception):
    """The payload does not decode to a value Aspen can hold."""


# ------------------------------------------------------------------ CRC64 (Redis's crc64.c)

_POLY_REFLECTED = 0x95AC9329AC4BC9B5


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY_REFLECTED if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc_table()


def crc64(data: bytes, crc: int = 0) -> int:
    table = _TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


# ------------------------------------------------------------------ LZF (liblzf's format)


def lzf_decompress(data: bytes, out_len: int) -> bytes:
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        ctrl = data[i]
        i += 1
        if ctrl < 32:
            run = ctrl + 1
            if i + run > n:
                raise BadPayload
            out += data[i : i + run]
            i += run
        else:
            length = ctrl >> 5
            if length == 7:
                if i >= n:
                    raise BadPayload
                length += data[i]
                i += 1
            if i >= n:
                raise BadPayload
            ref = len(out) - ((ctrl & 0x1F) << 8) - 1 - data[i]
            i += 1
            if ref < 0:
                raise BadPayload
            for _ in range(length + 2):  # may overlap what it is writing
                out.append(out[ref])
                ref += 1
    if len(out) != out_len:
        raise BadPayload
    return bytes(out)


# ------------------------------------------------------------------ reading


class Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise BadPayload
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def byte(self) -> int:
        return self.take(1)[0]

    def length(self) -> tuple[int, bool]:
        """(length, encoded): `encoded` means the value is a special string encoding."""
        first = self.byte()
        kind = first >> 6
        if kind == 0:
            return first & 0x3F, False
        if kind == 1:
            return ((first & 0x3F) << 8) | self.byte(), False
        if kind == 3:
            return first & 0x3F, True
        if first == 0x80:
            return int.from_bytes(self.take(4), "big"), False
        if first == 0x81:
            return int.from_bytes(self.take(8), "big"), False
        raise BadPayload

    def plain_length(self) -> int:
        n, encoded = self.length()
        if encoded:
            raise BadPayload
        return n

    def string(self) -> bytes:
        n, encoded = self.length()
        if not encoded:
            return self.take(n)
        if n == 0:
            return str(int.from_bytes(self.take(1), "little", signed=True)).encode()
        if n == 1:
            return str(int.from_bytes(self.take(2), "little", signed=True)).encode()
        if n == 2:
            return str(int.from_bytes(self.take(4), "little", signed=True)).encode()
        if n == 3:
            clen = self.plain_length()
            ulen = self.plain_length()
            return lzf_decompress(self.take(clen), ulen)
        raise BadPayload

    def binary_double(self) -> float:
        return float(struct.unpack("<d", self.take(8))[0])

    def text_double(self) -> float:
        n = self.byte()
        if n == 253:
            return float("nan")
        if n == 254:
            return float("inf")
        if n == 255:
            return float("-inf")
        try:
            return float(self.take(n))
        except ValueError:
            raise BadPayload from None


def listpack_entries(blob: bytes) -> list[bytes]:
    """The elements of a listpack (integers as their decimal text)."""
    if len(blob) < 7 or int.from_bytes(blob[:4], "little") != len(blob) or blob[-1] != 0xFF:
        raise BadPayload
    out: list[bytes] = []
    p, end = 6, len(blob) - 1
    while p < end:
        b = blob[p]
        if b & 0x80 == 0:
            out.append(str(b & 0x7F).encode())
            size = 1
        elif b & 0xC0 == 0x80:
            n = b & 0x3F
            out.append(blob[p + 1 : p + 1 + n])
            size = 1 + n
        elif b & 0xE0 == 0xC0:
            v = ((b & 0x1F) << 8) | blob[p + 1]
            out.append(str(v - (1 << 13) if v >= 1 << 12 else v).encode())
            size = 2
        elif b & 0xF0 == 0xE0:
            n = ((b & 0x0F) << 8) | blob[p + 1]
            out.append(blob[p + 2 : p + 2 + n])
            size = 2 + n
        elif b in (0xF1, 0xF2, 0xF3, 0xF4):
            width = {0xF1: 2, 0xF2: 3, 0xF3: 4, 0xF4: 8}[b]
            out.append(str(int.from_bytes(blob[p + 1 : p + 1 + width], "little",
                                          signed=True)).encode())
            size = 1 + width
        elif b == 0xF0:
            n = int.from_bytes(blob[p + 1 : p + 5], "little")
            out.append(blob[p + 5 : p + 5 + n])
            size = 5 + n
        else:
            raise BadPayload
        back = 1 if size <= 127 else 2 if size < 16383 else 3 if size < 2097151 else (
            4 if size < 268435455 else 5)
        p += size + back
        if p > end:
            raise BadPayload
    if int.from_bytes(blob[4:6], "little") not in (len(out), 65535):
        raise BadPayload
    return out


def intset_members(blob: bytes) -> list[bytes]:
    if len(blob) < 8:
        raise BadPayload
    width = int.from_bytes(blob[:4], "little")
    count = int.from_bytes(blob[4:8], "little")
    if width not in (2, 4, 8) or len(blob) != 8 + width * count:
        raise BadPayload
    return [
        str(int.from_bytes(blob[8 + i * width : 8 + (i + 1) * width], "little",
                           signed=True)).encode()
        for i in range(count)
    ]


def _pairs(items: list[bytes]) -> list[tuple[bytes, bytes]]:
    if len(items) % 2:
        raise BadPayload
    return list(zip(items[::2], items[1::2], strict=True))


def _score(raw: bytes) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise BadPayload from None
    if value != value:
        raise BadPayload
    return value


def _no_duplicates(value: object, n: int) -> None:
    if len(value) != n:  # type: ignore[arg-type]
        raise BadPayload  # Redis: "Duplicate ... detected"


def load_value(payload: bytes) -> object:
    """The value of a verified payload. As in Redis, the reader runs over the whole payload,
    footer included, and what follows the value is not looked at."""
    r = Reader(payload)
    return read_value(r, r.byte())


def read_value(r: Reader, kind: int) -> object:
    """One value of RDB type `kind` from the reader (the RDB file reader, aspen.rdb, shares
    it and adds the encodings of older versions)."""
    value: object
    if kind == T_STRING:
        value = r.string()
    elif kind == T_LIST:
        value = List(r.string() for _ in range(r.plain_length()))
    elif kind == T_LIST_QUICKLIST_2:
        items = List()
        for _ in range(r.plain_length()):
            container = r.plain_length()
            blob = r.string()
            if container == _PLAIN:
                items.append(blob)
            elif container == _PACKED:
                items.extend(listpack_entries(blob))  # an empty node is skipped, as in Redis
            else:
                raise BadPayload
        value = items
    elif kind == T_SET:
        n = r.plain_length()
        value = RSet(r.string() for _ in range(n))
        _no_duplicates(value, n)
    elif kind == T_SET_INTSET:
        value = RSet(intset_members(r.string()))
    elif kind == T_HASH:
        n = r.plain_length()
        value = Hash((r.string(), r.string()) for _ in range(n))
        _no_duplicates(value, n)
    elif kind == T_HASH_LISTPACK:
        value = Hash(_pairs(listpack_entries(r.string())))
    elif kind in (T_ZSET, T_ZSET_2):
        z = ZSet()
        n = r.plain_length()
        for _ in range(n):
            member = r.string()
            score = r.binary_double() if kind == T_ZSET_2 else r.text_double()
            if score != score:
                raise BadPayload
            z.set(member, score)
        _no_duplicates(z, n)
        value = z
    elif kind in T_STREAMS:
        from aspen.rdb.streams import read_stream  # (that module builds on this one)

        value = read_stream(r, kind)
    elif kind == T_ZSET_LISTPACK:
        z = ZSet()
        for member, raw_score in _pairs(listpack_entries(r.string())):
            z.set(member, _score(raw_score))
        value = z
    else:
        raise BadPayload
    if isinstance(value, Sized) and type(value) is not bytes and not len(value):
        raise BadPayload  # Redis refuses empty aggregates
    return value


def verify(payload: bytes) -> bool:
    """Do the payload's RDB version and checksum hold?"""
    if len(payload) < 10:
        return False
    footer = payload[-10:]
    if int.from_bytes(footer[:2], "little") > RDB_VERSION:
        return False
    return crc64(payload[:-8]) == int.from_bytes(footer[2:], "little")


# ------------------------------------------------------------------ writing


def _length(n: int) -> bytes:
    if n < 1 << 6:
        return bytes((n,))
    if n < 1 << 14:
        return bytes((0x40 | (n >> 8), n & 0xFF))
    if n < 1 << 32:
        return b"\x80" + n.to_bytes(4, "big")
    return b"\x81" + n.to_bytes(8, "big")


def _string(s: bytes) -> bytes:
    if len(s) <= 11:
        v = parse_int(s)
        if v is not None:
            if -(2**7) <= v < 2**7:
                return b"\xc0" + v.to_bytes(1, "little", signed=True)
            if -(2**15) <= v < 2**15:
                return b"\xc1" + v.to_bytes(2, "little", signed=True)
            if -(2**31) <= v < 2**31:
                return b"\xc2" + v.to_bytes(4, "little", signed=True)
    return _length(len(s)) + s


def dump_value(value: object) -> bytes:
    """A value as one RDB value (type byte and body)."""
    out = bytearray()
    if type(value) is bytes:
        out.append(T_STRING)
        out += _string(value)
    elif type(value) is List:
        out.append(T_LIST)
        out += _length(len(value))
        for item in value:
            out += _string(item)
    elif type(value) is RSet:
        out.append(T_SET)
        out += _length(len(value))
        for m in value:
            out += _string(m)
    elif type(value) is Hash:
        out.append(T_HASH)
        out += _length(len(value))
        for f, v in value.items():
            out += _string(f) + _string(v)
    elif type(value) is ZSet:
        out.append(T_ZSET_2)
        out += _length(len(value))
        for score, member in reversed(list(value.order.items())):  # tail first, as Redis
            out += _string(member) + struct.pack("<d", score)
    elif type(value) is Stream:
        from aspen.rdb.streams import T_STREAM_2, write_stream

        out.append(T_STREAM_2)
        out += write_stream(value)
    else:
        raise BadPayload
    return bytes(out)


def payload_of(value: object) -> bytes:
    body = dump_value(value) + RDB_VERSION.to_bytes(2, "little")
    return body + crc64(body).to_bytes(8, "little")


# ------------------------------------------------------------------ commands


def dump(ks: Keyspace, argv: Argv, now: int) -> object:
    value = ks.get_read(argv[1], now)
    if value is None:
        return None
    try:
        return payload_of(value)
    except BadPayload:
        raise CommandError("ERR DUMP of this type is not supported by Aspen") from None


def _ll(raw: bytes) -> int:
    v = parse_int(raw)
    if v is None:
        raise CommandError("ERR value is not an integer or out of range")
    return v


def restore(ks: Keyspace, argv: Argv, now: int) -> object:
    replace = absttl = False
    idle = freq = -1
    j = 4
    while j < len(argv):
        opt = argv[j].lower()
        more = len(argv) - j - 1
        if opt == b"replace":
            replace = True
        elif opt == b"absttl":
            absttl = True
        elif opt == b"idletime" and more >= 1 and freq == -1:
            idle = _ll(argv[j + 1])
            if idle < 0:
                raise CommandError("ERR Invalid IDLETIME value, must be >= 0")
            j += 1
        elif opt == b"freq" and more >= 1 and idle == -1:
            freq = _ll(argv[j + 1])
            if freq < 0 or freq > 255:
                raise CommandError("ERR Invalid FREQ value, must be >= 0 and <= 255")
            j += 1
        else:
            raise CommandError(SYNTAX)
        j += 1
    key = argv[1]
    if not replace and ks.get_write(key, now) is not None:
        raise CommandError("BUSYKEY Target key name already exists.")
    ttl = _ll(argv[2])
    if ttl < 0:
        raise CommandError("ERR Invalid TTL value, must be >= 0")
    if not verify(argv[3]):
        raise CommandError("ERR DUMP payload version or checksum are wrong")
    try:
        value = load_value(argv[3])
    except (BadPayload, IndexError):
        raise CommandError(_BAD) from None
    if replace:
        ks.delete(key, now)
    if ttl and not absttl:
        ttl += now
    if ttl and ttl <= now:
        return OK  # already expired: nothing is created (a replaced key is gone)
    ks.set_value(key, value)
    if ttl:
        ks.set_deadline(key, ttl)
    return OK
