"""The `aspen` command.

    aspen node [--config FILE] [--bind ADDR] [--port N] [--dir PATH]   run one node
    aspen keygen ...                                                 CURVE keys for the mesh

Each subcommand is a `(register, run)` pair in `_SUBCOMMANDS`; `up` and `status` (the local
cluster and its view) slot in the same way once the cluster runtime exists. Heavy imports
happen inside the runners, so `aspen --help` stays fast and a broken optional module breaks
only its own subcommand.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from aspen import __version__

_NODE_HELP = """\
Run one Aspen node serving the Redis protocol (RESP2/RESP3) to any Redis client.

Without --config it listens on 127.0.0.1:6379 and uses ./data as its data directory
(created if missing). Command-line options override the config file.

Today a node is standalone and keeps its keyspace in memory only: nothing is written to the
data directory yet and all keys are lost when the node stops. Durability (a replicated,
fsynced Raft log and snapshots) arrives with the cluster runtime.

SIGTERM or SIGINT shuts down gracefully: the node stops accepting clients, finishes the
commands it has received, writes their replies, closes connections and exits 0.
"""


def _config_keys() -> str:
    """The config file's keys with defaults, generated from aspen.config's field metadata."""
    import attrs

    from aspen.config import NodeSettings

    def toml(value: object) -> str:
        if value is None:
            return '""'
        return str(value) if isinstance(value, int | float) else f'"{value}"'

    fields = attrs.fields(NodeSettings)
    width = max(len(f"{f.name} = {toml(f.default)}") for f in fields)
    lines = ["config file (TOML), its [node] table and the defaults:", "  [node]"]
    for f in fields:
        lines.append(f"  {f'{f.name} = {toml(f.default)}':<{width}}  # {f.metadata['doc']}")
    return "\n".join(lines)


def _register_node(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "node",
        help="run one node (standalone, in-memory for now)",
        description=_NODE_HELP,
        epilog=_config_keys(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", metavar="FILE", help="TOML config file (see aspen/config.py)")
    p.add_argument("--bind", metavar="ADDR", help="address for Redis clients (127.0.0.1)")
    p.add_argument("--port", metavar="N", type=int, help="port for Redis clients (6379; 0: any)")
    p.add_argument("--dir", metavar="PATH", help="data directory (./data)")


def _run_node(args: argparse.Namespace) -> int:
    from pathlib import Path

    from aspen.config import Config, ConfigError, load_config

    try:
        config = load_config(args.config) if args.config else Config()
        config = config.with_overrides(
            bind=args.bind, port=args.port, dir=str(Path(args.dir)) if args.dir else None
        )
    except ConfigError as exc:
        print(f"aspen node: config error: {exc}", file=sys.stderr)
        return 2
    from aspen.node import run_node

    try:
        return run_node(config)
    except OSError as exc:  # e.g. the port is taken
        print(f"aspen node: {exc}", file=sys.stderr)
        return 1


def _register_keygen(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "keygen",
        help="write a CURVE keypair for a node's peer transport",
        add_help=False,  # `aspen keygen --help` is answered by the transport's own parser
    )
    p.add_argument("rest", nargs=argparse.REMAINDER)


def _run_keygen(args: argparse.Namespace) -> int:
    try:
        curve = importlib.import_module("transports.curve")
    except ImportError as exc:
        print(f"aspen keygen: the CURVE transport is not available ({exc})", file=sys.stderr)
        return 1
    keygen_main: Callable[[list[str]], int] | None = getattr(curve, "keygen_main", None)
    if keygen_main is None:
        print("aspen keygen: transports.curve has no keygen_main yet", file=sys.stderr)
        return 1
    return keygen_main(list(args.rest))


Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]
_SUBCOMMANDS: dict[str, tuple[Register, Callable[[argparse.Namespace], int]]] = {
    "node": (_register_node, _run_node),
    "keygen": (_register_keygen, _run_keygen),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aspen",
        description="Aspen: a Raft-replicated key-value store that speaks the Redis protocol.",
    )
    parser.add_argument("--version", action="version", version=f"aspen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for register, _ in _SUBCOMMANDS.values():
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv[:1] == ["keygen"]:
        # Hand everything after "keygen" (including --help) to the transport's parser.
        return _run_keygen(argparse.Namespace(rest=argv[1:]))
    args = parser.parse_args(argv)
    _, run = _SUBCOMMANDS[args.command]
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
