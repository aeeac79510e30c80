"""One PySyncObj node with a small RESP front: the replicated reference of `harness.bench`.

    python -m harness.bench.syncobj_front --self 127.0.0.1:7001 --partner 127.0.0.1:7002 \
        --partner 127.0.0.1:7003 --resp-port 6400 --journal /tmp/x/n1.journal

Speaks just enough RESP2 for redis-benchmark and the benchmark's own clients: SET key value
(replies once PySyncObj reports the command committed and applied), GET key (from this
node's local replica: PySyncObj has no read index, so GET is NOT linearizable), PING, CONFIG
GET (the name with an empty value), COMMAND (an empty array), INFO (role and leader, for finding the
leader). Pipelined commands are submitted together and answered in order.

Durability, exactly: with `--journal` PySyncObj's FileJournal appends every log entry to an
mmap'd file before the node acknowledges it, and it never calls fsync/msync on it (the term and
vote go to a separate small file, also without fsync). A killed process loses nothing the
kernel has; an OS crash or power cut can lose acknowledged writes. Aspen and the durable
redis-server fsync before they reply.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable
from typing import Any

from pysyncobj import SyncObj, SyncObjConf, replicated  # type: ignore[import-untyped]


class ReplicatedDict(SyncObj):  # type: ignore[misc]
    """The state machine: a dict of bytes -> bytes."""

    def __init__(self, self_addr: str, partners: list[str], conf: SyncObjConf) -> None:
        super().__init__(self_addr, partners, conf)
        self.data: dict[bytes, bytes] = {}

    @replicated  # type: ignore[untyped-decorator]
    def put(self, key: bytes, value: bytes) -> bool:
        self.data[key] = value
        return True


class _Parser:
    """RESP2 multibulk requests (and inline commands, as redis-cli may send)."""

    def __init__(self) -> None:
        self.buf = b""

    def feed(self, data: bytes) -> list[list[bytes]]:
        self.buf += data
        out: list[list[bytes]] = []
        buf, pos = self.buf, 0
        while pos < len(buf):
            if buf[pos : pos + 1] != b"*":
                end = buf.find(b"\r\n", pos)
                if end < 0:
                    break
                line = buf[pos:end].split()
                pos = end + 2
                if line:
                    out.append(line)
                continue
            end = buf.find(b"\r\n", pos)
            if end < 0:
                break
            count = int(buf[pos + 1 : end])
            cur = end + 2
            argv: list[bytes] = []
            for _ in range(count):
                end = buf.find(b"\r\n", cur)
                if end < 0:
                    break
                size = int(buf[cur + 1 : end])
                start = end + 2
                if len(buf) < start + size + 2:
                    break
                argv.append(buf[start : start + size])
                cur = start + size + 2
            if len(argv) < count:
                break
            out.append(argv)
            pos = cur
        self.buf = buf[pos:]
        return out


def _bulk(value: bytes | None) -> bytes:
    return b"$-1\r\n" if value is None else b"$%d\r\n%s\r\n" % (len(value), value)


class Front:
    def __init__(self, node: ReplicatedDict, loop: asyncio.AbstractEventLoop) -> None:
        self.node = node
        self.loop = loop

    def _set(self, key: bytes, value: bytes) -> asyncio.Future[bytes]:
        fut: asyncio.Future[bytes] = self.loop.create_future()

        def done(result: Any, error: Any) -> None:  # runs on PySyncObj's tick thread
            reply = b"+OK\r\n" if error == 0 else b"-ERR pysyncobj failed: %d\r\n" % error
            self.loop.call_soon_threadsafe(_resolve, fut, reply)

        self.node.put(key, value, callback=done)
        return fut

    def _info(self) -> bytes:
        status = self.node.getStatus()
        leader = status.get("leader")
        role = "leader" if status.get("state") == 2 else "follower"
        text = f"# Replication\r\nrole:{role}\r\nleader:{leader.address if leader else ''}\r\n"
        return _bulk(text.encode())

    def handle(self, argv: list[bytes]) -> bytes | Awaitable[bytes]:
        name = argv[0].upper()
        if name == b"SET" and len(argv) >= 3:
            return self._set(argv[1], argv[2])
        if name == b"GET" and len(argv) == 2:
            return _bulk(self.node.data.get(argv[1]))
        if name == b"PING":
            return b"+PONG\r\n"
        if name == b"CONFIG" and len(argv) == 3 and argv[1].upper() == b"GET":
            return b"*2\r\n" + _bulk(argv[2]) + _bulk(b"")  # redis-benchmark asks for 'save'
        if name == b"COMMAND":
            return b"*0\r\n"
        if name == b"INFO":
            return self._info()
        if name == b"QUIT":
            return b"+OK\r\n"
        return b"-ERR unknown command '%s'\r\n" % argv[0]

    async def serve_client(self, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> None:
        parser = _Parser()
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                replies = [self.handle(argv) for argv in parser.feed(data)]
                out = bytearray()
                for reply in replies:
                    out += reply if isinstance(reply, bytes) else await reply
                writer.write(out)
                await writer.drain()
        except (ConnectionError, ValueError):
            return
        finally:
            writer.close()


def _resolve(fut: asyncio.Future[bytes], reply: bytes) -> None:
    if not fut.done():
        fut.set_result(reply)


async def main_async(args: argparse.Namespace) -> None:
    conf = SyncObjConf(
        journalFile=args.journal,
        fullDumpFile=args.journal + ".dump" if args.journal else None,
        dynamicMembershipChange=False,
    )
    node = ReplicatedDict(args.self_addr, args.partner, conf)
    front = Front(node, asyncio.get_running_loop())
    server = await asyncio.start_server(front.serve_client, "127.0.0.1", args.resp_port,
                                        backlog=1024)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--self", dest="self_addr", required=True)
    p.add_argument("--partner", action="append", default=[])
    p.add_argument("--resp-port", type=int, required=True)
    p.add_argument("--journal", default=None, help="journal file (absent: memory only)")
    args = p.parse_args(argv)
    try:
        asyncio.run(main_async(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
