"""XREAD BLOCK / XREADGROUP BLOCK on the wire, RESP2 and RESP3: an `aspen node` and
redis-server 7.0.15 run the same scenario and must send the same bytes' worth of replies
(parked readers served by a later XADD, `$` on a missing key, a timeout, MULTI)."""

from __future__ import annotations

import threading
import time

import pytest

from harness.bench.servers import aspen_node, redis_server
from harness.resp_wire import RespClient

pytestmark = pytest.mark.slow


def _run(client: RespClient, argv: list[bytes], into: dict[str, object], name: str) -> None:
    into[name] = client.call(argv)


def scenario(port: int) -> list[object]:
    out: list[object] = []
    for proto in (2, 3):
        admin = RespClient(port)
        for argv in ([b"DEL", b"s"], [b"XADD", b"s", b"1-1", b"a", b"b"],
                     [b"XGROUP", b"CREATE", b"s", b"g", b"$"]):
            admin.call(argv)
        readers = {"xread": RespClient(port, protocol=proto),
                   "group": RespClient(port, protocol=proto)}
        commands = {
            "xread": [b"XREAD", b"COUNT", b"5", b"BLOCK", b"0", b"STREAMS", b"nokey", b"s",
                      b"$", b"$"],
            "group": [b"XREADGROUP", b"GROUP", b"g", b"c", b"BLOCK", b"0", b"STREAMS", b"s",
                      b">"],
        }
        got: dict[str, object] = {}
        threads = [threading.Thread(target=_run, args=(readers[k], commands[k], got, k))
                   for k in commands]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # both parked before the XADD
            info = admin.call([b"INFO", b"clients"])
            if isinstance(info, bytes) and b"blocked_clients:2" in info:
                break
            time.sleep(0.02)
        admin.call([b"XADD", b"s", b"2-1", b"x", b"y"])
        for t in threads:
            t.join(10)
        out.append((proto, sorted(got.items())))
        c = RespClient(port, protocol=proto)
        out.append((proto, c.call([b"XREAD", b"BLOCK", b"100", b"STREAMS", b"s", b"$"])))
        for argv in ([b"MULTI"], [b"XREAD", b"BLOCK", b"0", b"STREAMS", b"s", b"$"],
                     [b"XREADGROUP", b"GROUP", b"g", b"c", b"BLOCK", b"0", b"STREAMS", b"s",
                      b">"], [b"EXEC"]):
            out.append((proto, c.call(argv)))
        for client in (admin, c, *readers.values()):
            client.close()
    return out


def test_blocked_stream_reads_match_redis_on_the_wire() -> None:
    with redis_server() as srv:
        theirs = scenario(srv.port)
    with aspen_node() as node:
        ours = scenario(node.port)
    assert repr(ours) == repr(theirs)
