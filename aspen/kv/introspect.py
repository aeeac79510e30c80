"""The replies of COMMAND, COMMAND INFO and COMMAND DOCS, built from the command table."""

from __future__ import annotations

from aspen.kv.commands import CommandSpec, KeySpec
from aspen.resp.values import Map, Set, SimpleString


def command_info(spec: CommandSpec) -> list[object]:
    """Redis 7's 10-element COMMAND INFO entry."""
    flags: list[object] = [SimpleString(f) for f in sorted(spec.flags)]
    acl: list[object] = [SimpleString(c) for c in spec.acl]
    return [
        spec.name.encode(),
        spec.arity,
        Set(flags),
        spec.first_key,
        spec.last_key,
        spec.step,
        Set(acl),
        Set([]),  # tips; Redis 7.0 sends tips and key specs as RESP3 sets
        Set(_key_specs(spec)),
        # ... and no subcommands as an empty set, some as an array (as 7.0.15 does).
        [command_info(s) for s in spec.subcommands] if spec.subcommands else Set([]),
    ]


def _key_specs(spec: CommandSpec) -> list[object]:
    if spec.key_specs:
        return [_key_spec(k) for k in spec.key_specs]
    if spec.first_key == 0:
        return []
    lastkey = spec.last_key - spec.first_key if spec.last_key >= 0 else spec.last_key
    flags = ("RW",) if "write" in spec.flags else ("RO",)
    return [_key_spec(KeySpec(flags, spec.first_key, lastkey=lastkey, keystep=spec.step))]


def _key_spec(key: KeySpec) -> Map:
    find: list[tuple[object, object]]
    if key.find == "keynum":
        find = [
            (b"keynumidx", key.keynumidx),
            (b"firstkey", key.firstkey),
            (b"keystep", key.keystep),
        ]
    else:
        find = [(b"lastkey", key.lastkey), (b"keystep", key.keystep), (b"limit", key.limit)]
    flags: list[object] = [SimpleString(f) for f in key.flags]
    begin = (
        Map([(b"type", b"keyword"), (b"spec", Map([(b"keyword", key.keyword.encode()),
                                                    (b"startfrom", key.startfrom)]))])
        if key.keyword
        else Map([(b"type", b"index"), (b"spec", Map([(b"index", key.begin_index)]))])
    )
    notes: list[tuple[object, object]] = [(b"notes", key.notes.encode())] if key.notes else []
    return Map(
        [
            *notes,
            (b"flags", Set(flags)),
            (b"begin_search", begin),
            (b"find_keys", Map([(b"type", key.find.encode()), (b"spec", Map(find))])),
        ]
    )


def command_docs(spec: CommandSpec) -> Map:
    """A small COMMAND DOCS entry: summary, since, group (and subcommands)."""
    items: list[tuple[object, object]] = [
        (b"summary", spec.summary.encode()),
        (b"since", spec.since.encode()),
        (b"group", spec.group.encode()),
    ]
    if spec.subcommands:
        items.append(
            (b"subcommands", Map([(s.name.encode(), command_docs(s)) for s in spec.subcommands]))
        )
    return Map(items)
