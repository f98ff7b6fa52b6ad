"""What decoders return: CIM records for the summary, and annotations for the calls file.

The summary writers know only `CimObject` (a class name, attributes, children), so a third-party
decoder can add its own classes without touching them. The records below are the shared vocabulary of
the built-in decoders: every SQL decoder (MySQL, Oracle, PostgreSQL...) returns the same `SqlQuery`,
and every message-broker decoder (AMQP, MQTT, NATS) the same `BrokerMessage`, `BrokerOperation` and
`BrokerSession`, which is what makes the summary contract one contract.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from decoders.fields import (
    BYTES,
    COUNT,
    DECIMAL,
    DURATION,
    FLAG,
    SECRET,
    TEXT,
    TIME,
    ChildType,
    Duration,
    FieldType,
    RecordType,
    Time,
    printable_bytes,
)
from decoders.redact import redact_header, redact_row

__all__ = [
    "MESSAGE_DELIVER",
    "MESSAGE_PUBLISH",
    "BYTES",
    "COUNT",
    "DECIMAL",
    "DURATION",
    "FLAG",
    "SECRET",
    "SEVERITIES",
    "TEXT",
    "TIME",
    "Annotation",
    "AttrValue",
    "BrokerMessage",
    "BrokerOperation",
    "BrokerSession",
    "ChildType",
    "CimChild",
    "CimObject",
    "DatabaseSession",
    "Duration",
    "FieldType",
    "HttpExchange",
    "Output",
    "Problem",
    "Record",
    "RecordType",
    "Secret",
    "SqlQuery",
    "Time",
    "StartTls",
    "TlsSession",
    "as_cim",
    "named_values",
    "printable_bytes",
]

AttrValue = str | int | float | bool | None


@dataclass(frozen=True)
class CimChild:
    """A child element: `<Table Name="users"/>`, `<Text>SELECT 1</Text>`."""

    tag: str
    attrs: tuple[tuple[str, AttrValue], ...] = ()
    text: str | None = None


@dataclass(frozen=True)
class CimObject:
    """One object of the summary. Attributes whose value is None are left out."""

    cim_class: str
    attrs: tuple[tuple[str, AttrValue], ...]
    children: tuple[CimChild, ...] = ()

    @staticmethod
    def make(cim_class: str, attrs: dict[str, AttrValue], children: Iterable[CimChild] = ()) -> CimObject:
        return CimObject(cim_class, tuple(attrs.items()), tuple(children))

    def attr(self, name: str) -> AttrValue:
        return dict(self.attrs).get(name)


@dataclass(frozen=True)
class Annotation:
    """A short line shown in the calls file beside the call that carried it (`call_index`)."""

    call_index: int
    text: str


@dataclass(frozen=True)
class Secret:
    """The bytes the call `call_index` moved hold a credential (a login's auth data, a password): the
    calls file shows that call without its buffer, and so every later call of the same channel and
    direction up to the one whose chunk made the decoder return this (a password split across writes).
    (The tracer's own .log keeps every byte.) A decoder that returns a Secret only when a message is
    complete says where that message began with `Decoder.reading_since`, so the calls file waits."""

    call_index: int


SEVERITIES = ("note", "warning", "error")


@dataclass(frozen=True)
class Problem:
    """Something wrong in the conversation itself, as Wireshark's expert info says it: a malformed
    message, a reply to no request, a length past the protocol's limit. It becomes a
    `Dockit_DecoderProblem` object in the summary, tied to its channel, with the decoder's name.
    `severity` is one of SEVERITIES ("note", "warning", "error"); `call_index` the call that carried
    the bytes, when one did."""

    severity: str
    message: str
    call_index: int | None = None


class Record:
    """A decoder's result that becomes one summary object."""

    def to_cim(self) -> CimObject:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True)
class StartTls:
    """The connection turns to TLS after the call `call_index` (MySQL's SSL request, PostgreSQL's `S`,
    a STARTTLS): its later bytes on the socket are TLS records, read by the TLS decoder, and its
    plaintext, when the trace shows it (ltrace's `SSL_write`/`SSL_read`), is fed to the same decoder,
    which goes on with the conversation (a login, then queries)."""

    call_index: int


Output = Record | Annotation | Secret | CimObject | Problem | StartTls


@dataclass(kw_only=True)
class DatabaseSession(Record):
    """One client connection to a database server."""

    session_id: str
    protocol: str
    process: int
    server: str | None = None
    user: str | None = None
    database: str | None = None
    server_version: str | None = None
    connection_id: int | None = None
    start: float | None = None
    extra: dict[str, AttrValue] = field(default_factory=dict)  # protocol-specific (Oracle SID, program...)

    def to_cim(self) -> CimObject:
        return CimObject.make(
            "Dockit_DatabaseSession",
            {
                "Id": self.session_id,
                "Protocol": self.protocol,
                "Process": self.process,
                "Server": self.server,
                "User": self.user,
                "Database": self.database,
                "ServerVersion": self.server_version,
                "ConnectionId": self.connection_id,
                "Start": _time(self.start),
                **self.extra,
            },
        )


@dataclass(kw_only=True)
class SqlQuery(Record):
    """One statement execution; each execution of a prepared statement is one."""

    protocol: str
    process: int
    session: str
    text: str
    start: float | None = None
    duration: float | None = None
    status: str = "unknown"  # "ok", "error", "unknown"
    error_code: int | str | None = None
    error_message: str | None = None
    rows: int | None = None
    affected_rows: int | None = None
    last_insert_id: int | None = None
    truncated: bool = False
    tables: list[str] = field(default_factory=list)
    parameters: list[str | None] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    sample_rows: list[list[str | None]] = field(default_factory=list)
    confidence: str | None = None  # None when fully decoded; "heuristic" for a fallback
    written_tables: list[str] = field(default_factory=list)  # subset of `tables` the statement writes
    # `tables` as the server resolved them, one for one (`customers` in database shop: shop.customers;
    # None for a name written without a database when the session's current one is not known)
    resolved_tables: list[str | None] = field(default_factory=list)
    extra: dict[str, AttrValue] = field(default_factory=dict)  # protocol-specific (PostgreSQL's Command...)
    notices: list[tuple[str, str, str]] = field(default_factory=list)  # (severity, code, message) sent with it

    def to_cim(self) -> CimObject:
        # Built directly as tuples (no dict, no empty comprehensions): one is made per query.
        children = [CimChild("Text", (), self.text)]
        if self.tables:
            written = set(self.written_tables)
            resolved = self.resolved_tables if len(self.resolved_tables) == len(self.tables) else ()
            children += [
                CimChild(
                    "Table",
                    (("Name", name), ("Access", "write" if name in written else "read"))
                    + ((("Resolved", resolved[i]),) if resolved and resolved[i] is not None else ()),
                )
                for i, name in enumerate(self.tables)
            ]
        if self.parameters:
            children += [
                CimChild("Parameter", (("Index", index), ("Value", value)))
                for index, value in enumerate(self.parameters)
            ]
        if self.columns:
            children += [CimChild("Column", (("Name", name),)) for name in self.columns]
        if self.sample_rows:
            children += [
                CimChild("Row", (), "\t".join("NULL" if v is None else _cell(v) for v in redact_row(self.columns, row)))
                for row in self.sample_rows
            ]
        if self.notices:
            children += [
                CimChild("Notice", (("Severity", severity), ("Code", code)), message)
                for severity, code, message in self.notices
            ]
        # None values are left out here rather than by each writer: a third fewer tuples to spool.
        attrs = (
            ("Protocol", self.protocol),
            ("Process", self.process),
            ("Session", self.session),
            ("Start", _time(self.start)),
            ("Duration", _duration(self.duration)),
            ("Status", self.status),
            ("ErrorCode", self.error_code),
            ("ErrorMessage", self.error_message),
            ("Rows", self.rows),
            ("AffectedRows", self.affected_rows),
            ("LastInsertId", self.last_insert_id),
            ("Truncated", "true" if self.truncated else None),
            ("Confidence", self.confidence),
        )
        if self.extra:
            attrs += tuple(self.extra.items())
        return CimObject("Dockit_SqlQuery", tuple([a for a in attrs if a[1] is not None]), tuple(children))


@dataclass(kw_only=True)
class HttpExchange(Record):
    """One HTTP request and its response, seen from the client or the server side."""

    side: str  # "client" or "server"
    process: int
    method: str | None = None
    url: str | None = None
    host: str | None = None
    status: int | None = None
    reason: str | None = None
    start: float | None = None
    duration: float | None = None
    request_bytes: int = 0
    response_bytes: int = 0
    content_type: str | None = None
    http_version: str | None = None
    response_version: str | None = None  # shown only when it is not the request's (an HTTP/1.0 server)
    server: str | None = None
    truncated: bool = False
    complete: bool = True
    request_headers: list[tuple[str, str]] = field(default_factory=list)  # already redacted
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    extra: dict[str, AttrValue] = field(default_factory=dict)  # protocol-specific (HTTP/2's Stream, Pushed...)

    def to_cim(self) -> CimObject:
        children = [
            CimChild("Header", (("Name", name), ("Value", value), ("Direction", "request")))
            for name, value in self.request_headers
        ] + [
            CimChild("Header", (("Name", name), ("Value", value), ("Direction", "response")))
            for name, value in self.response_headers
        ]
        return CimObject.make(
            "Dockit_HttpRequest",
            {
                "Method": self.method,
                "Url": self.url,
                "Host": self.host,
                "Status": self.status,
                "Reason": self.reason,
                "Side": self.side,
                "Process": self.process,
                "Start": _time(self.start),
                "Duration": _duration(self.duration),
                "RequestBytes": self.request_bytes,
                "ResponseBytes": self.response_bytes,
                "ContentType": self.content_type,
                "Version": self.http_version,
                "ResponseVersion": self.response_version if self.response_version != self.http_version else None,
                "Server": self.server,
                "Truncated": "true" if self.truncated else None,
                "Complete": None if self.complete else "false",
                **self.extra,
            },
            children,
        )


@dataclass(kw_only=True)
class TlsSession(Record):
    """An encrypted connection: what can be read before the encryption starts."""

    process: int
    server: str | None = None
    server_name: str | None = None  # from the ClientHello's SNI
    version: str | None = None
    start: float | None = None
    bytes_out: int = 0
    bytes_in: int = 0
    alpn: str | None = None  # the protocols the client offered (h2, http/1.1)
    cipher: str | None = None  # the suite the ServerHello chose
    alpn_selected: str | None = None  # the protocol the server chose, when its hello shows it (TLS 1.2)
    certificate_subject: str | None = None  # the server certificate's subject, when sent in clear (TLS 1.2)
    extra: dict[str, AttrValue] = field(
        default_factory=dict
    )  # what the trace adds (the plaintext's protocol)

    def to_cim(self) -> CimObject:
        return CimObject.make(
            "Dockit_TlsSession",
            {
                "Process": self.process,
                "Server": self.server,
                "ServerName": self.server_name,
                "Version": self.version,
                "Cipher": self.cipher,
                "Start": _time(self.start),
                "BytesOut": self.bytes_out,
                "BytesIn": self.bytes_in,
                "Alpn": self.alpn,
                "AlpnSelected": self.alpn_selected,
                "CertificateSubject": self.certificate_subject,
                **self.extra,
            },
        )


def _time(value: float | None) -> Time | None:
    return None if value is None else Time(value)


def _duration(value: float | None) -> Duration | None:
    return None if value is None else Duration(value)


MESSAGE_PUBLISH = "publish"
MESSAGE_DELIVER = "deliver"


def _value_text(value: AttrValue | bytes | tuple) -> str:
    """A property or header value as the summary shows it: bytes (correlation data, AMQP byte arrays)
    by their size only, as they may be anything."""
    if isinstance(value, (bytes, bytearray)):
        return f"({len(value)} bytes)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def named_values(tag: str, pairs: Iterable[tuple[str, object]]) -> list[CimChild]:
    """`<Tag Name= Value=>` children, each value redacted when its name says it is a secret."""
    return [
        CimChild(tag, (("Name", name), ("Value", redact_header(name, _value_text(value)))))
        for name, value in pairs
    ]


@dataclass(kw_only=True)
class BrokerMessage(Record):
    """One message that crossed a connection to a message broker: published by the traced program
    (`publish`) or delivered to it (`deliver`). The payload is never kept, only its size."""

    protocol: str  # "amqp", "mqtt", "nats"
    process: int
    session: str
    direction: str  # MESSAGE_PUBLISH or MESSAGE_DELIVER
    destination: str  # AMQP "exchange/routing key", an MQTT topic, a NATS subject
    time: float | None = None
    size: int | None = None  # payload bytes
    qos: int | None = None  # MQTT's QoS level
    status: str = "unknown"  # "ok", "error", "unacknowledged", "unknown": see README
    ack: str | None = None  # what acknowledged it, in the protocol's words (ack, nack, puback...)
    duration: float | None = None  # from the message to its acknowledgement
    error: str | None = None
    truncated: bool = False
    extra: dict[str, AttrValue] = field(default_factory=dict)  # Exchange, RoutingKey, PacketId...
    properties: list[tuple[str, object]] = field(default_factory=list)  # the protocol's own (content-type...)
    headers: list[tuple[str, object]] = field(default_factory=list)  # the application's, redacted by name

    def to_cim(self) -> CimObject:
        return CimObject.make(
            "Dockit_Message",
            {
                "Protocol": self.protocol,
                "Process": self.process,
                "Session": self.session,
                "Time": _time(self.time),
                "Direction": self.direction,
                "Destination": self.destination,
                "Size": self.size,
                "QoS": self.qos,
                "Status": self.status,
                "Ack": self.ack,
                "Duration": _duration(self.duration),
                "Error": self.error,
                **self.extra,
                "Truncated": "true" if self.truncated else None,
            },
            named_values("Property", self.properties) + named_values("Header", self.headers),
        )


@dataclass(kw_only=True)
class BrokerOperation(Record):
    """Any other request to a broker, with its reply: a queue declared, a binding, a subscription, a
    JetStream API call, a transaction committed."""

    protocol: str
    process: int
    session: str
    operation: str  # "queue.declare", "SUBSCRIBE", "STREAM.CREATE"
    time: float | None = None
    duration: float | None = None
    status: str = "unknown"  # "ok", "error", "unknown" (no reply seen), "sent" (none expected)
    error: str | None = None
    truncated: bool = False
    extra: dict[str, AttrValue] = field(default_factory=dict)
    arguments: list[tuple[str, object]] = field(default_factory=list)  # <Argument Name= Value=>
    children: list[CimChild] = field(default_factory=list)  # <Subscription Topic= QoS= Granted=>...

    def to_cim(self) -> CimObject:
        return CimObject.make(
            "Dockit_BrokerOperation",
            {
                "Protocol": self.protocol,
                "Process": self.process,
                "Session": self.session,
                "Time": _time(self.time),
                "Operation": self.operation,
                "Status": self.status,
                "Duration": _duration(self.duration),
                "Error": self.error,
                **self.extra,
                "Truncated": "true" if self.truncated else None,
            },
            named_values("Argument", self.arguments) + self.children,
        )


@dataclass(kw_only=True)
class BrokerSession(Record):
    """One client connection to a message broker: who logged in where, what the server is, how the
    connection ended, and how many of each command crossed it (`<Command Name= Count=>`)."""

    session_id: str
    protocol: str
    process: int
    server: str | None = None
    user: str | None = None  # never a password
    virtual_host: str | None = None  # AMQP
    client_id: str | None = None  # MQTT's client identifier, NATS's client name
    server_version: str | None = None
    server_product: str | None = None
    protocol_version: str | None = None
    start: float | None = None
    end: float | None = None
    close_code: int | str | None = None
    close_reason: str | None = None
    published: int = 0
    delivered: int = 0
    extra: dict[str, AttrValue] = field(default_factory=dict)
    commands: dict[str, int] = field(default_factory=dict)

    def to_cim(self) -> CimObject:
        return CimObject.make(
            "Dockit_BrokerSession",
            {
                "Id": self.session_id,
                "Protocol": self.protocol,
                "Process": self.process,
                "Server": self.server,
                "User": self.user,
                "VirtualHost": self.virtual_host,
                "ClientId": self.client_id,
                "ServerVersion": self.server_version,
                "ServerProduct": self.server_product,
                "ProtocolVersion": self.protocol_version,
                "Start": _time(self.start),
                "End": _time(self.end),
                "CloseCode": self.close_code,
                "CloseReason": self.close_reason,
                "Published": self.published,
                "Delivered": self.delivered,
                **self.extra,
            },
            [
                CimChild("Command", (("Name", name), ("Count", count)))
                for name, count in sorted(self.commands.items())
            ],
        )


def as_cim(output: Record | CimObject) -> CimObject:
    """Any summary output as a CimObject."""
    return output if isinstance(output, CimObject) else output.to_cim()


# What `mariadb --batch` escapes in a value (client/mysql.cc, safe_put_field): NUL, tab, newline and
# backslash; every other byte (a carriage return, a byte that is not UTF-8) is written as it is.
_CELL_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\0": "\\0"})


def _cell(value: str) -> str:
    """A value of a tab-separated Row, escaped as `mariadb --batch` does (a tab or a newline inside a
    value must not split it); NULL is the Row's `NULL`."""
    return value.translate(_CELL_ESCAPES)
