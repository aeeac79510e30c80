"""Node configuration: a TOML file -> frozen attrs classes, validated with errors naming the key.

    [node]
    bind = "127.0.0.1"            # address for Redis clients
    port = 6379                   # 0: any free port (the start-up log line names it)
    dir = "data"                  # relative paths are relative to the config file
    requirepass = "s3cret"        # clients must AUTH; "" or absent: no password
    max_clients = 10000           # Redis maxclients
    timeout = 0                   # close clients idle this many seconds; 0: never
    proto_max_bulk_len = "512mb"  # largest bulk string a client may send (bytes or "64mb")
    max_argv = 2147483647         # most arguments in one command (Redis 7.0: INT_MAX)
    client_query_buffer_limit = "1gb"  # a client whose partial command outgrows this is closed
    max_output_buffer = "1gb"     # unsent replies beyond this pause reading that client
    shutdown_grace = 5.0          # SIGTERM: seconds to finish in-flight work before closing

Every section is an attrs class whose fields carry a checker in their metadata; `load_config`
walks the sections generically, so a later section ([cluster], [raft], [http], [transport],
[security]) is one new class plus one line in `_SECTIONS`. Unknown sections and keys are
refused: a typo must not silently become a default.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

__all__ = ["Config", "ConfigError", "NodeSettings", "load_config", "parse_config"]


class ConfigError(ValueError):
    """A configuration problem, worded for the operator: "node.port: must be ..."."""


class _Invalid(Exception):
    """Raised by a checker; the loader prefixes the key and appends the offending value."""


Checker = Callable[[Any], Any]


def _setting(default: Any, check: Checker, doc: str) -> Any:
    return attrs.field(default=default, metadata={"check": check, "doc": doc})


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_range(low: int, high: int, what: str | None = None) -> Checker:
    def check(value: Any) -> int:
        if not _is_int(value) or not low <= value <= high:
            raise _Invalid(what or f"must be an integer {low}-{high}")
        return int(value)

    return check


_port_range = _int_range(0, 65535, "must be an integer 1-65535 (or 0: any free port)")


def _port(value: Any) -> int:
    port: int = _port_range(value)
    return port


def _seconds(value: Any) -> float:
    if not (_is_int(value) or isinstance(value, float)) or not 0 <= value < 10**9:
        raise _Invalid("must be a number of seconds >= 0")
    return float(value)


def _nonempty_str(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Invalid("must be a non-empty string")
    return value


def _optional_password(value: Any) -> str | None:
    if not isinstance(value, str):
        raise _Invalid("must be a string")
    if any(c in value for c in "\r\n\x00"):
        raise _Invalid("must not contain CR, LF or NUL")
    return value or None


def _path(value: Any) -> Path:
    if not isinstance(value, str) or not value:
        raise _Invalid("must be a path string")
    return Path(value)


_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2,
          "g": 1000**3, "gb": 1024**3}
_MEMORY = re.compile(r"^\s*(\d+)\s*([a-z]*)\s*$", re.IGNORECASE)


def _memory(low: int, high: int) -> Checker:
    """Bytes as an integer or Redis's memory units ("512mb", "1gb", "64k")."""

    def check(value: Any) -> int:
        number: int | None = None
        if _is_int(value):
            number = int(value)
        elif isinstance(value, str) and (m := _MEMORY.match(value)):
            unit = _UNITS.get(m.group(2).lower())
            if unit is not None:
                number = int(m.group(1)) * unit
        if number is None or not low <= number <= high:
            raise _Invalid(f"must be a size in bytes {low}-{high} (or like \"512mb\")")
        return number

    return check


@attrs.frozen
class NodeSettings:
    """[node]: where this node listens for Redis clients, its data directory, client limits."""

    bind: str = _setting("127.0.0.1", _nonempty_str, "address for Redis clients")
    port: int = _setting(6379, _port, "TCP port for Redis clients")
    dir: Path = _setting(Path("data"), _path, "data directory")  # noqa: RUF009 (immutable)
    requirepass: str | None = _setting(None, _optional_password, "password clients must AUTH")
    max_clients: int = _setting(10000, _int_range(1, 1_000_000), "most client connections")
    timeout: float = _setting(0.0, _seconds, "close idle clients after this; 0: never")
    proto_max_bulk_len: int = _setting(
        512 * 1024 * 1024, _memory(1, 2**63 - 1), "largest bulk string a client may send"
    )
    max_argv: int = _setting(2**31 - 1, _int_range(1, 2**31 - 1), "most arguments in one command")
    client_query_buffer_limit: int = _setting(
        1024**3, _memory(1024 * 1024, 2**63 - 1), "largest partial command a client may hold"
    )
    max_output_buffer: int = _setting(
        1024**3, _memory(64 * 1024, 2**63 - 1), "unsent replies that pause reading a client"
    )
    shutdown_grace: float = _setting(5.0, _seconds, "seconds to drain clients on SIGTERM")


@attrs.frozen
class Config:
    """The whole configuration of one node."""

    node: NodeSettings = NodeSettings()
    source: Path | None = None  # the file it came from, if any

    def with_overrides(self, **node_fields: Any) -> Config:
        """Apply command-line overrides (already typed) to [node], validating them the same way."""
        changes = {}
        fields = attrs.fields_dict(NodeSettings)
        for key, value in node_fields.items():
            if value is None:
                continue
            changes[key] = _check("node", key, fields[key], value)
        return attrs.evolve(self, node=attrs.evolve(self.node, **changes))

    def redis_settings(self) -> list[tuple[bytes, bytes]]:
        """CONFIG GET's view: Redis's names for the settings that exist here."""
        n = self.node
        pairs = [
            ("bind", n.bind),
            ("port", str(n.port)),
            ("dir", str(n.dir.resolve())),
            ("requirepass", n.requirepass or ""),
            ("maxclients", str(n.max_clients)),
            ("timeout", str(int(n.timeout))),
            ("proto-max-bulk-len", str(n.proto_max_bulk_len)),
            ("client-query-buffer-limit", str(n.client_query_buffer_limit)),
            # Facts rather than settings: a single node has no persistence yet.
            ("appendonly", "no"),
            ("save", ""),
            ("databases", "1"),
        ]
        return [(k.encode(), v.encode()) for k, v in pairs]


_SECTIONS: dict[str, type] = {"node": NodeSettings}


def _show(value: object) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a table"
    return repr(value)


def _check(section: str, key: str, field: attrs.Attribute[Any], value: Any) -> Any:
    try:
        return field.metadata["check"](value)
    except _Invalid as exc:
        raise ConfigError(f"{section}.{key}: {exc}, got {_show(value)}") from None


def _load_section(name: str, cls: type, table: Any) -> Any:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{name}: must be a table ([{name}]), got {_show(table)}")
    fields = attrs.fields_dict(cls)
    unknown = sorted(set(table) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields))
        raise ConfigError(f"{name}.{unknown[0]}: unknown key (known keys: {known})")
    values = {key: _check(name, key, fields[key], value) for key, value in table.items()}
    return cls(**values)


def parse_config(data: Mapping[str, Any], base_dir: Path | None = None) -> Config:
    """Validate an already-parsed TOML document; relative `dir` is taken from `base_dir`."""
    unknown = sorted(set(data) - set(_SECTIONS))
    if unknown:
        known = ", ".join(f"[{s}]" for s in _SECTIONS)
        raise ConfigError(f"{unknown[0]}: unknown section (known sections: {known})")
    sections = {name: _load_section(name, cls, data.get(name, {})) for name, cls in
                _SECTIONS.items()}
    node: NodeSettings = sections["node"]
    if base_dir is not None and not node.dir.is_absolute():
        node = attrs.evolve(node, dir=base_dir / node.dir)
    return Config(node=node)


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config file."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return attrs.evolve(parse_config(data, base_dir=path.parent), source=path)
