"""The `SqlQuery` record a finished request becomes: COM_QUERY, COM_INIT_DB, COM_STMT_EXECUTE, a failed
COM_STMT_PREPARE.

Its text (for an execute, the prepared SQL), status, error, row and affected-row counts, timing,
tables (as written, and resolved against the session's current database: the login's, then each
COM_INIT_DB, `USE` or COM_CHANGE_USER that succeeded; a cut text adds the `schema.table` its result's columns name),
parameters (those bound to a secret redacted) and the sampled rows. A multi-statement query gives one
record per statement (see `resultset.next_result`).
"""

from __future__ import annotations

import re

from decoders.mysql.state import Request
from decoders.records import Output, SqlQuery
from decoders.redact import REDACTED
from decoders.sql_tables import qualified, secret_placeholders, tables_in
from protocols import mysql as p

_USE = re.compile(r"\s*USE\s+(`(?:[^`]|``)+`|[^\s;`]+)\s*;?\s*\Z", re.I)


class QueriesMixin:
    """The records `MySqlDecoder` sends (reads `_last_server_time` and the prepared statements; keeps
    `_database`, the session's current database, to resolve table names)."""

    def _follow_use(self, command: int, text: str) -> None:
        """A COM_INIT_DB or a `USE db` statement that succeeded changes the current database."""
        if command not in (p.COM_QUERY, p.COM_INIT_DB) or text.lstrip()[:3].upper() != "USE":
            return
        use = _USE.match(text)
        if use is not None:
            name = use.group(1)
            self._database = name[1:-1].replace("``", "`") if name.startswith("`") else name

    def _finish(self, request: Request, out: list[Output]) -> None:
        """A request is done: one record per statement of a multi-statement query (those answered, then
        the current one; statements after an error never ran and get none), else one record. A reply
        lost or cut before its first result ended leaves one record of the whole text."""
        if request.answered:  # (the replies' side sends them as they come)
            for answered in request.answered:
                self._finish_statement(answered, out)
            request.answered = None
        if request.statements and (
            request.index
            or (self._caps(p.CLIENT_MULTI_STATEMENTS) and request.status != "unknown" and not request.cut)
        ):
            last = request.index == len(request.statements) - 1
            request.text = request.statements[request.index]
            request.truncated = request.truncated and last
        self._finish_statement(request, out)

    def _finish_statement(self, request: Request, out: list[Output]) -> None:
        command = request.command
        parameters: list[str | None] = []
        text = request.text
        truncated = request.truncated or request.cut or request.partial
        text_cut = request.truncated  # the text itself (not only its reply): its last name may be cut too
        if command == p.COM_STMT_EXECUTE:
            statement = self._statement(request)
            if statement is None:
                text = text or f"/* prepared statement {request.statement_id} (its PREPARE was not seen) */"
            else:
                text = statement.sql
                truncated = truncated or statement.truncated
                text_cut = statement.truncated
                parameters, ok = self._parameters(request, statement)
                truncated = truncated or not ok
                for index in secret_placeholders(statement.sql):
                    if index < len(parameters) and parameters[index] is not None:
                        parameters[index] = REDACTED
        elif command == p.COM_STMT_PREPARE:
            if request.status != "error":
                return
        elif command == p.COM_CHANGE_USER:
            if request.status == "ok":  # a login again: its database becomes the current one
                database = p.change_user_database(request.payload, self._client_caps or 0)
                if database is not None:
                    self._database = database or None
            return
        elif command not in (p.COM_QUERY, p.COM_INIT_DB):
            return
        if request.cut and request.status == "unknown" and request.end_time is None:
            request.end_time = self._last_server_time
        text = text or ""
        tables, written = tables_in(text, truncated=text_cut) if command != p.COM_INIT_DB else ([], [])
        if request.truncated and request.result_tables:
            # The text was cut: its answer still names the tables its columns came from.
            tables = tables + [t for t in request.result_tables if t not in tables]
        database = self._database
        resolved = [qualified(t, database) for t in tables]
        if request.status == "ok":
            self._follow_use(command, text)
        start = request.result_start if request.result_start is not None else request.at.time
        end = request.end_time
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
                resolved_tables=resolved,
                parameters=parameters,
                columns=request.result_columns,
                sample_rows=request.sample,
            )
        )
