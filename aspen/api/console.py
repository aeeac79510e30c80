"""The live web console: a page served by every node, fed by Server-Sent Events.

Three parts, so the page survives the node that serves it losing leadership or a member dying:

- `Sampler` (every node, always): once a second it turns this node's counters into a point
  (ops/s, p50/p99 batch latency, log length, snapshot index, memory, clients) kept for the
  last `HISTORY` seconds, and notes events it sees from here (its own start, becoming
  leader, snapshots); the control plane notes the transfers and membership changes it runs
  (on the leader: a follower proxies them there), so none is missed between two samples. `GET
  /console/node?since=S&events=E` returns what is newer than S / E, with the node's status.
- `Aggregator` (the node serving a page, only while someone asks): polls every member's
  /console/node (HTTPS when `[tls] http`, with the password) at most once a second, keeps
  their points and events, and notes members going down and coming back. A member that does
  not answer is shown as down; nothing else depends on it.
- `GET /console/stream`: `text/event-stream`, one `state` event a second with the members
  table and only the points and events the page has not seen yet. The page reads it with
  fetch() (EventSource cannot send the Authorization header) and draws its own charts.

The page and its assets (aspen/api/console/) load without the password; the data and the
actions are guarded like the rest of the HTTP API.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import resource
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from aspen.cluster import ClusterNode
    from aspen.node_config import Config
    from aspen.resp.server import RespServer

__all__ = ["Aggregator", "Sampler", "asset", "percentiles"]

log = logging.getLogger(__name__)

HISTORY = 300  # points (seconds) kept per node
EVENTS = 200  # events kept per node
SAMPLE_S = 1.0
FETCH_TIMEOUT_S = 1.0

ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}


def asset(name: str) -> bytes:
    """One of the page's files, from the installed package (no network at run time)."""
    return (resources.files("aspen.api") / "console" / name).read_bytes()


def now_ms() -> int:
    return int(time.time() * 1000)


def rss_bytes() -> int:
    """Resident memory now (Linux /proc), else the peak from getrusage."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def percentiles(samples: list[float], qs: tuple[float, ...]) -> list[float | None]:
    if not samples:
        return [None for _ in qs]
    ordered = sorted(samples)
    last = len(ordered) - 1
    return [ordered[min(last, int(q * len(ordered)))] for q in qs]


class Sampler:
    """This node's history of points and events (see the module docstring)."""

    def __init__(self, node: ClusterNode, clock: Callable[[], int] = now_ms) -> None:
        self.node = node
        self.resp: RespServer | None = None  # set by the Node that owns the RESP server
        self.clock = clock
        self.started = clock()
        self.points: collections.deque[dict[str, Any]] = collections.deque(maxlen=HISTORY)
        self.events: collections.deque[dict[str, Any]] = collections.deque(maxlen=EVENTS)
        self._point_seq = 0
        self._event_seq = 0
        self._last: dict[str, Any] | None = None  # counters at the previous sample

    def note(self, kind: str, text: str) -> None:
        self._event_seq += 1
        self.events.append({"seq": self._event_seq, "t": self.clock(), "node": self.node.id,
                            "kind": kind, "text": text})

    async def run(self) -> None:
        while True:
            if self.node.core is not None:
                self.sample()
            await trio.sleep(SAMPLE_S)

    def sample(self) -> dict[str, Any]:
        st = self.node.status()
        stats = self.node.stats
        t = self.clock()
        resp = self.resp
        count = resp.latency_count if resp is not None else 0
        cur = {
            "t": t, "reads": stats.reads_served, "writes": stats.ops_proposed,
            "cmds": resp.stats_commands_processed if resp is not None else 0,
            "lat": count, "term": st["term"], "role": st["role"],
            "taken": stats.snapshots_taken,
            "installed": stats.snapshots_installed,
        }
        prev = self._last
        self._last = cur
        p50 = p99 = None
        rates = {"reads": 0.0, "writes": 0.0, "cmds": 0.0}
        if prev is None:
            self.note("restart", f"node {st['id']} started (term {st['term']}, applied index "
                                 f"{st['applied_index']})")
            if st["role"] == "leader":  # (elected before the first sample)
                self.note("election", f"node {st['id']} became leader in term {st['term']}")
        else:
            dt = max((t - prev["t"]) / 1000, 1e-3)
            rates = {k: round((cur[k] - prev[k]) / dt, 1) for k in rates}
            new = min(count - prev["lat"], len(resp.latency_ring)) if resp is not None else 0
            if resp is not None and new > 0:
                ring, mask = resp.latency_ring, len(resp.latency_ring) - 1
                window = [ring[i & mask] for i in range(count - new, count)]
                p50, p99 = (None if v is None else round(v * 1000, 3)
                            for v in percentiles(window, (0.5, 0.99)))
            self._events(prev, cur, st)
        self._point_seq += 1
        point = {
            "seq": self._point_seq, "t": t, **rates, "p50": p50, "p99": p99,
            "log": st["last_index"] - st["snapshot_index"], "last_index": st["last_index"],
            "snapshot_index": st["snapshot_index"], "rss": rss_bytes(),
            "clients": len(resp.connections) if resp is not None else 0,
        }
        self.points.append(point)
        return point

    def _events(self, prev: dict[str, Any], cur: dict[str, Any], st: dict[str, Any]) -> None:
        me = st["id"]
        if cur["role"] == "leader" and (prev["role"] != "leader" or prev["term"] != cur["term"]):
            self.note("election", f"node {me} became leader in term {cur['term']}")
        if cur["taken"] > prev["taken"]:
            self.note("snapshot", f"node {me} took a snapshot at index {st['snapshot_index']}")
        if cur["installed"] > prev["installed"]:
            self.note("snapshot", f"node {me} installed the leader's snapshot at index "
                                  f"{st['snapshot_index']}")

    def since(self, points: int, events: int) -> dict[str, Any]:
        """The body of /console/node: what is newer than the given sequence numbers."""
        return {
            "id": self.node.id, "started": self.started,
            "points": [p for p in self.points if p["seq"] > points],
            "events": [e for e in self.events if e["seq"] > events],
        }


class _Member:
    """What the aggregator knows of one member."""

    def __init__(self, node_id: int, http: str) -> None:
        self.id = node_id
        self.http = http
        self.up: bool | None = None  # None: never asked yet
        self.status: dict[str, Any] | None = None
        self.last_contact: int | None = None
        self.error = ""
        self.started: int | None = None
        self.point_seq = 0  # the member's own sequence numbers, for ?since=
        self.event_seq = 0
        self.points: collections.deque[dict[str, Any]] = collections.deque(maxlen=HISTORY)


class Aggregator:
    """The cluster as seen from this node, refreshed at most once a second on demand."""

    def __init__(
        self, sampler: Sampler, config: Config, status: Callable[[], dict[str, Any]],
        tls: ssl.SSLContext | None,
    ) -> None:
        self.sampler = sampler
        self.config = config
        self.status = status
        self.tls = tls
        self.members: dict[int, _Member] = {}
        self.events: list[dict[str, Any]] = []  # every member's, merged; "n" numbers them
        self._n = 0  # numbers points and events in arrival order (a stream's cursor)
        self._refreshed = -1e9
        self._lock = trio.Lock()

    def _known(self) -> dict[int, str]:
        """Members to ask: this node, [peers], and whatever HTTP addresses statuses name."""
        known = {i: p.http for i, p in self.config.peers.items()}
        for m in list(self.members.values()):
            for peer, http in ((m.status or {}).get("peer_http") or {}).items():
                known.setdefault(int(peer), http)
            membership = (m.status or {}).get("membership", {})
            for peer in [*membership.get("voters", []), *membership.get("learners", [])]:
                known.setdefault(int(peer), "")
        known[self.sampler.node.id] = "(this node)"
        return known

    async def refresh(self) -> None:
        async with self._lock:
            if trio.current_time() - self._refreshed < SAMPLE_S * 0.9:
                return
            for node_id, http in self._known().items():
                m = self.members.get(node_id)
                if m is None:
                    m = self.members[node_id] = _Member(node_id, http)
                elif http:
                    m.http = http
            async with trio.open_nursery() as nursery:
                for m in self.members.values():
                    nursery.start_soon(self._refresh_one, m)
            self._refreshed = trio.current_time()

    async def _refresh_one(self, m: _Member) -> None:
        me = self.sampler.node.id
        try:
            if m.id == me:
                body = self.sampler.since(m.point_seq, m.event_seq)
                body["status"] = self.status()
            elif not m.http:
                raise OSError("no HTTP address known (list it in [peers])")
            else:
                body = await trio.to_thread.run_sync(self._fetch, m)
        except (OSError, ValueError) as exc:
            if m.up is not False:
                self._event(me, "down", f"node {m.id} unreachable from node {me}")
            m.up, m.error = False, str(exc)
            return
        if m.up is False:
            self._event(me, "up", f"node {m.id} answers node {me} again")
        m.up, m.error, m.last_contact = True, "", now_ms()
        m.status = body.get("status")
        if m.started != body.get("started"):
            restarted = m.started is not None
            m.started = body.get("started")
            if restarted:  # its sequence numbers start again: ask for everything next time
                m.point_seq = m.event_seq = 0
                return
        for p in body.get("points", []):
            if p["seq"] > m.point_seq:
                m.point_seq = p["seq"]
                self._n += 1
                m.points.append({**p, "n": self._n, "node": m.id})
        for e in body.get("events", []):
            if e["seq"] > m.event_seq:
                m.event_seq = e["seq"]
                self._add_event(e)

    def _fetch(self, m: _Member) -> dict[str, Any]:
        password = self.config.node.requirepass
        headers = {"authorization": f"Bearer {password}"} if password else {}
        url = (f"{'https' if self.tls else 'http'}://{m.http}/console/node"
               f"?since={m.point_seq}&events={m.event_seq}")
        req = urllib.request.Request(url, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=FETCH_TIMEOUT_S, context=self.tls) as r:
                body: dict[str, Any] = json.loads(r.read())
                return body
        except urllib.error.HTTPError as exc:
            raise OSError(f"HTTP {exc.code}") from None

    def _event(self, node: int, kind: str, text: str) -> None:
        self._add_event({"t": now_ms(), "node": node, "kind": kind, "text": text})

    def _add_event(self, event: dict[str, Any]) -> None:
        self._n += 1
        self.events.append({**event, "n": self._n})
        if len(self.events) > 4 * EVENTS:
            del self.events[: len(self.events) - 2 * EVENTS]

    def members_table(self) -> list[dict[str, Any]]:
        statuses = [m.status for m in self.members.values() if m.up and m.status]
        leaders = [s for s in statuses if s["role"] == "leader"]
        leader = max(leaders, key=lambda s: s["term"], default=None)
        rows = []
        for node_id in sorted(self.members):
            m = self.members[node_id]
            st = m.status if m.up else None
            last = m.points[-1] if m.points else None
            lag = None
            if st is not None and leader is not None:
                lag = max(leader["last_index"] - st["applied_index"], 0)
            if not m.up:
                health = "down" if m.up is False else "unknown"
            elif st is None or st["leader"] is None:
                health = "no leader"
            elif lag is not None and lag > 1000:
                health = "lagging"
            else:
                health = "ok"
            voter = None
            if leader is not None:
                ms = leader["membership"]
                voter = ("voter" if node_id in ms["voters"] else
                         "learner" if node_id in ms["learners"] else "not a member")
            rows.append({
                "id": node_id, "http": m.http, "up": m.up, "health": health,
                "error": m.error, "last_contact": m.last_contact, "member": voter,
                "role": st["role"] if st else None, "term": st["term"] if st else None,
                "leader": st["leader"] if st else None,
                "commit_index": st["commit_index"] if st else None,
                "applied_index": st["applied_index"] if st else None,
                "last_index": st["last_index"] if st else None,
                "snapshot_index": st["snapshot_index"] if st else None,
                "lag": lag,
                "clients": last["clients"] if last and m.up else None,
            })
        return rows

    def view(self, cursor: int) -> dict[str, Any]:
        """Members, and the points and events numbered above `cursor` (0: everything)."""
        points = {str(i): [p for p in m.points if p["n"] > cursor]
                  for i, m in self.members.items()}
        events = [e for e in self.events if e["n"] > cursor]
        rows = self.members_table()
        leaders = [r for r in rows if r["role"] == "leader"]
        leader = max(leaders, key=lambda r: r["term"], default=None)
        return {
            "now": now_ms(), "self": self.sampler.node.id, "cursor": self._n,
            "leader": leader["id"] if leader else None,
            "members": rows, "points": points, "events": events,
        }

    async def stream(self, period: float = SAMPLE_S) -> AsyncIterator[bytes]:
        """The SSE body: one `state` event per period, each with only what is new."""
        cursor = 0
        while True:
            await self.refresh()
            view = self.view(cursor)
            cursor = view["cursor"]
            yield b"event: state\ndata: " + json.dumps(view).encode() + b"\n\n"
            await trio.sleep(period)
