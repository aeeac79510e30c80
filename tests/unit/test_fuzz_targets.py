"""Bounded fuzzing of every decoder a client or peer reaches (the targets of harness.fuzz).

Each target may only raise the errors it declares: a client's bytes end in replies or a
protocol error, a peer's in a decoded message or a counted drop, an HTTP request in a
response (a 400 for a bad body, never a 500 from parsing), a config in a ConfigError.
Inputs: the seed corpus of valid inputs mutated (bit flips, inserts, deletions, splices,
repeats), and raw bytes. The long runs: `python -m harness.fuzz <target> --minutes N`.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.fuzz import TARGETS, mutate
from harness.hypothesis_budget import scaled_examples

BUDGET = {"resp": 400, "peer": 400, "http": 150, "toml": 300}


@pytest.mark.differential
@pytest.mark.parametrize("name", list(TARGETS))
def test_mutated_seeds_never_crash(name: str) -> None:
    target, seeds = TARGETS[name]
    corpus = seeds()

    @settings(max_examples=scaled_examples(BUDGET[name]), deadline=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(st.integers(0, len(corpus) - 1), st.integers(0, 2**64), st.integers(1, 4))
    def run(index: int, seed: int, rounds: int) -> None:
        rng = random.Random(seed)
        data = corpus[index]
        for _ in range(rounds):
            data = mutate(data, rng, corpus)
        target(data)

    run()


@pytest.mark.differential
@pytest.mark.parametrize("name", ["resp", "peer", "toml"])
def test_raw_bytes_never_crash(name: str) -> None:
    target, _ = TARGETS[name]

    @settings(max_examples=scaled_examples(BUDGET[name]), deadline=None)
    @given(st.binary(max_size=512))
    def run(data: bytes) -> None:
        target(data)

    run()


def test_seeds_are_valid_inputs() -> None:
    """The corpus is made of inputs that decode (else mutations start from garbage)."""
    from aspen.resp.protocol import RequestParser
    from transports.envelope import decode

    for data in TARGETS["resp"][1]():
        RequestParser().feed(data)
    for data in TARGETS["peer"][1]():
        decode(data)
    for _, seeds in TARGETS.values():
        assert seeds()


@pytest.mark.parametrize("body", [b'{"argv": ["\xef', b"\xff\xfe{}", b"[\xc3]"])
def test_found_a_body_that_is_not_utf8_is_a_400_not_a_500(body: bytes) -> None:
    """Found by the http target: json.loads raised UnicodeDecodeError, answered 500."""
    import trio
    import trio.testing

    from aspen.api.http import HttpRequest, HttpResponse, HttpServer

    async def write(request: HttpRequest) -> HttpResponse:
        return HttpResponse.json(request.json())

    async def main() -> bytes:
        server = HttpServer({("POST", "/write"): write})
        client, server_side = trio.testing.memory_stream_pair()
        out = b""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.handle_connection, server_side)
            await client.send_all(b"POST /write HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                                  b"Connection: close\r\n\r\n%s" % (len(body), body))
            while chunk := await client.receive_some(65536):
                out += chunk
        return out

    reply = trio.run(main)
    assert reply.startswith(b"HTTP/1.1 400 "), reply


@pytest.mark.parametrize("request_bytes", [
    b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n",
    b"HEAD /it HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n[1,2]\r\n0\r\n\r\n",
])
def test_found_a_head_request_is_answered_without_a_body(request_bytes: bytes) -> None:
    """Found by atheris on the http target: any HEAD request made h11 refuse the error
    response's body, and the exception left handle_connection, which the node runs under
    trio.serve_listeners: one `curl -I` ended the node."""
    import trio
    import trio.testing

    from aspen.api.http import HttpRequest, HttpResponse, HttpServer

    async def health(request: HttpRequest) -> HttpResponse:
        return HttpResponse.json({"ok": True})

    async def main() -> bytes:
        server = HttpServer({("GET", "/health"): health})
        client, server_side = trio.testing.memory_stream_pair()
        out = b""
        async with trio.open_nursery() as nursery:  # an escaping exception would fail here
            nursery.start_soon(server.handle_connection, server_side)
            await client.send_all(request_bytes)
            await client.send_eof()
            while chunk := await client.receive_some(65536):
                out += chunk
        return out

    reply = trio.run(main)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith((b"HTTP/1.1 405 ", b"HTTP/1.1 404 ", b"HTTP/1.1 400 ")), reply
    assert body == b""
