"""LOLWUT [VERSION n] [n ...]: Redis 7.0.15 prints only its version line ("unstable" LOLWUT);
VERSION 5 and 6 draw art there (Schotter, skyscrapers). Aspen draws its own small picture for
those (three Raft nodes and their log), ending with Redis's version line."""

from __future__ import annotations

from aspen.resp.values import Error, Verbatim

__all__ = ["lolwut"]

_VERSION_LINE = b"Redis ver. 7.0.15\n"
_NOT_INTEGER = Error("ERR value is not an integer or out of range")
_ART = (
    b"  .---.      .---.      .---.\n"
    b"  | L |----->| F |----->| F |\n"
    b"  '---'      '---'      '---'\n"
    b"  [1][2][3]  [1][2][3]  [1][2][ ]\n"
    b"\n"
    b"Three replicas, one log. "
)


def _integer(raw: bytes) -> int | None:
    try:
        value = int(raw)
    except ValueError:
        return None
    text = raw.decode("ascii", "replace")
    if text != text.strip() or text.startswith("+") or not -(2**63) <= value < 2**63:
        return None
    return value


def lolwut(argv: list[bytes]) -> object:
    args = argv[1:]
    version = 7
    if len(args) >= 2 and args[0].lower() == b"version":
        ver = _integer(args[1])
        if ver is None:
            return _NOT_INTEGER
        version = ver & 0xFFFFFFFF  # (Redis prints it as unsigned)
        args = args[2:]
    if version not in (5, 6):
        return Verbatim(_VERSION_LINE)
    for raw in args[: 3 if version == 5 else 2]:  # the art's size arguments: integers
        if _integer(raw) is None:
            return _NOT_INTEGER
    return Verbatim(_ART + _VERSION_LINE)
