"""The query half of a PostgreSQL connection: the client's requests matched with the server's answers,
one `SqlQuery` per statement execution. The package's `decoder` feeds it the command phase's messages.

Every request the server answers becomes an operation in a first-in, first-out queue; answers are
matched against the head:

- Query (simple protocol): one operation for the whole message, one execution per statement in it
  (decoders/postgres/sql.py splits them). Each CommandComplete, EmptyQueryResponse or ErrorResponse
  ends the current statement's execution and moves to the next; an error ends the message (the
  statements after it are not run, and get no record); ReadyForQuery ends the operation.
- Extended protocol: Parse, Bind, Describe, Execute, Close, Sync and FunctionCall are operations of
  their own, answered in order (ParseComplete, BindComplete, ParameterDescription and RowDescription
  or NoData, rows then CommandComplete / EmptyQueryResponse / PortalSuspended, CloseComplete,
  ReadyForQuery). Statements and portals are kept by name, so an Execute knows the SQL its portal was
  bound to, the parameters (decoded by format code and type OID from the Parse or the server's
  ParameterDescription) and the columns (from a Describe). An ErrorResponse answers the head; the
  server then skips every message up to the next Sync, and so does this queue (no record for them).
  A Parse or Bind that fails gives a record with its error, as no Execute will.
- COPY: a CopyInResponse or CopyOutResponse turns the current execution into a copy; the CopyData
  bytes either way are counted (`Bytes`), the final CommandComplete gives the rows (`COPY n`).

Where the answers cannot be trusted (the server stream lost step, or an answer that does not fit the
head), the pending executions are marked cut and the answers are dropped up to the next ReadyForQuery,
the one point where both sides agree again: everything waiting is then finished as it is (which
ReadyForQuery that was cannot be told), and the next request starts in step. Requests never answered (one direction not traced) wait up to MAX_PENDING; older
ones are reported with status "unknown", as are those still waiting at close.
"""

from __future__ import annotations

import re
from collections import deque

from decoders.postgres.search_path import after_set
from decoders.postgres.sql import redact_value, secret_parameters, split_statements
from decoders.postgres.stream import Frame
from decoders.records import Annotation, AttrValue, Output, SqlQuery
from decoders.redact import REDACTED, redact_sql
from decoders.sql_tables import qualified, tables_in
from protocols import postgres as p
from protocols.postgres.values import value_text

PROTOCOL = "postgresql"
ANNOTATION_MAX = 500
MAX_PENDING = 10_000  # operations waiting for answers (a pipeline of 2,500 queries before its Sync)
MAX_TABLE_OIDS = 1024  # table OIDs a connection learned the names of (RowDescription names tables by OID)
MAX_STATEMENTS = 4096  # named statements and portals kept (drivers cache about a hundred)
_MAY_HOLD_SECRET = re.compile("IDENTIFIED|PASSWORD", re.I).search
# The answers that only end the request at the head of the queue, and the request each ends.
_SIMPLE_COMPLETIONS = {p.PARSE_COMPLETE: p.PARSE, p.BIND_COMPLETE: p.BIND, p.CLOSE_COMPLETE: p.CLOSE}
# Operations that ReadyForQuery ends.
_ENDS_AT_READY = frozenset({p.QUERY, p.SYNC, p.FUNCTION_CALL})


class Statement:
    """A prepared statement: its SQL, parameter types (Parse, then ParameterDescription), columns."""

    __slots__ = ("text", "truncated", "param_types", "fields", "name")

    def __init__(self, text: str, truncated: bool, param_types: tuple[int, ...], name: str) -> None:
        self.text = text
        self.truncated = truncated
        self.param_types = param_types
        self.fields: tuple[p.Field, ...] | None = None
        self.name = name


class Portal:
    """A bound statement: the statement, the Bind (raw values and formats), its columns once described."""

    __slots__ = ("statement", "statement_name", "bind", "truncated", "fields")

    def __init__(
        self, statement: Statement | None, statement_name: str, bind: p.Bind | None, truncated: bool
    ) -> None:
        self.statement = statement
        self.statement_name = statement_name
        self.bind = bind
        self.truncated = truncated
        self.fields: tuple[p.Field, ...] | None = None


class Execution:
    """One statement execution on its way to a `SqlQuery`. (No __slots__: what most executions leave
    at its class default is not set at all.)"""

    end_time: float | None = None
    fields: tuple[p.Field, ...] | None = None
    formats: tuple[int, ...] = ()
    rows_seen = 0
    status = "unknown"
    error_code: str | None = None
    error_message: str | None = None
    tag: p.CommandTag | None = None
    cut = False  # answers to it were lost: its counts are unknown
    copy: str | None = None  # "in", "out" or "both" once the server started a COPY
    copy_bytes = 0

    def __init__(
        self, text: str, truncated: bool, time: float | None, pid: int, portal: Portal | None = None
    ) -> None:
        self.text = text
        self.truncated = truncated
        self.time = time
        self.pid = pid
        self.portal = portal
        self.sample: list[list[str | None]] = []
        self.extra: dict[str, AttrValue] = {}
        self.notices: list[tuple[str, str, str]] = []


class Operation:
    """A client message the server answers. (No __slots__: the attributes most operations leave at
    their class default are not set at all, which makes the several made per execution cheaper.)"""

    describe = ""  # Describe and Close: "S" statement or "P" portal
    statements: list[tuple[str, bool]] = []  # Query: (text, cut) per statement (set, never appended to)
    index = 0  # Query: the statement being answered
    execution: Execution | None = None
    statement: Statement | None = None
    portal: Portal | None = None

    def __init__(self, kind: int, frame: Frame, name: str = "") -> None:
        self.kind = kind
        self.time = frame.time
        self.pid = frame.pid
        self.name = name


class QueryProtocol:
    """Requests and answers of the command phase, for one connection."""

    def __init__(self, session_id: str, rows: int) -> None:
        self.session_id = session_id
        self.rows = rows  # `--rows N`: rows of each result kept
        self.queue: deque[Operation] = deque()
        self.statements: dict[str, Statement] = {}
        self.portals: dict[str, Portal] = {}
        self.copy_in: Execution | None = None
        self.confused = False  # answers are dropped until the next ReadyForQuery
        self.client_damaged = False  # requests were lost: a statement or portal not known may be one of them
        self.skipping = False  # an error made the server skip the client's messages until its Sync
        self.parsed_at: tuple[int, Statement] | None = None  # the last Parse's call, for annotations
        self.last_server_time: float | None = None
        self.tables_seen: dict[tuple[str, bool], tuple[list[str], list[str]]] = {}
        # The schema unqualified table names resolve to (search_path.py); None when not known (the
        # startup was not traced)
        self.schema: str | None = None
        self.table_oids: dict[int, str] = {}  # table OID -> its name, learned from texts that named it

    # --- client ----------------------------------------------------------------------------------

    def client(self, frame: Frame, out: list[Output]) -> None:
        kind = frame.type
        if kind == p.SYNC and not self.skipping:  # the commonest messages first
            self.queue.append(Operation(p.SYNC, frame))
            return
        if kind == p.COPY_DATA:
            if self.copy_in is not None:
                self.copy_in.copy_bytes += frame.length
            return
        if kind in (p.COPY_DONE, p.COPY_FAIL):
            if self.copy_in is not None:
                what = "done" if kind == p.COPY_DONE else "failed"
                note = f"postgresql copy {what}: {self.copy_in.copy_bytes} bytes sent"
                out.append(Annotation(frame.call_index, note))
                self.copy_in = None
            return
        if kind == p.FLUSH:
            return
        if self.skipping:
            if kind != p.SYNC:
                return  # the server reads it and does nothing with it
            self.skipping = False
        if len(self.queue) >= MAX_PENDING:
            self._drop_oldest(out)
        if kind == p.QUERY:
            self._query(frame, out)
        elif kind == p.PARSE:
            self._parse(frame, out)
        elif kind == p.BIND:
            self._bind(frame)
        elif kind == p.EXECUTE:
            self._execute(frame, out)
        elif kind == p.DESCRIBE:
            self._describe(frame)
        elif kind == p.CLOSE:
            self._close(frame, out)
        elif kind == p.SYNC:
            self.queue.append(Operation(p.SYNC, frame))
        elif kind == p.FUNCTION_CALL:
            operation = Operation(p.FUNCTION_CALL, frame)
            self.queue.append(operation)
            try:
                out.append(
                    Annotation(
                        frame.call_index, f"postgresql function call {p.parse_function_call(frame.body)}"
                    )
                )
            except p.PgError:
                out.append(Annotation(frame.call_index, "postgresql function call"))

    def _query(self, frame: Frame, out: list[Output]) -> None:
        sql = p.parse_query(frame.body)
        cut = frame.truncated or frame.capped or (b"\0" not in frame.body)
        if _MAY_HOLD_SECRET(sql):
            sql = redact_sql(sql)
        operation = Operation(p.QUERY, frame)
        texts = split_statements(sql)
        operation.statements = [(text, cut and i == len(texts) - 1) for i, text in enumerate(texts)]
        operation.execution = Execution(texts[0], operation.statements[0][1], frame.time, frame.pid)
        self.queue.append(operation)
        out.append(
            Annotation(frame.call_index, "postgresql query: " + _short(sql) + (" (cut)" if cut else ""))
        )

    def _parse(self, frame: Frame, out: list[Output]) -> None:
        cut = frame.truncated or frame.capped
        try:
            parse = p.parse_parse(frame.body)
            name, sql, types = parse.statement, parse.query, parse.param_types
        except p.PgError:
            name, sql = p.parse_parse_partial(frame.body)
            types, cut = (), True
        if _MAY_HOLD_SECRET(sql):
            sql = redact_sql(sql)
        statement = Statement(sql, cut, types, name)
        self._keep(self.statements, name, statement)
        operation = Operation(p.PARSE, frame, name)
        operation.statement = statement
        self.queue.append(operation)
        self.parsed_at = (frame.call_index, statement)
        label = f"postgresql parse {name}: " if name else "postgresql parse: "
        out.append(Annotation(frame.call_index, label + _short(sql) + (" (cut)" if cut else "")))

    def _bind(self, frame: Frame) -> None:
        try:
            bind: p.Bind | None = p.parse_bind(frame.body)
            assert bind is not None
            portal_name, statement_name = bind.portal, bind.statement
            truncated = frame.truncated or frame.capped
        except p.PgError:
            bind = None
            portal_name, statement_name = p.parse_bind_names(frame.body)
            truncated = True
        portal = Portal(self.statements.get(statement_name), statement_name, bind, truncated)
        self._keep(self.portals, portal_name, portal)
        operation = Operation(p.BIND, frame, portal_name)
        operation.portal = portal
        self.queue.append(operation)

    def _execute(self, frame: Frame, out: list[Output]) -> None:
        body = frame.body
        end = body.find(b"\0")
        name = p.text(body[:end]) if end > 0 else ""
        max_rows = int.from_bytes(body[end + 1 : end + 5], "big", signed=True) if end >= 0 else 0
        portal = self.portals.get(name)
        if portal is None:
            text, truncated = (
                f"/* portal {name or '(unnamed)'} (its Bind was not seen) */",
                self.client_damaged,
            )
        else:
            text, truncated = self._portal_text(portal)
        execution = Execution(text, truncated, frame.time, frame.pid, portal)
        if max_rows > 0:
            execution.extra["MaxRows"] = max_rows
        operation = Operation(p.EXECUTE, frame, name)
        operation.portal = portal
        operation.execution = execution
        self.queue.append(operation)
        statement = portal.statement if portal is not None else None
        if (
            self.parsed_at is not None
            and statement is not None
            and self.parsed_at == (frame.call_index, statement)
        ):
            out.append(Annotation(frame.call_index, "postgresql execute"))
        else:
            out.append(Annotation(frame.call_index, "postgresql execute: " + _short(text)))

    def _portal_text(self, portal: Portal) -> tuple[str, bool]:
        statement = portal.statement
        if statement is None:
            name = portal.statement_name or "(unnamed)"
            return f"/* prepared statement {name} (its Parse was not seen) */", self.client_damaged
        return statement.text, statement.truncated

    def _describe(self, frame: Frame) -> None:
        body = frame.body
        kind = "S" if body[:1] == b"S" else "P" if body[:1] == b"P" else "?"
        name = p.text(body[1:-1]) if len(body) > 2 else ""
        operation = Operation(p.DESCRIBE, frame, name)
        operation.describe = kind
        if kind == "S":
            operation.statement = self.statements.get(name)
        elif kind == "P":
            operation.portal = self.portals.get(name)
        self.queue.append(operation)

    def _close(self, frame: Frame, out: list[Output]) -> None:
        try:
            kind, name = p.parse_describe(frame.body)
        except p.PgError:
            kind, name = "?", ""
        if kind == "S":
            self.statements.pop(name, None)
        elif kind == "P":
            self.portals.pop(name, None)
        operation = Operation(p.CLOSE, frame, name)
        operation.describe = kind
        self.queue.append(operation)
        if name:
            noun = "statement" if kind == "S" else "portal"
            out.append(Annotation(frame.call_index, f"postgresql close {noun} {name}"))

    @staticmethod
    def _keep(table: dict, name: str, value: object) -> None:
        table.pop(name, None)  # re-inserted last: the oldest is the first to go
        table[name] = value
        if len(table) > MAX_STATEMENTS:
            del table[next(iter(table))]

    def _drop_oldest(self, out: list[Output]) -> None:
        """Answers never seen (one direction not traced): the oldest request goes out unanswered."""
        self._settle(self.queue.popleft(), out, None)

    def _settle(self, operation: Operation, out: list[Output], end_time: float | None) -> None:
        """An operation leaves the queue without the rest of its answers: its executions go out with
        what is known (unknown status, or cut when answers were lost)."""
        if operation.kind == p.QUERY:
            self._finish_query_rest(operation, out, end_time)
        elif operation.kind == p.EXECUTE and operation.execution is not None:
            execution = operation.execution
            if execution.cut:
                execution.end_time = execution.end_time or end_time
            self._emit(execution, out)

    # --- server ----------------------------------------------------------------------------------

    def server(self, frame: Frame, out: list[Output]) -> None:
        kind = frame.type
        self.last_server_time = frame.end_time
        if kind == p.READY_FOR_QUERY:
            self._ready(frame, out)
            return
        if kind == p.NOTICE_RESPONSE:
            self._notice(frame, out)
            return
        if self.confused:
            return
        if kind == p.COPY_DATA:
            execution = self._current()
            if execution is not None and execution.copy in ("out", "both"):
                execution.copy_bytes += frame.length
            return
        if kind == p.COPY_DONE:
            return
        if not self.queue:
            if kind == p.ERROR_RESPONSE:
                self._unsolicited_error(frame, out)
            return  # answers to requests not traced (a trace attached mid-way)
        operation = self.queue[0]
        if kind in _SIMPLE_COMPLETIONS:  # ParseComplete, BindComplete, CloseComplete
            if operation.kind != _SIMPLE_COMPLETIONS[kind]:
                self._confuse(out)
                return
            self.queue.popleft()
            return
        if kind == p.DATA_ROW:
            execution = operation.execution
            if execution is None or operation.kind not in (p.QUERY, p.EXECUTE):
                self._confuse(out)
                return
            execution.rows_seen += 1
            if len(execution.sample) < self.rows:
                self._sample(execution, frame)
            return
        if kind == p.ERROR_RESPONSE:
            self._error(operation, frame, out)
        elif kind == p.COMMAND_COMPLETE or kind == p.EMPTY_QUERY or kind == p.PORTAL_SUSPENDED:
            self._complete(operation, frame, out)
        elif kind == p.ROW_DESCRIPTION:
            self._row_description(operation, frame, out)
        elif kind == p.PARAMETER_DESCRIPTION:
            if operation.kind != p.DESCRIBE or operation.describe != "S":
                self._confuse(out)
                return
            if operation.statement is not None:
                try:
                    operation.statement.param_types = p.parse_parameter_description(frame.body)
                except p.PgError:
                    pass
        elif kind == p.NO_DATA:
            if operation.kind != p.DESCRIBE:
                self._confuse(out)
                return
            if operation.describe == "S" and operation.statement is not None:
                operation.statement.fields = []
            elif operation.portal is not None:
                operation.portal.fields = []
            self.queue.popleft()
        elif kind in (p.COPY_IN_RESPONSE, p.COPY_OUT_RESPONSE, p.COPY_BOTH_RESPONSE):
            self._copy(operation, frame, out)
        elif kind == p.FUNCTION_CALL_RESPONSE:
            if operation.kind != p.FUNCTION_CALL:
                self._confuse(out)

    def _current(self) -> Execution | None:
        return self.queue[0].execution if self.queue else None

    def _row_description(self, operation: Operation, frame: Frame, out: list[Output]) -> None:
        try:
            fields = p.parse_row_description(frame.body)
        except p.PgError:
            fields = None
        if operation.kind == p.DESCRIBE:
            if operation.describe == "S" and operation.statement is not None:
                operation.statement.fields = fields
            elif operation.portal is not None:
                operation.portal.fields = fields
            self.queue.popleft()
            return
        execution = operation.execution
        if operation.kind != p.QUERY or execution is None:
            self._confuse(out)
            return
        if fields is None:
            execution.cut = True
            return
        execution.fields = fields
        execution.formats = tuple(f.format for f in fields)

    def _sample(self, execution: Execution, frame: Frame) -> None:
        try:
            values = p.parse_data_row(frame.body)
        except p.PgError:
            execution.sample.append(["?"])
            return
        if execution.fields is None and execution.portal is not None:
            self._result_shape(execution)
        fields = execution.fields or []
        formats = execution.formats
        row: list[str | None] = []
        for index, raw in enumerate(values):
            if raw is None:
                row.append(None)
                continue
            oid = fields[index].type_oid if index < len(fields) else 0
            row.append(redact_value(value_text(raw, p.format_at(formats, index), oid)))
        if frame.truncated or frame.capped:
            execution.truncated = True
        execution.sample.append(row)

    @staticmethod
    def _result_shape(execution: Execution) -> None:
        """An Execute's columns and formats: its portal's Describe, else the statement's with the
        Bind's result formats."""
        portal = execution.portal
        if portal is None:
            return
        if portal.fields is not None:
            execution.fields = portal.fields
            execution.formats = tuple(f.format for f in portal.fields)
            return
        if portal.statement is not None and portal.statement.fields is not None:
            execution.fields = portal.statement.fields
        if portal.bind is not None:
            execution.formats = portal.bind.result_formats

    def _complete(self, operation: Operation, frame: Frame, out: list[Output]) -> None:
        execution = operation.execution
        if operation.kind not in (p.QUERY, p.EXECUTE) or execution is None:
            self._confuse(out)
            return
        if frame.type == p.COMMAND_COMPLETE:
            execution.tag = p.parse_command_complete(frame.body)
        elif frame.type == p.PORTAL_SUSPENDED:
            if operation.kind != p.EXECUTE:
                self._confuse(out)
                return
            execution.extra["Suspended"] = "true"
        execution.status = "ok"
        execution.end_time = frame.end_time
        if self.copy_in is execution:
            self.copy_in = None
        self._emit(execution, out)
        self._next_statement(operation, frame)

    def _next_statement(self, operation: Operation, frame: Frame) -> None:
        """The operation's current execution is done: a Query moves to its next statement."""
        if operation.kind == p.QUERY:
            operation.index += 1
            if operation.index < len(operation.statements):
                text, cut = operation.statements[operation.index]
                # It starts when the one before it ended.
                operation.execution = Execution(text, cut, frame.end_time, operation.pid)
                return
            operation.execution = None
            return
        if self.queue and self.queue[0] is operation:
            self.queue.popleft()

    def _error(self, operation: Operation, frame: Frame, out: list[Output]) -> None:
        fields = p.parse_fields(frame.body)
        execution = operation.execution if operation.kind in (p.QUERY, p.EXECUTE) else self._failed(operation)
        out.append(Annotation(frame.call_index, _error_note(fields)))
        if execution is not None:
            _apply_error(execution, fields)
            execution.end_time = frame.end_time
            if self.copy_in is execution:
                self.copy_in = None
            self._emit(execution, out)
        if operation.kind == p.QUERY:
            operation.execution = None  # the statements after the failed one are not run
            operation.index = len(operation.statements)
            return
        if operation.kind in (p.SYNC, p.FUNCTION_CALL):
            operation.execution = None
            return  # ReadyForQuery follows and ends it
        self.queue.popleft()
        if operation.kind == p.PARSE and self.statements.get(operation.name) is operation.statement:
            del self.statements[operation.name]  # the server has no such statement
        # The server skips every message up to the next Sync (the client may not have sent it yet).
        while self.queue and self.queue[0].kind != p.SYNC:
            self.queue.popleft()
        self.skipping = not self.queue

    def _failed(self, operation: Operation) -> Execution:
        """The record of a request other than Query or Execute that the server refused: a Parse (its
        SQL), a Bind (its statement and parameters), a Describe, Close, Sync or FunctionCall."""
        if operation.kind == p.PARSE and operation.statement is not None:
            statement = operation.statement
            return Execution(statement.text, statement.truncated, operation.time, operation.pid)
        if operation.kind == p.BIND and operation.portal is not None:
            text, truncated = self._portal_text(operation.portal)
            return Execution(text, truncated, operation.time, operation.pid, operation.portal)
        what = {p.SYNC: "sync", p.DESCRIBE: "describe", p.CLOSE: "close", p.FUNCTION_CALL: "function call"}
        name = f" {operation.name}" if operation.name else ""
        return Execution(
            f"/* {what.get(operation.kind, 'request')}{name} */", False, operation.time, operation.pid
        )

    def _unsolicited_error(self, frame: Frame, out: list[Output]) -> None:
        """An error with no request waiting: a FATAL at shutdown, or an answer to a request not traced."""
        out.append(Annotation(frame.call_index, _error_note(p.parse_fields(frame.body))))

    def _notice(self, frame: Frame, out: list[Output]) -> None:
        fields = p.parse_fields(frame.body)
        severity = fields.get(p.FIELD_SEVERITY_PLAIN) or fields.get(p.FIELD_SEVERITY) or "NOTICE"
        code = fields.get(p.FIELD_CODE, "")
        message = fields.get(p.FIELD_MESSAGE, "")
        out.append(Annotation(frame.call_index, f"postgresql {severity.lower()} {code}: {_short(message)}"))
        execution = self._current()
        if execution is not None and not self.confused:
            execution.notices.append((severity, code, message))

    def _copy(self, operation: Operation, frame: Frame, out: list[Output]) -> None:
        execution = operation.execution
        if operation.kind not in (p.QUERY, p.EXECUTE) or execution is None:
            self._confuse(out)
            return
        kind = {p.COPY_IN_RESPONSE: "in", p.COPY_OUT_RESPONSE: "out", p.COPY_BOTH_RESPONSE: "both"}[
            frame.type
        ]
        execution.copy = kind
        execution.extra["Copy"] = kind
        if kind in ("in", "both"):
            self.copy_in = execution
        try:
            response = p.parse_copy_response(frame.body)
            execution.extra["CopyFormat"] = "binary" if response.format else "text"
        except p.PgError:
            pass

    def _ready(self, frame: Frame, out: list[Output]) -> None:
        """ReadyForQuery ends the operations up to the first Query, Sync or FunctionCall. When none
        waits, it answers a Sync that was not seen: after lost bytes everything waiting goes with it,
        else (a trace attached between a Sync and its answer) nothing does."""
        if not any(operation.kind in _ENDS_AT_READY for operation in self.queue) and not self.confused:
            return
        while self.queue:
            operation = self.queue.popleft()
            self._settle(operation, out, frame.end_time)
            if operation.kind in _ENDS_AT_READY and not self.confused:
                break
        # (After lost answers, which ReadyForQuery this is cannot be told: everything waiting goes, and
        # the next request starts in step.)
        self.confused = False
        self.copy_in = None

    def _finish_query_rest(
        self, operation: Operation, out: list[Output], end_time: float | None = None
    ) -> None:
        """A Query's statements that got no answer (lost, or the trace ended): reported unknown."""
        while operation.index < len(operation.statements):
            execution = operation.execution
            if execution is None:
                text, cut = operation.statements[operation.index]
                execution = Execution(text, cut, operation.time, operation.pid)
            if execution.status == "unknown" and not execution.cut and self.confused:
                execution.cut = True
            if execution.cut:
                execution.end_time = execution.end_time or end_time
            self._emit(execution, out)
            operation.index += 1
            operation.execution = None

    def _confuse(self, out: list[Output]) -> None:
        """An answer that fits no request waiting: drop answers up to the next ReadyForQuery."""
        self.confused = True
        for operation in self.queue:
            if operation.execution is not None:
                operation.execution.cut = True

    def server_lost(self) -> None:
        """The server stream lost bytes it cannot skip: its answers resume at a later message."""
        self.confused = True
        for operation in self.queue:
            if operation.execution is not None:
                operation.execution.cut = True

    def client_lost(self) -> None:
        """The client stream lost requests: answers to them would be taken for answers to later
        ones, so they are dropped up to the next ReadyForQuery."""
        self.confused = True
        self.client_damaged = True
        for operation in self.queue:
            if operation.execution is not None:
                operation.execution.cut = True

    def close(self, out: list[Output]) -> None:
        """The connection or the trace ended: what still waits goes out with what is known."""
        while self.queue:
            self._settle(self.queue.popleft(), out, self.last_server_time)
        self.statements.clear()
        self.portals.clear()
        self.copy_in = None
        self.parsed_at = None

    # --- records ---------------------------------------------------------------------------------

    def _emit(self, execution: Execution, out: list[Output]) -> None:
        if execution.status == "unknown" and not execution.cut:
            execution.end_time = None
        if execution.fields is None and execution.portal is not None:
            self._result_shape(execution)
        parameters: list[str | None] = []
        truncated = execution.truncated or execution.cut
        text_cut = execution.truncated  # the text itself cut (not only its answers): its last name may be too
        portal = execution.portal
        if portal is not None:
            truncated = truncated or portal.truncated
            text_cut = text_cut or portal.truncated
            parameters = self._parameters(portal, execution.text)
        tag = execution.tag
        extra = execution.extra
        rows: int | None = None
        affected: int | None = None
        if tag is not None:
            extra["Command"] = tag.command
            rows, affected = tag.rows, tag.affected
        if execution.status == "ok" and rows is None and (execution.rows_seen or execution.fields):
            rows = execution.rows_seen  # SHOW, or a portal suspended after N rows
        if execution.cut and execution.status != "error":
            rows = None if tag is None else rows
        if execution.copy is not None:
            extra["Bytes"] = execution.copy_bytes
        tables, written = self._tables(execution.text, text_cut)
        schema = self.schema
        resolved = [qualified(t, schema) for t in tables]
        if execution.fields and (tag is None or tag.command == "SELECT"):
            self._tables_by_oid(execution.fields, text_cut, tables, written, resolved)
        if execution.status == "ok" and tag is not None and tag.command in ("SET", "RESET"):
            changed = after_set(execution.text)
            if changed is not False:
                self.schema = changed  # type: ignore[assignment]
        start, end = execution.time, execution.end_time
        columns = [f.name for f in execution.fields] if execution.fields else []
        out.append(
            SqlQuery(
                protocol=PROTOCOL,
                process=execution.pid,
                session=self.session_id,
                text=execution.text,
                start=start,
                duration=(end - start) if start is not None and end is not None else None,
                status=execution.status,
                error_code=execution.error_code,
                error_message=execution.error_message,
                rows=rows,
                affected_rows=affected,
                truncated=truncated,
                tables=tables,
                written_tables=written,
                resolved_tables=resolved,
                parameters=parameters,
                columns=columns,
                sample_rows=execution.sample,
                extra=extra,
                notices=execution.notices,
            )
        )

    def _tables_by_oid(
        self,
        fields: tuple[p.Field, ...],
        truncated: bool,
        tables: list[str],
        written: list[str],
        resolved: list[str | None],
    ) -> None:
        """A RowDescription names its columns' tables by OID only. A complete SELECT of one table whose
        columns all come from one OID teaches the connection that OID's name; a SELECT whose text was
        cut gets the tables its columns' OIDs were learned as (the others stay unknown)."""
        oids = list(dict.fromkeys(f.table_oid for f in fields if f.table_oid))
        if not oids:
            return
        if truncated:
            for oid in oids:
                name = self.table_oids.get(oid)
                if name is not None and name not in resolved:
                    tables.append(name)
                    resolved.append(name)
        elif len(oids) == 1 and len(tables) == 1 and not written and resolved[0] is not None:
            if len(self.table_oids) < MAX_TABLE_OIDS or oids[0] in self.table_oids:
                self.table_oids[oids[0]] = resolved[0]

    def _tables(self, text: str, truncated: bool) -> tuple[list[str], list[str]]:
        """tables_in, remembered per text for the connection (a statement runs many times)."""
        key = (text, truncated)
        found = self.tables_seen.get(key)
        if found is None:
            if len(self.tables_seen) >= 256:
                self.tables_seen.clear()
            found = self.tables_seen[key] = tables_in(text, truncated, "postgres") if text else ([], [])
        return list(found[0]), list(found[1])

    @staticmethod
    def _parameters(portal: Portal, text: str) -> list[str | None]:
        bind = portal.bind
        if bind is None:
            return []
        types = portal.statement.param_types if portal.statement is not None else ()
        values: list[str | None] = []
        for index, raw in enumerate(bind.values):
            if raw is None:
                values.append(None)
                continue
            oid = types[index] if index < len(types) else 0
            values.append(redact_value(value_text(raw, bind.param_format(index), oid)))
        for index in secret_parameters(text):
            if index < len(values) and values[index] is not None:
                values[index] = REDACTED
        return values


def _apply_error(execution: Execution, fields: dict[str, str]) -> None:
    execution.status = "error"
    execution.error_code = fields.get(p.FIELD_CODE)
    message = fields.get(p.FIELD_MESSAGE)
    execution.error_message = redact_sql(message) if message and _MAY_HOLD_SECRET(message) else message
    severity = fields.get(p.FIELD_SEVERITY_PLAIN) or fields.get(p.FIELD_SEVERITY)
    if severity and severity != "ERROR":
        execution.extra["ErrorSeverity"] = severity
    for code, name in (
        (p.FIELD_DETAIL, "ErrorDetail"),
        (p.FIELD_HINT, "ErrorHint"),
        (p.FIELD_POSITION, "ErrorPosition"),
    ):
        if code in fields:
            value = fields[code]
            execution.extra[name] = int(value) if name == "ErrorPosition" and value.isdigit() else value


def _error_note(fields: dict[str, str]) -> str:
    severity = (fields.get(p.FIELD_SEVERITY_PLAIN) or fields.get(p.FIELD_SEVERITY) or "ERROR").lower()
    return f"postgresql {severity} {fields.get(p.FIELD_CODE, '')}: {_short(fields.get(p.FIELD_MESSAGE, ''))}"


def _short(text: str) -> str:
    return text if len(text) <= ANNOTATION_MAX else text[:ANNOTATION_MAX] + "..."
