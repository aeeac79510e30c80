"""Configs for a new cluster that is authenticated from its first start.

`aspen keygen --cluster HOST ...` writes, for each member, a config (`nI.toml`) and a CURVE
keypair (`nI.key`, `nI.key_secret`); every config carries the other members' public keys inline
and one generated client password, so copying `nI.*` to host I is the whole set-up. `aspen up`
gives its local cluster CURVE keys the same way (kept across restarts).
"""

from __future__ import annotations

import argparse
import secrets
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from aspen.node_config import LocalMember, render_local_config
from transports.curve import load_key, write_keypair


def cluster_members(hosts: list[str], base_port: int) -> list[LocalMember]:
    """One member per host; members sharing a host get consecutive ports."""
    seen: Counter[str] = Counter()
    members = []
    for i, host in enumerate(hosts, start=1):
        k = seen[host]
        seen[host] += 1
        members.append(LocalMember(i, base_port + k, base_port + 1000 + k, base_port + 2000 + k,
                                   host))
    return members


def curve_security(root: Path, members: list[LocalMember], *, renew: bool) -> dict[int, Any]:
    """Each member's [security] CURVE settings, with keypairs made under `root` (kept when
    they exist, unless `renew`)."""
    public: dict[int, str] = {}
    for m in members:
        name = f"n{m.id}"
        if renew or not (root / f"{name}.key").exists():
            write_keypair(root, name, force=True)
        public[m.id] = load_key(root / f"{name}.key").decode()
    return {
        m.id: {
            "curve_public_key": f"n{m.id}.key",
            "curve_secret_key": f"n{m.id}.key_secret",
            "curve_peer_keys": {j: key for j, key in public.items() if j != m.id},
        }
        for m in members
    }


def cluster_main(argv: list[str]) -> int:
    """`aspen keygen --cluster HOST [HOST ...]`."""
    parser = argparse.ArgumentParser(
        prog="aspen keygen --cluster",
        description="Write configs and CURVE keys for a new cluster, one member per HOST "
        "(its address on the network), with a generated client password.",
    )
    parser.add_argument("--cluster", nargs="+", required=True, metavar="HOST")
    parser.add_argument("--dir", default="cluster", help="output directory (default: cluster)")
    parser.add_argument("--base-port", type=int, default=6379, metavar="N",
                        help="RESP port N, HTTP N+1000, raft N+2000 (default 6379)")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    args = parser.parse_args(argv)
    if not 1 <= args.base_port <= 65535 - 2000 - len(args.cluster):
        print("aspen keygen: --base-port leaves no room for +2000", file=sys.stderr)
        return 2
    out = Path(args.dir)
    members = cluster_members(args.cluster, args.base_port)
    configs = [out / f"n{m.id}.toml" for m in members]
    existing = [p for p in configs if p.exists()]
    if existing and not args.force:
        print(f"aspen keygen: {existing[0]} exists (use --force)", file=sys.stderr)
        return 1
    password = secrets.token_urlsafe(24)
    try:
        out.mkdir(parents=True, exist_ok=True)
        security = curve_security(out, members, renew=True)
        for m, path in zip(members, configs, strict=True):
            path.write_text(render_local_config(
                m, members, f"n{m.id}", security={"requirepass": password, **security[m.id]}))
            path.chmod(0o600)  # it holds the client password
    except OSError as exc:
        print(f"aspen keygen: {exc}", file=sys.stderr)
        return 1
    for m in members:
        print(f"node {m.id} on {m.host}: copy {out}/n{m.id}.toml, n{m.id}.key, "
              f"n{m.id}.key_secret; run `aspen node --config n{m.id}.toml`")
    print(f"clients: redis-cli -h {members[0].host} -p {members[0].resp} -a <requirepass in "
          f"the configs>")
    return 0
