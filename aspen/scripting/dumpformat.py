"""FUNCTION DUMP / RESTORE payloads in Redis 7.0's format, so dumps move both ways between
redis-server and Aspen.

A payload is, per library, the RDB opcode FUNCTION2 (245) and the library's code as an RDB
string, then the RDB version (10, two bytes little-endian) and a CRC-64 (Jones polynomial,
reflected, as Redis's crc64) of everything before it, little-endian. Aspen writes plain
strings; it reads plain and LZF-compressed ones (redis-server compresses long codes). Written
for Aspen from the RDB format's description.
"""

from __future__ import annotations

OPCODE_FUNCTION2 = 245
RDB_VERSION = 10
_POLY = 0x95AC9329AC4BC9B5  # 0xad93d23594c935a9, bit-reversed


def _table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _table()


def crc64(data: bytes, crc: int = 0) -> int:
    t = _TABLE
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


def _length(n: int) -> bytes:
    if n < 1 << 6:
        return bytes([n])
    if n < 1 << 14:
        return bytes([0x40 | (n >> 8), n & 0xFF])
    if n < 1 << 32:
        return b"\x80" + n.to_bytes(4, "big")
    return b"\x81" + n.to_bytes(8, "big")


def dump(codes: list[bytes]) -> bytes:
    body = b"".join(bytes([OPCODE_FUNCTION2]) + _length(len(c)) + c for c in codes)
    body += RDB_VERSION.to_bytes(2, "little")
    return body + crc64(body).to_bytes(8, "little")


class PayloadError(ValueError):
    pass


def load(payload: bytes) -> list[bytes]:
    """The libraries' codes in a payload; PayloadError if it is not a valid one."""
    if len(payload) < 10:
        raise PayloadError("too short")
    version = int.from_bytes(payload[-10:-8], "little")
    if version > RDB_VERSION or crc64(payload[:-8]) != int.from_bytes(payload[-8:], "little"):
        raise PayloadError("version or checksum")
    data = payload[:-10]
    pos = 0
    codes: list[bytes] = []
    while pos < len(data):
        if data[pos] != OPCODE_FUNCTION2:
            raise PayloadError("given type is not a function")
        code, pos = _string(data, pos + 1)
        codes.append(code)
    return codes


def _read_length(data: bytes, pos: int) -> tuple[int, bool, int]:
    """(length or encoding, is-encoded, next position)."""
    if pos >= len(data):
        raise PayloadError("truncated")
    first = data[pos]
    kind = first >> 6
    if kind == 0:
        return first & 0x3F, False, pos + 1
    if kind == 1:
        if pos + 1 >= len(data):
            raise PayloadError("truncated")
        return ((first & 0x3F) << 8) | data[pos + 1], False, pos + 2
    if kind == 3:
        return first & 0x3F, True, pos + 1
    if first == 0x80:
        return int.from_bytes(data[pos + 1:pos + 5], "big"), False, pos + 5
    if first == 0x81:
        return int.from_bytes(data[pos + 1:pos + 9], "big"), False, pos + 9
    raise PayloadError("bad length")


def _string(data: bytes, pos: int) -> tuple[bytes, int]:
    n, encoded, pos = _read_length(data, pos)
    if not encoded:
        if pos + n > len(data):
            raise PayloadError("truncated")
        return data[pos:pos + n], pos + n
    if n == 3:  # LZF
        clen, _, pos = _read_length(data, pos)
        ulen, _, pos = _read_length(data, pos)
        if pos + clen > len(data):
            raise PayloadError("truncated")
        return lzf_decompress(data[pos:pos + clen], ulen), pos + clen
    if n in (0, 1, 2):  # an integer stored as a string
        size = 1 << n
        value = int.from_bytes(data[pos:pos + size], "little", signed=True)
        return str(value).encode(), pos + size
    raise PayloadError("unknown string encoding")


def lzf_decompress(data: bytes, size: int) -> bytes:
    out = bytearray()
    i = 0
    while i < len(data):
        ctrl = data[i]
        i += 1
        if ctrl < 32:  # a literal run of ctrl + 1 bytes
            out += data[i:i + ctrl + 1]
            i += ctrl + 1
            continue
        length = ctrl >> 5
        if length == 7:
            length += data[i]
            i += 1
        ref = len(out) - ((ctrl & 0x1F) << 8) - data[i] - 1
        i += 1
        if ref < 0:
            raise PayloadError("bad LZF back reference")
        for _ in range(length + 2):  # may overlap what it copies
            out.append(out[ref])
            ref += 1
    if len(out) != size:
        raise PayloadError("LZF length mismatch")
    return bytes(out)
