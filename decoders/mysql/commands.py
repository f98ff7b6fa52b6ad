"""The client's stream in the command phase: each command becomes a `Request` waiting for its reply.

A request is described (its SQL text as sent, redacted; `USE db` for COM_INIT_DB; the prepared text for
a statement id), annotated at the call that sent it, and queued: replies are matched first in, first
out. Requests whose replies cannot come (lost, never traced, beyond MAX_PENDING) are reported as they
are; those that expect no reply (COM_QUIT, COM_STMT_CLOSE, COM_STMT_SEND_LONG_DATA) are settled when
they reach the head of the queue.
"""

from __future__ import annotations

from collections import deque

from decoders.api import Direction
from decoders.mysql.prepared import LAST_STATEMENT
from decoders.mysql.redaction import MAY_HOLD_SECRET
from decoders.mysql.state import Request
from decoders.mysql.statements import split_statements
from decoders.mysql.stream import Frame
from decoders.records import Annotation, Output, Secret
from decoders.redact import redact_sql
from protocols import mysql as p

ANNOTATION_MAX = 500
MAX_PENDING = 64  # requests waiting for replies; beyond, the oldest are reported without one
_NO_REPLY = frozenset({p.COM_QUIT, p.COM_STMT_CLOSE, p.COM_STMT_SEND_LONG_DATA})


class CommandsMixin:
    """The client's side of `MySqlDecoder`'s command phase (its state: `_queue`, `_resync_server`)."""

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
        request = Request(frame.payload[0], frame.payload, frame.truncated, frame.start)
        self._describe(request)
        out.append(Annotation(frame.start.call_index, self._annotation(request)))
        self._queue.append(request)
        self._advance(out)

    def _flush_stale(self, out: list[Output]) -> None:
        """A new request while older ones wait: their replies were lost or never come."""
        keep: deque[Request] = deque()
        for request in self._queue:
            if request.cut or request.state == "optional_eof" or request.state == "opaque":
                if request.state == "optional_eof" and not request.cut:
                    request.end_time = request.end_time or self._last_server_time
                self._finish(request, out)
            else:
                keep.append(request)
        self._queue = keep

    def _describe(self, request: Request) -> None:
        """The request's SQL text as sent (cut where the tracer cut it)."""
        command, payload = request.command, request.payload
        if command in (p.COM_QUERY, p.COM_STMT_PREPARE):
            body = payload[1:]
            if command == p.COM_QUERY and self._caps(p.CLIENT_QUERY_ATTRIBUTES):
                body = _skip_query_attributes(body)
            sql = p.text(body) or ""
            request.text = redact_sql(sql) if MAY_HOLD_SECRET(sql) else sql
            if command == p.COM_QUERY and ";" in sql and self._caps(p.CLIENT_MULTI_STATEMENTS) is not False:
                statements = split_statements(request.text)
                if len(statements) > 1:
                    request.statements = tuple(statements)
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
                if statement_id == LAST_STATEMENT:
                    # Resolved when its reply comes (the PREPARE before it may still wait for its own).
                    pending = [r for r in self._queue if r.command == p.COM_STMT_PREPARE]
                    if pending:
                        request.text = pending[-1].text
                        return
                statement = self._statement(request)
                if statement is not None:
                    request.text = statement.sql

    def _annotation(self, request: Request) -> str:
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


def _skip_query_attributes(body: bytes) -> bytes:
    """COM_QUERY under CLIENT_QUERY_ATTRIBUTES (MySQL 8): the SQL after the attribute block."""
    try:
        return p.parse_query_attributes(body)[1]
    except p.MySqlError:
        return body
