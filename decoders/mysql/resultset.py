"""Result sets, for COM_QUERY, COM_STMT_EXECUTE and COM_STMT_FETCH replies: columns, rows, their end.

Column definitions give the record's column names (redacted when they hold a password); rows are
counted, and the first `--rows` decoded (text or binary protocol) with any auth hash in them redacted.
Optional metadata (MariaDB's cached metadata, MySQL's optional result set metadata) takes the columns
from the prepared statement. Each result of a multi-statement query answers its statement (`next_result`: one record each); a CALL's
result sets add their rows to the CALL's record.
"""

from __future__ import annotations

import copy
import re

from decoders.mysql.redaction import MAY_HOLD_SECRET, redact_value
from decoders.mysql.state import Request
from decoders.redact import REDACTED, is_secret_column, redact_sql
from protocols import mysql as p


class ResultSetMixin:
    """The result-set part of `MySqlDecoder`'s replies (reads `options.rows` and the capabilities)."""

    def _result_packet(self, request: Request, payload: bytes, first: int) -> bool:
        state = request.state
        if request.command == p.COM_STMT_FETCH and state == "first":
            state = request.state = "rows"
            statement = self._statement(request)
            request.columns = list(statement.columns) if statement else []
            request.secret_columns = secret_columns(request.columns)
        if state in ("first", "infile"):
            if first == 0xFF:
                err = p.parse_err(payload)
                if err.code == 0xFFFF:
                    return False  # MariaDB progress report
                self._ok_or_err(request, payload, first)
                return True
            if first == 0x00:
                status = self._ok_or_err(request, payload, first)
                if status & p.SERVER_MORE_RESULTS_EXISTS:
                    next_result(request, result_set=False)
                    return False
                return True
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
                request.secret_columns = secret_columns(request.columns)
                request.state = "after_columns"
            return False
        if state == "columns":
            try:
                column = p.parse_column(payload, bool(self._caps(p.MARIADB_CLIENT_EXTENDED_METADATA)))
            except p.MySqlError:
                column = p.Column(name="", type=p.TYPE_VAR_STRING)  # cut: its name is unknown
                request.cut = True
            request.columns.append(column)
            if request.truncated and column.original_table and column.schema:  # a cut text's tables
                source = f"{column.schema}.{column.original_table}"
                if request.result_tables is None:
                    request.result_tables = []
                if source not in request.result_tables:
                    request.result_tables.append(source)
            request.left -= 1
            if request.left <= 0:
                request.state = "after_columns"
                request.secret_columns = secret_columns(request.columns)
                if not request.result_columns and not request.cut:
                    # A column is named after its expression: `SELECT PASSWORD('x')` names one PASSWORD('x').
                    request.result_columns = [
                        redact_sql(c.name) if MAY_HOLD_SECRET(c.name) else c.name for c in request.columns
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
                next_result(request, result_set=True)
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
            hidden = request.secret_columns
            request.sample.append(
                [REDACTED if i in hidden and v is not None else redact_value(v) if v else v for i, v in enumerate(row)]
            )
        return False


_CALL = re.compile(r"(?:\s+|/\*.*?\*/)*CALL\b", re.I | re.S)


def next_result(request: Request, result_set: bool) -> None:
    """SERVER_MORE_RESULTS_EXISTS: the result just ended answered the current statement of a
    multi-statement query; it becomes a record of its own and the next statement's result begins. A
    CALL's result sets all belong to it (its own OK ends it), and so does every result of a query whose
    statements are not known (one text, or more results than statements): they are summed."""
    if request.index + 1 >= len(request.statements):
        return
    if result_set and _CALL.match(request.statements[request.index]):
        return
    answered = copy.copy(request)
    answered.text = request.statements[request.index]
    answered.truncated = False  # only the last statement can be cut
    answered.statements, answered.answered = (), None
    if request.answered is None:
        request.answered = []
    request.answered.append(answered)
    request.index += 1
    request.result_start = request.end_time
    request.rows = request.affected_rows = request.last_insert_id = None
    request.error_code = request.error_message = None
    request.status = "unknown"
    request.sample, request.columns, request.result_columns, request.result_tables = [], [], [], None
    request.secret_columns = frozenset()
    request.partial = False


def secret_columns(columns: list[p.Column]) -> frozenset[int]:
    """The columns whose values are secrets, by either of their names (see Request.secret_columns)."""
    return frozenset(
        i for i, c in enumerate(columns) if is_secret_column(c.name) or is_secret_column(c.original_name)
    )
