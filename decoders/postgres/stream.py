"""PostgreSQL messages out of one direction's bytes, for decoders/postgres/decoder.py: reassembly across chunks,
the untyped startup family, the one-byte answer to an SSLRequest, buffers the tracer cut, resync.
Knows framing only, not what the messages mean.

Every message says its length, so lost bytes (`Chunk.missing`) that end inside a message are skipped
exactly and the stream stays in step: the message is delivered as far as it was seen, marked
truncated. Lost bytes that go past its end (or a header too damaged to trust) put the stream out of
step; it takes up again at the start of a later chunk whose bytes walk as a chain of whole messages of
this direction's types (a reader's buffer boundary rarely falls inside a message after a gap, and when
it does, the chain test refuses it).

A header damaged into a wrong length would swallow what follows. Two checks limit that: message types
of a fixed or small size must have it (a Sync is 4 bytes, a ReadyForQuery 5...), and a chunk that
walks exactly as whole messages, arriving while a message begun in an earlier call is still
incomplete, starts afresh there (a continuation of a body rarely walks as exact messages, while
a length damaged into a larger one makes the body seem to go on).

Memory does not follow what a header claims: a message keeps at most `MAX_KEPT` bytes of its body (the
head: a SQL text, a row's first values); the rest is counted and skipped, and the message is marked
`capped` (its count of bytes holds, its body does not).
"""

from __future__ import annotations

from protocols import postgres as p

MAX_KEPT = 1 << 20  # body bytes kept of one message; a longer one is delivered capped
MAX_LENGTH = (1 << 30) + 4  # PostgreSQL's own limit on a message (1 GB): a longer header is garbage
UNTYPED = 0  # Frame.type of a startup-family message (SSLRequest, StartupMessage, CancelRequest)
_SMALL = 1 << 16
# The longest each direction's messages of a fixed or small size can be (length field included).
FRONTEND_LIMITS: dict[int, int] = {
    p.SYNC: 4, p.FLUSH: 4, p.TERMINATE: 4, p.COPY_DONE: 4, p.EXECUTE: _SMALL, p.DESCRIBE: _SMALL, p.CLOSE: _SMALL,
}  # fmt: skip
BACKEND_LIMITS: dict[int, int] = {
    p.READY_FOR_QUERY: 5, p.PARSE_COMPLETE: 4, p.BIND_COMPLETE: 4, p.CLOSE_COMPLETE: 4, p.NO_DATA: 4,
    p.PORTAL_SUSPENDED: 4, p.EMPTY_QUERY: 4, p.COPY_DONE: 4, p.BACKEND_KEY_DATA: 4 + 4 + 256,
    p.AUTHENTICATION: _SMALL, p.COMMAND_COMPLETE: _SMALL, p.PARAMETER_STATUS: _SMALL, p.NOTIFICATION: _SMALL,
    p.COPY_IN_RESPONSE: _SMALL, p.COPY_OUT_RESPONSE: _SMALL, p.COPY_BOTH_RESPONSE: _SMALL,
    p.NEGOTIATE_PROTOCOL: _SMALL, p.PARAMETER_DESCRIPTION: 4 + 2 + 4 * 65535,
}  # fmt: skip


class Frame:
    """One message: its type byte (UNTYPED for the startup family), body, and where it began and ended.
    (A plain class with slots: one is made per message.)"""

    __slots__ = (
        "type",
        "body",
        "length",
        "truncated",
        "capped",
        "time",
        "pid",
        "call_index",
        "end_time",
        "answer",
    )

    def __init__(
        self,
        type_: int,
        body: bytes,
        length: int,
        time: float | None,
        pid: int,
        call_index: int,
        end_time: float | None,
        truncated: bool = False,
        capped: bool = False,
        answer: bool = False,
    ) -> None:
        self.type = type_
        self.body = body
        self.length = length  # the body's length as its header says (`len(body)` when whole)
        self.time = time
        self.pid = pid
        self.call_index = call_index
        self.end_time = end_time
        self.truncated = truncated  # the tracer lost part of the body
        self.capped = capped  # the body was longer than MAX_KEPT: only its head is here
        self.answer = answer  # the one-byte answer to an SSLRequest or GSSENCRequest (type is the byte)


class MessageStream:
    """Messages out of one direction's bytes."""

    def __init__(self, valid_types: frozenset[int], limits: dict[int, int] | None = None) -> None:
        self._valid_types = valid_types
        self._limits = limits or {}
        self._longest = _longest(valid_types, self._limits)
        self.expect_answer = False  # the next byte is a one-byte answer (set by the decoder)
        self.synced = True
        self.lost = False  # set when the stream lost step; the decoder reads and clears it
        self.buf = bytearray()  # header bytes, or a whole small message, not complete yet
        # The message in progress once its header is known:
        self.in_message = False
        self.type = 0
        self.length = 0  # body length from the header
        self.need = 0  # body bytes still to come
        self.body = bytearray()
        self.damaged = False  # bytes of this body were lost: keep no more of it
        self.start: tuple[float | None, int, int] = (None, 0, 0)
        self.skipped = 0  # messages dropped by an out-of-step stream, for tests and statistics

    @property
    def valid_types(self) -> frozenset[int]:
        """The types this direction may send (narrowed once the roles are known)."""
        return self._valid_types

    @valid_types.setter
    def valid_types(self, types: frozenset[int]) -> None:
        self._valid_types = types
        self._longest = _longest(types, self._limits)

    @property
    def limits(self) -> dict[int, int]:
        """Type -> the longest length a message of that type can have."""
        return self._limits

    @limits.setter
    def limits(self, limits: dict[int, int]) -> None:
        self._limits = limits
        self._longest = _longest(self._valid_types, limits)

    def reading_since(self) -> int | None:
        """The call where the message still incomplete began, or None."""
        return self.start[2] if (self.buf or self.in_message) and self.synced else None

    # -- feeding ------------------------------------------------------------------------------------

    def push(self, data: bytes, time: float | None, pid: int, call_index: int, missing: int) -> list[Frame]:
        """The messages completed by `data`, then `missing` bytes the tracer lost after it."""
        out: list[Frame] = []
        if data and not self.synced:
            if not self._resumes(data):
                self.skipped += 1
                return out
            self.synced = True
        elif data and self.in_message and self.start[2] != call_index and self._restarts(data):
            self._lose_sync(out)  # the message in progress had a damaged length: drop it
            self.lost = True
            self.synced = True
        if data:
            if not self.buf and not self.in_message and not self.expect_answer:
                self._whole(data, time, pid, call_index, out)
            else:
                self._slow(memoryview(data), time, pid, call_index, out)
        if missing and self.synced:
            self._gap(missing, time, out)
        return out

    def _whole(self, data: bytes, time: float | None, pid: int, call_index: int, out: list[Frame]) -> None:
        """The common case, nothing held over: messages sliced straight from `data`."""
        if type(data) is not bytes:
            data = bytes(data)
        size = len(data)
        pos = 0
        longest = self._longest
        while size - pos >= 5:
            kind = data[pos]
            if kind == UNTYPED:
                length = int.from_bytes(data[pos : pos + 4], "big")
                if not 8 <= length <= p.MAX_STARTUP:
                    self._lose_sync(out)
                    return
                end = pos + length
                if end > size:
                    break
                out.append(Frame(UNTYPED, data[pos + 4 : end], length - 4, time, pid, call_index, time))
                pos = end
                continue
            length = int.from_bytes(data[pos + 1 : pos + 5], "big")
            if not 4 <= length <= longest[kind]:  # 0 for a type this direction never sends
                self._lose_sync(out)
                return
            end = pos + 1 + length
            if end > size or length - 4 > MAX_KEPT:
                break
            out.append(Frame(kind, data[pos + 5 : end], length - 4, time, pid, call_index, time))
            pos = end
        if pos < size:
            self._slow(memoryview(data)[pos:], time, pid, call_index, out)

    def _slow(
        self, view: memoryview, time: float | None, pid: int, call_index: int, out: list[Frame]
    ) -> None:
        """Byte-exact framing across chunks: header bytes gathered, bodies kept up to MAX_KEPT."""
        pos = 0
        size = len(view)
        while pos < size:
            if self.in_message:
                take = min(self.need, size - pos)
                if not self.damaged and len(self.body) < MAX_KEPT:
                    self.body += view[pos : pos + min(take, MAX_KEPT - len(self.body))]
                self.need -= take
                pos += take
                if not self.need:
                    self._finish(time, out)
                continue
            if self.expect_answer and not self.buf:
                self.expect_answer = False
                if view[pos] in (ord("S"), ord("N"), ord("G")):
                    out.append(Frame(view[pos], b"", 0, time, pid, call_index, time, answer=True))
                    pos += 1
                    continue
            if not self.buf:
                self.start = (time, pid, call_index)
            header = 4 if (self.buf[:1] or view[pos : pos + 1]) == b"\0" else 5
            take = min(header - len(self.buf), size - pos)
            self.buf += view[pos : pos + take]
            pos += take
            if len(self.buf) < header:
                return
            if not self._open_message():
                self._lose_sync(out)
                return
            if not self.need:
                self._finish(time, out)

    def _open_message(self) -> bool:
        """The header in `buf` is complete: start its body (False when the header is not plausible)."""
        head = self.buf
        if head[0] == UNTYPED:
            length = int.from_bytes(head[:4], "big")
            if not 8 <= length <= p.MAX_STARTUP:
                return False
            self.type, self.length = UNTYPED, length - 4
        else:
            length = int.from_bytes(head[1:5], "big")
            if not 4 <= length <= self._longest[head[0]]:
                return False
            self.type, self.length = head[0], length - 4
        self.buf = bytearray()
        self.in_message = True
        self.need = self.length
        self.body = bytearray()
        self.damaged = False
        return True

    def _finish(self, time: float | None, out: list[Frame]) -> None:
        start_time, pid, call_index = self.start
        capped = len(self.body) < self.length and not self.damaged
        out.append(
            Frame(
                self.type,
                bytes(self.body),
                self.length,
                start_time,
                pid,
                call_index,
                time,
                truncated=self.damaged,
                capped=capped,
            )
        )
        self.in_message = False
        self.body = bytearray()
        self.damaged = False

    def _gap(self, missing: int, time: float | None, out: list[Frame]) -> None:
        """`missing` bytes that followed this chunk's data were lost by the tracer."""
        if self.in_message:
            self.damaged = True
            if missing < self.need:
                self.need -= missing
                return
            rest = missing - self.need
            self.need = 0
            self._finish(time, out)
            if rest:
                self._lose_sync(out)
            return
        self._lose_sync(out)  # the lost bytes began a message (or were one): where it ends is unknown

    def _lose_sync(self, out: list[Frame]) -> None:
        if self.in_message and self.body:
            self.damaged = True
            start_time, pid, call_index = self.start
            out.append(
                Frame(
                    self.type,
                    bytes(self.body),
                    self.length,
                    start_time,
                    pid,
                    call_index,
                    None,
                    truncated=True,
                )
            )
        self.in_message = False
        self.body = bytearray()
        self.buf = bytearray()
        self.need = 0
        self.expect_answer = False
        self.synced = False
        self.lost = True

    def _resumes(self, data: bytes) -> bool:
        """Whether an out-of-step stream may take up again at the start of `data`: its bytes walk as
        whole messages of this direction's types, ending at its end or inside a last plausible one."""
        return chain_length(data, self.valid_types, self.limits) > 0

    def _restarts(self, data: bytes) -> bool:
        """Whether `data`, arriving inside a message, is rather the start of new messages: it walks
        as whole messages ending exactly at its end."""
        return chain_length(data, self.valid_types, self.limits, exact=True) > 0


def _longest(valid_types: frozenset[int], limits: dict[int, int]) -> list[int]:
    """Per type byte, the longest length allowed: 0 for a type not in `valid_types`."""
    return [limits.get(kind, MAX_LENGTH) if kind in valid_types else 0 for kind in range(256)]


def chain_length(
    data: bytes, valid_types: frozenset[int], limits: dict[int, int] | None = None, exact: bool = False
) -> int:
    """How many whole typed messages `data` starts with, when its bytes walk as a chain of messages of
    `valid_types` that ends exactly at its end or (unless `exact`) inside a last message with a
    plausible header; else 0. (A startup-family message counts too.)"""
    limits = limits or {}
    pos = 0
    size = len(data)
    count = 0
    while pos < size:
        if size - pos < 5:
            return count if count and not exact and data[pos] in valid_types else 0
        kind = data[pos]
        if kind == UNTYPED:
            length = int.from_bytes(data[pos : pos + 4], "big")
            if (
                not 8 <= length <= p.MAX_STARTUP
                or p.startup_code(data[pos + 4 : pos + 8]) not in p.STARTUP_CODES
            ):
                return 0
            pos += length
        else:
            length = int.from_bytes(data[pos + 1 : pos + 5], "big")
            if kind not in valid_types or not 4 <= length <= limits.get(kind, MAX_LENGTH):
                return 0
            pos += 1 + length
        if pos > size:
            return 0 if exact else count  # a last message that goes on in the next chunk
        count += 1
    return count
