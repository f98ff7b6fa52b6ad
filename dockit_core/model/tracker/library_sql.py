"""SQL handed to a client library (`mysql_real_query(conn, "SQL", len)`, `PQexec(conn, "SQL")`), seen by
ltrace: SqlQuery records.

A program linked with libmysqlclient/libmariadb (Python's MySQLdb, PHP, Perl DBD::mysql, C programs) or
libpq (psql, psycopg2, pgbench, C programs) passes each statement to the library as text; ltrace with
dockit's prototypes prints it. The same statement usually also crosses the socket, where the protocol's
decoder reports it with more detail (rows, error code, tables) -- inside TLS too, when ltrace shows the
plaintext.

libpq: `PQexec`, `PQexecParams` and `PQsendQuery`/`PQsendQueryParams` carry a statement; `PQprepare` and
`PQsendPrepare` name one (`stmt`, its text); `PQexecPrepared` and `PQsendQueryPrepared` execute a named
one, reported with the text its prepare gave (or not at all when the prepare was not seen).

The rule that keeps a statement from being counted twice: a library call is a candidate, and becomes a
record only if no socket decoder reports the same statement:
- a query (`mysql_real_query`, `mysql_query`, `mysql_send_query`) is the same statement as a decoder's
  record of the same process whose request was sent while the library call ran (after its start, and
  before its end when ltrace's -T gave it). The decoder reports a statement when its reply is complete,
  which can be after the library call returned (`mysql_query` then `mysql_store_result` reads the rows),
  so the candidate waits: it is settled when the next SQL library call of that process completes (the
  classic protocol reads a whole reply before the next request), or at the end of the trace.
- a prepared statement (`mysql_stmt_prepare`) is the same as a decoder's record of the same process with
  the same text (the decoder reports each execution, not the prepare), whenever it comes: it waits for
  the end of the trace.
So a library record appears when the socket bytes were not readable (a log whose send/recv buffers are
pointers, a protocol feature the decoder does not read), and never beside the decoder's record of the
same statement. With decoding turned off (`--no-decode`) there are no library records either.

Status: the MySQL calls return 0 on success and non-zero on error (`mysql_send_query` only sends: its
success says nothing about the statement, so it stays "unknown"; so does a prepare's, which executes
nothing). libpq's `PQexec...` return a result, NULL when the statement could not even be sent (an
error); whether the statement itself failed is in the result (`PQresultStatus`), not shown: "unknown".
`PQsend...` return 1 when sent, 0 on error. Rows and error details are not known at this level.
"""

from __future__ import annotations

from dataclasses import dataclass

from decoders.records import Annotation, CimObject, SqlQuery, as_cim
from decoders.redact import redact_sql
from dockit_core.ingest.events import Call
from dockit_core.ingest.ltrace_buffers import argument, decode_buffer
from dockit_core.model import Process
from dockit_core.model.channels import ChannelManager

ANNOTATION_MAX = 200
_SEEN_KEPT = 64


@dataclass
class _Candidate:
    pid: int
    start: float | None
    end: float | None
    prepared: bool
    record: SqlQuery


class LibrarySqlCalls:
    """Tracker handler for the SQL-carrying client-library calls."""

    # name -> (index of the SQL argument, index of its length argument or None)
    CALLS: dict[str, tuple[int, int | None]] = {
        "mysql_real_query": (1, 2),
        "mysql_send_query": (1, 2),
        "mysql_query": (1, None),
        "mysql_stmt_prepare": (1, 2),
        "PQexec": (1, None),
        "PQexecParams": (1, None),
        "PQsendQuery": (1, None),
        "PQsendQueryParams": (1, None),
        "PQprepare": (2, None),
        "PQsendPrepare": (2, None),
        "PQexecPrepared": (1, None),  # the statement's name: its text comes from its prepare
        "PQsendQueryPrepared": (1, None),
    }
    NAMES = tuple(CALLS)
    PREPARES = frozenset({"mysql_stmt_prepare", "PQprepare", "PQsendPrepare"})
    BY_NAME = frozenset({"PQexecPrepared", "PQsendQueryPrepared"})
    SENDS_ONLY = frozenset({"mysql_send_query"})

    def __init__(self, channels: ChannelManager) -> None:
        self.channels = channels
        self._candidates: list[_Candidate] = []
        self._seen: dict[int, list[tuple[float | None, str | None]]] = {}  # pid -> decoders' statements
        self.records = 0
        self.skipped = 0
        self._emit = channels.emit
        self.active = False
        self._prepared_names: dict[tuple[int, str, str], str] = {}  # (pid, PGconn*, name) -> its text

    def activate(self) -> None:
        """Watch the decoders' statements from now on. Called at the first library call of a trace (an
        ltrace log): a strace log has none, and its statements need not pass through here."""
        if not self.active:
            self.active = True
            self.channels.emit = self._observe

    def _observe(self, cim: CimObject) -> None:
        """Every object the decoders emit passes here first: a statement they found is the library
        candidate for it, whether the candidate is already there or comes later."""
        if cim.cim_class == "Dockit_SqlQuery":
            process, start = cim.attr("Process"), cim.attr("Start")
            text = next((child.text for child in cim.children if child.tag == "Text"), None)
            if isinstance(process, int):
                seen = self._seen.setdefault(process, [])
                seen.append((start if isinstance(start, float) else None, text))
                if len(seen) > _SEEN_KEPT:
                    del seen[: _SEEN_KEPT // 2]
                for candidate in [c for c in self._candidates if c.pid == process]:
                    if self._same(candidate, seen[-1][0], text):
                        self._candidates.remove(candidate)
                        self.skipped += 1
        self._emit(cim)

    @staticmethod
    def _same(candidate: _Candidate, start: float | None, text: str | None) -> bool:
        if candidate.prepared:
            return text == candidate.record.text
        if start is None or candidate.start is None:
            return text == candidate.record.text
        return candidate.start <= start and (candidate.end is None or start <= candidate.end)

    def call(self, call: Call, process: Process, _info: object) -> None:
        if self.channels.registry is None:
            return  # --no-decode
        self._settle(call.pid, call.time)
        libpq = call.name.startswith("PQ")
        handle = (argument(call.args, 0) or "?").strip()
        if call.name in self.BY_NAME:
            name, _cut = self._sql(call)
            text, truncated = self._prepared_names.get((call.pid, handle, name or "")), False
        else:
            text, truncated = self._sql(call)
        if text is None:
            return
        if call.name in ("PQprepare", "PQsendPrepare"):
            name, _cut = self._sql(call, index=1)
            if len(self._prepared_names) > 4096:
                self._prepared_names.clear()  # bounded: a program preparing without end loses old names
            self._prepared_names[(call.pid, handle, name or "")] = text
        if call.retval is None:
            status = "unknown"
        elif libpq:  # a result (NULL: not even sent), or PQsend...'s 1 (sent) or 0 (error)
            status = "error" if call.retval == 0 else "unknown"
        elif call.retval != 0:
            status = "error"
        elif call.name in self.SENDS_ONLY or call.name in self.PREPARES:
            status = "unknown"
        else:
            status = "ok"
        from decoders.sql_tables import tables_in  # sqlglot: loaded only when a trace has library SQL

        tables, written = tables_in(text, truncated=truncated)
        record = SqlQuery(
            protocol="postgresql" if libpq else "mysql",
            process=process.pid,
            # the MYSQL*, MYSQL_STMT* or PGconn* the program passed
            session=f"pq-conn:{handle}" if libpq else f"mysql-handle:{handle}",
            text=text,
            start=call.time,
            duration=call.duration,
            status=status,
            truncated=truncated,
            tables=tables,
            written_tables=written,
        )
        end = call.time + call.duration if call.time is not None and call.duration is not None else None
        candidate = _Candidate(call.pid, call.time, end, call.name in self.PREPARES, record)
        # A library call made inside this one for the same statement (mysql_query -> mysql_real_query)
        # is this one: the program's own call is kept.
        for inner in [c for c in self._candidates if c.pid == call.pid and c.record.text == text]:
            if call.time is None or inner.start is None or inner.start >= call.time:
                self._candidates.remove(inner)
        if any(self._same(candidate, start, seen) for start, seen in self._seen.get(call.pid, ())):
            self.skipped += 1
        else:
            self._candidates.append(candidate)
        note = Annotation(call.index, f"{call.name}: {text[:ANNOTATION_MAX]}")
        self.channels.annotations.setdefault(note.call_index, []).append(note.text)

    def _settle(self, pid: int, before: float | None) -> None:
        """The queries of `pid` that started before a new SQL call and that no decoder reported by now
        never will be: they are records. (One that started after it was made inside it.)"""
        for candidate in [c for c in self._candidates if c.pid == pid and not c.prepared]:
            if before is not None and candidate.start is not None and candidate.start >= before:
                continue
            self._candidates.remove(candidate)
            self._record(candidate)

    def finish(self) -> None:
        """End of trace (after the decoders flushed): what is left is reported."""
        candidates, self._candidates = self._candidates, []
        for candidate in candidates:
            self._record(candidate)

    def _record(self, candidate: _Candidate) -> None:
        self.records += 1
        self._emit(as_cim(candidate.record))

    def _sql(self, call: Call, index: int | None = None) -> tuple[str | None, bool]:
        sql_index, length_index = self.CALLS[call.name]
        if index is not None:
            sql_index, length_index = index, None
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
