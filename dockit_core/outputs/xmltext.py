"""Any byte a program used in a path or an argument, written so that the XML stays valid."""

from __future__ import annotations

import re

# XML 1.0 forbids most control characters; lone surrogates come from invalid UTF-8 (surrogateescape).
_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def xml_safe(text: str) -> str:
    """`text` with every character XML cannot hold shown as a `\\xNN` escape."""
    return _INVALID.sub(_escape, text) if _INVALID.search(text) else text
