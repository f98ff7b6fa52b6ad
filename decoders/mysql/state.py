"""What a connection remembers between packets: its prepared statements, its requests awaiting a reply."""

from __future__ import annotations

from dataclasses import dataclass, field

from decoders.mysql.stream import At
from protocols import mysql as p


@dataclass(slots=True)
class Statement:
    sql: str
    truncated: bool
    num_params: int = 0
    num_columns: int = 0
    param_types: list[tuple[int, bool]] | None = None
    columns: list[p.Column] = field(default_factory=list)
    long_data: set[int] = field(default_factory=set)


@dataclass(slots=True)
class Request:
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
    # Columns whose values are secrets, by the name the result gives them or the source column's (an
    # alias hides nothing: `SELECT api_token AS t`): sampled values redacted, rows' calls hidden.
    secret_columns: frozenset[int] = frozenset()
    status: str = "unknown"
    error_code: int | None = None
    error_message: str | None = None
    affected_rows: int | None = None
    last_insert_id: int | None = None
    end_time: float | None = None
    cut: bool = False  # the stream lost step inside this reply: what follows in it is unknown
    partial: bool = False  # a reply packet was cut but its lost bytes were skipped: the count holds
    prepared: Statement | None = None
    slots: list[str] = field(default_factory=list)  # PREPARE reply parts still expected, last first
    # A multi-statement COM_QUERY: its statements, the one the current result answers, those answered
    # and not yet sent (one per statement: sent at once, so memory does not grow with a long script's
    # statements), and when the current one started (the end of the
    # result before it: the server runs them in turn).
    statements: tuple[str, ...] = ()
    index: int = 0
    answered: list[Request] | None = None
    result_start: float | None = None
    result_tables: list[str] | None = None  # `schema.table` a cut text's columns came from
