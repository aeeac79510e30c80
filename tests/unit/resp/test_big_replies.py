"""Big array replies are encoded in slices that let the event loop run between them (the
node's Raft heartbeats live on the same loop), byte for byte as the one-piece encoder."""

from __future__ import annotations

import trio

from aspen.resp.protocol import encode_into
from aspen.resp.server import BIG_REPLY, encode_big
from aspen.resp.values import Double


async def test_encode_big_matches_and_yields() -> None:
    value: list[object] = [b"m%d" % i for i in range(3 * BIG_REPLY + 7)]
    value[5] = None
    value[6] = [b"a", 1, Double(1.5)]
    ticks = 0
    done = False

    async def other_task() -> None:
        nonlocal ticks
        while not done:
            ticks += 1
            await trio.lowlevel.checkpoint()

    for protocol in (2, 3):
        expected = bytearray()
        encode_into(expected, value, protocol)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(other_task)
            await trio.lowlevel.checkpoint()
            before = ticks
            got = await encode_big(value, protocol)
            ran = ticks - before
            done = True
        done = False
        assert got == expected
        assert ran >= 3  # the other task ran between the slices
