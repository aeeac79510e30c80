"""CLIENT REPLY ON|OFF|SKIP (and CLIENT NO-TOUCH, which 7.0.15 does not know) against a real
redis-server 7.0.15: generated pipelines over one connection, compared byte for byte (RESP2
and RESP3), MULTI/EXEC included, where Redis writes EXEC's header but not the dropped elements.
"""

from __future__ import annotations

import itertools
import socket
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.hypothesis_budget import scaled_examples

pytestmark = [pytest.mark.slow, pytest.mark.differential]


@pytest.fixture(scope="module")
def ports(redis_port: int, aspen_port: int) -> tuple[int, int]:
    """The module's pair of servers (tests/integration/conftest.py)."""
    return redis_port, aspen_port


def _encode(argv: list[bytes]) -> bytes:
    out = b"*%d\r\n" % len(argv)
    for a in argv:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def exchange(port: int, protocol: int, cmds: list[list[bytes]], mark: bytes = b"end") -> bytes:
    """Everything the server writes for `cmds` sent as one pipeline, up to an end marker
    (sent after leaving MULTI and turning replies on)."""
    tail = [[b"DISCARD"], [b"CLIENT", b"REPLY", b"ON"], [b"ECHO", mark]]
    want_end = b"$%d\r\n%s\r\n" % (len(mark), mark)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        if protocol == 3:
            sock.sendall(_encode([b"HELLO", b"3"]))
            hello = b""
            while not hello.endswith(b"modules\r\n*0\r\n"):
                hello += sock.recv(65536)
        sock.sendall(b"".join(_encode(c) for c in cmds + tail))
        got = b""
        deadline = time.monotonic() + 10
        while not got.endswith(want_end) and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
    return got


_COMMANDS = st.sampled_from([
    [b"CLIENT", b"REPLY", b"ON"], [b"CLIENT", b"REPLY", b"OFF"], [b"CLIENT", b"REPLY", b"SKIP"],
    [b"CLIENT", b"REPLY", b"maybe"], [b"CLIENT", b"REPLY"], [b"SET", b"{k}", b"v"],
    [b"GET", b"{k}"], [b"INCR", b"{n}"], [b"LPUSH", b"{l}", b"x"], [b"NOSUCH"], [b"MULTI"],
    [b"EXEC"], [b"DISCARD"], [b"PING"], [b"ECHO", b"hi"], [b"CLIENT", b"NO-TOUCH", b"ON"],
    [b"SELECT", b"1"], [b"SWAPDB", b"0", b"x"],
])
_SEQ = itertools.count()


@settings(max_examples=scaled_examples(80), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cmds=st.lists(_COMMANDS, min_size=1, max_size=14), protocol=st.sampled_from([2, 3]))
def test_pipelines_match_redis(ports: tuple[int, int], cmds: list[list[bytes]],
                               protocol: int) -> None:
    n = next(_SEQ)
    names = {b"{k}": b"k%d" % n, b"{n}": b"n%d" % n, b"{l}": b"l%d" % n}
    cmds = [[names.get(a, a) for a in c] for c in cmds]
    rport, aport = ports
    want = exchange(rport, protocol, cmds)
    got = exchange(aport, protocol, cmds)
    assert got == want, (cmds, want, got)


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("cmds", [
    # OFF: nothing until ON, whose own +OK is written
    [[b"CLIENT", b"REPLY", b"OFF"], [b"SET", b"a", b"1"], [b"GET", b"a"], [b"NOSUCH"],
     [b"CLIENT", b"REPLY", b"ON"], [b"GET", b"a"]],
    # SKIP twice: the second SKIP is the skipped command and skips the next one again
    [[b"CLIENT", b"REPLY", b"SKIP"], [b"CLIENT", b"REPLY", b"SKIP"], [b"GET", b"a"],
     [b"GET", b"a"]],
    # inside EXEC: header announces 3, SKIP adds no element and skips the command after EXEC
    [[b"MULTI"], [b"SET", b"b", b"2"], [b"CLIENT", b"REPLY", b"SKIP"], [b"GET", b"b"],
     [b"EXEC"], [b"GET", b"b"], [b"PING"]],
    # OFF inside EXEC drops the elements after it, ON brings them back
    [[b"MULTI"], [b"CLIENT", b"REPLY", b"OFF"], [b"GET", b"b"], [b"CLIENT", b"REPLY", b"ON"],
     [b"GET", b"b"], [b"EXEC"]],
    [[b"CLIENT", b"NO-TOUCH", b"ON"], [b"CLIENT", b"NO-TOUCH"]],
    # a blocked command's reply (timed out, or served) follows the mode it came under
    [[b"CLIENT", b"REPLY", b"SKIP"], [b"BLPOP", b"q", b"0.05"], [b"PING"]],
    [[b"CLIENT", b"REPLY", b"OFF"], [b"BLPOP", b"q", b"0.05"], [b"CLIENT", b"REPLY", b"ON"],
     [b"BLPOP", b"q", b"0.05"]],
    [[b"CLIENT", b"REPLY", b"SKIP"], [b"XREAD", b"BLOCK", b"50", b"STREAMS", b"x", b"$"],
     [b"PING"]],
])
def test_known_sequences(ports: tuple[int, int], cmds: list[list[bytes]],
                         protocol: int) -> None:
    rport, aport = ports
    assert exchange(aport, protocol, cmds) == exchange(rport, protocol, cmds)
