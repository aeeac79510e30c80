"""The value types a key can hold besides strings: how each is named, copied and serialised.

A string is `bytes`; every other type is an instance of its own class, described by a
`ValueType` constant its module declares (hashes, lists, sets, zsets, streams); the command
table module (`aspen.kv.commands`) registers them all, in one place, next to the commands.
The keyspace uses this registry for TYPE, COPY and snapshots. A leaf module, like `errors`.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs


@attrs.frozen
class ValueType:
    """How a non-string value type is named, copied and serialised."""

    name: str
    cls: type
    copy: Callable[[object], object]
    dump: Callable[[object], object]  # -> CBOR-able
    load: Callable[[object], object]


TYPES_BY_CLASS: dict[type, ValueType] = {}
TYPES_BY_NAME: dict[str, ValueType] = {}


def register_types(*types: ValueType) -> None:
    """Make value types known (the command table does it once for all of them)."""
    for vt in types:
        TYPES_BY_CLASS[vt.cls] = vt
        TYPES_BY_NAME[vt.name] = vt


def type_name(value: object) -> str:
    if type(value) is bytes:
        return "string"
    return TYPES_BY_CLASS[type(value)].name
