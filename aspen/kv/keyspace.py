"""The deterministic state machine: one Redis database.

Nothing here reads the wall clock or global randomness: time arrives as `now_ms` (in the cluster,
the leader's time stored in the log entry) and RANDOMKEY's randomness as a `seed`. Given the same
sequence of `execute` calls every replica ends in the same state, byte for byte (`digest()`).

Representation:
- `_data`: key -> value. A string is `bytes`; other types register with `register_type`
  (aspen.kv.valuetypes) and are instances of their own class (the type tag is the value's class).
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

Memory: a key created once costs its dict slot in `_data`, its key and value objects and two
list/array slots; nothing else (no per-key int objects, no second dict). See
docs/benchmarks.md, "Memory per key".
"""

from __future__ import annotations

import bisect
import hashlib
import io
from array import array
from collections.abc import Callable
from typing import Any

import cbor2

from aspen.acl.state import AclState
from aspen.kv.commands import READ_HANDLERS, WRITE_HANDLERS, lookup_executable
from aspen.kv.errors import MAX_STRING, NOT_INTEGER, SYNTAX, WRONGTYPE, CommandError
from aspen.kv.ops import Op, ReadOp, TxnOp, WriteOp
from aspen.kv.spec import Route
from aspen.kv.valuetypes import TYPES_BY_CLASS, TYPES_BY_NAME, ValueType, register_type, type_name
from aspen.resp.values import NULL_ARRAY, Error

__all__ = [  # the errors and value types are re-exported for callers that knew them here
    "MAX_STRING",
    "NOT_INTEGER",
    "SYNTAX",
    "WRONGTYPE",
    "CommandError",
    "Keyspace",
    "ValueType",
    "register_type",
    "type_name",
]


_TOMBSTONE_SLACK = 1024
_FREE_SLICE = 10_000  # entries of flushed containers freed per command (under a millisecond)


class Keyspace:
    """One database's keys, values, TTLs and WATCH versions."""

    def __init__(self) -> None:
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

    # ------------------------------------------------------------ executing ops

    def execute(self, op: Op, now_ms: int, seed: int = 0) -> object:
        """Run one op and return its reply value."""
        self.seed = seed
        if self._garbage:
            self._free_some()
        if isinstance(op, TxnOp):
            return self._execute_txn(op, now_ms)
        return self.run_command(op.argv, type(op) is WriteOp, now_ms)

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
        try:
            return handler(self, argv, now_ms)
        except CommandError as exc:
            return exc.reply

    def replace_with(self, other: Keyspace) -> None:
        """Take over `other`'s keys, TTLs and versions (an undo); scripting state and the ACL
        users (and the node's ACL LOG) are kept."""
        scripting, budget, acl = self.scripting, self.script_budget, self.acl
        self.__dict__.update(other.__dict__)
        self.scripting, self.script_budget, self.acl = scripting, budget, acl

    def _execute_txn(self, op: TxnOp, now_ms: int) -> object:
        for key, token in op.watches:
            if self.watch_token(key, now_ms) != token:
                return NULL_ARRAY
        replies: list[object] = []
        for argv in op.commands:
            spec = lookup_executable(argv[0])
            if spec is not None and spec.route is Route.WRITE:
                replies.append(self.execute(WriteOp(argv), now_ms, self.seed))
            else:
                replies.append(self.execute(ReadOp(argv), now_ms, self.seed))
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

    def watch_token(self, key: bytes, now_ms: int) -> int:
        """What WATCH records and EXEC compares; see the module docstring."""
        version = self._versions.get(key, self._floor)
        if self.get_read(key, now_ms) is not None:
            return version
        return -version - 1

    def version(self, key: bytes) -> int:
        return self._versions.get(key, self._floor)

    def key_count(self) -> int:
        """Keys stored, including expired ones not yet dropped (INFO keyspace)."""
        return len(self._data)

    def expires_count(self) -> int:
        return len(self._expires)

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
        if key not in data:
            seq = self._clock
            self._order_keys.append(key)
            self._order_seqs.append(seq)
            if key in self._versions:  # re-created: its absent token must change
                self._versions[key] = seq
            if self._reborn and key in self._reborn:
                self._reborn[key] = seq
            if len(self._order_keys) > 2 * len(data) + 64:
                data[key] = value
                self._compact_order()
        else:
            self._versions[key] = self._clock
        data[key] = value
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
        self._expires.pop(key, None)
        self._reborn[key] = 0  # its slot in the order lists is stale now
        if key not in self._versions:  # keep its token: expiry must not look like a write
            self._versions[key] = self._floor
        if len(self._order_keys) > 2 * len(self._data) + 64:
            self._compact_order()

    def _drop_expired(self, key: bytes) -> None:
        """Remove an expired key without a version bump: logically it was already gone."""
        self._remove(key)

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
        """Drop up to `limit` expired keys (the leader's active expiry); returns them."""
        victims: list[bytes] = []
        for key, deadline in self._expires.items():
            if now_ms > deadline:
                victims.append(key)
                if len(victims) >= limit:
                    break
        for key in victims:
            self._drop_expired(key)
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
        version, creation number], ...], "tombstones", "expires"} (plus "scripting": the
        script cache and function libraries, only when there are any; plus "acl": the ACL users,
        once ACL SETUSER/DELUSER/LOAD ran: aspen.acl.state), keys in creation order
        (which is also `_data`'s order). Streamed: one key's list at a time goes through the
        encoder, so a snapshot of N keys does not hold N small lists at once (for 1M keys that
        halved the peak memory of taking it, and it is faster).
        """
        out = io.BytesIO()
        encode = cbor2.CBOREncoder(out).encode
        data, expires, versions, floor = self._data, self._expires, self._versions, self._floor
        scripting = self.scripting
        with_scripts = scripting is not None and not scripting.is_empty()
        acl = self.acl.touched
        # a map of 7 pairs, plus one with scripting and one with ACL users, in this order
        # (cbor2.dumps's layout)
        out.write(bytes([0xA7 + with_scripts + acl]))
        for name, number in (("v", 1), ("clock", self._clock), ("floor", floor),
                             ("seq", self._clock)):
            encode(name)
            encode(number)
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
        if with_scripts:
            encode("scripting")
            encode(scripting.dump())
        if acl:  # only once ACL SETUSER/DELUSER ran: other snapshots stay byte-identical
            encode("acl")
            encode(self.acl.dump())
        return out.getvalue()

    @classmethod
    def restore(cls, data: bytes) -> Keyspace:
        obj = cbor2.loads(data)
        if not isinstance(obj, dict) or obj.get("v") != 1:
            raise ValueError("not a version 1 keyspace snapshot")
        ks = cls()
        # (snapshots written before creation numbers came from `clock` kept a separate "seq")
        ks._clock, ks._floor = max(obj["clock"], obj["seq"]), obj["floor"]
        versions: dict[bytes, int] = {}
        floor = ks._floor
        keys: list[bytes] = []
        seqs: list[int] = []
        for key, tag, payload, deadline, version, created in obj["keys"]:
            value = payload if tag == "string" else TYPES_BY_NAME[tag].load(payload)
            ks._data[key] = value
            if deadline is not None:
                ks._expires[key] = deadline
            if version != floor:
                versions[key] = version
            keys.append(key)
            seqs.append(created)
        for key, version in obj["tombstones"]:
            versions[key] = version
        # Keep the original insertion order of the versions dict irrelevant: order-free use only.
        ks._versions = versions
        if "expires" in obj:  # keep the order active expiry walks in (absent: older snapshot)
            ks._expires = {key: ks._expires[key] for key in obj["expires"]}
        if "acl" in obj:
            ks.acl.load(obj["acl"])
        order = sorted(range(len(keys)), key=seqs.__getitem__)
        ks._order_keys = [keys[i] for i in order]
        ks._order_seqs = array("q", [seqs[i] for i in order])
        if "scripting" in obj:  # scripts and function libraries (absent: none, or older)
            from aspen.scripting.commands import restore_scripting

            ks.scripting = restore_scripting(obj["scripting"])
        return ks

    def digest(self) -> bytes:
        """A hash of the whole state, for comparing replicas."""
        return hashlib.sha256(self._canonical()).digest()

    def _canonical(self) -> bytes:
        obj = cbor2.loads(self.snapshot())
        obj["tombstones"] = sorted(obj["tombstones"])
        obj.pop("expires", None)
        return cbor2.dumps(obj)


def _cbor_array_header(n: int) -> bytes:
    """CBOR's definite-length array header (major type 4), shortest form, as cbor2 writes it."""
    if n < 24:
        return bytes([0x80 | n])
    for code, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([0x80 | code]) + n.to_bytes(size, "big")
    raise ValueError("array too long for CBOR")
