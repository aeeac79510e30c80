"""Read a whole RDB file as redis-server 6.2 (version 9), 7.0 (10) and 7.2 (11) write it.

    parser = RdbParser(data)
    for record in parser.records():   # Record(db, key, value | None, expire_ms, unsupported)
        ...
    parser.aux, parser.functions       # after the loop: AUX fields, function library codes

Opcodes: AUX, SELECTDB (the number is kept on every record: the database it is imported into),
RESIZEDB (a hint, ignored), EXPIRETIME_MS / EXPIRETIME, IDLE / FREQ (eviction state Aspen does
not keep), FUNCTION2 (a library's code), MODULE_AUX (read past), EOF then the CRC64 of the
whole file, checked unless it is 0 (a server with `rdbchecksum no`).
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from aspen.kv.dump import BadPayload, Reader, crc64
from aspen.rdb.values import Unsupported, read_any, skip_module_value

OP_FUNCTION2, OP_FUNCTION = 0xF5, 0xF6
OP_MODULE_AUX, OP_IDLE, OP_FREQ, OP_AUX = 0xF7, 0xF8, 0xF9, 0xFA
OP_RESIZEDB, OP_EXPIRETIME_MS, OP_EXPIRETIME, OP_SELECTDB, OP_EOF = 0xFB, 0xFC, 0xFD, 0xFE, 0xFF
MAX_VERSION = 11


class RdbError(Exception):
    """The file is not an RDB file this reader understands, or it is damaged."""


@attrs.frozen
class Record:
    db: int
    key: bytes
    value: object  # None when `unsupported` names the type that was skipped
    expire_ms: int | None  # absolute unix time in milliseconds
    unsupported: str | None = None


class RdbParser:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.aux: dict[bytes, bytes] = {}
        self.functions: list[bytes] = []
        self.version = 0
        self.resize_hint = 0  # the keys RESIZEDB announced (for a progress bar)

    def check(self) -> None:
        """Header and checksum, before any record is handed out (a damaged file loads
        nothing)."""
        data = self.data
        if len(data) < 9 + 1 or data[:5] != b"REDIS" or not data[5:9].isdigit():
            raise RdbError("not an RDB file (no REDIS magic)")
        self.version = int(data[5:9])
        if not 1 <= self.version <= MAX_VERSION:
            raise RdbError(f"RDB version {self.version} is not supported (1-{MAX_VERSION})")
        if self.version >= 5:
            if len(data) < 9 + 1 + 8 or data[-9] != OP_EOF:
                raise RdbError("truncated RDB file (no EOF and checksum at the end)")
            expected = int.from_bytes(data[-8:], "little")
            if expected and crc64(data[:-8]) != expected:
                raise RdbError("RDB checksum mismatch: the file is damaged")

    def records(self, *, check: bool = True) -> Iterator[Record]:
        """The keys in file order (`check=False`: the file was checked by an earlier pass)."""
        if check:
            self.check()
        else:
            self.version = int(self.data[5:9])
        r = Reader(self.data)
        r.pos = 9
        db = 0
        expire: int | None = None
        try:
            while True:
                op = r.byte()
                if op == OP_EOF:
                    return
                if op == OP_SELECTDB:
                    db = r.plain_length()
                elif op == OP_RESIZEDB:
                    self.resize_hint += r.plain_length()
                    r.plain_length()
                elif op == OP_AUX:
                    name = r.string()
                    self.aux[name] = r.string()
                elif op == OP_EXPIRETIME_MS:
                    expire = int.from_bytes(r.take(8), "little")
                elif op == OP_EXPIRETIME:
                    expire = int.from_bytes(r.take(4), "little") * 1000
                elif op == OP_IDLE:
                    r.plain_length()
                elif op == OP_FREQ:
                    r.byte()
                elif op == OP_FUNCTION2:
                    self.functions.append(r.string())
                elif op == OP_FUNCTION:
                    raise RdbError("a pre-release 7.0 function opcode: save the file again with "
                                   "Redis 7.0 GA or later")
                elif op == OP_MODULE_AUX:
                    r.plain_length()  # module id
                    if r.plain_length() != 2:  # `when` opcode: an unsigned integer
                        raise BadPayload
                    r.plain_length()
                    skip_module_value(r)
                else:
                    key = r.string()
                    try:
                        value = read_any(r, op)
                    except Unsupported as exc:
                        yield Record(db, key, None, expire, exc.what)
                    else:
                        yield Record(db, key, value, expire)
                    expire = None
        except (BadPayload, IndexError, ValueError) as exc:
            raise RdbError(f"damaged RDB file near byte {r.pos}") from exc


def read_rdb(data: bytes) -> tuple[list[Record], RdbParser]:
    parser = RdbParser(data)
    return list(parser.records()), parser
