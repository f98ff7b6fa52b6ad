"""Reassembly for the common framings, so a decoder does not write its own buffers: messages out of one
direction's chunks, each byte scanned once, memory capped whatever length the stream claims, bytes the
tracer lost (`Chunk.missing`) handled, and the call where an unfinished message began known (for
`Decoder.reading_since`, which keeps a late `Secret` from leaking).

- `LineReader`: messages ending with a terminator (`b"\\n"`, `b"\\r\\n"`): text protocols (SMTP, Redis
  inline, memcached, FIX-like tag=value lines).
- `LengthPrefixed`: a fixed-size header parsed with a `construct` Struct that says how long the body is
  (MySQL, PostgreSQL, TNS, Kafka...).
- `TLV`: type, length, value, as big- or little-endian integers of given sizes (a `LengthPrefixed` whose
  header is made for you).

Use one reader per direction. Each `feed(chunk)` returns the `Frame`s that chunk completed:

    readers = {Direction.OUT: LineReader(), Direction.IN: LineReader()}
    for frame in readers[chunk.direction].feed(chunk):
        frame.data, frame.start.time, frame.start.call_index, frame.truncated

A message longer than the reader's cap is kept to its first `max_keep` bytes and marked truncated; the
rest is skipped, so a peer (or a damaged log) claiming a 4 GB message costs `max_keep` bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from decoders.api import Chunk

__all__ = ["Frame", "LengthPrefixed", "LineReader", "TLV", "reading_since"]

DEFAULT_MAX_LINE = 64 * 1024
DEFAULT_MAX_KEEP = 1024 * 1024


@dataclass(slots=True)
class Frame:
    """One message. `start` is the chunk that carried its first byte (its time, pid, call_index and
    direction), `end` the chunk that completed it. `truncated`: bytes of the message are missing (the
    tracer cut a buffer, or the message was longer than the reader keeps): `data` is its beginning.
    `header` is the parsed construct header (`LengthPrefixed`, `TLV`), None for a line. `block`: the
    counted bytes that followed a line, when the LineReader's `block_size` asked for them."""

    data: bytes
    start: Chunk
    end: Chunk
    truncated: bool = False
    header: Any = None
    block: bytes | None = None  # LineReader with `block_size`: the raw bytes that followed the line


class ReadsMessages(Protocol):
    """Anything that knows where its unfinished message began: a reader here, or a decoder's own
    assembler built on one (messages made of fields, each a LineReader's line)."""

    @property
    def reading_since(self) -> int | None: ...


def reading_since(*readers: ReadsMessages) -> int | None:
    """The earliest call whose bytes one of `readers` holds in an unfinished message, or None: what a
    decoder's `reading_since` returns when these readers are all it buffers. A reader is anything with
    a `reading_since` attribute: a LineReader, a LengthPrefixed, or an assembler of your own."""
    calls = [r.reading_since for r in readers if r.reading_since is not None]
    return min(calls) if calls else None


class LineReader:
    """Lines out of one direction's chunks.

    `terminator`: what ends a message (`b"\\n"` by default; the terminator is not part of `data`, and with
    `strip_cr` a `\\r` before it is removed too). `max_line`: a longer line is kept to this length, marked
    truncated, and its tail skipped up to the next terminator. `starts_message(data) -> bool`, when given,
    says whether a chunk begins with a message: after the tracer lost the tail of a line, such a chunk
    ends the skipping (a line protocol written one message per call usually loses exactly one tail);
    without it, the bytes up to the next terminator are skipped.

    `block_size(line) -> int`, when given, says how many raw bytes follow a line as its payload (0 for
    none): memcached's `set k 0 0 5` is followed by 5 bytes and `\r\n`, which may hold any byte, a
    terminator too. Those bytes are not cut into lines: the line's Frame comes when they are complete,
    with them in `block` (at most `max_line` of them kept; the frame is truncated beyond, or when the
    tracer lost some)."""

    def __init__(
        self,
        terminator: bytes = b"\n",
        *,
        max_line: int = DEFAULT_MAX_LINE,
        strip_cr: bool = True,
        starts_message: Callable[[bytes], bool] | None = None,
        block_size: Callable[[bytes], int] | None = None,
    ) -> None:
        if not terminator:
            raise ValueError("a LineReader needs a terminator")
        self.terminator = terminator
        self.max_line = max_line
        self.strip_cr = strip_cr
        self.starts_message = starts_message
        self.buffer = bytearray()
        self.scanned = 0  # bytes of `buffer` known to hold no terminator
        self.start: Chunk | None = None  # the chunk where the buffered line began
        self.skipping = False  # dropping the tail of a line that was cut or too long
        self.lost = False  # that tail was lost by the tracer (a chunk may then start a new line)
        self.block_size = block_size
        self.waiting: Frame | None = None  # a line whose block is still coming
        self.block_left = 0
        self.block = bytearray()
        self._consumed = 0

    @property
    def reading_since(self) -> int | None:
        if self.waiting is not None:
            return self.waiting.start.call_index
        return self.start.call_index if self.start is not None and self.buffer else None

    def feed(self, chunk: Chunk) -> list[Frame]:
        if self.block_size is not None:
            return self._feed_with_blocks(chunk)
        return self._feed_lines(chunk)

    def _feed_with_blocks(self, chunk: Chunk) -> list[Frame]:
        """Lines, each maybe followed by a counted block: the chunk is cut where a block starts, so
        that the block's bytes are never searched for terminators."""
        frames: list[Frame] = []
        data = memoryview(chunk.data)
        lost = chunk.missing
        while True:
            waiting = self.waiting
            if waiting is not None:
                take = min(self.block_left, len(data))
                room = self.max_line - len(self.block)
                if room > 0:
                    self.block += data[: min(take, room)]
                if take > room:
                    waiting.truncated = True
                self.block_left -= take
                data = data[take:]
                if self.block_left and lost:  # the tracer lost bytes of the block
                    waiting.truncated = True
                    used = min(lost, self.block_left)
                    self.block_left -= used
                    lost -= used
                if self.block_left:
                    return frames
                self.waiting = None
                waiting.block, waiting.end = bytes(self.block), chunk
                self.block.clear()
                frames.append(waiting)
                if lost and not data:  # what followed the block was lost too: skip to the next line
                    self._cut(chunk, lost=True)
                    return frames
                continue
            if not data and not lost:
                return frames
            piece = Chunk(data=bytes(data), direction=chunk.direction, time=chunk.time, pid=chunk.pid,
                          size=len(data) + lost, call_index=chunk.call_index)  # fmt: skip
            frames += self._feed_lines(piece)
            if self.waiting is None:
                return frames
            data = data[self._consumed :]  # the bytes after the line are its block's; `lost` too

    def _feed_lines(self, chunk: Chunk) -> list[Frame]:
        frames: list[Frame] = []
        data = chunk.data
        self._consumed = len(data)  # less the bytes left for a block (_lines says)
        if self.skipping and data:
            if self.lost and self.starts_message is not None and self.starts_message(bytes(data[:64])):
                self.skipping = False
            else:
                end = data.find(self.terminator)
                if end < 0:
                    data = b""
                else:
                    data, self.skipping = data[end + len(self.terminator) :], False
        if data:
            if not self.buffer:
                self.start = chunk
                self.scanned = 0
            self.buffer += data
            self._lines(chunk, frames)
            if self.waiting is not None:
                return frames  # the rest of the chunk, and what the tracer lost of it, is the block's
        if chunk.missing:
            line = self._cut(chunk, lost=True)
            if line is not None:
                frames.append(line)
        return frames

    def _lines(self, chunk: Chunk, frames: list[Frame]) -> None:
        buffer, terminator, size = self.buffer, self.terminator, len(self.terminator)
        begin = 0
        search = max(0, self.scanned - size + 1)
        while (end := buffer.find(terminator, search)) >= 0:
            length = end - begin
            frame = self._frame(
                bytes(buffer[begin : begin + min(length, self.max_line)]), chunk, length > self.max_line
            )
            begin = end + size
            search = begin
            block = self.block_size(frame.data) if self.block_size is not None else 0
            if block and block > 0:
                # The rest of the buffer is the block's: hand it back to the caller uncut.
                self.waiting, self.block_left = frame, block
                rest = len(buffer) - begin
                self._consumed -= rest
                del buffer[:]
                self.scanned = 0
                self.start = None
                return
            frames.append(frame)
            self.start = chunk  # the next line begins in this chunk
        if begin:
            del buffer[:begin]
        self.scanned = len(buffer)
        if self.scanned > self.max_line:  # an endless line: keep its head, skip its tail
            frames.append(self._cut(chunk, lost=False))  # type: ignore[arg-type]

    def _frame(self, data: bytes, chunk: Chunk, truncated: bool) -> Frame:
        if self.strip_cr and data.endswith(b"\r") and self.terminator == b"\n":
            data = data[:-1]
        return Frame(data, self.start or chunk, chunk, truncated)

    def _cut(self, chunk: Chunk, lost: bool) -> Frame | None:
        """End the buffered line here, as far as it goes, and skip the rest of it."""
        had = bool(self.buffer)
        frame = self._frame(bytes(self.buffer[: self.max_line]), chunk, True) if had else None
        self.buffer.clear()
        self.scanned = 0
        self.start = None
        self.skipping, self.lost = True, lost
        return frame


class LengthPrefixed:
    """Messages made of a fixed-size header, parsed with a construct Struct, and a body whose length the
    header gives.

    `length(header) -> int` reads the body's length from the parsed header (by default its field
    `length`); `includes_header`: that length counts the header too (as TNS's does). The body is `data`;
    the parsed header is `frame.header`. `max_keep`: a body longer than this is kept to its head and
    marked truncated, the rest skipped, so memory does not follow what the stream claims.

    Bytes the tracer lost: when they end inside the current message, that message comes out truncated
    and the reader stays in step (it skips exactly what was lost). When they reach past it, the reader is
    out of step: `synced` is False and it drops bytes until a chunk that `starts_message(data)` accepts
    (without that callback, until the end of the stream)."""

    def __init__(
        self,
        header: Any,
        *,
        length: Callable[[Any], int] | None = None,
        includes_header: bool = False,
        max_keep: int = DEFAULT_MAX_KEEP,
        starts_message: Callable[[bytes], bool] | None = None,
    ) -> None:
        self.header = header
        self.header_size = header.sizeof()
        self.length = length or (lambda parsed: parsed.length)
        self.includes_header = includes_header
        self.max_keep = max_keep
        self.starts_message = starts_message
        self.buffer = bytearray()
        self.start: Chunk | None = None
        self.parsed: Any = None  # the current message's header, once read
        self.body_left = 0  # bytes of the current body still to come
        self.body = bytearray()
        self.body_cut = False
        self.synced = True

    @property
    def reading_since(self) -> int | None:
        busy = self.buffer or self.parsed is not None
        return self.start.call_index if self.start is not None and busy else None

    def feed(self, chunk: Chunk) -> list[Frame]:
        frames: list[Frame] = []
        data = memoryview(chunk.data)
        if not self.synced:
            if data and self.starts_message is not None and self.starts_message(bytes(data[:64])):
                self.synced = True
            else:
                return frames
        while data:
            if self.start is None or (not self.buffer and self.parsed is None):
                self.start = chunk
            if self.parsed is None:
                need = self.header_size - len(self.buffer)
                self.buffer += data[:need]
                data = data[need:]
                if len(self.buffer) < self.header_size:
                    break
                if not self._header(chunk, frames):
                    return frames
                if self.body_left == 0:
                    self._emit(chunk, frames)
                continue
            take = min(self.body_left, len(data))
            room = self.max_keep - len(self.body)
            if room > 0:
                self.body += data[: min(take, room)]
            if take > room:
                self.body_cut = True
            self.body_left -= take
            data = data[take:]
            if self.body_left == 0:
                self._emit(chunk, frames)
        if chunk.missing:
            self._lose(chunk.missing, chunk, frames)
        return frames

    def _header(self, chunk: Chunk, frames: list[Frame]) -> bool:
        try:
            parsed = self.header.parse(bytes(self.buffer))
            length = int(self.length(parsed)) - (self.header_size if self.includes_header else 0)
        except Exception:  # noqa: BLE001 - a header construct cannot parse is garbage: out of step
            length = -1
            parsed = None
        if length < 0:
            self._desync()
            return False
        self.parsed, self.body_left = parsed, length
        return True

    def _emit(self, chunk: Chunk, frames: list[Frame]) -> None:
        assert self.start is not None
        frames.append(Frame(bytes(self.body), self.start, chunk, self.body_cut, self.parsed))
        self.buffer.clear()
        self.body.clear()
        self.parsed, self.body_cut = None, False
        self.start = None

    def _lose(self, missing: int, chunk: Chunk, frames: list[Frame]) -> None:
        if self.parsed is not None and missing <= self.body_left:
            self.body_left -= missing
            self.body_cut = True
            if self.body_left == 0:
                self._emit(chunk, frames)
            return
        if self.parsed is not None:  # the message ends inside the lost bytes: what follows is unknown
            self.body_cut = True
            self._emit(chunk, frames)
        self._desync()

    def _desync(self) -> None:
        self.buffer.clear()
        self.body.clear()
        self.parsed, self.body_cut, self.body_left = None, False, 0
        self.start = None
        self.synced = False


class TLV(LengthPrefixed):
    """Type-length-value messages: a `type_size`-byte type then a `length_size`-byte length (big-endian
    unless `byteorder="little"`), then `length` bytes of value. `frame.header.type` is the type."""

    def __init__(
        self,
        type_size: int = 1,
        length_size: int = 2,
        *,
        byteorder: str = "big",
        includes_header: bool = False,
        max_keep: int = DEFAULT_MAX_KEEP,
        starts_message: Callable[[bytes], bool] | None = None,
    ) -> None:
        from construct import BytesInteger, Struct

        little = byteorder == "little"
        header = Struct(
            "type" / BytesInteger(type_size, swapped=little),
            "length" / BytesInteger(length_size, swapped=little),
        )
        super().__init__(
            header, includes_header=includes_header, max_keep=max_keep, starts_message=starts_message
        )
