"""`AmqpDecoder`: detection, roles, the frames of both directions, dispatch by method, close."""

from __future__ import annotations

from collections.abc import Sequence

from decoders.amqp.acknowledgements import AcknowledgementsMixin
from decoders.amqp.connection import ConnectionMixin
from decoders.amqp.content import ContentMixin
from decoders.amqp.operations import OperationsMixin
from decoders.amqp.state import (
    CLIENT_ONLY,
    MAX_FRAME,
    MAX_KEEP,
    MAX_RESYNC_FRAME,
    OPERATIONS,
    REPLIES,
    SERVER_ONLY,
    ChannelState,
)
from decoders.api import ChannelInfo, Chunk, Decoder, Direction
from decoders.measured_frames import MeasuredFrame as Frame
from decoders.measured_frames import MeasuredReader
from decoders.messaging import STATUS_OK, STATUS_SENT
from decoders.records import Annotation, BrokerSession, Output
from protocols import amqp as p


class AmqpDecoder(ConnectionMixin, OperationsMixin, ContentMixin, AcknowledgementsMixin, Decoder):
    name = "amqp"
    ports = frozenset({5672})

    def __init__(self, channel: ChannelInfo) -> None:
        super().__init__(channel)
        self.readers = {d: self._reader() for d in Direction}
        self.client: Direction | None = None
        self.channels: dict[int, ChannelState] = {}
        self.session = BrokerSession(
            session_id=channel.channel_id, protocol="amqp", process=channel.pid, server=channel.server
        )
        self.known_process = False
        self.mechanism: str | None = None
        self.closing: tuple[Direction, float | None] | None = None  # who sent connection.close, when
        self.done = False

    @staticmethod
    def _reader() -> MeasuredReader:
        return MeasuredReader(
            p.measure_frame, _plausible, max_keep=MAX_KEEP, max_frame=MAX_FRAME, check=_ends_well
        )

    @classmethod
    def score(cls, data: bytes, direction: Direction, channel: ChannelInfo) -> int:
        if len(data) >= 4 and data.startswith(b"AMQP"):
            if len(data) >= p.PROTOCOL_HEADER_SIZE:
                return 100 if data[: p.PROTOCOL_HEADER_SIZE] == p.PROTOCOL_HEADER else 0  # 0-9-1 only
            return 50 if p.PROTOCOL_HEADER.startswith(data) else 0
        if p.looks_like_frame(data, 0, MAX_RESYNC_FRAME) and data[0] == p.FRAME_METHOD:
            method = p.parse_method(data[7:])
            if method is not None and method.name == "connection.start":
                return 100
            return 60  # a method frame, ids known and end octet in place: the trace began mid-connection
        if p.looks_like_frame(data, 0) and any(port in cls.ports for port in channel.ports):
            return 30
        return 0

    # -- feeding ---------------------------------------------------------------------------------------
    def feed(self, chunk: Chunk) -> Sequence[Output]:
        if self.done:
            return ()
        if not self.known_process:
            self.session.process, self.known_process = chunk.pid, True
            self.session.start = chunk.time
        out: list[Output] = []
        frames = self.readers[chunk.direction].feed(
            chunk.data, chunk.missing, chunk.time, chunk.pid, chunk.call_index
        )
        for frame in frames:
            self._frame(frame, chunk.direction, out)
        return out

    def _frame(self, frame: Frame, direction: Direction, out: list[Output]) -> None:
        data = frame.data
        if data[:4] == b"AMQP":
            self._count("protocol-header")
            if self.client is None and self.session.server_version is None:
                self.client = direction
            return
        kind, number, payload = data[0], int.from_bytes(data[1:3], "big"), data[7 : 7 + frame.size - 8]
        if kind == p.FRAME_HEARTBEAT:
            self._count("heartbeat")
        elif kind == p.FRAME_METHOD:
            method = p.parse_method(payload)
            if method is not None:
                self._method(method, number, direction, frame, out)
        elif kind == p.FRAME_HEADER:
            header = p.parse_content_header(payload)
            if header is not None:
                self._content_header(header, number, direction, frame, out)
        elif kind == p.FRAME_BODY:
            self._body(frame.size - p.FRAME_OVERHEAD, number, direction, frame, out)

    def _count(self, name: str) -> None:
        commands = self.session.commands
        commands[name] = commands.get(name, 0) + 1

    def _is_client(self, direction: Direction, name: str) -> bool:
        if self.client is None:
            if name in CLIENT_ONLY:
                self.client = direction
            elif name in SERVER_ONLY:
                self.client = direction.reverse()
            else:
                return direction is (Direction.IN if self.channel.listening else Direction.OUT)
        return direction is self.client

    def _state(self, number: int) -> ChannelState:
        state = self.channels.get(number)
        if state is None:
            if len(self.channels) > 4096:  # channel-max is 2047 by default: garbage, not channels
                self.channels.pop(next(iter(self.channels)))
            state = self.channels[number] = ChannelState(number)
        return state

    # -- methods ---------------------------------------------------------------------------------------
    def _method(
        self, method: p.Method, number: int, direction: Direction, frame: Frame, out: list[Output]
    ) -> None:
        name = method.name
        self._count(name if (method.class_id, method.method_id) in p.METHODS else "unknown")
        from_client = self._is_client(direction, name)
        args = method.arguments
        truncated = frame.cut or not method.complete
        out.append(Annotation(frame.call_index, _annotation(method)))
        if method.class_id == p.CLASS_CONNECTION:
            self._connection(method, direction, frame, out)
            return
        state = self._state(number)
        if name in REPLIES:  # basic.get-ok too: it answers a basic.get and carries a message
            self._reply(method, state, direction, frame, truncated, out)
        elif name in p.CONTENT_METHODS:
            self._content_method(method, state, direction, frame, truncated, out)
        elif name in OPERATIONS and from_client:
            self._request(method, state, frame, truncated, out)
        elif name in ("basic.ack", "basic.nack", "basic.reject"):
            if from_client:
                self._client_settles(name, args, state, frame.time, out)
            else:
                self._confirm(name, args, state, frame.time, out)
        elif name == "channel.close":
            self._channel_close(method, state, from_client, frame, out)
        elif name == "channel.close-ok":
            self._channel_closed(state, frame.time, out)
        elif name == "basic.cancel" and not from_client:  # the broker cancelled a consumer (queue deleted)
            out.append(
                self._operation(method, state, frame, truncated, status=STATUS_OK, extra={"By": "server"})
            )
        elif name == "basic.recover-async":
            out.append(self._operation(method, state, frame, truncated, status=STATUS_SENT))
        elif name == "channel.flow-ok" and from_client:
            pass  # the client's answer to a broker's flow request

    def reading_since(self) -> int | None:
        """Where an unfinished frame began: a login split across writes is still hidden whole."""
        calls = [c for c in (r.reading_since() for r in self.readers.values()) if c is not None]
        return min(calls) if calls else None

    def close(self, time: float | None) -> Sequence[Output]:
        if self.done:
            return ()
        self.done = True
        out: list[Output] = []
        for state in list(self.channels.values()):
            self._flush_channel(state, out)
        self.channels.clear()
        if self.session.end is None and self.closing is not None:
            self.session.end = time
        resyncs = sum(reader.resyncs for reader in self.readers.values())
        if resyncs:
            self.session.extra["Resyncs"] = resyncs
        if self.session.commands or self.session.server_version:
            out.append(self.session)
        return out


def _plausible(buf: bytearray, pos: int) -> bool | None:
    """Where a stream out of step takes up again: a whole method or content header frame (its end
    octet in place, its method known), a heartbeat, or the protocol header."""
    kind = buf[pos]
    if kind not in (p.FRAME_METHOD, p.FRAME_HEADER, p.FRAME_HEARTBEAT, 0x41):
        return False
    return p.looks_like_frame(buf, pos, MAX_RESYNC_FRAME)


def _ends_well(buf: bytearray, pos: int, size: int) -> bool:
    if buf[pos] == 0x41:
        return bytes(buf[pos : pos + 4]) == b"AMQP"
    return buf[pos + size - 1] == p.FRAME_END


def _annotation(method: p.Method) -> str:
    args = method.arguments
    parts = [f"amqp {method.name}"]
    for key in (
        "exchange",
        "queue",
        "routing-key",
        "consumer-tag",
        "delivery-tag",
        "reply-code",
        "reply-text",
        "virtual-host",
    ):
        value = args.get(key)
        if value not in (None, ""):
            parts.append(f"{key}={value}")
    return " ".join(parts)[:200]
