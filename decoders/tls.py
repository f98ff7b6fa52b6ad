"""TLS connections: who was contacted (SNI), which version, how many bytes, and nothing else.

Each direction is read as TLS records only until its first handshake message (the ClientHello one
way, the ServerHello the other way) has been parsed; after that, and after any record that is not a
handshake, bytes are only counted. So encrypted data is never "decoded" into anything.

A hello cut by the tracer is parsed as far as it goes (`protocols.tls`), and a hello split over
several records or chunks is reassembled. The version reported is the one the server chose when its
ServerHello was seen (supported_versions for TLS 1.3), else the highest one the client offered.
One `TlsSession` is emitted, at close, when its byte counts are final.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from decoders.api import ChannelInfo, Chunk, Decoder, Direction
from decoders.records import Output, TlsSession
from protocols.tls import (
    CLIENT_HELLO,
    HANDSHAKE,
    HANDSHAKE_HEADER,
    RECORD_HEADER,
    SERVER_HELLO,
    ClientHello,
    ServerHello,
    looks_like_client_hello,
    parse_client_hello,
    parse_record_header,
    parse_server_hello,
    version_name,
)

MAX_HELLO = 128 * 1024  # a hello larger than this is not one (post-quantum key shares stay far below)


@dataclass
class _Direction:
    """The records of one direction, read until its first handshake message is known."""

    records: bytearray = field(default_factory=bytearray)  # bytes of records not yet complete
    handshake: bytearray = field(default_factory=bytearray)  # handshake payload reassembled so far
    reading: bool = True
    bytes: int = 0

    def feed(self, data: bytes, missing: int) -> tuple[int, bytes, int | None] | None:
        """Add bytes; return (handshake type, body, full length) once the first message is known."""
        if not self.reading:
            return None
        self.records += data
        pos = 0
        result = None
        while result is None:
            header = parse_record_header(self.records, pos)
            if header is None:
                if len(self.records) - pos >= RECORD_HEADER:
                    self.reading = False  # not TLS (any more): count only
                break
            if header.content_type != HANDSHAKE:
                self.reading = False
                break
            whole = len(self.records) - pos - RECORD_HEADER >= header.length
            if not whole and not missing:
                break  # wait for the rest of the record
            payload = self.records[pos + RECORD_HEADER : pos + RECORD_HEADER + header.length]
            self.handshake += payload
            pos += RECORD_HEADER + len(payload)
            result = self._message(cut=not whole)
        del self.records[:pos]
        if missing and self.reading and result is None:
            result = self._message(cut=True)  # the rest of the hello is lost
        if result is not None or missing or len(self.handshake) > MAX_HELLO:
            self.reading = False
            self.records.clear()
        return result

    def _message(self, cut: bool) -> tuple[int, bytes, int | None] | None:
        if len(self.handshake) < HANDSHAKE_HEADER:
            return (self.handshake[0], b"", None) if cut and self.handshake else None
        kind = self.handshake[0]
        length = int.from_bytes(self.handshake[1:4], "big")
        body = bytes(self.handshake[HANDSHAKE_HEADER : HANDSHAKE_HEADER + length])
        if len(body) < length and not cut:
            return None
        return kind, body, length


class TlsDecoder(Decoder):
    """One `TlsSession` per TLS connection, from the hellos and the byte counts."""

    name = "tls"
    ports = frozenset({443, 8443, 993, 995, 465, 636})

    def __init__(self, channel: ChannelInfo) -> None:
        super().__init__(channel)
        self.directions = {Direction.OUT: _Direction(), Direction.IN: _Direction()}
        self.client_hello: ClientHello | None = None
        self.server_hello: ServerHello | None = None
        self.start: float | None = None
        self.process: int | None = None
        self.emitted = False

    @classmethod
    def score(cls, data: bytes, direction: Direction, channel: ChannelInfo) -> int:
        if looks_like_client_hello(data):
            return 100
        header = parse_record_header(data)
        if header is None or header.content_type != HANDSHAKE:
            return 0
        if len(data) > RECORD_HEADER and data[RECORD_HEADER] == SERVER_HELLO:
            return 60  # the trace began after the ClientHello
        return 40 if len(data) == RECORD_HEADER else 0

    def feed(self, chunk: Chunk) -> Sequence[Output]:
        if self.emitted:
            return ()
        if self.start is None:
            self.start, self.process = chunk.time, chunk.pid
        side = self.directions[chunk.direction]
        side.bytes += chunk.size
        message = side.feed(chunk.data, chunk.missing)
        if message is not None:
            kind, body, length = message
            if kind == CLIENT_HELLO and self.client_hello is None:
                self.client_hello = parse_client_hello(body, length)
            elif kind == SERVER_HELLO and self.server_hello is None:
                self.server_hello = parse_server_hello(body, length)
        return ()

    def close(self, time: float | None) -> Sequence[Output]:
        if self.emitted or self.start is None:
            return ()
        self.emitted = True
        return (self.session(),)

    def session(self) -> TlsSession:
        version = None
        if self.server_hello is not None:
            version = self.server_hello.version
        if version is None and self.client_hello is not None:
            version = self.client_hello.max_version
        return TlsSession(
            process=self.process or 0,
            server=self.channel.server,
            server_name=self.client_hello.server_name if self.client_hello else None,
            version=version_name(version),
            start=self.start,
            bytes_out=self.directions[Direction.OUT].bytes,
            bytes_in=self.directions[Direction.IN].bytes,
        )
