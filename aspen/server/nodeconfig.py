"""How a node's TOML config and its run-time parameters meet (CONFIG SET / REWRITE).

The node's own settings that Redis clients know by Redis's names live in `[node]`
(`HONOURED_KEYS`: maxclients is `node.max_clients`, ...); every other Redis parameter may be
given in a `[redis]` table by its Redis name (`notify-keyspace-events = "Ex"`,
`hash-max-listpack-entries = 256`). CONFIG REWRITE edits those keys in place, line by line,
keeping every other line (comments, other sections) as it was, checks that the result still
loads as a valid config, and replaces the file atomically.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aspen.server import params

__all__ = ["FIXED", "HONOURED_KEYS", "check_redis_table", "rewrite_toml", "toml_value"]

HONOURED_KEYS: dict[str, str] = {
    "maxclients": "max_clients",
    "timeout": "timeout",
    "proto-max-bulk-len": "proto_max_bulk_len",
    "client-query-buffer-limit": "client_query_buffer_limit",
    "requirepass": "requirepass",
    "maxmemory": "maxmemory",
    "maxmemory-policy": "maxmemory_policy",
    "maxmemory-samples": "maxmemory_samples",
}
"""Redis parameter -> its key in [node] (CONFIG SET changes it at run time; REWRITE saves it)."""

_RAFT_LOG = "every write is in the fsynced Raft log before its reply: it cannot be changed"
_RESTART = "set it in the node's config file and restart the node"
FIXED: dict[str, str] = {
    "appendonly": _RAFT_LOG,
    "appendfsync": _RAFT_LOG,
    "port": _RESTART,
    "bind": _RESTART,
    "tls-port": _RESTART,
}
"""Parameters whose value is a fact of the node: CONFIG SET to another value fails, saying why."""


def check_redis_table(table: Mapping[str, Any]) -> dict[str, str]:
    """The [redis] table, validated as CONFIG SET would: canonical values by Redis name."""
    out: dict[str, str] = {}
    for name, raw in table.items():
        param = params.lookup(name)
        if param is None:
            raise ValueError(f"redis.{name}: unknown Redis parameter")
        if param.name in HONOURED_KEYS:
            raise ValueError(f"redis.{name}: set node.{HONOURED_KEYS[param.name]} instead")
        if param.name in FIXED:
            raise ValueError(f"redis.{name}: {FIXED[param.name]}")
        if isinstance(raw, bool):
            text = "yes" if raw else "no"
        elif isinstance(raw, int | str):
            text = str(raw)
        else:
            raise ValueError(f"redis.{name}: must be a string, an integer or a boolean")
        try:
            out[param.name] = param.parse(text)
        except params.Invalid as exc:
            raise ValueError(f"redis.{name}: {exc}, got {text!r}") from None
    return out


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    text = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)
    return f'"{text}"'


_HEADER = re.compile(r"^\s*\[\s*([A-Za-z0-9_.-]+)\s*\]\s*(#.*)?$")
_KEY = re.compile(r'^\s*("?)([A-Za-z0-9_-]+)\1\s*=')


def rewrite_toml(text: str, updates: Mapping[str, Mapping[str, str | None]]) -> str:
    """`text` with `updates[section][key]` (a TOML value, or None: remove the key) applied:
    a key's line is replaced where it is, a new key goes at the end of its section (a new
    section at the end of the file); every other line is kept."""
    lines = text.splitlines()
    section = ""
    ends: dict[str, int] = {}  # section -> index after its last non-blank line
    pending = {s: dict(keys) for s, keys in updates.items()}
    out: list[str] = []
    for line in lines:
        header = _HEADER.match(line)
        if header:
            section = header.group(1)
            out.append(line)
            ends[section] = len(out)
            continue
        key = _KEY.match(line)
        todo = pending.get(section, {})
        if key and key.group(2) in todo:
            value = todo.pop(key.group(2))
            if value is not None:
                out.append(f"{key.group(2)} = {value}")
                ends[section] = len(out)
            continue
        out.append(line)
        if line.strip():
            ends[section] = len(out)
    # keys not found: append to their section (in reverse order of position, so indices hold)
    for name in sorted((s for s in pending if s in ends), key=lambda s: -ends[s]):
        new = [f"{_key(k)} = {v}" for k, v in pending[name].items() if v is not None]
        out[ends[name]:ends[name]] = new
    for name, keys in pending.items():
        new = [f"{_key(k)} = {v}" for k, v in keys.items() if v is not None]
        if name not in ends and new:
            out += ["", f"[{name}]", *new]
    return "\n".join(out) + "\n"


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_value(key)


def rewrite_file(path: Path, updates: Mapping[str, Mapping[str, str | None]],
                 check: Any = None) -> None:
    """Rewrite `path` with `updates` (see rewrite_toml); `check(data)` validates the parsed
    result (raising ValueError) before the file is replaced, atomically."""
    text = path.read_text(encoding="utf-8")
    new = rewrite_toml(text, updates)
    try:
        data = tomllib.loads(new)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"the rewritten file would not be valid TOML: {exc}") from None
    if check is not None:
        check(data)
    tmp = path.with_name(path.name + ".rewrite.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(new)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
