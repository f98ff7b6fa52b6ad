"""SQL handed to a client library (`mysql_real_query(conn, "SQL", len)`), seen by ltrace: SqlQuery records.

A program linked with libmysqlclient/libmariadb (Python's MySQLdb, PHP, Perl DBD::mysql...) passes each
statement to the library as text; ltrace with dockit's prototypes prints it. The same statement usually
also crosses the socket, where the MySQL decoder reports it with more detail (rows, error code, tables).

The rule that keeps a statement from being counted twice: a library call becomes a record only when no
socket decoder reported a statement of the same process that started while the library call ran (between
its start and its end: the library sends the statement and waits for the reply inside the call, so the
socket decoder's record, made when the reply arrives, starts in that window). The library record thus
appears when the socket bytes were not readable (TLS, a compressed connection, a send ltrace could not
hook) and never beside the decoder's record of the same statement. With decoding turned off
(`--no-decode`) there are no library records either.

Status: these calls return 0 on success and non-zero on error (`mysql_send_query` only sends: its
success says nothing about the statement, so it stays "unknown"). Rows and error details are not known
at this level.
"""

from __future__ import annotations

from decoders.mysql import redact_sql
from decoders.records import Annotation, CimObject, SqlQuery, as_cim
from decoders.sql_tables import tables_in
from dockit_core.channels import ChannelManager
from dockit_core.events import Call
from dockit_core.ltrace_buffers import argument, decode_buffer
from dockit_core.model import Process

_KEPT = 256
ANNOTATION_MAX = 200


class LibrarySqlCalls:
    """Tracker handler for the SQL-carrying client-library calls."""

    # name -> (index of the SQL argument, index of its length argument or None)
    CALLS: dict[str, tuple[int, int | None]] = {
        "mysql_real_query": (1, 2),
        "mysql_send_query": (1, 2),
        "mysql_query": (1, None),
        "mysql_stmt_prepare": (1, 2),
    }
    NAMES = tuple(CALLS)

    def __init__(self, channels: ChannelManager) -> None:
        self.channels = channels
        self._decoded: dict[int, list[float | None]] = {}  # pid -> starts of socket-decoded statements
        self.records = 0
        self.skipped = 0
        self._emit = channels.emit
        channels.emit = self._observe

    def _observe(self, cim: CimObject) -> None:
        """Every object the decoders emit passes here first: note the SQL statements they found."""
        if cim.cim_class == "Dockit_SqlQuery":
            process = cim.attr("Process")
            if isinstance(process, int):
                starts = self._decoded.setdefault(process, [])
                start = cim.attr("Start")
                starts.append(start if isinstance(start, float) else None)
                if len(starts) > _KEPT:
                    del starts[: _KEPT // 2]
        self._emit(cim)

    def call(self, call: Call, process: Process, _info: object) -> None:
        if self.channels.registry is None:
            return  # --no-decode
        starts = self._decoded.pop(process.pid, [])
        if call.time is not None:
            # Records emitted so far were made before this call's end: only its start bounds them.
            starts = [s for s in starts if s is None or s >= call.time]
        if starts:
            self.skipped += 1
            return
        text, truncated = self._sql(call)
        if text is None:
            return
        if call.retval is None:
            status = "unknown"
        elif call.retval != 0:
            status = "error"
        else:
            status = "unknown" if call.name == "mysql_send_query" else "ok"
        tables, written = tables_in(text, truncated=truncated)
        handle = argument(call.args, 0) or "?"
        record = SqlQuery(
            protocol="mysql",
            process=process.pid,
            session=f"mysql-handle:{handle.strip()}",  # the MYSQL* the program passed
            text=text,
            start=call.time,
            duration=call.duration,
            status=status,
            truncated=truncated,
            tables=tables,
            written_tables=written,
        )
        self.records += 1
        self._emit(as_cim(record))
        note = Annotation(call.index, f"{call.name}: {text[:ANNOTATION_MAX]}")
        self.channels.annotations.setdefault(note.call_index, []).append(note.text)

    def _sql(self, call: Call) -> tuple[str | None, bool]:
        sql_index, length_index = self.CALLS[call.name]
        printed = argument(call.args, sql_index)
        if printed is None:
            return None, False
        expected = None
        if length_index is not None:
            length_text = argument(call.args, length_index)
            try:
                expected = int(length_text or "", 0)
            except ValueError:
                expected = None
        buffer = decode_buffer(printed, expected)
        if buffer is None:
            return None, False  # a raw pointer: ltrace had no prototype for it
        data = buffer.data
        if expected is not None and len(data) > expected:
            data = data[:expected]
        truncated = buffer.cut or (expected is not None and len(data) < expected)
        if expected is None:
            data = data.split(b"\0", 1)[0]  # mysql_query: a C string
        return redact_sql(data.decode("utf-8", "replace")), truncated
