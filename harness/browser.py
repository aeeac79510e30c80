"""Headless Chromium driven over the DevTools protocol, for the console's browser test.

No WebDriver: Chromium is started with --remote-debugging-port=0, prints the DevTools address
on stderr, and we talk to the page target over a WebSocket (trio-websocket, already a node
dependency) with three calls: navigate, evaluate a JavaScript expression, capture a
screenshot. Debian's `chromium` package is enough (`scripts/dev.py` installs it).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
from trio_websocket import WebSocketConnection, open_websocket_url

__all__ = ["Browser", "chromium_path", "open_browser"]

# Running as root in a container needs --no-sandbox; the rest keep a headless run quiet and
# self-contained (no network of its own, no profile reuse).
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--no-first-run",
    "--disable-sync", "--hide-scrollbars", "--remote-debugging-port=0",
]


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


class BrowserError(Exception):
    pass


class Browser:
    """One page target; `call` sends a DevTools command and returns its result."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self._ws = ws
        self._ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self._ids)
        await self._ws.send_message(json.dumps({"id": msg_id, "method": method,
                                                "params": params}))
        while True:  # (no domain is enabled, so few events arrive; they are skipped)
            answer = json.loads(await self._ws.get_message())
            if answer.get("id") != msg_id:
                continue
            if "error" in answer:
                raise BrowserError(f"{method}: {answer['error']}")
            result: dict[str, Any] = answer.get("result", {})
            return result

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (promises are awaited), as JSON."""
        result = await self.call("Runtime.evaluate", expression=expression,
                                 returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def navigate(self, url: str, timeout: float = 15.0) -> None:
        await self.call("Page.navigate", url=url)
        with trio.fail_after(timeout):
            while await self.evaluate("document.readyState") != "complete":
                await trio.sleep(0.05)

    async def wait_for(self, expression: str, timeout: float, interval: float = 0.1) -> Any:
        """Poll until the expression is truthy; its value."""
        with trio.fail_after(timeout):
            while True:
                value = await self.evaluate(expression)
                if value:
                    return value
                await trio.sleep(interval)

    async def set_viewport(self, width: int, height: int) -> None:
        await self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                        deviceScaleFactor=1, mobile=False)

    async def screenshot(self, path: Path) -> None:
        result = await self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(result["data"]))


@asynccontextmanager
async def open_browser() -> AsyncIterator[Browser]:
    """A fresh headless Chromium (own profile directory), closed on exit."""
    exe = chromium_path()
    if exe is None:
        raise BrowserError("chromium is not installed (scripts/dev.py installs it)")
    with tempfile.TemporaryDirectory(prefix="aspen-chromium-",
                                     ignore_cleanup_errors=True) as profile:
        proc = subprocess.Popen(
            [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: its helpers go with it
        )
        try:
            port = await trio.to_thread.run_sync(_devtools_port, proc)
            targets = json.loads(await trio.to_thread.run_sync(
                lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list",
                                               timeout=10).read()))
            page = next(t for t in targets if t.get("type") == "page")
            async with open_websocket_url(page["webSocketDebuggerUrl"],
                                          max_message_size=64 << 20) as ws:
                yield Browser(ws)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the browser and its helper processes
            proc.wait(10)  # (the drain thread then sees the end of stderr)


def _devtools_port(proc: subprocess.Popen[bytes]) -> int:
    """Read Chromium's stderr until it names its DevTools port."""
    assert proc.stderr is not None
    seen = []
    for raw in proc.stderr:
        line = raw.decode(errors="replace")
        seen.append(line)
        found = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
        if found:
            # Keep draining stderr so Chromium never blocks on a full pipe.
            _drain(proc)
            return int(found.group(1))
    raise BrowserError("chromium exited before it listened:\n" + "".join(seen[-20:]))


def _drain(proc: subprocess.Popen[bytes]) -> None:
    def drain() -> None:
        assert proc.stderr is not None
        for _ in proc.stderr:
            pass

    threading.Thread(target=drain, daemon=True).start()
