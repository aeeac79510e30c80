"""HyperLogLog: PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST, in Redis 7.0's own representation.

An HLL is an ordinary string value holding exactly the bytes Redis stores, so GET, DUMP and
replication see the same thing as on redis-server:

- a 16-byte header: b"HYLL", the encoding (0 dense, 1 sparse), three zero bytes, and the cached
  cardinality (64-bit little endian; the top bit of its last byte set = "stale");
- dense: 16384 registers of 6 bits, packed from the least significant bit of each byte up;
- sparse: run-length opcodes ZERO (00xxxxxx: 1..64 zero registers), XZERO (01xxxxxx yyyyyyyy:
  1..16384 zeros) and VAL (1vvvvvxx: 1..4 registers of value 1..32).

The sparse form is not canonical: the bytes depend on the order registers were raised in. So
an update follows Redis's procedure step by step (split the opcode that covers the register
into at most three, then merge equal VAL neighbours in a window of five opcodes starting at the
previous opcode, promote to dense when a value exceeds 32 or the string would pass
hll-sparse-max-bytes = 3000). The element hash is MurmurHash64A (seed 0xadc83b19), and the
count is the estimator of Redis 7.0 (Ertl's improved raw estimator, rounded as llroundl does).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from aspen.kv.errors import WRONGTYPE, CommandError
from aspen.resp.values import OK, SimpleString

if TYPE_CHECKING:
    from aspen.kv.keyspace import Keyspace

Argv = Sequence[bytes]

P = 14
Q = 64 - P
REGISTERS = 1 << P
HDR = 16
DENSE_SIZE = HDR + (REGISTERS * 6 + 7) // 8
DENSE, SPARSE = 0, 1
SPARSE_MAX_BYTES = 3000
"""Redis's hll-sparse-max-bytes default (Aspen has no CONFIG for it)."""
_VAL_MAX_VALUE = 32
_VAL_MAX_LEN = 4
_ZERO_MAX_LEN = 64
_XZERO_MAX_LEN = 16384
_ALPHA_INF = 0.721347520444481703680
_SEED = 0xADC83B19
_M64 = (1 << 64) - 1
_MUL = 0xC6A4A7935BD1E995

_NOT_HLL = "WRONGTYPE Key is not a valid HyperLogLog string value."
_CORRUPT = "INVALIDOBJ Corrupted HLL object detected"


class Corrupt(Exception):
    """The sparse opcodes do not cover exactly 16384 registers."""


# ------------------------------------------------------------------ hashing


def murmur64a(data: bytes, seed: int = _SEED) -> int:
    """MurmurHash64A (endian-neutral, as Redis uses it)."""
    n = len(data)
    h = (seed ^ (n * _MUL)) & _M64
    whole = n - (n & 7)
    for i in range(0, whole, 8):
        k = int.from_bytes(data[i : i + 8], "little")
        k = (k * _MUL) & _M64
        k ^= k >> 47
        k = (k * _MUL) & _M64
        h ^= k
        h = (h * _MUL) & _M64
    rest = n & 7
    if rest:
        h ^= int.from_bytes(data[whole:], "little")
        h = (h * _MUL) & _M64
    h ^= h >> 47
    h = (h * _MUL) & _M64
    h ^= h >> 47
    return h


def pattern(element: bytes) -> tuple[int, int]:
    """(register index, run length of the 0...01 pattern) of an element."""
    h = murmur64a(element)
    index = h & (REGISTERS - 1)
    h >>= P
    h |= 1 << Q
    return index, (h & -h).bit_length()  # the lowest set bit, counted from 1


# ------------------------------------------------------------------ representation


def empty() -> bytearray:
    """A new HLL: sparse, one XZERO covering every register, cache 0 (valid)."""
    out = bytearray(b"HYLL\x01\x00\x00\x00" + bytes(8))
    n = REGISTERS
    while n:
        run = min(n, _XZERO_MAX_LEN)
        out += bytes(((run - 1) >> 8 | 0x40, (run - 1) & 0xFF))
        n -= run
    return out


def is_hll(value: bytes) -> bool:
    if len(value) < HDR or value[:4] != b"HYLL" or value[4] > 1:
        return False
    return not (value[4] == DENSE and len(value) != DENSE_SIZE)


def invalidate(buf: bytearray) -> None:
    buf[15] |= 0x80


def _dense_get(buf: bytearray | bytes, reg: int) -> int:
    at = HDR + reg * 6 // 8
    fb = reg * 6 & 7
    b0 = buf[at]
    b1 = buf[at + 1] if at + 1 < len(buf) else 0
    return ((b0 >> fb) | (b1 << (8 - fb))) & 63


def _dense_set(buf: bytearray, reg: int, value: int) -> None:
    at = HDR + reg * 6 // 8
    fb = reg * 6 & 7
    buf[at] = (buf[at] & ~(63 << fb) & 0xFF) | ((value << fb) & 0xFF)
    if at + 1 < len(buf):
        buf[at + 1] = (buf[at + 1] & ~(63 >> (8 - fb)) & 0xFF) | (value >> (8 - fb))


def _dense_raise(buf: bytearray, reg: int, count: int) -> int:
    if count > _dense_get(buf, reg):
        _dense_set(buf, reg, count)
        return 1
    return 0


def dense_registers(buf: bytearray | bytes) -> list[int]:
    """The 16384 registers of a dense HLL (each 3 bytes hold 4 registers, low bits first)."""
    body = bytes(buf[HDR:DENSE_SIZE])
    words = [int.from_bytes(body[i : i + 3], "little") for i in range(0, len(body), 3)]
    regs = [0] * REGISTERS
    regs[0::4] = [x & 63 for x in words]
    regs[1::4] = [x >> 6 & 63 for x in words]
    regs[2::4] = [x >> 12 & 63 for x in words]
    regs[3::4] = [x >> 18 for x in words]
    return regs


def sparse_runs(buf: bytearray | bytes) -> list[tuple[int, int]]:
    """(value, run length) of each opcode (zeros have value 0), unchecked."""
    out: list[tuple[int, int]] = []
    p, end = HDR, len(buf)
    while p < end:
        op = buf[p]
        if op & 0xC0 == 0:
            out.append((0, (op & 0x3F) + 1))
            p += 1
        elif op & 0xC0 == 0x40:
            low = buf[p + 1] if p + 1 < end else 0
            out.append((0, ((op & 0x3F) << 8 | low) + 1))
            p += 2
        else:
            out.append(((op >> 2 & 0x1F) + 1, (op & 3) + 1))
            p += 1
    return out


def to_dense(buf: bytearray) -> bytearray:
    """The dense form of a sparse HLL (the header, cache included, is kept)."""
    if buf[4] == DENSE:
        return buf
    dense = bytearray(buf[:HDR]) + bytearray(DENSE_SIZE - HDR)
    dense[4] = DENSE
    idx = 0
    for value, run in sparse_runs(buf):
        if value and idx + run > REGISTERS:
            break
        if value:
            for r in range(idx, idx + run):
                _dense_set(dense, r, value)
        idx += run
    if idx != REGISTERS:
        raise Corrupt
    return dense


def registers(buf: bytearray | bytes) -> list[int]:
    """All 16384 register values (Corrupt for a bad sparse form)."""
    if buf[4] == DENSE:
        return dense_registers(buf)
    regs = [0] * REGISTERS
    idx = 0
    for value, run in sparse_runs(buf):
        if value:
            if idx + run > REGISTERS:
                break
            regs[idx : idx + run] = [value] * run
        idx += run
    if idx != REGISTERS:
        raise Corrupt
    return regs


def _sparse_set(buf: bytearray, index: int, count: int) -> tuple[bytearray, int]:
    """Raise register `index` to `count` in a sparse HLL; (the HLL, 1 if changed else 0).
    The HLL may come back dense (promoted)."""
    if count > _VAL_MAX_VALUE:
        return _promote(buf, index, count)
    end = len(buf)
    p = HDR
    first = 0
    prev = -1
    span = 0
    oplen = 1
    while p < end:
        op = buf[p]
        oplen = 1
        if op & 0xC0 == 0:
            span = (op & 0x3F) + 1
        elif op & 0x80:
            span = (op & 3) + 1
        else:
            low = buf[p + 1] if p + 1 < end else 0
            span = ((op & 0x3F) << 8 | low) + 1
            oplen = 2
        if index <= first + span - 1:
            break
        prev = p
        p += oplen
        first += span
    if span == 0 or p >= end:
        raise Corrupt
    op = buf[p]
    is_zero = op & 0xC0 == 0
    is_xzero = op & 0xC0 == 0x40
    is_val = bool(op & 0x80)
    runlen = span
    if is_val:
        old = (op >> 2 & 0x1F) + 1
        if old >= count:
            return buf, 0
        if runlen == 1:
            buf[p] = _val(count, 1)
            return _merge(buf, prev), 1
    if is_zero and runlen == 1:
        buf[p] = _val(count, 1)
        return _merge(buf, prev), 1
    last = first + span - 1
    seq = bytearray()
    if is_zero or is_xzero:
        if index != first:
            seq += _zeros(index - first)
        seq.append(_val(count, 1))
        if index != last:
            seq += _zeros(last - index)
    else:
        cur = (op >> 2 & 0x1F) + 1
        if index != first:
            seq.append(_val(cur, index - first))
        seq.append(_val(count, 1))
        if index != last:
            seq.append(_val(cur, last - index))
    oldlen = 2 if is_xzero else 1
    delta = len(seq) - oldlen
    if delta > 0 and len(buf) + delta > SPARSE_MAX_BYTES:
        return _promote(buf, index, count)
    buf[p : p + oldlen] = seq
    return _merge(buf, prev), 1


def _val(value: int, run: int) -> int:
    return ((value - 1) << 2 | (run - 1)) | 0x80


def _zeros(run: int) -> bytes:
    if run > _ZERO_MAX_LEN:
        return bytes(((run - 1) >> 8 | 0x40, (run - 1) & 0xFF))
    return bytes((run - 1,))


def _merge(buf: bytearray, prev: int) -> bytearray:
    """Merge adjacent equal VAL opcodes, scanning up to five opcodes from `prev`."""
    p = prev if prev >= 0 else HDR
    scan = 5
    while p < len(buf):
        if scan == 0:
            break
        scan -= 1
        op = buf[p]
        if op & 0xC0 == 0x40:
            p += 2
            continue
        if op & 0xC0 == 0:
            p += 1
            continue
        if p + 1 < len(buf) and buf[p + 1] & 0x80:
            v1, v2 = (op >> 2 & 0x1F) + 1, (buf[p + 1] >> 2 & 0x1F) + 1
            if v1 == v2:
                run = (op & 3) + 1 + (buf[p + 1] & 3) + 1
                if run <= _VAL_MAX_LEN:
                    buf[p + 1] = _val(v1, run)
                    del buf[p]
                    continue
        p += 1
    invalidate(buf)
    return buf


def _promote(buf: bytearray, index: int, count: int) -> tuple[bytearray, int]:
    dense = to_dense(buf)
    _dense_raise(dense, index, count)
    return dense, 1


def add(buf: bytearray, element: bytes) -> tuple[bytearray, int]:
    """Add one element; (the HLL, 1 if a register changed)."""
    index, count = pattern(element)
    if buf[4] == DENSE:
        return buf, _dense_raise(buf, index, count)
    return _sparse_set(buf, index, count)


def raise_register(buf: bytearray, index: int, count: int) -> bytearray:
    if buf[4] == DENSE:
        _dense_raise(buf, index, count)
        return buf
    return _sparse_set(buf, index, count)[0]


# ------------------------------------------------------------------ estimating


def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y = 1.0
    z = x
    while True:
        x *= x
        z_prime = z
        z += x * y
        y += y
        if z_prime == z:
            return z


def _tau(x: float) -> float:
    if x == 0.0 or x == 1.0:
        return 0.0
    y = 1.0
    z = 1 - x
    while True:
        x = math.sqrt(x)
        z_prime = z
        y *= 0.5
        z -= math.pow(1 - x, 2) * y
        if z_prime == z:
            return z / 3


def estimate(regs: list[int]) -> int:
    """Redis 7.0's cardinality estimate from the register values."""
    histo = [0] * 64
    for value, n in Counter(regs).items():
        histo[value] = n
    m = float(REGISTERS)
    z = m * _tau((m - histo[Q + 1]) / m)
    for j in range(Q, 0, -1):
        z += histo[j]
        z *= 0.5
    z += m * _sigma(histo[0] / m)
    e = _ALPHA_INF * m * m / z
    if math.isinf(e):
        return 0
    whole = math.floor(e)  # llroundl: halves away from zero (e is never negative)
    return whole + 1 if e - whole >= 0.5 else whole


# ------------------------------------------------------------------ commands


def _hll_read(ks: Keyspace, key: bytes, now: int) -> bytes | None:
    value = ks.get_read(key, now)
    if value is None:
        return None
    return _checked(value)


def _checked(value: object) -> bytes:
    if type(value) is not bytes:
        raise CommandError(WRONGTYPE)
    if not is_hll(value):
        raise CommandError(_NOT_HLL)
    return value


def _hll_write(ks: Keyspace, key: bytes, now: int) -> bytes | None:
    value = ks.get_write(key, now)
    return None if value is None else _checked(value)


def pfadd(ks: Keyspace, argv: Argv, now: int) -> object:
    key = argv[1]
    old = _hll_write(ks, key, now)
    updated = 0
    buf = empty() if old is None else bytearray(old)
    if old is None:
        updated += 1
    try:
        for element in argv[2:]:
            buf, changed = add(buf, element)
            updated += changed
    except Corrupt:
        # Redis updates in place: what the elements before the bad one changed stays
        if old is not None and bytes(buf) != old:
            ks.touch_value(key, bytes(buf))
        raise CommandError(_CORRUPT) from None
    if updated:
        invalidate(buf)
        if old is None:
            ks.set_value(key, bytes(buf))
        else:
            ks.touch_value(key, bytes(buf))
    return 1 if updated else 0


def _merged(ks: Keyspace, keys: Argv, now: int) -> tuple[list[int], bool]:
    """Register-wise maximum of the HLLs at `keys` (absent = empty); and whether any is dense."""
    top = [0] * REGISTERS
    dense = False
    for key in keys:
        value = _hll_read(ks, key, now)
        if value is None:
            continue
        if value[4] == DENSE:
            dense = True
        try:
            regs = registers(value)
        except Corrupt:
            raise CommandError(_CORRUPT) from None
        top = list(map(max, top, regs))
    return top, dense


def pfcount(ks: Keyspace, argv: Argv, now: int) -> object:
    """Replicated (routed as a write although Redis flags it read-only): counting a single key
    refreshes the cardinality cached in its bytes, which Redis also propagates."""
    if len(argv) > 2:
        return estimate(_merged(ks, argv[1:], now)[0])
    key = argv[1]
    value = _hll_read(ks, key, now)
    if value is None:
        return 0
    if not value[15] & 0x80:
        return int.from_bytes(value[8:16], "little")
    try:
        card = estimate(registers(value))
    except Corrupt:
        raise CommandError(_CORRUPT) from None
    ks.touch_value(key, value[:8] + card.to_bytes(8, "little") + value[16:])
    return card


def pfmerge(ks: Keyspace, argv: Argv, now: int) -> object:
    top, dense = _merged(ks, argv[1:], now)
    key = argv[1]
    old = _hll_write(ks, key, now)  # checked already as a source
    buf = empty() if old is None else bytearray(old)
    try:
        if dense:
            buf = to_dense(buf)
        for j, value in enumerate(top):
            if value:
                buf = raise_register(buf, j, value)
    except Corrupt:
        raise CommandError(_CORRUPT) from None
    invalidate(buf)
    if old is None:
        ks.set_value(key, bytes(buf))
    else:
        ks.touch_value(key, bytes(buf))
    return OK


def pfdebug(ks: Keyspace, argv: Argv, now: int) -> object:
    sub, key = argv[1], argv[2]
    old = ks.get_write(key, now)
    if old is None:
        raise CommandError("ERR The specified key does not exist")
    old = _checked(old)
    name = sub.lower()
    if name in (b"getreg", b"todense"):
        converted = old[4] == SPARSE
        try:
            buf = to_dense(bytearray(old))
        except Corrupt:
            raise CommandError(_CORRUPT) from None
        if converted:
            ks.touch_value(key, bytes(buf))
        if name == b"todense":
            return 1 if converted else 0
        return dense_registers(buf)
    if name == b"decode":
        if old[4] != SPARSE:
            raise CommandError("ERR HLL encoding is not sparse")
        return _decode_text(old)
    if name == b"encoding":
        return SimpleString("dense" if old[4] == DENSE else "sparse")
    raise CommandError(f"ERR Unknown PFDEBUG subcommand '{sub.decode('utf-8', 'replace')}'")


def _decode_text(buf: bytes) -> bytes:
    """PFDEBUG DECODE: the opcodes as "z:<n>", "Z:<n>", "v:<value>,<n>"."""
    parts: list[str] = []
    p, end = HDR, len(buf)
    while p < end:
        op = buf[p]
        if op & 0xC0 == 0:
            parts.append(f"z:{(op & 0x3F) + 1}")
            p += 1
        elif op & 0xC0 == 0x40:
            low = buf[p + 1] if p + 1 < end else 0
            parts.append(f"Z:{((op & 0x3F) << 8 | low) + 1}")
            p += 2
        else:
            parts.append(f"v:{(op >> 2 & 0x1F) + 1},{(op & 3) + 1}")
            p += 1
    return " ".join(parts).encode()


def pfselftest(ks: Keyspace, argv: Argv, now: int) -> object:
    """Checks the register packing both ways and sparse/dense agreement on a fixed sample."""
    buf = bytearray(DENSE_SIZE)
    for i in range(REGISTERS):
        _dense_set(buf, i, (i * 7 + 3) & 63)
    for i in range(REGISTERS):
        got = _dense_get(buf, i)
        if got != (i * 7 + 3) & 63:
            return CommandError(
                f"TESTFAILED Register {i} should be {(i * 7 + 3) & 63} but is {got}"
            ).reply
    sparse, dense = empty(), to_dense(empty())
    for j in range(1, 2001):
        element = j.to_bytes(8, "little")
        sparse, _ = add(sparse, element)
        dense, _ = add(dense, element)
    if estimate(registers(sparse)) != estimate(registers(dense)):
        return CommandError("TESTFAILED dense/sparse disagree").reply
    return OK
