"""The `aspen` command.

    aspen node [--config FILE] [--bind ADDR] [--port N] [--dir PATH]   run one node
    aspen up [--base-port 6379] [--nodes 3] [--dir .aspen]            a local cluster
    aspen status [--http ADDR | --config FILE]                        print the cluster
    aspen keygen ...                                                 CURVE keys for the mesh
    aspen import dump.rdb | redis://host:port [--to HOST:PORT]         load Redis data
    aspen backup FILE [--http ADDR]                                  online backup of a cluster
    aspen restore FILE --config n1.toml [--config n2.toml ...]       a new cluster from a backup

Each subcommand is a `(register, run)` pair in `_SUBCOMMANDS`. Heavy imports
happen inside the runners, so `aspen --help` stays fast and a broken optional module breaks
only its own subcommand.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

from aspen import __version__

_NODE_HELP = """\
Run one Aspen node serving the Redis protocol (RESP2/RESP3) to any Redis client.

Without --config it is a standalone node: a one-node Raft group listening on
127.0.0.1:6379 with its fsynced log and snapshots under ./data (created if missing); every
acknowledged write survives a restart. With --config (a TOML file with [raft], [http],
[peers], [security]; see docs/getting-started.md) it is one member of a cluster.
Command-line options override the config file.

SIGTERM or SIGINT shuts down gracefully: a leader hands leadership to another voter, the
node stops accepting clients, finishes the commands it has received, writes their replies,
closes connections and exits 0.
"""


def _config_keys() -> str:
    """The config file's keys with defaults, generated from aspen.node_config's field metadata."""
    import attrs

    from aspen.node_config import NodeSettings

    def toml(value: object) -> str:
        if value is None:
            return '""'
        if isinstance(value, tuple):  # a Redis-style list setting ("hard soft seconds")
            return '"' + " ".join(str(int(v)) if v == int(v) else str(v) for v in value) + '"'
        return str(value) if isinstance(value, int | float) else f'"{value}"'

    fields = attrs.fields(NodeSettings)
    width = max(len(f"{f.name} = {toml(f.default)}") for f in fields)
    lines = ["config file (TOML), its [node] table and the defaults (the [raft], [http], "
             "[peers] and [security] tables: docs/getting-started.md):", "  [node]"]
    for f in fields:
        lines.append(f"  {f'{f.name} = {toml(f.default)}':<{width}}  # {f.metadata['doc']}")
    return "\n".join(lines)


def _register_node(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "node",
        help="run one node (standalone, or a cluster member with --config)",
        description=_NODE_HELP,
        epilog=_config_keys(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", metavar="FILE", help="TOML config file (see aspen/node_config.py)")
    p.add_argument("--bind", metavar="ADDR", help="address for Redis clients (127.0.0.1)")
    p.add_argument("--port", metavar="N", type=int, help="port for Redis clients (6379; 0: any)")
    p.add_argument("--dir", metavar="PATH", help="data directory (./data)")


def _run_node(args: argparse.Namespace) -> int:
    from pathlib import Path

    from aspen.node_config import Config, ConfigError, load_config

    try:
        config = load_config(args.config) if args.config else Config()
        config = config.with_overrides(
            bind=args.bind, port=args.port, dir=str(Path(args.dir)) if args.dir else None
        )
        config.cluster_settings()  # the runtime's own checks, reported the same way
        config.curve()  # key files readable and matching
    except ConfigError as exc:
        print(f"aspen node: config error: {exc}", file=sys.stderr)
        return 2
    from aspen.daemon import run_node

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


def _register_up(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "up",
        help="run a local cluster (3 daemons) until Ctrl-C",
        description="Generate configs under DIR (default ./.aspen), start one `aspen node` "
        "daemon per member, bootstrap them as one cluster and print how to connect. Data "
        "persists in DIR/nN: running `aspen up` again brings the same cluster back. Ctrl-C "
        "stops every daemon gracefully.",
    )
    p.add_argument("--base-port", type=int, default=6379, metavar="N",
                   help="RESP ports are N, N+1, ... (HTTP: N+1000+i, raft: N+2000+i)")
    p.add_argument("--nodes", type=int, default=3, metavar="K", help="cluster size (3)")
    p.add_argument("--dir", default=".aspen", metavar="PATH", help="configs and data (.aspen)")
    from aspen.node_config import RaftSettings

    tick = RaftSettings().tick_ms
    p.add_argument("--tick-ms", type=int, default=tick, metavar="MS", help=f"Raft tick ({tick})")


def _run_up(args: argparse.Namespace) -> int:
    return run_up(args.base_port, args.nodes, args.dir, args.tick_ms)


def up_members(base_port: int, n: int) -> list[Any]:
    from aspen.node_config import LocalMember

    return [LocalMember(i, base_port + i - 1, base_port + 1000 + i - 1, base_port + 2000 + i - 1)
            for i in range(1, n + 1)]


def run_up(base_port: int, n: int, directory: str, tick_ms: int) -> int:
    """`aspen up`: n child daemons; Ctrl-C (or SIGTERM) stops them all and exits 0."""
    import signal
    import subprocess
    import time
    from pathlib import Path

    from aspen.node_config import render_local_config
    from aspen.provision import curve_security

    if not 1 <= n <= 9 or not 1 <= base_port <= 65535 - 2000 - n:
        print("aspen up: --nodes must be 1-9 and --base-port leave room for +2000+nodes",
              file=sys.stderr)
        return 2
    root = Path(directory).resolve()
    root.mkdir(parents=True, exist_ok=True)
    members = up_members(base_port, n)
    # The mesh is authenticated even on loopback: CURVE keys made once, kept across restarts.
    security = curve_security(root, members, renew=False) if n > 1 else {}
    for m in members:
        (root / f"n{m.id}.toml").write_text(
            render_local_config(m, members, f"n{m.id}", raft={"tick_ms": tick_ms},
                                security=security.get(m.id))
        )
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    procs: dict[int, subprocess.Popen[bytes]] = {}
    try:
        for m in members:
            log = (root / f"n{m.id}.log").open("ab")
            procs[m.id] = subprocess.Popen(
                [sys.executable, "-m", "aspen.cli", "node", "--config",
                 str(root / f"n{m.id}.toml")],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches us only; we stop the children in order
            )
            log.close()
        leader = _wait_up(members, procs, lambda: stopping)
        if leader is None:
            return 0 if stopping else 1
        first = members[0]
        print(f"aspen: a {n}-node cluster is up (leader: node {leader}); configs, data and logs "
              f"in {root}")
        for m in members:
            print(f"  node {m.id}: redis-cli -p {m.resp}    http://127.0.0.1:{m.http}/status")
        print(f"try:  redis-cli -p {first.resp} SET hello world   then   "
              f"redis-cli -p {members[-1].resp} GET hello")
        print(f"      aspen status --http 127.0.0.1:{first.http}")
        print("Ctrl-C stops the cluster.", flush=True)
        while not stopping:
            time.sleep(0.2)
            for i, p in list(procs.items()):
                if p.poll() is not None and not stopping:
                    print(f"aspen up: node {i} exited with {p.returncode}; see {root}/n{i}.log",
                          file=sys.stderr, flush=True)
                    del procs[i]
            if not procs:
                return 1
        print("aspen up: stopping the cluster", flush=True)
        return 0
    finally:
        _stop_children(list(procs.values()))


def _wait_up(members: list[Any], procs: dict[int, Any], stopping: Callable[[], bool]) -> int | None:
    """Wait (at most 60 s) for every node to answer and a leader to be known."""
    import json
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not stopping():
        for i, p in procs.items():
            if p.poll() is not None:
                print(f"aspen up: node {i} exited with {p.returncode} while starting",
                      file=sys.stderr)
                return None
        leaders = set()
        try:
            for m in members:
                url = f"http://127.0.0.1:{m.http}/health"
                try:
                    with urllib.request.urlopen(url, timeout=1) as resp:
                        leaders.add(json.loads(resp.read())["leader"])
                except urllib.error.HTTPError:
                    leaders.add(None)
        except OSError:
            leaders.add(None)
        if len(leaders) == 1 and None not in leaders:
            return int(leaders.pop())
        time.sleep(0.2)
    if not stopping():
        print("aspen up: the cluster did not come up within 60 s (see the logs)", file=sys.stderr)
    return None


def _stop_children(procs: list[Any]) -> None:
    import signal
    import subprocess

    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def _register_status(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "status",
        help="print the cluster: ids, roles, term, leader, commit/applied index, lag",
        description="Ask a node's HTTP control plane (and the peers it knows) for their "
        "Raft status and print one line per node.",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument("--http", metavar="ADDR", help="a node's HTTP address (127.0.0.1:7379)")
    g.add_argument("--config", metavar="FILE", help="a node's config file (uses [http] listen)")
    p.add_argument("--password", metavar="PW", help="the cluster's requirepass, if any")
    p.add_argument("--json", action="store_true", help="print the raw status documents")


def _run_status(args: argparse.Namespace) -> int:
    from aspen.api.status import run_status

    return run_status(args.http, args.config, args.password, args.json)


def _register_import(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "import",
        help="load an RDB file or a live redis-server into a running cluster",
        description="Load every key of a redis-server RDB file (Redis 6.2/7.0/7.2), or of a "
        "live redis-server (redis://[user:password@]host:port[/db], by SCAN + DUMP + PTTL), "
        "into a running Aspen cluster through its Raft log (RESTORE ... ABSTTL REPLACE in "
        "pipelined batches), with TTLs and function libraries. Keys of a type Aspen cannot "
        "hold (streams, modules) stop the import unless --skip-unsupported. "
        "See docs/migration.md.",
    )
    p.add_argument("source", help="an RDB file, or redis://host:port")
    p.add_argument("--to", default="127.0.0.1:6379", metavar="HOST:PORT",
                   help="any node of the cluster, its RESP address (127.0.0.1:6379)")
    p.add_argument("--password", metavar="PW", help="the cluster's requirepass, if any")
    p.add_argument("--batch", type=int, default=500, metavar="N",
                   help="keys per pipelined batch (500)")
    p.add_argument("--skip-unsupported", action="store_true",
                   help="skip (and name) keys of types Aspen cannot hold instead of stopping")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_import(args: argparse.Namespace) -> int:
    from aspen.rdb.subcommands import run_import

    return run_import(args)


def _register_backup(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "backup",
        help="take a consistent online backup of a running cluster",
        description="Ask a node (its HTTP control plane) for a Raft snapshot of the cluster's "
        "state at a committed index, taken without stopping writes, and write it with its "
        "index and term to FILE. See docs/backup.md.",
    )
    p.add_argument("file", help="where to write the backup")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--http", metavar="ADDR", help="a node's HTTP address (127.0.0.1:7379)")
    g.add_argument("--config", metavar="FILE", help="a node's config file (uses [http] listen)")
    p.add_argument("--password", metavar="PW", help="the cluster's requirepass, if any")


def _run_backup(args: argparse.Namespace) -> int:
    from aspen.rdb.subcommands import run_backup

    return run_backup(args)


def _register_restore(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "restore",
        help="build a new cluster's data directories from a backup",
        description="Write the backup's snapshot into the (empty) data directory of every "
        "node given by --config, with the configs' voters as the membership. Then start the "
        "nodes: they come up holding the backup's data. See docs/backup.md.",
    )
    p.add_argument("file", help="a file written by `aspen backup`")
    p.add_argument("--config", metavar="FILE", action="append", required=True,
                   help="a node's config file; repeat for every node of the new cluster")


def _run_restore(args: argparse.Namespace) -> int:
    from aspen.rdb.subcommands import run_restore

    return run_restore(args)


Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]
_SUBCOMMANDS: dict[str, tuple[Register, Callable[[argparse.Namespace], int]]] = {
    "node": (_register_node, _run_node),
    "up": (_register_up, _run_up),
    "status": (_register_status, _run_status),
    "keygen": (_register_keygen, _run_keygen),
    "import": (_register_import, _run_import),
    "backup": (_register_backup, _run_backup),
    "restore": (_register_restore, _run_restore),
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
        if "--cluster" in argv:
            from aspen.provision import cluster_main

            return cluster_main(argv[1:])
        # Hand everything after "keygen" (including --help) to the transport's parser.
        return _run_keygen(argparse.Namespace(rest=argv[1:]))
    args = parser.parse_args(argv)
    _, run = _SUBCOMMANDS[args.command]
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
