"""Stream commands (XADD, XRANGE, XREAD, XREADGROUP, XGROUP, XCLAIM, XINFO, ...), as Redis
7.0.15 does them: replies, error texts and the order errors are found in.

Every time a command needs (`*` IDs, delivery times, idle times, seen times) is the `now`
it is applied with: in the cluster the log entry's time, so every replica builds the same
pending entries lists. XREADGROUP changes the PEL and is a write; XREAD is a read. The BLOCK
option is parsed here and otherwise ignored: applied from the log (and inside MULTI) a
blocking read that finds nothing replies null at once; parking the client is the node's job
(`aspen.cluster.blocking`, `streams_blocking`).
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

from aspen.kv.errors import SYNTAX, CommandError
from aspen.kv.numbers import parse_int
from aspen.kv.stream import (
    INVALID_ENTRIES_READ,
    MAX64,
    MAX_ID,
    NODE_MAX_ENTRIES,
    Consumer,
    Group,
    Nack,
    Node,
    Stream,
    dump,
    id_bytes,
    load,
)
from aspen.kv.typed import Argv, get_read, get_write, store, touched
from aspen.kv.valuetypes import ValueType
from aspen.resp.values import NULL_ARRAY, OK, Map, SimpleString

if TYPE_CHECKING:
    from aspen.kv.keyspace import Keyspace

STREAM_TYPE = ValueType(
    "stream",
    Stream,
    lambda v: v.copy(),  # type: ignore[attr-defined]
    lambda v: dump(v),  # type: ignore[arg-type]
    load,
)

INVALID_ID = "ERR Invalid stream ID specified as stream command argument"
NOT_INTEGER = "ERR value is not an integer or out of range"
NO_SUCH_KEY = "ERR no such key"


def _ll(raw: bytes, error: str = NOT_INTEGER) -> int:
    v = parse_int(raw)
    if v is None:
        raise CommandError(error)
    return v


def _subcommand_error(argv: Argv) -> CommandError:
    sub = argv[1][:128].decode("utf-8", "replace")
    return CommandError(
        f"ERR unknown subcommand or wrong number of arguments for '{sub}'. "
        f"Try {argv[0].decode('utf-8', 'replace').upper()} HELP."
    )


# ------------------------------------------------------------------ IDs


def _strtoull(raw: bytes) -> int | None:
    """Redis's string2ull: string2ll if it is one (negative refused), else C's strtoull."""
    v = parse_int(raw)
    if v is not None:
        return v if v >= 0 else None
    i, n = 0, len(raw)
    while i < n and raw[i] in b" \t\n\v\f\r":
        i += 1
    neg = False
    if i < n and raw[i] in b"+-":
        neg = raw[i] == 0x2D
        i += 1
    digits = raw[i:]
    if not digits or not digits.isdigit() or not raw:
        return None
    value = int(digits)
    if value > MAX64:
        return None
    return (-value) & MAX64 if neg else value


def _parse_id(raw: bytes, missing_seq: int = 0, strict: bool = False,
              seq_star: bool = False) -> tuple[int, bool]:
    """streamGenericParseIDOrReply: (packed ID, sequence given)."""
    if len(raw) > 127 or b"\x00" in raw:
        raise CommandError(INVALID_ID)
    if raw in (b"-", b"+"):
        if strict:
            raise CommandError(INVALID_ID)
        return (0 if raw == b"-" else MAX_ID), True
    ms_raw, dash, seq_raw = raw.partition(b"-")
    ms = _strtoull(ms_raw)
    if ms is None:
        raise CommandError(INVALID_ID)
    seq_given = True
    if dash:
        if seq_star and seq_raw == b"*":
            seq, seq_given = 0, False
        else:
            s = _strtoull(seq_raw)
            if s is None:
                raise CommandError(INVALID_ID)
            seq = s
    else:
        seq = missing_seq
    return (ms << 64) | seq, seq_given


def parse_id(raw: bytes, missing_seq: int = 0) -> int:
    return _parse_id(raw, missing_seq)[0]


def parse_strict_id(raw: bytes, missing_seq: int = 0) -> int:
    return _parse_id(raw, missing_seq, strict=True)[0]


def _parse_interval(raw: bytes, missing_seq: int) -> tuple[int, bool]:
    if len(raw) > 1 and raw[:1] == b"(":
        return parse_strict_id(raw[1:], missing_seq), True
    return parse_id(raw, missing_seq), False


def _incr(sid: int) -> int | None:
    return None if sid == MAX_ID else sid + 1


def _decr(sid: int) -> int | None:
    return None if sid == 0 else sid - 1


def _range_bounds(start_raw: bytes, end_raw: bytes) -> tuple[int, int]:
    start, ex = _parse_interval(start_raw, 0)
    if ex:
        nxt = _incr(start)
        if nxt is None:
            raise CommandError("ERR invalid start ID for the interval")
        start = nxt
    end, ex = _parse_interval(end_raw, MAX64)
    if ex:
        prv = _decr(end)
        if prv is None:
            raise CommandError("ERR invalid end ID for the interval")
        end = prv
    return start, end


def _entry(sid: int, node: Node, i: int) -> list[object]:
    return [id_bytes(sid), node.pairs_at(i)]


def _stream_read(ks: Keyspace, key: bytes, now: int) -> Stream | None:
    return get_read(ks, key, now, Stream)


def _stream_write(ks: Keyspace, key: bytes, now: int) -> Stream | None:
    return get_write(ks, key, now, Stream)


# ------------------------------------------------------------------ XADD / XTRIM


class _TrimArgs:
    __slots__ = ("approx", "id", "id_given", "limit", "maxlen", "minid", "no_mkstream",
                 "seq_given", "strategy")

    def __init__(self) -> None:
        self.strategy = ""  # "", "maxlen", "minid"
        self.approx = False
        self.limit = 0
        self.maxlen = 0
        self.minid = 0
        self.id = 0
        self.id_given = False
        self.seq_given = True
        self.no_mkstream = False


_BOTH = "ERR syntax error, MAXLEN and MINID options at the same time are not compatible"


def _parse_add_or_trim(argv: Argv, xadd: bool) -> tuple[_TrimArgs, int]:
    """streamParseAddOrTrimArgsOrReply: the options and the position of XADD's ID."""
    a = _TrimArgs()
    argc = len(argv)
    i = 2
    limit_given = False
    while i < argc:
        more = argc - 1 - i
        opt = argv[i]
        low = opt.lower()
        if xadd and opt == b"*":
            break
        if low in (b"maxlen", b"minid") and more:
            if a.strategy:
                raise CommandError(_BOTH)
            a.approx = False
            nxt = argv[i + 1]
            if more >= 2 and nxt == b"~":
                a.approx = True
                i += 1
            elif more >= 2 and nxt == b"=":
                i += 1
            if low == b"maxlen":
                a.maxlen = _ll(argv[i + 1])
                if a.maxlen < 0:
                    raise CommandError("ERR The MAXLEN argument must be >= 0.")
                a.strategy = "maxlen"
            else:
                a.minid = parse_strict_id(argv[i + 1])
                a.strategy = "minid"
            i += 1
        elif low == b"limit" and more:
            a.limit = _ll(argv[i + 1])
            if a.limit < 0:
                raise CommandError("ERR The LIMIT argument must be >= 0.")
            limit_given = True
            i += 1
        elif xadd and low == b"nomkstream":
            a.no_mkstream = True
        elif xadd:
            a.id, a.seq_given = _parse_id(opt, 0, strict=True, seq_star=True)
            a.id_given = True
            break
        else:
            raise CommandError(SYNTAX)
        i += 1
    if a.limit and not a.strategy:
        raise CommandError(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"
        )
    if not xadd and not a.strategy:
        raise CommandError("ERR syntax error, XTRIM must be called with a trimming strategy")
    if limit_given:
        if not a.approx:
            raise CommandError(
                "ERR syntax error, LIMIT cannot be used without the special ~ option"
            )
    elif a.approx:
        a.limit = 100 * NODE_MAX_ENTRIES
    else:
        a.limit = 0
    return a, i


def _trim(s: Stream, a: _TrimArgs) -> int:
    if a.strategy == "maxlen":
        return s.trim(a.maxlen, None, a.approx, a.limit)
    if a.strategy == "minid":
        return s.trim(None, a.minid, a.approx, a.limit)
    return 0


def xadd(ks: Keyspace, argv: Argv, now: int) -> object:
    a, idpos = _parse_add_or_trim(argv, xadd=True)
    fields = len(argv) - idpos - 1
    if fields < 2 or fields % 2:
        raise CommandError("ERR wrong number of arguments for 'xadd' command")
    if a.id_given and a.seq_given and a.id == 0:
        raise CommandError("ERR The ID specified in XADD must be greater than 0-0")
    key = argv[1]
    s = _stream_write(ks, key, now)
    created = s is None
    if s is None:
        if a.no_mkstream:
            return None
        s = Stream()
    last = s.last_id
    if last == MAX_ID:
        raise CommandError(
            "ERR The stream has exhausted the last possible ID, unable to add more items"
        )
    smaller = "ERR The ID specified in XADD is equal or smaller than the target stream top item"
    if not a.id_given:
        ms = max(now, 0)
        new = (ms << 64) if ms > (last >> 64) else last + 1
    elif not a.seq_given:
        ms = a.id >> 64
        if ms == last >> 64:
            if last & MAX64 == MAX64:  # Redis reports this with its "too large" text
                raise CommandError("ERR Elements are too large to be stored")
            new = last + 1
        else:
            new = a.id
    else:
        new = a.id
    if new <= last:
        raise CommandError(smaller)
    s.append(new, list(argv[idpos + 1 :]))
    if created:
        store(ks, key, s)
    else:
        touched(ks, key, s)
    if a.strategy:
        _trim(s, a)
    return id_bytes(new)


def xtrim(ks: Keyspace, argv: Argv, now: int) -> object:
    a, _ = _parse_add_or_trim(argv, xadd=False)
    s = _stream_write(ks, argv[1], now)
    if s is None:
        return 0
    deleted = _trim(s, a)
    if deleted:
        touched(ks, argv[1], s)
    return deleted


# ------------------------------------------------------------------ reading


def _xrange(ks: Keyspace, argv: Argv, now: int, rev: bool) -> object:
    start_raw, end_raw = (argv[3], argv[2]) if rev else (argv[2], argv[3])
    start, end = _range_bounds(start_raw, end_raw)
    count = -1
    j = 4
    while j < len(argv):
        if argv[j].lower() == b"count" and j + 1 < len(argv):
            count = max(_ll(argv[j + 1]), 0)
            j += 2
        else:
            raise CommandError(SYNTAX)
    s = _stream_read(ks, argv[1], now)
    if s is None:
        return []
    if count == 0:
        return NULL_ARRAY
    return [_entry(*e) for e in s.range(start, end, max(count, 0), rev)]


def xrange_(ks: Keyspace, argv: Argv, now: int) -> object:
    return _xrange(ks, argv, now, rev=False)


def xrevrange(ks: Keyspace, argv: Argv, now: int) -> object:
    return _xrange(ks, argv, now, rev=True)


def xlen(ks: Keyspace, argv: Argv, now: int) -> object:
    s = _stream_read(ks, argv[1], now)
    return 0 if s is None else s.length


def parse_block_timeout(raw: bytes, now: int) -> int:
    """BLOCK's milliseconds, with Redis's errors (getTimeoutFromObjectOrReply)."""
    ms = _ll(raw, "ERR timeout is not an integer or out of range")
    if ms < 0:
        raise CommandError("ERR timeout is negative")
    if ms > 0 and ms > 2**63 - 1 - now:
        raise CommandError("ERR timeout is out of range")
    return ms


class XReadArgs:
    """A parsed XREAD / XREADGROUP (what the node needs to park it, too)."""

    __slots__ = ("block", "consumer", "count", "group", "ids", "keys", "noack")

    def __init__(self) -> None:
        self.block = -1
        self.count = 0
        self.group: bytes | None = None
        self.consumer = b""
        self.noack = False
        self.keys: list[bytes] = []
        self.ids: list[bytes] = []


def parse_xread(argv: Argv, now: int) -> XReadArgs:
    """The options of XREAD/XREADGROUP, in Redis's order of checks (no key lookups)."""
    x = XReadArgs()
    group_cmd = len(argv[0]) == 10
    argc = len(argv)
    streams_at = 0
    i = 1
    while i < argc:
        more = argc - i - 1
        o = argv[i].lower()
        if o == b"block" and more:
            i += 1
            x.block = parse_block_timeout(argv[i], now)
        elif o == b"count" and more:
            i += 1
            x.count = max(_ll(argv[i]), 0)
        elif o == b"streams" and more:
            streams_at = i + 1
            n = argc - streams_at
            if n % 2:
                raise CommandError(
                    "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' "
                    "must be specified."
                )
            x.keys = list(argv[streams_at : streams_at + n // 2])
            x.ids = list(argv[streams_at + n // 2 :])
            break
        elif o == b"group" and more >= 2:
            if not group_cmd:
                raise CommandError(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD "
                    "instead."
                )
            x.group, x.consumer = argv[i + 1], argv[i + 2]
            i += 2
        elif o == b"noack":
            if not group_cmd:
                raise CommandError(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD "
                    "instead."
                )
            x.noack = True
        else:
            raise CommandError(SYNTAX)
        i += 1
    if not streams_at:
        raise CommandError(SYNTAX)
    if group_cmd and x.group is None:
        raise CommandError("ERR Missing GROUP option for XREADGROUP")
    return x


_GT_NEW = MAX_ID  # XREADGROUP's ">" (as in Redis: an explicit max ID means ">" too)


def resolve_xread(ks: Keyspace, x: XReadArgs, now: int,
                  write: bool) -> tuple[list[int], list[Group | None]]:
    """Check each key (type, group) and turn each ID argument into an ID, key by key."""
    ids: list[int] = []
    groups: list[Group | None] = []
    for key, raw in zip(x.keys, x.ids, strict=True):
        s = _stream_write(ks, key, now) if write else _stream_read(ks, key, now)
        g = None
        if x.group is not None:
            g = s.groups.get(x.group) if s is not None else None
            if g is None:
                k, gn = key.decode("utf-8", "replace"), x.group.decode("utf-8", "replace")
                raise CommandError(
                    f"NOGROUP No such key '{k}' or consumer group '{gn}' in XREADGROUP with "
                    "GROUP option"
                )
        groups.append(g)
        if raw == b"$":
            if x.group is not None:
                raise CommandError(
                    "ERR The $ ID is meaningless in the context of XREADGROUP: you want to "
                    "read the history of this consumer by specifying a proper ID, or use the "
                    "> ID to get new messages. The $ ID would just return an empty result set."
                )
            ids.append(s.last_id if s is not None else 0)
        elif raw == b">":
            if x.group is None:
                raise CommandError(
                    "ERR The > ID can be specified only when calling XREADGROUP using the "
                    "GROUP <group> <consumer> option."
                )
            ids.append(_GT_NEW)
        else:
            ids.append(parse_strict_id(raw))
    return ids, groups


def serve_xread(ks: Keyspace, x: XReadArgs, ids: list[int], groups: list[Group | None],
                now: int, count: int) -> object:
    """The synchronous part of xreadCommand: the reply, or NULL_ARRAY if nothing to serve."""
    out: list[tuple[object, object]] = []
    for key, gt, g in zip(x.keys, ids, groups, strict=True):
        s = ks.get_read(key, now)
        if type(s) is not Stream:
            continue
        history = False
        if g is not None:
            if gt != _GT_NEW:
                history = True
            elif s.length and s.last_valid_id() > g.last_id:
                gt = g.last_id
            else:
                continue
        elif not (s.length and s.last_valid_id() > gt):
            continue
        start = gt + 1 if gt != MAX_ID else 0
        entries: list[object]
        if g is None:
            entries = [_entry(*e) for e in s.range(start, MAX_ID, count)]
        else:
            consumer = g.consumers.get(x.consumer)
            if consumer is None:
                consumer = g.consumers[x.consumer] = Consumer(x.consumer, now)
            else:
                consumer.seen = now
            if history:
                entries = _history(s, g, consumer, start, count, now)
            else:
                entries = _deliver(s, g, consumer, start, count, now, x.noack)
        out.append((key, entries))
    return Map(out, nested=True) if out else NULL_ARRAY


def _deliver(s: Stream, g: Group, consumer: Consumer, start: int, count: int, now: int,
             noack: bool) -> list[object]:
    """streamReplyWithRange with a group: new entries, the group's cursor and PEL."""
    entries: list[object] = []
    for sid, node, i in s.range(start, MAX_ID, count):
        if sid > g.last_id:
            if g.entries_read != INVALID_ENTRIES_READ and not s.has_tombstones_in(sid):
                g.entries_read += 1
            elif s.entries_added:
                g.entries_read = s.estimate_read(sid)
            g.last_id = sid
        entries.append(_entry(sid, node, i))
        if not noack:
            nack = g.pel.get(sid)
            if nack is None:
                g.add_pending(sid, Nack(now, 1, consumer))
                _insort(consumer.pel, sid)
            else:
                if nack.consumer is not None and nack.consumer is not consumer:
                    _discard(nack.consumer.pel, sid)
                nack.consumer = consumer
                nack.time = now
                nack.count = 1
                _insort(consumer.pel, sid)
    return entries


def _history(s: Stream, g: Group, consumer: Consumer, start: int, count: int,
             now: int) -> list[object]:
    """streamReplyWithRangeFromConsumerPEL: the consumer's own pending entries."""
    out: list[object] = []
    ids = consumer.pel
    i = bisect.bisect_left(ids, start)
    while i < len(ids) and (not count or len(out) < count):
        sid = ids[i]
        i += 1
        pairs = s.entry(sid)
        if pairs is None:
            out.append([id_bytes(sid), NULL_ARRAY])
        else:
            out.append([id_bytes(sid), pairs])
            nack = g.pel[sid]
            nack.time = now
            nack.count += 1
    return out


def _insort(lst: list[int], x: int) -> None:
    if not lst or lst[-1] < x:
        lst.append(x)
        return
    i = bisect.bisect_left(lst, x)
    if i == len(lst) or lst[i] != x:
        lst.insert(i, x)


def _discard(lst: list[int], x: int) -> None:
    i = bisect.bisect_left(lst, x)
    if i < len(lst) and lst[i] == x:
        del lst[i]


def _xread_common(ks: Keyspace, argv: Argv, now: int, write: bool) -> object:
    x = parse_xread(argv, now)
    ids, groups = resolve_xread(ks, x, now, write)
    return serve_xread(ks, x, ids, groups, now, x.count)


def xread(ks: Keyspace, argv: Argv, now: int) -> object:
    return _xread_common(ks, argv, now, write=False)


def xreadgroup(ks: Keyspace, argv: Argv, now: int) -> object:
    return _xread_common(ks, argv, now, write=True)


# ------------------------------------------------------------------ XDEL / XSETID


def xdel(ks: Keyspace, argv: Argv, now: int) -> object:
    s = _stream_write(ks, argv[1], now)
    if s is None:
        return 0
    ids = [parse_strict_id(raw) for raw in argv[2:]]
    deleted = 0
    first = False
    for sid in ids:
        if s.delete(sid):
            if sid == s.first_id:
                first = True
            if sid > s.max_deleted:
                s.max_deleted = sid
            deleted += 1
    if deleted:
        if s.length == 0:
            s.first_id = 0
        elif first:
            s.first_id = s.first_valid_id()
        touched(ks, argv[1], s)
    return deleted


def xsetid(ks: Keyspace, argv: Argv, now: int) -> object:
    sid = parse_strict_id(argv[2])
    entries_added = -1
    max_xdel = 0
    i = 3
    argc = len(argv)
    while i < argc:
        more = argc - 1 - i
        opt = argv[i].lower()
        if opt == b"entriesadded" and more:
            entries_added = _ll(argv[i + 1])
            if entries_added < 0:
                raise CommandError("ERR entries_added must be positive")
            i += 2
        elif opt == b"maxdeletedid" and more:
            max_xdel = parse_strict_id(argv[i + 1])
            if sid < max_xdel:
                raise CommandError(
                    "ERR The ID specified in XSETID is smaller than the provided "
                    "max_deleted_entry_id"
                )
            i += 2
        else:
            raise CommandError(SYNTAX)
    s = _stream_write(ks, argv[1], now)
    if s is None:
        raise CommandError(NO_SUCH_KEY)
    if s.length > 0:
        if sid < s.last_valid_id():
            raise CommandError(
                "ERR The ID specified in XSETID is smaller than the target stream top item"
            )
        if entries_added != -1 and s.length > entries_added:
            raise CommandError(
                "ERR The entries_added specified in XSETID is smaller than the target stream "
                "length"
            )
    s.last_id = sid
    if entries_added != -1:
        s.entries_added = entries_added
    if max_xdel:
        s.max_deleted = max_xdel
    return OK


# ------------------------------------------------------------------ XGROUP


_XGROUP_HELP = (
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Prints this help.",
)

_XINFO_HELP = (
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Prints this help.",
)


def _help(lines: tuple[str, ...]) -> list[object]:
    return [SimpleString(line) for line in lines]


def xgroup(ks: Keyspace, argv: Argv, now: int) -> object:
    argc = len(argv)
    opt = argv[1].lower()
    mkstream = False
    entries_read = INVALID_ENTRIES_READ
    s: Stream | None = None
    g: Group | None = None
    if argc >= 4:
        i = 5
        create, setid = opt == b"create", opt == b"setid"
        while i < argc:
            a = argv[i].lower()
            if create and a == b"mkstream":
                mkstream = True
                i += 1
            elif (create or setid) and a == b"entriesread" and i + 1 < argc:
                entries_read = _ll(argv[i + 1])
                if entries_read < 0 and entries_read != INVALID_ENTRIES_READ:
                    raise CommandError("ERR value for ENTRIESREAD must be positive or -1")
                i += 2
            else:
                raise _subcommand_error(argv)
        s = _stream_write(ks, argv[2], now)
        if not mkstream:
            if s is None:
                raise CommandError(
                    "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE "
                    "you may want to use the MKSTREAM option to create an empty stream "
                    "automatically."
                )
            g = s.groups.get(argv[3])
            if g is None and opt in (b"setid", b"createconsumer", b"delconsumer"):
                gn, k = argv[3].decode("utf-8", "replace"), argv[2].decode("utf-8", "replace")
                raise CommandError(f"NOGROUP No such consumer group '{gn}' for key name '{k}'")
    if argc == 2 and opt == b"help":
        return _help(_XGROUP_HELP)
    if opt == b"create" and 5 <= argc <= 8:
        sid = (s.last_id if s is not None else 0) if argv[4] == b"$" else parse_strict_id(argv[4])
        if s is None:
            s = Stream()
            store(ks, argv[2], s)
        if argv[3] in s.groups:
            raise CommandError("BUSYGROUP Consumer Group name already exists")
        s.groups[argv[3]] = Group(sid, entries_read)
        return OK
    if opt == b"setid" and argc in (5, 7):
        assert s is not None and g is not None
        sid = s.last_id if argv[4] == b"$" else parse_id(argv[4])
        g.last_id = sid
        g.entries_read = entries_read
        return OK
    if opt == b"destroy" and argc == 4:
        assert s is not None
        if s.groups.pop(argv[3], None) is not None:
            return 1
        return 0
    if opt == b"createconsumer" and argc == 5:
        assert g is not None
        if argv[4] in g.consumers:
            return 0
        g.consumers[argv[4]] = Consumer(argv[4], now)
        return 1
    if opt == b"delconsumer" and argc == 5:
        assert g is not None
        c = g.consumers.pop(argv[4], None)
        if c is None:
            return 0
        for sid in c.pel:
            g.pel.pop(sid, None)
            _discard(g.pel_ids, sid)
        return len(c.pel)
    raise _subcommand_error(argv)


# ------------------------------------------------------------------ XACK / XPENDING


def _group_or_none(ks: Keyspace, key: bytes, name: bytes, now: int,
                   write: bool) -> tuple[Stream | None, Group | None]:
    s = _stream_write(ks, key, now) if write else _stream_read(ks, key, now)
    return s, (s.groups.get(name) if s is not None else None)


def _nogroup(key: bytes, group: bytes) -> CommandError:
    k, g = key.decode("utf-8", "replace"), group.decode("utf-8", "replace")
    return CommandError(f"NOGROUP No such key '{k}' or consumer group '{g}'")


def xack(ks: Keyspace, argv: Argv, now: int) -> object:
    _, g = _group_or_none(ks, argv[1], argv[2], now, write=True)
    if g is None:
        return 0
    ids = [parse_strict_id(raw) for raw in argv[3:]]
    acked = 0
    for sid in ids:
        if g.remove_pending(sid) is not None:
            acked += 1
    return acked


def xpending(ks: Keyspace, argv: Argv, now: int) -> object:
    argc = len(argv)
    if argc != 3 and (argc < 6 or argc > 9):
        raise CommandError(SYNTAX)
    minidle = 0
    count = 0
    start = end = 0
    consumer_name: bytes | None = None
    if argc >= 6:
        at = 3
        if argv[3].lower() == b"idle":
            minidle = _ll(argv[4])
            if argc < 8:
                raise CommandError(SYNTAX)
            at += 2
        count = max(_ll(argv[at + 2]), 0)
        start, end = _range_bounds(argv[at], argv[at + 1])
        if at + 3 < argc:
            consumer_name = argv[at + 3]
    s = _stream_read(ks, argv[1], now)
    g = s.groups.get(argv[2]) if s is not None else None
    if g is None:
        raise _nogroup(argv[1], argv[2])
    if argc == 3:
        if not g.pel:
            return [0, None, None, NULL_ARRAY]
        owners = [[name, b"%d" % len(c.pel)]
                  for name, c in sorted(g.consumers.items()) if c.pel]
        return [len(g.pel), id_bytes(g.pel_ids[0]), id_bytes(g.pel_ids[-1]), owners]
    if consumer_name is not None:
        c = g.consumers.get(consumer_name)
        if c is None:
            return []
        ids = c.pel
    else:
        ids = g.pel_ids
    out: list[object] = []
    i = bisect.bisect_left(ids, start)
    while count and i < len(ids) and ids[i] <= end:
        sid = ids[i]
        i += 1
        nack = g.pel[sid]
        if minidle and now - nack.time < minidle:
            continue
        count -= 1
        owner = nack.consumer.name if nack.consumer is not None else b""
        out.append([id_bytes(sid), owner, max(now - nack.time, 0), nack.count])
    return out


# ------------------------------------------------------------------ XCLAIM / XAUTOCLAIM


def _claim(g: Group, sid: int, nack: Nack, consumer: Consumer) -> None:
    if nack.consumer is not consumer:
        if nack.consumer is not None:
            _discard(nack.consumer.pel, sid)
        nack.consumer = consumer
        _insort(consumer.pel, sid)


def _consumer(g: Group, name: bytes, now: int) -> Consumer:
    c = g.consumers.get(name)
    if c is None:
        c = g.consumers[name] = Consumer(name, now)
    else:
        c.seen = now
    return c


def xclaim(ks: Keyspace, argv: Argv, now: int) -> object:
    s, g = _group_or_none(ks, argv[1], argv[2], now, write=True)
    if s is None or g is None:
        raise _nogroup(argv[1], argv[2])
    minidle = max(_ll(argv[4], "ERR Invalid min-idle-time argument for XCLAIM"), 0)
    ids: list[int] = []
    j = 5
    argc = len(argv)
    while j < argc:
        try:
            ids.append(parse_strict_id(argv[j]))
        except CommandError:
            break
        j += 1
    retry = -1
    delivery = -1
    force = justid = False
    last_id = 0
    while j < argc:
        more = argc - 1 - j
        opt = argv[j].lower()
        if opt == b"force":
            force = True
        elif opt == b"justid":
            justid = True
        elif opt == b"idle" and more:
            j += 1
            delivery = now - _ll(argv[j], "ERR Invalid IDLE option argument for XCLAIM")
        elif opt == b"time" and more:
            j += 1
            delivery = _ll(argv[j], "ERR Invalid TIME option argument for XCLAIM")
        elif opt == b"retrycount" and more:
            j += 1
            retry = _ll(argv[j], "ERR Invalid RETRYCOUNT option argument for XCLAIM")
        elif opt == b"lastid" and more:
            j += 1
            last_id = parse_strict_id(argv[j])
        else:
            raise CommandError(
                f"ERR Unrecognized XCLAIM option '{argv[j].decode('utf-8', 'replace')}'"
            )
        j += 1
    if last_id > g.last_id:
        g.last_id = last_id
    if delivery != -1:
        if delivery < 0 or delivery > now:
            delivery = now
    else:
        delivery = now
    consumer: Consumer | None = None
    out: list[object] = []
    for sid in ids:
        nack = g.pel.get(sid)
        pairs = s.entry(sid)
        if pairs is None:
            if nack is not None:
                g.remove_pending(sid)
            continue
        if force and nack is None:
            nack = Nack(now, 1, None)  # streamCreateNACK: one delivery, now
            g.add_pending(sid, nack)
        if nack is None:
            continue
        if nack.consumer is not None and minidle and now - nack.time < minidle:
            continue
        if consumer is None:
            consumer = _consumer(g, argv[3], now)
        if nack.consumer is not consumer and nack.consumer is not None:
            _discard(nack.consumer.pel, sid)
        nack.time = delivery
        if retry >= 0:
            nack.count = retry
        elif not justid:
            nack.count += 1
        if nack.consumer is not consumer:
            _insort(consumer.pel, sid)
            nack.consumer = consumer
        out.append(id_bytes(sid) if justid else [id_bytes(sid), pairs])
    return out


def xautoclaim(ks: Keyspace, argv: Argv, now: int) -> object:
    minidle = max(_ll(argv[4], "ERR Invalid min-idle-time argument for XAUTOCLAIM"), 0)
    start, ex = _parse_interval(argv[5], 0)
    if ex:
        nxt = _incr(start)
        if nxt is None:
            raise CommandError("ERR invalid start ID for the interval")
        start = nxt
    count = 100
    justid = False
    j = 6
    argc = len(argv)
    max_count = (2**63 - 1) // 16
    while j < argc:
        more = argc - 1 - j
        opt = argv[j].lower()
        if opt == b"count" and more:
            v = parse_int(argv[j + 1])
            if v is None or v < 1 or v > max_count:
                raise CommandError("ERR COUNT must be > 0")
            count = v
            j += 1
        elif opt == b"justid":
            justid = True
        else:
            raise CommandError(SYNTAX)
        j += 1
    s, g = _group_or_none(ks, argv[1], argv[2], now, write=True)
    if s is None or g is None:
        raise _nogroup(argv[1], argv[2])
    attempts = count * 10
    consumer: Consumer | None = None
    claimed: list[object] = []
    deleted: list[object] = []
    ids = g.pel_ids
    i = bisect.bisect_left(ids, start)
    last = -1
    eof = False
    while attempts and count:
        attempts -= 1
        if last >= 0:
            i = bisect.bisect_right(ids, last)
        if i >= len(ids):
            eof = True
            break
        sid = last = ids[i]
        nack = g.pel[sid]
        pairs = s.entry(sid)
        if pairs is None:
            g.remove_pending(sid)
            deleted.append(id_bytes(sid))
            count -= 1
            continue
        if minidle and now - nack.time < minidle:
            continue
        if consumer is None:
            consumer = _consumer(g, argv[3], now)
        _claim(g, sid, nack, consumer)
        nack.time = now
        if not justid:
            nack.count += 1
        claimed.append(id_bytes(sid) if justid else [id_bytes(sid), pairs])
        count -= 1
    cursor = b"0-0"
    if not eof:
        i = bisect.bisect_right(ids, last) if last >= 0 else i
        if i < len(ids):
            cursor = id_bytes(ids[i])
    return [cursor, claimed, deleted]


# ------------------------------------------------------------------ XINFO


def xinfo(ks: Keyspace, argv: Argv, now: int) -> object:
    opt = argv[1].lower()
    argc = len(argv)
    if opt == b"help":
        if argc != 2:
            raise _subcommand_error(argv)
        return _help(_XINFO_HELP)
    if argc < 3:
        raise _subcommand_error(argv)
    s = _stream_read(ks, argv[2], now)
    if s is None:
        raise CommandError(NO_SUCH_KEY)
    if opt == b"consumers" and argc == 4:
        g = s.groups.get(argv[3])
        if g is None:
            gn, k = argv[3].decode("utf-8", "replace"), argv[2].decode("utf-8", "replace")
            raise CommandError(f"NOGROUP No such consumer group '{gn}' for key name '{k}'")
        return [Map([(b"name", c.name), (b"pending", len(c.pel)),
                     (b"idle", max(now - c.seen, 0))])
                for _, c in sorted(g.consumers.items())]
    if opt == b"groups" and argc == 3:
        return [Map([(b"name", name), (b"consumers", len(g.consumers)),
                     (b"pending", len(g.pel)), (b"last-delivered-id", id_bytes(g.last_id)),
                     (b"entries-read", _entries_read(g)), (b"lag", s.lag(g))])
                for name, g in sorted(s.groups.items())]
    if opt == b"stream":
        return _xinfo_stream(s, argv)
    raise _subcommand_error(argv)


def _owner(nack: Nack) -> bytes:
    return nack.consumer.name if nack.consumer is not None else b""


def _entries_read(g: Group) -> int | None:
    return None if g.entries_read == INVALID_ENTRIES_READ else g.entries_read


def _radix_nodes(s: Stream) -> int:
    """Not Redis's rax node count (which depends on the rax's internals): an estimate."""
    return max(len(s.nodes) * 2 - 1, 1) if s.nodes else 1


def _xinfo_stream(s: Stream, argv: Argv) -> object:
    opts = argv[3:]
    full = bool(opts)
    count = 10
    if opts:
        if len(opts) not in (1, 3) or opts[0].lower() != b"full":
            raise _subcommand_error(argv)
        if len(opts) == 3:
            if opts[1].lower() != b"count":
                raise _subcommand_error(argv)
            count = _ll(opts[2])
            if count < 0:
                count = 10
    items: list[tuple[object, object]] = [
        (b"length", s.length),
        (b"radix-tree-keys", len(s.nodes)),
        (b"radix-tree-nodes", _radix_nodes(s)),
        (b"last-generated-id", id_bytes(s.last_id)),
        (b"max-deleted-entry-id", id_bytes(s.max_deleted)),
        (b"entries-added", s.entries_added),
        (b"recorded-first-entry-id", id_bytes(s.first_id)),
    ]
    if not full:
        first = next((_entry(*e) for e in s.range(0, MAX_ID, 1)), None)
        last = next((_entry(*e) for e in s.range(0, MAX_ID, 1, rev=True)), None)
        items += [(b"groups", len(s.groups)), (b"first-entry", first), (b"last-entry", last)]
        return Map(items)
    items.append((b"entries", [_entry(*e) for e in s.range(0, MAX_ID, count)]))
    groups: list[object] = []
    for name, g in sorted(s.groups.items()):
        pending = [[id_bytes(sid), _owner(g.pel[sid]), g.pel[sid].time, g.pel[sid].count]
                   for sid in (g.pel_ids[:count] if count else g.pel_ids)]
        consumers: list[object] = []
        for cname, c in sorted(g.consumers.items()):
            cp = [[id_bytes(sid), g.pel[sid].time, g.pel[sid].count]
                  for sid in (c.pel[:count] if count else c.pel)]
            consumers.append(Map([(b"name", cname), (b"seen-time", c.seen),
                                  (b"pel-count", len(c.pel)), (b"pending", cp)]))
        groups.append(Map([
            (b"name", name), (b"last-delivered-id", id_bytes(g.last_id)),
            (b"entries-read", _entries_read(g)), (b"lag", s.lag(g)),
            (b"pel-count", len(g.pel)), (b"pending", pending), (b"consumers", consumers),
        ]))
    items.append((b"groups", groups))
    return Map(items)


__all__ = ["XReadArgs", "parse_xread", "resolve_xread", "serve_xread"]
