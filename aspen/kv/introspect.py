"""The replies of COMMAND, COMMAND INFO and COMMAND DOCS, built from the command table."""

from __future__ import annotations

from aspen.kv.commands import CommandSpec
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
        [],
        _key_specs(spec),
        [command_info(s) for s in spec.subcommands],
    ]


def _key_specs(spec: CommandSpec) -> list[object]:
    if spec.first_key == 0:
        return []
    flags: list[object] = [SimpleString("RW" if "write" in spec.flags else "RO")]
    lastkey = spec.last_key - spec.first_key if spec.last_key >= 0 else spec.last_key
    return [
        Map(
            [
                (b"flags", Set(flags)),
                (
                    b"begin_search",
                    Map([(b"type", b"index"), (b"spec", Map([(b"index", spec.first_key)]))]),
                ),
                (
                    b"find_keys",
                    Map(
                        [
                            (b"type", b"range"),
                            (
                                b"spec",
                                Map(
                                    [(b"lastkey", lastkey), (b"keystep", spec.step), (b"limit", 0)]
                                ),
                            ),
                        ]
                    ),
                ),
            ]
        )
    ]


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
