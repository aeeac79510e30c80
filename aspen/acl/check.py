"""The permission check: may this user run this command with these arguments?

Redis 7.0's order: a selector allows a command if it allows the command (or the first
argument), every key with the access its key spec declares (ACCESS needs read; INSERT,
DELETE, UPDATE need write) and every channel PUBLISH/SUBSCRIBE name; the user may run it if
any selector does. When none does, the most relevant refusal is reported (channel > key >
command; among equals the later argument).
"""

from __future__ import annotations

import enum

from aspen.acl.catalog import COMMANDS
from aspen.acl.rules import CATALOGUE, READ, WRITE, Selector, User
from aspen.kv.glob import glob_match


class Denied(enum.IntEnum):
    OK = 0
    CMD = 1
    KEY = 2
    AUTH = 3
    CHANNEL = 4


_KeySpec = tuple[tuple[str, ...], tuple[object, ...], tuple[object, ...]]


def _specs_of(name: str) -> tuple[_KeySpec, ...]:
    base, _, sub = name.partition("|")
    entry = COMMANDS.get(base)
    if entry is None:
        return ()
    if sub:
        for sname, sentry in entry[2]:
            if sname == name:
                return tuple(sentry[1])
        return ()
    return tuple(entry[1])


def _perm(flags: tuple[str, ...]) -> int:
    need = 0
    if "access" in flags:
        need |= READ
    if "insert" in flags or "delete" in flags or "update" in flags:
        need |= WRITE
    return need


def _strict_int(raw: bytes) -> int | None:
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if str(value).encode() == raw else None


def _variable_flags(name: str, argv: list[bytes]) -> list[tuple[int, int]] | None:
    """SET and BITFIELD declare "variable flags": what they need depends on the options
    (Redis's setGetKeys / bitfieldGetKeys)."""
    if name == "set":
        reads = any(a.lower() == b"get" for a in argv[3:])
        return [(1, READ | WRITE if reads else WRITE)]
    if name == "bitfield":
        readonly, i = True, 2
        while i < len(argv):
            arg, rem = argv[i].lower(), len(argv) - i - 1
            if arg == b"get" and rem >= 2:
                i += 3
            elif arg == b"overflow" and rem >= 1:
                i += 2
            else:  # SET, INCRBY, or a syntax error: Redis assumes a write
                readonly = False
                break
        return [(1, READ if readonly else READ | WRITE)]
    return None


def _sort_keys(name: str, argv: list[bytes]) -> list[tuple[int, int]]:
    """SORT's key spec is incomplete (STORE's destination): Redis's sortGetKeys. LIMIT, GET
    and BY skip their arguments; the last STORE names the destination (written)."""
    keys = [(1, READ)]
    if name == "sort_ro":
        return keys
    store = 0
    i = 2
    while i < len(argv):
        arg = argv[i].lower()
        if arg == b"limit":
            i += 2
        elif arg in (b"get", b"by"):
            i += 1
        elif arg == b"store" and i + 1 < len(argv):
            store = i + 1
        i += 1
    return [*keys, (store, WRITE)] if store else keys


def keys_with_perms(name: str, argv: list[bytes]) -> list[tuple[int, int]] | None:
    """(argument index, needed permission) per key, by Redis's key specs; None when a spec
    cannot be followed here (the caller falls back to the command table's key positions)."""
    if name in ("set", "bitfield"):
        return _variable_flags(name, argv)
    if name in ("sort", "sort_ro"):
        return _sort_keys(name, argv)
    argc = len(argv)
    out: list[tuple[int, int]] = []
    for flags, begin, find in _specs_of(name):
        if "not_key" in flags:  # (shard channels: checked as channels, not keys)
            continue
        if begin[0] == "index":
            first = int(begin[1])  # type: ignore[call-overload]
        elif begin[0] == "keyword":
            word, start = str(begin[1]).lower().encode(), int(begin[2])  # type: ignore[call-overload]
            found = -1
            rng = range(start, argc) if start >= 0 else range(argc + start, 0, -1)
            for i in rng:
                if 0 < i < argc and argv[i].lower() == word:
                    found = i
                    break
            if found < 0:
                continue
            first = found + 1
        else:
            return None
        if find[0] == "range":
            lastkey, step, limit = (int(x) for x in find[1:])  # type: ignore[call-overload]
            if lastkey >= 0:
                last = first + lastkey
            elif not limit:
                last = argc + lastkey
            else:
                last = first + ((argc - first) // limit + lastkey)
        elif find[0] == "keynum":
            idx, firstkey, step = (int(x) for x in find[1:])  # type: ignore[call-overload]
            if first + idx >= argc:
                return None
            num = _strict_int(argv[first + idx])
            if num is None or num < 0:
                return None
            first = first + firstkey
            last = first + (num - 1) * step
        else:
            return None
        if last >= argc:
            return None
        need = _perm(flags)
        out += [(i, need) for i in range(first, last + 1, max(step, 1))]
    return out


def channels_of(name: str, argv: list[bytes]) -> list[tuple[int, bool]]:
    """(argument index, is a pattern) of the channels ACL checks (PUBLISH and SUBSCRIBE)."""
    if name in ("publish", "spublish"):
        return [(1, False)]
    if name in ("subscribe", "ssubscribe"):
        return [(i, False) for i in range(1, len(argv))]
    if name == "psubscribe":
        return [(i, True) for i in range(1, len(argv))]
    return []


def _check_selector(
    sel: Selector, name: str, argv: list[bytes], keys: list[tuple[int, int]]
) -> tuple[Denied, int]:
    cid = CATALOGUE.ids.get(name)
    if not sel.allcommands and name not in CATALOGUE.no_auth:
        if cid is None:
            if not sel.future:  # Aspen's own commands: only with +@all
                return Denied.CMD, 0
        elif not sel.bits >> cid & 1:
            base = name.partition("|")[0]
            allowed = sel.firstargs.get(base)
            at = 2 if "|" in name else 1
            if not allowed or len(argv) < 2 or at >= len(argv):
                return Denied.CMD, 0
            if not any(a.lower() == argv[at].lower() for a in allowed):
                return Denied.CMD, 0
    if not sel.allkeys:
        for i, need in keys:
            if not any(f & need == need and glob_match(p, argv[i]) for p, f in sel.keys):
                return Denied.KEY, i
    if not sel.allchannels:
        for i, pattern in channels_of(name, argv):
            ch = argv[i]
            ok = ch in sel.channels if pattern else any(glob_match(p, ch) for p in sel.channels)
            if not ok:
                return Denied.CHANNEL, i
    return Denied.OK, 0


def check(
    user: User, name: str, argv: list[bytes], fallback_keys: list[int] | None = None
) -> tuple[Denied, int]:
    """(Denied.OK, 0) or the refusal and the index of the argument refused."""
    keys = keys_with_perms(name, argv)
    if keys is None:
        need = 0
        for flags, _b, _f in _specs_of(name):
            need |= _perm(flags)
        keys = [(i, need) for i in (fallback_keys or [])]
    relevant, last = Denied.CMD, 0
    for sel in user.selectors:
        result, idx = _check_selector(sel, name, argv, keys)
        if result is Denied.OK:
            return result, 0
        if result > relevant or (result == relevant and idx > last):
            relevant, last = result, idx
    return relevant, last


def denied_text(result: Denied, name: str, argv: list[bytes], idx: int) -> str:
    """ACL DRYRUN's words for a refusal."""
    if result is Denied.CMD:
        return f"This user has no permissions to run the '{name}' command"
    what = "key" if result is Denied.KEY else "channel"
    return (
        f"This user has no permissions to access the "
        f"'{argv[idx].decode('utf-8', 'replace')}' {what}"
    )
