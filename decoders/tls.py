"""TLS connections: who was contacted (SNI), which version, how many bytes, and nothing else.

Each direction is walked record by record (header: type, version, length) for its first few records
only, and the payload of a record is never looked at, except the plaintext handshake bytes that carry
the first handshake message: the ClientHello one way, the ServerHello the other way. So encrypted
data is never "decoded" into anything; after `MAX_RECORDS` records, bytes are only counted.

Bytes the tracer did not show (`strace -s`) are skipped exactly while they fall inside a record (its
length says where it ends); a hello cut by them is parsed as far as it goes (`protocols.tls`).

The version is the one the server chose: supported_versions in its ServerHello (TLS 1.3 says so only
there), else its legacy version. When the ServerHello was cut before its extensions, the record layout
still tells: a TLS 1.3 ServerHello travels alone in its record and is followed by encrypted records
(type 23, perhaps after a compatibility change_cipher_spec), while TLS 1.2 and older go on with
handshake records in clear (Certificate...) or, when resumed, change_cipher_spec then handshake. With
no ServerHello, the version is the highest one a whole ClientHello offered. The cipher suite and the
protocol the server chose (ALPN) come from the ServerHello; before TLS 1.3 the server's Certificate
follows in clear, and its subject is read. One `TlsSession` is emitted, at close, when its byte counts
are final.
"""

from __future__ import annotations

from collections.abc import Sequence

from decoders.api import ChannelInfo, Chunk, Decoder, Direction
from decoders.records import Output, TlsSession
from protocols.tls import (
    CERTIFICATE,
    CLIENT_HELLO,
    HANDSHAKE,
    HANDSHAKE_HEADER,
    RECORD_HEADER,
    SERVER_HELLO,
    ClientHello,
    ServerHello,
    cipher_name,
    first_certificate,
    looks_like_client_hello,
    parse_client_hello,
    parse_record_header,
    parse_server_hello,
    version_name,
)
from protocols.x509 import subject

CHANGE_CIPHER_SPEC = 20
APPLICATION_DATA = 23
MAX_RECORDS = 6  # enough to see what follows the hellos
MAX_HELLO = 128 * 1024  # handshake bytes read per direction (hellos, a certificate chain)
MAX_MESSAGES = 8
TLS12, TLS13 = 0x0303, 0x0304


class _Records:
    """The first records of one direction: their types and lengths, and the handshake messages sent in
    clear before the first record of another type (ChangeCipherSpec, or encrypted data)."""

    def __init__(self) -> None:
        self.header = bytearray()  # a record header still incomplete
        self.left = 0  # payload bytes of the current record still to come
        self.types: list[int] = []
        self.lengths: list[int] = []
        self.handshake = bytearray()  # handshake bytes not yet read as whole messages
        self.messages: list[tuple[int, bytes, int, bool]] = []  # (type, body, full body length, cut)
        self.collecting = True  # every record so far was a handshake record in clear
        self.synced = True
        self.bytes = 0

    @property
    def walking(self) -> bool:
        return self.synced and len(self.types) <= MAX_RECORDS

    @property
    def message(self) -> tuple[int, bytes, int] | None:
        """The first handshake message; (-1, b"", 0) when there is none to read (the direction began
        with another record, or its first message was too large), None while it may still come."""
        if self.messages:
            kind, body, length, _cut = self.messages[0]
            return kind, body, length
        return None if self.collecting else (-1, b"", 0)

    @property
    def cut(self) -> bool:
        return bool(self.messages) and self.messages[0][3]

    def first(self, kind: int) -> tuple[bytes, int] | None:
        """The body and full length of the first message of that type."""
        return next(((body, length) for k, body, length, _cut in self.messages if k == kind), None)

    def feed(self, data: bytes, missing: int) -> None:
        pos = 0
        while pos < len(data) and self.walking:
            if self.left:
                take = min(self.left, len(data) - pos)
                if self.types[-1] == HANDSHAKE and self.collecting:
                    self.handshake += data[pos : pos + take]
                    self._messages(cut=False)
                pos += take
                self.left -= take
                continue
            need = RECORD_HEADER - len(self.header)
            self.header += data[pos : pos + need]
            pos += need
            if len(self.header) < RECORD_HEADER:
                break
            header = parse_record_header(self.header)
            self.header.clear()
            if header is None:
                self.synced = False
                break
            self.types.append(header.content_type)
            self.lengths.append(header.length)
            self.left = header.length
            if header.content_type != HANDSHAKE:
                self.collecting = False  # what follows is encrypted, or no handshake is readable
        if missing:
            if self.collecting and self.handshake:
                self._messages(cut=True)
            self.collecting = False  # the handshake's bytes have a hole: no message after it is whole
            if self.left >= missing and not self.header:
                self.left -= missing  # lost inside a record: the framing holds
            else:
                self.synced = False
        if self.collecting and (len(self.handshake) > MAX_HELLO or len(self.messages) >= MAX_MESSAGES):
            self.collecting = False

    def _messages(self, cut: bool) -> None:
        """Whole messages out of the handshake bytes; with `cut`, the unfinished one as far as it goes."""
        buffer = self.handshake
        while len(buffer) >= HANDSHAKE_HEADER:
            length = int.from_bytes(buffer[1:4], "big")
            if len(buffer) - HANDSHAKE_HEADER < length:
                break
            self.messages.append(
                (buffer[0], bytes(buffer[HANDSHAKE_HEADER : HANDSHAKE_HEADER + length]), length, False)
            )
            del buffer[: HANDSHAKE_HEADER + length]
        if cut and buffer:
            length = int.from_bytes(buffer[1:4], "big") if len(buffer) >= HANDSHAKE_HEADER else 0
            self.messages.append((buffer[0], bytes(buffer[HANDSHAKE_HEADER:]), length, True))
            buffer.clear()


class TlsDecoder(Decoder):
    """One `TlsSession` per TLS connection, from the hellos, the record layout and the byte counts."""

    name = "tls"
    ports = frozenset({443, 8443, 993, 995, 465, 636})

    def __init__(self, channel: ChannelInfo) -> None:
        super().__init__(channel)
        self.directions = {Direction.OUT: _Records(), Direction.IN: _Records()}
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
        records = self.directions[chunk.direction]
        records.bytes += chunk.size
        if records.walking:
            records.feed(chunk.data, chunk.missing)
        return ()

    def close(self, time: float | None) -> Sequence[Output]:
        if self.emitted or self.start is None:
            return ()
        self.emitted = True
        return (self.session(),)

    # -- what the hellos say ------------------------------------------------------------------

    def hellos(self) -> tuple[ClientHello | None, ServerHello | None, _Records | None]:
        client = server = None
        server_records = None
        for records in self.directions.values():
            if records.message is None:
                continue
            kind, body, length = records.message
            if kind == CLIENT_HELLO and client is None:
                client = parse_client_hello(body, length)
            elif kind == SERVER_HELLO and server is None:
                server, server_records = parse_server_hello(body, length), records
        return client, server, server_records

    def version(
        self, client: ClientHello | None, server: ServerHello | None, records: _Records | None
    ) -> int | None:
        if server is not None and server.legacy_version is not None:
            if server.selected_version is not None or server.complete or server.legacy_version != TLS12:
                return server.version
            if records is not None and (layout := self._layout_version(server, records)):
                return layout
            if client is not None and client.complete and client.max_version and client.max_version <= TLS12:
                return TLS12  # the client offered nothing newer
            return None
        if client is not None and client.complete:
            return client.max_version
        return None

    @staticmethod
    def _layout_version(server: ServerHello, records: _Records) -> int | None:
        """TLS 1.2 or 1.3 from the records around a ServerHello whose extensions were not seen."""
        assert records.message is not None
        hello_size = HANDSHAKE_HEADER + records.message[2]
        if records.lengths and records.lengths[0] > hello_size:
            return TLS12  # more handshake messages in clear in the same record
        after = records.types[1:3]
        if after[:1] == [HANDSHAKE] or after == [CHANGE_CIPHER_SPEC, HANDSHAKE]:
            return TLS12
        if after[:1] == [APPLICATION_DATA] or after == [CHANGE_CIPHER_SPEC, APPLICATION_DATA]:
            return TLS13
        return None

    def certificate_subject(self) -> str | None:
        """The subject of the server's certificate when it crossed in clear (TLS 1.2 and older): the one
        sent by the side that sent the ServerHello (a client asked for its own sends an empty one)."""
        for records in self.directions.values():
            if records.first(SERVER_HELLO) is None:
                continue
            found = records.first(CERTIFICATE)
            if found is not None:
                return subject(first_certificate(found[0]))
        return None

    def facts(self) -> dict[str, str | None]:
        """What the handshake showed, for the objects of the protocol inside (a database session)."""
        client, server, records = self.hellos()
        return {
            "TlsVersion": version_name(self.version(client, server, records)),
            "TlsCipher": cipher_name(server.cipher_suite) if server else None,
            "ServerName": client.server_name if client else None,
            "Alpn": server.alpn if server and server.alpn else None,
        }

    def session(self) -> TlsSession:
        client, server, records = self.hellos()
        return TlsSession(
            process=self.process or 0,
            server=self.channel.server,
            server_name=client.server_name if client else None,
            version=version_name(self.version(client, server, records)),
            start=self.start,
            bytes_out=self.directions[Direction.OUT].bytes,
            bytes_in=self.directions[Direction.IN].bytes,
            alpn=",".join(client.alpn) if client and client.alpn else None,
            cipher=cipher_name(server.cipher_suite) if server else None,
            alpn_selected=server.alpn if server else None,
            certificate_subject=self.certificate_subject(),
        )
