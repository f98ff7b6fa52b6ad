r"""strace's quoted strings back into the bytes the program moved.

strace prints buffers as C string literals (`"GET / HTTP/1.1\r\n"`, octal `\377`, `\xhh` with -x or
-xx) and marks a buffer it cut with `...` after the closing quote. Python's own escape decoder speaks
the same escapes and runs in C, which keeps replay fast.
"""

from __future__ import annotations

import codecs
import re

_escape_decode = codecs.escape_decode  # type: ignore[attr-defined]

# A quoted literal: escapes are any backslash pair, so an escaped quote never ends the string.
_QUOTED = re.compile(r'"([^"\\]*+(?:\\.[^"\\]*+)*+)"(\.\.\.)?', re.S)


def unescape(body: str) -> bytes:
    """The bytes of a literal's body (without its quotes)."""
    raw = body.encode("utf-8", "surrogateescape")
    if b"\\" not in raw:
        return raw
    try:
        return _escape_decode(raw)[0]
    except ValueError:
        # A damaged log: an escape cut (`\x4` at the end) or broken (`\xZZ`) anywhere in the literal.
        # Each escape that is whole is decoded, any other backslash kept as it is.
        return _ESCAPE.sub(_one_escape, raw)


_ESCAPE = re.compile(rb"\\(?:x[0-9a-fA-F]{2}|[0-7]{1,3}|[\\'\"abfnrtv\n])")


def _one_escape(match: re.Match[bytes]) -> bytes:
    return _escape_decode(match.group())[0]  # type: ignore[no-any-return]


def parse_quoted(text: str, start: int = 0) -> tuple[bytes, bool, int] | None:
    """Parse the literal at `text[start]`: (bytes, cut by the tracer, index after it), or None."""
    match = _QUOTED.match(text, start)
    if match is None:
        return None
    return unescape(match.group(1)), match.group(2) is not None, match.end()


def literal_bytes(arg: str) -> tuple[bytes, bool] | None:
    """The bytes of an argument that is one quoted literal (possibly cut), or None."""
    arg = arg.strip()
    if not arg.startswith('"'):
        return None
    parsed = parse_quoted(arg)
    if parsed is None:
        # An unterminated literal: the log line itself was cut.
        return unescape(arg[1:]), True
    data, cut, _ = parsed
    return data, cut
