"""What `--serve` shows: the summary's objects as they stand, and the events that changed them.

Kept in SQLite (the standard library's), in a temporary file, not in memory: a trace of a build names
hundreds of thousands of files, and a browser asks for a page of them at a time. The pipeline's thread
writes, in one transaction per batch; the server's threads read, each with a connection of its own
(WAL mode: readers never wait for the writer, nor the writer for them). Every change is an event with a
sequence number, kept for the whole run, so a client can resume from any one (`Last-Event-ID`), or
rebuild everything from 0.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

SCHEMA = """
create table objects (
    key text primary key,        -- "CIM_Process/4242": class and id
    class text not null,
    id text not null,
    document text not null,      -- the object as JSON: class, id, attrs, children
    session text,                -- the session a query or message belongs to (links)
    channel text,                -- a socket's channel id, which is its session's Id (links)
    parent integer,              -- a process's parent pid (links)
    seq integer not null         -- the event that last changed it
);
create index objects_class on objects (class, seq);
create index objects_session on objects (session);
create index objects_channel on objects (channel);
create index objects_parent on objects (parent);
create table object_pids (key text not null, pid integer not null);
create index object_pids_pid on object_pids (pid, key);
create index object_pids_key on object_pids (key);
create table events (
    seq integer primary key,
    kind text not null,          -- create, update, delete
    key text not null
);
"""


@dataclass(frozen=True)
class Change:
    """One object to write: its JSON document and what links it to others."""

    cim_class: str
    object_id: str
    document: dict
    pids: tuple[int, ...] = ()
    session: str | None = None
    channel: str | None = None
    parent: int | None = None
    known: bool = False  # written before: an update

    @property
    def key(self) -> str:
        return f"{self.cim_class}/{self.object_id}"


class LiveStore:
    """Objects and events, written by the pipeline, read by the server."""

    def __init__(self, folder: str | None = None) -> None:
        handle, self.path = tempfile.mkstemp(prefix="dockit-serve-", suffix=".sqlite", dir=folder)
        os.close(handle)
        self._writer = self._connect()
        self._writer.executescript(SCHEMA)
        self._writer.commit()
        self.seq = 0
        self.committed = 0  # the last event readers can see
        self.changed = threading.Condition()  # notified after each batch: event streams wake up
        self.finished = False  # the run is over: no event will come
        self._local = threading.local()

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        connection.execute("pragma journal_mode=wal")
        connection.execute("pragma synchronous=off")  # a scratch file: a crash loses nothing of value
        return connection

    def reader(self) -> sqlite3.Connection:
        """The calling thread's own read connection."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._connect()
        return connection

    # -- writing (the pipeline's thread) ------------------------------------------------------------
    def apply(self, changes: Iterable[Change], deleted: Iterable[str] = ()) -> int:
        """Write a batch; returns how many events it made. An event names its object; its document is
        the object as it stands when read (a client that reads late sees the later state, once)."""
        db = self._writer
        objects, pids, events, stale = [], [], [], []
        for change in changes:
            key = change.key
            self.seq += 1
            text = json.dumps({"id": change.object_id, **change.document}, ensure_ascii=False)
            objects.append((key, change.cim_class, change.object_id, text, change.session, change.channel,
                            change.parent, self.seq))  # fmt: skip
            if change.known:
                stale.append((key,))
            pids += [(key, pid) for pid in set(change.pids)]
            events.append((self.seq, "update" if change.known else "create", key))
        for key in deleted:
            self.seq += 1
            stale.append((key,))
            events.append((self.seq, "delete", key))
        if not events:
            return 0
        db.execute("begin")
        try:
            if stale:
                db.executemany("delete from object_pids where key = ?", stale)
            db.executemany(
                "insert or replace into objects (key, class, id, document, session, channel, parent, seq) "
                "values (?, ?, ?, ?, ?, ?, ?, ?)",
                objects,
            )
            db.executemany("insert into object_pids (key, pid) values (?, ?)", pids)
            db.executemany("delete from objects where key = ?", [(key,) for key in deleted])
            db.executemany("insert into events (seq, kind, key) values (?, ?, ?)", events)
            db.execute("commit")
        except BaseException:
            db.execute("rollback")
            raise
        with self.changed:
            self.committed = self.seq
            self.changed.notify_all()
        return len(events)

    def wait_beyond(self, seq: int, timeout: float) -> None:
        """Wait until an event after `seq` is committed (or the run ends, or `timeout`): checked under
        the condition's lock, so a batch committed just before the wait is not missed."""
        with self.changed:
            if self.committed <= seq and not self.finished:
                self.changed.wait(timeout)

    def finish(self) -> None:
        self.finished = True
        with self.changed:
            self.changed.notify_all()

    def close(self) -> None:
        self._writer.close()
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(self.path + suffix)
            except OSError:
                pass

    # -- reading (the server's threads) -------------------------------------------------------------
    def classes(self) -> dict[str, int]:
        rows = self.reader().execute("select class, count(*) from objects group by class order by class")
        return dict(rows.fetchall())

    def file_categories(self) -> dict[str, int]:
        rows = self.reader().execute(
            "select json_extract(document, '$.attrs.Category') as category, count(*) from objects "
            "where class = 'CIM_DataFile' group by category order by category"
        )
        return {str(category): count for category, count in rows}

    def objects(self, cim_class: str | None, offset: int = 0, limit: int = 1000) -> Iterator[dict]:
        """Objects in the order they were last changed (the summary's, for a finished run's)."""
        if cim_class:
            rows = self.reader().execute(
                "select document from objects where class = ? order by seq limit ? offset ?", (cim_class, limit, offset)
            )
        else:
            rows = self.reader().execute("select document from objects order by seq limit ? offset ?", (limit, offset))
        for (text,) in rows:
            yield json.loads(text)

    def count(self, cim_class: str | None) -> int:
        if cim_class:
            return self.reader().execute("select count(*) from objects where class = ?", (cim_class,)).fetchone()[0]
        return self.reader().execute("select count(*) from objects").fetchone()[0]

    def get(self, key: str) -> dict | None:
        row = self.reader().execute("select document from objects where key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def keys_of_pid(self, pid: int, cim_class: str | None = None, limit: int = 500) -> list[dict]:
        sql = "select o.document from object_pids p join objects o on o.key = p.key where p.pid = ?"
        args: list[object] = [pid]
        if cim_class:
            sql += " and o.class = ?"
            args.append(cim_class)
        rows = self.reader().execute(sql + " order by o.seq limit ?", (*args, limit))
        return [json.loads(text) for (text,) in rows]

    def children_of(self, pid: int, limit: int = 500) -> list[dict]:
        rows = self.reader().execute(
            "select document from objects where parent = ? and class = 'CIM_Process' order by seq limit ?", (pid, limit)
        )
        return [json.loads(text) for (text,) in rows]

    def in_session(self, session: str, limit: int = 500) -> list[dict]:
        rows = self.reader().execute(
            "select document from objects where session = ? order by seq limit ?", (session, limit)
        )
        return [json.loads(text) for (text,) in rows]

    def of_channel(self, channel: str, cim_class: str, limit: int = 50) -> list[dict]:
        rows = self.reader().execute(
            "select document from objects where class = ? and (channel = ? or id = ?) order by seq limit ?",
            (cim_class, channel, channel, limit),
        )
        return [json.loads(text) for (text,) in rows]

    def events_after(self, seq: int, limit: int = 500) -> list[tuple[int, str, str, str | None]]:
        """Events after `seq`: (seq, kind, key, document text)."""
        rows = self.reader().execute(
            "select e.seq, e.kind, e.key, o.document from events e left join objects o on o.key = e.key "
            "where e.seq > ? order by e.seq limit ?",
            (seq, limit),
        )
        return rows.fetchall()

    def last_seq(self) -> int:
        row = self.reader().execute("select max(seq) from events").fetchone()
        return row[0] or 0
