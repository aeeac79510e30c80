"""Start an in-process `aspen node` and wait until it leads its group of one: shared by the
control-plane tests and the client-path benchmark."""

from __future__ import annotations

import trio

from aspen.daemon import Node


async def start_leading(nursery: trio.Nursery, node: Node, timeout: float = 20.0) -> None:
    """Run `node` in `nursery` (no signal handlers: the caller owns the process) and return
    once it leads."""
    await nursery.start(lambda task_status: node.run(handle_signals=False,
                                                      task_status=task_status))
    with trio.fail_after(timeout):
        while node.cluster.leader_id != node.cluster.id:
            await trio.sleep(0.02)
