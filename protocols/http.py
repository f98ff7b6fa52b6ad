"""HTTP/1.x start lines and heads, for the cases h11 cannot take: detection and cut buffers.

h11 (used by `decoders.http`) parses complete, well-formed messages. This module holds what it does not
do: recognise a request or status line at the start of a channel (to score it), find the next start
line after lost bytes (resynchronisation), and read what is legible in a head that a tracer cut
(`GET /x HTTP/1.1\\r\\nUser` from `strace -s 20`). Pure functions on bytes; nothing here raises on
garbage.

Decoded: request lines, status lines, header lines that end in a line break. Not decoded: bodies,
HTTP/2 (its preface `PRI * HTTP/2.0` is refused on purpose: it is another protocol).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Methods recognised in a buffer cut before its `HTTP/1.x`: RFC 9110, WebDAV (RFC 4918, 3253, 5323)
# and common extensions. A complete request line needs no list: any token followed by `HTTP/1.x` is one.
KNOWN_METHODS = frozenset(
    {
        "GET",
        "HEAD",
        "POST",
        "PUT",
        "DELETE",
        "CONNECT",
        "OPTIONS",
        "TRACE",
        "PATCH",
        "PROPFIND",
        "PROPPATCH",
        "MKCOL",
        "COPY",
        "MOVE",
        "LOCK",
        "UNLOCK",
        "REPORT",
        "MKACTIVITY",
        "CHECKOUT",
        "MERGE",
        "SEARCH",
        "PURGE",
        "LINK",
        "UNLINK",
        "BIND",
        "REBIND",
        "UNBIND",
        "ACL",
        "MKCALENDAR",
        "VERSION-CONTROL",
        "UPDATE",
        "LABEL",
        "BASELINE-CONTROL",
        "MKWORKSPACE",
        "ORDERPATCH",
        "UPDATEREDIRECTREF",
    }
)

# A whole request line: token, target, version, line end. The target is visible ASCII or bytes above
# 0x7f: curl and raw clients send a URL typed with `é` or `日本` as its UTF-8 bytes, not percent-encoded.
REQUEST_LINE = re.compile(
    rb"([!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}) ([!-~\x80-\xff]{1,65536}) HTTP/(1\.[01])\r?\n"
)
# The beginning of a status line: enough to know a response starts here.
STATUS_START = re.compile(rb"HTTP/(1\.[01]) ([1-9][0-9]{2})(?:[ \r\n]|$)")
STATUS_LINE = re.compile(rb"HTTP/(1\.[01]) ([1-9][0-9]{2})(?: ([^\r\n]*))?(\r?\n)?")
# A request line cut before its version: a known method, a space, the start of a target.
_CUT_REQUEST = re.compile(rb"([A-Z][A-Z-]{2,31}) ([/*]|[a-zA-Z][a-zA-Z0-9+.-]*:|[^ \r\n]*:[0-9])")

MAX_START_LINE = 65536 + 64


def request_line_at(data: bytes | bytearray, pos: int = 0) -> re.Match[bytes] | None:
    """The whole request line starting exactly at `pos`, if there is one."""
    return REQUEST_LINE.match(data, pos)


def status_line_at(data: bytes | bytearray, pos: int = 0) -> re.Match[bytes] | None:
    """The start of a status line (`HTTP/1.x NNN`) exactly at `pos`, if there is one."""
    return STATUS_START.match(data, pos)


def looks_like_cut_request(data: bytes | bytearray) -> bool:
    """A buffer that starts like a request line but was cut before `HTTP/1.x` (strace -s 16)."""
    match = _CUT_REQUEST.match(data)
    if not match or match.group(1).decode("ascii") not in KNOWN_METHODS:
        return False
    return b"\n" not in data[: match.end()]


@dataclass
class PartialHead:
    """What could be read from the head of a message that was cut or that h11 refused."""

    method: str | None = None
    target: str | None = None
    status: int | None = None
    reason: str | None = None
    http_version: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    complete: bool = False  # the blank line ending the head was seen
    length: int = 0  # bytes of the head that were read (up to and including the blank line)


def _text(raw: bytes) -> str:
    return raw.decode("latin-1")


def url_text(raw: bytes | bytearray) -> str:
    """A request target as text: UTF-8 when it is (a URL with `é` sent raw), else byte for byte."""
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return _text(bytes(raw))


def parse_partial_head(data: bytes | bytearray, requests: bool) -> PartialHead | None:
    """Read a head as far as it goes: the start line (even cut) and every header line that ended.

    Returns None when not even the start of a start line is there.
    """
    data = bytes(data)
    head = PartialHead()
    line_end = data.find(b"\n")
    first = data if line_end < 0 else data[:line_end]
    first = first.rstrip(b"\r")
    if requests:
        parts = first.split(b" ")
        if len(parts) < 2 or not parts[0] or not re.fullmatch(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}", parts[0]):
            return None
        if line_end < 0 and parts[0].decode("ascii") not in KNOWN_METHODS:
            return None
        head.method = _text(parts[0])
        head.target = url_text(parts[1]) or None
        if len(parts) >= 3 and parts[2].startswith(b"HTTP/"):
            head.http_version = _text(parts[2][5:]) or None
    else:
        match = STATUS_LINE.match(first)
        if not match:
            return None
        head.http_version = _text(match.group(1))
        head.status = int(match.group(2))
        # a reason cut by the tracer ("Moved P") says nothing the status code does not: keep it whole or not at all
        head.reason = _text(match.group(3)) if match.group(3) and line_end >= 0 else None
    if line_end < 0:
        head.length = len(data)
        return head
    pos = line_end + 1
    while True:
        end = data.find(b"\n", pos)
        if end < 0:
            break
        line = data[pos:end].rstrip(b"\r")
        pos = end + 1
        if not line:
            head.complete = True
            break
        name, colon, value = line.partition(b":")
        if colon and name and not name[:1].isspace():
            head.headers.append((_text(name.strip()), _text(value.strip())))
    head.length = pos
    return head
