"""SQL handed to a client library (`mysql_real_query(conn, "SQL", len)`), seen by ltrace: SqlQuery records.

A program linked with libmysqlclient/libmariadb (Python's MySQLdb, PHP, Perl DBD::mysql...) passes each
statement to the library as text; ltrace with dockit's prototypes prints it. The same statement usually
also crosses the socket, where the MySQL decoder reports it with more detail (rows, error code, tables).

The rule that keeps a statement from being counted twice: a library call becomes a record only when no
write it made reached a socket that the MySQL decoder is decoding. The writes are the traced data calls
of the same thread made between the library call's start and its end (nested in it, in ltrace's output).
So the library record appears when the socket bytes are not readable (TLS, compression, a send that
ltrace could not hook) and never beside the decoder's record of the same statement.

Status: these calls return 0 on success and non-zero on error (`mysql_send_query` only sends: its
success says nothing about the statement, so it stays "unknown"). Rows and error details are not known
at this level.
"""

from __future__ import annotations

from decoders.mysql import redact_sql
from decoders.records import Annotation, SqlQuery, as_cim
from decoders.sql_tables import tables_in
from dockit_core.channels import ChannelManager
from dockit_core.events import Call
from dockit_core.ltrace_buffers import argument, decode_buffer
from dockit_core.model import Process, SocketNode

_WRITES_KEPT = 256
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
        self._writes: dict[int, list[tuple[float | None, bool]]] = {}
        self.records = 0
        self.skipped = 0

    def socket_write(self, call: Call, node: SocketNode) -> None:
        """A traced write to a socket: remember whether the MySQL decoder reads that socket."""
        channel = self.channels.channels.get(ChannelManager._socket_key(node)[0])
        decoded = channel is not None and channel.decoder is not None and channel.decoder.name == "mysql"
        writes = self._writes.setdefault(call.pid, [])
        writes.append((call.time, decoded))
        if len(writes) > _WRITES_KEPT:
            del writes[: _WRITES_KEPT // 2]

    def call(self, call: Call, process: Process, _info: object) -> None:
        writes = self._writes.pop(call.pid, [])
        if call.time is not None:
            writes = [w for w in writes if w[0] is None or w[0] >= call.time]
        if any(decoded for _time, decoded in writes):
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
            session=f"{call.library or 'library'}:{handle.strip()}",
            text=text,
            start=call.time,
            duration=call.duration,
            status=status,
            truncated=truncated,
            tables=tables,
            written_tables=written,
        )
        self.records += 1
        self.channels.emit(as_cim(record))
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
