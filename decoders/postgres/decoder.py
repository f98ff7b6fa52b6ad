"""`PostgresDecoder`: detection, the two streams, the connection's start (roles, encryption, startup,
authentication, session parameters), and the hand-over of the command phase to `query`."""

from __future__ import annotations

from collections.abc import Sequence

from decoders.api import ChannelInfo, Chunk, Decoder, DecoderOptions, Direction
from decoders.postgres.query import PROTOCOL, QueryProtocol
from decoders.postgres.search_path import startup_schema
from decoders.postgres.stream import (
    BACKEND_LIMITS,
    FRONTEND_LIMITS,
    UNTYPED,
    Frame,
    MessageStream,
    chain_length,
)
from decoders.records import (
    MESSAGE_DELIVER,
    Annotation,
    AttrValue,
    BrokerMessage,
    DatabaseSession,
    Output,
    Secret,
    StartTls,
)
from decoders.tls import TlsDecoder
from protocols import postgres as p
from protocols.tls import starts_a_record

ALL_TYPES = p.FRONTEND_TYPES | p.BACKEND_TYPES
# Authentication requests whose body is part of a credential exchange (a salt, a SASL challenge).
_SECRET_REQUESTS = frozenset({p.AUTH_MD5, p.AUTH_GSS_CONTINUE, p.AUTH_SASL_CONTINUE, p.AUTH_SASL_FINAL})
_SESSION_PARAMETERS = {"application_name": "ApplicationName"}
# Messages the session handles itself; the others go to the query protocol.
_CLIENT_QUERY_MESSAGES = p.FRONTEND_TYPES - {p.PASSWORD, p.TERMINATE}
_SERVER_SESSION_MESSAGES = frozenset(
    {p.AUTHENTICATION, p.PARAMETER_STATUS, p.BACKEND_KEY_DATA, p.NOTIFICATION, p.NEGOTIATE_PROTOCOL}
)


def _postgres_socket(channel: ChannelInfo) -> bool:
    """A unix socket named as PostgreSQL names its own (`/var/run/postgresql/.s.PGSQL.5432`)."""
    return ".s.PGSQL." in (channel.remote or "") or ".s.PGSQL." in (channel.local or "")


class PostgresDecoder(Decoder):
    """PostgreSQL frontend/backend protocol 3.0, seen from either end."""

    name = "postgresql"
    ports = frozenset({5432})

    def __init__(self, channel: ChannelInfo, max_rows: int | None = None) -> None:
        super().__init__(channel)
        if max_rows is not None:  # a decoder used on its own (a test): what `--rows` would say
            self.options = DecoderOptions(rows=max_rows)
        self._out = MessageStream(ALL_TYPES)
        self._in = MessageStream(ALL_TYPES)
        self._server_dir: Direction | None = None
        self._phase = "start"  # start, auth, ready, encrypted, closed
        self._session: DatabaseSession | None = None
        self._session_sent = False
        self._extra: dict[str, AttrValue] = {"Encrypted": "false"}
        self._auth_request: int | None = None
        self._encryption_asked: str | None = None  # "ssl" or "gss" while the answer is awaited
        self._queries: QueryProtocol | None = None  # made at the first query: `options` is set by then
        self._tls: TlsDecoder | None = None
        self._schema: str | None = None  # where unqualified names resolve, once the startup is seen

    # --- detection ------------------------------------------------------------------------------

    @classmethod
    def score(cls, data: bytes, direction: Direction, channel: ChannelInfo) -> int:
        if len(data) >= 8 and data[0] == 0:
            length = int.from_bytes(data[:4], "big")
            code = int.from_bytes(data[4:8], "big")
            if code in (p.SSL_REQUEST, p.GSSENC_REQUEST):
                return 100 if length == 8 else 0
            if code == p.CANCEL_REQUEST:
                return 100 if length == 16 else 0
            if code == p.PROTOCOL_3_0 and 9 <= length <= p.MAX_STARTUP:
                sample = data[8:40]
                if all(32 <= b < 127 or b == 0 for b in sample):
                    return 100
            return 0
        hinted = any(port in cls.ports for port in channel.ports) or _postgres_socket(channel)
        if data[:1] == b"Q" and len(data) >= 6:
            length = int.from_bytes(data[1:5], "big")
            if len(data) == length + 1 and data[-1] == 0:
                sample = data[5:69]
                if all(b in (9, 10, 13) or 32 <= b < 127 or b >= 128 for b in sample[:-1]):
                    return 60  # a whole Query message: a type, a length that fits, SQL text, a NUL
        count = chain_length(data, p.FRONTEND_TYPES, FRONTEND_LIMITS) or chain_length(
            data, p.BACKEND_TYPES, BACKEND_LIMITS
        )
        if hinted and count >= 1:
            return 40  # messages of one side, whole, on PostgreSQL's port or socket
        if count >= 3 and _walks_exactly(data):
            return 30
        return 0

    # --- feeding --------------------------------------------------------------------------------

    def feed(self, chunk: Chunk) -> Sequence[Output]:
        if self._tls is not None:
            if starts_a_record(chunk.data):
                return self._tls.feed(chunk)  # records, from a pipeline that does not read StartTls
            # The plaintext (ltrace's SSL_write/SSL_read): the startup and the session, inside TLS.
            self._tls = None
        if self._phase in ("encrypted", "closed"):
            return ()
        direction = chunk.direction
        stream = self._out if direction is Direction.OUT else self._in
        data = chunk.data
        missing = chunk.size - len(data)
        frames = stream.push(data, chunk.time, chunk.pid, chunk.call_index, missing if missing > 0 else 0)
        out: list[Output] = []
        for frame in frames:
            if self._tls is not None or self._phase == "encrypted":
                break  # the rest of this chunk is encrypted
            if self._server_dir is None:
                self._decide_roles(direction, frame)
            if direction is self._server_dir:
                self._on_server(frame, out)
            else:
                self._on_client(frame, out)
        if stream.lost:
            stream.lost = False
            queries = self._query_protocol()
            if direction is self._server_dir:
                queries.server_lost()
            else:
                queries.client_lost()
        return out

    def reading_since(self) -> int | None:
        """Where the message still incomplete began, either way: `--each-call` holds the calls from
        there, so that a password message written in pieces is hidden in each of them."""
        if self._tls is not None or self._phase in ("encrypted", "closed"):
            return None
        out, in_ = self._out.reading_since(), self._in.reading_since()
        if out is None:
            return in_
        return out if in_ is None else min(out, in_)

    def close(self, time: float | None) -> Sequence[Output]:
        out: list[Output] = []
        if self._queries is not None:
            self._queries.close(out)
        self._send_session(out)
        if self._tls is not None:
            out += self._tls.close(time)
            self._tls = None
        self._phase = "closed"
        self._queries = None
        return out

    def _decide_roles(self, direction: Direction, frame: Frame) -> None:
        if frame.type == UNTYPED or frame.type in p.FRONTEND_ONLY:
            self._server_dir = direction.reverse()
        elif frame.type in p.BACKEND_ONLY:
            self._server_dir = direction
        else:
            self._server_dir = Direction.OUT if self.channel.listening else Direction.IN
        server = self._out if self._server_dir is Direction.OUT else self._in
        client = self._in if server is self._out else self._out
        server.valid_types, server.limits = p.BACKEND_TYPES, BACKEND_LIMITS
        client.valid_types, client.limits = p.FRONTEND_TYPES, FRONTEND_LIMITS
        if frame.type != UNTYPED:
            self._phase = "ready"  # a trace attached after the connection's start

    def _query_protocol(self) -> QueryProtocol:
        if self._queries is None:
            self._queries = QueryProtocol(self.channel.channel_id, self.options.rows)
            self._queries.schema = self._schema
        return self._queries

    # --- session --------------------------------------------------------------------------------

    def _new_session(self, frame: Frame) -> DatabaseSession:
        if self._session is None:
            self._session = DatabaseSession(
                session_id=self.channel.channel_id,
                protocol=PROTOCOL,
                process=frame.pid or self.channel.pid,
                server=self.channel.server,
                start=frame.time,
            )
        return self._session

    def _send_session(self, out: list[Output]) -> None:
        if self._session is not None and not self._session_sent:
            self._session.extra.update(self._extra)
            self._session_sent = True
            out.append(self._session)

    # --- client ---------------------------------------------------------------------------------

    def _on_client(self, frame: Frame, out: list[Output]) -> None:
        kind = frame.type
        queries = self._queries
        if queries is not None and kind in _CLIENT_QUERY_MESSAGES:
            queries.client(frame, out)  # the common case, once the connection is going
            return
        if kind == UNTYPED:
            self._on_startup_family(frame, out)
            return
        if kind == p.PASSWORD:
            out.append(Secret(frame.call_index))
            if self._auth_request == p.AUTH_SASL:
                mechanism = p.sasl_mechanism(frame.body)
                if mechanism:
                    self._extra["Authentication"] = mechanism
            out.append(Annotation(frame.call_index, "postgresql authentication response (not shown)"))
            return
        if self._phase == "start":
            self._phase = "ready"  # the startup was not traced
        self._new_session(frame)
        if kind == p.TERMINATE:
            out.append(Annotation(frame.call_index, "postgresql terminate"))
            self._send_session(out)
            return
        self._query_protocol().client(frame, out)

    def _on_startup_family(self, frame: Frame, out: list[Output]) -> None:
        code = p.startup_code(frame.body)
        session = self._new_session(frame)
        if code in (p.SSL_REQUEST, p.GSSENC_REQUEST):
            self._encryption_asked = "ssl" if code == p.SSL_REQUEST else "gss"
            server = self._in if self._server_dir is Direction.IN else self._out
            server.expect_answer = True
            name = "SSLRequest" if code == p.SSL_REQUEST else "GSSENCRequest"
            out.append(Annotation(frame.call_index, f"postgresql {name}"))
            return
        if code == p.CANCEL_REQUEST:
            try:
                pid = p.parse_cancel(frame.body)
            except p.PgError:
                pid = None
            self._extra["CancelBackendPid"] = pid
            out.append(Annotation(frame.call_index, f"postgresql cancel request for backend {pid}"))
            self._send_session(out)
            return
        if code is not None and code >> 16 in (1, 2):  # the protocols before 3.0: other framing
            out.append(
                Annotation(
                    frame.call_index,
                    f"postgresql startup, protocol {code >> 16}.{code & 0xFFFF}: not decoded",
                )
            )
            self._phase = "closed"
            return
        if code is None or code >> 16 != 3:  # a damaged startup: what follows may still be decoded
            self._extra["Truncated"] = "true"
        try:
            startup = p.parse_startup(frame.body)
            parameters = startup.parameters
        except p.PgError:
            parameters = {}
        if frame.truncated or frame.capped:
            self._extra["Truncated"] = "true"
        session.user = parameters.get("user")
        session.database = parameters.get("database") or session.user  # the server's default
        self._schema = startup_schema(parameters)
        if self._queries is not None:
            self._queries.schema = self._schema
        session.process = frame.pid or session.process
        session.start = frame.time
        if parameters.get("application_name"):
            self._extra["ApplicationName"] = parameters["application_name"]
        if "replication" in parameters:
            self._extra["Replication"] = parameters["replication"]
        self._phase = "auth"
        note = f"postgresql startup: user {session.user}"
        note += f" database {session.database}" if session.database else ""
        if parameters.get("application_name"):
            note += f" application {parameters['application_name']}"
        out.append(Annotation(frame.call_index, note))

    # --- server ---------------------------------------------------------------------------------

    def _on_server(self, frame: Frame, out: list[Output]) -> None:
        kind = frame.type
        queries = self._queries
        if (
            queries is not None
            and self._phase == "ready"
            and kind not in _SERVER_SESSION_MESSAGES
            and not frame.answer
        ):
            queries.server(frame, out)  # the common case, once the connection is going
            return
        if frame.answer:
            self._on_encryption_answer(frame, out)
            return
        if kind == p.AUTHENTICATION:
            self._on_authentication(frame, out)
        elif kind == p.PARAMETER_STATUS:
            self._on_parameter_status(frame, out)
        elif kind == p.BACKEND_KEY_DATA:
            try:
                self._extra["BackendPid"] = p.parse_backend_key_data(frame.body)
            except p.PgError:
                pass
        elif kind == p.NOTIFICATION:
            self._on_notification(frame, out)
        elif kind == p.NEGOTIATE_PROTOCOL:
            out.append(Annotation(frame.call_index, "postgresql negotiate protocol version"))
        elif kind == p.ERROR_RESPONSE and self._phase in ("start", "auth"):
            fields = p.parse_fields(frame.body)
            self._new_session(frame)
            self._extra["LoginError"] = (
                f"{fields.get(p.FIELD_CODE, '')} {fields.get(p.FIELD_MESSAGE, '')}".strip()
            )
            out.append(
                Annotation(frame.call_index, "postgresql startup refused: " + self._extra["LoginError"])
            )
            self._send_session(out)
        else:
            if kind == p.READY_FOR_QUERY and self._phase != "ready":
                self._phase = "ready"
                self._new_session(frame)
                self._send_session(out)
            self._query_protocol().server(frame, out)

    def _on_encryption_answer(self, frame: Frame, out: list[Output]) -> None:
        asked, self._encryption_asked = self._encryption_asked, None
        name = "GSSENCRequest" if asked == "gss" else "SSLRequest"
        if frame.type == ord("N"):
            out.append(
                Annotation(frame.call_index, f"postgresql {name} refused: the session goes on in clear")
            )
            return
        self._extra["Encrypted"] = "true"
        self._new_session(frame)
        if frame.type == ord("S"):
            # The socket carries TLS from here: the pipeline gives its records to the TLS decoder and its
            # plaintext, when the trace shows it (ltrace), back here, where the startup follows; the
            # session is sent after it, or at close. Records fed here anyway go to a TLS decoder.
            out.append(Annotation(frame.call_index, "postgresql SSL accepted: the rest is TLS"))
            out.append(StartTls(frame.call_index))
            self._tls = TlsDecoder(self.channel)
            self._tls.options = self.options
        else:
            self._send_session(out)
            out.append(
                Annotation(frame.call_index, "postgresql GSSAPI encryption accepted: the rest is encrypted")
            )
            self._phase = "encrypted"

    def _on_authentication(self, frame: Frame, out: list[Output]) -> None:
        try:
            request = p.parse_authentication(frame.body)
        except p.PgError:
            return
        if request.code in _SECRET_REQUESTS:
            out.append(Secret(frame.call_index))
        if request.code == p.AUTH_OK:
            self._extra.setdefault(
                "Authentication", "none" if self._auth_request is None else p.AUTH_NAMES[self._auth_request]
            )
            out.append(Annotation(frame.call_index, "postgresql authentication ok"))
            return
        if request.code in (p.AUTH_SASL_CONTINUE, p.AUTH_SASL_FINAL, p.AUTH_GSS_CONTINUE):
            return
        self._auth_request = request.code
        if request.code != p.AUTH_SASL:
            self._extra["Authentication"] = request.name
        detail = f" ({', '.join(request.mechanisms)})" if request.mechanisms else ""
        out.append(
            Annotation(frame.call_index, f"postgresql authentication requested: {request.name}{detail}")
        )

    def _on_parameter_status(self, frame: Frame, out: list[Output]) -> None:
        try:
            name, value = p.parse_parameter_status(frame.body)
        except p.PgError:
            return
        if name == "server_version":
            self._new_session(frame).server_version = value
        elif name in _SESSION_PARAMETERS and value and not self._session_sent:
            self._extra[_SESSION_PARAMETERS[name]] = value
        if self._phase == "ready":  # a change during the session (SET application_name...)
            out.append(Annotation(frame.call_index, f"postgresql parameter {name} = {value}"))

    def _on_notification(self, frame: Frame, out: list[Output]) -> None:
        """LISTEN/NOTIFY: a message delivered on a channel, as the brokers' messages are (no
        acknowledgement is asked); its payload is never kept, only its size."""
        try:
            notification = p.parse_notification(frame.body)
        except p.PgError:
            return
        out.append(
            BrokerMessage(
                protocol=PROTOCOL,
                process=frame.pid,
                session=self.channel.channel_id,
                direction=MESSAGE_DELIVER,
                destination=notification.channel,
                time=frame.time,
                size=len(notification.payload),
                status="unacknowledged",
                truncated=frame.truncated or frame.capped,
                extra={"SenderPid": notification.pid},
            )
        )
        out.append(Annotation(frame.call_index, f"postgresql notification on {notification.channel}"))


def _walks_exactly(data: bytes) -> bool:
    """Whether `data` is whole typed messages, the last one ending at its end."""
    pos = 0
    while pos + 5 <= len(data):
        pos += 1 + int.from_bytes(data[pos + 1 : pos + 5], "big")
    return pos == len(data)
