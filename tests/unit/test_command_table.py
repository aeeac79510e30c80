"""The command table in docs/compatibility.md is up to date, and COMMAND COUNT / COMMAND DOCS
answer exactly the commands it marks supported (or differs, or Aspen's own)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from aspen.kv.keyspace import Keyspace
from aspen.kv.session import Session
from aspen.resp.values import Map
from harness.local_kv import LocalContext

ROOT = Path(__file__).resolve().parent.parent.parent


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_command_table", ROOT / "scripts" / "gen_command_table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_command_table"] = module
    spec.loader.exec_module(module)
    return module


def test_checked_in_table_is_current() -> None:
    gen = _generator()
    doc = (ROOT / "docs" / "compatibility.md").read_text()
    assert gen.table() in doc, "run: python scripts/gen_command_table.py --write"


def test_command_count_and_docs_agree_with_the_table() -> None:
    gen = _generator()
    rows = gen.rows()
    answered = {name for name, _, status, _ in rows if status != "not supported"}
    absent = {name for name, _, status, _ in rows if status == "not supported"}
    session = Session(1, LocalContext(Keyspace()))
    assert session.handle([b"COMMAND", b"COUNT"]) == len(answered)
    docs = session.handle([b"COMMAND", b"DOCS"])
    assert isinstance(docs, Map)
    names = {k.decode() for k, _ in docs.items}  # type: ignore[attr-defined]
    assert names == answered
    assert not names & absent
    # every Redis 7.0.15 command has a row
    import json

    redis_cmds = json.loads((ROOT / "scripts" / "redis-7.0.15-commands.json").read_text())
    assert set(redis_cmds) <= {name for name, _, _, _ in rows}
    assert len(redis_cmds) == 240
