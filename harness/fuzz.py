"""Fuzz the decoders of everything a client or a peer can send a node.

    python -m harness.fuzz <target|all> [--minutes N] [--engine atheris|mutate] [--seed S]

Targets (each a function of one input that may only raise the errors it declares; any other
exception is a crash, saved under --crashes with its input and traceback):

    resp      the client request parser (aspen.resp.protocol.RequestParser), fed in random
              chunks, before and after AUTH limits
    peer      the peer envelope (transports.envelope) and every payload a peer sends: Raft
              messages (aspen.raft.wire), forwarded client traffic (aspen.cluster.forward),
              log entries (aspen.cluster.entry), replies, kv ops, pub/sub batches
    http      the control plane's HTTP server (aspen.api.http.HttpServer) over a memory
              stream, with JSON routes: nothing may escape a connection
    toml      the config loader (tomllib + aspen.node_config.parse_config)

Engines: `atheris` (coverage-guided, libFuzzer; used when it is installed) or `mutate`, a
plain mutation loop over the seed corpus (byte flips, inserts, deletions, splices of seeds).
Printed at the end: the inputs tried per target and the crashes found. The bounded versions
in CI are tests/unit/test_fuzz_targets.py (hypothesis over the same seeds and mutations).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import random
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cbor2

Target = Callable[[bytes], None]


# ------------------------------------------------------------------ resp


def _resp_seeds() -> list[bytes]:
    return [
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n",
        b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$0\r\n\r\n",
        b"PING\r\nECHO \"a\\x41b\" 'c d'\r\n",
        b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n",
        b"*-1\r\n*0\r\n\r\n\n",
        b"*1\r\n$10\r\n0123456789\r\n",
    ]


def fuzz_resp(data: bytes) -> None:
    from aspen.resp.protocol import ProtocolError, RequestParser

    if not data:
        return
    split = data[0]
    body = data[1:]
    for authenticated in (True, False):
        parser = RequestParser(max_bulk_len=1 << 20, max_inline_len=4096)
        parser.authenticated = authenticated
        step = (split % 13) + 1
        try:
            for i in range(0, len(body), step):
                for argv in parser.feed(body[i : i + step]):
                    assert isinstance(argv, list) and all(type(a) is bytes for a in argv)
        except ProtocolError as exc:
            assert exc.reply_line().startswith(b"-ERR Protocol error")
            continue
        assert parser.buffered <= len(body)


# ------------------------------------------------------------------ peer


def _peer_seeds() -> list[bytes]:
    from aspen.cluster import entry, forward
    from aspen.cluster.entry import ExpireItem, OpItem, PeerItem, RequestId
    from aspen.kv.ops import ReadOp, TxnOp, WriteOp
    from aspen.raft import wire as raft_wire
    from aspen.raft.messages import AppendEntries, RequestVote
    from aspen.raft.types import Entry, EntryKind
    from transports.envelope import Envelope, MessageKind
    from transports.envelope import encode as env_encode

    rid = RequestId(2, 7, 9)
    payloads: list[tuple[MessageKind, bytes]] = [
        (MessageKind.RAFT, raft_wire.encode_message(RequestVote(
            src=2, dst=1, term=3, last_log_index=5, last_log_term=2))),
        (MessageKind.RAFT, raft_wire.encode_message(AppendEntries(
            src=2, dst=1, term=3, prev_log_index=4, prev_log_term=2, commit=4,
            entries=(Entry(5, 3, EntryKind.NORMAL, entry.encode_items(
                1000, [OpItem(rid, 1, WriteOp((b"SET", b"k", b"v"))), ExpireItem(20),
                       PeerItem(3, "127.0.0.1:7003")])),)))),
        (MessageKind.CLIENT_REQUEST, forward.encode(forward.ForwardWrites(
            1, ((rid, WriteOp((b"INCR", b"n")).encode()),
                (RequestId(2, 7, 10), TxnOp(((b"SET", b"a", b"1"),)).encode()))))),
        (MessageKind.CLIENT_REQUEST, forward.encode(forward.ForwardRead(
            b"tok", ReadOp((b"GET", b"k")).encode()))),
        (MessageKind.CLIENT_REPLY, forward.encode(forward.Rejected((rid,), b"t", 3))),
        (MessageKind.PUBSUB, cbor2.dumps([1, 7, 3, [[b"ch", b"msg"]]])),
    ]
    return [env_encode(Envelope(kind, "aspen", 2, p)) for kind, p in payloads]


def fuzz_peer(data: bytes) -> None:
    """Everything a node does with a peer's bytes before acting on them: decode, validate."""
    from aspen.cluster import entry, forward, replies
    from aspen.kv import ops
    from aspen.pubsub import wire
    from aspen.raft import wire as raft_wire
    from aspen.raft.errors import RaftDecodeError
    from aspen.raft.messages import AppendEntries
    from aspen.raft.types import EntryKind
    from transports.envelope import EnvelopeError
    from transports.envelope import decode as env_decode

    payloads = [data]
    try:
        env = env_decode(data)
        payloads.insert(0, env.payload)
    except EnvelopeError:
        pass
    for payload in payloads:
        try:
            msg = raft_wire.decode_message(payload)
        except RaftDecodeError:
            msg = None
        if isinstance(msg, AppendEntries):
            for e in msg.entries:
                if e.kind is EntryKind.NORMAL and e.data:
                    try:
                        batch = entry.decode(e.data)
                    except entry.EntryDecodeError:
                        continue
                    for item in batch.items:
                        if isinstance(item, entry.OpItem) and isinstance(item.op, bytes):
                            try:
                                ops.decode(item.op)
                            except ops.OpDecodeError:
                                pass
                elif e.kind is EntryKind.MEMBERSHIP:
                    try:
                        raft_wire.decode_membership(e.data)
                    except RaftDecodeError:
                        pass
        try:
            fwd = forward.decode(payload)
        except forward.ForwardDecodeError:
            fwd = None
        if isinstance(fwd, forward.ForwardWrites):
            for _, op in fwd.writes:
                try:
                    ops.decode(op)
                except ops.OpDecodeError:
                    pass
        elif isinstance(fwd, forward.ReadReply):
            try:
                replies.decode(fwd.reply)
            except replies.ReplyCodecError:
                pass
        for decoder, error in ((entry.decode, entry.EntryDecodeError),
                               (ops.decode, ops.OpDecodeError),
                               (replies.decode, replies.ReplyCodecError),
                               (wire.decode, wire.PubSubDecodeError),
                               (raft_wire.decode_membership, RaftDecodeError)):
            try:
                decoder(payload)
            except error:
                pass


# ------------------------------------------------------------------ http


def _http_seeds() -> list[bytes]:
    return [
        b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /write HTTP/1.1\r\nHost: x\r\nContent-Length: 24\r\n\r\n"
        b'{"argv": ["SET","k","v"]}',
        b"POST /init HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\n[1,2]\r\n0\r\n\r\n",
        b"GET /status?x=1 HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"
        b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
        b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n",
    ]


def fuzz_http(data: bytes) -> None:
    import json

    import trio
    import trio.testing

    from aspen.api.http import BadRequest, HttpRequest, HttpResponse, HttpServer
    from aspen.api.http import log as http_log

    async def health(request: HttpRequest) -> HttpResponse:
        return HttpResponse.json({"ok": True})

    failures: list[BaseException] = []

    async def write(request: HttpRequest) -> HttpResponse:
        try:  # the request's own parsing may only fail with a 400
            body = request.json()
        except (BadRequest, json.JSONDecodeError):
            raise
        except Exception as exc:
            failures.append(exc)
            raise
        if not isinstance(body, dict) or not isinstance(body.get("argv"), list):
            raise BadRequest("argv must be a list")
        return HttpResponse.json({"argv": [str(a) for a in body["argv"]]})

    async def init(request: HttpRequest) -> HttpResponse:
        voters = json.loads(request.body or b"[]")
        return HttpResponse.json(sorted(int(v) for v in voters))  # may raise: must give 500

    server = HttpServer({("GET", "/health"): health, ("GET", "/status"): health,
                         ("POST", "/write"): write, ("POST", "/init"): init})

    async def main() -> None:
        client, server_side = trio.testing.memory_stream_pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.handle_connection, server_side)
            await client.send_all(data)
            await client.send_eof()
            with trio.fail_after(5):
                while await client.receive_some(65536):
                    pass

    caught = _Caught()
    logger = logging.getLogger(http_log.name)
    logger.addHandler(caught)
    try:
        trio.run(main)
    finally:
        logger.removeHandler(caught)
    if failures:
        raise failures[0]
    if caught.errors:  # the server's last resort caught something: a crash all the same
        raise AssertionError(caught.errors[0])


class _Caught(logging.Handler):
    """Collects what the HTTP server's catch-all logged (a connection that failed)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("control-plane connection failed"):
            self.errors.append(self.format(record))


# ------------------------------------------------------------------ toml


def _toml_seeds() -> list[bytes]:
    return [
        b'[node]\nport = 0\nmax_clients = 100\nmaxmemory = "5mb"\n'
        b'maxmemory_policy = "allkeys-lru"\nclient_output_buffer_limit_pubsub = "1mb 0 0"\n',
        b'[raft]\ncluster_id = "c"\nbootstrap = [1, 2, 3]\ntick_ms = 50\n'
        b'[peers]\n2 = "127.0.0.1:7002"\n3 = { raft = "127.0.0.1:7003", http = "h:1" }\n',
        b'[http]\nlisten = ""\n[security]\ninsecure = true\n',
        b'[tls]\nport = 0\nauth_clients = "optional"\n',
    ]


def fuzz_toml(data: bytes) -> None:
    import tomllib

    from aspen.node_config import ConfigError, parse_config

    try:
        parsed = tomllib.loads(data.decode("utf-8", "replace"))
    except tomllib.TOMLDecodeError:
        return
    try:
        config = parse_config(parsed, base_dir=Path("/nonexistent-fuzz"))
    except ConfigError:
        return
    try:
        config.cluster_settings()
    except ConfigError:
        pass
    config.redis_settings()


TARGETS: dict[str, tuple[Target, Callable[[], list[bytes]]]] = {
    "resp": (fuzz_resp, _resp_seeds),
    "peer": (fuzz_peer, _peer_seeds),
    "http": (fuzz_http, _http_seeds),
    "toml": (fuzz_toml, _toml_seeds),
}


# ------------------------------------------------------------------ mutation


def mutate(seed: bytes, rng: random.Random, others: list[bytes]) -> bytes:
    """A few random edits of `seed` (what the `mutate` engine and the CI tests apply)."""
    data = bytearray(seed)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        pos = rng.randrange(len(data) + 1)
        if op == 0 and data:  # flip bits of a byte
            data[pos % len(data)] ^= 1 << rng.randrange(8)
        elif op == 1:  # insert random bytes
            data[pos:pos] = rng.randbytes(rng.randint(1, 8))
        elif op == 2 and data:  # delete a run
            del data[pos : pos + rng.randint(1, 16)]
        elif op == 3:  # an interesting value
            data[pos:pos] = rng.choice([b"\xff" * 8, b"\x00", b"-1", b"9223372036854775808",
                                        b"\r\n", b"*", b"$", b"\x9f", b"\xbf", b"\x1b\xff"])
        elif op == 4 and others:  # splice another seed in
            other = rng.choice(others)
            start = rng.randrange(len(other) + 1)
            data[pos:pos] = other[start : start + rng.randint(1, 64)]
        elif op == 5 and data:  # truncate
            del data[pos:]
        elif op == 6 and data:  # repeat a run (lengths, nesting)
            run = data[pos : pos + rng.randint(1, 8)]
            data[pos:pos] = run * rng.randint(2, 50)
    return bytes(data)


# ------------------------------------------------------------------ running


def _save_crash(out: Path, name: str, data: bytes, exc: BaseException) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{name}-{abs(hash(data)):x}"
    stem.with_suffix(".bin").write_bytes(data)
    stem.with_suffix(".txt").write_text("".join(traceback.format_exception(exc)))


def run_mutate(name: str, seconds: float, seed: int, crashes: Path) -> tuple[int, int]:
    target, seeds = TARGETS[name]
    corpus = seeds()
    rng = random.Random(seed)
    tried = found = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for _ in range(100):
            data = mutate(rng.choice(corpus), rng, corpus)
            tried += 1
            try:
                target(data)
            except Exception as exc:
                found += 1
                _save_crash(crashes, name, data, exc)
    return tried, found


def run_atheris(name: str, seconds: float, crashes: Path) -> None:  # pragma: no cover
    atheris: Any = importlib.import_module("atheris")

    target, seeds = TARGETS[name]
    corpus_dir = crashes / f"corpus-{name}"
    corpus_dir.mkdir(parents=True, exist_ok=True)
    for i, s in enumerate(seeds()):
        (corpus_dir / f"seed{i}").write_bytes(s)
    with atheris.instrument_imports():
        import aspen.api.http
        import aspen.cluster.entry
        import aspen.cluster.forward
        import aspen.node_config
        import aspen.raft.wire
        import aspen.resp.protocol  # noqa: F401
        import transports.envelope  # noqa: F401
    atheris.Setup([sys.argv[0], f"-max_total_time={int(seconds)}", "-print_final_stats=1",
                   f"-artifact_prefix={crashes}/{name}-", str(corpus_dir)], target)
    atheris.Fuzz()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=[*TARGETS, "all"])
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--engine", choices=["atheris", "mutate"], default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--crashes", type=Path, default=Path("fuzz-crashes"))
    args = parser.parse_args()
    names = list(TARGETS) if args.target == "all" else [args.target]
    engine = args.engine
    if engine is None:
        try:
            importlib.import_module("atheris")
            engine = "atheris" if len(names) == 1 else "mutate"
        except ImportError:
            engine = "mutate"
    seconds = args.minutes * 60 / len(names)
    if engine == "atheris":
        # libFuzzer owns the process and prints its own counts (#N inputs) and stats
        run_atheris(names[0], seconds, args.crashes)
        return
    total_found = 0
    for name in names:
        tried, found = run_mutate(name, seconds, args.seed, args.crashes)
        total_found += found
        print(f"{name:<5} {tried:>9} inputs tried in {seconds:.0f} s, {found} crashes"
              + (f" (saved under {args.crashes})" if found else ""), flush=True)
    sys.exit(1 if total_found else 0)


if __name__ == "__main__":
    main()
