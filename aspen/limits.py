"""Redis's client and memory limits: their parsers and a small registry to change them live.

The node config ([node] in aspen.node_config) holds the starting values. `LIMITS` maps each
Redis name to a getter and a setter over a running node (anything with `.server`, the
RespServer, and `.cluster`, the ClusterNode), for CONFIG GET/SET to hook: a setter raises
`ValueError` with the reason, and changes take effect at once (maxclients, maxmemory and its
policy) or for connections accepted afterwards (the per-connection limits).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import attrs

from aspen.kv.memory import POLICIES

OutputLimit = tuple[int, int, float]
"""(hard bytes, soft bytes, soft seconds); 0 turns a limit off."""

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2,
          "g": 1000**3, "gb": 1024**3}
_MEMORY = re.compile(r"^\s*(\d+)\s*([a-z]*)\s*$", re.IGNORECASE)
CLASSES = ("normal", "pubsub")
_IGNORED_CLASSES = ("replica", "slave")  # Aspen has no Redis replicas: accepted, unused


def parse_memory(text: str) -> int:
    """Bytes from an integer or Redis's units ("512mb", "1gb", "64k")."""
    m = _MEMORY.match(text)
    unit = _UNITS.get(m.group(2).lower()) if m else None
    if m is None or unit is None:
        raise ValueError(f"argument must be a memory value: {text!r}")
    return int(m.group(1)) * unit


def parse_output_limit(text: str) -> OutputLimit:
    """One class's "hard soft seconds" ("32mb 8mb 60"; "0 0 0": no limit)."""
    parts = text.split()
    if len(parts) != 3:
        raise ValueError('must be "<hard> <soft> <seconds>", e.g. "32mb 8mb 60"')
    if not parts[2].isdigit():
        raise ValueError("seconds must be an integer >= 0")
    return parse_memory(parts[0]), parse_memory(parts[1]), float(parts[2])


def parse_output_limits(text: str) -> dict[str, OutputLimit]:
    """Redis's CONFIG form: "<class> <hard> <soft> <seconds>" repeated (normal, pubsub;
    replica/slave are accepted and ignored)."""
    parts = text.split()
    if not parts or len(parts) % 4:
        raise ValueError("Wrong number of arguments in buffer limit configuration.")
    out: dict[str, OutputLimit] = {}
    for i in range(0, len(parts), 4):
        cls = parts[i].lower()
        if cls not in CLASSES + _IGNORED_CLASSES:
            raise ValueError("Invalid client class specified in buffer limit configuration.")
        try:
            limit = parse_output_limit(" ".join(parts[i + 1 : i + 4]))
        except ValueError:
            raise ValueError("Error in hard, soft or soft_seconds setting in buffer limit "
                             "configuration.") from None
        if cls in CLASSES:
            out[cls] = limit
    return out


def format_output_limits(normal: OutputLimit, pubsub: OutputLimit) -> str:
    """As Redis's CONFIG GET shows it (bytes, and a slave class with Redis's default)."""
    def one(name: str, lim: OutputLimit) -> str:
        return f"{name} {lim[0]} {lim[1]} {int(lim[2])}"
    return " ".join((one("normal", normal), "slave 268435456 67108864 60", one("pubsub", pubsub)))


# ------------------------------------------------------------------ the registry


@attrs.frozen
class Limit:
    """One setting by its Redis name: read it from, and write it to, a running node."""

    name: str
    get: Callable[[Any], str]
    set: Callable[[Any, str], None]


def _server_option(field: str, parse: Callable[[str], Any]) -> Callable[[Any, str], None]:
    def set_(node: Any, raw: str) -> None:
        server = node.server
        server.options = attrs.evolve(server.options, **{field: parse(raw)})
    return set_


def _int_at_least(low: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        if not raw.strip().lstrip("-").isdigit() or int(raw) < low:
            raise ValueError(f"argument must be an integer >= {low}")
        return int(raw)
    return parse


def _set_obuf(node: Any, raw: str) -> None:
    limits = parse_output_limits(raw)
    changes: dict[str, Any] = {}
    for cls, (hard, soft, seconds) in limits.items():
        changes[f"{cls}_output_limit"] = hard
        changes[f"{cls}_soft_limit"] = soft
        changes[f"{cls}_soft_seconds"] = seconds
    node.server.options = attrs.evolve(node.server.options, **changes)


def _get_obuf(node: Any) -> str:
    o = node.server.options
    return format_output_limits(
        (o.normal_output_limit, o.normal_soft_limit, o.normal_soft_seconds),
        (o.pubsub_output_limit, o.pubsub_soft_limit, o.pubsub_soft_seconds))


def _set_policy(node: Any, raw: str) -> None:
    policy = raw.lower()
    if policy not in POLICIES:
        raise ValueError("argument(s) must be one of the following: " + ", ".join(POLICIES))
    node.cluster.memory.configure(policy=policy)


def _set_memory_field(field: str, parse: Callable[[str], int]) -> Callable[[Any, str], None]:
    def set_(node: Any, raw: str) -> None:
        node.cluster.memory.configure(**{field: parse(raw)})
    return set_


LIMITS: dict[str, Limit] = {
    limit.name: limit
    for limit in (
        Limit("maxclients", lambda n: str(n.server.options.max_clients),
              _server_option("max_clients", _int_at_least(1))),
        Limit("timeout", lambda n: str(int(n.server.options.idle_timeout)),
              _server_option("idle_timeout", lambda raw: float(_int_at_least(0)(raw)))),
        Limit("proto-max-bulk-len", lambda n: str(n.server.options.max_bulk_len),
              _server_option("max_bulk_len", parse_memory)),
        Limit("client-query-buffer-limit", lambda n: str(n.server.options.max_query_buffer),
              _server_option("max_query_buffer", parse_memory)),
        Limit("client-output-buffer-limit", _get_obuf, _set_obuf),
        Limit("maxmemory", lambda n: str(n.cluster.memory.maxmemory),
              _set_memory_field("maxmemory", parse_memory)),
        Limit("maxmemory-policy", lambda n: n.cluster.memory.policy, _set_policy),
        Limit("maxmemory-samples", lambda n: str(n.cluster.memory.samples),
              _set_memory_field("samples", _int_at_least(1))),
    )
}
"""Redis name -> Limit, for CONFIG GET/SET (aspen.node_config's [node] holds the start values)."""
