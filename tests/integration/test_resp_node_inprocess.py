"""A Node in this process (trio), for what only the node knows: CLIENT LIST, CONFIG GET, INFO."""

from __future__ import annotations

from pathlib import Path

import trio

from aspen.daemon import Node
from aspen.node_config import Config, parse_config
from harness.resp_wire import command as cmd


async def read_reply(stream: trio.abc.Stream, until: bytes) -> bytes:
    data = b""
    while not data.endswith(until):
        chunk = await stream.receive_some()
        assert chunk, f"EOF after {data!r}"
        data += chunk
    return data


async def start(nursery: trio.Nursery, tmp_path: Path, **overrides: object) -> Node:
    node = Node(Config().with_overrides(port=0, dir=str(tmp_path / "data"), **overrides))
    await nursery.start(lambda task_status: node.run(handle_signals=False, task_status=task_status))
    return node


async def test_node_reports_its_clients_config_and_stats(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            node = await start(nursery, tmp_path, bind="127.0.0.1")
            port = node.ports[0]
            assert port != 0 and (tmp_path / "data").is_dir()
            a = await trio.open_tcp_stream("127.0.0.1", port)
            b = await trio.open_tcp_stream("127.0.0.1", port)
            await a.send_all(cmd(b"CLIENT", b"SETNAME", b"alpha"))
            assert await read_reply(a, b"\r\n") == b"+OK\r\n"
            await b.send_all(cmd(b"PING"))
            await read_reply(b, b"\r\n")

            await a.send_all(cmd(b"CLIENT", b"LIST"))
            listing = (await read_reply(a, b"\n\r\n")).decode()
            lines = [line for line in listing.split("\r\n", 1)[1].splitlines() if line]
            assert len(lines) == 2
            alpha = next(line for line in lines if " name=alpha " in line)
            assert f"laddr=127.0.0.1:{port}" in alpha and "addr=127.0.0.1:" in alpha
            other = next(line for line in lines if line is not alpha)
            assert " cmd=ping " in other and " name= " in other

            await a.send_all(cmd(b"CONFIG", b"GET", b"port"))
            reply = await read_reply(a, b"%d\r\n" % port)
            assert reply == b"*2\r\n$4\r\nport\r\n$%d\r\n%d\r\n" % (len(str(port)), port)

            await a.send_all(cmd(b"INFO", b"stats"))
            info = (await read_reply(a, b"\r\n\r\n")).decode()
            assert "total_connections_received:2" in info
            assert "total_reads_processed:" in info and "total_writes_processed:" in info
            await a.aclose()
            await b.aclose()
            node.server.shutdown()


async def test_active_expiry_drops_keys_nobody_reads(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            node = await start(nursery, tmp_path)
            s = await trio.open_tcp_stream("127.0.0.1", node.ports[0])
            await s.send_all(cmd(b"SET", b"short", b"v", b"PX", b"30") + cmd(b"SET", b"long", b"v"))
            await read_reply(s, b"+OK\r\n+OK\r\n")
            assert node.keyspace.key_count() == 2
            while node.keyspace.key_count() != 1:  # nobody touches "short" again
                await trio.sleep(0.05)
            await s.aclose()
            node.server.shutdown()


async def test_requirepass_reaches_the_sessions(tmp_path: Path) -> None:
    config = parse_config({"node": {"requirepass": "pw", "port": 0, "dir": str(tmp_path)}})
    node = Node(config)
    assert node.requirepass == b"pw"
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(
                lambda task_status: node.run(handle_signals=False, task_status=task_status)
            )
            s = await trio.open_tcp_stream("127.0.0.1", node.ports[0])
            await s.send_all(
                cmd(b"GET", b"k") + cmd(b"AUTH", b"pw") + cmd(b"CONFIG", b"GET", b"requirepass")
            )
            reply = await read_reply(s, b"$2\r\npw\r\n")
            assert reply == (
                b"-NOAUTH Authentication required.\r\n+OK\r\n"
                b"*2\r\n$11\r\nrequirepass\r\n$2\r\npw\r\n"
            )
            await s.aclose()
            node.server.shutdown()
