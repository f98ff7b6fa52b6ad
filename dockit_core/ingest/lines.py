"""A trace's lines, each held in memory only up to a limit: a log is untrusted input, and a line without
an end (10 GiB of NUL in a 10 MB gzip) must not become a string of that size. A longer line is read
through in pieces, counted as unparsed and reported, never held.

The log is read through a text stream's `readline(limit)`, which never reads more than the limit into
one string; a read error of the log (a gzip cut short, a disk error) is a `LogReadError`, so that it is
never mistaken for a failure to write an output.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from typing import IO

DEFAULT_MAX_LINE = 64 * 1024 * 1024  # characters of one line; --max-line changes it
_SKIP_PIECE = 1024 * 1024


class LogReadError(Exception):
    """The log could not be read (the message says why): not an output's failure."""


class Overlong(str):
    """What is yielded in place of a line longer than the limit: a note saying so, which the session
    counts as an unparsed line (the line itself was never held)."""

    __slots__ = ()


def bounded_lines(stream: IO[str], limit: int = DEFAULT_MAX_LINE) -> Iterator[str]:
    """The lines of `stream`; a line longer than `limit` characters (its newline aside) is read through
    and an `Overlong` note is yielded instead."""
    readline = stream.readline
    try:
        while True:
            line = readline(limit + 1)
            if not line:
                return
            if line[-1] == "\n" or len(line) <= limit:
                yield line
                continue
            length = len(line)
            del line
            while True:  # the rest of the line, read and dropped a piece at a time
                piece = readline(_SKIP_PIECE)
                length += len(piece)
                if not piece or piece[-1] == "\n":
                    if piece:
                        length -= 1
                    break
            yield Overlong(
                f"<a line of {length} characters, over the limit of {limit} (--max-line): skipped>"
            )
    except (OSError, EOFError, zlib.error) as error:  # a gzip that is not one or is cut, a read error
        raise LogReadError(str(error) or type(error).__name__) from error


_SIZE = re.compile(r"(\d+)\s*([KMGkmg]?)(?:i?[Bb])?")
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def parse_size(text: str) -> int | None:
    """`64M`, `1G`, `1048576`: a size in bytes (K, M and G are powers of 1024); None if unreadable."""
    match = _SIZE.fullmatch(text.strip())
    if match is None or len(match.group(1)) > 15:
        return None
    return int(match.group(1)) * _UNITS[match.group(2).upper()]
