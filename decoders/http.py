"""HTTP/1.0 and 1.1 exchanges seen on one channel, from the client's side or the server's.

Parsing is h11's, and h11 is a *participant*: `h11.Connection(our_role=...)` parses only the peer's
bytes and keeps a state machine that expects us to send our half. We are an observer of both halves,
so each direction gets its own parser with the role that makes the bytes it sees "the peer's":
requests are read by a connection in the SERVER role, responses by one in the CLIENT role. Instead of
feeding one long-lived connection our synthetic half of every cycle (responses mirrored into the request
parser, which would stall pipelined requests behind their responses), each message gets a fresh h11
connection, and the bytes h11 did not consume (`trailing_data`) start the next one. The response parser
is told the request's method first (a mirrored `Request` with no body), so HEAD replies, 1xx interim
replies, `CONNECT` tunnels and `101 Switching Protocols` are framed exactly as h11 frames them.

What h11 refuses goes through `protocols.http`: a head cut by the tracer (`strace -s`) or malformed is
read as far as it goes (record marked truncated; a reason phrase cut short is left out rather than
shown cut), then the stream resynchronises on the next request or status line found at a line start,
right after lost bytes, or at the first byte of a call (a peer usually writes a new message with a new
call, and the tracer shows calls).
Lost bytes inside a Content-Length (or read-until-close) body are only counted: they are handed to h11
as padding, so framing continues exactly. Bytes skipped while resynchronising count towards the cut
message, so `request_bytes`/`response_bytes` stay the bytes on the wire (head + body, including any
`100 Continue` interim response).

Roles come from content: the direction whose first bytes are a request line carries requests; a status
line first means the other one does; only when neither shows does `channel.listening` decide. Side is
"client" when requests go OUT (the traced process sent them), "server" when they come IN.

Times: `start` is the time of the chunk holding the request's first byte; `duration` runs to the chunk
holding the final response's last byte (end of response, not first byte: the latency a user waits).

Each byte is scanned a bounded number of times: h11 gets the stream in pieces of at most `PIECE`
bytes, our buffer is trimmed as messages complete, and line searches remember where they stopped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import h11

from decoders.api import ChannelInfo, Chunk, Decoder, Direction
from decoders.http2.streams import Head
from decoders.records import Annotation, HttpExchange, Output
from decoders.redact import redact_header, redact_url
from protocols.http import (
    MAX_START_LINE,
    PartialHead,
    looks_like_cut_request,
    parse_partial_head,
    request_line_at,
    status_line_at,
    url_text,
)

if TYPE_CHECKING:
    from decoders.http2 import Http2Decoder

PIECE = 16384  # most bytes handed to h11 at once: bounds what its trailing data can hold
MAX_HEAD = 256 * 1024  # h11's limit for an incomplete head; beyond it the head is read our way
_PAD = bytes(PIECE)


@dataclass
class _Message:
    """One request or one response (with its interim 1xx replies), as far as it was seen."""

    start: int  # absolute stream offset of its first byte
    time: float | None
    call_index: int
    pid: int
    end_time: float | None = None
    method: str | None = None
    target: str | None = None
    status: int | None = None
    reason: str | None = None
    http_version: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)  # raw, not yet redacted
    head_done: bool = False
    body_bytes: int = 0
    content_length: int | None = None
    chunked: bool = False
    wire_bytes: int = 0
    done: bool = False
    truncated: bool = False
    complete: bool = True
    tunnel: bool = False  # CONNECT accepted or 101: what follows is another protocol
    registered: bool = False  # the decoder has placed it in an exchange

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)


@dataclass
class _Exchange:
    request: _Message | None = None
    response: _Message | None = None


def _text(raw: bytes | bytearray) -> str:
    return bytes(raw).decode("latin-1")


# Headers of HTTP/1.1's connection, not of the request, and so not of HTTP/2's stream 1 (RFC 9113 8.2.2).
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "upgrade",
        "http2-settings",
        "keep-alive",
        "proxy-connection",
        "te",
        "transfer-encoding",
        "host",
    }
)


def _as_head(request: _Message) -> Head:
    """An HTTP/1.1 request as the header block of HTTP/2's stream 1."""
    head = Head()
    head.pseudo = {":method": request.method or "GET", ":path": request.target or "/", ":scheme": "http"}
    host = request.header("host")
    if host:
        head.pseudo[":authority"] = host
    head.headers = [
        (name.lower(), value) for name, value in request.headers if name.lower() not in _HOP_BY_HOP
    ]
    return head


_ASCII_ONLY = bytes(range(128)) + b"_" * 128  # a translate table: bytes above 0x7f become `_`


class _Stream:
    """The messages of one direction: requests (`requests=True`) or responses."""

    def __init__(self, decoder: HttpDecoder, requests: bool) -> None:
        self.decoder = decoder
        self.requests = requests
        self.buf = bytearray()
        self.base = 0  # absolute offset of buf[0]; offsets count lost bytes too
        self.fed = 0  # absolute offset up to which h11 has been given bytes
        self.mode = "idle"  # idle, message, resync, tunnel
        self.msg_start = 0  # idle/message: where the current message starts
        self.msg: _Message | None = None
        self.conn: h11.Connection | None = None
        self.scan = 0  # resync: the candidate start; idle: where the line-end search resumes
        self.cand_ok = True  # resync: the candidate is at a line start or right after lost bytes
        self._newline_from = 0  # where the search for the next line end resumes
        self.closing = False  # the channel ended: an unfinished body is cut short, not malformed
        self.absorbing: _Message | None = None  # a cut message that owns the bytes skipped in resync
        self.chunks: deque[tuple[int, float | None, int, int]] = deque()  # (offset, time, call, pid)
        self.last_time: float | None = None

    @property
    def end(self) -> int:
        return self.base + len(self.buf)

    # -- input -----------------------------------------------------------------------------------

    def feed(self, chunk: Chunk) -> None:
        self.last_time = chunk.time
        self.chunks.append((self.end, chunk.time, chunk.call_index, chunk.pid))
        self.buf += chunk.data
        self.pump()
        if chunk.missing:
            self.lose(chunk.missing)
        self.trim()

    def origin(self, offset: int) -> tuple[float | None, int, int]:
        """Time, call index and pid of the chunk holding the byte at `offset` (`trim` drops old chunks)."""
        found = self.chunks[0]
        for chunk in self.chunks:
            if chunk[0] > offset:
                break
            found = chunk
        _, time, call, pid = found
        return time, call, pid

    def time_before(self, offset: int) -> float | None:
        """Time of the chunk holding the byte just before `offset`: when a message that ends there ended."""
        found = self.last_time
        for start, time, _, _ in reversed(self.chunks):
            found = time
            if start < offset:
                break
        return found

    def trim(self) -> None:
        if self.mode == "message":
            keep = (
                self.msg_start
                if not (self.msg and self.msg.head_done)
                else max(self.msg_start, self.fed - PIECE)
            )
        elif self.mode == "resync":
            keep = self.scan
        elif self.mode == "idle":
            keep = self.msg_start
        else:
            keep = self.end
        while len(self.chunks) > 1 and self.chunks[1][0] <= keep:
            self.chunks.popleft()
        drop = min(keep, self.end) - self.base
        if drop > 65536 or (drop > 0 and drop == len(self.buf)):
            del self.buf[:drop]
            self.base += drop

    # -- the state machine ---------------------------------------------------------------------

    def pump(self) -> None:
        progressing = True
        while progressing:
            if self.mode == "idle":
                progressing = self.step_idle()
            elif self.mode == "message":
                progressing = self.step_message()
            elif self.mode == "resync":
                progressing = self.step_resync()
            else:
                return

    def step_idle(self) -> bool:
        """Between messages: skip blank lines, then decide whether a start line begins here."""
        buf, base = self.buf, self.base
        pos = self.msg_start - base
        while pos < len(buf) and buf[pos] in (13, 10):
            pos += 1
        if pos != self.msg_start - base:
            self.msg_start = base + pos
            self.scan = self.msg_start
        if pos >= len(buf):
            return False
        newline = buf.find(b"\n", max(pos, self.scan - base))
        if newline < 0:
            self.scan = self.end
            if len(buf) - pos > MAX_START_LINE:
                self.start_resync(self.msg_start, line_start=False)
                return True
            return False
        if self.requests and request_line_at(buf, pos) or not self.requests and status_line_at(buf, pos):
            self.start_message()
        else:
            self.start_resync(self.msg_start, line_start=False)
        return True

    def start_message(self) -> None:
        time, call, pid = self.origin(self.msg_start)
        self.msg = _Message(start=self.msg_start, time=time, call_index=call, pid=pid)
        self.fed = self.msg_start
        self.mode = "message"
        if self.requests:
            self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
            return
        self.conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        method, upgrade = self.decoder.pending_request()
        headers = [("Host", "dockit.invalid")]
        if upgrade:
            headers += [("Upgrade", upgrade), ("Connection", "upgrade")]
        try:
            self.conn.send(h11.Request(method=method, target="/", headers=headers))
            self.conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            self.conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
            self.conn.send(h11.Request(method="GET", target="/", headers=headers[:1]))
            self.conn.send(h11.EndOfMessage())

    def step_message(self) -> bool:
        """Hand h11 the next piece and act on what it recognised."""
        if self.fed >= self.end:
            return False
        start = self.fed - self.base
        piece = bytes(self.buf[start : start + PIECE])
        if self.requests and self.msg is not None and not self.msg.head_done:
            piece = self.ascii_target(piece)
        self.fed += len(piece)
        assert self.conn is not None
        self.conn.receive_data(piece)
        self.drain()
        return True

    def ascii_target(self, piece: bytes) -> bytes:
        """`piece` with the request line's bytes above 0x7f replaced by `_`: h11 refuses a target that is
        not ASCII (a raw UTF-8 URL, as curl sends one), and `take_head` reads the real one from `buf`."""
        assert self.msg is not None
        line = request_line_at(self.buf, self.msg.start - self.base)
        if line is None:
            return piece
        line_end = self.base + line.end() - self.fed  # where the line ends in `piece`
        if line_end <= 0 or piece[:line_end].isascii():
            return piece
        return piece[:line_end].translate(_ASCII_ONLY) + piece[line_end:]

    def drain(self) -> None:
        """Take h11's events until it needs more bytes or the message ended."""
        conn, msg = self.conn, self.msg
        assert conn is not None and msg is not None
        while self.mode == "message":
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError:
                self.refused()
                return
            if event is h11.NEED_DATA:
                return
            if isinstance(event, h11.InformationalResponse):
                if event.status_code == 101:
                    self.take_head(event)
                    msg.tunnel = True
                    self.finish(len(conn.trailing_data[0]))
                    return
                continue  # 100 Continue and friends: not the final response, their bytes count
            if isinstance(event, (h11.Request, h11.Response)):
                self.take_head(event)
            elif isinstance(event, h11.Data):
                msg.body_bytes += len(event.data)
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                self.finish(len(conn.trailing_data[0]))
                return
            elif event is h11.PAUSED:
                # a CONNECT accepted: h11 hands over the connection without an EndOfMessage
                if msg.head_done and not self.requests:
                    msg.tunnel = True
                    self.finish(len(conn.trailing_data[0]))
                return

    def take_head(self, event: h11.Request | h11.Response | h11.InformationalResponse) -> None:
        msg = self.msg
        assert msg is not None
        msg.headers = [(_text(name), _text(value)) for name, value in event.headers.raw_items()]
        msg.http_version = _text(event.http_version)
        if isinstance(event, h11.Request):
            msg.method = _text(event.method)
            line = request_line_at(self.buf, msg.start - self.base)
            msg.target = url_text(line.group(2) if line else event.target)
        else:
            msg.status = event.status_code
            msg.reason = _text(event.reason) or None
        length = msg.header("content-length")
        msg.chunked = "chunked" in (msg.header("transfer-encoding") or "").lower()
        if length is not None and not msg.chunked:
            try:
                msg.content_length = int(length.split(",")[0].strip())
            except ValueError:
                msg.content_length = None
        msg.head_done = True
        self.decoder.on_head(self, msg)

    def finish(self, leftover: int) -> None:
        """The message ended `leftover` bytes before what h11 was given."""
        msg = self.msg
        assert msg is not None
        msg_end = self.fed - leftover
        msg.wire_bytes = msg_end - msg.start
        msg.done = True
        msg.end_time = self.last_time
        self.msg, self.conn = None, None
        self.msg_start = self.scan = msg_end
        self.mode = "tunnel" if msg.tunnel else "idle"
        self.decoder.on_done(self, msg)

    def refused(self) -> None:
        """h11 rejected the bytes: read the head our way if it was not read, then resynchronise."""
        msg, conn = self.msg, self.conn
        assert msg is not None and conn is not None
        self.msg, self.conn = None, None
        if msg.head_done:
            if self.closing:  # the peer closed before the body was complete
                msg.complete = False
                self.mode = "tunnel"
                self.finish_unfinished(msg)
                return
            # a malformed body: it owns the bytes up to the next start line
            msg.truncated = True
            self.absorbing = msg
            self.start_resync(max(self.base, self.fed - len(conn.trailing_data[0])), line_start=True)
            return
        head = self.adopt_partial(msg, self.buf[msg.start - self.base : self.fed - self.base], cut=False)
        if head is not None:
            self.absorbing = msg
            if head.complete:
                self.start_resync(msg.start + head.length, line_start=True)
                return
        self.start_resync(msg.start, line_start=False)

    def adopt_partial(self, msg: _Message, data: bytes | bytearray, cut: bool) -> PartialHead | None:
        """Fill `msg` from a head h11 could not read; None if nothing legible.

        `cut`: the tracer lost bytes of it (truncated). A head h11 refused but that ended, or one the
        end of the channel cut short, is not truncated: nothing was hidden from us."""
        head = parse_partial_head(data, self.requests)
        if head is None:
            return None
        msg.method, msg.target = head.method, head.target
        msg.status, msg.reason, msg.http_version = head.status, head.reason, head.http_version
        msg.headers = head.headers
        msg.truncated = msg.truncated or cut or (not head.complete and not self.closing)
        msg.head_done = True
        self.decoder.on_head(self, msg)
        return head

    # -- resynchronisation ---------------------------------------------------------------------

    def start_resync(self, at: int, line_start: bool) -> None:
        self.mode = "resync"
        self.scan = at
        self.cand_ok = line_start
        self._newline_from = at

    def step_resync(self) -> bool:
        """Look for the next start line at a line start, right after lost bytes, or where a call began."""
        buf, base = self.buf, self.base
        while True:
            newline = buf.find(b"\n", max(self.scan, self._newline_from) - base)
            if newline < 0:
                self._newline_from = self.end
                if self.end - self.scan > MAX_START_LINE:
                    self.scan, self.cand_ok = self.end, False
                return False
            for candidate in self.candidates(base + newline):
                if self.starts_here(candidate):
                    self.close_absorbing(candidate)
                    self.msg_start = self.scan = candidate
                    self.mode = "idle"
                    return True
            self.scan = self._newline_from = base + newline + 1
            self.cand_ok = True

    def candidates(self, limit: int) -> list[int]:
        """Where in [scan, limit] a message may begin: the line start, and each call's first byte
        (a peer usually writes a new message with a new call, and the tracer shows calls)."""
        found = [self.scan] if self.cand_ok else []
        found += [offset for offset, *_ in self.chunks if self.scan < offset <= limit]
        return found

    def starts_here(self, offset: int) -> bool:
        pos = offset - self.base
        return bool(request_line_at(self.buf, pos) if self.requests else status_line_at(self.buf, pos))

    def close_absorbing(self, until: int) -> None:
        msg, self.absorbing = self.absorbing, None
        if msg is not None:
            msg.wire_bytes = until - msg.start
            msg.done = True
            msg.end_time = self.time_before(until)
            self.decoder.on_done(self, msg)

    # -- lost bytes ----------------------------------------------------------------------------

    def lose(self, missing: int) -> None:
        """`missing` bytes the tracer did not show follow what was fed."""
        if self.mode == "tunnel":
            self.skip(missing)
            return
        msg = self.msg
        if self.mode == "message" and msg is not None and msg.head_done:
            msg.truncated = True
            if msg.content_length is not None:
                taken = self.pad(min(missing, max(0, msg.content_length - msg.body_bytes)))
                if self.mode == "message" or taken == missing:
                    return  # the body goes on after the lost bytes, or ended exactly with them
                # the body ended inside the lost bytes: the rest belonged to what followed
                self.skip(missing - taken)
                self.start_resync(self.end, line_start=True)
                return
            if not msg.chunked and not self.requests:
                self.pad(missing)  # a body read until close: every lost byte is body
                return
            # chunked: the chunk boundaries are gone; the message owns what comes until a start line
            self.msg, self.conn = None, None
            self.absorbing = msg
            self.skip(missing)
            self.start_resync(self.end, line_start=True)
            return
        self.adopt_fragment(in_message=self.mode == "message")
        self.msg, self.conn = None, None
        self.skip(missing)
        self.start_resync(self.end, line_start=True)

    def adopt_fragment(self, in_message: bool) -> _Message | None:
        """A start line (and perhaps headers) cut by lost bytes or the end: read it as a message."""
        if self.mode in ("idle", "message"):
            start = self.msg_start if self.msg_start < self.end else None
        else:  # resync: a line still open (no line end yet) that starts like a message
            start = next((c for c in self.candidates(self.end) if c < self.end and self.cut_start(c)), None)
        if start is None:
            return None
        fragment = self.buf[start - self.base :]
        if not self.requests:  # interim 1xx heads that ended are not the response
            interim = parse_partial_head(fragment, requests=False)
            while (
                interim
                and interim.complete
                and interim.status
                and 100 <= interim.status < 200
                and interim.status != 101
            ):
                fragment = fragment[interim.length :]
                interim = parse_partial_head(fragment, requests=False)
        if not in_message and not self.cut_start(start):
            return None
        msg = self.msg if in_message and self.msg is not None else None
        if msg is None:
            time, call, pid = self.origin(start)
            msg = _Message(start=start, time=time, call_index=call, pid=pid)
        if self.adopt_partial(msg, fragment, cut=not self.closing) is None:
            return None
        self.close_absorbing(start)
        self.absorbing = msg
        return msg

    def cut_start(self, offset: int) -> bool:
        """A start line, cut before its line end, begins at `offset`."""
        fragment = self.buf[offset - self.base :]
        if b"\n" in fragment:
            return False
        if self.requests:
            return bool(looks_like_cut_request(fragment))
        return bool(status_line_at(fragment))

    def pad(self, count: int) -> int:
        """Give h11 `count` stand-in bytes for lost body bytes; returns how many it took."""
        self.buf.clear()  # everything real was fed already
        self.base = self.fed
        given = 0
        while given < count and self.mode == "message":
            size = min(PIECE, count - given)
            assert self.conn is not None
            self.conn.receive_data(_PAD[:size])
            self.fed += size
            self.base = self.fed
            given += size
            self.drain()
        return given

    def skip(self, count: int) -> None:
        """Lost bytes nobody can read: only their count survives, in the offsets."""
        position = self.end + count
        self.buf.clear()
        self.base = self.fed = self.scan = self._newline_from = position
        if self.mode == "idle":
            self.msg_start = position

    # -- the end ---------------------------------------------------------------------------------

    def close(self) -> None:
        """The channel ended: a body read until close ends here, anything else is unfinished."""
        self.closing = True
        if self.mode == "message" and self.msg is not None and self.conn is not None:
            msg = self.msg
            if msg.head_done:
                self.conn.receive_data(b"")
                self.drain()
                if self.msg is msg:  # h11 did not end it
                    msg.complete = False
                    self.msg = None
                    self.finish_unfinished(msg)
            else:
                self.msg, self.conn = None, None
                if self.adopt_partial(msg, self.buf[msg.start - self.base :], cut=False) is not None:
                    self.close_absorbing(msg.start)
                    msg.complete = False
                    self.finish_unfinished(msg)
        elif self.mode in ("idle", "resync"):
            msg = self.adopt_fragment(in_message=False)
            if msg is not None:
                self.absorbing = None
                msg.complete = False
                self.finish_unfinished(msg)
        self.close_absorbing(self.end)
        self.mode = "tunnel"

    def finish_unfinished(self, msg: _Message) -> None:
        msg.wire_bytes = self.end - msg.start
        msg.done = True
        msg.end_time = self.last_time
        self.decoder.on_done(self, msg)


# Requests of one connection waiting for their responses, at most: browsers pipeline a handful, a load
# tool thousands (tests/test_http_decoder.py sends 10,000 in one write), a crafted log 200,000.
MAX_WAITING = 16384


class HttpDecoder(Decoder):
    """HTTP/1.x requests matched in order to their responses (keep-alive and pipelining included)."""

    name = "http"
    ports = frozenset({80, 8080, 8000, 8008, 8888})
    alpn = frozenset({"http/1.1", "http/1.0"})

    def __init__(self, channel: ChannelInfo) -> None:
        super().__init__(channel)
        self.request_direction: Direction | None = None
        self.streams: dict[Direction, _Stream] = {}
        self.exchanges: deque[_Exchange] = deque()
        self.unanswered = 0  # exchanges before this index all have their response
        self.owed = 0  # responses still to come for requests written out without them (see _bound)
        self.outputs: list[Output] = []
        self.closed = False
        self.upgraded: Http2Decoder | None = None  # after `101 Switching Protocols` to h2c

    @classmethod
    def score(cls, data: bytes, direction: Direction, channel: ChannelInfo) -> int:
        data = bytes(data[:MAX_START_LINE]).lstrip(b"\r\n")
        if data.startswith(b"PRI * HTTP/2.0"):
            return 0
        if request_line_at(data):
            return 100
        if status_line_at(data):
            return 90
        if looks_like_cut_request(data):
            return 70
        return 0

    # -- roles -----------------------------------------------------------------------------------

    def _decide_roles(self, chunk: Chunk) -> None:
        data = chunk.data.lstrip(b"\r\n")
        if request_line_at(data) or looks_like_cut_request(data):
            self.request_direction = chunk.direction
        elif status_line_at(data):
            self.request_direction = chunk.direction.reverse()
        else:
            self.request_direction = Direction.IN if self.channel.listening else Direction.OUT
        self.streams = {
            self.request_direction: _Stream(self, requests=True),
            self.request_direction.reverse(): _Stream(self, requests=False),
        }

    @property
    def side(self) -> str:
        return "client" if self.request_direction is Direction.OUT else "server"

    # -- the Decoder interface ---------------------------------------------------------------

    def feed(self, chunk: Chunk) -> Sequence[Output]:
        if self.closed:
            return ()
        if self.upgraded is not None:
            self.upgraded.feed_bytes(
                chunk.direction, chunk.data, chunk.missing, chunk.time, chunk.pid, chunk.call_index
            )
            return self._take_outputs()
        if self.request_direction is None:
            if not chunk.data:
                return ()  # nothing to tell the roles from yet
            self._decide_roles(chunk)
        self.streams[chunk.direction].feed(chunk)
        if self.upgraded is not None and chunk.missing:  # upgraded by this chunk: its lost bytes are HTTP/2's
            self.upgraded.feed_bytes(
                chunk.direction, b"", chunk.missing, chunk.time, chunk.pid, chunk.call_index
            )
        return self._take_outputs()

    def close(self, time: float | None) -> Sequence[Output]:
        if self.closed:
            return ()
        self.closed = True
        for stream in self.streams.values():
            stream.close()
        self._emit(final=True)
        if self.upgraded is not None:
            self.outputs += self.upgraded.close(time)
            self.upgraded = None
        # Each stream points back to this decoder: dropping them lets a finished connection's state
        # go at once, not at the next cyclic collection (a server traced long has many).
        self.streams = {}
        self.exchanges.clear()
        return self._take_outputs()

    def _take_outputs(self) -> list[Output]:
        outputs, self.outputs = self.outputs, []
        if self.upgraded is not None:
            outputs += self.upgraded.take()
        return outputs

    # -- called by the streams ----------------------------------------------------------------

    def pending_request(self) -> tuple[str, str | None]:
        """Method (and Upgrade proposal) of the oldest request still waiting for its response."""
        for index in range(self.unanswered, len(self.exchanges)):
            request = self.exchanges[index].request
            if self.exchanges[index].response is None and request is not None:
                method = request.method if request.method and request.method.isascii() else "GET"
                return method, request.header("upgrade")
        return "GET", None

    def on_head(self, stream: _Stream, msg: _Message) -> None:
        if msg.registered:
            return
        msg.registered = True
        if stream.requests:
            self.exchanges.append(_Exchange(request=msg))
            target = redact_url(msg.target or "")
            self.outputs.append(Annotation(msg.call_index, f"http {msg.method} {target}".rstrip()))
            if len(self.exchanges) > MAX_WAITING:
                self._bound()
            return
        if self.owed:
            self.owed -= 1  # the answer to a request already written out without it
            return
        while self.unanswered < len(self.exchanges):
            exchange = self.exchanges[self.unanswered]
            self.unanswered += 1
            if exchange.response is None:
                exchange.response = msg
                return
        self.exchanges.append(_Exchange(response=msg))
        self.unanswered = len(self.exchanges)

    def _bound(self) -> None:
        """A client pipelining requests that no response answers (a crafted trace: 200,000 of them) must
        not hold them all: past MAX_WAITING, the oldest is written out as it is (no response), and the
        response that may still come for it is not taken for the next request's."""
        while len(self.exchanges) > MAX_WAITING:
            exchange = self.exchanges.popleft()
            if self.unanswered > 0:
                self.unanswered -= 1
            elif exchange.response is None:
                self.owed += 1
            self.outputs.append(self._record(exchange.request, exchange.response))

    def on_done(self, stream: _Stream, msg: _Message) -> None:
        if msg.tunnel and msg.status == 101 and "h2c" in (msg.header("upgrade") or "").lower():
            self._upgrade(stream, msg)
        if msg.tunnel:
            for other in self.streams.values():
                if other is not stream and other.mode in ("idle", "resync"):
                    other.close_absorbing(other.end)
                    other.mode = "tunnel"
        self._emit(final=False)

    def _upgrade(self, stream: _Stream, response: _Message) -> None:
        """`101 Switching Protocols` to h2c (RFC 7540 3.2): the rest of the connection is HTTP/2, and the
        request that asked for it is its stream 1. The bytes each direction already holds past its last
        HTTP/1.1 message go to the HTTP/2 decoder first."""
        from decoders.http2 import Http2Decoder  # imported when a connection upgrades, not before

        request = next((e.request for e in self.exchanges if e.response is response), None)
        upgraded = Http2Decoder(self.channel)
        upgraded.options = self.options
        upgraded.client = self.request_direction
        if request is not None:
            upgraded.open_upgraded(
                _as_head(request), request.time, request.pid, request.call_index, request.wire_bytes
            )
        self.upgraded = upgraded
        for direction, each in self.streams.items():
            start = each.msg_start if each.mode in ("idle", "resync", "tunnel") else each.end
            if each.msg is not None and each.mode == "message":
                start = each.msg.start
            rest = bytes(each.buf[max(0, start - each.base) :])
            origin = each.origin(start) if each.chunks else (None, 0, 0)
            if rest:
                upgraded.feed_bytes(direction, rest, 0, origin[0], origin[2], origin[1])
            each.msg, each.conn = None, None
            each.buf.clear()
            each.base = each.end
            each.mode = "tunnel"

    def _emit(self, final: bool) -> None:
        while self.exchanges:
            exchange = self.exchanges[0]
            request, response = exchange.request, exchange.response
            ready = request is not None and request.done and response is not None and response.done
            if not ready and not final:
                return
            self.exchanges.popleft()
            self.unanswered = max(0, self.unanswered - 1)
            self.outputs.append(self._record(request, response))

    def _record(self, request: _Message | None, response: _Message | None) -> HttpExchange:
        first = request or response
        assert first is not None
        duration = None
        if request and response and request.time is not None and response.end_time is not None:
            duration = max(0.0, response.end_time - request.time)
        complete = (
            request is not None
            and request.done
            and request.complete
            and response is not None
            and response.done
            and response.complete
        )
        return HttpExchange(
            side=self.side,
            process=first.pid,
            method=request.method if request else None,
            url=redact_url(request.target) if request and request.target is not None else None,
            host=request.header("host") if request else None,
            status=response.status if response else None,
            reason=response.reason if response else None,
            start=request.time if request else None,
            duration=duration,
            request_bytes=request.wire_bytes if request else 0,
            response_bytes=response.wire_bytes if response else 0,
            content_type=response.header("content-type") if response else None,
            http_version=(request.http_version if request and request.http_version else None)
            or (response.http_version if response else None),
            response_version=response.http_version if response else None,
            server=self.channel.server,
            truncated=bool((request and request.truncated) or (response and response.truncated)),
            complete=complete,
            request_headers=[(name, redact_header(name, value)) for name, value in request.headers]
            if request
            else [],
            response_headers=[(name, redact_header(name, value)) for name, value in response.headers]
            if response
            else [],
        )
