"""RDB value types: the ones RESTORE knows (aspen.kv.dump.read_value) plus the encodings of
Redis before 7.0 (ziplists, zipmaps) that a 6.2 RDB file holds, and the types Aspen cannot
hold (modules) which are read past so the rest of the file loads.
"""

from __future__ import annotations

from aspen.kv.dump import BadPayload, Reader, listpack_entries, read_value
from aspen.kv.hashes import Hash
from aspen.kv.lists import List
from aspen.kv.sets import RSet
from aspen.kv.zsets import ZSet

T_HASH_ZIPMAP, T_LIST_ZIPLIST = 9, 10
T_ZSET_ZIPLIST, T_HASH_ZIPLIST, T_LIST_QUICKLIST = 12, 13, 14
T_SET_LISTPACK = 20
T_MODULE, T_MODULE_2 = 6, 7
TYPE_NAMES = {6: "module", 7: "module"}


class Unsupported(Exception):
    """A value of a type Aspen does not hold; `what` names it. The reader is past it."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def ziplist_entries(blob: bytes) -> list[bytes]:
    """The elements of a ziplist (Redis before 7.0; integers as their decimal text)."""
    if len(blob) < 11 or int.from_bytes(blob[:4], "little") != len(blob) or blob[-1] != 0xFF:
        raise BadPayload
    out: list[bytes] = []
    p, end = 10, len(blob) - 1
    while p < end:
        p += 1 if blob[p] < 0xFE else 5  # the previous entry's length
        enc = blob[p]
        kind = enc >> 6
        if kind == 0:
            n = enc & 0x3F
            out.append(blob[p + 1 : p + 1 + n])
            p += 1 + n
        elif kind == 1:
            n = ((enc & 0x3F) << 8) | blob[p + 1]
            out.append(blob[p + 2 : p + 2 + n])
            p += 2 + n
        elif kind == 2:
            n = int.from_bytes(blob[p + 1 : p + 5], "big")
            out.append(blob[p + 5 : p + 5 + n])
            p += 5 + n
        else:
            width = {0xC0: 2, 0xD0: 4, 0xE0: 8, 0xF0: 3, 0xFE: 1}.get(enc)
            if width is not None:
                v = int.from_bytes(blob[p + 1 : p + 1 + width], "little", signed=True)
                p += 1 + width
            elif 0xF1 <= enc <= 0xFD:
                v = (enc & 0x0F) - 1
                p += 1
            else:
                raise BadPayload
            out.append(str(v).encode())
        if p > end:
            raise BadPayload
    return out


def zipmap_pairs(blob: bytes) -> list[tuple[bytes, bytes]]:
    """A zipmap's field/value pairs (hashes of Redis before 2.6)."""
    out: list[tuple[bytes, bytes]] = []
    p = 1

    def length() -> int:
        nonlocal p
        b = blob[p]
        if b < 254:
            p += 1
            return b
        if b == 254:
            n = int.from_bytes(blob[p + 1 : p + 5], "little")
            p += 5
            return n
        raise BadPayload

    try:
        while blob[p] != 0xFF:
            n = length()
            field = blob[p : p + n]
            p += n
            n = length()
            free = blob[p]
            value = blob[p + 1 : p + 1 + n]
            p += 1 + n + free
            out.append((field, value))
    except IndexError:
        raise BadPayload from None
    return out


def _pairs(items: list[bytes]) -> list[tuple[bytes, bytes]]:
    if len(items) % 2:
        raise BadPayload
    return list(zip(items[::2], items[1::2], strict=True))


def _zset(pairs: list[tuple[bytes, bytes]]) -> ZSet:
    z = ZSet()
    for member, raw in pairs:
        try:
            score = float(raw)
        except ValueError:
            raise BadPayload from None
        if score != score:
            raise BadPayload
        z.set(member, score)
    return z


def read_any(r: Reader, kind: int) -> object:
    """One value of any RDB type Redis 6.2-7.2 writes; `Unsupported` (after reading past it)
    for modules, `BadPayload` for damage."""
    if kind == T_LIST_ZIPLIST:
        return List(ziplist_entries(r.string()))
    if kind == T_LIST_QUICKLIST:
        items = List()
        for _ in range(r.plain_length()):
            items.extend(ziplist_entries(r.string()))
        return items
    if kind == T_ZSET_ZIPLIST:
        return _zset(_pairs(ziplist_entries(r.string())))
    if kind == T_HASH_ZIPLIST:
        return Hash(_pairs(ziplist_entries(r.string())))
    if kind == T_HASH_ZIPMAP:
        return Hash(zipmap_pairs(r.string()))
    if kind == T_SET_LISTPACK:
        return RSet(listpack_entries(r.string()))
    if kind == T_MODULE_2:
        module_id = r.plain_length()
        skip_module_value(r)
        raise Unsupported(f"module {module_name(module_id)}")
    if kind == T_MODULE:
        raise BadPayload  # RDB_TYPE_MODULE (pre-4.0 RC): no way to read past it
    return read_value(r, kind)


_NAME_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def module_name(module_id: int) -> str:
    """A module type's 9-character name, packed in the top 54 bits of its id."""
    return "".join(_NAME_CHARS[(module_id >> (10 + 6 * (8 - i))) & 63] for i in range(9))


def skip_module_value(r: Reader) -> None:
    """Read past a module value saved with opcodes (RDB_TYPE_MODULE_2, MODULE_AUX)."""
    while True:
        opcode = r.plain_length()
        if opcode == 0:  # EOF
            return
        if opcode in (1, 2):  # signed / unsigned integer
            r.plain_length()
        elif opcode == 3:  # float
            r.take(4)
        elif opcode == 4:  # double
            r.take(8)
        elif opcode == 5:  # string
            r.string()
        else:
            raise BadPayload
