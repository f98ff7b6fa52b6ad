"""HTTP/2 connections (h2c with prior knowledge, after an HTTP/1.1 `Upgrade: h2c`, and the plaintext of
TLS with ALPN `h2`), client or server side: each stream an `HttpExchange` (`Version="2"`), and each
gRPC stream also a `Dockit_RpcCall`.

Frames come from `decoders.measured_frames.MeasuredReader` (a 9-byte header says each frame's size;
bytes the tracer lost inside a frame are skipped exactly, elsewhere the reader searches for the next
plausible frame header), so a connection cut mid-frame, or a trace that starts mid-connection, goes on
at the next frame. Header blocks (HEADERS or PUSH_PROMISE, then CONTINUATION until END_HEADERS) are
decoded by the `hpack` package, one decoder per direction, as HPACK's dynamic table is per direction;
a block the tracer cut cannot be decoded, and since the table may then differ from the peer's, every
later stream of that direction is marked truncated. Flow control (WINDOW_UPDATE) and priorities are not
followed: an observer has nothing to enforce.

Roles come from content: the client sends the preface (`PRI * HTTP/2.0...`), or a header block with
`:method`; a block with `:status` is the server's; `channel.listening` decides only when nothing else
has. Side is "client" when requests go OUT.

A stream's record comes out when both sides ended it (END_STREAM) or one reset it (RST_STREAM, its
code in `Reset`), so streams come out in the order they finish; at close, the streams still open come
out incomplete. Memory is bounded: MAX_STREAMS open streams at most (the oldest goes out incomplete),
header blocks up to MAX_BLOCK bytes, frames kept up to MAX_KEEP bytes (the rest counted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import hpack

from decoders.api import ChannelInfo, Chunk, Decoder, Direction
from decoders.http2 import grpc as rpc
from decoders.http2.streams import MAX_HEADERS, H2Stream, Head, call_facts, exchange
from decoders.measured_frames import MeasuredFrame, MeasuredReader
from decoders.records import Annotation, Output, Problem
from decoders.redact import redact_url
from protocols import grpc as g
from protocols import http2 as h2
from protocols import protobuf as pb

MAX_STREAMS = 1000
MAX_KEEP = 64 * 1024 + h2.HEADER_SIZE  # DATA beyond this is counted, not kept
MAX_BLOCK = 256 * 1024  # a header block longer than this (HEADERS and CONTINUATIONs) is not decoded
MAX_TABLE = 1 << 20  # the HPACK table size a peer may ask for, as far as we follow it


def _text(raw: bytes | str) -> str:
    return raw.decode("latin-1") if isinstance(raw, bytes) else raw


@dataclass
class _Block:
    """A header block being read: HEADERS or PUSH_PROMISE, then CONTINUATIONs until END_HEADERS."""

    stream_id: int
    kind: int
    flags: int
    first: MeasuredFrame
    promised: int = 0
    fragments: list[bytes] = field(default_factory=list)
    size: int = 0  # the wire bytes of its frames


class Http2Decoder(Decoder):
    """One HTTP/2 connection: frames, header blocks, streams, gRPC calls."""

    name = "http2"
    ports = frozenset()  # h2c has no port of its own: the preface is the proof
    alpn = frozenset({"h2"})  # TLS that negotiated h2 is this decoder's (see decoders.api)

    def __init__(self, channel: ChannelInfo) -> None:
        super().__init__(channel)
        self.readers = {d: self._reader() for d in Direction}
        self.hpack = {d: hpack.Decoder() for d in Direction}
        self.damaged = {d: False for d in Direction}  # a header block lost: the HPACK table may be wrong
        self.opening = {
            d: bytearray() for d in Direction
        }  # a direction's first bytes, while they may be the preface
        self.started = {d: False for d in Direction}
        self.client: Direction | None = None
        self.block: dict[Direction, _Block | None] = {d: None for d in Direction}
        self.streams: dict[int, H2Stream] = {}
        self.schema: pb.Schema | None = None
        self.closed = False
        self.problems = 0
        self.out: list[Output] = []

    @staticmethod
    def _reader() -> MeasuredReader:
        return MeasuredReader(
            h2.measure_frame,
            h2.plausible_frame,
            max_keep=MAX_KEEP,
            max_frame=h2.MAX_FRAME_LENGTH + h2.HEADER_SIZE,
        )

    @classmethod
    def score(cls, data: bytes, direction: Direction, channel: ChannelInfo) -> int:
        head = bytes(data[: len(h2.PREFACE)])
        if len(head) >= 8 and h2.PREFACE.startswith(head):
            return 100
        return 0

    # -- input ---------------------------------------------------------------------------------------

    def feed(self, chunk: Chunk) -> Sequence[Output]:
        if self.closed:
            return ()
        self.feed_bytes(chunk.direction, chunk.data, chunk.missing, chunk.time, chunk.pid, chunk.call_index)
        return self.take()

    def feed_bytes(
        self, direction: Direction, data: bytes, missing: int, time: float | None, pid: int, call_index: int
    ) -> None:
        """The bytes of one call (the HTTP/1.1 decoder hands over an upgraded connection this way)."""
        if not self.started[direction]:
            data = self._opening(direction, data, missing)
            if data is None:
                return
        reader = self.readers[direction]
        resyncs = reader.resyncs
        for frame in reader.feed(data, missing, time, pid, call_index):
            self._frame(frame, direction)
        if reader.resyncs != resyncs:
            # frames were lost whole: any open stream may have lost some, and a header block may have
            # gone with them (the HPACK table is then not the peer's)
            self._damage(direction)
            for stream in self.streams.values():
                stream.truncated = True

    def _opening(self, direction: Direction, data: bytes, missing: int) -> bytes | None:
        """A direction's first bytes: the client's preface is taken off, and says who the client is."""
        opening = self.opening[direction]
        opening += data
        size = len(h2.PREFACE)
        if h2.PREFACE.startswith(bytes(opening[:size])) and len(opening) < size and not missing:
            return None  # maybe the preface: wait for the rest
        self.started[direction] = True
        self.opening[direction] = bytearray()
        if opening.startswith(h2.PREFACE):
            if self.client is None:
                self.client = direction
            return bytes(opening[size:])
        return bytes(opening)

    def take(self) -> list[Output]:
        out, self.out = self.out, []
        return out

    def reading_since(self) -> int | None:
        return None

    # -- frames --------------------------------------------------------------------------------------

    def _frame(self, frame: MeasuredFrame, direction: Direction) -> None:
        header = h2.frame_header(frame.data)
        if header is None:
            return
        _length, kind, flags, stream_id = header
        payload = frame.data[h2.HEADER_SIZE :]
        whole = frame.whole
        block = self.block[direction]
        if block is not None and kind != h2.CONTINUATION:
            self._problem(
                "warning", f"a header block of stream {block.stream_id} ended without END_HEADERS", frame
            )
            self.block[direction] = None
            self._damage(direction)
        if kind == h2.HEADERS:
            fragment = h2.header_fragment(kind, flags, payload) if whole else None
            self._start_block(direction, _Block(stream_id, kind, flags, frame), fragment, frame)
        elif kind == h2.CONTINUATION:
            self._continue_block(direction, stream_id, flags, payload if whole else None, frame)
        elif kind == h2.PUSH_PROMISE:
            promised = h2.push_promise(flags, payload) if whole else None
            if promised is None:
                self._count(stream_id, direction, frame)
                self._damage(direction)
                return
            self._start_block(
                direction, _Block(stream_id, kind, flags, frame, promised[0]), promised[1], frame
            )
        elif kind == h2.DATA:
            self._data(stream_id, flags, payload, frame, direction)
        elif kind == h2.RST_STREAM:
            stream = self.streams.get(stream_id)
            code = h2.error_code(payload)
            if stream is not None:
                stream.reset = h2.error_name(code) if code is not None else "unknown"
                stream.reset_by = self._side_of(direction)
                stream.end_time = frame.end_time
                self._finish(stream_id)
        elif kind == h2.SETTINGS and not flags & h2.ACK and whole:
            for setting, value in h2.settings(payload):
                if setting == h2.SETTINGS_HEADER_TABLE_SIZE:
                    # the sender's decoder allows this much: the peer's encoder, whose blocks go the other way
                    self.hpack[direction.reverse()].max_allowed_table_size = min(value, MAX_TABLE)
        elif kind == h2.GOAWAY and whole:
            found = h2.goaway(payload)
            if found is not None and found[1]:
                debug = found[2][:200].decode("utf-8", "replace")
                self._problem(
                    "note",
                    f"GOAWAY {h2.error_name(found[1])} after stream {found[0]}: {debug}".rstrip(": "),
                    frame,
                )

    def _count(self, stream_id: int, direction: Direction, frame: MeasuredFrame) -> None:
        stream = self.streams.get(stream_id)
        if stream is None:
            return
        if direction is self.client:
            stream.request_bytes += frame.size
        else:
            stream.response_bytes += frame.size
        if not frame.whole:
            stream.truncated = True

    def _data(
        self, stream_id: int, flags: int, payload: bytes, frame: MeasuredFrame, direction: Direction
    ) -> None:
        stream = self.streams.get(stream_id)
        if stream is None:
            return
        self._count(stream_id, direction, frame)
        requests = direction is self.client
        if stream.call is not None:
            reader = stream.call.request if requests else stream.call.response
            content = h2.data_content(flags, payload)
            reader.feed(content)
            total = h2.data_length(flags, frame.size - h2.HEADER_SIZE, payload[0] if payload else None)
            reader.lose(max(0, total - len(content)))
        if not requests:
            stream.end_time = frame.end_time
            stream.response_data += h2.data_length(
                flags, frame.size - h2.HEADER_SIZE, payload[0] if payload else None
            )
        if flags & h2.END_STREAM:
            self._end_side(stream, requests, frame)

    # -- header blocks -------------------------------------------------------------------------------

    def _start_block(
        self, direction: Direction, block: _Block, fragment: bytes | None, frame: MeasuredFrame
    ) -> None:
        block.size = frame.size
        if fragment is None:  # cut by the tracer: the block cannot be decoded, its frame still counts
            self._count(block.stream_id, direction, frame)
            self._damage(direction)
            stream = self.streams.get(block.stream_id)
            if block.flags & h2.END_STREAM and stream is not None and block.kind == h2.HEADERS:
                self._end_side(stream, direction is self.client, frame)
            return
        block.fragments.append(fragment)
        if block.flags & h2.END_HEADERS:
            self._block_done(direction, block, frame)
        else:
            self.block[direction] = block

    def _continue_block(
        self, direction: Direction, stream_id: int, flags: int, fragment: bytes | None, frame: MeasuredFrame
    ) -> None:
        block = self.block[direction]
        if block is None or block.stream_id != stream_id:
            self._count(stream_id, direction, frame)
            self._damage(direction)
            return
        block.size += frame.size
        if fragment is None or sum(map(len, block.fragments)) + len(fragment) > MAX_BLOCK:
            self.block[direction] = None
            self._count_bytes(block, direction)
            self._damage(direction)
            return
        block.fragments.append(fragment)
        if flags & h2.END_HEADERS:
            self.block[direction] = None
            self._block_done(direction, block, frame)

    def _count_bytes(self, block: _Block, direction: Direction) -> None:
        stream = self.streams.get(block.stream_id)
        if stream is not None:
            if direction is self.client:
                stream.request_bytes += block.size
            else:
                stream.response_bytes += block.size

    def _damage(self, direction: Direction) -> None:
        self.damaged[direction] = True

    def _block_done(self, direction: Direction, block: _Block, last: MeasuredFrame) -> None:
        stream_id, first = block.stream_id, block.first
        try:
            decoded = self.hpack[direction].decode(b"".join(block.fragments), raw=True)
        except Exception as error:  # noqa: BLE001 - hpack's errors, or a table we could not follow
            self._count_bytes(block, direction)
            self._damage(direction)
            self._problem(
                "warning", f"a header block of stream {stream_id} could not be decoded: {error}", first
            )
            return
        head = Head()
        for name, value in decoded[:MAX_HEADERS]:
            key, text = _text(name), _text(value)
            if key.startswith(":"):
                head.pseudo.setdefault(key, text)
            else:
                head.headers.append((key, text))
        if self.client is None:
            if ":method" in head.pseudo:
                self.client = direction
            elif ":status" in head.pseudo:
                self.client = direction.reverse()
            else:
                self.client = Direction.IN if self.channel.listening else Direction.OUT
        if block.kind == h2.PUSH_PROMISE:
            self._count_bytes(block, direction)
            self._promise(block, head, direction)
            return
        requests = direction is self.client
        stream = self.streams.get(stream_id)
        if requests and ":method" in head.pseudo and (stream is None or stream.request is None):
            stream = self._open(stream_id, first, head)
        elif stream is None:
            return  # a response to a stream we never saw open (a trace begun mid-connection)
        elif requests:
            stream.request_trailers = head
        elif ":status" in head.pseudo and stream.response is None:
            status = head.pseudo[":status"]
            if status.startswith("1") and status != "101":
                stream.interim += 1
            else:
                stream.response = head
        else:
            stream.trailers = head
        self._count_bytes(block, direction)
        if not requests:
            stream.end_time = last.end_time
        if self.damaged[direction]:
            stream.truncated = True
        if block.flags & h2.END_STREAM:
            self._end_side(stream, requests, last)

    def _open(self, stream_id: int, frame: MeasuredFrame, head: Head) -> H2Stream:
        if len(self.streams) >= MAX_STREAMS:
            self._finish(next(iter(self.streams)), complete=False)
        stream = self.streams.get(stream_id)
        if stream is None:
            stream = self.streams[stream_id] = H2Stream(stream_id)
        stream.start, stream.pid, stream.call_index = frame.time, frame.pid, frame.call_index
        stream.request = head
        if g.is_grpc(head.get("content-type")):
            stream.call = rpc.new_call(head.pseudo.get(":path"), self._learn)
        method, path = head.pseudo.get(":method", ""), head.pseudo.get(":path", "")
        label = "grpc" if stream.call is not None else "http2"
        self.out.append(Annotation(frame.call_index, f"{label} {method} {redact_url(path)}".rstrip()))
        return stream

    def _promise(self, block: _Block, head: Head, direction: Direction) -> None:
        """PUSH_PROMISE: the server opens a stream with a request of its own making; the promise's bytes
        are that stream's request."""
        promised, frame = block.promised, block.first
        if not promised or promised in self.streams:
            return
        if len(self.streams) >= MAX_STREAMS:
            self._finish(next(iter(self.streams)), complete=False)
        stream = self.streams[promised] = H2Stream(promised, pushed=True, request_ended=True)
        stream.request_bytes = block.size
        stream.start, stream.pid, stream.call_index = frame.time, frame.pid, frame.call_index
        stream.request = head
        stream.truncated = self.damaged[direction]
        method, path = head.pseudo.get(":method", ""), head.pseudo.get(":path", "")
        self.out.append(Annotation(frame.call_index, f"http2 push {method} {redact_url(path)}".rstrip()))

    def open_upgraded(self, head: Head, time: float | None, pid: int, call_index: int, size: int) -> None:
        """An HTTP/1.1 request upgraded to h2c is stream 1, its request already sent (RFC 7540 3.2): the
        HTTP/1.1 decoder hands it over with the roles it knows."""
        stream = self.streams[1] = H2Stream(1, start=time, pid=pid, call_index=call_index, request=head)
        stream.request_ended = True
        stream.request_bytes = size
        if g.is_grpc(head.get("content-type")):
            stream.call = rpc.new_call(head.pseudo.get(":path"), self._learn)

    def _end_side(self, stream: H2Stream, requests: bool, frame: MeasuredFrame) -> None:
        if requests:
            stream.request_ended = True
        else:
            stream.response_ended = True
            stream.end_time = frame.end_time
        if stream.done:
            self._finish(stream.stream_id)

    # -- records -------------------------------------------------------------------------------------

    def _side_of(self, direction: Direction) -> str:
        return "client" if direction is self.client else "server"

    @property
    def side(self) -> str:
        return "client" if self.client is Direction.OUT else "server"

    def _finish(self, stream_id: int, complete: bool = True) -> None:
        stream = self.streams.pop(stream_id, None)
        if stream is None:
            return
        if stream.request is None and not stream.pushed:
            return  # a stream seen only from its middle: nothing to say what it was
        side, server = self.side, self.channel.server
        self.out.append(exchange(stream, side, server, complete))
        if stream.call is not None:
            facts = call_facts(stream, side, self.channel.channel_id, server)
            self.out.append(rpc.rpc_record(facts, stream.call, self._schema()))

    def _schema(self) -> pb.Schema | None:
        if self.schema is None:
            self.schema = pb.Schema()
            for data in getattr(self.options, "proto", ()):
                self.schema.add_file_set(data)
        return self.schema if self.schema else None

    def _learn(self, reply: bytes) -> None:
        self._schema()
        assert self.schema is not None
        rpc.learn_reflection_reply(self.schema, reply)

    def _problem(self, severity: str, message: str, frame: MeasuredFrame) -> None:
        self.problems += 1
        if self.problems <= 20:
            self.out.append(Problem(severity, message, frame.call_index))

    def close(self, time: float | None) -> Sequence[Output]:
        if self.closed:
            return ()
        self.closed = True
        for stream_id in list(self.streams):
            self._finish(stream_id, complete=False)
        return self.take()
