"""What `--serve` shows: the summary's objects as they stand, and the events that changed them.

Kept in SQLite (the standard library's), in a temporary file, not in memory: a trace of a build names
hundreds of thousands of files, and a browser asks for a page of them at a time. The pipeline's thread
writes (`LiveStore`), in one transaction per batch; the server, in a process of its own, reads
(`StoreReader`), each of its threads with a connection of its own (WAL mode: readers never wait for the
writer, nor the writer for them). Every change is an event with a sequence number, kept for the whole
run, so a client can resume from any one (`Last-Event-ID`), or rebuild everything from 0. What the
server needs besides the objects (what the run is, whether it is over, the digest) is in `meta`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import threading
import time
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
create index objects_session on objects (session) where session is not null;  -- partial: most objects
create index objects_channel on objects (channel) where channel is not null;  -- (files) have none, and
create index objects_parent on objects (parent) where parent is not null;     -- cost no index entry
create table object_pids (key text not null, pid integer not null);
create index object_pids_pid on object_pids (pid, key);
create index object_pids_key on object_pids (key);
create table events (
    seq integer primary key,
    kind text not null,          -- create, update, delete
    key text not null
);
create table meta (
    name text primary key,       -- about (what the run is), finished, digest
    value text not null          -- JSON
);
"""

POLL_SECONDS = 0.05  # how often a reader in the server's process looks for new events


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


def _connect(path: str) -> sqlite3.Connection:
    connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    connection.execute("pragma journal_mode=wal")
    connection.execute("pragma synchronous=off")  # a scratch file: a crash loses nothing of value
    return connection


class LiveStore:
    """Objects and events, written by the pipeline's thread (the server reads them with `StoreReader`)."""

    def __init__(self, about: dict, folder: str | None = None) -> None:
        handle, self.path = tempfile.mkstemp(prefix=f"dockit-serve-{os.getpid()}-", suffix=".sqlite", dir=folder)
        os.close(handle)
        self._writer = _connect(self.path)
        self._writer.executescript(SCHEMA)
        self._set("about", about)
        self.seq = 0
        self.finished = False  # the run is over: no event will come
        self._digest_text: str | None = None

    def _set(self, name: str, value: object) -> None:
        self._writer.execute("insert or replace into meta (name, value) values (?, ?)", (name, json.dumps(value)))

    def set_digest(self, digest: object) -> None:
        """The query digest as it stands (small: its fingerprints are bounded); written when it changed."""
        text = json.dumps(digest, ensure_ascii=False)
        if text != self._digest_text:
            self._digest_text = text
            self._writer.execute("insert or replace into meta (name, value) values ('digest', ?)", (text,))

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
        return len(events)

    def finish(self) -> None:
        """The run is over (written after its last batch: a reader that sees it has every event)."""
        if not self.finished:
            self.finished = True
            self._set("finished", True)

    def close(self) -> None:
        self._writer.close()
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(self.path + suffix)
            except OSError:
                pass


class StoreReader:
    """The store as the server reads it, from its own process: each thread has its own connection, and
    waiting for new events is polling, every `POLL_SECONDS` (another process's commits cannot be waited
    on; a poll is one indexed read)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        self._finished = False

    def reader(self) -> sqlite3.Connection:
        """The calling thread's own read connection."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = _connect(self.path)
        return connection

    def _meta(self, name: str) -> object:
        row = self.reader().execute("select value from meta where name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row else None

    def about(self) -> dict:
        about = self._meta("about")
        return about if isinstance(about, dict) else {}

    def digest(self) -> object:
        return self._meta("digest")

    @property
    def finished(self) -> bool:
        if not self._finished:
            self._finished = bool(self._meta("finished"))
        return self._finished

    @property
    def seq(self) -> int:
        return self.last_seq()

    def wait_beyond(self, seq: int, timeout: float) -> None:
        """Wait until an event after `seq` is committed, or the run ends, or `timeout` passes. `finished`
        is read before the events: the writer sets it after its last batch, so none is missed."""
        deadline = time.monotonic() + timeout
        while True:
            finished = self.finished
            if finished or self.last_seq() > seq or time.monotonic() >= deadline:
                return
            time.sleep(POLL_SECONDS)
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
