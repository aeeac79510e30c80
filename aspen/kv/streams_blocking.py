"""What XREAD BLOCK and XREADGROUP BLOCK need from the keyspace (see `aspen.kv.blocking`).

Applied from the log (and inside MULTI) both behave as their non-blocking form. The node parks
a client whose blocking read found nothing; when a committed write makes a stream it waits on
ready (an entry past the ID it waits after, or, for a group, past the group's last delivered
ID; or its group gone), the node replicates a serve, `ASPEN.BSERVE <key> <argv...>`, which
answers as Redis answers a blocked client: only that key, COUNT entries (1000 without COUNT),
or null if a client of another node got there first. XREAD's `$` is replaced by the stream's
last ID before the client parks (`resolve_dollar`), so it means the last ID at that moment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aspen.kv.blocking import BlockingCall
from aspen.kv.errors import CommandError
from aspen.kv.spec import Blocking
from aspen.kv.stream import MAX_ID, Consumer, Stream, id_bytes
from aspen.kv.streams import _deliver, _entry, parse_strict_id, parse_xread
from aspen.kv.typed import Argv
from aspen.resp.values import Error, Map

if TYPE_CHECKING:
    from aspen.kv.keyspace import Keyspace

BLOCKED_DEFAULT_COUNT = 1000  # XREAD_BLOCKED_DEFAULT_COUNT
GROUP_GONE = Error("NOGROUP the consumer group this client was blocked on no longer exists")
KEY_GONE = Error("UNBLOCKED the stream key no longer exists")
STREAM_COMMANDS = frozenset({b"xread", b"xreadgroup"})


def wants_block(argv: Argv) -> bool:
    """Is this an XREAD/XREADGROUP with a valid BLOCK option (else it runs as usual)?"""
    if argv[0].lower() not in STREAM_COMMANDS:
        return False
    try:
        return parse_xread(argv, 0).block >= 0
    except CommandError:
        return False


def _call(argv: Argv) -> BlockingCall:
    x = parse_xread(argv, 0)
    return BlockingCall(tuple(x.keys), x.block, 0)


def resolve_dollar(ks: Keyspace, argv: Argv, now: int) -> list[bytes]:
    """XREAD's argv with each `$` replaced by that stream's last ID (0-0 if none)."""
    x = parse_xread(argv, now)
    out = list(argv)
    first_id = len(argv) - len(x.ids)
    for n, (key, raw) in enumerate(zip(x.keys, x.ids, strict=True)):
        if raw == b"$":
            s = ks.get_read(key, now)
            out[first_id + n] = id_bytes(s.last_id if type(s) is Stream else 0)
    return out


def _after(x_ids: list[bytes], keys: list[bytes], key: bytes) -> bytes:
    return x_ids[keys.index(key)]


def stream_ready(value: object, key: bytes, argv: Argv) -> bool:
    """Would a serve of `argv` from `key` answer now (entries, or an error: the group or,
    for XREADGROUP, the key itself gone)?"""
    x = parse_xread(argv, 0)
    if type(value) is not Stream:
        return x.group is not None  # deleted or overwritten: Redis unblocks XREADGROUP
    raw = _after(x.ids, x.keys, key)
    if x.group is not None:
        g = value.groups.get(x.group)
        if g is None:
            return True
        return value.last_id > g.last_id
    return value.last_id > parse_strict_id(raw)


def _serve(ks: Keyspace, key: bytes, argv: Argv, now: int) -> object:
    """serveClientsBlockedOnStreamKey: this key only, or None if it cannot serve yet."""
    x = parse_xread(argv, now)
    s = ks.get_write(key, now) if x.group is not None else ks.get_read(key, now)
    if type(s) is not Stream:
        return KEY_GONE if x.group is not None else None
    count = x.count or BLOCKED_DEFAULT_COUNT
    if x.group is None:
        gt = parse_strict_id(_after(x.ids, x.keys, key))
        if not s.last_id > gt:
            return None
        start = gt + 1 if gt != MAX_ID else 0
        entries: list[object] = [_entry(*e) for e in s.range(start, MAX_ID, count)]
        return Map([(key, entries)], nested=True)
    g = s.groups.get(x.group)
    if g is None:
        return GROUP_GONE
    if not s.last_id > g.last_id:
        return None
    consumer = g.consumers.get(x.consumer)
    if consumer is None:
        consumer = g.consumers[x.consumer] = Consumer(x.consumer, now)
    else:
        consumer.seen = now
    start = g.last_id + 1 if g.last_id != MAX_ID else 0
    entries = _deliver(s, g, consumer, start, count, now, x.noack)
    return Map([(key, entries)], nested=True)


STREAM_BLOCKING = Blocking(_call, _serve, Stream)
"""XREAD's and XREADGROUP's: the node tells a stream waiter by `kind` and asks `stream_ready`."""
