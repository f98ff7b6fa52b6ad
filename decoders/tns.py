"""Oracle sessions and statements from the TNS bytes of one channel (a TCP connection or BEQ pipes).

State machine, per channel:
- framing, per direction (`_Framer`): TNS packets with 2- or 4-byte lengths (4 once an ACCEPT of
  version >= 315 is seen, or when a header starts with two zero bytes). Bytes the tracer lost
  (`Chunk.missing`) are skipped exactly when they fall inside a packet whose length is known; the
  packet is then delivered cut. When a loss runs past a packet, the next chunk is checked for a
  header and, failing that, scanned for one (resynchronisation). A BEQ `NTP0 <pid>` line before the
  first packet is skipped.
- session: CONNECT (descriptor inline, or in the next DATA packet when long) gives protocol, host,
  port, SID or service, program and OS user; ACCEPT, REFUSE (reason, `ERR=`), REDIRECT are noted; the
  AUTH calls give the database user and public logon values (never the session key or password);
  the server's AUTH answer gives the version. One `DatabaseSession` per channel, sent after logon
  (or with the first statement when the capture started mid-session, or at close).
- statements: the client's DATA payloads between two server turns form one request, read as soon
  as its first packet arrives (so its `Annotation` lands on the call that sent it; SQL longer than
  one packet is completed when the turn ends). A piggyback (17) is skipped to the next call by
  sequence number (close-cursors piggybacks drop their cursors); OALL8 (94) gives options, cursor and SQL
  text; fetch (5) and re-execute (4, 78) name a cursor, tied to its SQL by the cursor id the server
  returned in its end-of-call message. The server's payloads until the next request form the reply:
  its end-of-call message gives the ORA- code (1403 "no data found" ends a fetch: success), the rows
  processed, the cursor; its describe info gives column names; row-data messages give the first
  rows (`--rows`, or the constructor's `max_rows`; none by default: they may be personal data).
  One `SqlQuery` per execution, sent when the next call that is not a fetch of its cursor begins (or
  at close). Replies past 1 MiB keep their head and their last 64 KiB.
- fallback: a request whose layout is not understood but holds a length byte followed by text that
  reads as SQL is reported with `confidence="heuristic"`; never in addition to a decoded statement.

Roles come from content: a CONNECT, or a function call (3) or piggyback (17) first in a DATA payload,
marks the client's direction; a BEQ `NTP0` line is read by the client. Else `channel.listening`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from decoders.api import ChannelInfo, Chunk, Decoder, DecoderOptions, Direction
from decoders.records import Annotation, DatabaseSession, Output, SqlQuery
from decoders.redact import redact_sql
from protocols import tns

MAX_BUFFER = 8 * 1024 * 1024  # bytes kept per direction while a packet is incomplete
MAX_TURN = 1024 * 1024  # request or reply bytes kept whole for analysis
TAIL_KEEP = 64 * 1024  # beyond MAX_TURN, only the last bytes are kept (where the end-of-call status is)
RESYNC_WINDOW = 64 * 1024  # how far to look for a header after lost bytes
ANO_MAGIC = b"\xde\xad\xbe\xef"
_DML = ("insert", "update", "delete", "merge")
_FIRST_TYPES = frozenset(
    {
        tns.PacketType.CONNECT,
        tns.PacketType.ACCEPT,
        tns.PacketType.REFUSE,
        tns.PacketType.REDIRECT,
        tns.PacketType.DATA,
        tns.PacketType.RESEND,
        tns.PacketType.MARKER,
        tns.PacketType.CONTROL,
    }
)
_FUNCTIONS = frozenset(int(f) for f in tns.Function)
_HEURISTIC_SQL = re.compile(rb"[\x06-\xfc](?=" + tns.SQL_START.pattern + rb")", re.I)


def _tables_in(sql: str, truncated: bool) -> tuple[list[str], list[str]]:
    """Tables named by the SQL, by the shared MySQL-side helper; none if it is unavailable."""
    try:
        from decoders.sql_tables import tables_in
    except ImportError:  # pragma: no cover - the helper ships with dockit
        return [], []
    try:
        return tables_in(sql, truncated)
    except Exception:  # noqa: BLE001 - table extraction must never break a trace
        return [], []


class _Framer:
    """TNS packets out of one direction's bytes, skipping what the tracer lost."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.pos = 0
        self.skip = 0  # bytes still to drop: the lost tail of a packet already delivered
        self.resync = False  # a loss ran past a packet boundary: the next header must be found
        self.large: bool | None = None  # None: detect per header
        self.started = False

    def feed(self, data: bytes, missing: int) -> list[tns.Packet]:
        if self.skip:
            dropped = min(self.skip, len(data))
            data = data[dropped:]
            self.skip -= dropped
        if not self.started and data:
            data = self._strip_beq_line(data)
        self.buf += data
        packets = self._drain()
        if missing:
            packets += self._lose(missing)
        self._compact()
        return packets

    def _strip_beq_line(self, data: bytes) -> bytes:
        """The bequeath adapter's `NTP0 <pid>` line precedes the first packet on BEQ pipes."""
        if data.startswith(b"NTP"):
            end = data.find(b"\n")
            if end >= 0:
                return data[end + 1 :]
        self.started = True
        return data

    def _header(self, offset: int) -> tns.Header | None:
        large = self.large if self.large else None
        return tns.parse_header(self.buf, offset, large)

    def _drain(self) -> list[tns.Packet]:
        out: list[tns.Packet] = []
        while len(self.buf) - self.pos >= tns.HEADER_SIZE:
            if self.resync and not self._find_header():
                break
            header = self._header(self.pos)
            if header is None:
                self.resync = True
                continue
            if len(self.buf) - self.pos < header.length:
                break
            body = bytes(self.buf[self.pos + tns.HEADER_SIZE : self.pos + header.length])
            out.append(tns.Packet(header.type, header.flags, body, header.length, header.large))
            self.pos += header.length
            self.started = True
        return out

    def _find_header(self) -> bool:
        """Move to the next offset that holds a plausible header; False if none is buffered yet."""
        end = min(len(self.buf) - tns.HEADER_SIZE, self.pos + RESYNC_WINDOW)
        for offset in range(self.pos, end + 1):
            header = self._header(offset)
            if header is not None and header.length <= tns.MAX_PACKET:
                self.pos = offset
                self.resync = False
                return True
        self.pos = max(self.pos, end + 1)
        return False

    def _lose(self, missing: int) -> list[tns.Packet]:
        """`missing` bytes were lost after the buffered ones: deliver the cut packet, plan the skip."""
        rest = len(self.buf) - self.pos
        header = self._header(self.pos) if rest >= tns.HEADER_SIZE and not self.resync else None
        out: list[tns.Packet] = []
        if header is not None:
            need = header.length - rest
            body = bytes(self.buf[self.pos + tns.HEADER_SIZE :])
            out.append(
                tns.Packet(header.type, header.flags, body, header.length, header.large, truncated=True)
            )
            if missing < need:
                self.skip = need - missing
            elif missing > need:
                self.resync = True  # whole packets may have been lost too: find the next header
        else:
            self.resync = True
        self.pos = len(self.buf)
        self.started = True
        return out

    def _compact(self) -> None:
        if self.pos:
            del self.buf[: self.pos]
            self.pos = 0
        if len(self.buf) > MAX_BUFFER:  # a packet that never completes: give up on it
            self.buf.clear()
            self.resync = True


@dataclass
class _Turn:
    """One side's TTC bytes between two turns of the other side: contiguous runs between losses."""

    segments: list[bytearray] = field(default_factory=lambda: [bytearray()])
    cut: list[bool] = field(default_factory=lambda: [False])
    start: float | None = None
    end: float | None = None
    call_index: int = 0
    pid: int = 0
    size: int = 0
    packets: int = 0
    parsed: bool = False  # read when its first packet arrived
    statement: _Statement | None = None  # the statement that reading started
    tail: bool = False  # past MAX_TURN: the last segment keeps only its last TAIL_KEEP bytes

    def add(self, payload: bytes, truncated: bool, chunk: Chunk) -> None:
        if self.start is None:
            self.start, self.call_index, self.pid = chunk.time, chunk.call_index, chunk.pid
        self.end = chunk.time
        self.size += len(payload)
        self.packets += 1
        self.segments[-1] += payload
        if len(self.segments[-1]) > MAX_TURN and not self.tail:
            # keep the head (describe info, first rows) and from now on only the tail (the status)
            self.cut[-1] = True
            self.segments.append(bytearray())
            self.cut.append(False)
            self.tail = True
        elif self.tail and len(self.segments[-1]) > TAIL_KEEP:
            del self.segments[-1][: len(self.segments[-1]) - TAIL_KEEP]
        if truncated:
            self.cut[-1] = True
            self.segments.append(bytearray())
            self.cut.append(False)

    @property
    def empty(self) -> bool:
        return self.size == 0


@dataclass
class _Statement:
    """One execution waiting for its replies (and for later fetches of its cursor)."""

    text: str
    truncated: bool
    chunk_time: float | None
    call_index: int
    pid: int
    cursor: int
    heuristic: bool = False
    end: float | None = None
    status: tns.CallStatus | None = None
    ora: tuple[int, str] | None = None
    columns: list[str] = field(default_factory=list)
    column_count: int | None = None
    rows: list[list[str | None]] = field(default_factory=list)
    replies: int = 0


class TnsDecoder(Decoder):
    """Oracle Net (TNS/TTC): one DatabaseSession per channel, one SqlQuery per statement execution."""

    name = "oracle"
    ports = frozenset({1521, 1522})

    def __init__(self, channel: ChannelInfo, max_rows: int | None = None) -> None:
        super().__init__(channel)
        if max_rows is not None:  # a decoder used on its own (a test): what `--rows` would say
            self.options = DecoderOptions(rows=max_rows)
        self.framers = {Direction.OUT: _Framer(), Direction.IN: _Framer()}
        self.client: Direction | None = None
        self.session: DatabaseSession | None = None
        self.session_sent = False
        self.descriptor = b""
        self.descriptor_pending = 0  # bytes of descriptor announced by a CONNECT, still to come
        self.descriptor_direction: Direction | None = None
        self.version: int | None = None
        self.request = _Turn()
        self.reply = _Turn()
        self.pending: _Statement | None = None
        self.cursors: dict[int, str] = {}
        self.extra: dict[str, str | int] = {}
        self.user: str | None = None
        self.server_version: str | None = None
        self.database: str | None = None
        self.connection_id: int | None = None
        self.start: float | None = None
        self.process = channel.pid
        self.layout = "native"  # the TTC representation, from the last execute call understood
        self.summary: dict[str, str] = {}  # what the connect descriptor said

    # ----------------------------------------------------------------------------------------------
    # detection

    @classmethod
    def score(cls, data: bytes, direction: Direction, channel: ChannelInfo) -> int:
        if data.startswith((b"NTP0 ", b"NTP1 ")):
            return 90  # the bequeath adapter's handshake line
        header = tns.parse_header(data, 0)
        if header is None or header.type not in _FIRST_TYPES or data[6:8] != b"\x00\x00":
            return 0
        if header.type == tns.PacketType.CONNECT:
            version = int.from_bytes(data[8:10], "big") if len(data) >= 10 else 0
            if not 300 <= version < 400:
                return 0
            return 100 if b"(DESCRIPTION" in data.upper() or len(data) == header.length else 60
        if len(data) < header.length:
            return 20
        if header.type == tns.PacketType.DATA and len(data) >= tns.HEADER_SIZE + 4:
            kind, function = data[tns.HEADER_SIZE + 2], data[tns.HEADER_SIZE + 3]
            if kind in (tns.MessageType.FUNCTION, tns.MessageType.PIGGYBACK) and function in _FUNCTIONS:
                return 80
            return 50 if len(data) == header.length else 30
        return 40 if len(data) == header.length else 25

    # ----------------------------------------------------------------------------------------------
    # feeding

    def feed(self, chunk: Chunk) -> Sequence[Output]:
        out: list[Output] = []
        if self.start is None:
            self.start = chunk.time
        if self.client is None and chunk.data.startswith(b"NTP"):
            self.client = chunk.direction.reverse()  # the adapter's line goes from server to client
        framer = self.framers[chunk.direction]
        try:
            packets = framer.feed(chunk.data, chunk.missing)
        except Exception:  # noqa: BLE001 - framing must never stop a trace
            framer.buf.clear()
            framer.pos, framer.resync = 0, True
            return out
        for packet in packets:
            out += self._packet(packet, chunk)
        return out

    def close(self, time: float | None) -> Sequence[Output]:
        out: list[Output] = []
        out += self._end_request_turn()
        out += self._finish_reply()
        out += self._finish_statement()
        out += self._send_session()
        return out

    def _is_client(self, direction: Direction) -> bool:
        if self.client is None:
            return direction is (Direction.IN if self.channel.listening else Direction.OUT)
        return direction is self.client

    def _packet(self, packet: tns.Packet, chunk: Chunk) -> list[Output]:
        kind = packet.type
        if kind == tns.PacketType.CONNECT:
            return self._connect(packet, chunk)
        if kind == tns.PacketType.ACCEPT:
            accept = tns.parse_accept(packet)
            if accept is not None:
                self.version = accept.version
                self.extra["TnsVersion"] = accept.version
                if accept.large_sdu:
                    for framer in self.framers.values():
                        framer.large = True
            return []
        if kind == tns.PacketType.REFUSE:
            refuse = tns.parse_refuse(packet)
            if refuse is not None:
                self.extra["Refused"] = refuse.error_code or refuse.user_reason
            return self._send_session()
        if kind == tns.PacketType.REDIRECT:
            target = tns.parse_redirect(packet)
            summary = tns.descriptor_summary(target.decode("latin-1"))
            if summary.get("host"):
                self.extra["RedirectTo"] = f"{summary['host']}:{summary.get('port', '')}".rstrip(":")
            return []
        if kind == tns.PacketType.DATA:
            return self._data(packet, chunk)
        return []  # MARKER (break/reset around an error), RESEND, CONTROL: nothing to report

    def _connect(self, packet: tns.Packet, chunk: Chunk) -> list[Output]:
        self.client = chunk.direction
        self.descriptor = b""  # a CONNECT sent again after a RESEND starts over
        connect = tns.parse_connect(packet)
        if connect is None:
            return []
        self.version = connect.version
        if connect.descriptor:
            self._descriptor(connect.descriptor)
        elif connect.data_length:
            self.descriptor_pending = connect.data_length
            self.descriptor_direction = chunk.direction
        return []

    def _descriptor(self, raw: bytes) -> None:
        self.descriptor += raw
        summary = tns.descriptor_summary(self.descriptor.decode("latin-1"))
        for key, name in (
            ("sid", "Sid"),
            ("service_name", "ServiceName"),
            ("program", "Program"),
            ("os_user", "OsUser"),
            ("client_host", "ClientHost"),
            ("protocol", "NetProtocol"),
        ):
            if key in summary:
                self.extra[name] = summary[key]
        self.summary = summary

    def _data(self, packet: tns.Packet, chunk: Chunk) -> list[Output]:
        flags, payload = tns.data_payload(packet.body)
        if self.descriptor_pending and chunk.direction is self.descriptor_direction:
            self._descriptor(payload[: self.descriptor_pending])
            self.descriptor_pending = 0
            return []
        if payload.startswith(ANO_MAGIC) or not payload:
            return []  # advanced networking negotiation, or an empty (EOF) packet
        if self.client is None:
            if payload[0] in (tns.MessageType.FUNCTION, tns.MessageType.PIGGYBACK):
                self.client = chunk.direction
            elif payload[0] in (
                tns.MessageType.ERROR,
                tns.MessageType.PARAMETER,
                tns.MessageType.DESCRIBE_INFO,
                tns.MessageType.ROW_HEADER,
            ):
                self.client = chunk.direction.reverse()
        out: list[Output] = []
        if self._is_client(chunk.direction):
            if not self.reply.empty:
                out += self._finish_reply()
            first = self.request.empty
            self.request.add(payload, packet.truncated, chunk)
            if first:
                out += self._parse_request_now()
        else:
            if not self.request.empty:
                out += self._end_request_turn()
            self.reply.add(payload, packet.truncated, chunk)
        return out

    # ----------------------------------------------------------------------------------------------
    # requests

    def _parse_request_now(self) -> list[Output]:
        """Read a request from its first packet, so its annotation lands on the call that sent it.

        A request longer than one packet (SQL beyond the SDU) is read again when its turn ends.
        """
        turn = self.request
        self.process = turn.pid or self.process
        before = self.pending
        try:
            out = self._request(turn)
        except Exception:  # noqa: BLE001 - one odd request must not switch the decoder off
            out = []
        turn.parsed = True
        if self.pending is not None and self.pending is not before:
            turn.statement = self.pending
            out.append(Annotation(turn.call_index, self._note(self.pending)))
        return out

    def _end_request_turn(self) -> list[Output]:
        turn, self.request = self.request, _Turn()
        if turn.empty or not turn.parsed:
            return []
        statement = turn.statement
        if turn.packets > 1 and statement is not None and statement is self.pending and statement.truncated:
            try:
                found = self._execute_text(turn)
            except Exception:  # noqa: BLE001
                found = None
            if found is not None and len(found[0]) > len(statement.text):
                statement.text, statement.truncated = found
        return []

    def _execute_text(self, turn: _Turn) -> tuple[str, bool] | None:
        """The SQL of the execute call in a whole request turn (after any piggybacks)."""
        data = turn.segments[0]
        pos = 0
        while pos + 3 <= len(data) and data[pos] == tns.MessageType.PIGGYBACK:
            following = tns.next_call(data, pos + 3, data[pos + 2])
            if following is None:
                return None
            pos = following
        call = tns.parse_execute(data[pos:])
        if call is None or call.sql is None:
            return None
        return call.text, call.truncated or (turn.cut[0] and len(call.text) < call.sql_length)

    def _request(self, turn: _Turn) -> list[Output]:
        data, cut = turn.segments[0], turn.cut[0]
        out: list[Output] = []
        pos = 0
        while pos + 3 <= len(data):
            kind, function, sequence = data[pos], data[pos + 1], data[pos + 2]
            if kind == tns.MessageType.PIGGYBACK:
                message = data[pos:]
                if function == tns.Function.CLOSE_CURSORS:
                    for cursor in tns.parse_close_cursors(message):
                        self.cursors.pop(cursor, None)
                following = tns.next_call(data, pos + 3, sequence)
                if following is None:
                    return out + self._heuristic(turn)
                pos = following
                continue
            if kind == tns.MessageType.FUNCTION:
                return out + self._call(function, data[pos:], turn, cut)
            if kind in (tns.MessageType.PROTOCOL, tns.MessageType.DATA_TYPES):
                return out  # logon negotiation
            break
        return out + self._heuristic(turn)

    def _call(self, function: int, message: bytearray, turn: _Turn, cut: bool) -> list[Output]:
        if function == tns.Function.EXECUTE:
            call = tns.parse_execute(message)
            if call is None:
                return self._heuristic(turn)
            self.layout = call.layout
            if call.sql is None:
                return self._reexecute(call.cursor, turn)
            out = self._finish_statement()
            text = call.text
            self.pending = _Statement(
                text,
                call.truncated or (cut and len(text) < call.sql_length),
                turn.start,
                turn.call_index,
                turn.pid,
                call.cursor,
            )
            return out
        if function == tns.Function.FETCH:
            cursor = tns.parse_cursor_call(message)
            if self.pending is not None and (
                not self.pending.cursor or cursor in (self.pending.cursor, None)
            ):
                if cursor:
                    self.pending.cursor = cursor  # its execute reply was cut before naming it
                return []  # more rows for the statement already pending
            return self._finish_statement()
        if function in (tns.Function.REEXECUTE, tns.Function.REEXECUTE_AND_FETCH):
            cursor = tns.parse_cursor_call(message)
            return self._reexecute(cursor, turn)
        if function in (tns.Function.AUTH_PHASE_ONE, tns.Function.AUTH_PHASE_TWO):
            user = tns.auth_user(message)
            if user:
                self.user = user
            self._logon_pairs(tns.auth_pairs(message))
            return self._finish_statement()
        return self._finish_statement()  # commit, rollback, logoff, close cursors, ping...

    def _reexecute(self, cursor: int | None, turn: _Turn) -> list[Output]:
        out = self._finish_statement()
        text = self.cursors.get(cursor) if cursor else None
        if text is None:
            return out  # a cursor parsed before the capture started: nothing to tie it to
        self.pending = _Statement(text, False, turn.start, turn.call_index, turn.pid, cursor or 0)
        return out

    def _heuristic(self, turn: _Turn) -> list[Output]:
        """A printable run after a length byte that reads as SQL, in a request not otherwise understood."""
        for data in turn.segments:
            for match in _HEURISTIC_SQL.finditer(data):
                pos = match.start()
                length = data[pos]
                raw = bytes(data[pos + 1 : pos + 1 + length])
                if not tns.is_printable(raw):
                    continue
                out = self._finish_statement()
                self.pending = _Statement(
                    raw.decode("utf-8", "replace"),
                    len(raw) < length,
                    turn.start,
                    turn.call_index,
                    turn.pid,
                    0,
                    heuristic=True,
                )
                return out
        return []

    def _logon_pairs(self, pairs: dict[str, str]) -> None:
        for key, name in (
            ("AUTH_PROGRAM_NM", "ClientProgram"),
            ("AUTH_MACHINE", "Machine"),
            ("AUTH_TERMINAL", "Terminal"),
            ("AUTH_PID", "ClientPid"),
            ("AUTH_SID", "OsUser"),
            ("AUTH_INSTANCENAME", "Instance"),
            ("AUTH_SC_SERVICE_NAME", "ServiceName"),
        ):
            if pairs.get(key):
                self.extra.setdefault(name, pairs[key])
        if pairs.get("AUTH_VERSION_NO", "").isdigit():
            self.server_version = tns.version_from_number(int(pairs["AUTH_VERSION_NO"]))
        if pairs.get("AUTH_DBNAME"):
            self.database = pairs["AUTH_DBNAME"]
        if pairs.get("AUTH_SESSION_ID", "").isdigit():
            self.connection_id = int(pairs["AUTH_SESSION_ID"])
        if pairs.get("AUTH_INSTANCENAME") and "Sid" not in self.extra:
            self.extra["Sid"] = pairs["AUTH_INSTANCENAME"]

    # ----------------------------------------------------------------------------------------------
    # replies

    def _finish_reply(self) -> list[Output]:
        turn, self.reply = self.reply, _Turn()
        if turn.empty:
            return []
        try:
            return self._reply(turn)
        except Exception:  # noqa: BLE001
            return []

    def _reply(self, turn: _Turn) -> list[Output]:
        out: list[Output] = []
        for segment in turn.segments:
            if b"AUTH_" in segment:
                self._logon_pairs(tns.auth_pairs(segment))
        if self.user and not self.session_sent and any(b"AUTH_VERSION" in s for s in turn.segments):
            out += self._send_session()
        statement = self.pending
        if statement is None:
            return out
        statement.end = turn.end
        statement.replies += 1
        for segment, cut in zip(turn.segments, turn.cut, strict=True):
            if not segment:
                continue
            if statement.column_count is None:
                count = tns.column_count(segment)
                names = tns.column_names(segment)
                if count:
                    statement.column_count = count
                    statement.columns = names[:count]
            keep = self.options.rows
            if statement.column_count and len(statement.rows) < keep:
                previous = statement.rows[-1] if statement.rows else None
                statement.rows += tns.scan_rows(
                    segment, statement.column_count, previous, keep - len(statement.rows)
                )
            status = tns.find_call_status(segment, whole=not cut, layout=self.layout)
            if status is not None:
                statement.status = status
            elif statement.ora is None:
                statement.ora = tns.find_ora_error(segment)
        if statement.status is not None and statement.status.cursor and not statement.heuristic:
            statement.cursor = statement.status.cursor
            if statement.text and not statement.truncated:
                self.cursors[statement.cursor] = statement.text
        return out

    # ----------------------------------------------------------------------------------------------
    # records

    def _finish_statement(self) -> list[Output]:
        statement, self.pending = self.pending, None
        if statement is None:
            return []
        out = self._send_session()
        status, code, message = "unknown", None, None
        rows = affected = None
        if statement.status is not None:
            result = statement.status
            status = "ok" if result.ok else "error"
            if not result.ok:
                code, message = f"ORA-{result.code:05d}", result.message
            lowered = statement.text.lstrip().lower()
            if lowered.startswith(_DML):
                affected = result.rows if result.ok else None
            elif result.ok and (lowered.startswith(("select", "with")) or statement.columns):
                rows = result.rows
        elif statement.ora is not None:
            status, code, message = "error", f"ORA-{statement.ora[0]:05d}", statement.ora[1]
        tables, written = _tables_in(statement.text, statement.truncated) if statement.text else ([], [])
        record = SqlQuery(
            protocol="oracle",
            process=statement.pid or self.process,
            session=self.channel.channel_id,
            text=redact_sql(statement.text),
            start=statement.chunk_time,
            duration=(statement.end - statement.chunk_time)
            if statement.end is not None and statement.chunk_time is not None
            else None,
            status=status,
            error_code=code,
            error_message=message,
            rows=rows,
            affected_rows=affected,
            truncated=statement.truncated,
            tables=tables,
            written_tables=written,
            columns=statement.columns,
            sample_rows=statement.rows,
            confidence="heuristic" if statement.heuristic else None,
        )
        out.append(record)
        return out

    @staticmethod
    def _note(statement: _Statement) -> str:
        if not statement.text:
            return "oracle sql: (text lost: cut by the tracer)"
        label = " ".join(statement.text.split())
        label = label if len(label) <= 200 else label[:200] + "..."
        return f"oracle sql: {label}" + (" [heuristic]" if statement.heuristic else "")

    def _send_session(self) -> list[Output]:
        if self.session_sent:
            return []
        self.session_sent = True
        summary = self.summary
        server = self.channel.server
        if server is None and summary.get("host"):
            server = f"{summary['host']}:{summary['port']}" if summary.get("port") else summary["host"]
        if server is None and summary.get("protocol", "").lower() == "beq" and summary.get("server_program"):
            server = f"beq:{summary['server_program']}"
        self.session = DatabaseSession(
            session_id=self.channel.channel_id,
            protocol="oracle",
            process=self.process,
            server=server,
            user=self.user,
            database=self.database,
            server_version=self.server_version,
            connection_id=self.connection_id,
            start=self.start,
            extra=dict(self.extra),
        )
        return [self.session]
