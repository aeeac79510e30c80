"""The deterministic state machine: Redis's numbered databases (16 by default).

Nothing here reads the wall clock or global randomness: time arrives as `now_ms` (in the cluster,
the leader's time stored in the log entry) and RANDOMKEY's randomness as a `seed`. Given the same
sequence of `execute` calls every replica ends in the same state, byte for byte (`digest()`).

Representation:
- `_data`: key -> value. A string is `bytes`; other types are described by `ValueType`s
  (aspen.kv.valuetypes, registered by the command table) and are instances of their own
  class (the type tag is the value's class).
- `_expires`: key -> absolute deadline in ms. A key is expired when `now_ms > deadline` (Redis's
  rule). Reads treat expired keys as absent and never mutate; writes drop them on touch and
  `expire_some` drops a bounded number actively.
- `_versions`: key -> modification counter for WATCH (`_clock` at the key's last write: set
  over an existing value, modify, delete, TTL change, re-creation). A key created once and never
  written again has NO entry: its version is `_floor`. Deleted keys keep their counter (a
  tombstone) so that delete-then-recreate is still seen; when tombstones pile up (more than
  the live keys + 1024) they are pruned and `_floor` moves to the current counter, which can
  only cause extra aborts (of a transaction whose WATCH straddles the pruning, on a pruned or
  never-rewritten key); a token never repeats, so no write can go unnoticed.
  A watch token is the version for a live key and `-version - 1` for an absent or expired one,
  so a key that expires between WATCH and EXEC aborts the transaction, as in Redis 7.
- `_order_keys`/`_order_seqs`: keys in creation order with their creation sequence number (a
  `_clock` value; the numbers in an `array`, no int object per key), so SCAN's cursor (the
  last sequence number returned) stays valid while keys come and go: a key present for the
  whole scan is returned exactly once. A deleted key leaves a stale slot until the lists are
  compacted; `_reborn` tells a live key's current slot from stale ones, and only for keys
  deleted since the last compaction (a key created once has one slot: it is current iff live).

Databases: the fields above (`_data` to `_reborn`, and `_floor`) are those of the SELECTED
database (`db`); the others are parked in `_parked` (a `_Db` each, made on first use) and
swapped in by `select`. Every op says its database (`aspen.kv.ops`) and `execute` selects it,
so the handlers only ever see "the" database and a session on db 0 costs nothing more.
`_clock` is shared by all databases: a WATCH token is unique across them, so a key moved by
MOVE or SWAPDB never looks unchanged. What the selected database is between ops is not state
(snapshots, digests and replies never depend on it).

Memory: a key created once costs its dict slot in `_data`, its key and value objects and two
list/array slots; nothing else (no per-key int objects, no second dict). See
docs/benchmarks.md, "Memory per key".
"""

from __future__ import annotations

import bisect
import hashlib
import io
from array import array
from collections.abc import Callable, Sequence
from typing import Any

import cbor2

from aspen.acl.state import AclState
from aspen.kv.commands import READ_HANDLERS, WRITE_HANDLERS, lookup_executable
from aspen.kv.databases import DB_RANGE, parse_index
from aspen.kv.errors import MAX_STRING, NOT_INTEGER, SYNTAX, WRONGTYPE, CommandError
from aspen.kv.memory import AccessHints, approx_size, keys_of, read_keys
from aspen.kv.notify import Notifier, around
from aspen.kv.ops import Op, ReadOp, TxnOp, WriteOp, watch_db
from aspen.kv.spec import Route
from aspen.kv.valuetypes import TYPES_BY_CLASS, TYPES_BY_NAME, ValueType, type_name
from aspen.resp.values import NULL_ARRAY, Error

__all__ = [  # the errors and value types are re-exported for callers that knew them here
    "MAX_STRING",
    "NOT_INTEGER",
    "SYNTAX",
    "WRONGTYPE",
    "CommandError",
    "Keyspace",
    "ValueType",
    "type_name",
]


DEFAULT_DATABASES = 16
_DB_FIELDS = (
    "_data", "_expires", "_versions", "_floor", "_order_keys", "_order_seqs", "_reborn",
    "used_memory",
)


class _Db:
    """A database that is not selected: its fields, parked (see the module docstring)."""

    __slots__ = _DB_FIELDS

    def __init__(self) -> None:
        self._data: dict[bytes, object] = {}
        self._expires: dict[bytes, int] = {}
        self._versions: dict[bytes, int] = {}
        self._floor = 0
        self._order_keys: list[bytes] = []
        self._order_seqs: array[int] = array("q")
        self._reborn: dict[bytes, int] = {}
        self.used_memory = 0

    def fresh(self) -> bool:
        """Never written (or equivalent): what a database that was never selected holds."""
        return not self._data and not self._versions and not self._floor


_TOMBSTONE_SLACK = 1024
_FREE_SLICE = 10_000  # entries of flushed containers freed per command (under a millisecond)


class Keyspace:
    """The databases' keys, values, TTLs and WATCH versions, and the replicated server state
    (scripts, ACL users)."""

    def __init__(self, databases: int = DEFAULT_DATABASES) -> None:
        self.databases = databases
        """How many databases (Redis's `databases`); the same on every node of a cluster."""
        self.db = 0  # the selected database, whose fields are the ones below
        self._parked: dict[int, _Db] = {}
        self._data: dict[bytes, object] = {}
        self._expires: dict[bytes, int] = {}
        self._versions: dict[bytes, int] = {}
        self._clock = 0
        self._floor = 0
        self._order_keys: list[bytes] = []
        self._order_seqs: array[int] = array("q")
        self._reborn: dict[bytes, int] = {}  # key -> current creation seq (0: none) if stale slots
        self._garbage: list[dict[bytes, object] | dict[bytes, int] | list[bytes]] = []
        self.seed = 0
        self.scripting: Any = None
        """aspen.scripting.state.ScriptState once a script or function was seen (replicated:
        part of the snapshot)."""
        self.script_budget = 0
        """Lua instructions a script may run (0: the engine's default); same on every node."""
        self.acl = AclState()  # ACL users: replicated by ASPEN.ACLOP, kept in snapshots
        self.script_user: bytes | None = None
        """While a restricted user's script runs (ASPEN.SCRIPTAS): whose rules redis.call
        is checked against."""
        self.used_memory = 0
        """The selected database's estimated size (aspen.kv.memory), kept only while
        `track_memory` (it costs a little on every write); per database, so that FLUSHDB can
        zero it without a walk. `total_used_memory` is what maxmemory compares."""
        self.track_memory = False
        self.evicted_keys = 0  # keys removed by ASPEN.EVICT (INFO stats)
        self.hints: AccessHints | None = None
        """This node's access record for the LRU/LFU policies (local, never replicated)."""
        self.notifier: Notifier | None = None
        """The node's keyspace notifications (aspen.kv.notify): local, never replicated."""

    # ------------------------------------------------------------ executing ops

    def execute(self, op: Op, now_ms: int, seed: int = 0) -> object:
        """Run one op, in its database, and return its reply value."""
        refused = self._enter(op.db, seed)
        if refused is not None:
            return refused
        if isinstance(op, TxnOp):
            return self._execute_txn(op, now_ms)
        return self.run_command(op.argv, type(op) is WriteOp, now_ms)

    def execute_write(self, argv: tuple[bytes, ...], db: int, now_ms: int, seed: int) -> object:
        """`execute(WriteOp(argv, db), now_ms, seed)`, without the op object (a follower
        applies the writes of an entry as they were decoded: `aspen.cluster.entry`)."""
        refused = self._enter(db, seed)
        if refused is not None:
            return refused
        return self.run_command(argv, True, now_ms)

    def _enter(self, db: int, seed: int) -> Error | None:
        """Before an op: its seed, some lazy freeing, its database (or the error for a
        database out of range)."""
        self.seed = seed
        if self._garbage:
            self._free_some()
        if db != self.db:
            if not 0 <= db < self.databases:
                return Error(DB_RANGE)
            self.select(db)
        return None

    # ------------------------------------------------------------ databases

    def valid_db(self, index: int) -> bool:
        return 0 <= index < self.databases

    def select(self, index: int) -> None:
        """Make database `index` the one the handlers see (the caller checked the range)."""
        if index == self.db:
            return
        self._parked[self.db] = self._park()
        state = self._parked.pop(index, None)
        self._load_db(state if state is not None else _Db())
        self.db = index

    def _park(self) -> _Db:
        parked = _Db()
        for name in _DB_FIELDS:
            setattr(parked, name, getattr(self, name))
        return parked

    def _load_db(self, state: _Db) -> None:
        for name in _DB_FIELDS:
            setattr(self, name, getattr(state, name))

    def total_used_memory(self) -> int:
        """Every database's estimated size together (what maxmemory is compared with)."""
        return self.used_memory + sum(d.used_memory for d in self._parked.values())

    def memory_by_db(self) -> dict[int, int]:
        """Estimated size per database (the eviction pass takes victims from the largest)."""
        sizes = {i: d.used_memory for i, d in self._parked.items()}
        sizes[self.db] = self.used_memory
        return sizes

    def used_dbs(self) -> list[int]:
        """The databases that hold anything (keys, or WATCH versions), in index order."""
        used = [i for i, d in self._parked.items() if not d.fresh()]
        if self._data or self._versions or self._floor:
            used.append(self.db)
        return sorted(used)

    def swap_dbs(self, a: int, b: int) -> None:
        """SWAPDB: the two databases exchange their contents (both indexes are valid).

        Every key of both is then seen as changed by a WATCH (its version becomes the shared
        clock's next value): Redis marks the watched keys of both databases dirty."""
        if a == b:
            return
        current = self.db
        self._clock += 1
        self.select(a)
        self._floor, self._versions = self._clock, {}
        self.select(b)
        self._floor, self._versions = self._clock, {}
        was_b, was_a = self._park(), self._parked.pop(a)
        self._parked[a] = was_b
        self._load_db(was_a)  # the fields are database b's again, with a's former contents
        self.select(current)

    def flush_all(self, now_ms: int) -> None:
        """FLUSHALL: every database emptied (as FLUSHDB each)."""
        current = self.db
        for index in self.used_dbs():
            self.select(index)
            self.flush(now_ms)
        self.select(current)

    def db_stats(self, now_ms: int) -> list[tuple[int, int, int, int]]:
        """(db, keys, keys with a TTL, average TTL left in ms) for each non-empty database:
        INFO keyspace's lines."""
        current = self.db
        out = []
        for index in self.used_dbs():
            self.select(index)
            if self._data:
                left = [d - now_ms for d in self._expires.values() if d > now_ms]
                avg = sum(left) // len(left) if left else 0
                out.append((index, len(self._data), len(self._expires), avg))
        self.select(current)
        return out

    def run_command(
        self, argv: list[bytes] | tuple[bytes, ...], write: bool, now_ms: int
    ) -> object:
        """One command by its write or read handler (an op, or redis.call from a script):
        the handler's reply or error."""
        table = WRITE_HANDLERS if write else READ_HANDLERS
        handler = table.get(argv[0])
        if handler is None:
            handler = table.get(argv[0].lower())
            if handler is None:
                return Error(f"ERR unknown command '{argv[0].decode('utf-8', 'replace')}'")
        notifier = self.notifier
        if notifier is not None and write and notifier.flags:
            handler = _notifying(handler, notifier)
        hints = self.hints
        if not write or (not self.track_memory and hints is None):
            if hints is not None:
                hints.touch(read_keys(argv), now_ms)
            try:
                return handler(self, argv, now_ms)
            except CommandError as exc:
                return exc.reply
        # A write: re-estimate the keys it names around it (aspen.kv.memory); a script's
        # redis.calls are counted one by one instead.
        keys = keys_of(argv[0])(argv)
        tracked = self.track_memory and bool(keys)
        if tracked:
            dbs = self._dbs_written(argv)
            before = [self._size_in(db, keys) for db in dbs]
        try:
            reply = handler(self, argv, now_ms)
        except CommandError as exc:
            reply = exc.reply
        if tracked:  # (FLUSHALL in a script replaced the containers: read them afresh)
            for db, was in zip(dbs, before, strict=True):
                self._add_used(db, self._size_in(db, keys) - was)
        if keys and hints is not None:
            data = self._data
            hints.touch([k for k in keys if k in data], now_ms)
        return reply

    def _dbs_written(self, argv: Sequence[bytes]) -> tuple[int, ...]:
        """The databases a write changes: the selected one, and MOVE's or COPY ... DB's
        destination (SWAPDB moves whole databases, their estimates with them)."""
        name = argv[0].lower()
        other: int | str | None = None
        if name == b"move" and len(argv) == 3:
            other = parse_index(argv[2])
        elif name == b"copy":
            lowered = [a.lower() for a in argv[3:]]
            if b"db" in lowered and lowered.index(b"db") + 4 < len(argv):
                other = parse_index(argv[lowered.index(b"db") + 4])
        if isinstance(other, int) and other != self.db and self.valid_db(other):
            return (self.db, other)
        return (self.db,)

    def _size_in(self, db: int, keys: Sequence[bytes]) -> int:
        """The estimates of `keys` as they are in database `db`."""
        if db == self.db:
            data = self._data
        else:
            parked = self._parked.get(db)
            if parked is None:
                return 0
            data = parked._data
        size = 0
        for key in keys:
            value = data.get(key)
            if value is not None:
                size += approx_size(key, value)
        return size

    def _add_used(self, db: int, delta: int) -> None:
        if db == self.db:
            self.used_memory = max(self.used_memory + delta, 0)
        elif db in self._parked:
            parked = self._parked[db]
            parked.used_memory = max(parked.used_memory + delta, 0)

    def set_memory_tracking(self, on: bool) -> None:
        """Keep `used_memory` up to date from now on (counting the dataset once, O(keys)),
        or stop."""
        if on and not self.track_memory:
            self.used_memory = sum(approx_size(k, v) for k, v in self._data.items())
            for parked in self._parked.values():
                parked.used_memory = sum(approx_size(k, v) for k, v in parked._data.items())
        self.track_memory = on

    def replace_with(self, other: Keyspace) -> None:
        """Take over `other`'s keys, TTLs and versions (an undo); scripting state and the ACL
        users (and the node's ACL LOG) are kept, and so are the number of databases and which
        one is selected (a script may be running in it)."""
        scripting, budget, acl, hints = self.scripting, self.script_budget, self.acl, self.hints
        databases, current = self.databases, self.db
        notifier = self.notifier
        names = getattr(type(other), "__mypyc_attrs__", None)  # compiled: no __dict__
        if names is None:
            self.__dict__.update(other.__dict__)
        else:
            for name in names:
                setattr(self, name, getattr(other, name))
        self.scripting, self.script_budget, self.acl, self.hints = scripting, budget, acl, hints
        self.notifier = notifier
        self.databases = databases
        self.select(current)

    def _execute_txn(self, op: TxnOp, now_ms: int) -> object:
        for w in op.watches:
            if self.watch_token(w[0], now_ms, watch_db(w)) != w[1]:
                return NULL_ARRAY
        replies: list[object] = []
        db = op.db
        for argv in op.commands:
            if argv[0].lower() == b"select":  # queued SELECT: the session makes its reply
                index = parse_index(argv[1]) if len(argv) == 2 else None
                if isinstance(index, int) and self.valid_db(index):
                    db = index
                continue
            spec = lookup_executable(argv[0])
            if spec is not None and spec.route is Route.WRITE:
                replies.append(self.execute(WriteOp(argv, db), now_ms, self.seed))
            else:
                replies.append(self.execute(ReadOp(argv, db), now_ms, self.seed))
        return replies

    # ------------------------------------------------------------ lookups

    def get_read(self, key: bytes, now_ms: int) -> object | None:
        """The live value of `key`, or None; never mutates."""
        value = self._data.get(key)
        if value is not None and self._expires:
            deadline = self._expires.get(key)
            if deadline is not None and now_ms > deadline:
                return None
        return value

    def get_write(self, key: bytes, now_ms: int) -> object | None:
        """Like `get_read`, but drops the key if it has expired (writes may mutate)."""
        value = self._data.get(key)
        if value is not None and self._expires:
            deadline = self._expires.get(key)
            if deadline is not None and now_ms > deadline:
                self._drop_expired(key)
                return None
        return value

    def get_string_read(self, key: bytes, now_ms: int) -> bytes | None:
        value = self.get_read(key, now_ms)
        if value is None or type(value) is bytes:
            return value
        raise CommandError(WRONGTYPE)

    def get_string_write(self, key: bytes, now_ms: int) -> bytes | None:
        value = self.get_write(key, now_ms)
        if value is None or type(value) is bytes:
            return value
        raise CommandError(WRONGTYPE)

    def is_live(self, key: bytes, now_ms: int) -> bool:
        return self.get_read(key, now_ms) is not None

    def deadline(self, key: bytes) -> int | None:
        return self._expires.get(key)

    def watch_token(self, key: bytes, now_ms: int, db: int | None = None) -> int:
        """What WATCH records and EXEC compares (of `key` in `db`, default the selected one);
        see the module docstring."""
        if db is not None:
            self.select(db)
        version = self._versions.get(key, self._floor)
        if self.get_read(key, now_ms) is not None:
            return version
        return -version - 1

    def version(self, key: bytes) -> int:
        return self._versions.get(key, self._floor)

    def get_read_in(self, db: int, key: bytes, now_ms: int) -> object | None:
        """`get_read` in database `db` (for the node: blocked clients, XREAD's `$`)."""
        self.select(db)
        return self.get_read(key, now_ms)

    def key_count(self) -> int:
        """Keys stored in every database, including expired ones not yet dropped."""
        return len(self._data) + sum(len(d._data) for d in self._parked.values())

    def expires_count(self) -> int:
        """Keys with a TTL in every database (whether active expiry has work)."""
        return len(self._expires) + sum(len(d._expires) for d in self._parked.values())

    def live_count(self, now_ms: int) -> int:
        """Keys that are not expired at `now_ms` (DBSIZE)."""
        expired = sum(1 for d in self._expires.values() if now_ms > d) if self._expires else 0
        return len(self._data) - expired

    def live_keys(self, now_ms: int) -> list[bytes]:
        """All live keys in creation order."""
        if not self._expires:
            return list(self._data)
        exp = self._expires
        return [k for k in self._data if not (k in exp and now_ms > exp[k])]

    # ------------------------------------------------------------ mutations

    def _bump(self, key: bytes) -> None:
        self._clock += 1
        self._versions[key] = self._clock

    def set_value(self, key: bytes, value: object, keep_ttl: bool = False) -> None:
        """Store `value` (the caller has already dropped an expired key via get_write)."""
        data = self._data
        self._clock += 1
        # One probe of the (big, cache-cold) dict, not two: the store tells by the size
        # whether the key is new (a SET over 100k keys spent ~9% of a leader in dict probes).
        had = len(data)
        data[key] = value
        if len(data) != had:
            seq = self._clock
            self._order_keys.append(key)
            self._order_seqs.append(seq)
            if key in self._versions:  # re-created: its absent token must change
                self._versions[key] = seq
            if self._reborn and key in self._reborn:
                self._reborn[key] = seq
            if len(self._order_keys) > 2 * had + 64:
                self._compact_order()
        else:
            self._versions[key] = self._clock
        if not keep_ttl and self._expires:
            self._expires.pop(key, None)

    def copy_value(self, value: object) -> object:
        """An independent copy of a value (COPY); strings are immutable and shared."""
        if type(value) is bytes:
            return value
        return TYPES_BY_CLASS[type(value)].copy(value)

    def touch_value(self, key: bytes, value: object) -> None:
        """Replace the value of an existing key in place, keeping its TTL."""
        self._data[key] = value
        self._clock += 1
        self._versions[key] = self._clock

    def set_deadline(self, key: bytes, deadline_ms: int | None) -> None:
        if deadline_ms is None:
            self._expires.pop(key, None)
        else:
            self._expires[key] = deadline_ms
        self._bump(key)

    def delete(self, key: bytes, now_ms: int) -> bool:
        """Delete a live key; True if it existed. An expired key is dropped and reported absent."""
        if self.get_write(key, now_ms) is None:
            return False
        self._remove(key)
        self._bump(key)
        self._maybe_prune()
        return True

    def _remove(self, key: bytes) -> None:
        del self._data[key]
        if self.hints is not None:
            self.hints.forget(key)
        self._expires.pop(key, None)
        self._reborn[key] = 0  # its slot in the order lists is stale now
        if key not in self._versions:  # keep its token: expiry must not look like a write
            self._versions[key] = self._floor
        if len(self._order_keys) > 2 * len(self._data) + 64:
            self._compact_order()

    def _drop_expired(self, key: bytes) -> None:
        """Remove an expired key without a version bump: logically it was already gone."""
        self._remove(key)
        if self.notifier is not None:
            self.notifier.expired(key, self.db)

    def flush(self, now_ms: int) -> None:
        """FLUSHALL: every live key's version is bumped, then tombstones are pruned as usual.

        For a big keyspace the pruning is certain (the tombstones then outnumber the empty
        keyspace's slack), and it would discard every bump: the result is only the counter
        advanced by the number of live keys. That is computed in O(keys with a TTL) instead
        of a Python loop over every key (seconds for 1M keys, which cost the cluster its
        leader). The old containers are freed in slices by later commands (`_free_some`).
        """
        data = self._data
        live = len(data) - sum(1 for d in self._expires.values() if now_ms > d)
        if max(len(self._versions), live) > _TOMBSTONE_SLACK:
            self._clock += live
            self._floor = self._clock
            self._versions = {}
        else:
            for key in data:
                if self.get_read(key, now_ms) is not None:
                    self._bump(key)
        self._garbage.extend((data, self._expires, self._order_keys))
        self._data, self._expires, self._order_keys = {}, {}, []
        self.used_memory = 0
        if self.hints is not None:
            self.hints.last = {}
        self._order_seqs = array("q")
        self._reborn.clear()
        self._maybe_prune()

    def _free_some(self, budget: int = _FREE_SLICE) -> None:
        """Drop up to `budget` entries of containers detached by FLUSHALL (lazy freeing, as
        Redis's lazyfree-lazy-user-flush): freeing 1M keys at once stalls the event loop."""
        garbage = self._garbage
        while garbage and budget > 0:
            box = garbage[-1]
            n = min(budget, len(box))
            if isinstance(box, dict):
                for _ in range(n):
                    box.popitem()
            else:
                del box[len(box) - n:]
            budget -= n
            if not box:
                garbage.pop()

    def expire_some(self, now_ms: int, limit: int) -> list[bytes]:
        """Drop up to `limit` expired keys (the leader's active expiry); returns them.

        With several databases holding TTLs the first one looked at rotates with `now_ms`
        (the entry's time: the same on every replica), so no database starves the others."""
        if not self._parked:
            return self._expire_here(now_ms, limit)
        current = self.db
        timed = [i for i in self.used_dbs()
                 if (self._expires if i == current else self._parked[i]._expires)]
        victims: list[bytes] = []
        start = now_ms % len(timed) if timed else 0
        for index in timed[start:] + timed[:start]:
            if len(victims) >= limit:
                break
            self.select(index)
            victims += self._expire_here(now_ms, limit - len(victims))
        self.select(current)
        return victims

    def _expire_here(self, now_ms: int, limit: int) -> list[bytes]:
        victims: list[bytes] = []
        for key, deadline in self._expires.items():
            if now_ms > deadline:
                victims.append(key)
                if len(victims) >= limit:
                    break
        data = self._data
        for key in victims:
            if self.track_memory:
                self.used_memory -= approx_size(key, data[key])
            self._drop_expired(key)
        self.used_memory = max(self.used_memory, 0)
        return victims

    def _maybe_prune(self) -> None:
        if len(self._versions) > 2 * len(self._data) + _TOMBSTONE_SLACK:
            self._floor = self._clock
            data = self._data
            self._versions = {k: v for k, v in self._versions.items() if k in data}

    def _is_current(self, key: bytes, seq: int) -> bool:
        """Is the order slot (key, seq) the live key's current one (not a deleted one's)?"""
        if key not in self._data:
            return False
        reborn = self._reborn
        return not reborn or reborn.get(key, seq) == seq

    def _compact_order(self) -> None:
        """Drop stale slots (deleted keys, older incarnations); creation order is kept."""
        current = self._is_current
        pairs = [(k, s) for k, s in zip(self._order_keys, self._order_seqs, strict=True)
                 if current(k, s)]
        self._order_keys = [k for k, _ in pairs]
        self._order_seqs = array("q", [s for _, s in pairs])
        self._reborn.clear()

    # ------------------------------------------------------------ iteration

    def scan(
        self, cursor: int, count: int, now_ms: int, accept: Callable[[bytes, object], bool]
    ) -> tuple[int, list[bytes]]:
        """Up to `count` keys after `cursor` that pass `accept`; the next cursor (0 = done)."""
        keys, seqs, current = self._order_keys, self._order_seqs, self._is_current
        i = bisect.bisect_right(seqs, cursor)
        out: list[bytes] = []
        seen = 0
        n = len(keys)
        last = cursor
        while i < n and seen < count:
            key, seq = keys[i], seqs[i]
            i += 1
            if not current(key, seq):
                continue  # deleted (or deleted and re-created later)
            seen += 1
            last = seq
            value = self.get_read(key, now_ms)
            if value is not None and accept(key, value):
                out.append(key)
        while i < n and not current(keys[i], seqs[i]):
            i += 1
        return (last if i < n else 0), out

    def random_key(self, now_ms: int, seed: int) -> bytes | None:
        """A pseudo-random live key chosen from `seed` alone (deterministic)."""
        keys = self._order_keys
        n = len(keys)
        if not self._data:
            return None
        x = (seed * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
        for _ in range(32):
            x = (x * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
            key = keys[(x >> 11) % n]
            if self.get_read(key, now_ms) is not None:
                return key
        live = self.live_keys(now_ms)
        return live[(x >> 11) % len(live)] if live else None

    # ------------------------------------------------------------ snapshots

    def snapshot(self) -> bytes:
        """The whole state as CBOR (what a new replica restores from).

        A map {"v": 1, "clock", "floor", "seq", "keys": [[key, type, payload, deadline,
        version, creation number], ...], "tombstones", "expires"} for database 0 (plus "dbs":
        a map {"db", "floor", "keys", "tombstones", "expires"} for each other database that
        holds anything, only when one does; plus "scripting": the script cache and function
        libraries, only when there are any; plus "acl": the ACL users, once ACL
        SETUSER/DELUSER/LOAD ran: aspen.acl.state), keys in creation order (which is also
        `_data`'s order). A state with only database 0 in use has exactly the snapshot it had
        before databases existed. Streamed: one key's list at a time goes through the
        encoder, so a snapshot of N keys does not hold N small lists at once (for 1M keys that
        halved the peak memory of taking it, and it is faster).
        """
        current = self.db
        self.select(0)
        try:
            return self._snapshot()
        finally:
            self.select(current)

    def _snapshot(self) -> bytes:
        out = io.BytesIO()
        encode = cbor2.CBOREncoder(out).encode
        scripting = self.scripting
        with_scripts = scripting is not None and not scripting.is_empty()
        acl = self.acl.touched
        others = [i for i in self.used_dbs() if i != 0]
        # a map of 7 pairs, plus one with other databases, one with scripting and one with
        # ACL users, in this order (cbor2.dumps's layout)
        out.write(bytes([0xA7 + bool(others) + with_scripts + acl]))
        for name, number in (("v", 1), ("clock", self._clock), ("floor", self._floor),
                             ("seq", self._clock)):
            encode(name)
            encode(number)
        self._encode_db(encode, out)
        if others:
            encode("dbs")
            out.write(_cbor_array_header(len(others)))
            for index in others:
                self.select(index)
                out.write(b"\xa5")  # a map of 5 pairs
                for name, number in (("db", index), ("floor", self._floor)):
                    encode(name)
                    encode(number)
                self._encode_db(encode, out)
            self.select(0)
        if with_scripts:
            encode("scripting")
            encode(scripting.dump())
        if acl:  # only once ACL SETUSER/DELUSER ran: other snapshots stay byte-identical
            encode("acl")
            encode(self.acl.dump())
        return out.getvalue()

    def _encode_db(self, encode: Callable[[object], None], out: io.BytesIO) -> None:
        """The selected database's "keys", "tombstones" and "expires" pairs."""
        data, expires, versions, floor = self._data, self._expires, self._versions, self._floor
        encode("keys")
        out.write(_cbor_array_header(len(data)))
        slots = zip(self._order_keys, self._order_seqs, strict=True)
        if len(self._order_keys) != len(data):  # stale slots: keep each live key's current one
            current = self._is_current
            slots = ((k, s) for k, s in slots if current(k, s))  # type: ignore[assignment]
        for key, seq in slots:
            value = data[key]
            if type(value) is bytes:
                encode([key, "string", value, expires.get(key), versions.get(key, floor), seq])
            else:
                vt = TYPES_BY_CLASS[type(value)]
                encode([key, vt.name, vt.dump(value), expires.get(key),
                        versions.get(key, floor), seq])
        encode("tombstones")
        encode([[k, v] for k, v in versions.items() if k not in data])
        # expire_some walks _expires in insertion order: replicas must agree on it
        encode("expires")
        encode(list(expires))

    @classmethod
    def restore(cls, data: bytes) -> Keyspace:
        obj = cbor2.loads(data)
        if not isinstance(obj, dict) or obj.get("v") != 1:
            raise ValueError("not a version 1 keyspace snapshot")
        ks = cls()
        # (snapshots written before creation numbers came from `clock` kept a separate "seq")
        ks._clock = max(obj["clock"], obj["seq"])
        ks._restore_db(obj)
        for sub in obj.get("dbs", ()):  # absent: only database 0 (or an older snapshot)
            ks.select(sub["db"])
            ks._restore_db(sub)
        ks.select(0)
        if "acl" in obj:
            ks.acl.load(obj["acl"])
        if "scripting" in obj:  # scripts and function libraries (absent: none, or older)
            from aspen.scripting.commands import restore_scripting

            ks.scripting = restore_scripting(obj["scripting"])
        return ks

    def _restore_db(self, obj: dict[str, Any]) -> None:
        """Fill the selected (empty) database from its part of a snapshot."""
        self._floor = floor = obj["floor"]
        versions: dict[bytes, int] = {}
        keys: list[bytes] = []
        seqs: list[int] = []
        for key, tag, payload, deadline, version, created in obj["keys"]:
            value = payload if tag == "string" else TYPES_BY_NAME[tag].load(payload)
            self._data[key] = value
            if deadline is not None:
                self._expires[key] = deadline
            if version != floor:
                versions[key] = version
            keys.append(key)
            seqs.append(created)
        for key, version in obj["tombstones"]:
            versions[key] = version
        # Keep the original insertion order of the versions dict irrelevant: order-free use only.
        self._versions = versions
        if "expires" in obj:  # keep the order active expiry walks in (absent: older snapshot)
            self._expires = {key: self._expires[key] for key in obj["expires"]}
        order = sorted(range(len(keys)), key=seqs.__getitem__)
        self._order_keys = [keys[i] for i in order]
        self._order_seqs = array("q", [seqs[i] for i in order])

    def digest(self) -> bytes:
        """A hash of the whole state, for comparing replicas."""
        return hashlib.sha256(self._canonical()).digest()

    def _canonical(self) -> bytes:
        obj = cbor2.loads(self.snapshot())
        for part in [obj, *obj.get("dbs", ())]:
            part["tombstones"] = sorted(part["tombstones"])
            part.pop("expires", None)
        return cbor2.dumps(obj)


def _notifying(handler: Any, notifier: Notifier) -> Any:
    """`handler` run by aspen.kv.notify.around: the events of what it changed are emitted."""
    def run(ks: Keyspace, argv: Any, now_ms: int) -> object:
        return around(ks, list(argv), handler, now_ms, notifier)
    return run


def _cbor_array_header(n: int) -> bytes:
    """CBOR's definite-length array header (major type 4), shortest form, as cbor2 writes it."""
    if n < 24:
        return bytes([0x80 | n])
    for code, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([0x80 | code]) + n.to_bytes(size, "big")
    raise ValueError("array too long for CBOR")
