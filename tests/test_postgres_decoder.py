"""PostgresDecoder on real exchanges with the PostgreSQL server on 127.0.0.1:5432, recorded through a relay
(tests/relay.py) while psycopg 3 (extended protocol, server-side binding, prepared statements, pipeline
mode, COPY, LISTEN/NOTIFY), asyncpg (binary formats, prepared statements) and psql (several statements
in one Query) talk to it. Expected values come from what each test sent and what the drivers and the
server report (rowcount, SQLSTATEs from the exceptions, the server's own text output of the values),
never from the decoder. Each recording is fed whole, one byte at a time, in random splits, and from the
server's side."""

from __future__ import annotations

import asyncio
import datetime
import decimal
import random
import subprocess
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from decoders.api import ChannelInfo, Chunk, Direction
from decoders.postgres import PostgresDecoder
from decoders.records import Annotation, Secret
from protocols import postgres as p
from tests.pg_helpers import (
    ADMIN,
    HOST,
    decode,
    fact,
    messages,
    needs,
    queries,
    requires_server,
    scratch_database,
    sessions,
    summary,
)
from tests.relay import Recording, Relay, cut, split

pytestmark = [requires_server, pytest.mark.postgres]
SPLITS = ("whole", "bytes", "random")
SECRET_VALUE = "hunter2-dockit"
TOKEN = uuid.UUID("6f1c2a5e-3d4b-4e8f-9a0b-1c2d3e4f5a6b")


@pytest.fixture(scope="module")
def env():
    """A scratch database and a relay in front of the server."""
    with scratch_database() as database:
        relay = Relay((HOST, 5432))
        yield {"relay": relay, "db": database}
        relay.close()


def connect(env, **kwargs):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(
        host=HOST,
        port=env["relay"].port,
        user=ADMIN,
        dbname=env["db"],
        sslmode="disable",
        autocommit=True,
        **kwargs,
    )


# --- psycopg: extended protocol, server-side binding -------------------------------------------------


@pytest.fixture(scope="module")
def psycopg_run(env):
    """One connection's workload; `facts` holds what the driver and the server said."""
    import psycopg
    from psycopg import errors

    facts: dict[str, object] = {}
    notices: list[tuple[str, str, str]] = []
    notified: list[tuple[int, str, str]] = []
    with connect(env) as conn, connect(env) as other:
        conn.add_notice_handler(
            lambda d: notices.append((d.severity_nonlocalized, d.sqlstate, d.message_primary))
        )
        conn.add_notify_handler(lambda n: notified.append((n.pid, n.channel, n.payload)))
        cur = conn.cursor()
        cur.execute(
            "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price numeric(8,2), added date, "
            "tags text[], payload bytea, ref uuid, secret_password text)"
        )
        cur.execute(
            "INSERT INTO items (id, name, price, added, tags, payload, ref, secret_password) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                1,
                "pen",
                decimal.Decimal("1.50"),
                datetime.date(2026, 1, 2),
                ["a", "b c"],
                b"\x00\xff",
                TOKEN,
                SECRET_VALUE,
            ),
        )
        facts["insert_rowcount"] = cur.rowcount
        cur.executemany(
            "INSERT INTO items (id, name, price) VALUES (%s, %s, %s)", [(2, "ink", 3), (3, "pad", 4.25)]
        )
        cur.execute("SELECT id, name FROM items WHERE price > %s ORDER BY id", (decimal.Decimal("2"),))
        facts["select_rows"] = cur.fetchall()
        cur.execute("UPDATE items SET price = price * 2 WHERE id >= %s", (2,))
        facts["update_rowcount"] = cur.rowcount
        for _ in range(2):  # a named prepared statement, executed twice
            cur.execute("SELECT name FROM items WHERE id = %s", (3,), prepare=True)
            facts["prepared_rows"] = cur.fetchall()
        try:
            cur.execute("SELECT * FROM no_such_table")
        except errors.UndefinedTable as error:
            facts["undefined"] = (error.sqlstate, error.diag.message_primary)
        try:
            cur.execute("INSERT INTO items (id, name) VALUES (%s, %s)", (1, "again"))
        except errors.UniqueViolation as error:
            facts["duplicate"] = (error.sqlstate, error.diag.message_primary, error.diag.message_detail)
        cur.execute("DROP TABLE IF EXISTS dockit_never_there")
        facts["notices"] = list(notices)
        aborted = 0
        try:
            with conn.pipeline():
                cur.execute("SELECT %s::int AS first", (1,))
                cur.execute("SELECT 1 / %s AS broken", (0,))
                cur.execute("SELECT %s::int AS skipped", (3,))
        except errors.DivisionByZero as error:
            facts["division"] = (error.sqlstate, error.diag.message_primary)
        except psycopg.errors.PipelineAborted:
            aborted += 1
        copied = [(100, "tab\there"), (101, "plain")]
        with cur.copy("COPY items (id, name) FROM STDIN") as copy:
            for row in copied:
                copy.write_row(row)
        facts["copy_in_rowcount"] = cur.rowcount
        facts["copy_in_bytes"] = sum(len(f"{i}\t{n.replace(chr(9), chr(92) + 't')}\n") for i, n in copied)
        out = b""
        with cur.copy("COPY (SELECT id, name FROM items ORDER BY id) TO STDOUT") as copy:
            for data in copy:
                out += bytes(data)
        facts["copy_out_bytes"] = len(out)
        facts["copy_out_lines"] = out.count(b"\n")
        cur.execute("SELECT 1 AS one; SELECT 2 AS two, 3 AS three")
        cur.execute("LISTEN dockit_channel")
        other.execute("NOTIFY dockit_channel, 'hello'")
        cur.execute("SELECT 'after notify'")
        facts["notified"] = list(notified)
        facts["notifier_pid"] = other.info.backend_pid
        facts["backend_pid"] = conn.info.backend_pid
        facts["server_version"] = conn.execute("SHOW server_version").fetchone()[0]
    recordings = env["relay"].take(2)
    recording = next(r for r in recordings if b"CREATE TABLE items" in r.stream("c2s"))
    return recording, facts


def test_psycopg_extended_protocol(psycopg_run, env) -> None:
    recording, facts = psycopg_run
    out = decode(split(recording.chunks(), "whole"), recording.channel(False), rows=5)
    (session,) = sessions(out)
    assert (session.user, session.database, session.server_version) == (
        ADMIN,
        env["db"],
        facts["server_version"],
    )
    assert session.extra["BackendPid"] == facts["backend_pid"]
    assert session.extra["Encrypted"] == "false" and session.extra["Authentication"] == "none"
    found = [fact(q) for q in queries(out)]
    insert = "INSERT INTO items (id, name, price, added, tags, payload, ref, secret_password) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    assert facts["insert_rowcount"] == 1 and facts["update_rowcount"] == 2
    assert facts["select_rows"] == [(2, "ink"), (3, "pad")]
    expected = [
        ("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price numeric(8,2), added date, "
         "tags text[], payload bytea, ref uuid, secret_password text)", "ok", None, None, None, ()),
        (insert, "ok", None, None, 1, ("1", "pen", "1.50", "2026-01-02", '{a,"b c"}', "\\x00ff", str(TOKEN), "<redacted>")),
        ("INSERT INTO items (id, name, price) VALUES ($1, $2, $3)", "ok", None, None, 1, ("2", "ink", "3")),
        ("INSERT INTO items (id, name, price) VALUES ($1, $2, $3)", "ok", None, None, 1, ("3", "pad", "4.25")),
        ("SELECT id, name FROM items WHERE price > $1 ORDER BY id", "ok", None, 2, None, ("2",)),
        ("UPDATE items SET price = price * 2 WHERE id >= $1", "ok", None, None, 2, ("2",)),
        ("SELECT name FROM items WHERE id = $1", "ok", None, 1, None, ("3",)),
        ("SELECT name FROM items WHERE id = $1", "ok", None, 1, None, ("3",)),
        ("SELECT * FROM no_such_table", "error", facts["undefined"][0], None, None, ()),
        ("INSERT INTO items (id, name) VALUES ($1, $2)", "error", facts["duplicate"][0], None, None, ("1", "again")),
        ("DROP TABLE IF EXISTS dockit_never_there", "ok", None, None, None, ()),
        ("DEALLOCATE ALL", "ok", None, None, None, ()),  # psycopg's own, after DDL, for its prepared statements
        ("SELECT $1::int AS first", "ok", None, 1, None, ("1",)),
        ("SELECT 1 / $1 AS broken", "error", facts["division"][0], None, None, ("0",)),
        # "SELECT $1::int AS skipped": the server skipped it (the pipeline was aborted): no record
        ("COPY items (id, name) FROM STDIN", "ok", None, 2, None, ()),
        ("COPY (SELECT id, name FROM items ORDER BY id) TO STDOUT", "ok", None, facts["copy_out_lines"], None, ()),
        ("SELECT 1 AS one", "ok", None, 1, None, ()),
        ("SELECT 2 AS two, 3 AS three", "ok", None, 1, None, ()),
        ("LISTEN dockit_channel", "ok", None, None, None, ()),
        ("SELECT 'after notify'", "ok", None, 1, None, ()),
        ("SHOW server_version", "ok", None, 1, None, ()),
    ]  # fmt: skip
    assert found == expected
    by_text = {q.text: q for q in queries(out)}
    assert facts["undefined"] == ("42P01", 'relation "no_such_table" does not exist')
    assert by_text["SELECT * FROM no_such_table"].error_message == facts["undefined"][1]
    assert by_text["SELECT * FROM no_such_table"].extra["ErrorPosition"] == 15
    duplicate = by_text["INSERT INTO items (id, name) VALUES ($1, $2)"]
    assert (duplicate.error_message, duplicate.extra["ErrorDetail"]) == facts["duplicate"][1:]
    assert by_text["SELECT 1 / $1 AS broken"].error_message == facts["division"][1] == "division by zero"
    assert (
        by_text["DROP TABLE IF EXISTS dockit_never_there"].notices
        == facts["notices"]
        == [("NOTICE", "00000", 'table "dockit_never_there" does not exist, skipping')]
    )
    copy_in = by_text["COPY items (id, name) FROM STDIN"]
    assert facts["copy_in_rowcount"] == 2
    assert (copy_in.extra["Copy"], copy_in.extra["Bytes"]) == ("in", facts["copy_in_bytes"])
    copy_out = by_text["COPY (SELECT id, name FROM items ORDER BY id) TO STDOUT"]
    assert (copy_out.extra["Copy"], copy_out.extra["Bytes"]) == ("out", facts["copy_out_bytes"])
    assert copy_out.tables == ["items"] and copy_in.written_tables == ["items"]
    assert by_text["UPDATE items SET price = price * 2 WHERE id >= $1"].written_tables == ["items"]
    select = by_text["SELECT id, name FROM items WHERE price > $1 ORDER BY id"]
    assert (select.columns, select.sample_rows) == (["id", "name"], [["2", "ink"], ["3", "pad"]])
    assert by_text["SELECT 2 AS two, 3 AS three"].columns == ["two", "three"]
    (message,) = messages(out)
    assert facts["notified"] == [(facts["notifier_pid"], "dockit_channel", "hello")]
    assert (message.attr("Destination"), message.attr("Direction"), message.attr("Size")) == (
        "dockit_channel",
        "deliver",
        5,
    )
    assert (message.attr("SenderPid"), message.attr("Status")) == (facts["notifier_pid"], "unacknowledged")
    assert SECRET_VALUE not in repr(out)


@pytest.mark.parametrize("mode", SPLITS)
def test_psycopg_any_split_same_records(psycopg_run, mode: str) -> None:
    recording, _ = psycopg_run
    channel = recording.channel(False)
    calls = summary(decode(recording.chunks(), channel, rows=3), times=mode != "whole")
    for seed in range(3 if mode == "random" else 1):
        assert (
            summary(decode(split(recording.chunks(), mode, seed), channel, rows=3), times=mode != "whole")
            == calls
        )


def test_psycopg_server_side_view(psycopg_run) -> None:
    """The same conversation seen by the server (its reads are the client's messages)."""
    recording, _ = psycopg_run
    client = summary(decode(recording.chunks(), recording.channel(False), rows=3))
    server = summary(decode(split(recording.chunks(True), "random", 7), recording.channel(True), rows=3))
    assert server == client


def test_annotations_and_secrets(psycopg_run) -> None:
    recording, _ = psycopg_run
    out = decode(recording.chunks(), recording.channel(False))
    notes = [o.text for o in out if isinstance(o, Annotation)]
    assert notes[0] == f"postgresql startup: user {ADMIN} database {recording_database(recording)}"
    assert "postgresql query: SELECT 1 AS one; SELECT 2 AS two, 3 AS three" in notes
    assert "postgresql query: SELECT * FROM no_such_table" in notes  # psycopg sends a Query when no parameter
    assert "postgresql parse: SELECT 1 / $1 AS broken" in notes
    assert 'postgresql error 42P01: relation "no_such_table" does not exist' in notes
    assert 'postgresql notice 00000: table "dockit_never_there" does not exist, skipping' in notes
    assert not [o for o in out if isinstance(o, Secret)]  # trust: no credential crossed


def recording_database(recording: Recording) -> str:
    startup = p.parse_startup(recording.stream("c2s")[4 : int.from_bytes(recording.stream("c2s")[:4], "big")])
    return startup.parameters["database"]


# --- asyncpg: binary formats, prepared statements ----------------------------------------------------

COLUMNS = (
    "i2 smallint, i4 int, i8 bigint, f4 real, f8 float8, n numeric, b bool, t text, by bytea, d date, "
    "tm time, ts timestamp, tz timestamptz, iv interval, u uuid, j jsonb, arr int[], ip inet"
)
NAMES = [c.split()[0] for c in COLUMNS.split(", ")]


@pytest.fixture(scope="module")
def asyncpg_run(env):
    import asyncpg

    row = (
        -7, 123456, -9_000_000_000, 1.25, -2.5e-7, decimal.Decimal("-12345.6789"), True, "héllo", b"\x01\xfe",
        datetime.date(2026, 2, 28), datetime.time(13, 14, 15, 500000), datetime.datetime(2026, 3, 4, 5, 6, 7, 890000),
        datetime.datetime(2026, 3, 4, 5, 6, 7, tzinfo=datetime.UTC), datetime.timedelta(days=3, seconds=3661),
        TOKEN, '{"k": [1, 2]}', [1, None, 3], "10.1.2.3",
    )  # fmt: skip

    async def run() -> dict[str, object]:
        facts: dict[str, object] = {}
        conn = await asyncpg.connect(
            host=HOST, port=env["relay"].port, user=ADMIN, database=env["db"], ssl=False
        )
        await conn.execute(f"CREATE TABLE typed ({COLUMNS})")
        placeholders = ", ".join(f"${i}" for i in range(1, len(NAMES) + 1))
        await conn.execute(f"INSERT INTO typed VALUES ({placeholders})", *row)
        facts["fetched"] = await conn.fetch("SELECT * FROM typed WHERE i4 = $1", 123456)
        statement = await conn.prepare("SELECT i4, t FROM typed WHERE i2 < $1")
        facts["first"] = await statement.fetch(0)
        facts["second"] = await statement.fetch(-100)
        try:
            await conn.execute("SELECT no_such_column FROM typed")
        except asyncpg.PostgresError as error:
            facts["error"] = (error.sqlstate, error.message)
        await conn.close()
        return facts

    facts = asyncio.run(run())
    recording = env["relay"].last()
    # The server's own text output of the stored row (psql prints it as the server sends it): what a
    # sampled row and the parameters must show.
    needs("psql")
    printed = subprocess.run(
        ["psql", "-XAt", "-F", "\x1f", "-h", HOST, "-U", ADMIN, "-d", env["db"], "-c", "SELECT * FROM typed"],
        capture_output=True, text=True, check=True, env={"PGSSLMODE": "disable", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    return recording, facts, printed.stdout.rstrip("\n").split("\x1f")


def test_asyncpg_binary_formats(asyncpg_run) -> None:
    recording, facts, text_row = asyncpg_run
    out = decode(recording.chunks(), recording.channel(False), rows=2)
    by_text: dict[str, list] = {}
    for q in queries(out):
        by_text.setdefault(q.text, []).append(q)
    placeholders = ", ".join(f"${i}" for i in range(1, len(NAMES) + 1))
    (insert,) = by_text[f"INSERT INTO typed VALUES ({placeholders})"]
    assert (insert.status, insert.affected_rows) == ("ok", 1)
    assert insert.parameters == text_row
    (select,) = by_text["SELECT * FROM typed WHERE i4 = $1"]
    assert len(facts["fetched"]) == 1
    assert (select.rows, select.parameters, select.columns) == (1, ["123456"], NAMES)
    assert select.sample_rows == [text_row]
    first, second = by_text["SELECT i4, t FROM typed WHERE i2 < $1"]
    assert (len(facts["first"]), len(facts["second"])) == (1, 0)
    assert (first.rows, first.parameters, first.sample_rows) == (1, ["0"], [["123456", "héllo"]])
    assert (second.rows, second.parameters, second.sample_rows) == (0, ["-100"], [])
    (failed,) = by_text["SELECT no_such_column FROM typed"]
    assert facts["error"] == ("42703", 'column "no_such_column" does not exist')
    assert (failed.status, failed.error_code, failed.error_message) == ("error", *facts["error"])


@pytest.mark.parametrize("mode", SPLITS)
def test_asyncpg_any_split_same_records(asyncpg_run, mode: str) -> None:
    recording = asyncpg_run[0]
    channel = recording.channel(False)
    times = mode != "whole"
    calls = summary(decode(recording.chunks(), channel, rows=2), times)
    assert summary(decode(split(recording.chunks(), mode, 5), channel, rows=2), times) == calls
    assert (
        summary(decode(split(recording.chunks(True), mode, 6), recording.channel(True), rows=2), times)
        == calls
    )


# --- psql: several statements in one Query -------------------------------------------------------------


@pytest.fixture(scope="module")
def psql_run(env):
    needs("psql")
    script = (
        "CREATE TABLE notes (id int, body text); INSERT INTO notes VALUES (1, 'a;b'), (2, $$x;y$$); "
        "SELECT * FROM notes /* ; */ ORDER BY id; SELECT * FROM missing_notes; SELECT 42"
    )
    result = subprocess.run(
        ["psql", "-X", "-h", HOST, "-p", str(env["relay"].port), "-U", ADMIN, "-d", env["db"], "-c", script],
        capture_output=True, text=True, env={"PGSSLMODE": "disable", "PATH": "/usr/bin:/bin"}, check=False,
    )  # fmt: skip
    return env["relay"].last(), result


def test_psql_several_statements_in_one_query(psql_run) -> None:
    recording, result = psql_run
    assert result.returncode == 1 and 'relation "missing_notes" does not exist' in result.stderr
    out = decode(recording.chunks(), recording.channel(False), rows=5)
    found = [fact(q) for q in queries(out)]
    assert found == [
        ("CREATE TABLE notes (id int, body text)", "ok", None, None, None, ()),
        ("INSERT INTO notes VALUES (1, 'a;b'), (2, $$x;y$$)", "ok", None, None, 2, ()),
        ("SELECT * FROM notes /* ; */ ORDER BY id", "ok", None, 2, None, ()),
        ("SELECT * FROM missing_notes", "error", "42P01", None, None, ()),
        # SELECT 42 is not run: the error ends the Query
    ]
    assert queries(out)[2].sample_rows == [["1", "a;b"], ["2", "x;y"]]
    assert (sessions(out)[0].extra["ApplicationName"]) == "psql"


# --- cut buffers, resynchronisation, garbage --------------------------------------------------------


def all_recordings(psycopg_run, asyncpg_run, psql_run) -> list[Recording]:
    return [psycopg_run[0], asyncpg_run[0], psql_run[0]]


@pytest.mark.parametrize("limit", [8, 40, 120, 1000])
def test_cut_buffers_decode_what_is_there(psycopg_run, asyncpg_run, psql_run, limit: int) -> None:
    """As `strace -s LIMIT` shows them: every record is a true prefix of a statement sent, marked
    truncated when it was cut, and every Query whose call was not cut is decoded exactly."""
    for recording in all_recordings(psycopg_run, asyncpg_run, psql_run):
        chunks = recording.chunks()
        sent = recording.stream("c2s").decode("utf-8", "replace")
        full = {q.text: fact(q) for q in queries(decode(chunks, recording.channel(False)))}
        out = decode(cut(chunks, limit), recording.channel(False))
        for query in queries(out):
            if not query.text.startswith("/*"):
                assert query.text in sent or query.text.split("$$")[0] in sent, query.text
            if query.text not in full:
                assert query.truncated, query.text
        whole_queries = [
            c.data
            for c in chunks
            if c.direction is Direction.OUT and len(c.data) <= limit and c.data[:1] == b"Q"
        ]
        texts = {q.text for q in queries(out)}
        for data in whole_queries:
            for statement in p.parse_query(data[5:]).split(";")[:1]:
                assert any(t.startswith(statement.strip()[:20]) for t in texts), statement


def test_damaged_stream_resynchronises(psycopg_run) -> None:
    """Garbage in the middle of both streams: the statements after the damage are decoded again."""
    recording, _ = psycopg_run
    chunks = recording.chunks()
    damaged = []
    middle = len(chunks) // 3
    for index, chunk in enumerate(chunks):
        data = chunk.data
        if index in (middle, middle + 1):
            data = b"\xff\x00garbage" + data[3:]
        damaged.append(Chunk(data=data, direction=chunk.direction, time=chunk.time, pid=chunk.pid, size=len(data),
                             call_index=chunk.call_index))  # fmt: skip
    full = [fact(q) for q in queries(decode(chunks, recording.channel(False)))]
    out = [fact(q) for q in queries(decode(damaged, recording.channel(False)))]
    assert out[-4:] == full[-4:]


def test_trace_attached_mid_connection(psycopg_run) -> None:
    """The trace starts after the startup (`dockit -p`): roles come from the messages, queries decode."""
    recording, _ = psycopg_run
    chunks = recording.chunks()
    start = next(i for i, c in enumerate(chunks) if c.data.startswith(b"P") and b"UPDATE items" in c.data)
    for server_side in (False, True):
        out = decode(recording.chunks(server_side)[start:], recording.channel(server_side))
        texts = [q.text for q in queries(out)]
        assert texts[0] == "UPDATE items SET price = price * 2 WHERE id >= $1"
        assert queries(out)[0].affected_rows == 2


def test_unanswered_requests_are_reported_unknown(psycopg_run) -> None:
    """Only the client's side was traced: every request is reported, with status unknown."""
    recording, _ = psycopg_run
    client_only = [c for c in recording.chunks() if c.direction is Direction.OUT]
    out = decode(client_only, recording.channel(False))
    assert {q.status for q in queries(out)} == {"unknown"}
    assert "SELECT 1 AS one" in [q.text for q in queries(out)]


CHANNEL = ChannelInfo(channel_id="tcp:test", kind="tcp", local="127.0.0.1:40000", remote="127.0.0.1:5432",
                      local_port=40000, remote_port=5432, pid=1)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=64), st.integers(0, 40)), max_size=30))
def test_random_bytes_never_raise(pieces) -> None:
    decoder = PostgresDecoder(CHANNEL, max_rows=2)
    for i, (out_dir, data, missing) in enumerate(pieces):
        decoder.feed(Chunk(data=data, direction=Direction.OUT if out_dir else Direction.IN, time=float(i),
                           pid=1, size=len(data) + missing, call_index=i))  # fmt: skip
    decoder.close(None)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # fmt: skip
@given(st.data())
def test_mutated_real_streams_never_raise_and_resync(psycopg_run, asyncpg_run, psql_run, data) -> None:
    recording = data.draw(st.sampled_from(all_recordings(psycopg_run, asyncpg_run, psql_run)))
    chunks = recording.chunks()
    decoder = PostgresDecoder(recording.channel(False), max_rows=3)
    damaged_until = len(chunks) * 2 // 3  # the last third is left intact
    for index, chunk in enumerate(chunks):
        raw = bytearray(chunk.data)
        size = len(raw)
        if index < damaged_until:
            action = data.draw(st.sampled_from(["keep", "keep", "flip", "cut", "drop", "insert"]))
            if action == "flip" and raw:
                for _ in range(data.draw(st.integers(1, 4))):
                    raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
                size = len(raw)
            elif action == "cut" and raw:
                raw = raw[: data.draw(st.integers(0, len(raw)))]
            elif action == "drop":
                continue
            elif action == "insert":
                raw[0:0] = data.draw(st.binary(min_size=1, max_size=8))
                size = len(raw)
        decoder.feed(Chunk(data=bytes(raw), direction=chunk.direction, time=chunk.time, pid=1, size=size,
                           call_index=index))  # fmt: skip
    decoder.close(None)


def test_resync_after_random_damage(psycopg_run) -> None:
    """Whatever the damage to the first half, the last statements are decoded as without it."""
    recording, _ = psycopg_run
    chunks = recording.chunks()
    full = [fact(q) for q in queries(decode(chunks, recording.channel(False)))]
    rng = random.Random(11)
    for _ in range(20):
        damaged = []
        for index, chunk in enumerate(chunks):
            raw = bytearray(chunk.data)
            if index < len(chunks) // 2 and raw and rng.random() < 0.3:
                raw[rng.randrange(len(raw))] = rng.randrange(256)
            damaged.append(Chunk(data=bytes(raw), direction=chunk.direction, time=chunk.time, pid=1, size=len(raw),
                                 call_index=index))  # fmt: skip
        out = [fact(q) for q in queries(decode(damaged, recording.channel(False)))]
        assert out[-3:] == full[-3:]


# --- detection -----------------------------------------------------------------------------------------


def test_score(psycopg_run, psql_run) -> None:
    startup = psycopg_run[0].chunks()[0]
    assert PostgresDecoder.score(startup.data, Direction.OUT, CHANNEL) == 100
    assert PostgresDecoder.score(p.build_ssl_request(), Direction.OUT, CHANNEL) == 100
    assert PostgresDecoder.score(p.build_cancel(42, 7), Direction.OUT, CHANNEL) == 100
    assert PostgresDecoder.score(p.build_query("select 1"), Direction.OUT, CHANNEL) == 60
    other = ChannelInfo(channel_id="tcp:x", kind="tcp", remote="127.0.0.1:8080", remote_port=8080, pid=1)
    for data in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"*1\r\n$4\r\nPING\r\n", b"\x16\x03\x01\x02\x00\x01",
                 b"J\x00\x00\x00\x0a5.5.5-10.11\x00", b"\x00\x3a\x00\x00\x01\x00\x00\x00"):  # fmt: skip
        assert PostgresDecoder.score(data, Direction.OUT, other) == 0, data
    sync = p.build_sync()
    assert PostgresDecoder.score(sync, Direction.OUT, CHANNEL) == 40  # on the port: weak evidence counts
    assert PostgresDecoder.score(sync, Direction.OUT, other) == 0


def test_builders_match_the_server_bytes(psql_run) -> None:
    """The builders the benchmark and the fuzzing use write what the server and psql write."""
    recording = psql_run[0]
    client = recording.stream("c2s")
    assert client.endswith(p.message(p.TERMINATE))
    server = recording.stream("s2c")
    assert p.build_command_complete("CREATE TABLE") in server
    assert p.build_ready_for_query("I") in server


def test_reading_since_names_where_an_unfinished_message_began(psycopg_run) -> None:
    """A message written in pieces (here the real startup packet, in two calls): until its last piece,
    the decoder says where it began, so `--each-call` can hide every call of a credential message."""
    recording, _ = psycopg_run
    startup = recording.chunks()[0]
    decoder = PostgresDecoder(recording.channel(False))
    first, second = startup.data[:10], startup.data[10:]
    decoder.feed(Chunk(data=first, direction=Direction.OUT, time=1.0, pid=1, size=len(first), call_index=7))
    assert decoder.reading_since() == 7
    decoder.feed(Chunk(data=second, direction=Direction.OUT, time=1.1, pid=1, size=len(second), call_index=8))
    assert decoder.reading_since() is None
