"""Prepared statements: the PREPARE reply, the statements a connection holds, an execute's parameters.

A PREPARE's OK gives the statement id and counts; the parameter and column definitions follow (or
not: optional metadata, deprecated EOF). A statement lives until COM_STMT_CLOSE; COM_STMT_SEND_LONG_DATA
marks a parameter sent before; MariaDB's statement id -1 (pipelined prepare-and-execute) is the one
prepared last. Parameter types bound by one execute are kept for the next ones.
"""

from __future__ import annotations

from decoders.mysql.state import Request, Statement
from protocols import mysql as p

LAST_STATEMENT = 0xFFFFFFFF  # MariaDB: "the statement prepared just before" (pipelined execute)


class PreparedMixin:
    """The prepared-statement part of `MySqlDecoder` (its state: `_statements`, `_last_statement`)."""

    def _statement(self, request: Request) -> Statement | None:
        """The prepared statement a request names; MariaDB's -1 is the one prepared last."""
        if request.statement_id == LAST_STATEMENT and self._last_statement is not None:
            request.statement_id = self._last_statement
        return self._statements.get(request.statement_id) if request.statement_id is not None else None

    def _apply_no_reply(self, request: Request) -> None:
        if self._statement(request) is None:
            return
        if request.command == p.COM_STMT_CLOSE:
            self._statements.pop(request.statement_id, None)
        elif request.command == p.COM_STMT_SEND_LONG_DATA and len(request.payload) >= 7:
            statement = self._statements.get(request.statement_id)
            if statement is not None:
                statement.long_data.add(int.from_bytes(request.payload[5:7], "little"))

    def _prepare_packet(self, request: Request, payload: bytes, first: int) -> bool:
        if request.state == "first":
            if first != 0x00:
                self._ok_or_err(request, payload, first)
                return True
            ok = p.parse_prepare_ok(payload)
            request.status = "ok"
            statement = Statement(request.text or "", request.truncated, ok.num_params, ok.num_columns)
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
    def _prepare_settled(request: Request) -> bool:
        """True when a PREPARE reply is complete; an optional EOF left waits for the next request."""
        if request.slots == ["eof?"]:
            request.state = "optional_eof"
        return not request.slots

    def _parameters(self, request: Request, statement: Statement) -> tuple[list[str | None], bool]:
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
