"""gRPC calls out of HTTP/2 streams: the length-prefixed messages of each side, the call's record, and the
schema a server's reflection service sends.

A stream whose request says `content-type: application/grpc...` is a call. Its DATA bytes, side by side,
go through a `MessageReader`: messages counted and measured, the first few kept (bounded) so that the
record can show their fields (`protocols.protobuf`: numbers and wire types without a schema, names and
declared types with one). Bytes the tracer lost inside a message cost that message's content only; lost
where a length prefix was, the side is out of step and its counts are marked truncated.

The schema comes from `--proto` files (`DecoderOptions.proto`, descriptor sets the command line read)
and from reflection replies seen on the same connection (`grpc.reflection.v1alpha` and `v1`
ServerReflectionInfo: each `file_descriptor_response` holds FileDescriptorProtos), learned as each reply
message completes, so the calls after it are decoded with names.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from decoders.records import COUNT, DURATION, FLAG, TEXT, TIME, ChildType, CimChild, CimObject, RecordType
from decoders.redact import is_secret_column
from protocols import grpc as g
from protocols import protobuf as pb

MAX_SHOWN_MESSAGES = 4  # messages of each side whose fields the record shows
MAX_KEPT_BYTES = 16 * 1024  # bytes of a shown message kept for decoding
MAX_REFLECTION_BYTES = 1 << 20  # a reflection reply is kept whole up to this, to learn its descriptors
MAX_FIELDS = 32  # fields shown per message
REFLECTION_PATHS = frozenset(
    {
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    }
)

RPC_CALL = RecordType(
    "Dockit_RpcCall",
    Protocol=TEXT,
    Service=TEXT,
    Method=TEXT,
    Status=TEXT,
    Code=COUNT,
    CodeName=TEXT,
    Error=TEXT,
    Streaming=TEXT,
    StreamingFrom=TEXT,
    Side=TEXT,
    Process=COUNT,
    Session=TEXT,
    Server=TEXT,
    Authority=TEXT,
    Stream=COUNT,
    Start=TIME,
    Duration=DURATION,
    Deadline=DURATION,
    RequestMessages=COUNT,
    ResponseMessages=COUNT,
    RequestBytes=COUNT,
    ResponseBytes=COUNT,
    Encoding=TEXT,
    ContentType=TEXT,
    HttpStatus=COUNT,
    Reset=TEXT,
    Truncated=FLAG,
)
MESSAGE = ChildType(
    "Message", Direction=TEXT, Index=COUNT, Size=COUNT, Type=TEXT, Compressed=FLAG, Undecoded=TEXT
)
FIELD = ChildType(
    "Field",
    Direction=TEXT,
    Message=COUNT,
    Path=TEXT,
    Number=COUNT,
    Name=TEXT,
    Type=TEXT,
    Value=TEXT,
    Size=COUNT,
)


@dataclass
class KeptMessage:
    size: int
    compressed: bool
    data: bytes
    whole: bool  # every byte of it was seen and kept


class MessageReader:
    """The length-prefixed messages of one side of a call, fed DATA bytes in order."""

    def __init__(
        self, keep_whole: int = MAX_KEPT_BYTES, on_message: Callable[[KeptMessage], None] | None = None
    ):
        self.count = 0
        self.bytes = 0
        self.kept: list[KeptMessage] = []
        self.keep_whole = keep_whole
        self.on_message = on_message
        self.prefix = bytearray()
        self.remaining = 0  # body bytes still due of the current message
        self.current: bytearray | None = None  # what is kept of it
        self.current_size = 0
        self.current_compressed = False
        self.current_whole = True
        self.synced = True
        self.truncated = False

    def feed(self, data: bytes) -> None:
        pos = 0
        while pos < len(data) and self.synced:
            if self.remaining:
                take = min(self.remaining, len(data) - pos)
                if self.current is not None:
                    room = self._room()
                    if room > 0:
                        self.current += data[pos : pos + min(take, room)]
                    if take > room:
                        self.current_whole = False
                self.remaining -= take
                pos += take
                if not self.remaining:
                    self._finish()
                continue
            need = g.MESSAGE_PREFIX - len(self.prefix)
            self.prefix += data[pos : pos + need]
            pos += min(need, len(data) - pos)
            if len(self.prefix) == g.MESSAGE_PREFIX:
                compressed, length = g.message_prefix(self.prefix) or (False, 0)
                self.prefix.clear()
                self._start(compressed, length)

    def _room(self) -> int:
        assert self.current is not None
        return self.keep_whole - len(self.current)

    def _start(self, compressed: bool, length: int) -> None:
        self.count += 1
        self.bytes += length
        self.current_size, self.current_compressed, self.current_whole = length, compressed, True
        keep = self.on_message is not None or len(self.kept) < MAX_SHOWN_MESSAGES
        self.current = bytearray() if keep else None
        self.remaining = length
        if not length:
            self._finish()

    def _finish(self) -> None:
        if self.current is None:
            return
        message = KeptMessage(
            self.current_size, self.current_compressed, bytes(self.current), self.current_whole
        )
        self.current = None
        if len(self.kept) < MAX_SHOWN_MESSAGES:
            self.kept.append(message)
        if self.on_message is not None:
            self.on_message(message)

    def lose(self, count: int) -> None:
        """`count` bytes of this side were not seen (the tracer cut them, or a frame too long to keep)."""
        if not count or not self.synced:
            return
        self.truncated = True
        if self.remaining >= count:
            self.remaining -= count
            self.current_whole = False
            if not self.remaining:
                self._finish()
            return
        self.synced = False  # a length prefix was lost: where the next message starts is unknown
        self.current = None


@dataclass
class CallState:
    """What a gRPC stream carries beyond HTTP: the messages of each side."""

    request: MessageReader = field(default_factory=MessageReader)
    response: MessageReader = field(default_factory=MessageReader)


def new_call(path: str | None, learn: Callable[[bytes], None]) -> CallState:
    """The state of a new call; a reflection call hands each reply message to `learn`."""
    if path in REFLECTION_PATHS:

        def reply(message: KeptMessage) -> None:
            if message.whole and not message.compressed:
                learn(message.data)

        return CallState(response=MessageReader(MAX_REFLECTION_BYTES, reply))
    return CallState()


def learn_reflection_reply(schema: pb.Schema, data: bytes) -> int:
    """The FileDescriptorProtos of a ServerReflectionResponse's `file_descriptor_response` (field 4,
    whose field 1 repeats them) added to `schema`; returns how many."""
    count = 0
    for item in pb.fields(data) or ():
        if item.number == 4 and isinstance(item.value, bytes):
            for proto in pb.fields(item.value) or ():
                if proto.number == 1 and isinstance(proto.value, bytes) and schema.add_file(proto.value):
                    count += 1
    return count


def _inflate(data: bytes, encoding: str | None) -> bytes | None:
    if encoding not in ("gzip", "deflate"):
        return None
    try:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
        return inflater.decompress(data, MAX_KEPT_BYTES)
    except zlib.error:
        return None


def message_children(
    direction: str,
    reader: MessageReader,
    schema: pb.Schema | None,
    type_name: str | None,
    encoding: str | None,
) -> list[CimChild]:
    children: list[CimChild] = []
    for index, message in enumerate(reader.kept[:MAX_SHOWN_MESSAGES]):
        data: bytes | None = message.data
        undecoded = None
        if message.compressed:
            data = _inflate(message.data, encoding) if message.whole else None
            if data is None:
                undecoded = f"compressed ({encoding or 'unknown encoding'})"
        elif not message.whole:
            undecoded = "cut"
        shown_type = type_name if schema is not None and type_name in schema.messages else None
        decoded: list[pb.DecodedField] = []
        if data is not None and undecoded is None:
            decoded, ok = pb.decode(data, schema, shown_type, MAX_FIELDS, is_secret_column)
            if not ok:
                undecoded = "not protobuf"
        children.append(
            MESSAGE(
                Direction=direction,
                Index=index,
                Size=message.size,
                Type=shown_type,
                Compressed=message.compressed,
                Undecoded=undecoded,
            )
        )
        children += [
            FIELD(
                Direction=direction,
                Message=index,
                Path=item.path,
                Number=item.number,
                Name=item.name,
                Type=item.type,
                Value=item.value,
                Size=item.size,
            )
            for item in decoded
        ]
    return children


@dataclass
class CallFacts:
    """What the HTTP/2 stream knew about the call, handed over to build its record."""

    path: str | None
    side: str
    process: int
    session: str
    server: str | None
    authority: str | None
    stream: int
    start: float | None
    duration: float | None
    request_headers: dict[str, str]
    response_headers: dict[str, str]
    trailers: dict[str, str]
    http_status: int | None
    reset: str | None
    ended: bool  # the server ended its side (trailers, or a reset)
    truncated: bool


def rpc_record(facts: CallFacts, call: CallState, schema: pb.Schema | None) -> CimObject:
    service, method = g.split_path(facts.path)
    final = facts.trailers or facts.response_headers  # a trailers-only reply has them in its headers
    code = g.status_code(final.get("grpc-status"))
    if code is None:
        status = "error" if facts.reset or (facts.http_status and facts.http_status != 200) else "unknown"
    else:
        status = "ok" if code == 0 else "error"
    known = schema.methods.get(facts.path or "") if schema else None
    if known is not None:
        streaming, source = g.streaming_kind(known.client_streaming, known.server_streaming), "schema"
    else:
        streaming = g.streaming_kind(call.request.count > 1, call.response.count > 1)
        source = "messages"
    encoding = facts.request_headers.get("grpc-encoding")
    response_encoding = final.get("grpc-encoding") or facts.response_headers.get("grpc-encoding")
    children = message_children(
        "request", call.request, schema, known.input_type if known else None, encoding
    ) + message_children(
        "response", call.response, schema, known.output_type if known else None, response_encoding
    )
    return RPC_CALL(
        children,
        Protocol="grpc",
        Service=service,
        Method=method,
        Status=status,
        Code=code,
        CodeName=g.status_name(code),
        Error=g.status_message(final.get("grpc-message")) if code else None,
        Streaming=streaming,
        StreamingFrom=source,
        Side=facts.side,
        Process=facts.process,
        Session=facts.session,
        Server=facts.server,
        Authority=facts.authority,
        Stream=facts.stream,
        Start=facts.start,
        Duration=facts.duration,
        Deadline=g.timeout_seconds(facts.request_headers.get("grpc-timeout")),
        RequestMessages=call.request.count,
        ResponseMessages=call.response.count,
        RequestBytes=call.request.bytes,
        ResponseBytes=call.response.bytes,
        Encoding=encoding,
        ContentType=facts.request_headers.get("content-type"),
        HttpStatus=facts.http_status,
        Reset=facts.reset,
        Truncated=facts.truncated or call.request.truncated or call.response.truncated,
    )
