"""The runners of `aspen import`, `aspen backup` and `aspen restore` (parsers: aspen/cli.py)."""

from __future__ import annotations

import argparse
import ssl
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--to must be HOST:PORT, got {text!r}")
    return host, int(port)


def run_import(args: argparse.Namespace) -> int:
    from aspen.rdb.client import ReplyError, RespConnection, RespError
    from aspen.rdb.importer import ImportError_, import_file, import_live, parse_url, summary
    from aspen.rdb.reader import RdbError

    try:
        host, port = _address(args.to)
        with RespConnection(host, port) as conn:
            if args.password:
                conn.call(b"AUTH", args.password)
            out = None if args.quiet else sys.stderr
            if args.source.startswith("redis://") or "://" in args.source:
                counts = import_live(parse_url(args.source), conn, batch=args.batch,
                                     skip_unsupported=args.skip_unsupported, progress_out=out)
            else:
                counts = import_file(Path(args.source), conn, batch=args.batch,
                                     skip_unsupported=args.skip_unsupported, progress_out=out)
    except (ImportError_, RdbError, RespError, ReplyError, ValueError, OSError) as exc:
        print(f"aspen import: {exc}", file=sys.stderr)
        return 1
    print(f"aspen import: {summary(counts)}")
    return 0


def _http_target(args: argparse.Namespace) -> tuple[str, str | None, ssl.SSLContext | None]:
    password = args.password
    if args.config:
        from aspen.node_config import load_config
        from aspen.tls import https_client_context

        cfg = load_config(args.config)
        if not cfg.http.listen:
            raise ValueError(f"{args.config} has no [http] listen address")
        return cfg.http.listen, password or cfg.node.requirepass, https_client_context(cfg.tls)
    return args.http or "127.0.0.1:7379", password, None


def fetch_backup(address: str, password: str | None, tls: ssl.SSLContext | None = None,
                 timeout: float = 600.0) -> bytes:
    headers = {"authorization": f"Bearer {password}"} if password else {}
    scheme = "https" if tls is not None else "http"
    req = urllib.request.Request(f"{scheme}://{address}/backup", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=tls) as resp:
            body: bytes = resp.read()
            return body
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace").strip()
        raise OSError(f"{address}: HTTP {exc.code}: {detail}") from None


def run_backup(args: argparse.Namespace) -> int:
    from aspen.backup import BackupError, decode_backup
    from aspen.node_config import ConfigError

    started = time.monotonic()
    try:
        address, password, tls = _http_target(args)
        blob = fetch_backup(address, password, tls)
        backup = decode_backup(blob)  # check it before keeping it
        path = Path(args.file)
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(blob)
        tmp.replace(path)
    except (BackupError, ConfigError, OSError, ValueError) as exc:
        print(f"aspen backup: {exc}", file=sys.stderr)
        return 1
    print(f"aspen backup: {path}: index {backup.index}, term {backup.term}, {len(blob)} bytes, "
          f"from node {backup.header['node']} in {time.monotonic() - started:.1f} s")
    return 0


def run_restore(args: argparse.Namespace) -> int:
    from aspen.backup import BackupError, decode_backup, restore_into
    from aspen.node_config import ConfigError, load_config

    started = time.monotonic()
    try:
        backup = decode_backup(Path(args.file).read_bytes())
        targets = []
        for name in args.config:
            cfg = load_config(name)
            targets.append((cfg.node.id, cfg.node.dir, cfg.raft.storage))
        ids = [t[0] for t in targets]
        if len(set(ids)) != len(ids):
            raise BackupError(f"two configs have the same node id: {sorted(ids)}")
        restore_into(backup, targets)
    except (BackupError, ConfigError, OSError, ValueError) as exc:
        print(f"aspen restore: {exc}", file=sys.stderr)
        return 1
    print(f"aspen restore: index {backup.index}, term {backup.term} written for nodes "
          f"{sorted(ids)} in {time.monotonic() - started:.1f} s; start them with "
          "`aspen node --config ...`")
    return 0
