"""The `SqlQuery` record a finished request becomes: COM_QUERY, COM_INIT_DB, COM_STMT_EXECUTE, a failed
COM_STMT_PREPARE.

Its text (for an execute, the prepared SQL), status, error, row and affected-row counts, timing,
tables, parameters (those bound to a secret redacted) and the sampled rows.
"""

from __future__ import annotations

from decoders.mysql.state import Request
from decoders.records import Output, SqlQuery
from decoders.redact import REDACTED
from decoders.sql_tables import secret_placeholders, tables_in
from protocols import mysql as p


class QueriesMixin:
    """The records `MySqlDecoder` sends (reads `_last_server_time` and the prepared statements)."""

    def _finish(self, request: Request, out: list[Output]) -> None:
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
