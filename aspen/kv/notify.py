"""Keyspace notifications (`notify-keyspace-events`): Redis's events for the writes a node
applies.

Emitted where a write is applied, on every node (`Keyspace.run_command` calls `around` when
the node set a `Notifier` on its keyspace), so a subscriber on a follower sees the events of
writes sent to the leader. A node's classes are its own (CONFIG SET is per node); what is
emitted never changes the keyspace, so replicas stay identical whatever their settings.

How an event is found: the command's keys (from the command table) are looked at before and
after its handler ran; a key whose version moved, that appeared or that went away was changed
by it. `EVENTS` names, per command, the class and event name Redis emits for a changed key
(and for some commands which key gets which event); a key the command created first gets
`new`, a container it emptied `del` after the command's own event (Redis's order).
Expired keys get `expired` when the keyspace drops them (on access or by active expiry);
keys the leader evicted (maxmemory) get `evicted` where ASPEN.EVICT is applied.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from aspen.kv.commands import lookup_executable
from aspen.kv.errors import CommandError
from aspen.kv.stream import Stream
from aspen.resp.values import OK, Error

if TYPE_CHECKING:
    from aspen.kv.keyspace import Keyspace

__all__ = ["Notifier", "around"]

# Redis's class bits (server.h NOTIFY_*)
K, E, G, STR, LIST, SET, HASH, ZSET, EXPIRED, EVICTED, STREAM, MISS, NEW = (
    1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 16384)

Publish = Callable[[bytes, bytes], object]
Change = tuple[bytes, bool, bool, bool]  # key, live before, live after, version moved
Events = list[tuple[int, str, bytes]]  # (class, event name, key), in emission order
Rule = Callable[[list[bytes], list[Change], object], Events]


class Notifier:
    """One node's notify-keyspace-events classes and where its events go (its pub/sub hub's
    local delivery)."""

    def __init__(self, publish: Publish, flags: int = 0) -> None:
        self.publish = publish
        self.flags = flags

    def emit(self, cls: int, event: str, key: bytes, db: int = 0) -> None:
        flags = self.flags
        if not flags & cls:
            return
        name = event.encode()
        if flags & K:
            self.publish(b"__keyspace@%d__:" % db + key, name)
        if flags & E:
            self.publish(b"__keyevent@%d__:" % db + name, key)

    def expired(self, key: bytes, db: int = 0) -> None:
        self.emit(EXPIRED, "expired", key, db)

    def evicted(self, key: bytes, db: int = 0) -> None:
        self.emit(EVICTED, "evicted", key, db)


def _changed(c: Change) -> bool:
    return c[3] or c[1] != c[2]


def _each(cls: int, event: str) -> Rule:
    """`event` for every key the command changed; `del` after it for a key it removed."""
    def rule(argv: list[bytes], changes: list[Change], reply: object) -> Events:
        out = []
        for key, before, after, _moved in changes:
            if not _changed((key, before, after, _moved)):
                continue
            out.append((cls, event, key))
            if before and not after:
                out.append((G, "del", key))
        return out
    return rule


def _deleted(argv: list[bytes], changes: list[Change], reply: object) -> Events:
    return [(G, "del", key) for key, before, after, _ in changes if before and not after]


def _set(argv: list[bytes], changes: list[Change], reply: object) -> Events:
    if not changes or not _changed(changes[0]):
        return []
    key = changes[0][0]
    opts = {a.lower() for a in argv[3:]}
    out = [(STR, "set", key)]
    if opts & {b"ex", b"px", b"exat", b"pxat"}:
        out.append((G, "expire", key))
    return out


def _set_expire(argv: list[bytes], changes: list[Change], reply: object) -> Events:
    if not changes or not _changed(changes[0]):
        return []
    return [(STR, "set", argv[1]), (G, "expire", argv[1])]


def _expire(argv: list[bytes], changes: list[Change], reply: object) -> Events:
    if reply != 1 or not changes:
        return []
    key, before, after, _ = changes[0]
    return [(G, "del" if before and not after else "expire", key)]


def _getex(argv: list[bytes], changes: list[Change], reply: object) -> Events:
    if not changes or not _changed(changes[0]):
        return []
    key, before, after, _ = changes[0]
    opts = {a.lower() for a in argv[2:]}
    if before and not after:
        return [(G, "del", key)]
    return [(G, "persist" if b"persist" in opts else "expire", key)]


def _rename(argv: list[bytes], changes: list[Change], reply: object) -> Events:
    if reply == 0 or argv[1] == argv[2]:  # RENAMENX refused, or a rename onto itself
        return []
    return [(G, "rename_from", argv[1]), (G, "rename_to", argv[2])]


def _moving(pop: Callable[[list[bytes]], str], push: Callable[[list[bytes]], str],
            cls: int) -> Rule:
    """LMOVE & co.: the push event on the destination, then the pop on the source (and its
    `del` when emptied), as Redis orders them."""
    def rule(argv: list[bytes], changes: list[Change], reply: object) -> Events:
        if reply is None or not changes or not any(_changed(c) for c in changes):
            return []
        src, dst = argv[1], argv[2]
        emptied = any(k == src and b and not a for k, b, a, _ in changes)
        out = [(cls, push(argv), dst), (cls, pop(argv), src)]
        if emptied and src != dst:
            out.append((G, "del", src))
        return out
    return rule


def _smove(argv: list[bytes], changes: list[Change], reply: object) -> Events:
    if reply != 1:
        return []
    src, dst = argv[1], argv[2]
    out = [(SET, "srem", src)]
    if any(k == src and b and not a for k, b, a, _ in changes):
        out.append((G, "del", src))
    out.append((SET, "sadd", dst))
    return out


def _store(cls: int, event: str, dest: Callable[[list[bytes]], bytes] | None = None) -> Rule:
    """*STORE: the event on the destination, or `del` when the result is empty."""
    def rule(argv: list[bytes], changes: list[Change], reply: object) -> Events:
        key = dest(argv) if dest is not None else argv[1]
        found = [c for c in changes if c[0] == key]
        if not found or (reply == 0 and event == "copy_to"):
            return []
        _, before, after, _moved = found[0]
        if after:
            return [(cls, event, key)]
        return [(G, "del", key)] if before else []
    return rule


def _sort_dest(argv: list[bytes]) -> bytes:
    for i in range(2, len(argv) - 1):
        if argv[i].lower() == b"store":
            return argv[i + 1]
    return b""


def _mset(argv: list[bytes], changes: list[Change], reply: object) -> Events:
    """MSET/MSETNX: `set` for every key argument, repeats included (when it set them)."""
    if reply == 0:
        return []
    return [(STR, "set", argv[i]) for i in range(1, len(argv), 2)]


def _zadd(argv: list[bytes], changes: list[Change], reply: object) -> Events:
    incr = any(a.lower() == b"incr" for a in argv[2:])
    return _each(ZSET, "zincr" if incr else "zadd")(argv, changes, reply)


def _side(argv: list[bytes], i: int) -> str:
    return "l" if argv[i].lower() == b"left" else "r"


_EVENTS: dict[str, Rule] = {
    "set": _set, "setnx": _each(STR, "set"), "setex": _set_expire, "psetex": _set_expire,
    "getset": _each(STR, "set"), "mset": _mset, "msetnx": _mset,
    "append": _each(STR, "append"), "setrange": _each(STR, "setrange"),
    "incr": _each(STR, "incrby"), "incrby": _each(STR, "incrby"),
    "decr": _each(STR, "incrby"), "decrby": _each(STR, "incrby"),
    "incrbyfloat": _each(STR, "incrbyfloat"), "getdel": _deleted, "getex": _getex,
    "setbit": _each(STR, "setbit"), "bitfield": _each(STR, "setbit"),
    "bitop": _store(STR, "set", lambda a: a[2]), "pfadd": _each(STR, "pfadd"),
    "pfmerge": _store(STR, "pfadd"),
    "del": _deleted, "unlink": _deleted,
    "expire": _expire, "pexpire": _expire, "expireat": _expire, "pexpireat": _expire,
    "persist": _each(G, "persist"), "rename": _rename, "renamenx": _rename,
    "copy": _store(G, "copy_to", lambda a: a[2]), "restore": _each(G, "restore"),
    "lpush": _each(LIST, "lpush"), "rpush": _each(LIST, "rpush"),
    "lpushx": _each(LIST, "lpush"), "rpushx": _each(LIST, "rpush"),
    "linsert": _each(LIST, "linsert"), "lset": _each(LIST, "lset"),
    "lrem": _each(LIST, "lrem"), "ltrim": _each(LIST, "ltrim"),
    "lpop": _each(LIST, "lpop"), "rpop": _each(LIST, "rpop"),
    "blpop": _each(LIST, "lpop"), "brpop": _each(LIST, "rpop"),
    "rpoplpush": _moving(lambda a: "rpop", lambda a: "lpush", LIST),
    "brpoplpush": _moving(lambda a: "rpop", lambda a: "lpush", LIST),
    "lmove": _moving(lambda a: _side(a, 3) + "pop", lambda a: _side(a, 4) + "push", LIST),
    "blmove": _moving(lambda a: _side(a, 3) + "pop", lambda a: _side(a, 4) + "push", LIST),
    "sort": _store(LIST, "sortstore", _sort_dest),
    "hset": _each(HASH, "hset"), "hmset": _each(HASH, "hset"), "hsetnx": _each(HASH, "hset"),
    "hdel": _each(HASH, "hdel"), "hincrby": _each(HASH, "hincrby"),
    "hincrbyfloat": _each(HASH, "hincrbyfloat"),
    "sadd": _each(SET, "sadd"), "srem": _each(SET, "srem"), "spop": _each(SET, "spop"),
    "smove": _smove, "sinterstore": _store(SET, "sinterstore"),
    "sunionstore": _store(SET, "sunionstore"), "sdiffstore": _store(SET, "sdiffstore"),
    "zadd": _zadd, "zincrby": _each(ZSET, "zincr"), "zrem": _each(ZSET, "zrem"),
    "zremrangebyscore": _each(ZSET, "zremrangebyscore"),
    "zremrangebyrank": _each(ZSET, "zremrangebyrank"),
    "zremrangebylex": _each(ZSET, "zremrangebylex"),
    "zpopmin": _each(ZSET, "zpopmin"), "zpopmax": _each(ZSET, "zpopmax"),
    "bzpopmin": _each(ZSET, "zpopmin"), "bzpopmax": _each(ZSET, "zpopmax"),
    "zunionstore": _store(ZSET, "zunionstore"), "zinterstore": _store(ZSET, "zinterstore"),
    "zdiffstore": _store(ZSET, "zdiffstore"), "zrangestore": _store(ZSET, "zrangestore"),
    "geoadd": _each(ZSET, "zadd"),
    "xadd": _each(STREAM, "xadd"), "xdel": _each(STREAM, "xdel"),
    "xtrim": _each(STREAM, "xtrim"), "xsetid": _each(STREAM, "xsetid"),
}


_GROUP_COMMANDS = frozenset({"xgroup", "xreadgroup", "xclaim", "xautoclaim"})
_Groups = dict[bytes, set[bytes]]  # a stream's groups and their consumers


def _groups(ks: Keyspace, key: bytes, now_ms: int) -> _Groups | None:
    value = ks.get_read(key, now_ms)
    if not isinstance(value, Stream):
        return None
    return {name: set(group.consumers) for name, group in value.groups.items()}


def _group_events(ks: Keyspace, argv: list[bytes], before: list[tuple[bytes, _Groups | None]],
                  reply: object, now_ms: int) -> Events:
    """The consumer-group events (Redis's t_stream.c names): groups and consumers that
    appeared or went away (XREADGROUP, XCLAIM and XAUTOCLAIM create their consumer), and
    XGROUP SETID; a stream XGROUP CREATE ... MKSTREAM made gets `new` first."""
    out: Events = []
    setid = argv[0].lower() == b"xgroup" and argv[1].lower() == b"setid"
    for key, was in before:
        now = _groups(ks, key, now_ms)
        if now is None:
            continue
        if was is None:
            out.append((NEW, "new", key))
            was = {}
        for name, consumers in now.items():
            if name not in was:
                out.append((STREAM, "xgroup-create", key))
                continue
            for _ in consumers - was[name]:
                out.append((STREAM, "xgroup-createconsumer", key))
            for _ in was[name] - consumers:
                out.append((STREAM, "xgroup-delconsumer", key))
        for name in was:
            if name not in now:
                out.append((STREAM, "xgroup-destroy", key))
        if setid and reply == OK:
            out.append((STREAM, "xgroup-setid", key))
    return out


def _other_db(name: str, argv: list[bytes], current: int) -> int | None:
    """MOVE's destination database, or COPY's DB option when it names another database."""
    raw: bytes | None = None
    if name == "move":
        raw = argv[2]
    else:
        for i in range(3, len(argv) - 1):
            if argv[i].lower() == b"db":
                raw = argv[i + 1]
    if raw is None or not raw.isdigit():
        return None
    db = int(raw)
    return db if db != current or name == "move" else None


_READDED = {"rename": 2, "copy": 2, "restore": 1}
"""Commands that replace a key by deleting it and adding it anew, and where that key is."""


def around(ks: Keyspace, argv: list[bytes], handler: Callable[[Keyspace, list[bytes], int],
           object], now_ms: int, notifier: Notifier) -> object:
    """Run a write's handler and emit the events of what it changed."""
    spec = lookup_executable(argv[0])
    keys = spec.keys(argv) if spec is not None else []
    before = [(k, ks.get_read(k, now_ms) is not None, ks.version(k)) for k in keys]
    groups_before: list[tuple[bytes, _Groups | None]] = []
    if spec is not None and spec.name in _GROUP_COMMANDS:
        if spec.name == "xgroup":
            keys = argv[2:3]
        groups_before = [(k, _groups(ks, k, now_ms)) for k in keys]
    try:
        reply = handler(ks, argv, now_ms)
    except CommandError as exc:
        return exc.reply
    if type(reply) is Error or spec is None:
        return reply
    if spec.name in ("move", "copy") and _other_db(spec.name, argv, ks.db) is not None:
        # the key lands in another database: Redis announces it there
        if reply == 1:
            other = _other_db(spec.name, argv, ks.db)
            assert other is not None
            key = argv[1] if spec.name == "move" else argv[2]
            notifier.emit(NEW, "new", key, other)  # (always added there: absent before)
            if spec.name == "move":
                notifier.emit(G, "move_from", argv[1], ks.db)
                notifier.emit(G, "move_to", argv[1], other)
            else:
                notifier.emit(G, "copy_to", argv[2], other)
        return reply
    if spec.name in _GROUP_COMMANDS:
        for cls, event, key in _group_events(ks, argv, groups_before, reply, now_ms):
            notifier.emit(cls, event, key, ks.db)
        return reply
    rule = _EVENTS.get(spec.name)
    if rule is None:
        return reply
    seen: set[bytes] = set()
    changes: list[Change] = []
    for key, was, version in before:
        if key in seen:
            continue
        seen.add(key)
        changes.append((key, was, ks.get_read(key, now_ms) is not None,
                        ks.version(key) != version))
    events = rule(list(argv), changes, reply)
    db = ks.db
    created = {key for key, was, now, _ in changes if now and not was}
    readded = _READDED.get(spec.name)
    if readded is not None and len(argv) > readded:
        # Redis deletes the key these replace and adds it anew (dbDelete + dbAdd): `new`
        # even though the key existed before.
        created.update(key for key, _, now, changed in changes
                       if key == argv[readded] and now and changed)
    if created and notifier.flags & NEW:
        # `new` when the key is added: just before its first event (RENAME adds the
        # destination before either of its events)
        if spec.name in ("rename", "renamenx"):
            events = [(NEW, "new", k) for k in (argv[2],) if k in created] + events
            created.clear()
        for cls, event, key in events:
            if key in created:
                created.discard(key)
                notifier.emit(NEW, "new", key, db)
            notifier.emit(cls, event, key, db)
        return reply
    for cls, event, key in events:
        notifier.emit(cls, event, key, db)
    return reply
