"""MySQL packets out of one direction's bytes, for the MySQL decoder: reassembly across chunks, 16 MB
continuation, buffers the tracer cut (decoded as far as they go, then skipped or resynchronised), and
the zlib layer of CLIENT_COMPRESS. Knows framing only, not what the packets mean."""

from __future__ import annotations

import zlib
from collections.abc import Callable

from protocols import mysql as p

MAX_PAYLOAD = p.MAX_PAYLOAD  # a packet this long continues in the next one


class At:
    """Where a packet started: the chunk's time, process and call. (A plain class with slots: one is
    made per chunk, and a frozen dataclass costs several times more to build.)"""

    __slots__ = ("time", "pid", "call_index")

    def __init__(self, time: float | None, pid: int, call_index: int) -> None:
        self.time = time
        self.pid = pid
        self.call_index = call_index


class Frame:
    """One packet's payload (a 16 MB continuation already joined) and where it began and ended."""

    __slots__ = ("sequence_id", "payload", "truncated", "start", "end_time")

    def __init__(
        self, sequence_id: int, payload: bytes, truncated: bool, start: At, end_time: float | None
    ) -> None:
        self.sequence_id = sequence_id
        self.payload = payload
        self.truncated = truncated
        self.start = start
        self.end_time = end_time


class PacketStream:
    """Packets out of one direction's bytes: reassembly, 16 MB continuation, cut buffers, resync."""

    def __init__(self, accept_start: Callable[[bytes], bool]) -> None:
        self.buf = bytearray()
        self.synced = True
        self.lost = False  # set when sync was lost; the decoder reads and clears it
        self.accept_start = accept_start
        self.start = At(None, 0, 0)
        self.skip = 0  # bytes of a damaged packet still to discard
        self.damaged: Frame | None = None
        self.damaged_continued = False  # the damaged packet is 0xFFFFFF long: its payload goes on
        self.parts: list[bytes] = []  # payloads of a 0xFFFFFF continuation
        self.parts_truncated = False
        self.parts_start: At | None = None
        self.parts_sequence_id = 0  # a continued payload has the first packet's sequence id
        self.compressed: CompressedPackets | None = None

    def reading_since(self) -> int | None:
        """The call where the packet this stream still waits the end of began (None: none pending):
        the calls file holds that call back, so a login packet found whole only later is still hidden."""
        if self.parts_start is not None:
            return self.parts_start.call_index
        if self.buf and self.synced:
            return self.start.call_index
        compressed = self.compressed
        if compressed is not None and compressed.buf:
            return self.start.call_index
        return None

    def push(self, data: bytes, at: At, missing: int) -> list[Frame]:
        if self.compressed is not None:
            return self.compressed.push(data, at, missing)
        return self.push_plain(data, at, missing)

    def compress(self, accept_start: Callable[[bytes], bool]) -> None:
        """CLIENT_COMPRESS took effect: from here on, bytes arrive in compressed packets."""
        self.compressed = CompressedPackets(self, accept_start)
        self.compressed.buf += self.buf
        self.buf.clear()

    def reset(self) -> None:
        """Start afresh at the next byte (the compressed layer found its step again)."""
        self.buf.clear()
        self.skip = 0
        self.damaged = None
        self.synced = True

    def push_plain(self, data: bytes, at: At, missing: int, boundary: bool = True) -> list[Frame]:
        """`boundary`: `data` may begin a message, so a stream out of step may take up again there."""
        if data and not self.buf and self.synced and not self.skip and not missing and not self.parts:
            return self._whole(data, at)
        out: list[Frame] = []
        view = memoryview(data)
        if self.skip and view:
            n = min(self.skip, len(view))
            view = view[n:]
            self.skip -= n
            if not self.skip:
                self._finish_damaged(out, at)
        if view and boundary and not self.synced and not self.skip and self.accept_start(bytes(view[:5])):
            self.synced = True
            self.buf.clear()
        if view and self.synced and not self.skip:
            if not self.buf:
                self.start = at
            self.buf += view
            self._extract(out, at)
        if missing:
            self._gap(missing, out, at)
        return out

    def _whole(self, data: bytes, at: At) -> list[Frame]:
        """The common case, nothing held over and nothing lost: packets sliced straight from `data`,
        only an unfinished tail is copied into the buffer."""
        if type(data) is not bytes:
            data = bytes(data)  # so that slices are bytes
        out: list[Frame] = []
        size = len(data)
        pos = 0
        time = at.time
        while size - pos >= 4:
            length = data[pos] | data[pos + 1] << 8 | data[pos + 2] << 16
            if not length and not self.parts:
                self._lose_sync(out)  # an empty packet ends a 16 MB continuation, nothing else
                return out
            end = pos + 4 + length
            if end > size:
                break
            frame = Frame(data[pos + 3], data[pos + 4 : end], False, at, time)
            if length == MAX_PAYLOAD or self.parts:
                self._emit(out, frame, length == MAX_PAYLOAD)
            else:
                out.append(frame)
            pos = end
        self.start = at
        if pos < size:
            self.buf += data[pos:] if pos else data
        return out

    def _extract(self, out: list[Frame], at: At) -> None:
        buf = self.buf
        pos = 0
        while len(buf) - pos >= 4:
            length = buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16
            if not length and not self.parts:
                self._lose_sync(out)  # an empty packet ends a 16 MB continuation, nothing else
                return
            if len(buf) - pos < 4 + length:
                break
            frame = Frame(buf[pos + 3], bytes(buf[pos + 4 : pos + 4 + length]), False, self.start, at.time)
            self._emit(out, frame, length == MAX_PAYLOAD)
            pos += 4 + length
            self.start = at
        if pos:
            del buf[:pos]

    def _emit(self, out: list[Frame], frame: Frame, continued: bool) -> None:
        if continued or self.parts:
            if self.parts_start is None:
                self.parts_start = frame.start
                self.parts_sequence_id = frame.sequence_id
            if not self.parts_truncated:
                self.parts.append(frame.payload)
            self.parts_truncated |= frame.truncated
            if continued:
                return
            frame = Frame(
                self.parts_sequence_id,
                b"".join(self.parts),
                self.parts_truncated,
                self.parts_start,
                frame.end_time,
            )
            self.parts, self.parts_truncated, self.parts_start = [], False, None
        out.append(frame)

    def _finish_damaged(self, out: list[Frame], at: At) -> None:
        if self.damaged is not None:
            self.damaged.end_time = at.time
            self._emit(out, self.damaged, self.damaged_continued)
            self.damaged = None
        self.start = at

    def _gap(self, missing: int, out: list[Frame], at: At) -> None:
        """`missing` bytes that followed this chunk's data were lost by the tracer."""
        if self.skip:
            if missing < self.skip:
                self.skip -= missing
                return
            missing -= self.skip
            self.skip = 0
            self._finish_damaged(out, at)
            if missing:
                self._lose_sync(out)
            return
        if not self.synced:
            return
        if len(self.buf) < 4:
            self._lose_sync(out)
            return
        buf = self.buf
        length = buf[0] | buf[1] << 8 | buf[2] << 16
        need = 4 + length - len(buf)
        self.damaged = Frame(buf[3], bytes(buf[4:]), True, self.start, at.time)
        self.damaged_continued = length == MAX_PAYLOAD
        buf.clear()
        if missing < need:
            self.skip = need - missing
            return
        self._finish_damaged(out, at)
        if missing > need:
            self._lose_sync(out)

    def _lose_sync(self, out: list[Frame]) -> None:
        if self.damaged is not None:  # what was seen of it is all there will be
            self._emit(out, self.damaged, False)
            self.damaged = None
        self.skip = 0
        if self.parts:
            self.parts_truncated = True
            self._emit(out, Frame(0, b"", True, self.start, None), False)
        self.buf.clear()
        self.synced = False
        self.lost = True


# What decompression may produce on one channel (see CompressedPackets._within_bounds).
CHANNEL_RATIO = 128
CHANNEL_SLACK = 64 * 1024 * 1024


class CompressedPackets:
    """CLIENT_COMPRESS: 7-byte headers (compressed length, sequence id, length before compression,
    0 when stored as is) around zlib data that carries ordinary packets to the inner stream."""

    def __init__(self, inner: PacketStream, accept_start: Callable[[bytes], bool]) -> None:
        self.inner = inner
        self.accept_start = accept_start
        self.buf = bytearray()
        self.synced = True
        self.skip = 0
        self.compressed_bytes = 0  # read so far, and what they inflated to: the channel's bound
        self.inflated_bytes = 0
        self.refused = 0  # packets that claimed more than the bounds allow

    def push(self, data: bytes, at: At, missing: int) -> list[Frame]:
        out: list[Frame] = []
        view = memoryview(data)
        if self.skip and view:
            n = min(self.skip, len(view))
            view = view[n:]
            self.skip -= n
        if view and not self.synced and not self.skip and self.accept_start(bytes(view[:7])):
            self.synced = True
            self.buf.clear()
            self.inner.reset()
        if view and self.synced and not self.skip:
            self.buf += view
            self._extract(out, at)
        if missing:
            self._gap(missing, out, at)
        return out

    def _extract(self, out: list[Frame], at: At) -> None:
        buf = self.buf
        pos = 0
        while len(buf) - pos >= 7:
            length = buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16
            if len(buf) - pos < 7 + length:
                break
            plain = buf[pos + 4] | buf[pos + 5] << 8 | buf[pos + 6] << 16
            first = buf[pos + 3] <= 1  # sequence ids restart with each command: 0 asks, 1 answers
            body = bytes(buf[pos + 7 : pos + 7 + length])
            pos += 7 + length
            if not self._within_bounds(length, plain):
                self.refused += 1
                del buf[:pos]
                self._lose_sync(out)
                return
            data, lost = self._inflate(body, plain)
            if lost < 0:
                del buf[:pos]
                self._lose_sync(out)
                return
            out += self.inner.push_plain(data, at, lost, first)
        if pos:
            del buf[:pos]

    def _within_bounds(self, length: int, plain: int) -> bool:
        """Whether a packet of `length` bytes may inflate to `plain` (16 MiB at most, as its 3-byte
        field says): not when the channel would then have inflated more than CHANNEL_RATIO times what it
        read, past CHANNEL_SLACK. A crafted 16 KB packet claiming 16 MB of zeros cost 7 s and 450 MB,
        and 200 of them did not end in 10 minutes (each zero-length packet inside was one more frame:
        an empty packet now ends the decoding of what carried it); real traffic inflates a few times,
        a column of one repeated letter a few hundred."""
        self.compressed_bytes += length
        if plain > CHANNEL_SLACK + CHANNEL_RATIO * self.compressed_bytes - self.inflated_bytes:
            return False
        self.inflated_bytes += plain
        return True

    @staticmethod
    def _inflate(body: bytes, plain: int) -> tuple[bytes, int]:
        """(the bytes `body` carries as far as it goes, how many more it should have); -1: garbage."""
        if not plain:
            return body, 0
        try:
            data = zlib.decompressobj().decompress(body, plain)
        except zlib.error:
            return b"", -1
        return data, max(0, plain - len(data))

    def _gap(self, missing: int, out: list[Frame], at: At) -> None:
        if self.skip:
            self.skip -= missing
            if self.skip < 0:
                self.skip = 0
                self._lose_sync(out)
            return
        if not self.synced:
            return
        if len(self.buf) < 7:
            self._lose_sync(out)
            return
        buf = self.buf
        length = buf[0] | buf[1] << 8 | buf[2] << 16
        plain = buf[4] | buf[5] << 8 | buf[6] << 16
        need = 7 + length - len(buf)
        first = buf[3] <= 1
        data, lost = self._inflate(bytes(buf[7:]), plain)
        buf.clear()
        if lost < 0 or not plain:
            lost = (plain or length) - len(data)
        out += self.inner.push_plain(data, at, max(lost, 0), first)
        if missing < need:
            self.skip = need - missing
        elif missing > need:
            self._lose_sync(out)

    def _lose_sync(self, out: list[Frame]) -> None:
        self.buf.clear()
        self.synced = False
        self.inner._lose_sync(out)
