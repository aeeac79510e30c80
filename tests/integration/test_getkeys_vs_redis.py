"""COMMAND GETKEYS and the key specs behind it, against redis-server 7.0.15.

Every command Aspen knows (subcommands included; Aspen's own ASPEN.* aside) is asked for the
keys of sample argvs of several lengths; the numkeys commands (ZUNIONSTORE, ZINTERSTORE,
SINTERCARD, ...) also get generated counts, including the ones C's atoi reads oddly ("2abc",
"+2", "4294967298"). Replies must be equal, errors by their text. COMMAND INFO's key specs
of the numkeys commands must be Redis's own, in RESP3 shape (sets of maps).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "kv"))
from test_differential_wire import aspen_port, redis_port

from aspen.kv import commands as cmdtable
from harness.hypothesis_budget import scaled_examples
from harness.resp_wire import RespClient

pytestmark = [pytest.mark.slow, pytest.mark.differential]
__all__ = ["aspen_port", "redis_port"]

NUMKEYS = [s for s in cmdtable.ALL_COMMANDS if any(k.find == "keynum" for k in s.key_specs)]
COUNTS = [b"0", b"1", b"2", b"3", b"-1", b"x", b"", b"2abc", b" 2", b"+2", b"2.5", b"0x2"]
COUNTS += [b"4294967298", b"2147483648", b"-4294967294", b"99999999999999999999"]


def names() -> list[list[bytes]]:
    out = []
    for spec in cmdtable.ALL_COMMANDS:
        if spec.name.startswith("aspen."):
            continue
        out.append([spec.name.encode()])
        out += [s.name.encode().split(b"|") for s in spec.subcommands]
    return out


def sample_argvs() -> list[list[bytes]]:
    """Each command with 0..5 arguments of two kinds: plain words, and small numbers."""
    words = [b"k1", b"k2", b"k3", b"k4", b"k5"]
    numbers = [b"2", b"k1", b"1", b"k2", b"k3"]
    out = []
    for name in names():
        for n in range(6):
            out.append([*name, *words[:n]])
            out.append([*name, *numbers[:n]])
    return out


@pytest.fixture(scope="module")
def clients(redis_port: int, aspen_port: int) -> tuple[RespClient, RespClient]:
    pair = (RespClient(redis_port, protocol=3), RespClient(aspen_port, protocol=3))
    yield pair
    for c in pair:
        c.close()


def same_getkeys(clients: tuple[RespClient, RespClient], argv: list[bytes]) -> None:
    ref, ours = (c.call([b"COMMAND", b"GETKEYS", *argv]) for c in clients)
    assert type(ours) is type(ref) and ours == ref, f"{argv!r}: redis {ref!r}, aspen {ours!r}"


def test_getkeys_of_every_command(clients: tuple[RespClient, RespClient]) -> None:
    for argv in sample_argvs():
        same_getkeys(clients, argv)


@settings(
    max_examples=scaled_examples(300),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    spec=st.sampled_from(NUMKEYS),
    count=st.sampled_from(COUNTS),
    keys=st.lists(st.sampled_from([b"a", b"b", b"c"]), max_size=4),
    tail=st.sampled_from([[], [b"weights", b"1", b"2"], [b"limit", b"1"], [b"aggregate"]]),
)
def test_getkeys_of_numkeys_commands(
    clients: tuple[RespClient, RespClient],
    spec: cmdtable.CommandSpec,
    count: bytes,
    keys: list[bytes],
    tail: list[bytes],
) -> None:
    dest = [b"dst"] if spec.first_key else []
    same_getkeys(clients, [spec.name.encode(), *dest, count, *keys, *tail])


def test_numkeys_key_specs_match_redis(clients: tuple[RespClient, RespClient]) -> None:
    assert NUMKEYS, "no numkeys command in the table"
    for spec in NUMKEYS:
        ref, ours = (c.call([b"COMMAND", b"INFO", spec.name.encode()]) for c in clients)
        assert isinstance(ref, list) and isinstance(ours, list)
        assert ours[0][:2] == ref[0][:2] and ours[0][3:6] == ref[0][3:6], spec.name
        for field in (2, 6):  # flags, ACL categories: sets, in each server's own order
            assert sorted(ours[0][field]) == sorted(ref[0][field]), spec.name
        assert ours[0][8] == ref[0][8], spec.name  # the key specs, RESP3 types included
        assert type(ours[0][8]) is type(ref[0][8])
