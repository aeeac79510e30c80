"""The control plane: cluster operations behind HTTP routes and ASPEN.* RESP commands.

One `ControlPlane` per node holds the operations (init, add-learner, change-membership,
transfer-leader, status, write, read); `routes()` exposes them over HTTP with JSON bodies in
the shape of openraft's raft-kv example, and the RESP side (aspen/daemon.py) calls the same
methods. Leader-only operations on a follower are proxied to the leader's HTTP address when
the config knows it (`[peers] N = { raft = ..., http = ... }`), otherwise they fail with the
leader's id so the operator can retry there.

HTTP (bodies are JSON objects; every error is `{"error": "..."}` with a 4xx/5xx status):

    GET  /health                -> 200 {"status": "ok", "id", "role", "leader", "term"};
                                   503 {"status": "no leader", ...} while no leader is known
    GET  /metrics               -> Prometheus text
    GET  /status                -> the node's Raft status (what `aspen status` prints)
    POST /init                  {"voters": [1, 2, 3]}          (absent: this node alone)
    POST /add-learner           {"id": 4, "address": "127.0.0.1:7004"}   (raft address)
    POST /change-membership     {"voters": [1, 2, 3, 4]}  (+ "learners": [...] to set them;
                                absent: the learners stay)
    POST /transfer-leader       {"to": 2}
    POST /snapshot              {"node": 2}  (absent: this node) -> {"node", "snapshot_index"}
    GET  /backup                -> a backup file (aspen/backup.py): a snapshot at a committed
                                   index holding every write acknowledged before the request
    POST /write                 {"command": ["SET", "k", "v"]}  or {"key": "k", "value": "v"}
    POST /read                  {"command": ["GET", "k"]}  or {"key": "k"};
                                optional "consistency": "linearizable" | "lease" | "stale"
    -> /write and /read answer {"result": <reply as JSON>}; a Redis error reply is
       422 {"error": "..."}, `CLUSTERDOWN` / `TIMEOUT` are 503.

The web console (aspen/api/console.py): GET / and /ui serve the page, /console/app.js and
/console/app.css its assets; /console/stream (Server-Sent Events), /console/state and
/console/node are its data.

If the node has a `requirepass`, every route except /health, /metrics and the console's static
page and assets needs the header `Authorization: Bearer <password>` (401 otherwise).
"""

from __future__ import annotations

import contextvars
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import trio

from aspen.acl import http as acl_http
from aspen.api.console import ASSETS, Aggregator, Sampler, asset
from aspen.api.http import BadRequest, Handler, HttpRequest, HttpResponse
from aspen.api.metrics import CONTENT_TYPE_LATEST, NodeMetrics
from aspen.cluster import (
    READ_CONSISTENCIES,
    AlreadyInitialized,
    ClusterError,
    ClusterTimeout,
    NotLeaderError,
)
from aspen.kv.ops import ReadOp, TxnOp, WriteOp
from aspen.kv.session import Session
from aspen.resp.values import (
    Boolean,
    Double,
    Error,
    Map,
    NullArray,
    Pairs,
    Push,
    Set,
    SimpleString,
    Verbatim,
)
from aspen.tls import https_client_context

if TYPE_CHECKING:
    from aspen.cluster import ClusterNode
    from aspen.node_config import Config

__all__ = ["ControlError", "ControlPlane", "to_json"]

PROXIED_HEADER = "x-aspen-proxied"
_proxied: contextvars.ContextVar[bool] = contextvars.ContextVar("aspen_proxied", default=False)
"""Set while serving a request another node proxied here: never proxy it again (two nodes
that each believe the other leads must not bounce a request between them)."""


class ControlError(Exception):
    """An operation failed in a way the caller should see: `status` is the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def to_json(value: object) -> Any:
    """A RESP reply value as JSON (bytes as UTF-8 text, with U+FFFD for invalid bytes)."""
    if value is None or isinstance(value, NullArray):
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, SimpleString):
        return value.text
    if isinstance(value, Error):
        return {"error": value.message}
    if isinstance(value, Double | Boolean):
        return value.value
    if isinstance(value, Verbatim):
        return to_json(value.text)
    if isinstance(value, Map | Pairs):
        return [[to_json(k), to_json(v)] for k, v in value.items]
    if isinstance(value, list | tuple | Set | Push):
        items = value.items if isinstance(value, Set | Push) else value
        return [to_json(v) for v in items]
    return str(value)


def _ids(
    body: Mapping[str, Any], key: str, *, required: bool = True, empty_ok: bool = False
) -> list[int] | None:
    if key not in body:
        if required:
            raise BadRequest(f'"{key}": missing (a list of node ids)')
        return None
    value = body[key]
    if (
        not isinstance(value, list)
        or (not value and not empty_ok)
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        raise BadRequest(f'"{key}": must be a non-empty list of positive node ids, got '
                         f"{json.dumps(value)}")
    if len(set(value)) != len(value):
        raise BadRequest(f'"{key}": repeats a node id')
    return list(value)


def _id(body: Mapping[str, Any], key: str) -> int:
    value = body.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise BadRequest(f'"{key}": must be a positive node id, got {json.dumps(value)}')
    return value


def _object(request: HttpRequest) -> Mapping[str, Any]:
    body = request.json()
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    return body


def _command(body: Mapping[str, Any], default: str) -> list[bytes]:
    if "command" in body:
        cmd = body["command"]
        if (
            not isinstance(cmd, list)
            or not cmd
            or not all(isinstance(a, str | int | float) and not isinstance(a, bool) for a in cmd)
        ):
            raise BadRequest('"command": must be a non-empty list of strings/numbers')
        return [str(a).encode() for a in cmd]
    if "key" not in body or not isinstance(body["key"], str):
        raise BadRequest('give "command": [...] or "key": "..."')
    if default == "SET":
        if not isinstance(body.get("value"), str):
            raise BadRequest('"value": must be a string')
        return [b"SET", body["key"].encode(), body["value"].encode()]
    return [b"GET", body["key"].encode()]


class ControlPlane:
    """The operations; `session_factory` makes a kv Session for /write and /read."""

    def __init__(
        self, node: ClusterNode, config: Config, session_factory: Callable[[], Session]
    ) -> None:
        self.node = node
        self.config = config
        self.metrics = NodeMetrics(node)
        self._session_factory = session_factory
        self.sampler = Sampler(node)
        self.console = Aggregator(self.sampler, config, self.status,
                                  https_client_context(config.tls))

    # -- operations (shared with RESP) -------------------------------------------------------

    def init(self, voters: list[int] | None) -> dict[str, Any]:
        voters = voters or [self.node.id]
        if self.node.id not in voters:
            raise ControlError(400, f"voters {voters} must include this node ({self.node.id})")
        unknown = sorted(set(voters) - set(self.node.settings.peers) - {self.node.id})
        if unknown:
            raise ControlError(400, f"node {unknown[0]} has no address: list it in [peers] "
                                    "(or add it later with add-learner)")
        try:
            self.node.init(voters)
        except AlreadyInitialized as exc:
            raise ControlError(409, f"already initialised: {exc}") from None
        return {"initialized": True, "voters": sorted(voters)}

    async def add_learner(self, node_id: int, address: str) -> dict[str, Any]:
        from transports.settings import split_address

        try:
            split_address(address)
        except ValueError:
            raise ControlError(400, f'"address": must be host:port, got {address!r}') from None
        curve = self.node.settings.curve
        key = curve.peer_keys.get(node_id) if curve is not None else None
        if curve is not None and key is None:
            raise ControlError(400, f"CURVE is on: list node {node_id}'s public key in "
                                    "security.curve_peer_keys (of every member) first")
        await self._leader_op(
            lambda: self.node.add_learner(node_id, address, key),
            "/add-learner", {"id": node_id, "address": address},
            note=("membership", f"node {node_id} ({address}) added as a learner"),
        )
        return self.status()["membership"]  # type: ignore[no-any-return]

    async def change_membership(
        self, voters: list[int], learners: list[int] | None = None
    ) -> dict[str, Any]:
        """New voters and, optionally, the new learner set (None: the learners stay)."""
        core = self.node.core
        if core is not None and core.role.value == "leader":
            # (a follower's view may lag: it proxies, and the leader checks)
            strangers = sorted({*voters, *(learners or ())} - core.membership.all_nodes)
            if strangers:
                raise ControlError(400, f"node {strangers[0]} is not a member: add it as a "
                                        "learner first (it must catch up before it votes)")
        body: dict[str, Any] = {"voters": voters}
        if learners is not None:
            body["learners"] = learners
        await self._leader_op(
            lambda: self.node.change_membership(voters, learners), "/change-membership", body,
            note=("membership", "membership changed"),
        )
        return self.status()["membership"]  # type: ignore[no-any-return]

    async def transfer_leader(self, to: int) -> dict[str, Any]:
        core = self.node.core
        if core is not None and to not in core.membership.voters:
            raise ControlError(400, f"node {to} is not a voter")
        ok = await self._leader_op(
            lambda: self.node.transfer_leader(to), "/transfer-leader", {"to": to},
            note=("transfer", f"node {self.node.id} handed leadership to node {to}"),
        )
        if ok is False:
            raise ControlError(503, f"node {to} did not take over within the request deadline")
        return {"leader": to}

    async def snapshot(self, node_id: int | None) -> dict[str, Any]:
        """Snapshot this node now (or ask node `node_id` to, through its control plane)."""
        if node_id is None or node_id == self.node.id:
            if self.node.core is None:
                raise ControlError(503, "starting")
            return {"node": self.node.id, "snapshot_index": await self.node.snapshot_now()}
        peer = self.config.peers.get(node_id)
        if peer is None or not peer.http or _proxied.get():
            raise ControlError(400, f"node {node_id}: no HTTP address known (list it in "
                                    "[peers])")
        answer: dict[str, Any] = await _proxy(
            peer.http, "/snapshot", {}, self.config.node.requirepass,
            https_client_context(self.config.tls))
        return answer

    def status(self) -> dict[str, Any]:
        st = self.node.status()
        st["match_index"] = {str(k): v for k, v in st["match_index"].items()}
        lag = {}
        for peer, match in st["match_index"].items():
            lag[peer] = None if match is None else max(st["last_index"] - match, 0)
        st["lag"] = lag
        st["resp"] = self.config.node.port
        # where the others serve HTTP (from [peers]): `aspen status` asks each of them
        st["peer_http"] = {str(i): p.http for i, p in self.config.peers.items() if p.http}
        return st

    async def execute(self, argv: list[bytes], consistency: str | None, write: bool) -> object:
        """Run one Redis command through a fresh session; the reply value."""
        session = self._session_factory()  # (an authenticated one: HTTP checked the password)
        out = session.handle(argv)
        if isinstance(out, ReadOp):
            if write:
                raise ControlError(400, f"{argv[0].decode(errors='replace')} is a read: "
                                        "use /read")
            mode = consistency or self.node.settings.read_consistency
            return session.finish(out, await self.node.read(out, mode))  # type: ignore[arg-type]
        if isinstance(out, WriteOp | TxnOp):
            if not write:
                raise ControlError(400, f"{argv[0].decode(errors='replace')} is a write: "
                                        "use /write")
            return session.finish(out, await self.node.write(out))
        return out

    async def _leader_op(
        self, op: Callable[[], Any], path: str, body: dict[str, Any],
        note: tuple[str, str] | None = None,
    ) -> Any:
        """Run a leader-only operation here, or proxy it to the leader. `note`: an event for
        the console's timeline, noted by the node that ran it (the membership is appended)."""
        try:
            result = await op()
            if note is not None and result is not False:
                kind, text = note
                if kind == "membership":
                    m = self.node.status()["membership"]
                    text += (f": voters {m['voters']}, learners {m['learners']}"
                             + (" (joint)" if m["joint"] else ""))
                self.sampler.note(kind, text)
            return result
        except NotLeaderError as exc:
            leader = exc.leader_hint
            peer = self.config.peers.get(leader) if leader is not None else None
            if peer is None or not peer.http or _proxied.get():
                where = "no leader is known" if leader is None else f"the leader is node {leader}"
                raise ControlError(421, f"not the leader: {where}; retry there") from None
            return await _proxy(peer.http, path, body, self.config.node.requirepass,
                                https_client_context(self.config.tls))
        except ClusterTimeout as exc:
            raise ControlError(503, str(exc)) from None
        except ClusterError as exc:
            raise ControlError(409, str(exc)) from None

    # -- HTTP --------------------------------------------------------------------------------

    def routes(self) -> dict[tuple[str, str], Handler]:
        return {
            ("GET", "/health"): self._health,
            ("GET", "/metrics"): self._metrics,
            ("GET", "/status"): self._guard(self._status),
            ("POST", "/init"): self._guard(self._init),
            ("POST", "/add-learner"): self._guard(self._add_learner),
            ("POST", "/change-membership"): self._guard(self._change_membership),
            ("POST", "/transfer-leader"): self._guard(self._transfer),
            ("POST", "/write"): self._guard(self._write),
            ("POST", "/read"): self._guard(self._read),
            ("POST", "/snapshot"): self._guard(self._snapshot),
            ("GET", "/backup"): self._guard(self._backup),
            ("GET", "/"): self._page,
            ("GET", "/ui"): self._page,
            ("GET", "/console/app.js"): self._asset("app.js"),
            ("GET", "/console/app.css"): self._asset("app.css"),
            ("GET", "/console/node"): self._guard(self._console_node),
            ("GET", "/console/state"): self._guard(self._console_state),
            ("GET", "/console/stream"): self._guard(self._console_stream),
        }

    # -- the console ---------------------------------------------------------------------------

    async def _page(self, _request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, asset("index.html"), ASSETS["index.html"])

    def _asset(self, name: str) -> Handler:
        async def serve(_request: HttpRequest) -> HttpResponse:
            return HttpResponse(200, asset(name), ASSETS[name])

        return serve

    async def _console_node(self, request: HttpRequest) -> HttpResponse:
        if self.node.core is None:
            return HttpResponse.error(503, "starting")
        query = urllib.parse.parse_qs(request.query)
        try:
            since = int(query.get("since", ["0"])[0])
            events = int(query.get("events", ["0"])[0])
        except ValueError:
            raise BadRequest("since/events: must be integers") from None
        body = self.sampler.since(since, events)
        body["status"] = self.status()
        return HttpResponse.json(body)

    async def _console_state(self, _request: HttpRequest) -> HttpResponse:
        await self.console.refresh()
        return HttpResponse.json(self.console.view(0))

    async def _console_stream(self, _request: HttpRequest) -> HttpResponse:
        return HttpResponse.streaming(self.console.stream(), "text/event-stream",
                                      keepalive=b": keep-alive\n\n")

    async def _snapshot(self, request: HttpRequest) -> HttpResponse:
        body = _object(request)
        return HttpResponse.json(await self.snapshot(_id(body, "node") if "node" in body
                                                     else None))

    async def _backup(self, _request: HttpRequest) -> HttpResponse:
        from aspen.backup import encode_backup

        if self.node.core is None:
            raise ControlError(503, "starting")
        try:
            meta, data = await self.node.backup_snapshot()
        except ClusterError as exc:
            raise ControlError(503, str(exc)) from None
        blob = await trio.to_thread.run_sync(encode_backup, meta, data, self.node.id)
        return HttpResponse(200, blob, "application/octet-stream",
                            headers=(("x-aspen-index", str(meta.index)),
                                     ("x-aspen-term", str(meta.term))))

    def _guard(self, handler: Handler) -> Handler:
        password = self.config.node.requirepass
        secret = password.encode() if isinstance(password, str) else password

        async def guarded(request: HttpRequest) -> HttpResponse:
            acl = self.node.keyspace.acl
            if acl_http.auth_required(acl, secret):
                given = request.headers.get("authorization", "")
                if not acl_http.authorized(acl, secret, given):
                    return HttpResponse.error(
                        401, "authentication required: Authorization: Bearer <requirepass>, "
                             "or Basic <user:password> of an ACL user with @admin")
            token = _proxied.set(PROXIED_HEADER in request.headers)
            try:
                return await handler(request)
            except ControlError as exc:
                return HttpResponse.error(exc.status, str(exc))
            finally:
                _proxied.reset(token)

        return guarded

    async def _health(self, _request: HttpRequest) -> HttpResponse:
        if self.node.core is None:
            return HttpResponse.json({"status": "starting", "id": self.node.id}, 503)
        st = self.node.status()
        body = {"id": st["id"], "role": st["role"], "leader": st["leader"], "term": st["term"]}
        if st["leader"] is None:
            return HttpResponse.json({"status": "no leader", **body}, 503)
        return HttpResponse.json({"status": "ok", **body})

    async def _metrics(self, _request: HttpRequest) -> HttpResponse:
        if self.node.core is None:
            return HttpResponse.error(503, "starting")
        return HttpResponse(200, self.metrics.render(), CONTENT_TYPE_LATEST)

    async def _status(self, _request: HttpRequest) -> HttpResponse:
        return HttpResponse.json(self.status())

    async def _init(self, request: HttpRequest) -> HttpResponse:
        body = _object(request)
        return HttpResponse.json(self.init(_ids(body, "voters", required=False)))

    async def _add_learner(self, request: HttpRequest) -> HttpResponse:
        body = _object(request)
        node_id = _id(body, "id")
        address = body.get("address")
        if not isinstance(address, str):
            raise BadRequest('"address": must be the learner\'s raft address, "host:port"')
        return HttpResponse.json(await self.add_learner(node_id, address))

    async def _change_membership(self, request: HttpRequest) -> HttpResponse:
        body = _object(request)
        voters = _ids(body, "voters")
        assert voters is not None
        learners = _ids(body, "learners", required=False, empty_ok=True)
        return HttpResponse.json(await self.change_membership(voters, learners))

    async def _transfer(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse.json(await self.transfer_leader(_id(_object(request), "to")))

    async def _write(self, request: HttpRequest) -> HttpResponse:
        return await self._run(_object(request), write=True)

    async def _read(self, request: HttpRequest) -> HttpResponse:
        return await self._run(_object(request), write=False)

    async def _run(self, body: Mapping[str, Any], *, write: bool) -> HttpResponse:
        argv = _command(body, "SET" if write else "GET")
        consistency = body.get("consistency")
        if consistency is not None and consistency not in READ_CONSISTENCIES:
            raise BadRequest(f'"consistency": must be one of {", ".join(READ_CONSISTENCIES)}')
        reply = await self.execute(argv, consistency, write)
        if isinstance(reply, Error):
            retryable = reply.message.startswith(("CLUSTERDOWN", "TIMEOUT"))
            return HttpResponse.error(503 if retryable else 422, reply.message)
        return HttpResponse.json({"result": to_json(reply)})


async def _proxy(
    address: str, path: str, body: dict[str, Any], password: str | None,
    tls: ssl.SSLContext | None,
) -> Any:
    """POST the same operation to the leader's control plane (in a worker thread)."""

    def call() -> tuple[int, Any]:
        req = urllib.request.Request(
            f"{'https' if tls else 'http'}://{address}{path}", data=json.dumps(body).encode(),
            method="POST",
            headers={"content-type": "application/json", PROXIED_HEADER: "1",
                     **({"authorization": f"Bearer {password}"} if password else {})},
        )
        try:
            with urllib.request.urlopen(req, timeout=30, context=tls) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                return exc.code, json.loads(exc.read() or b"null")
            except ValueError:
                return exc.code, {"error": str(exc)}
        except (OSError, ValueError) as exc:
            return 502, {"error": f"leader at {address} unreachable: {exc}"}

    status, answer = await trio.to_thread.run_sync(call)
    if status >= 400:
        message = answer.get("error") if isinstance(answer, dict) else str(answer)
        raise ControlError(status, f"leader at {address}: {message}")
    return answer
