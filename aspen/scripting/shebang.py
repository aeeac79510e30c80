"""The `#!lua flags=...` first line of a script (Redis 7.0)."""

from __future__ import annotations

from aspen.kv.errors import CommandError

KNOWN_FLAGS = ("no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys")


def parse(body: bytes) -> tuple[frozenset[str] | None, bytes]:
    """(flags, the code to compile): flags None for a script without a shebang (Redis's
    "legacy" script: may write). The shebang line is blanked, so line numbers still count it.
    """
    if not body.startswith(b"#!"):
        return None, body
    end = body.find(b"\n")
    line = body if end < 0 else body[:end]
    parts = line.split(b" ")
    if parts[0] != b"#!lua":
        raise CommandError(
            f"ERR Unexpected engine in script shebang: {parts[0].decode('utf-8', 'replace')}"
        )
    flags: set[str] = set()
    for part in parts[1:]:
        if not part:
            continue
        if not part.startswith(b"flags="):
            raise CommandError(
                f"ERR Unknown lua shebang option: {part.decode('utf-8', 'replace')}"
            )
        for flag in part[len(b"flags="):].split(b","):
            text = flag.decode("utf-8", "replace")
            if not text:
                continue
            if text not in KNOWN_FLAGS:
                raise CommandError(f"ERR Unexpected flag in script shebang: {text}")
            flags.add(text)
    return frozenset(flags), (b"" if end < 0 else body[end:])
