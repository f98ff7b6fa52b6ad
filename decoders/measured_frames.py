"""Frames whose size a protocol function measures, out of one direction's bytes: for AMQP (a fixed
header, then an end octet to check) and MQTT (a size in a variable-length integer of one to four bytes,
which `decoders.framing.LengthPrefixed`'s fixed `construct` header cannot say). Reassembly across chunks,
frames longer than the decoder cares to keep (only their head is kept, the rest counted and passed),
bytes the tracer lost (`Chunk.missing`: skipped exactly while they fall inside a frame, else the stream
is out of step), and resynchronisation by searching, byte by byte and each byte once, for the next place
where a frame surely starts (`plausible`), which a binary protocol needs after a cut and the shared
readers leave to the decoder.

Knows framing only. The protocol gives two functions (and, optionally, a third that checks a whole
frame, such as AMQP's end octet): `measure(buf, pos)`, the whole size of the frame
at `pos` (None: more bytes needed; -1: no frame starts there), and `plausible(buf, pos)`, whether a
frame surely starts at `pos` after the stream lost its step (None: too few bytes to tell). Each byte
is scanned once, and what is held is bounded by `max_keep` and `max_frame`, whatever a frame claims.
"""

from __future__ import annotations

from collections.abc import Callable

Measure = Callable[[bytearray, int], "int | None"]
Plausible = Callable[[bytearray, int], "bool | None"]
Check = Callable[[bytearray, int, int], bool]


class MeasuredFrame:
    """One frame: its bytes as far as kept, its whole size, whether the tracer lost some of it (`cut`)
    or it was longer than the decoder keeps (`clipped`), and where it began and ended."""

    __slots__ = ("data", "size", "cut", "clipped", "time", "pid", "call_index", "end_time")

    def __init__(
        self, data: bytes, size: int, time: float | None, pid: int, call_index: int, clipped: bool = False
    ) -> None:
        self.data = data
        self.size = size
        self.cut = False
        self.clipped = clipped
        self.time = time
        self.pid = pid
        self.call_index = call_index
        self.end_time = time

    @property
    def whole(self) -> bool:
        return not self.cut and not self.clipped


class MeasuredReader:
    def __init__(
        self,
        measure: Measure,
        plausible: Plausible,
        max_keep: int = 64 * 1024,
        max_frame: int = 1 << 28,
        check: Check | None = None,
    ) -> None:
        """`check(buf, pos, size)`: whether the whole frame at `pos` is well formed (an end marker where
        the size says); a frame that fails it means the stream is out of step."""
        self.measure = measure
        self.plausible = plausible
        self.check = check
        self.max_keep = max_keep
        self.max_frame = max_frame
        self.buf = bytearray()
        self.synced = True
        self.scanned = 0  # out of step: where the search for a frame start goes on
        self.held: MeasuredFrame | None = None  # a long (or cut) frame whose remaining bytes are being passed
        self.skip = 0
        self.start: tuple[float | None, int, int] = (None, 0, 0)  # where the bytes in `buf` began
        self.resyncs = 0  # how many times the stream lost its step

    def feed(
        self, data: bytes, missing: int, time: float | None, pid: int, call_index: int
    ) -> list[MeasuredFrame]:
        out: list[MeasuredFrame] = []
        at = (time, pid, call_index)
        pos = 0
        if self.held is not None:
            pos = min(self.skip, len(data))
            self.skip -= pos
            if not self.skip:
                self._release(out, time)
        if pos == 0 and not self.buf and self.synced and data:
            self._whole(data, out, at)
        elif pos < len(data):
            if not self.buf:
                self.start = at
            self.buf += memoryview(data)[pos:]
            if not self.synced:
                self._search(at)
            if self.synced:
                self._extract(out, at)
        if missing:
            self._lose(missing, out, time)
        return out

    def _whole(self, data: bytes, out: list[MeasuredFrame], at: tuple[float | None, int, int]) -> None:
        """The common case, nothing held over: frames sliced straight from the chunk; only what is not
        a whole, well-formed frame goes through the buffer (and the general path)."""
        time, pid, call_index = at
        measure, check, keep = self.measure, self.check, self.max_keep
        size_of_data = len(data)
        pos = 0
        while pos < size_of_data:
            size = measure(data, pos)  # type: ignore[arg-type]
            if size is None or size < 0 or size > self.max_frame or size > size_of_data - pos:
                break
            if check is not None and not check(data, pos, size):  # type: ignore[arg-type]
                break
            out.append(
                MeasuredFrame(data[pos : pos + min(size, keep)], size, time, pid, call_index, size > keep)
            )
            pos += size
        if pos < size_of_data:
            self.start = at
            self.buf += memoryview(data)[pos:]
            self._extract(out, at)

    def _release(self, out: list[MeasuredFrame], time: float | None) -> None:
        held, self.held = self.held, None
        assert held is not None
        held.end_time = time
        out.append(held)

    def _extract(self, out: list[MeasuredFrame], at: tuple[float | None, int, int]) -> None:
        buf = self.buf
        pos = 0
        while pos < len(buf):
            size = self.measure(buf, pos)
            if size is None:
                break
            whole = size is not None and 0 <= size <= len(buf) - pos
            if size < 0 or size > self.max_frame or (whole and self.check and not self.check(buf, pos, size)):
                del buf[:pos]
                self._out_of_step(skip_first=True)
                self._search(at)
                if not self.synced:
                    return
                buf, pos = self.buf, 0
                continue
            time, pid, call_index = self.start if pos == 0 else at
            if len(buf) - pos >= size:
                frame = MeasuredFrame(
                    bytes(buf[pos : pos + min(size, self.max_keep)]),
                    size,
                    time,
                    pid,
                    call_index,
                    size > self.max_keep,
                )
                frame.end_time = at[0]
                out.append(frame)
                pos += size
                continue
            if size > self.max_keep and len(buf) - pos >= self.max_keep:
                self.held = MeasuredFrame(
                    bytes(buf[pos : pos + self.max_keep]), size, time, pid, call_index, clipped=True
                )
                self.skip = size - (len(buf) - pos)
                pos = len(buf)
            break
        if pos:
            del buf[:pos]
            if buf:
                self.start = at

    def _lose(self, missing: int, out: list[MeasuredFrame], time: float | None) -> None:
        """`missing` bytes were lost right after the data just fed."""
        if self.held is not None:
            self.held.cut = True
            if missing <= self.skip:
                self.skip -= missing
                if not self.skip:
                    self._release(out, time)
                return
            self._release(out, time)
            self._out_of_step()
            return
        if not self.synced or not self.buf:
            self._out_of_step()  # lost at a frame boundary: where the next frame starts is unknown
            return
        size = self.measure(self.buf, 0)
        if size is None or size < 0 or size > self.max_frame:
            self._out_of_step()
            return
        time0, pid, call_index = self.start
        frame = MeasuredFrame(
            bytes(self.buf[: min(size, self.max_keep)]), size, time0, pid, call_index, size > self.max_keep
        )
        frame.cut = True
        need = size - len(self.buf)
        self.buf.clear()
        if missing < need:
            self.held, self.skip = frame, need - missing
            return
        frame.end_time = time
        out.append(frame)
        if missing > need:
            self._out_of_step()

    def _out_of_step(self, skip_first: bool = False) -> None:
        if self.synced:
            self.resyncs += 1
        self.synced = False
        self.scanned = 1 if skip_first else 0
        if not skip_first:
            self.buf.clear()

    def _search(self, at: tuple[float | None, int, int]) -> None:
        """Look for a frame start in `buf` from where the last search stopped."""
        buf = self.buf
        pos = self.scanned
        while pos < len(buf):
            found = self.plausible(buf, pos)
            if found:
                del buf[:pos]
                self.synced = True
                self.start = at
                return
            if found is None and len(buf) - pos <= self.max_keep:  # too few bytes to tell: wait for more
                break
            pos += 1
        del buf[:pos]
        self.scanned = 0

    def reading_since(self) -> int | None:
        """The call where the frame still being read began (`Decoder.reading_since`), or None."""
        if self.held is not None:
            return self.held.call_index
        if self.buf and self.synced:
            return self.start[2]
        return None
