"""RESP request parsing and reply encoding, sans-I/O.

`RequestParser.feed(data)` accepts any chunk of a client's byte stream and returns the argvs it
completes; partial commands wait inside the parser for the next chunk. The rules, limits and
error texts follow Redis 7 (networking.c: processMultibulkBuffer / processInlineBuffer and
sdssplitargs), because clients and operators know those texts. `ProtocolError` is the only
exception `feed` raises, whatever the input; after one the connection must be closed.

`encode(value, protocol)` turns the reply values of `aspen.resp.values` into RESP2 or RESP3.

Both sides are on the hot path of every request, so they work on a bytearray with `find` from
an offset, slice once per token, and never loop over single bytes for well-formed multibulk.
"""

from __future__ import annotations

from collections.abc import Callable

from aspen.resp.values import (
    ArrayHeader,
    Boolean,
    Double,
    Error,
    HumanDouble,
    Map,
    NullArray,
    Pairs,
    Push,
    Set,
    SimpleString,
    Verbatim,
)

__all__ = [
    "DEFAULT_MAX_ARGV",
    "DEFAULT_MAX_BULK_LEN",
    "INLINE_MAX_SIZE",
    "ProtocolError",
    "RequestParser",
    "encode",
    "encode_into",
    "format_double",
    "split_inline",
]

DEFAULT_MAX_BULK_LEN = 512 * 1024 * 1024  # Redis proto-max-bulk-len
DEFAULT_MAX_ARGV = 2**31 - 1  # Redis 7.0 refuses multibulk counts above INT_MAX
INLINE_MAX_SIZE = 64 * 1024  # Redis PROTO_INLINE_MAX_SIZE: inline lines and header lines
_UNAUTH_MAX_ARGV = 10  # Redis 7.0's limits before AUTH succeeds (measured on 7.0.15)
_UNAUTH_MAX_BULK = 16384
_MAX_INT_DIGITS = 20  # string2ll refuses strings this long or longer (LONG_STR_SIZE - 1)

_STAR = 0x2A  # '*'
_DOLLAR = 0x24  # '$'


class ProtocolError(Exception):
    """The client broke the protocol; reply with `reply_line()` and close the connection.

    `commands` holds the argvs that were complete before the offending bytes: Redis executes
    those (and writes their replies) before the error.
    """

    def __init__(self, message: str, commands: list[list[bytes]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.commands: list[list[bytes]] = commands if commands is not None else []

    def reply_line(self) -> bytes:
        """The error as the server sends it (the same in RESP2 and RESP3).

        Latin-1 maps the offending byte in "got 'x'" back to itself, as Redis's %c does; CR
        and LF become spaces so the reply stays one line.
        """
        raw = self.message.encode("latin-1", "replace")
        return b"-ERR " + raw.replace(b"\r", b" ").replace(b"\n", b" ") + b"\r\n"


def _string2ll(raw: bytes) -> int | None:
    """Redis's strict integer syntax: optional '-', no '+', no spaces, no leading zeros."""
    n = len(raw)
    if n == 0 or n >= _MAX_INT_DIGITS:
        return None
    if raw.isdigit():
        if raw[0] == 0x30 and n > 1:
            return None
        return int(raw)
    if raw[0] == 0x2D and n > 1:  # '-'
        digits = raw[1:]
        if digits.isdigit() and digits[0] != 0x30:
            value = -int(digits)
            return value if value >= -(2**63) else None
    return None


class RequestParser:
    """Incremental parser for client requests (multibulk arrays and inline commands).

    State between feeds: the unconsumed bytes, plus — inside a multibulk command — the
    arguments read so far, how many remain, and the length of a bulk whose header was read.
    So a huge command arriving in small chunks is never re-parsed from its start.
    """

    __slots__ = (
        "_argv",
        "_argv_bytes",
        "_buf",
        "_bulk_len",
        "_failed",
        "_fast",
        "_need",
        "_remaining",
        "authenticated",
        "max_argv",
        "max_bulk_len",
        "max_inline_len",
    )

    def __init__(
        self,
        max_bulk_len: int = DEFAULT_MAX_BULK_LEN,
        max_argv: int = DEFAULT_MAX_ARGV,
        max_inline_len: int = INLINE_MAX_SIZE,
    ) -> None:
        self.max_bulk_len = max_bulk_len
        self.max_argv = max_argv
        self.max_inline_len = max_inline_len
        self._buf = bytearray()  # unconsumed bytes (usually empty between reads)
        self._need = 0  # no progress is possible before _buf holds this many bytes
        self._argv: list[bytes] = []
        self._argv_bytes = 0  # payload bytes held in _argv (the partial command's arguments)
        self._remaining = 0  # bulks still to read in the current multibulk command
        self._bulk_len = -1  # length of the bulk whose "$n" header was read, else -1
        self._failed: ProtocolError | None = None
        self._fast = True  # whole-command fast path (`_parse_whole`); tests turn it off
        # Before AUTH succeeds Redis accepts only small commands, so an unauthenticated client
        # cannot make the server buffer much. While False, `feed` also returns at most one
        # command: the server runs it, updates this flag, then calls `feed(b"")` for the next.
        self.authenticated = True

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete command (a query-buffer figure)."""
        return len(self._buf) + self._argv_bytes

    @property
    def idle(self) -> bool:
        """True when no partial command is pending."""
        return not self._buf and self._remaining == 0

    def feed(self, data: bytes | bytearray | memoryview) -> list[list[bytes]]:
        """Consume `data`; return every command it completes, in order."""
        if self._failed is not None:
            raise ProtocolError(self._failed.message)
        if self._buf:
            self._buf += data
            if len(self._buf) < self._need:
                return []  # e.g. the middle of a large bulk: nothing to parse yet
            buf = bytes(self._buf)
        else:
            # The common case: the read holds whole commands and nothing was left over, so
            # parse the received bytes themselves; every argument is then one slice.
            buf = data if type(data) is bytes else bytes(data)
        out: list[list[bytes]] = []
        try:
            pos = self._parse(buf, out)
        except ProtocolError as exc:
            exc.commands = out
            self._failed = exc
            self._buf = bytearray()
            self._argv = []
            self._argv_bytes = 0
            raise
        self._buf = bytearray(memoryview(buf)[pos:]) if pos < len(buf) else bytearray()
        return out

    def _parse(self, buf: bytes, out: list[list[bytes]]) -> int:
        """Parse complete commands from `buf` into `out`; return how many bytes were used.

        Header lines are looked up in small tables of the valid ones ("*3", "$16"): one
        slice and one dict probe per argument in the common case; anything else takes the
        exact (slower) path with Redis's validation and error texts.
        """
        n = len(buf)
        pos = 0
        find = buf.find
        bulk_header = _BULK_HEADERS.get
        argv = self._argv
        held = len(argv)  # arguments of a partial command from earlier feeds
        remaining = self._remaining
        bulk_len = self._bulk_len
        bulk_limit = self.max_bulk_len
        authenticated = self.authenticated
        # Header-table hits above this count take the exact path (limits, pre-AUTH rules).
        argv_limit = self.max_argv if authenticated else _UNAUTH_MAX_ARGV
        if not authenticated:
            bulk_limit = min(bulk_limit, _UNAUTH_MAX_BULK)
        self._need = 0
        # The whole-command fast path, tried once per feed: at the start of the read, or after
        # the exact path finished a command left over from the previous read.
        fast = (
            authenticated
            and n <= _FAST_MAX_READ
            and bulk_limit >= _FAST_MAX_BULK
            and argv_limit >= _FAST_MAX_ARGV
            and self._fast
        )
        while True:
            if remaining == 0:
                if pos >= n:
                    break
                if fast and buf[pos] == _STAR:
                    fast = False
                    used = _parse_whole(buf[pos:] if pos else buf, out)
                    if used:
                        pos += used
                        continue
                if buf[pos] != _STAR:
                    end = self._parse_inline(buf, pos, out)
                    if end < 0:
                        break
                    pos = end
                    if not authenticated and out:
                        break  # pre-AUTH: one command at a time, see `authenticated`
                    continue
                nl = find(b"\r", pos)
                if nl < 0 or nl + 1 >= n:
                    if n - pos > self.max_inline_len:
                        raise ProtocolError("Protocol error: too big mbulk count string")
                    break
                count = _MULTIBULK_HEADERS.get(buf[pos:nl])
                if count is None or count > argv_limit:
                    count = self._multibulk_count(buf[pos + 1 : nl])
                pos = nl + 2
                if count <= 0:
                    continue  # "*0" and "*-1" are empty commands: nothing to run
                remaining = count
                argv = []
            # Inside a multibulk command: read bulks until `remaining` reaches zero.
            while remaining:
                if bulk_len < 0:
                    nl = find(b"\r", pos)
                    if nl < 0 or nl + 1 >= n:
                        if n - pos > self.max_inline_len:
                            raise ProtocolError("Protocol error: too big bulk count string")
                        break
                    length = bulk_header(buf[pos:nl])
                    if length is None or length > bulk_limit:
                        length = self._bulk_length(buf, pos, nl)
                    bulk_len = length
                    pos = nl + 2
                end = pos + bulk_len
                if end + 2 > n:
                    self._need = end + 2 - pos  # counted from `pos`, where _buf will start
                    break
                argv.append(buf[pos:end])
                pos = end + 2  # Redis skips the trailing CRLF without checking it
                bulk_len = -1
                remaining -= 1
            if remaining:
                # Partial command: account for the arguments it gained in this feed.
                self._argv_bytes += sum(map(len, argv[held:]))
                break
            out.append(argv)
            argv = []
            held = 0
            self._argv_bytes = 0
            if not authenticated:
                break
        self._argv = argv
        self._remaining = remaining
        self._bulk_len = bulk_len
        return min(pos, n)

    def _multibulk_count(self, raw: bytes) -> int:
        count = _string2ll(raw)
        if count is None or count > self.max_argv:
            raise ProtocolError("Protocol error: invalid multibulk length")
        if count > _UNAUTH_MAX_ARGV and not self.authenticated:
            raise ProtocolError("Protocol error: unauthenticated multibulk length")
        return count

    def _bulk_length(self, buf: bytes, pos: int, nl: int) -> int:
        if buf[pos] != _DOLLAR:
            got = chr(buf[pos])  # latin-1: one byte, one char
            raise ProtocolError(f"Protocol error: expected '$', got '{got}'")
        length = _string2ll(buf[pos + 1 : nl])
        if length is None or length < 0 or length > self.max_bulk_len:
            raise ProtocolError("Protocol error: invalid bulk length")
        if length > _UNAUTH_MAX_BULK and not self.authenticated:
            raise ProtocolError("Protocol error: unauthenticated bulk length")
        return length

    def _parse_inline(self, buf: bytes, pos: int, out: list[list[bytes]]) -> int:
        """Parse one inline command at `pos`; return the position after it, or -1 to wait."""
        nl = buf.find(b"\n", pos)
        if nl < 0:
            if len(buf) - pos > self.max_inline_len:
                raise ProtocolError("Protocol error: too big inline request")
            return -1
        end = nl - 1 if nl > pos and buf[nl - 1] == 0x0D else nl
        argv = split_inline(buf[pos:end])
        if argv is None:
            raise ProtocolError("Protocol error: unbalanced quotes in request")
        if argv:
            out.append(argv)
        return nl + 1


# Header lines that need no validation: "*1".."*1023" and "$0".."$4095" (their values are
# Redis-valid integers; limits are still checked by the caller).
_FAST_MAX_ARGV = 1023
_FAST_MAX_BULK = 4095
_MULTIBULK_HEADERS = {b"*%d" % i: i for i in range(1, _FAST_MAX_ARGV + 1)}
_BULK_HEADERS = {b"$%d" % i: i for i in range(_FAST_MAX_BULK + 1)}  # ~0.5 MB; larger are rarer
_FAST_MAX_READ = 1 << 20  # `_parse_whole` splits the whole read: not for reads beyond this


def _parse_whole(buf: bytes, out: list[list[bytes]]) -> int:
    """The fast path: complete, plainly written multibulk commands at the start of `buf`.

    (Called with the rest of a read after a leftover command, so pipelines whose reads end
    mid-command, like `redis-cli --pipe`'s, take it too.)

    One split at every CRLF cuts the read into header and payload tokens; a command is taken
    only if every header is in the tables above and every payload has its header's length
    (so no payload held a CRLF). Those bytes would parse to exactly the same argvs on the exact
    path, which takes over at the first command that does not qualify (inline, partial, large,
    malformed: limits and error texts stay its business). Returns the bytes used. The caller
    checks that the limits are not below the tables' ranges and that the client is
    authenticated. About 2x faster than the exact path for -P 16 style reads of SET/GET
    (docs/benchmarks.md, "RESP request parser").
    """
    tokens = buf.split(b"\r\n")
    ntok = len(tokens) - 1  # the last token is not followed by CRLF: never part of a command
    multibulk = _MULTIBULK_HEADERS.get
    bulk = _BULK_HEADERS.get
    i = 0
    while i < ntok:
        count = multibulk(tokens[i])
        if count is None:
            break
        j = i + 1 + 2 * count
        if j > ntok:
            break  # incomplete
        argv = tokens[i + 2 : j : 2]
        k = i + 1
        for arg in argv:
            if bulk(tokens[k]) != len(arg):
                break
            k += 2
        else:
            out.append(argv)
            i = j
            continue
        break
    if i == 0:
        return 0
    if i == ntok:  # the whole read but its unterminated tail (the commonest case)
        return len(buf) - len(tokens[ntok])
    return sum(map(len, tokens[:i])) + 2 * i


# -- inline commands (Redis's sdssplitargs) ---------------------------------------------------

_SPECIAL_INLINE = (b'"', b"'", b"\x00", b"\x0b", b"\x0c")
_C_SPACE = frozenset(b" \t\n\x0b\x0c\r")  # C isspace()
_TOKEN_END = frozenset(b" \n\r\t")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_ESCAPES = {ord("n"): 0x0A, ord("r"): 0x0D, ord("t"): 0x09, ord("b"): 0x08, ord("a"): 0x07}


def split_inline(line: bytes) -> list[bytes] | None:
    """Split an inline command line as Redis does; None means unbalanced quotes."""
    if not any(s in line for s in _SPECIAL_INLINE):
        return line.split()
    return _split_inline_slow(line)


def _split_inline_slow(line: bytes) -> list[bytes] | None:
    nul = line.find(b"\x00")
    if nul >= 0:
        line = line[:nul]  # sdssplitargs works on a C string: a NUL ends the line
    n = len(line)
    args: list[bytes] = []
    i = 0
    while True:
        while i < n and line[i] in _C_SPACE:
            i += 1
        if i >= n:
            return args
        cur = bytearray()
        in_dq = in_sq = False
        while True:
            c = line[i] if i < n else 0
            if in_dq:
                if (
                    c == 0x5C
                    and i + 3 < n
                    and line[i + 1] == 0x78
                    and line[i + 2] in _HEX
                    and line[i + 3] in _HEX
                ):
                    cur.append(int(line[i + 2 : i + 4], 16))
                    i += 3
                elif c == 0x5C and i + 1 < n:
                    i += 1
                    cur.append(_ESCAPES.get(line[i], line[i]))
                elif c == 0x22:
                    if i + 1 < n and line[i + 1] not in _C_SPACE:
                        return None
                    i += 1
                    break
                elif i >= n:
                    return None
                else:
                    cur.append(c)
            elif in_sq:
                if c == 0x5C and i + 1 < n and line[i + 1] == 0x27:
                    i += 1
                    cur.append(0x27)
                elif c == 0x27:
                    if i + 1 < n and line[i + 1] not in _C_SPACE:
                        return None
                    i += 1
                    break
                elif i >= n:
                    return None
                else:
                    cur.append(c)
            else:
                if i >= n or c in _TOKEN_END:
                    break
                if c == 0x22:
                    in_dq = True
                elif c == 0x27:
                    in_sq = True
                else:
                    cur.append(c)
            i += 1
        args.append(bytes(cur))


# -- replies ---------------------------------------------------------------------------------


def format_double(value: float) -> bytes:
    """A double as Redis 7.0 writes it: inf, -inf, nan, else printf's %.17g."""
    if value != value:
        return b"nan"
    if value == float("inf"):
        return b"inf"
    if value == float("-inf"):
        return b"-inf"
    return b"%.17g" % value


def _line(text: str) -> bytes:
    """Simple strings and errors are one line: Redis replaces CR/LF inside them with spaces."""
    raw = text.encode()
    if b"\r" in raw or b"\n" in raw:
        raw = raw.replace(b"\r", b" ").replace(b"\n", b" ")
    return raw


_OK = SimpleString("OK")
_CACHED_SIMPLE: dict[str, bytes] = {}

_Encoder = Callable[[bytearray, object, int], None]


def encode(value: object, protocol: int = 2) -> bytes:
    """Encode one reply value for a connection speaking RESP `protocol` (2 or 3)."""
    out = bytearray()
    encode_into(out, value, protocol)
    return bytes(out)


def encode_into(out: bytearray, value: object, protocol: int) -> None:
    """Append the encoding of `value` to `out` (lets a pipeline build one write buffer)."""
    t = type(value)
    if t is bytes:
        out += b"$%d\r\n" % len(value)  # type: ignore[arg-type]
        out += value  # type: ignore[arg-type]
        out += b"\r\n"
    elif t is SimpleString:
        text: str = value.text  # type: ignore[attr-defined]
        cached = _CACHED_SIMPLE.get(text)
        if cached is None:
            cached = b"+" + _line(text) + b"\r\n"
            if len(_CACHED_SIMPLE) < 256:
                _CACHED_SIMPLE[text] = cached
        out += cached
    elif t is int:
        out += b":%d\r\n" % value  # type: ignore[str-format]
    elif value is None:
        out += b"$-1\r\n" if protocol == 2 else b"_\r\n"
    else:
        encoder = _ENCODERS.get(t)
        if encoder is None:
            encoder = _encoder_for(value)
        encoder(out, value, protocol)


def _enc_error(out: bytearray, value: object, protocol: int) -> None:
    assert isinstance(value, Error)
    out += b"-" + _line(value.message) + b"\r\n"


def _enc_array(out: bytearray, value: object, protocol: int) -> None:
    assert isinstance(value, (list, tuple))
    out += b"*%d\r\n" % len(value)
    for item in value:
        encode_into(out, item, protocol)


def _enc_null_array(out: bytearray, value: object, protocol: int) -> None:
    out += b"*-1\r\n" if protocol == 2 else b"_\r\n"


def _enc_double(out: bytearray, value: object, protocol: int) -> None:
    assert isinstance(value, Double)
    text = format_double(value.value)
    if protocol == 2:
        out += b"$%d\r\n%s\r\n" % (len(text), text)
    else:
        out += b",%s\r\n" % text


def _enc_human_double(out: bytearray, value: object, protocol: int) -> None:
    assert isinstance(value, HumanDouble)
    text = value.text
    if protocol == 2:
        out += b"$%d\r\n%s\r\n" % (len(text), text)
    else:
        out += b",%s\r\n" % text


def _enc_boolean(out: bytearray, value: object, protocol: int) -> None:
    assert isinstance(value, Boolean)
    if protocol == 2:
        out += b":1\r\n" if value.value else b":0\r\n"
    else:
        out += b"#t\r\n" if value.value else b"#f\r\n"


def _enc_map(out: bytearray, value: object, protocol: int) -> None:
    assert isinstance(value, Map)
    items = value.items
    if protocol == 2 and value.nested:
        out += b"*%d\r\n" % len(items)
        for key, item in items:
            out += b"*2\r\n"
            encode_into(out, key, protocol)
            encode_into(out, item, protocol)
        return
    out += b"*%d\r\n" % (2 * len(items)) if protocol == 2 else b"%%%d\r\n" % len(items)
    for key, item in items:
        encode_into(out, key, protocol)
        encode_into(out, item, protocol)


def _enc_pairs(out: bytearray, value: object, protocol: int) -> None:
    assert isinstance(value, Pairs)
    items = value.items
    if protocol == 2:
        out += b"*%d\r\n" % (2 * len(items))
        for first, second in items:
            encode_into(out, first, protocol)
            encode_into(out, second, protocol)
    else:
        out += b"*%d\r\n" % len(items)
        for first, second in items:
            out += b"*2\r\n"
            encode_into(out, first, protocol)
            encode_into(out, second, protocol)


def _enc_set(out: bytearray, value: object, protocol: int) -> None:
    assert isinstance(value, Set)
    out += b"%c%d\r\n" % (0x2A if protocol == 2 else 0x7E, len(value.items))
    for item in value.items:
        encode_into(out, item, protocol)


def _enc_push(out: bytearray, value: object, protocol: int) -> None:
    assert isinstance(value, Push)
    out += b"%c%d\r\n" % (0x2A if protocol == 2 else 0x3E, len(value.items))
    for item in value.items:
        encode_into(out, item, protocol)


def _enc_verbatim(out: bytearray, value: object, protocol: int) -> None:
    assert isinstance(value, Verbatim)
    if protocol == 2:
        out += b"$%d\r\n%s\r\n" % (len(value.text), value.text)
    else:
        fmt = value.format.encode()[:3].ljust(3)
        out += b"=%d\r\n%s:%s\r\n" % (len(value.text) + 4, fmt, value.text)


def _enc_bytelike(out: bytearray, value: object, protocol: int) -> None:
    raw = bytes(value)  # type: ignore[call-overload]
    out += b"$%d\r\n%s\r\n" % (len(raw), raw)


def _enc_array_header(out: bytearray, value: object, protocol: int) -> None:
    out += b"*%d\r\n" % value.count  # type: ignore[attr-defined]


def _enc_bool(out: bytearray, value: object, protocol: int) -> None:
    out += b":1\r\n" if value else b":0\r\n"


_ENCODERS: dict[type, _Encoder] = {
    Error: _enc_error,
    list: _enc_array,
    tuple: _enc_array,
    NullArray: _enc_null_array,
    Double: _enc_double,
    HumanDouble: _enc_human_double,
    Boolean: _enc_boolean,
    Map: _enc_map,
    Pairs: _enc_pairs,
    Set: _enc_set,
    Push: _enc_push,
    Verbatim: _enc_verbatim,
    bytearray: _enc_bytelike,
    memoryview: _enc_bytelike,
    bool: _enc_bool,
    ArrayHeader: _enc_array_header,
}


def _encoder_for(value: object) -> _Encoder:
    """Subclasses of the known types (rare) encode like their base; anything else is a bug."""
    for base, encoder in _ENCODERS.items():
        if isinstance(value, base):
            return encoder
    if isinstance(value, bytes):
        return _enc_bytelike
    if isinstance(value, int):
        return lambda out, v, p: encode_into(out, int(v), p)  # type: ignore[call-overload]
    raise TypeError(f"not a reply value: {type(value).__name__}")
