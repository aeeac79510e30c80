"""A live progress line on stderr: phase, its elapsed time, the run's, and the load average.

On a terminal one line is rewritten twice a second; otherwise (CI, a pipe) one line is
printed per phase, so logs stay readable.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    def __init__(self, stream: TextIO | None = None, interval: float = 0.5) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty()
        self.interval = interval
        self.start = time.monotonic()
        self.phase = "starting"
        self.phase_start = self.start
        self.detail = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def line(self) -> str:
        now = time.monotonic()
        load = os.getloadavg()[0]
        detail = f" {self.detail}" if self.detail else ""
        return (f"[bench {now - self.start:6.1f}s | load {load:4.1f}] {self.phase}{detail} "
                f"({now - self.phase_start:.1f}s)")

    def set(self, phase: str, detail: str = "") -> None:
        with self._lock:
            self.phase, self.detail = phase, detail
            self.phase_start = time.monotonic()
            if not self.live:
                self.stream.write(self.line() + "\n")
                self.stream.flush()

    def note(self, detail: str) -> None:
        with self._lock:
            self.detail = detail

    def result(self, text: str) -> None:
        """A finished figure: a permanent line above the live one."""
        with self._lock:
            self.stream.write(("\r\x1b[K" if self.live else "") + f"  {text}\n")
            self.stream.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                self.stream.write("\r\x1b[K" + self.line())
                self.stream.flush()

    def __enter__(self) -> Progress:
        if self.live:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
            self.stream.write("\r\x1b[K")
            self.stream.flush()
