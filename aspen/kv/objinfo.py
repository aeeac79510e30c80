"""OBJECT (ENCODING, REFCOUNT, IDLETIME, FREQ, HELP) and MEMORY USAGE.

Aspen keeps one representation per type, so these describe the value as Redis 7.0 would hold
the same contents with its default thresholds:

- strings: "int" (a strict 64-bit integer of at most 20 characters), "embstr" (at most 44
  bytes), else "raw";
- lists: "quicklist" (Redis 7.0 has no other list encoding);
- sets: "intset" (only integers, at most 512), else "hashtable";
- hashes: "listpack" (at most 512 fields, every field and value at most 64 bytes), else
  "hashtable"; sorted sets "listpack" (at most 128 members of at most 64 bytes), else
  "skiplist".

Redis's encoding also depends on history (APPEND makes a string "raw"; an aggregate that grew
past a threshold stays in the big encoding after shrinking); Aspen reports the encoding of a
value freshly built with these contents. REFCOUNT is 2147483647 for the integers 0..9999
Redis shares, else 1. IDLETIME and FREQ read the node's own access record, kept only under an
LRU or LFU maxmemory policy (aspen.kv.memory: reads are not replicated, so it is local);
without one IDLETIME is 0, and FREQ answers Redis's error for a server without an LFU policy.

MEMORY USAGE estimates what redis-server 7.0 (jemalloc, 64-bit) would report: the key's sds,
its dict entry and the value: exact for integer and short strings, compact encodings
(listpack, intset) and single-node lists; an estimate with Redis's own sampling formula (first
SAMPLES elements, default 5) for hashtable and skiplist values and long lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from aspen.kv.errors import SYNTAX, CommandError
from aspen.kv.hashes import Hash
from aspen.kv.lists import List
from aspen.kv.numbers import parse_int
from aspen.kv.sets import RSet
from aspen.kv.valuetypes import type_name
from aspen.kv.zsets import ZSet
from aspen.resp.values import SimpleString

if TYPE_CHECKING:
    from aspen.kv.keyspace import Keyspace

Argv = Sequence[bytes]

SHARED_INTEGERS = 10000
SHARED_REFCOUNT = 2147483647
EMBSTR_MAX = 44
HASH_LISTPACK_ENTRIES = 512
ZSET_LISTPACK_ENTRIES = 128
LISTPACK_VALUE = 64
INTSET_ENTRIES = 512
LIST_NODE_BYTES = 8192
_LFU = (
    "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note "
    "that when switching between policies at runtime LRU and LFU data will take some time to "
    "adjust."
)

_LRU = (
    "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when "
    "switching between policies at runtime LRU and LFU data will take some time to adjust."
)

OBJECT_HELP = (
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
)
MEMORY_HELP = (
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
    "HELP",
    "    Prints this help.",
)


# ------------------------------------------------------------------ encodings


def _is_int_string(value: bytes) -> bool:
    return len(value) <= 20 and parse_int(value) is not None


def _small(items: Sequence[bytes]) -> bool:
    return all(len(x) <= LISTPACK_VALUE for x in items)


def encoding(value: object) -> str:
    if type(value) is bytes:
        if _is_int_string(value):
            return "int"
        return "embstr" if len(value) <= EMBSTR_MAX else "raw"
    if type(value) is List:
        return "quicklist"
    if type(value) is RSet:
        if len(value) <= INTSET_ENTRIES and all(parse_int(m) is not None for m in value):
            return "intset"
        return "hashtable"
    if type(value) is Hash:
        fields, values = list(value), list(value.values())
        if len(value) <= HASH_LISTPACK_ENTRIES and _small(fields) and _small(values):
            return "listpack"
        return "hashtable"
    if type(value) is ZSet:
        if len(value) <= ZSET_LISTPACK_ENTRIES and _small(list(value.scores)):
            return "listpack"
        return "skiplist"
    return type_name(value)  # a stream: Redis's only stream encoding is "stream"


# ------------------------------------------------------------------ sizes (jemalloc, 64-bit)

_ROBJ = 16
_DICT_ENTRY = 24
_DICT = 56
_QUICKLIST = 40
_QUICKLIST_NODE = 40
_ZSET = 16
_ZSKIPLIST = 32
_ZSL_HEADER = 8 * 3 + 32 * 16


def malloc_size(n: int) -> int:
    """jemalloc's size class for an allocation of `n` bytes (16-byte quantum)."""
    if n <= 8:
        return 8
    if n <= 128:
        return (n + 15) & ~15
    delta = 1 << ((n - 1).bit_length() - 3)
    return (n + delta - 1) & ~(delta - 1)


def _sds_alloc(n: int) -> int:
    """Bytes an sds string of length `n` asks for (header by type, then the NUL)."""
    if n < 32:
        header = 1
    elif n < 256:
        header = 3
    elif n < 65536:
        header = 5
    else:
        header = 9
    return header + n + 1


def sds_size(n: int) -> int:
    return malloc_size(_sds_alloc(n))


def _sds_copy_size(n: int) -> int:
    """An sds built by sdsnewlen with a non-empty initial length (type 5 for short ones)."""
    return sds_size(n) if n else malloc_size(3 + 1)


def _lp_entry(item: bytes) -> int:
    """Bytes one listpack entry takes (encoding, data and back-length)."""
    value = parse_int(item) if len(item) <= 20 else None
    if value is not None:
        if 0 <= value <= 127:
            size = 1
        elif -4096 <= value <= 4095:
            size = 2
        elif -(2**15) <= value < 2**15:
            size = 3
        elif -(2**23) <= value < 2**23:
            size = 4
        elif -(2**31) <= value < 2**31:
            size = 5
        else:
            size = 9
    else:
        n = len(item)
        size = 1 + n if n < 64 else (2 + n if n < 4096 else 5 + n)
    if size <= 127:
        back = 1
    elif size < 16383:
        back = 2
    elif size < 2097151:
        back = 3
    elif size < 268435455:
        back = 4
    else:
        back = 5
    return size + back


def listpack_bytes(items: Sequence[bytes]) -> int:
    return 6 + sum(_lp_entry(x) for x in items) + 1


def _score_text(score: float) -> bytes:
    if score == int(score) and abs(score) < 2**53:
        return str(int(score)).encode()
    return b"%.17g" % score


def _dict_slots(n: int) -> int:
    size = 4
    while size < n:
        size *= 2
    return size


def _sampled(total: int, sizes: list[int]) -> int:
    return int(sum(sizes) / len(sizes) * total) if sizes else 0


def value_size(value: object, samples: int) -> int:
    """Redis's objectComputeSize for these contents (see the module docstring)."""
    if type(value) is bytes:
        kind = encoding(value)
        if kind == "int":
            return _ROBJ
        if kind == "embstr":
            return malloc_size(_ROBJ + 3 + len(value) + 1)
        return _ROBJ + sds_size(len(value))
    if type(value) is List:
        nodes = _list_nodes(list(value))
        sizes = [_QUICKLIST_NODE + malloc_size(b) for b in nodes[:samples]]
        return _ROBJ + _QUICKLIST + _sampled(len(nodes), sizes)
    if type(value) is RSet:
        members = list(value)
        if encoding(value) == "intset":
            ints = [parse_int(m) or 0 for m in members]
            width = 2
            if any(not -(2**15) <= v < 2**15 for v in ints):
                width = 4
            if any(not -(2**31) <= v < 2**31 for v in ints):
                width = 8
            return _ROBJ + malloc_size(8 + width * len(ints))
        base = _ROBJ + _DICT + 8 * _dict_slots(len(members))
        sizes = [_DICT_ENTRY + sds_size(len(m)) for m in members[:samples]]
        return base + _sampled(len(members), sizes)
    if type(value) is Hash:
        if encoding(value) == "listpack":
            flat = [x for kv in value.items() for x in kv]
            return _ROBJ + malloc_size(listpack_bytes(flat))
        base = _ROBJ + _DICT + 8 * _dict_slots(len(value))
        sizes = [sds_size(len(f)) + sds_size(len(v)) + _DICT_ENTRY
                 for f, v in list(value.items())[:samples]]
        return base + _sampled(len(value), sizes)
    if type(value) is ZSet:
        pairs = [(m, s) for s, m in value.order.items()]
        if encoding(value) == "listpack":
            flat = [x for m, s in pairs for x in (m, _score_text(s))]
            return _ROBJ + malloc_size(listpack_bytes(flat))
        base = (_ROBJ + _ZSET + _ZSKIPLIST + _DICT + 8 * _dict_slots(len(pairs))
                + malloc_size(_ZSL_HEADER))
        node = malloc_size(8 + 8 + 8 + 16)  # a node of one level
        sizes = [sds_size(len(m)) + _DICT_ENTRY + node for m, _ in pairs[:samples]]
        return base + _sampled(len(pairs), sizes)
    return _ROBJ


def _list_nodes(items: list[bytes]) -> list[int]:
    """Listpack sizes of the quicklist nodes a list is split into (8 KB per node)."""
    nodes: list[int] = []
    size = 7
    count = 0
    for item in items:
        entry = _lp_entry(item)
        if count and size + entry > LIST_NODE_BYTES:
            nodes.append(size)
            size, count = 7, 0
        size += entry
        count += 1
    if count or not nodes:
        nodes.append(size)
    return nodes


# ------------------------------------------------------------------ commands


def object_(ks: Keyspace, argv: Argv, now: int) -> object:
    sub = argv[1].lower()
    if sub == b"help":
        return [SimpleString(line) for line in OBJECT_HELP]
    value = ks.get_read(argv[2], now)
    if value is None:
        return None
    if sub == b"encoding":
        return encoding(value).encode()
    if sub == b"refcount":
        if type(value) is bytes and encoding(value) == "int":
            n = parse_int(value) or 0
            return SHARED_REFCOUNT if 0 <= n < SHARED_INTEGERS else 1
        return 1
    hints = ks.hints  # this node's access record (aspen.kv.memory), under an LRU/LFU policy
    if sub == b"idletime":
        if hints is not None and hints.lfu:
            raise CommandError(_LRU)
        return hints.idle_ms(argv[2], now) // 1000 if hints is not None else 0
    if hints is None or not hints.lfu:
        raise CommandError(_LFU)  # FREQ
    return hints.frequency(argv[2], now)


def memory(ks: Keyspace, argv: Argv, now: int) -> object:
    sub = argv[1].lower()
    if sub == b"help":
        return [SimpleString(line) for line in MEMORY_HELP]
    samples = 5
    j = 3
    while j < len(argv):
        if argv[j].lower() == b"samples" and j + 1 < len(argv):
            n = parse_int(argv[j + 1])
            if n is None:
                raise CommandError("ERR value is not an integer or out of range")
            if n < 0:
                raise CommandError(SYNTAX)
            samples = n if n else 2**63 - 1
            j += 2
        else:
            raise CommandError(SYNTAX)
    key = argv[2]
    value = ks.get_read(key, now)
    if value is None:
        return None
    return value_size(value, samples) + _sds_copy_size(len(key)) + _DICT_ENTRY
