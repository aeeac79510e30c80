"""Aspen: a Raft-replicated key-value store that speaks the Redis protocol."""

from aspen import _native

__version__ = "0.1.0"

# Compiled hot modules or pure Python (ASPEN_PURE=1, no build, or a stale one): decided before
# any of them is imported (aspen/_native.py).
_native.choose()
