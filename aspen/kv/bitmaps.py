"""Bit-level string commands: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD[_RO], plus LCS
and SUBSTR, as Redis 7.0 answers them.

Strings stay immutable `bytes` (the keyspace's one string representation, what snapshots
encode): a write builds the new value and stores it with `touch_value`/`set_value`, so WATCH
versions move the usual way. Bit 0 is the most significant bit of byte 0, as in Redis.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from aspen.kv.errors import MAX_STRING, NOT_INTEGER, SYNTAX, WRONGTYPE, CommandError
from aspen.kv.numbers import parse_int
from aspen.kv.strings import getrange
from aspen.resp.values import Map

if TYPE_CHECKING:
    from aspen.kv.keyspace import Keyspace

Argv = Sequence[bytes]

_BAD_OFFSET = "ERR bit offset is not an integer or out of range"
_BAD_BIT = "ERR bit is not an integer or out of range"
_BAD_TYPE = (
    "ERR Invalid bitfield type. Use something like i16 u8. "
    "Note that u64 is not supported but i64 is."
)
_U64 = (1 << 64) - 1


def _ll(raw: bytes, error: str = NOT_INTEGER) -> int:
    value = parse_int(raw)
    if value is None:
        raise CommandError(error)
    return value


def bit_offset(raw: bytes, bits: int = 0) -> int:
    """A bit offset (GETBIT/SETBIT/BITFIELD); with `bits`, "#n" means n * bits."""
    use_hash = bits > 0 and raw[:1] == b"#"
    value = parse_int(raw[1:] if use_hash else raw)
    if value is None:
        raise CommandError(_BAD_OFFSET)
    if use_hash:
        value *= bits
    if value < 0 or (value >> 3) >= MAX_STRING:
        raise CommandError(_BAD_OFFSET)
    return value


def _string_read(ks: Keyspace, key: bytes, now: int) -> bytes | None:
    return ks.get_string_read(key, now)


def _grown(old: bytes | None, nbytes: int) -> bytes:
    """`old` zero-padded to at least `nbytes` bytes (a new empty string if absent)."""
    base = old or b""
    if len(base) >= nbytes:
        return base
    return base + bytes(nbytes - len(base))


def _store(ks: Keyspace, key: bytes, old: bytes | None, new: bytes) -> None:
    if old is None:
        ks.set_value(key, new)
    elif new != old:
        ks.touch_value(key, new)


# ------------------------------------------------------------------ SETBIT / GETBIT


def setbit(ks: Keyspace, argv: Argv, now: int) -> object:
    offset = bit_offset(argv[2])
    on = _ll(argv[3], _BAD_BIT)
    if on & ~1:
        raise CommandError(_BAD_BIT)
    key = argv[1]
    old = ks.get_string_write(key, now)
    value = _grown(old, (offset >> 3) + 1)
    byte, mask = offset >> 3, 1 << (7 - (offset & 7))
    was = 1 if value[byte] & mask else 0
    if was != on:
        b = value[byte] | mask if on else value[byte] & ~mask
        value = value[:byte] + bytes((b,)) + value[byte + 1 :]
    _store(ks, key, old, value)
    return was


def getbit(ks: Keyspace, argv: Argv, now: int) -> object:
    offset = bit_offset(argv[2])
    value = _string_read(ks, argv[1], now)
    byte = offset >> 3
    if value is None or byte >= len(value):
        return 0
    return 1 if value[byte] & (1 << (7 - (offset & 7))) else 0


# ------------------------------------------------------------------ BITCOUNT / BITPOS


def _unit(raw: bytes) -> bool:
    """BIT (True) or BYTE (False)."""
    word = raw.lower()
    if word == b"bit":
        return True
    if word == b"byte":
        return False
    raise CommandError(SYNTAX)


def _clamp(start: int, end: int, total: int) -> tuple[int, int]:
    if start < 0:
        start += total
    if end < 0:
        end += total
    start = max(start, 0)
    end = max(end, 0)
    end = min(end, total - 1)
    return start, end


def _bits_of(value: bytes, start: int, end: int) -> int:
    """The bits start..end (inclusive, bit offsets) of `value` as one big-endian int."""
    first, last = start >> 3, end >> 3
    chunk = int.from_bytes(value[first : last + 1], "big")
    width = (last - first + 1) * 8
    drop_right = width - 1 - (end - first * 8)
    return (chunk >> drop_right) & ((1 << (end - start + 1)) - 1)


def bitcount(ks: Keyspace, argv: Argv, now: int) -> object:
    argc = len(argv)
    value = _string_read(ks, argv[1], now)
    if value is None:
        return 0
    if argc == 2:
        return int.from_bytes(value, "big").bit_count()
    if argc not in (4, 5):
        raise CommandError(SYNTAX)
    start, end = _ll(argv[2]), _ll(argv[3])
    if start < 0 and end < 0 and start > end:
        return 0
    is_bit = _unit(argv[4]) if argc == 5 else False
    total = len(value) * (8 if is_bit else 1)
    start, end = _clamp(start, end, total)
    if start > end:
        return 0
    if not is_bit:
        return int.from_bytes(value[start : end + 1], "big").bit_count()
    return _bits_of(value, start, end).bit_count()


def _first_bit(value: bytes, start: int, end: int, bit: int) -> int:
    """Offset (from `start`) of the first `bit` in bits start..end, or -1."""
    n = end - start + 1
    chunk = _bits_of(value, start, end)
    if bit == 0:
        chunk ^= (1 << n) - 1
    if chunk == 0:
        return -1
    return n - chunk.bit_length()


def bitpos(ks: Keyspace, argv: Argv, now: int) -> object:
    argc = len(argv)
    bit = _ll(argv[2])
    if bit not in (0, 1):
        raise CommandError("ERR The bit argument must be 1 or 0.")
    value = _string_read(ks, argv[1], now)
    if value is None:
        return -1 if bit else 0
    end_given = False
    is_bit = False
    if argc in (4, 5, 6):
        total = len(value)
        start = _ll(argv[3])
        if argc == 6:
            is_bit = _unit(argv[5])
        if argc >= 5:
            end = _ll(argv[4])
            end_given = True
        else:
            end = total * 8 + 7 if is_bit else total - 1
        if is_bit:
            total *= 8
        start, end = _clamp(start, end, total)
    elif argc == 3:
        start, end = 0, len(value) - 1
    else:
        raise CommandError(SYNTAX)
    if start > end:
        return -1
    if not is_bit:
        start, end = start * 8, end * 8 + 7
    pos = _first_bit(value, start, end, bit)
    if pos >= 0:
        return start + pos
    if bit == 1 or end_given:
        return -1
    # looking for a clear bit with no end given: the string continues with zero bits
    return end + 1


# ------------------------------------------------------------------ BITOP


def bitop(ks: Keyspace, argv: Argv, now: int) -> object:
    op = argv[1].lower()
    if op not in (b"and", b"or", b"xor", b"not"):
        raise CommandError(SYNTAX)
    if op == b"not" and len(argv) != 4:
        raise CommandError("ERR BITOP NOT must be called with a single source key.")
    sources: list[bytes] = []
    for key in argv[3:]:
        value = ks.get_read(key, now)
        if value is not None and type(value) is not bytes:
            raise CommandError(WRONGTYPE)
        sources.append(value or b"")
    maxlen = max(len(s) for s in sources)
    dest = argv[2]
    if maxlen == 0:
        ks.delete(dest, now)
        return 0
    ints = [int.from_bytes(s.ljust(maxlen, b"\x00"), "big") for s in sources]
    result = ints[0]
    if op == b"not":
        result ^= (1 << (8 * maxlen)) - 1
    for x in ints[1:]:
        if op == b"and":
            result &= x
        elif op == b"or":
            result |= x
        else:
            result ^= x
    ks.get_write(dest, now)
    ks.set_value(dest, result.to_bytes(maxlen, "big"))
    return maxlen


# ------------------------------------------------------------------ BITFIELD

_WRAP, _SAT, _FAIL = 0, 1, 2
_GET, _SET, _INCRBY = 0, 1, 2


def _bitfield_type(raw: bytes) -> tuple[bool, int]:
    """(signed, bits) of "i8" / "u16" ...; u64 is refused as in Redis."""
    sign = raw[:1]
    if sign not in (b"i", b"u"):
        raise CommandError(_BAD_TYPE)
    bits = parse_int(raw[1:])
    signed = sign == b"i"
    if bits is None or bits < 1 or bits > (64 if signed else 63):
        raise CommandError(_BAD_TYPE)
    return signed, bits


def _get_field(value: bytes, offset: int, bits: int, signed: bool) -> int:
    first = offset >> 3
    last = (offset + bits - 1) >> 3
    chunk = value[first : last + 1]
    width = (last - first + 1) * 8
    if len(chunk) < last - first + 1:
        chunk = chunk.ljust(last - first + 1, b"\x00")
    raw = (int.from_bytes(chunk, "big") >> (width - (offset - first * 8) - bits)) & (
        (1 << bits) - 1
    )
    if signed and raw >> (bits - 1):
        raw -= 1 << bits
    return raw


def _set_field(value: bytearray, offset: int, bits: int, field: int) -> None:
    first = offset >> 3
    last = (offset + bits - 1) >> 3
    width = (last - first + 1) * 8
    shift = width - (offset - first * 8) - bits
    chunk = int.from_bytes(value[first : last + 1], "big")
    mask = ((1 << bits) - 1) << shift
    chunk = (chunk & ~mask) | ((field & ((1 << bits) - 1)) << shift)
    value[first : last + 1] = chunk.to_bytes(last - first + 1, "big")


def _fit(result: int, bits: int, signed: bool, overflow: int) -> tuple[int | None, int]:
    """`result` (the exact sum) stored in the field: (value to store or None on FAIL,
    overflow direction 0/1/-1)."""
    if signed:
        hi, lo = (1 << (bits - 1)) - 1, -(1 << (bits - 1))
    else:
        hi, lo = (1 << bits) - 1, 0
    if lo <= result <= hi:
        return result, 0
    direction = 1 if result > hi else -1
    if overflow == _FAIL:
        return None, direction
    if overflow == _SAT:
        return (hi if direction > 0 else lo), direction
    wrapped = result & ((1 << bits) - 1)
    if signed and wrapped >> (bits - 1):
        wrapped -= 1 << bits
    return wrapped, direction


def _bitfield(ks: Keyspace, argv: Argv, now: int, readonly_cmd: bool) -> object:
    ops: list[tuple[int, int, int, int, bool, int]] = []  # opcode, offset, bits, arg, sign, ow
    overflow = _WRAP
    readonly = True
    highest = 0
    j, argc = 2, len(argv)
    while j < argc:
        rem = argc - j - 1
        sub = argv[j].lower()
        if sub == b"get" and rem >= 2:
            opcode = _GET
        elif sub == b"set" and rem >= 3:
            opcode = _SET
        elif sub == b"incrby" and rem >= 3:
            opcode = _INCRBY
        elif sub == b"overflow" and rem >= 1:
            kind = argv[j + 1].lower()
            if kind == b"wrap":
                overflow = _WRAP
            elif kind == b"sat":
                overflow = _SAT
            elif kind == b"fail":
                overflow = _FAIL
            else:
                raise CommandError("ERR Invalid OVERFLOW type specified")
            j += 2
            continue
        else:
            raise CommandError(SYNTAX)
        signed, bits = _bitfield_type(argv[j + 1])
        offset = bit_offset(argv[j + 2], bits)
        arg = 0
        if opcode != _GET:
            readonly = False
            highest = max(highest, offset + bits - 1)
            arg = _ll(argv[j + 3])
        ops.append((opcode, offset, bits, arg, signed, overflow))
        j += 4 if opcode != _GET else 3
    key = argv[1]
    if readonly:
        value = _string_read(ks, key, now) or b""
        return [_get_field(value, off, bits, signed) for _, off, bits, _, signed, _ in ops]
    if readonly_cmd:
        raise CommandError("ERR BITFIELD_RO only supports the GET subcommand")
    old = ks.get_string_write(key, now)
    buf = bytearray(_grown(old, (highest >> 3) + 1))
    out: list[object] = []
    for opcode, offset, bits, arg, signed, ow in ops:
        current = _get_field(buf, offset, bits, signed)  # type: ignore[arg-type]
        if opcode == _GET:
            out.append(current)
            continue
        if opcode == _INCRBY:
            stored, _ = _fit(current + arg, bits, signed, ow)
            reply: int | None = stored
        else:
            target = arg if signed else arg & _U64
            stored, _ = _fit(target, bits, signed, ow)
            reply = current
        if stored is None:
            out.append(None)
            continue
        out.append(reply)
        _set_field(buf, offset, bits, stored)
    _store(ks, key, old, bytes(buf))
    return out


def bitfield(ks: Keyspace, argv: Argv, now: int) -> object:
    return _bitfield(ks, argv, now, readonly_cmd=False)


def bitfield_ro(ks: Keyspace, argv: Argv, now: int) -> object:
    return _bitfield(ks, argv, now, readonly_cmd=True)


# ------------------------------------------------------------------ LCS / SUBSTR

_LCS_TABLE_LIMIT = MAX_STRING


def lcs(ks: Keyspace, argv: Argv, now: int) -> object:
    va, vb = ks.get_read(argv[1], now), ks.get_read(argv[2], now)
    if (va is not None and type(va) is not bytes) or (vb is not None and type(vb) is not bytes):
        raise CommandError("ERR The specified keys must contain string values")
    a = va if type(va) is bytes else b""
    b = vb if type(vb) is bytes else b""
    get_len = get_idx = with_len = False
    min_len = 0
    j = 3
    while j < len(argv):
        opt = argv[j].lower()
        more = len(argv) - 1 - j
        if opt == b"idx":
            get_idx = True
        elif opt == b"len":
            get_len = True
        elif opt == b"withmatchlen":
            with_len = True
        elif opt == b"minmatchlen" and more:
            min_len = max(_ll(argv[j + 1]), 0)
            j += 1
        else:
            raise CommandError(SYNTAX)
        j += 1
    if get_len and get_idx:
        raise CommandError("ERR If you want both the length and indexes, please just use IDX.")
    alen, blen = len(a), len(b)
    if (alen + 1) * (blen + 1) * 4 > _LCS_TABLE_LIMIT:
        raise CommandError(
            "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"
        )
    table = _lcs_table(a, b)
    total = table[alen][blen]
    if get_len:
        return total
    return _lcs_walk(a, b, table, total, get_idx, with_len, min_len)


def _lcs_table(a: bytes, b: bytes) -> list[list[int]]:
    """table[i][j]: the LCS length of a[:i] and b[:j]."""
    blen = len(b)
    table = [[0] * (blen + 1)]
    for i in range(1, len(a) + 1):
        prev = table[i - 1]
        row = [0] * (blen + 1)
        ch = a[i - 1]
        for j in range(1, blen + 1):
            if ch == b[j - 1]:
                row[j] = prev[j - 1] + 1
            else:
                up, left = prev[j], row[j - 1]
                row[j] = up if up > left else left
        table.append(row)
    return table


def _lcs_walk(
    a: bytes, b: bytes, table: list[list[int]], total: int, get_idx: bool, with_len: bool,
    min_len: int,
) -> object:
    """Walk back from the end as Redis does: the LCS string, or IDX's ranges (last first)."""
    alen = len(a)
    result = bytearray(total)
    idx = total
    matches: list[object] = []
    a_start, a_end, b_start, b_end = alen, 0, 0, 0  # a_start == alen: no range open
    i, j = alen, len(b)
    while i > 0 and j > 0:
        emit = False
        if a[i - 1] == b[j - 1]:
            result[idx - 1] = a[i - 1]
            if a_start == alen:
                a_start = a_end = i - 1
                b_start = b_end = j - 1
            elif a_start == i and b_start == j:
                a_start -= 1
                b_start -= 1
            else:
                emit = True
            if a_start == 0 or b_start == 0:
                emit = True
            idx -= 1
            i -= 1
            j -= 1
        else:
            if table[i - 1][j] > table[i][j - 1]:
                i -= 1
            else:
                j -= 1
            if a_start != alen:
                emit = True
        if emit:
            match_len = a_end - a_start + 1
            if min_len == 0 or match_len >= min_len:
                entry: list[object] = [[a_start, a_end], [b_start, b_end]]
                if with_len:
                    entry.append(match_len)
                matches.append(entry)
            a_start = alen
    if get_idx:
        return Map([(b"matches", matches), (b"len", total)])
    return bytes(result)


def substr(ks: Keyspace, argv: Argv, now: int) -> object:
    return getrange(ks, list(argv), now)
