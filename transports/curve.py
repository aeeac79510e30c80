"""CURVE keys and the ZAP handler that admits only configured peers.

ZeroMQ's CURVE *fails open*: a CURVE server with no ZAP handler accepts any client key. So the
ZeroMQ transport starts `run_zap_handler` as a task in its nursery *before* it binds, and the
handler never returns: if it dies, the exception tears down the transport (and the node).
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import trio
import zmq
from zmq.utils import z85

from transports.refusals import RefusalLog
from transports.settings import CurveConfig, NodeId
from transports.stats import TransportStats
from transports.zmq_io import POLLIN, close_socket, wait_for

log = logging.getLogger("aspen.transports.curve")

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
ZAP_DOMAIN = b"aspen"


def keygen_main(argv: list[str]) -> int:
    """``aspen keygen``: write ``NAME.key`` (public) and ``NAME.key_secret`` (mode 0600)."""
    parser = argparse.ArgumentParser(
        prog="aspen keygen", description="Write a CURVE keypair for one node's peer transport."
    )
    parser.add_argument("--dir", default=".", help="output directory (default: .)")
    parser.add_argument("--name", default="node", help="file name stem (default: node)")
    parser.add_argument("--force", action="store_true", help="overwrite existing key files")
    args = parser.parse_args(argv)
    out = Path(args.dir)
    try:
        write_keypair(out, args.name, force=args.force)
    except FileExistsError as exc:
        print(f"aspen keygen: {exc.filename} exists (use --force)", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"aspen keygen: {exc}", file=sys.stderr)
        return 1
    print(f"public key: {out / f'{args.name}.key'}")
    print(f"secret key: {out / f'{args.name}.key_secret'}")
    return 0


def write_keypair(out: Path, name: str, *, force: bool = False) -> bytes:
    """Write `out/NAME.key` (public) and `out/NAME.key_secret` (mode 0600); the public key.

    FileExistsError (naming the file) if either exists and not `force`."""
    public_path = out / f"{name}.key"
    secret_path = out / f"{name}.key_secret"
    if not force:
        for path in (public_path, secret_path):
            if path.exists():
                raise FileExistsError(errno.EEXIST, "exists", str(path))
    public, secret = zmq.curve_keypair()
    out.mkdir(parents=True, exist_ok=True)
    _write(secret_path, b"# aspen CURVE secret key: keep private\n" + secret + b"\n", 0o600)
    _write(public_path, b"# aspen CURVE public key\n" + public + b"\n", 0o644)
    return bytes(public)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Create with the final mode (no window where a secret is world-readable)."""
    if path.exists():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)  # the umask may have narrowed it; make it exact
    finally:
        os.close(fd)


def load_key(path: str | os.PathLike[str]) -> bytes:
    """Read a key file written by `keygen_main` (the first non-comment line, Z85)."""
    for line in Path(path).read_bytes().splitlines():
        line = line.strip()
        if line and not line.startswith(b"#"):
            if len(line) != 40:
                break
            z85.decode(line)  # raises on a bad alphabet
            return line
    raise ValueError(f"{path}: no 40-character Z85 key found")


def load_curve_config(
    public_key: str | os.PathLike[str],
    secret_key: str | os.PathLike[str],
    peer_keys: Mapping[NodeId, str | os.PathLike[str] | bytes],
) -> CurveConfig:
    """Build a `CurveConfig` from key files (as `keygen_main` writes them); a peer's key may
    also be given inline as its 40-character Z85 text."""
    peers: dict[NodeId, bytes] = {}
    for peer, key in peer_keys.items():
        peers[peer] = key if isinstance(key, bytes) else load_key(key)
    secret = load_key(secret_key)
    public = load_key(public_key)
    if zmq.curve_public(secret) != public:
        raise ValueError(f"{public_key} is not the public half of {secret_key}")
    return CurveConfig(public, secret, peers)


async def run_zap_handler(
    ctx: zmq.Context[zmq.Socket[bytes]],
    lookup: Callable[[bytes], NodeId | None],
    stats: TransportStats,
    refusals: RefusalLog | None = None,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Answer ZAP requests (RFC 27): admit a CURVE client iff ``lookup(its Z85 key)`` names a
    node; the admitted node id becomes the connection's User-Id. Refusals are counted and
    logged through ``refusals`` (rate-limited, shared with the transport's other refusals)."""
    refused = refusals if refusals is not None else RefusalLog(logger=log)
    sock = ctx.socket(zmq.REP)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.bind(ZAP_ENDPOINT)
        task_status.started()
        while True:
            await wait_for(sock, POLLIN)
            while True:
                try:
                    request = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                sock.send_multipart(_answer(request, lookup, stats, refused), zmq.NOBLOCK)
    finally:
        close_socket(sock)


def _answer(
    request: list[bytes],
    lookup: Callable[[bytes], NodeId | None],
    stats: TransportStats,
    refusals: RefusalLog,
) -> list[bytes]:
    if len(request) < 6:
        stats.auth_refused += 1
        refusals.warn("ZAP: malformed request refused")
        return [b"1.0", request[1] if len(request) > 1 else b"", b"500", b"malformed", b"", b""]
    version, request_id, _domain, address, _identity, mechanism, *credentials = request
    node: NodeId | None = None
    key = b"?"
    curve_ok = version == b"1.0" and mechanism == b"CURVE" and len(credentials) == 1
    if curve_ok and len(credentials[0]) == 32:
        key = z85.encode(credentials[0])
        node = lookup(key)
    if node is None:
        stats.auth_refused += 1
        refusals.warn(
            "refused peer connection from %s: %s key %s is not a configured peer",
            address.decode(errors="replace"),
            mechanism.decode(errors="replace"),
            key.decode(errors="replace"),
        )
        return [b"1.0", request_id, b"400", b"unknown key", b"", b""]
    return [b"1.0", request_id, b"200", b"OK", str(node).encode(), b""]
