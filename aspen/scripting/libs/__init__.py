"""The libraries Redis loads into its Lua state: cjson, cmsgpack, bit, struct.

lupa's Lua 5.1 ships none of them, so Aspen provides its own implementations (Python
functions behind small Lua tables, written for Aspen from the libraries' documented
behaviour); each module builds one table.
"""

from __future__ import annotations

from typing import Any


def install_libs(rt: Any) -> Any:
    """A Lua table {cjson=..., bit=..., struct=..., cmsgpack=..., null=...} for the bootstrap."""
    from aspen.scripting.libs import bitlib, cjsonlib, msgpacklib, structlib

    null = rt.eval(b"newproxy(false)")
    return rt.table_from({
        b"cjson": cjsonlib.build(rt, null),
        b"bit": bitlib.build(rt),
        b"struct": structlib.build(rt),
        b"cmsgpack": msgpacklib.build(rt, null),
        b"null": null,
    })
