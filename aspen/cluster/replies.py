"""Reply values <-> CBOR-able data, for the dedup table (in snapshots) and CLIENT_REPLY.

Plain bytes/int/None pass through; every other reply type becomes a list whose first element
is a small tag, so nothing is ambiguous (a RESP array is tagged too).
"""

from __future__ import annotations

import cbor2

from aspen.resp.values import (
    NULL_ARRAY,
    Boolean,
    Double,
    Error,
    Map,
    NullArray,
    Pairs,
    Set,
    SimpleString,
    Verbatim,
)

_ARRAY, _SIMPLE, _ERROR, _NULL_ARRAY, _DOUBLE, _BOOL, _MAP, _SET, _VERBATIM, _PAIRS = range(10)


class ReplyCodecError(ValueError):
    pass


def to_data(value: object) -> object:
    t = type(value)
    if t is bytes or t is int or value is None:
        return value
    if t is list:
        return [_ARRAY, [to_data(v) for v in value]]  # type: ignore[attr-defined]
    if t is SimpleString:
        return [_SIMPLE, value.text]  # type: ignore[attr-defined]
    if t is Error:
        return [_ERROR, value.message]  # type: ignore[attr-defined]
    if t is NullArray:
        return [_NULL_ARRAY]
    if t is Double:
        return [_DOUBLE, value.value]  # type: ignore[attr-defined]
    if t is Boolean:
        return [_BOOL, value.value]  # type: ignore[attr-defined]
    if t is Map:
        pairs = [[to_data(k), to_data(v)] for k, v in value.items]  # type: ignore[attr-defined]
        return [_MAP, pairs, True] if value.nested else [_MAP, pairs]  # type: ignore[attr-defined]
    if t is Pairs:
        return [_PAIRS, [[to_data(a), to_data(b)] for a, b in value.items]]  # type: ignore[attr-defined]
    if t is Set:
        return [_SET, [to_data(v) for v in value.items]]  # type: ignore[attr-defined]
    if t is Verbatim:
        return [_VERBATIM, value.text, value.format]  # type: ignore[attr-defined]
    raise ReplyCodecError(f"cannot encode reply of type {t.__name__}")


def from_data(data: object) -> object:
    if data is None or type(data) in (bytes, int):
        return data
    if not isinstance(data, list) or not data:
        raise ReplyCodecError(f"bad reply data {data!r}")
    tag = data[0]
    try:
        if tag == _ARRAY:
            return [from_data(v) for v in data[1]]
        if tag == _SIMPLE:
            return SimpleString(data[1])
        if tag == _ERROR:
            return Error(data[1])
        if tag == _NULL_ARRAY:
            return NULL_ARRAY
        if tag == _DOUBLE:
            return Double(data[1])
        if tag == _BOOL:
            return Boolean(data[1])
        if tag == _MAP:
            return Map([(from_data(k), from_data(v)) for k, v in data[1]], len(data) > 2)
        if tag == _PAIRS:
            return Pairs([(from_data(a), from_data(b)) for a, b in data[1]])
        if tag == _SET:
            return Set([from_data(v) for v in data[1]])
        if tag == _VERBATIM:
            return Verbatim(data[1], data[2])
    except (IndexError, TypeError, ValueError) as exc:
        raise ReplyCodecError(f"bad reply data {data!r}: {exc}") from None
    raise ReplyCodecError(f"unknown reply tag {tag!r}")


def encode(value: object) -> bytes:
    return cbor2.dumps(to_data(value))


def decode(data: bytes) -> object:
    try:
        return from_data(cbor2.loads(data))
    except ReplyCodecError:
        raise
    except Exception as exc:
        raise ReplyCodecError(f"reply is not CBOR: {exc}") from None
