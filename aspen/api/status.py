"""`aspen status`: ask nodes' control planes for their Raft status and print a table."""

from __future__ import annotations

import json
import ssl
import sys
import urllib.error
import urllib.request
from typing import Any

__all__ = ["fetch_status", "format_table", "run_status"]


def fetch_status(
    address: str, password: str | None = None, timeout: float = 3.0,
    tls: ssl.SSLContext | None = None,
) -> dict[str, Any]:
    """GET /status from one node (HTTPS with `tls`); raises OSError / ValueError with a
    readable message."""
    headers = {"authorization": f"Bearer {password}"} if password else {}
    scheme = "https" if tls is not None else "http"
    req = urllib.request.Request(f"{scheme}://{address}/status", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=tls) as resp:
            body: dict[str, Any] = json.loads(resp.read())
            return body
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace").strip()
        raise OSError(f"{address}: HTTP {exc.code}: {detail}") from None


def gather(
    address: str, password: str | None, tls: ssl.SSLContext | None = None
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Status of the node at `address` and of every peer whose HTTP address it knows."""
    found: dict[str, dict[str, Any]] = {}
    errors: list[str] = []
    todo = [address]
    seen: set[str] = set()
    while todo:
        addr = todo.pop(0)
        if addr in seen:
            continue
        seen.add(addr)
        try:
            st = fetch_status(addr, password, tls=tls)
        except (OSError, ValueError) as exc:
            errors.append(f"{addr}: unreachable ({exc})")
            continue
        st["http"] = addr
        found[str(st["id"])] = st
        todo += [a for a in st.get("peer_http", {}).values() if a not in seen]
    return found, errors


def format_table(nodes: dict[str, dict[str, Any]]) -> str:
    header = ("ID", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "LAG", "HTTP")
    rows = [header]
    leaders = [st for st in nodes.values() if st["role"] == "leader"]
    leader_last = max((st["last_index"] for st in leaders), default=None)
    for key in sorted(nodes, key=int):
        st = nodes[key]
        lag = "-" if leader_last is None else str(max(leader_last - st["applied_index"], 0))
        rows.append((str(st["id"]), st["role"], str(st["term"]), str(st["leader"] or "-"),
                     str(st["commit_index"]), str(st["applied_index"]), lag, st["http"]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    if leaders:
        m = leaders[0]["membership"]
        lines.append(f"voters: {m['voters']}  learners: {m['learners']}"
                     + ("  (joint consensus)" if m["joint"] else ""))
    else:
        lines.append("no leader among the nodes that answered")
    return "\n".join(lines)


def run_status(http: str | None, config: str | None, password: str | None, as_json: bool) -> int:
    tls: ssl.SSLContext | None = None
    if config:
        from aspen.node_config import ConfigError, load_config

        try:
            cfg = load_config(config)
        except ConfigError as exc:
            print(f"aspen status: config error: {exc}", file=sys.stderr)
            return 2
        if not cfg.http.listen:
            print(f"aspen status: {config} has no [http] listen address", file=sys.stderr)
            return 2
        http = cfg.http.listen
        password = password or cfg.node.requirepass
        from aspen.tls import https_client_context

        tls = https_client_context(cfg.tls)
    nodes, errors = gather(http or "127.0.0.1:7379", password, tls)
    for err in errors:
        print(f"aspen status: {err}", file=sys.stderr)
    if not nodes:
        return 1
    print(json.dumps(nodes, indent=2, sort_keys=True) if as_json else format_table(nodes))
    return 0
