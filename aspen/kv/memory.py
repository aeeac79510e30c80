"""Used memory, access hints and eviction (`maxmemory`): the keyspace's side.

"Used memory" here is NOT the process's RSS: it is `Keyspace.used_memory`, a deterministic
estimate of the dataset's size kept up to date by the keyspace itself. Every write command
(`Keyspace.run_command`) re-estimates the keys it names before and after it runs and adds the
difference; keys dropped by active expiry are subtracted, FLUSHALL resets it to 0, and a
restored snapshot is counted once in full. A key costs `approx_size(key, value)`: a fixed
overhead for its dict entry and objects plus its bytes; an aggregate costs its length times
the average size of its first `SIZE_SAMPLES` elements (O(1) per write, like Redis's sampled
MEMORY USAGE). Every replica computes the same figure from the same log, but only the
leader's is used: the leader decides what to evict and refuses denyoom writes, and those
decisions travel through the log (ASPEN.EVICT, ASPEN.OOM). What it does not count: the Raft
log, client buffers and Python's own overhead (RSS is in INFO memory as used_memory_rss).
A script's redis.call on a key it did not declare is counted through the inner command.

Access hints (for the LRU and LFU policies) are local, never replicated: every node records
the accesses it executes (writes at apply, with the entry's time; reads it serves); the
leader evicts by its own record. After a failover the new leader's record holds the writes
it applied and the reads it served. OBJECT IDLETIME and FREQ read the same record.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from itertools import islice
from typing import TYPE_CHECKING

from aspen.kv.errors import CommandError
from aspen.kv.hashes import Hash
from aspen.kv.lists import List
from aspen.kv.sets import RSet
from aspen.kv.stream import Stream
from aspen.kv.zsets import ZSet
from aspen.resp.values import Error

if TYPE_CHECKING:
    from aspen.kv.keyspace import Keyspace

Argv = Sequence[bytes]

KEY_OVERHEAD = 72  # dict slot + entry, key object, value object header (about Redis's too)
ELEMENT_OVERHEAD = 40  # per element of an aggregate (its dict/list slot and object)
SCORE_BYTES = 8
STREAM_ENTRY = 96  # an entry of a stream, fields included (streams are not sampled)
SIZE_SAMPLES = 3
OTHER_VALUE = 256

POLICIES = (
    "noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random",
    "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl",
)
OOM_ERROR = "OOM command not allowed when used memory > 'maxmemory'."

# Redis's LFU constants (lfu-log-factor 10, lfu-decay-time 1 minute, LFU_INIT_VAL 5).
LFU_INIT = 5
LFU_LOG_FACTOR = 10
LFU_DECAY_MS = 60_000


def approx_size(key: bytes, value: object) -> int:
    """The estimated bytes one key holds (see the module docstring)."""
    t = type(value)
    if t is bytes:
        return KEY_OVERHEAD + len(key) + len(value)  # type: ignore[arg-type]
    base = KEY_OVERHEAD + len(key)
    total = taken = 0
    if t is Hash:
        n = len(value)  # type: ignore[arg-type]
        for f, v in value.items():  # type: ignore[attr-defined]
            total += len(f) + len(v)
            taken += 1
            if taken == SIZE_SAMPLES:
                break
    elif t is ZSet:
        scores = value.scores  # type: ignore[attr-defined]
        n = len(scores)
        for m in scores:
            total += len(m) + SCORE_BYTES
            taken += 1
            if taken == SIZE_SAMPLES:
                break
    elif t is List or t is RSet:
        n = len(value)  # type: ignore[arg-type]
        for m in value:  # type: ignore[attr-defined]
            total += len(m)
            taken += 1
            if taken == SIZE_SAMPLES:
                break
    elif t is Stream:
        s: Stream = value  # type: ignore[assignment]
        return base + OTHER_VALUE + s.length * STREAM_ENTRY + len(s.groups) * OTHER_VALUE
    else:
        return base + OTHER_VALUE
    if not taken:
        return base
    return base + n * ELEMENT_OVERHEAD + n * total // taken


# ---------------------------------------------------------------- which keys a write touches


KeysOf = Callable[[Argv], Sequence[bytes]]


def _inner(offset: int) -> KeysOf:
    def keys(argv: Argv) -> list[bytes]:
        return [*argv[1:offset], *command_keys(argv[offset:])]
    return keys


def _no_keys(argv: Argv) -> Sequence[bytes]:
    return ()


_SPECIAL: dict[bytes, KeysOf] = {
    b"aspen.evict": lambda argv: argv[1:],
    b"aspen.bserve": _inner(2),  # ASPEN.BSERVE key <blocking argv>: key + the argv's keys
}
_KEYS_OF: dict[bytes, KeysOf] = {}  # command name as sent -> its key finder (a cache)


def keys_of(name: bytes) -> KeysOf:
    """How to find the keys of a command called `name` (cached per spelling): a write's
    keys are re-estimated around it; scripts (counted by their redis.calls) have none."""
    found = _KEYS_OF.get(name)
    if found is None:
        found = _KEYS_OF[name] = _find_keys_of(name.lower())
    return found


def _find_keys_of(name: bytes) -> KeysOf:
    from aspen.kv.commands import lookup_executable

    special = _SPECIAL.get(name)
    if special is not None:
        return special
    spec = lookup_executable(name)
    if spec is None or spec.group == "scripting" or not (spec.first_key or spec.key_specs
                                                          or spec.keys_proc):
        return _no_keys
    if not spec.key_specs and spec.keys_proc is None and spec.first_key == spec.last_key:
        i = spec.first_key

        def one(argv: Argv) -> Sequence[bytes]:
            return (argv[i],) if len(argv) > i else ()
        return one

    def general(argv: Argv) -> Sequence[bytes]:
        if not spec.arity_ok(len(argv)):
            return ()
        try:
            found = spec.keys(list(argv))
        except (IndexError, ValueError):
            return ()
        return list(dict.fromkeys(found)) if len(found) > 1 else found
    return general


def command_keys(argv: Argv) -> Sequence[bytes]:
    """The keys a command names, as its spec says (none for scripts)."""
    if not argv:
        return ()
    return keys_of(argv[0])(argv)


NO_TOUCH = frozenset({b"object", b"ttl", b"pttl", b"type", b"exists", b"expiretime",
                      b"pexpiretime", b"memory"})
"""Reads that leave a key's access time alone (Redis looks them up with LOOKUP_NOTOUCH)."""


def read_keys(argv: Argv) -> Sequence[bytes]:
    """The keys a read counts as accessed (none for the NO_TOUCH ones)."""
    if not argv or argv[0].lower() in NO_TOUCH:
        return ()
    return command_keys(argv)


# ---------------------------------------------------------------- access hints


class AccessHints:
    """This node's record of key accesses: last access (ms) for LRU, a log counter for LFU.

    Local to the node (see the module docstring); forgets a key when it is removed."""

    __slots__ = ("last", "lfu", "rng")

    def __init__(self, lfu: bool) -> None:
        self.lfu = lfu
        self.last: dict[bytes, int] = {}  # LRU: last access; LFU: (minutes << 8) | counter
        self.rng = random.Random(0x5EED)

    def touch(self, keys: Iterable[bytes], now_ms: int) -> None:
        last = self.last
        if not self.lfu:
            for key in keys:
                last[key] = now_ms
            return
        minutes = now_ms // LFU_DECAY_MS
        for key in keys:
            packed = last.get(key)
            counter = LFU_INIT if packed is None else self._decayed(packed, minutes)
            if counter < 255:
                base = max(counter - LFU_INIT, 0)
                if self.rng.random() < 1.0 / (base * LFU_LOG_FACTOR + 1):
                    counter += 1
            last[key] = (minutes << 8) | counter

    @staticmethod
    def _decayed(packed: int, minutes: int) -> int:
        return max((packed & 255) - max(minutes - (packed >> 8), 0), 0)

    def forget(self, key: bytes) -> None:
        self.last.pop(key, None)

    def idle_ms(self, key: bytes, now_ms: int) -> int:
        """Since the last access (LRU); a key never seen here counts as idle since time 0."""
        packed = self.last.get(key)
        if packed is None:
            return now_ms
        if self.lfu:
            return max(now_ms - (packed >> 8) * LFU_DECAY_MS, 0)
        return max(now_ms - packed, 0)

    def frequency(self, key: bytes, now_ms: int) -> int:
        packed = self.last.get(key)
        if packed is None:
            return LFU_INIT
        return self._decayed(packed, now_ms // LFU_DECAY_MS)


# ---------------------------------------------------------------- choosing victims


def choose_victims(
    ks: Keyspace,
    policy: str,
    need: int,
    now_ms: int,
    rng: random.Random,
    exclude: dict[bytes, int],
    samples: int = 5,
    max_keys: int = 4096,
) -> list[tuple[bytes, int]]:
    """Keys to evict (with their sizes) that free at least `need` bytes if possible, chosen
    like Redis: each victim is the best of `samples` keys drawn at random (largest idle time,
    lowest frequency, nearest deadline; any for *-random). Keys in `exclude` (evictions
    already in flight) are skipped. May return fewer (nothing evictable is left)."""
    volatile = policy.startswith("volatile-")
    kind = policy.split("-", 1)[1]
    keys, data, expires = ks._order_keys, ks._data, ks._expires
    hints = ks.hints
    pool = expires if volatile else data
    out: list[tuple[bytes, int]] = []
    chosen: set[bytes] = set()
    freed = 0
    misses = 0
    while freed < need and len(out) < max_keys and len(pool) > len(chosen) + len(exclude):
        best: bytes | None = None
        best_score = -1
        for _ in range(samples):
            key = _sample(keys, expires, volatile, rng)
            if key is None or key in chosen or key in exclude or key not in data:
                continue
            score = _score(kind, key, ks, hints, now_ms)
            if score > best_score:
                best, best_score = key, score
        if best is None:
            misses += 1
            if misses > 8:  # mostly stale slots or excluded keys: walk the pool in order
                best = next((k for k in pool if k not in chosen and k not in exclude
                             and k in data), None)
                if best is None:
                    break
            else:
                continue
        size = approx_size(best, data[best])
        chosen.add(best)
        out.append((best, size))
        freed += size
    return out


def _sample(keys: list[bytes], expires: dict[bytes, int], volatile: bool,
            rng: random.Random) -> bytes | None:
    if not keys:
        return None
    for _ in range(8 if volatile else 1):
        key = keys[rng.randrange(len(keys))]
        if not volatile or key in expires:
            return key
    if volatile and expires:  # few keys with a TTL: take one of the first ones
        return next(islice(iter(expires), rng.randrange(min(len(expires), 64)), None), None)
    return None


def _score(kind: str, key: bytes, ks: Keyspace, hints: AccessHints | None, now_ms: int) -> int:
    """Higher: a better victim."""
    if kind == "random":
        return 0
    if kind == "ttl":
        return 2**62 - ks._expires.get(key, 2**62)
    if hints is None:
        return 0
    if kind == "lfu":
        return 255 - hints.frequency(key, now_ms)
    return hints.idle_ms(key, now_ms)


# ---------------------------------------------------------------- the internal commands


def evict(ks: Keyspace, argv: Argv, now: int) -> object:
    """ASPEN.EVICT key...: the leader's evictions (delete each key that exists; count them).
    Every replica applying it announces `evicted` (class e) to its own subscribers."""
    n = 0
    notifier = ks.notifier
    for key in argv[1:]:
        if key in ks._data:
            ks.delete(key, now)  # (an expired key is dropped all the same)
            n += 1
            if notifier is not None:
                notifier.evicted(key, ks.db)
    ks.evicted_keys += n
    return n


def refuse_oom(ks: Keyspace, argv: Argv, now: int) -> object:
    """ASPEN.OOM <argv...>: the leader refused this write (used memory above maxmemory)."""
    raise CommandError(OOM_ERROR)


OOM_REPLY = Error(OOM_ERROR)
