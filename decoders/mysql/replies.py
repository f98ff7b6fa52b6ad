"""The server's stream: each packet goes to the request at the head of the queue, by its command.

OK, ERR and EOF settle the simple commands; result sets go to `resultset`, PREPARE replies to
`prepared`. A reply that cannot be followed (a packet cut or malformed) marks its request cut.
Which 0xfe packet is an EOF and which an OK says CLIENT_DEPRECATE_EOF (its length, when the login was
not seen).
"""

from __future__ import annotations

from decoders.mysql.state import Request
from decoders.mysql.stream import Frame
from decoders.records import Output, Secret
from protocols import mysql as p

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


class RepliesMixin:
    """The server's side of `MySqlDecoder`'s command phase (and its start, before the roles are known)."""

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
            if request.secret_columns and payload and payload[0] < 0xFE:
                # a row with a secret column (an auth hash, an API token): its call's bytes stay out
                # of the calls file, as a login's do
                out.append(Secret(frame.start.call_index))
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
        if request.answered:  # statements of a multi-statement query answered: sent as they come
            for answered in request.answered:
                self._finish_statement(answered, out)
            request.answered = None
        if done:
            self._queue.popleft()
            self._finish(request, out)
            self._advance(out)

    def _reply_packet(self, request: Request, frame: Frame) -> bool:
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

    def _ok_or_err(self, request: Request, payload: bytes, first: int) -> int:
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
