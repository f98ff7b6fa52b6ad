"""RESP, the Redis serialization protocol (RESP2 and RESP3): one direction's bytes in, values out.

Framing, as the specification (redis.io/docs/reference/protocol-spec) lays it out: every value begins
with a type byte and ends with CRLF. Lines: `+` simple string, `-` error, `:` integer, `_` null, `,`
double, `#` boolean, `(` big number. Blobs (a length line, that many bytes, CRLF): `$` bulk string
(`$-1` is RESP2's null), `!` blob error, `=` verbatim string (`txt:` then the text). Aggregates (a count
line, then that many values): `*` array (`*-1` null), `%` map (count pairs), `~` set, `>` push (a
message the server sends unasked: pub/sub, client-side caching invalidations), `|` attribute (a map
that comes before the value it describes). A client sends arrays of bulk strings; a person at a
terminal may send an inline command instead, words on one line.

`RespReader` is incremental and sans-IO: `feed(data)` returns the values completed, whatever the
calls' boundaries. Its memory is bounded whatever the input claims: a blob's bytes are kept up to
`keep` bytes (the rest is counted, never stored), a value keeps at most `MAX_NODES` elements (the
others counted), and only an unfinished line waits between calls (`MAX_LINE`). `$999999999` costs a
counter, not a gigabyte.

On damage (a type byte that is none, a length that is no number, a blob not followed by CRLF, a line
past `MAX_LINE`) the reader drops the value it was reading and resynchronises: it skips to the next
place where a value plausibly starts (a client's `*N\r\n$`; for a server, a line that starts with a
type byte). Bytes the tracer lost (`skip`) are counted against the blob being read, when one is;
otherwise the value being read is given back cut (`truncated`) and the reader resynchronises.

Not decoded: RESP3's streamed strings and aggregates (`$?`, `*?`; no Redis server sends them), which
are treated as damage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_LINE = 64 * 1024  # an inline command or a header line longer than this is damage
MAX_NODES = 4096  # elements kept per value; the rest counted, not kept
MAX_DEPTH = 64  # nesting deeper than this is damage (Redis itself stops at 128 for replies)
KEEP = 256  # bytes of each string kept by default

SIMPLE, ERROR, INTEGER, BULK, ARRAY = "+", "-", ":", "$", "*"
NULL, DOUBLE, BOOLEAN, BLOB_ERROR, VERBATIM, BIG_NUMBER = "_", ",", "#", "!", "=", "("
MAP, SET, ATTRIBUTE, PUSH = "%", "~", "|", ">"
INLINE = "inline"  # a client's inline command: its words are the value's elements

LINE_TYPES = frozenset({SIMPLE, ERROR, INTEGER, NULL, DOUBLE, BOOLEAN, BIG_NUMBER})
BLOB_TYPES = frozenset({BULK, BLOB_ERROR, VERBATIM})
AGGREGATE_TYPES = frozenset({ARRAY, MAP, SET, ATTRIBUTE, PUSH})
TYPE_BYTES = LINE_TYPES | BLOB_TYPES | AGGREGATE_TYPES

# What the summary calls each type (`ReplyType`).
TYPE_NAMES = {
    SIMPLE: "string",
    ERROR: "error",
    INTEGER: "integer",
    BULK: "bulk",
    NULL: "null",
    ARRAY: "array",
    MAP: "map",
    SET: "set",
    DOUBLE: "double",
    BOOLEAN: "boolean",
    BLOB_ERROR: "error",
    VERBATIM: "verbatim",
    BIG_NUMBER: "bignumber",
    PUSH: "push",
    ATTRIBUTE: "attribute",
    INLINE: "inline",
}

_REQUEST_START = re.compile(rb"(?:^|(?<=\n))\*[0-9]{1,9}\r\n\$")
_REPLY_START = re.compile(rb"(?:^|(?<=\n))[-+:$*_,#!=(%~|>]")


@dataclass(slots=True)
class Value:
    """One RESP value. `size` is what the protocol said: a string's length in bytes, an aggregate's
    element count (a map's pair count), -1 for RESP2's null bulk and array. `data` holds a string's first
    bytes (all of a line's), `items` an aggregate's first elements; `truncated` says bytes or
    elements are missing (cut on purpose or lost by the tracer)."""

    kind: str
    size: int = 0
    data: bytes = b""
    items: list[Value] | None = None
    truncated: bool = False
    attribute: Value | None = None  # RESP3: the attribute map that came before this value

    @property
    def is_null(self) -> bool:
        return self.kind == NULL or (self.size < 0 and self.kind in (BULK, ARRAY))

    @property
    def is_error(self) -> bool:
        return self.kind in (ERROR, BLOB_ERROR)

    @property
    def type_name(self) -> str:
        return "null" if self.is_null else TYPE_NAMES[self.kind]

    def text(self) -> str:
        """The string's kept bytes as text (a verbatim string without its `txt:` prefix)."""
        data = self.data[4:] if self.kind == VERBATIM and self.data[3:4] == b":" else self.data
        return data.decode("utf-8", "replace")

    def integer(self) -> int | None:
        try:
            return int(self.data)
        except ValueError:
            return None


@dataclass(slots=True)
class Message:
    """A whole top-level value, with where it came from: `start` and `end` are the tags given to `feed`
    with the bytes where it began and ended (a call index, a time)."""

    value: Value
    start: object
    end: object
    wire_size: int  # bytes it took on the wire (lost ones included)
    lost: bool = False  # the tracer lost some of its bytes


class Damaged(ValueError):
    """The bytes are not RESP where a value should be."""


@dataclass(slots=True)
class _Open:
    """An aggregate being read: its value and how many elements are still to come."""

    value: Value
    left: int


@dataclass
class RespReader:
    """One direction's bytes to `Message`s. `client`: the side that sends commands (inline commands
    are read only there, and resynchronisation looks for `*N\\r\\n$`)."""

    client: bool
    keep: int = KEEP
    _buffer: bytearray = field(default_factory=bytearray)
    _stack: list[_Open] = field(default_factory=list)
    _blob: Value | None = None  # the blob being read
    _blob_left: int = 0
    _crlf_left: int = 0  # CRLF bytes still expected after a blob
    _attribute: Value | None = None  # a top-level attribute waiting for its value
    _nodes: int = 0
    _start: object = None
    _wire: int = 0
    _resync: bool = False
    _lost: bool = False  # the value being read lost bytes
    damaged: int = 0  # times the stream was damaged (or lost bytes) and resynchronised

    @property
    def reading(self) -> bool:
        """Whether a value is half read."""
        return bool(self._stack or self._blob is not None or self._crlf_left or self._buffer)

    @property
    def reading_start(self) -> object:
        return self._start if self.reading else None

    def feed(self, data: bytes, tag: object = None) -> list[Message]:
        """The values that `data` completes. `tag` marks where each began and ended."""
        out: list[Message] = []
        if not data:
            return out
        buffer = self._buffer
        if not buffer and not self._stack and self._blob is None and not self._crlf_left and not self._resync:
            simple = self._whole(data, tag)
            if simple is not None:
                return simple
        buffer += data
        position = 0
        length = len(buffer)
        while position < length:
            if self._resync:
                found = self._find_start(buffer, position)
                if found < 0:
                    position = max(position, length - 32)  # keep a tail: a start may span calls
                    break
                position = found
                self._resync = False
                self._start = tag
                self._wire = 0
            try:
                position = self._step(buffer, position, length, tag, out)
            except Damaged:
                self._damage()
                position += 1
                continue
            if position < 0:  # needs more bytes
                position = -position - 1
                break
        del buffer[:position]
        if len(buffer) > MAX_LINE:
            buffer.clear()
            self._damage()
        if buffer and self._start is None and not self._resync:
            self._start = tag  # a line begun here ends in a later call
        return out

    def _whole(self, data: bytes, tag: object) -> list[Message] | None:
        """The common case read at once: `data` is exactly one command (an array of short bulk strings)
        or one simple reply (a line, or a short bulk string). None: anything else, for the general path."""
        first = data[:1]
        end = data.find(b"\r\n")
        if end < 2 or not data.endswith(b"\r\n"):
            return None
        if first == b"*" and self.client:
            if not data[1:end].isdigit():
                return None
            count, at, items = int(data[1:end]), end + 2, []
            if count > 64 or count == 0:
                return None
            for _ in range(count):
                if data[at : at + 1] != b"$":
                    return None
                end = data.find(b"\r\n", at)
                if end < 0 or not data[at + 1 : end].isdigit():
                    return None
                size = int(data[at + 1 : end])
                at = end + 2 + size
                if size > self.keep or data[at : at + 2] != b"\r\n":
                    return None
                items.append(Value(BULK, size, data[end + 2 : at]))
                at += 2
            if at != len(data):
                return None
            return [Message(Value(ARRAY, count, items=items), tag, tag, len(data))]
        if self.client:
            return None
        if first in (b"+", b"-", b":") and end == len(data) - 2:
            body = data[1:end]
            if len(body) > self.keep or (first == b":" and not _is_integer(body)):
                return None
            return [Message(Value(first.decode(), len(body), body), tag, tag, len(data))]
        if first == b"$" and data[1:end].isdigit():
            size = int(data[1:end])
            if size <= self.keep and len(data) == end + 2 + size + 2:
                return [Message(Value(BULK, size, data[end + 2 : end + 2 + size]), tag, tag, len(data))]
        return None

    def skip(self, count: int, tag: object = None) -> Message | None:
        """`count` bytes the tracer lost. Inside a blob they are only counted; elsewhere the value
        being read comes back cut (`truncated`), and the reader resynchronises."""
        if count <= 0:
            return None
        self._wire += count
        self._lost = True
        if self._blob is not None and not self._buffer and count <= self._blob_left + 2:
            self._blob.truncated = True
            if count <= self._blob_left:
                self._blob_left -= count
                if self._blob_left == 0:
                    self._crlf_left = 2
            else:  # the blob's end and part of its CRLF
                self._crlf_left = 2 - (count - self._blob_left)
                self._blob_left = 0
                if not self._crlf_left:
                    out: list[Message] = []
                    self._finish_blob(tag, out)
                    return out[0] if out else None
            return None
        cut = self._cut(tag)
        self._damage()
        return cut

    def _find_start(self, buffer: bytearray, position: int) -> int:
        pattern = _REQUEST_START if self.client else _REPLY_START
        match = pattern.search(buffer, position)
        return match.start() if match else -1

    def _damage(self) -> None:
        self.damaged += 1
        self._lost = False
        self._stack.clear()
        self._blob = None
        self._blob_left = self._crlf_left = 0
        self._attribute = None
        self._nodes = 0
        self._resync = True

    def _cut(self, tag: object) -> Message | None:
        """What was read of the current value, marked truncated (the tracer lost the rest)."""
        root: Value | None = self._stack[0].value if self._stack else self._blob
        if root is None:
            return None
        root.truncated = True
        for open_ in self._stack:
            open_.value.truncated = True
        return Message(root, self._start, tag, self._wire, lost=True)

    def _step(self, buffer: bytearray, position: int, length: int, tag: object, out: list[Message]) -> int:
        """Reads one piece (a blob's bytes, a CRLF, a line) from `position`; returns the position after
        it, or -(position+1) when more bytes are needed."""
        if self._blob_left:
            left = self._blob_left
            if length - position >= left + 2 and self._blob is not None:  # the whole rest is here
                blob = self._blob
                room = self.keep - len(blob.data)
                if room > 0:
                    blob.data += bytes(buffer[position : position + min(room, left)])
                if buffer[position + left : position + left + 2] != b"\r\n":
                    raise Damaged("a blob not followed by CRLF")
                self._blob_left = 0
                self._wire += left + 2
                self._finish_blob(tag, out)
                return position + left + 2
            take = min(self._blob_left, length - position)
            blob = self._blob
            assert blob is not None
            room = self.keep - len(blob.data)
            if room > 0:
                blob.data += bytes(buffer[position : position + min(room, take)])
            self._blob_left -= take
            self._wire += take
            position += take
            if self._blob_left:
                return -(position + 1)
            self._crlf_left = 2
        if self._crlf_left:
            while self._crlf_left and position < length:
                expected = 13 if self._crlf_left == 2 else 10
                if buffer[position] != expected:
                    raise Damaged("a blob not followed by CRLF")
                position += 1
                self._crlf_left -= 1
                self._wire += 1
            if self._crlf_left:
                return -(position + 1)
            self._finish_blob(tag, out)
            return position
        end = buffer.find(b"\n", position)
        if end < 0:
            if length - position > MAX_LINE:
                raise Damaged("a line too long")
            return -(position + 1)
        line_end = end - 1 if end > position and buffer[end - 1] == 13 else end
        line = bytes(buffer[position:line_end])
        self._wire += end + 1 - position
        self._line(line, end > line_end, tag, out)
        return end + 1

    def _line(self, line: bytes, crlf: bool, tag: object, out: list[Message]) -> None:
        if self._start is None:
            self._start = tag
        if not line:
            if self.client and not self._stack:
                self._start, self._wire = None, 0
                return  # an empty inline command: redis-server ignores it too
            raise Damaged("an empty line")
        kind = chr(line[0])
        if kind not in TYPE_BYTES:
            if self.client and not self._stack and line[0] >= 32:
                words = line.split()
                value = Value(
                    INLINE, len(words), items=[Value(BULK, len(w), w[: self.keep]) for w in words[:MAX_NODES]]
                )
                self._complete(value, tag, out)
                return
            raise Damaged("no RESP type byte")
        if not crlf:
            raise Damaged("a line not ended by CRLF")
        body = line[1:]
        if kind in LINE_TYPES:
            if kind == NULL and body:
                raise Damaged("a null with a body")
            if kind == INTEGER and not _is_integer(body):
                raise Damaged("an integer that is no number")
            self._complete(
                Value(kind, len(body), body[: self.keep], truncated=len(body) > self.keep), tag, out
            )
            return
        if not _is_integer(body):
            raise Damaged("a length that is no number")
        size = int(body)
        if size < -1 or (size == -1 and kind not in (BULK, ARRAY)):
            raise Damaged("a negative length")
        if kind in BLOB_TYPES:
            value = Value(kind, size)
            if size <= 0:
                if size == 0:
                    self._blob, self._crlf_left = value, 2
                else:
                    self._complete(value, tag, out)
                return
            self._blob, self._blob_left = value, size
            return
        if len(self._stack) >= MAX_DEPTH:
            raise Damaged("nested too deep")
        value = Value(kind, size, items=[])
        count = size * 2 if kind in (MAP, ATTRIBUTE) else size
        if count <= 0:
            self._complete(value, tag, out)
            return
        self._stack.append(_Open(value, count))

    def _finish_blob(self, tag: object = None, out: list[Message] | None = None) -> None:
        if self._crlf_left:
            return  # the CRLF is still to come
        blob = self._blob
        self._blob = None
        if blob is not None:
            if blob.size > len(blob.data):
                blob.truncated = True
            self._complete(blob, tag, out if out is not None else [])

    def _complete(self, value: Value, tag: object, out: list[Message]) -> None:
        """A value is whole: it goes into the aggregate being read, or out."""
        while True:
            if value.kind == ATTRIBUTE:
                if not self._stack:
                    self._attribute = value  # it describes the value that follows
                return  # inside an aggregate it describes the next element: skipped
            if not self._stack:
                if self._attribute is not None:
                    value.attribute, self._attribute = self._attribute, None
                out.append(Message(value, self._start, tag, self._wire, self._lost))
                self._start = None
                self._wire = 0
                self._lost = False
                self._nodes = 0
                return
            top = self._stack[-1]
            items = top.value.items
            assert items is not None
            if self._nodes < MAX_NODES:
                items.append(value)
                self._nodes += 1
            else:
                top.value.truncated = True
            top.left -= 1
            if top.left:
                return
            self._stack.pop()
            value = top.value


def _is_integer(body: bytes) -> bool:
    digits = body[1:] if body[:1] in (b"-", b"+") else body
    return 0 < len(digits) <= 20 and digits.isdigit()


# --- builders, for tests and the benchmark -------------------------------------------------------------


def command(*args: bytes | str) -> bytes:
    """A command as clients send it: an array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else arg
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def bulk(data: bytes | None) -> bytes:
    return b"$-1\r\n" if data is None else b"$%d\r\n%s\r\n" % (len(data), data)


def array(*encoded: bytes, kind: str = ARRAY) -> bytes:
    count = len(encoded) // 2 if kind in (MAP, ATTRIBUTE) else len(encoded)
    return kind.encode() + b"%d\r\n" % count + b"".join(encoded)
