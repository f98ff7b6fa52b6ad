"""MySQL / MariaDB decoder: one `SqlQuery` per statement execution, one `DatabaseSession` per login.

Sans-IO state machine over the two byte streams of one connection (protocols/mysql.py parses the
packets). Roles come from content: the server speaks first (handshake v10); a stream whose first
packet is a command with sequence id 0 is the client's. Without either (a trace attached mid-way),
`ChannelInfo.listening` decides.

What comes out:
- `DatabaseSession` once the login is known (the server's OK or ERR after authentication, an SSL
  request, or at close): server version (MariaDB's "5.5.5-" compatibility prefix removed), connection
  id, user, database, client name. Never the auth data.
- `SqlQuery` for COM_QUERY, each COM_STMT_EXECUTE (the prepared text, parameters decoded from the
  binary protocol), a COM_STMT_PREPARE that failed, and COM_INIT_DB, which is reported as the text
  `USE <db>` (the SQL equivalent of what was sent: the command carries only the name).
  Passwords in `IDENTIFIED BY '...'`, `PASSWORD('...')` and the like are replaced by `<redacted>`, and
  so are the parameters given to them (`PASSWORD(?)`) or compared with, assigned or inserted into a
  column named like a secret (`WHERE password = ?`, `INSERT INTO u (name, pwd) VALUES (?, ?)`).
  Result sets give the row count and column names; the first `max_rows` rows (`--rows`, or the
  constructor argument; default 0: row values may be personal data) as text. A column named after an
  expression that holds a password is redacted like the SQL, and so is an auth hash in a sampled value
  (`*` and 40 hex digits, `$A$005$...`, a JSON `"authentication_string"`), whatever its column's name.
- `Annotation` at the call that carried each request (and the greeting and login).

Replies are matched to requests first in, first out, so pipelined requests (MariaDB's
prepare-and-execute in one write) are followed. Multi-statement queries and CALL give one record with
the rows of all result sets summed and the columns of the first. When replies are never seen (one
direction not traced), at most MAX_PENDING requests wait; older ones are reported with status
"unknown", as are requests still waiting at close.

A buffer cut by the tracer (`Chunk.missing`): the packet is decoded as far as it goes and the record
marked truncated; the lost bytes are skipped exactly when they end inside that packet (a 2 MB row cut
at strace's 1 MB: the row count still holds), else the stream is out of step (row count unknown): the client stream re-synchronises on the next chunk that starts like a command, the
server stream on the first chunk after the client's next request.

Compressed connections (CLIENT_COMPRESS, e.g. `mariadb --compress`, MySQLdb's compress=True): after
the login, zlib-wrapped packets are unwrapped and decoded the same way; a cut compressed packet
gives what its start inflates to.

Not decoded: TLS (stops at the SSL request), rows fetched through server-side cursors
(COM_STMT_FETCH), COM_STMT_BULK_EXECUTE parameters, replication.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from decoders.api import ChannelInfo, Chunk, Decoder, DecoderOptions, Direction
from decoders.mysql_stream import At, Frame, PacketStream
from decoders.records import Annotation, AttrValue, DatabaseSession, Output, Secret, SqlQuery
from decoders.redact import REDACTED, redact_sql
from decoders.sql_tables import secret_placeholders, tables_in
from protocols import mysql as p

ANNOTATION_MAX = 500
MAX_PENDING = 64  # requests waiting for replies; beyond, the oldest are reported without one
_NO_REPLY = frozenset({p.COM_QUIT, p.COM_STMT_CLOSE, p.COM_STMT_SEND_LONG_DATA})
_RESULT_COMMANDS = frozenset({p.COM_QUERY, p.COM_STMT_EXECUTE, p.COM_PROCESS_INFO})
_SIMPLE = frozenset(
    {
        p.COM_INIT_DB,
        p.COM_PING,
        p.COM_STMT_RESET,
        p.COM_REFRESH,
        p.COM_SHUTDOWN,
        p.COM_PROCESS_KILL,
        p.COM_DEBUG,
        p.COM_SET_OPTION,
        p.COM_RESET_CONNECTION,
        p.COM_CREATE_DB,
        p.COM_DROP_DB,
        p.COM_SLEEP,
        p.COM_CONNECT,
    }
)
# redact_sql's patterns all need one of these words: most statements skip its substitutions.
_MAY_HOLD_SECRET = re.compile("IDENTIFIED|PASSWORD", re.I).search
# Auth hashes in sampled values whatever their column is called (`concat('x', authentication_string)`,
# the JSON of MariaDB's mysql.global_priv): mysql_native_password's `*` and 40 hex digits, MySQL 8's
# caching_sha2 `$A$005$...` (to the value's end: its salt is raw bytes), a secret-named JSON key's value.
_HASH_IN_VALUE = re.compile(
    r"\*[0-9A-F]{40}(?![0-9A-F])|\$A\$[0-9A-F]{3}\$(?s:.*)"
    r'|(?P<key>"(?:authentication_string|password|auth_string)"\s*:\s*)"(?:[^"\\]|\\.)*"',
    re.I,
)
_LAST_STATEMENT = 0xFFFFFFFF  # MariaDB: "the statement prepared just before" (pipelined execute)


@dataclass(slots=True)
class _Statement:
    sql: str
    truncated: bool
    num_params: int = 0
    num_columns: int = 0
    param_types: list[tuple[int, bool]] | None = None
    columns: list[p.Column] = field(default_factory=list)
    long_data: set[int] = field(default_factory=set)


@dataclass(slots=True)
class _Request:
    command: int
    payload: bytes
    truncated: bool
    at: At
    text: str | None = None
    statement_id: int | None = None
    state: str = "first"
    left: int = 0
    columns: list[p.Column] = field(default_factory=list)
    result_columns: list[str] = field(default_factory=list)
    rows: int | None = None
    sample: list[list[str | None]] = field(default_factory=list)
    status: str = "unknown"
    error_code: int | None = None
    error_message: str | None = None
    affected_rows: int | None = None
    last_insert_id: int | None = None
    end_time: float | None = None
    cut: bool = False  # the stream lost step inside this reply: what follows in it is unknown
    partial: bool = False  # a reply packet was cut but its lost bytes were skipped: the count holds
    prepared: _Statement | None = None
    slots: list[str] = field(default_factory=list)  # PREPARE reply parts still expected, last first


class MySqlDecoder(Decoder):
    """MySQL and MariaDB client/server protocol, seen from either end."""

    name = "mysql"
    ports = frozenset({3306})

    def __init__(self, channel: ChannelInfo, max_rows: int | None = None) -> None:
        super().__init__(channel)
        if max_rows is not None:  # a decoder used on its own (a test): what `--rows` would say
            self.options = DecoderOptions(rows=max_rows)
        self._streams = {d: PacketStream(self._acceptor(d)) for d in Direction}
        self._out, self._in = self._streams[Direction.OUT], self._streams[Direction.IN]
        self._server_dir: Direction | None = None
        self._phase = "start"  # start, login, auth, command, tls
        self._server_caps_value: int | None = None
        self._client_caps_value: int | None = None
        self._caps_memo: dict[int, bool | None] = {}  # flag -> _caps(flag), until the capabilities change
        self._queue: deque[_Request] = deque()
        self._statements: dict[int, _Statement] = {}
        self._last_statement: int | None = None
        self._resync_server = False
        self._session: DatabaseSession | None = None
        self._session_sent = False
        self._session_extra: dict[str, AttrValue] = {}
        self._last_server_time: float | None = None

    # --- detection ------------------------------------------------------------------------------

    @classmethod
    def score(cls, data: bytes, direction: Direction, channel: ChannelInfo) -> int:
        if len(data) < 5:
            return 0
        length = int.from_bytes(data[:3], "little")
        sequence_id, first = data[3], data[4]
        if sequence_id != 0 or length == 0:
            return 0
        if first == 0x0A and length >= 20:
            end = data.find(b"\0", 5, 5 + 64)
            version = data[5:end] if end > 5 else data[5:]
            if version[:1].isdigit() and all(32 <= b < 127 for b in version):
                return 100
            return 0
        if first == 0xFF and length < 1024 and len(data) >= 7:
            return 40  # a server refusing the connection before any greeting
        if first in p.COMMAND_NAMES and (len(data) - 4 == length or (len(data) - 4 < length < 1 << 24)):
            if first in (p.COM_QUERY, p.COM_STMT_PREPARE):
                sample = data[5:64]
                if sample and all(b in (9, 10, 13) or 32 <= b < 127 or b >= 128 for b in sample):
                    return 70 if len(data) - 4 == length else 50
                return 0
            # Any other command is a byte and a length: evidence enough on MySQL's port only (a
            # PostgreSQL server's `R\0\0\0\x08...` reads as a 82-byte COM_SHUTDOWN).
            if not any(port in cls.ports for port in channel.ports):
                return 0
            return 30 if len(data) - 4 == length else 10
        return 0

    def _acceptor(self, direction: Direction) -> Callable[[bytes], bool]:
        def accept(head: bytes) -> bool:
            if direction is self._server_dir:
                armed, self._resync_server = self._resync_server, False
                return armed  # the first chunk after the client's next request starts a reply
            return len(head) >= 5 and head[3] == 0 and head[4] in p.COMMAND_NAMES and head[:3] != b"\0\0\0"

        return accept

    def _compressed_acceptor(self, direction: Direction) -> Callable[[bytes], bool]:
        def accept(head: bytes) -> bool:
            if direction is self._server_dir:
                armed, self._resync_server = self._resync_server, False
                return armed
            return len(head) >= 7 and head[3] == 0 and head[:3] != b"\0\0\0"  # sequence ids restart

        return accept

    @property
    def _server_caps(self) -> int | None:
        return self._server_caps_value

    @_server_caps.setter
    def _server_caps(self, value: int | None) -> None:
        self._server_caps_value = value
        self._caps_memo.clear()

    @property
    def _client_caps(self) -> int | None:
        return self._client_caps_value

    @_client_caps.setter
    def _client_caps(self, value: int | None) -> None:
        self._client_caps_value = value
        self._caps_memo.clear()

    def _caps(self, flag: int) -> bool | None:
        """Whether both ends agreed on a capability; None when the login was not seen."""
        try:
            return self._caps_memo[flag]
        except KeyError:
            pass
        server, client = self._server_caps_value, self._client_caps_value
        if server is None and client is None:
            agreed = None
        else:
            agreed = bool((server if server is not None else -1) & (client or -1) & flag)
        self._caps_memo[flag] = agreed
        return agreed

    # --- feeding --------------------------------------------------------------------------------

    def feed(self, chunk: Chunk) -> Sequence[Output]:
        if self._phase == "tls":
            return ()
        direction = chunk.direction
        stream = self._out if direction is Direction.OUT else self._in  # (an Enum hashes slowly)
        at = At(chunk.time, chunk.pid, chunk.call_index)
        data = chunk.data
        missing = chunk.size - len(data)
        frames = stream.push(data, at, missing if missing > 0 else 0)
        out: list[Output] = []
        for frame in frames:
            if self._phase == "tls":
                break
            if self._server_dir is None:
                self._decide_roles(chunk.direction, frame)
            if chunk.direction is self._server_dir:
                self._last_server_time = frame.end_time
                self._on_server(frame, out)
            else:
                self._on_client(frame, out)
        if stream.lost:
            stream.lost = False
            if chunk.direction is self._server_dir:
                for request in self._queue:
                    request.cut = True
                    request.end_time = request.end_time or chunk.time
        return out

    def close(self, time: float | None) -> Sequence[Output]:
        out: list[Output] = []
        while self._queue:
            request = self._queue.popleft()
            if request.state == "optional_eof":
                request.status = request.status if request.status != "unknown" else "ok"
            elif not request.cut:
                request.status = "unknown" if request.status != "error" else "error"
                request.end_time = None if request.status == "unknown" else request.end_time
            self._finish(request, out)
        self._send_session(out)
        self._phase = "closed"
        # The streams' resync tests are closures over this decoder: cut that cycle, so that a closed
        # connection's state goes at once (an application that connects per request has thousands).
        for stream in self._streams.values():
            stream.accept_start = _never
            if stream.compressed is not None:
                stream.compressed.accept_start = _never
        return out

    def _decide_roles(self, direction: Direction, frame: Frame) -> None:
        first = frame.payload[:1]
        if frame.sequence_id == 0 and first == b"\x0a":
            self._server_dir = direction
            return
        if frame.sequence_id == 0 and first and first[0] in p.COMMAND_NAMES:
            self._server_dir = direction.reverse()
        else:
            self._server_dir = Direction.OUT if self.channel.listening else Direction.IN
        if self._phase == "start":
            self._phase = "command"

    # --- connection phase -----------------------------------------------------------------------

    def _new_session(self, at: At) -> DatabaseSession:
        if self._session is None:
            self._session = DatabaseSession(
                session_id=self.channel.channel_id,
                protocol="mysql",
                process=at.pid or self.channel.pid,
                server=self.channel.server,
                start=at.time,
            )
        return self._session

    def _send_session(self, out: list[Output]) -> None:
        if self._session is not None and not self._session_sent:
            self._session.extra.update(self._session_extra)
            self._session_sent = True
            out.append(self._session)

    def _on_greeting(self, frame: Frame, out: list[Output]) -> None:
        session = self._new_session(frame.start)
        try:
            greeting = p.parse_greeting(frame.payload)
            version, connection_id = greeting.server_version, greeting.connection_id
            self._server_caps = greeting.capabilities
        except p.MySqlError:
            # A cut greeting: the version as far as it goes.
            version = p.text(frame.payload[1:].split(b"\0", 1)[0]) or ""
            rest = frame.payload[1:].partition(b"\0")[2]
            connection_id = int.from_bytes(rest[:4], "little") if len(rest) >= 4 else None
            self._session_extra["Truncated"] = "true"
        if version.startswith("5.5.5-"):
            version = version[6:]
        session.server_version = version
        session.connection_id = connection_id
        session.start = frame.start.time
        self._phase = "login"
        note = f"mysql greeting: server {version}"
        if connection_id is not None:
            note += f" connection {connection_id}"
        out.append(Annotation(frame.start.call_index, note))

    def _on_login(self, frame: Frame, out: list[Output]) -> None:
        out.append(Secret(frame.start.call_index))  # the auth response: a hash of the password
        session = self._new_session(frame.start)
        session.process = frame.start.pid or session.process
        payload = frame.payload
        try:
            response = p.parse_handshake_response(payload)
        except p.MySqlError:
            caps = int.from_bytes(payload[:4], "little") if len(payload) >= 4 else None
            self._client_caps = caps
            self._session_extra["Truncated"] = "true"
            if len(payload) > 36:
                user = payload[32:].split(b"\0", 1)[0]
                session.user = (p.text(user) or "") + ("" if b"\0" in payload[32:] else "...")
            self._phase = "auth"
            out.append(Annotation(frame.start.call_index, "mysql login (packet cut)"))
            return
        self._client_caps = response.capabilities
        if response.ssl_request:
            self._session_extra["Encrypted"] = "true"
            self._phase = "tls"
            out.append(Annotation(frame.start.call_index, "mysql ssl request: the rest is TLS"))
            self._send_session(out)
            return
        session.user = response.user
        session.database = response.database
        client = response.attributes.get("_client_name")
        program = response.attributes.get("program_name")
        if client:
            self._session_extra["ClientName"] = client
        if program:
            self._session_extra["ProgramName"] = program
        self._phase = "auth"
        out.append(
            Annotation(
                frame.start.call_index,
                f"mysql login: user {response.user}"
                + (f" database {response.database}" if response.database else " (no database)"),
            )
        )

    def _on_auth_reply(self, frame: Frame, out: list[Output]) -> None:
        first = frame.payload[:1]
        if first == b"\x00":
            self._phase = "command"
            if self._caps(p.CLIENT_COMPRESS):
                self._session_extra["Compressed"] = "true"
                for direction, stream in self._streams.items():
                    stream.compress(self._compressed_acceptor(direction))
            self._send_session(out)
        elif first == b"\xff":
            try:
                err = p.parse_err(frame.payload)
                self._session_extra["LoginError"] = f"{err.code} {err.message}"
            except p.MySqlError:
                self._session_extra["LoginError"] = "error"
            self._phase = "command"
            self._send_session(out)

    # --- command phase --------------------------------------------------------------------------

    def _on_client(self, frame: Frame, out: list[Output]) -> None:
        if self._phase == "start":
            self._phase = "command"
        if self._phase == "login":
            if frame.sequence_id != 0:
                self._on_login(frame, out)
                return
            self._phase = "command"  # the login was not seen: this is already a command
        if self._phase == "auth":
            if frame.sequence_id != 0:
                out.append(Secret(frame.start.call_index))
                return  # auth data: never decoded, never kept
            self._phase = "command"
            self._send_session(out)
        if frame.sequence_id != 0 or not frame.payload:
            return  # not a command: LOAD DATA LOCAL file contents, COM_CHANGE_USER auth data
        server = self._streams[self._server_dir or Direction.IN]
        if not server.synced or (server.compressed is not None and not server.compressed.synced):
            self._resync_server = True
            for waiting in self._queue:  # their replies, or what is left of them, are lost
                waiting.cut = True
        if self._queue:
            self._flush_stale(out)
        while len(self._queue) >= MAX_PENDING:  # replies never seen (one direction not traced)
            self._finish(self._queue.popleft(), out)
        self._new_session(frame.start)  # a trace that starts mid-connection still names its session
        if frame.payload[0] == p.COM_CHANGE_USER:
            out.append(Secret(frame.start.call_index))  # a login again, with its auth response
        request = _Request(frame.payload[0], frame.payload, frame.truncated, frame.start)
        self._describe(request)
        out.append(Annotation(frame.start.call_index, self._annotation(request)))
        self._queue.append(request)
        self._advance(out)

    def _flush_stale(self, out: list[Output]) -> None:
        """A new request while older ones wait: their replies were lost or never come."""
        keep: deque[_Request] = deque()
        for request in self._queue:
            if request.cut or request.state == "optional_eof" or request.state == "opaque":
                if request.state == "optional_eof" and not request.cut:
                    request.end_time = request.end_time or self._last_server_time
                self._finish(request, out)
            else:
                keep.append(request)
        self._queue = keep

    def _describe(self, request: _Request) -> None:
        """The request's SQL text as sent (cut where the tracer cut it)."""
        command, payload = request.command, request.payload
        if command in (p.COM_QUERY, p.COM_STMT_PREPARE):
            body = payload[1:]
            if command == p.COM_QUERY and self._caps(p.CLIENT_QUERY_ATTRIBUTES):
                body = _skip_query_attributes(body)
            sql = p.text(body) or ""
            request.text = redact_sql(sql) if _MAY_HOLD_SECRET(sql) else sql
        elif command == p.COM_INIT_DB:
            request.text = "USE " + (p.text(payload[1:]) or "")
        elif command in (
            p.COM_STMT_EXECUTE,
            p.COM_STMT_CLOSE,
            p.COM_STMT_RESET,
            p.COM_STMT_SEND_LONG_DATA,
            p.COM_STMT_FETCH,
        ):
            if len(payload) >= 5:
                statement_id = int.from_bytes(payload[1:5], "little")
                request.statement_id = statement_id
                if statement_id == _LAST_STATEMENT:
                    # Resolved when its reply comes (the PREPARE before it may still wait for its own).
                    pending = [r for r in self._queue if r.command == p.COM_STMT_PREPARE]
                    if pending:
                        request.text = pending[-1].text
                        return
                statement = self._statement(request)
                if statement is not None:
                    request.text = statement.sql

    def _statement(self, request: _Request) -> _Statement | None:
        """The prepared statement a request names; MariaDB's -1 is the one prepared last."""
        if request.statement_id == _LAST_STATEMENT and self._last_statement is not None:
            request.statement_id = self._last_statement
        return self._statements.get(request.statement_id) if request.statement_id is not None else None

    def _annotation(self, request: _Request) -> str:
        name = p.COMMAND_NAMES.get(request.command, f"command 0x{request.command:02x}")
        if request.text is None:
            detail = f" {request.statement_id}" if request.statement_id is not None else ""
            noun = "" if name.endswith("statement") or not detail else " statement"
            return f"mysql {name}{noun}{detail}"
        text = request.text
        if len(text) > ANNOTATION_MAX:
            text = text[:ANNOTATION_MAX] + "..."
        return f"mysql {name}: {text}" + (" (cut)" if request.truncated else "")

    def _advance(self, out: list[Output]) -> None:
        """Settle requests that expect no reply once they reach the head of the queue."""
        while self._queue and self._queue[0].command in _NO_REPLY:
            request = self._queue.popleft()
            self._apply_no_reply(request)
            if request.command == p.COM_QUIT:
                self._send_session(out)

    def _apply_no_reply(self, request: _Request) -> None:
        if self._statement(request) is None:
            return
        if request.command == p.COM_STMT_CLOSE:
            self._statements.pop(request.statement_id, None)
        elif request.command == p.COM_STMT_SEND_LONG_DATA and len(request.payload) >= 7:
            statement = self._statements.get(request.statement_id)
            if statement is not None:
                statement.long_data.add(int.from_bytes(request.payload[5:7], "little"))

    # --- replies --------------------------------------------------------------------------------

    def _on_server(self, frame: Frame, out: list[Output]) -> None:
        if self._phase == "start":
            if frame.sequence_id == 0 and frame.payload[:1] == b"\x0a":
                self._on_greeting(frame, out)
                return
            if frame.sequence_id == 0 and frame.payload[:1] == b"\xff":
                self._new_session(frame.start)
                self._on_auth_reply(frame, out)
                return
            self._phase = "command"
        if self._phase == "login":
            return  # nothing expected before the client's login
        if self._phase == "auth":
            self._on_auth_reply(frame, out)
            return
        if not self._queue:
            return  # unsolicited (a timeout ERR) or the rest of a reply we lost
        request = self._queue[0]
        request.end_time = frame.end_time
        if request.state == "rows":
            payload = frame.payload
            if payload and payload[0] < 0xFE and len(request.sample) >= self.options.rows:
                # A row that is only counted: nothing in it needs parsing.
                request.rows = (request.rows or 0) + 1
                if frame.truncated:
                    request.partial = True
                return
        try:
            done = self._reply_packet(request, frame)
        except p.MySqlError:
            done = False  # a packet cut or malformed: the rest of this reply cannot be followed
            request.cut = True
        if frame.truncated:
            request.partial = True
        if done:
            self._queue.popleft()
            self._finish(request, out)
            self._advance(out)

    def _reply_packet(self, request: _Request, frame: Frame) -> bool:
        """Take one reply packet for `request`; True when its reply is complete."""
        payload = frame.payload
        first = payload[0] if payload else -1
        command, state = request.command, request.state
        if state == "opaque":
            return False
        if command in _RESULT_COMMANDS or command == p.COM_STMT_FETCH:
            return self._result_packet(request, payload, first)
        if command == p.COM_STMT_PREPARE:
            return self._prepare_packet(request, payload, first)
        if command == p.COM_FIELD_LIST:
            if first in (0xFF, 0xFE) and len(payload) < 0xFFFFFF:
                self._ok_or_err(request, payload, first)
                return True
            return False
        if command == p.COM_STATISTICS:
            request.status = "ok"
            return True
        if command == p.COM_CHANGE_USER:
            if first in (0x00, 0xFF):
                self._ok_or_err(request, payload, first)
                return True
            return False
        if command in _SIMPLE:
            self._ok_or_err(request, payload, first)
            if command == p.COM_STMT_RESET:
                statement = self._statement(request)
                if statement is not None:
                    statement.long_data.clear()
            return True
        request.state = "opaque"
        return False

    def _ok_or_err(self, request: _Request, payload: bytes, first: int) -> int:
        """Record an OK, ERR or EOF; returns the server status flags (0 when unknown)."""
        if first == 0xFF:
            err = p.parse_err(payload)
            request.status = "error"
            request.error_code = err.code
            request.error_message = err.message
            return 0
        request.status = "ok"
        if first == 0x00:
            ok = p.parse_ok(payload)
            request.affected_rows = (request.affected_rows or 0) + ok.affected_rows
            request.last_insert_id = ok.last_insert_id or request.last_insert_id
            return ok.status
        if first == 0xFE:
            if self._deprecate_eof_terminator(payload):
                return p.parse_ok(payload).status
            return p.eof_status(payload)
        return 0

    def _deprecate_eof_terminator(self, payload: bytes) -> bool:
        """A 0xfe packet ending a result set: an OK under CLIENT_DEPRECATE_EOF, else an EOF."""
        if payload[:1] != b"\xfe":
            return False
        known = self._caps(p.CLIENT_DEPRECATE_EOF)
        return bool(known) if known is not None else len(payload) != 5

    def _result_packet(self, request: _Request, payload: bytes, first: int) -> bool:
        state = request.state
        if request.command == p.COM_STMT_FETCH and state == "first":
            state = request.state = "rows"
            statement = self._statement(request)
            request.columns = list(statement.columns) if statement else []
        if state in ("first", "infile"):
            if first == 0xFF:
                err = p.parse_err(payload)
                if err.code == 0xFFFF:
                    return False  # MariaDB progress report
                self._ok_or_err(request, payload, first)
                return True
            if first == 0x00:
                status = self._ok_or_err(request, payload, first)
                return not status & p.SERVER_MORE_RESULTS_EXISTS
            if first == 0xFB and request.command == p.COM_QUERY:
                request.state = "infile"
                return False
            if first == 0xFE and p.is_eof(payload):
                request.status = "ok"
                return True
            metadata = True
            optional = self._caps(p.MARIADB_CLIENT_CACHE_METADATA) or self._caps(
                p.CLIENT_OPTIONAL_RESULTSET_METADATA
            )
            if 0 <= first < 0xFB:  # the usual one-byte column count
                count = first
                if optional and len(payload) > 1:
                    metadata = payload[1] != 0
            else:
                reader = p.Reader(payload)
                count = reader.lenenc() or 0
                if optional:
                    metadata = reader.int(1) != 0 if reader.remaining else True
            request.status = "ok"
            request.rows = request.rows or 0
            request.columns = []
            if metadata:
                request.state, request.left = "columns", count
            else:
                statement = self._statement(request)
                request.columns = list(statement.columns) if statement else []
                request.state = "after_columns"
            return False
        if state == "columns":
            try:
                column = p.parse_column(payload, bool(self._caps(p.MARIADB_CLIENT_EXTENDED_METADATA)))
            except p.MySqlError:
                column = p.Column(name="", type=p.TYPE_VAR_STRING)  # cut: its name is unknown
                request.cut = True
            request.columns.append(column)
            request.left -= 1
            if request.left <= 0:
                request.state = "after_columns"
                if not request.result_columns and not request.cut:
                    # A column is named after its expression: `SELECT PASSWORD('x')` names one PASSWORD('x').
                    request.result_columns = [
                        redact_sql(c.name) if _MAY_HOLD_SECRET(c.name) else c.name for c in request.columns
                    ]
                if request.command == p.COM_STMT_EXECUTE:
                    statement = self._statement(request)
                    if statement is not None:
                        statement.columns = list(request.columns)
            return False
        if state == "after_columns":
            request.state = "rows"
            if first == 0xFE and len(payload) < 9 and not self._deprecate_eof_terminator(payload):
                status = p.eof_status(payload)
                if status & p.SERVER_STATUS_CURSOR_EXISTS:
                    request.rows = None
                    return True
                return False
        if first == 0xFE and len(payload) < 0xFFFFFF:
            status = self._ok_or_err(request, payload, first)
            if status & p.SERVER_MORE_RESULTS_EXISTS:
                request.state = "first"
                return False
            return True
        if first == 0xFF:
            self._ok_or_err(request, payload, first)
            return True
        request.rows = (request.rows or 0) + 1
        if len(request.sample) < self.options.rows:
            binary = request.command in (p.COM_STMT_EXECUTE, p.COM_STMT_FETCH)
            try:
                row = p.parse_binary_row(payload, request.columns) if binary else p.parse_text_row(payload)
            except p.MySqlError:
                row = ["?"]
            request.sample.append([_redact_value(v) if v else v for v in row])
        return False

    def _prepare_packet(self, request: _Request, payload: bytes, first: int) -> bool:
        if request.state == "first":
            if first != 0x00:
                self._ok_or_err(request, payload, first)
                return True
            ok = p.parse_prepare_ok(payload)
            request.status = "ok"
            statement = _Statement(request.text or "", request.truncated, ok.num_params, ok.num_columns)
            self._statements[ok.statement_id] = statement
            self._last_statement = ok.statement_id
            request.prepared = statement
            request.statement_id = ok.statement_id
            request.state = "definitions"
            if self._caps(p.CLIENT_OPTIONAL_RESULTSET_METADATA) and not ok.metadata_follows:
                return True
            deprecate_eof = self._caps(p.CLIENT_DEPRECATE_EOF)
            eof = [] if deprecate_eof else ["eof"] if deprecate_eof is False else ["eof?"]
            request.slots = ["param"] * ok.num_params + (eof if ok.num_params else [])
            request.slots += ["column"] * ok.num_columns + (eof if ok.num_columns else [])
            request.slots.reverse()
            return self._prepare_settled(request)
        while request.slots:
            slot = request.slots.pop()
            if slot == "eof?" and not p.is_eof(payload):
                continue
            if slot == "column" and request.prepared is not None:
                try:
                    column = p.parse_column(payload, bool(self._caps(p.MARIADB_CLIENT_EXTENDED_METADATA)))
                except p.MySqlError:
                    column = p.Column(name="?", type=p.TYPE_VAR_STRING)
                request.prepared.columns.append(column)
            break
        return self._prepare_settled(request)

    @staticmethod
    def _prepare_settled(request: _Request) -> bool:
        """True when a PREPARE reply is complete; an optional EOF left waits for the next request."""
        if request.slots == ["eof?"]:
            request.state = "optional_eof"
        return not request.slots

    # --- records --------------------------------------------------------------------------------

    def _finish(self, request: _Request, out: list[Output]) -> None:
        command = request.command
        parameters: list[str | None] = []
        text = request.text
        truncated = request.truncated or request.cut or request.partial
        if command == p.COM_STMT_EXECUTE:
            statement = self._statement(request)
            if statement is None:
                text = text or f"/* prepared statement {request.statement_id} (its PREPARE was not seen) */"
            else:
                text = statement.sql
                truncated = truncated or statement.truncated
                parameters, ok = self._parameters(request, statement)
                truncated = truncated or not ok
                for index in secret_placeholders(statement.sql):
                    if index < len(parameters) and parameters[index] is not None:
                        parameters[index] = REDACTED
        elif command == p.COM_STMT_PREPARE:
            if request.status != "error":
                return
        elif command not in (p.COM_QUERY, p.COM_INIT_DB):
            return
        if request.cut and request.status == "unknown" and request.end_time is None:
            request.end_time = self._last_server_time
        text = text or ""
        tables, written = tables_in(text, truncated=truncated) if command != p.COM_INIT_DB else ([], [])
        start, end = request.at.time, request.end_time
        out.append(
            SqlQuery(
                protocol="mysql",
                process=request.at.pid,
                session=self.channel.channel_id,
                text=text,
                start=start,
                duration=(end - start) if start is not None and end is not None else None,
                status=request.status,
                error_code=request.error_code,
                error_message=request.error_message,
                rows=None if request.cut and request.status != "error" else request.rows,
                affected_rows=request.affected_rows,
                last_insert_id=request.last_insert_id,
                truncated=truncated,
                tables=tables,
                written_tables=written,
                parameters=parameters,
                columns=request.result_columns,
                sample_rows=request.sample,
            )
        )

    def _parameters(self, request: _Request, statement: _Statement) -> tuple[list[str | None], bool]:
        """The parameters of an execute; (values, decoded fully)."""
        try:
            execute = p.parse_execute(
                request.payload,
                statement.num_params,
                statement.param_types,
                frozenset(statement.long_data),
                partial=request.truncated,
            )
        except p.MySqlError:
            return [], False
        if execute.types is not None:
            statement.param_types = execute.types
        statement.long_data.clear()
        return execute.parameters, len(execute.parameters) == statement.num_params


def _redact_value(value: str) -> str:
    """A sampled value with any auth hash in it replaced (a password never travels in a result)."""
    if "*" not in value and "$" not in value and '":' not in value:
        return value
    return _HASH_IN_VALUE.sub(lambda m: f'{m["key"]}"{REDACTED}"' if m["key"] else REDACTED, value)


def _never(_head: bytes) -> bool:
    return False


def _skip_query_attributes(body: bytes) -> bytes:
    """COM_QUERY under CLIENT_QUERY_ATTRIBUTES (MySQL 8): the SQL after the attribute block."""
    try:
        return p.parse_query_attributes(body)[1]
    except p.MySqlError:
        return body
