"""MySqlDecoder on real exchanges with the MariaDB server on 127.0.0.1:3306, recorded through a relay
(tests/relay.py) while PyMySQL, mysql-connector-python (server-side prepared statements), the
mariadb CLI and a raw client (CLIENT_DEPRECATE_EOF) talk to it. Expected values come from what each
test sent and what the drivers report (rowcount, lastrowid, exceptions), never from the decoder.
Each recording is fed whole, one byte at a time, and in random splits."""

from __future__ import annotations

import datetime
import os
import random
import secrets
import shutil
import socket
import subprocess
import tracemalloc
import zlib
from collections.abc import Iterable, Sequence

import pytest

from decoders.api import ChannelInfo, Chunk, Direction
from decoders.mysql import MySqlDecoder
from decoders.records import Annotation, DatabaseSession, Output, SqlQuery, StartTls
from decoders.sql_tables import tables_in
from protocols import mysql as p
from tests.conftest import mariadb_listening
from tests.relay import C2S, S2C, Recording, Relay

pytestmark = pytest.mark.mysql




requires_server = pytest.mark.skipif(not mariadb_listening(), reason="no MariaDB/MySQL server on 127.0.0.1:3306")

CHANNEL = ChannelInfo(
    channel_id="tcp:1",
    kind="tcp",
    local="127.0.0.1:40000",
    remote="127.0.0.1:3306",
    remote_port=3306,
    pid=4242,
)


# --- feeding --------------------------------------------------------------------------------------


def chunks_of(recording: Recording, pid: int = 4242) -> list[Chunk]:
    return [
        Chunk(
            data=data,
            direction=Direction.OUT if d == C2S else Direction.IN,
            time=t,
            pid=pid,
            size=len(data),
            call_index=i,
        )
        for i, (d, t, data) in enumerate(recording.pieces)
    ]


def split(chunks: Sequence[Chunk], mode: str, seed: int = 0) -> Iterable[Chunk]:
    """The same bytes, whole, one byte per chunk, or cut at random places (order kept)."""
    rng = random.Random(seed)
    for chunk in chunks:
        if mode == "whole":
            yield chunk
            continue
        pos = 0
        while pos < len(chunk.data):
            n = 1 if mode == "bytes" else rng.randint(1, max(1, min(len(chunk.data), 3000)))
            piece = chunk.data[pos : pos + n]
            yield Chunk(
                data=piece, direction=chunk.direction, time=chunk.time, pid=chunk.pid, size=len(piece),
                call_index=chunk.call_index,
            )  # fmt: skip
            pos += n


def decode(chunks: Iterable[Chunk], max_rows: int = 0, channel: ChannelInfo = CHANNEL) -> list[Output]:
    decoder = MySqlDecoder(channel, max_rows=max_rows)
    out: list[Output] = []
    last = None
    for chunk in chunks:
        out += decoder.feed(chunk)
        last = chunk.time
    out += decoder.close(last)
    return out


def queries(out: Sequence[Output]) -> list[SqlQuery]:
    return [o for o in out if isinstance(o, SqlQuery)]


def sessions(out: Sequence[Output]) -> list[DatabaseSession]:
    return [o for o in out if isinstance(o, DatabaseSession)]


def by_text(out: Sequence[Output], text: str) -> list[SqlQuery]:
    return [q for q in queries(out) if q.text == text]


def one(out: Sequence[Output], text: str) -> SqlQuery:
    found = by_text(out, text)
    assert len(found) == 1, (text, [q.text for q in queries(out)])
    return found[0]


def summary(out: Sequence[Output]) -> list[tuple]:
    """What must not depend on how the bytes were split."""
    rows = []
    for o in out:
        if isinstance(o, SqlQuery):
            rows.append((o.text, o.status, o.error_code, o.rows, o.affected_rows, o.last_insert_id,
                         tuple(o.parameters), tuple(o.columns), tuple(map(tuple, o.sample_rows)), o.truncated,
                         o.start))  # fmt: skip
        elif isinstance(o, DatabaseSession):
            rows.append(("session", o.user, o.database, o.server_version, o.connection_id, o.process))
    return rows


MODES = ("whole", "bytes", "random")


# --- recordings -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def env():
    """A relay and a scratch database (dropped afterwards); `version` is the server's own answer."""
    if not mariadb_listening():
        pytest.skip("no MariaDB/MySQL server on 127.0.0.1:3306")
    import pymysql

    db = f"dockit_test_{secrets.token_hex(4)}"
    admin = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {db}")
        cur.execute("SELECT VERSION()")
        version = cur.fetchone()[0]
    relay = Relay(("127.0.0.1", 3306))
    yield {"relay": relay, "db": db, "version": version, "admin": admin}
    relay.close()
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {db}")
    admin.close()


@pytest.fixture(scope="module")
def pymysql_run(env):
    """Text protocol through PyMySQL (no CLIENT_DEPRECATE_EOF)."""
    import pymysql
    from pymysql.constants import CLIENT

    db = env["db"]
    facts: dict = {
        "user_secret": f"S3cret-{secrets.token_hex(6)}",
        "user": f"dockit_u_{secrets.token_hex(3)}",
    }
    conn = pymysql.connect(
        host="127.0.0.1", port=env["relay"].port, user="root", password="", database=db,
        client_flag=CLIENT.MULTI_STATEMENTS, autocommit=True,
    )  # fmt: skip
    facts["connection_id"] = conn.thread_id()
    cur = conn.cursor()
    facts["create"] = (
        "CREATE TABLE t1 (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50), score DOUBLE, born DATETIME NULL)"
    )
    cur.execute(facts["create"])
    facts["insert"] = (
        "INSERT INTO t1 (name, score, born) VALUES ('alice', 1.5, '2001-02-03 04:05:06'), ('bob', 2.5, NULL), "
        "('carol', NULL, NULL)"
    )
    cur.execute(facts["insert"])
    facts["insert_rowcount"], facts["insert_lastrowid"] = cur.rowcount, cur.lastrowid
    facts["select"] = "SELECT id, name, score FROM t1 ORDER BY id"
    cur.execute(facts["select"])
    facts["select_rows"] = [[None if v is None else str(v) for v in row] for row in cur.fetchall()]
    facts["select_rowcount"] = cur.rowcount
    facts["select_columns"] = [d[0] for d in cur.description]
    facts["update"] = "UPDATE t1 SET score = score + 1 WHERE score IS NOT NULL"
    cur.execute(facts["update"])
    facts["update_rowcount"] = cur.rowcount
    facts["bad"] = "SELECT * FROM no_such_table"
    try:
        cur.execute(facts["bad"])
    except pymysql.err.ProgrammingError as error:
        facts["bad_code"], facts["bad_message"] = error.args
    facts["multi"] = "SELECT 1; SELECT 2, 3 UNION SELECT 4, 5"
    cur.execute(facts["multi"])
    counts = [cur.rowcount]
    while cur.nextset():
        counts.append(cur.rowcount)
    facts["multi_rows"] = counts  # one per statement: the server answers each in turn
    conn.select_db(db)
    conn.ping()
    facts["create_user"] = f"CREATE USER '{facts['user']}'@'localhost' IDENTIFIED BY '{facts['user_secret']}'"
    cur.execute(facts["create_user"])
    cur.execute(f"DROP USER '{facts['user']}'@'localhost'")
    facts["big"] = "SELECT '" + "x" * 70000 + "' AS big, 1 AS one"
    cur.execute(facts["big"])
    facts["big_rowcount"] = cur.rowcount
    conn.close()
    return env["relay"].last(), facts


@pytest.fixture(scope="module")
def connector_run(env):
    """Server-side prepared statements through mysql-connector-python (pure Python protocol)."""
    import mysql.connector

    db = env["db"]
    admin = env["admin"]
    with admin.cursor() as cur:
        cur.execute(
            f"CREATE TABLE {db}.t2 (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50), score DOUBLE, born DATETIME NULL)"
        )
        cur.execute(
            f"INSERT INTO {db}.t2 (name, score, born) VALUES ('alice', 2.5, '2001-02-03 04:05:06'), ('bob', 3.5, NULL), ('carol', NULL, NULL)"
        )
    facts: dict = {}
    conn = mysql.connector.connect(
        host="127.0.0.1", port=env["relay"].port, user="root", password="", database=db, use_pure=True
    )
    facts["connection_id"] = conn.connection_id
    cur = conn.cursor(prepared=True)
    facts["select"] = "SELECT id, name, score, born FROM t2 WHERE id = ? OR name = ?"
    cur.execute(facts["select"].replace("?", "%s"), (1, "bob"))
    facts["select_rows_1"] = [[None if v is None else str(v) for v in row] for row in cur.fetchall()]
    cur.execute(facts["select"].replace("?", "%s"), (3, None))
    facts["select_rows_2"] = [[None if v is None else str(v) for v in row] for row in cur.fetchall()]
    facts["insert"] = "INSERT INTO t2 (name, score, born) VALUES (?, ?, ?)"
    facts["insert_params"] = ("dave", 4.25, datetime.datetime(2020, 1, 2, 3, 4, 5))
    cur.execute(facts["insert"].replace("?", "%s"), facts["insert_params"])
    facts["insert_rowcount"], facts["insert_lastrowid"] = cur.rowcount, cur.lastrowid
    conn.commit()
    facts["bad"] = "SELECT * FROM no_such_table WHERE id = ?"
    try:
        cur.execute(facts["bad"].replace("?", "%s"), (1,))
    except mysql.connector.Error as error:
        facts["bad_code"], facts["bad_message"] = error.errno, error.msg
    cur.close()
    conn.close()
    return env["relay"].last(), facts


class RawClient:
    """A minimal client built from protocols.mysql, to get real server replies under
    CLIENT_DEPRECATE_EOF (none of the installed Python drivers asks for it)."""

    BASE = p.CLIENT_PROTOCOL_41 | p.CLIENT_SECURE_CONNECTION | p.CLIENT_PLUGIN_AUTH | p.CLIENT_TRANSACTIONS
    BASE |= p.CLIENT_MULTI_RESULTS

    def __init__(
        self, port: int, db: str, caps: int = BASE | p.CLIENT_LONG_PASSWORD | p.CLIENT_DEPRECATE_EOF
    ) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        greeting = p.parse_greeting(self._read_quiet()[4:])
        self.connection_id = greeting.connection_id
        wanted = caps & ~p.CLIENT_LONG_PASSWORD  # CLIENT_MYSQL: a MariaDB server leaves it unset
        assert greeting.capabilities & wanted == wanted, "the server does not offer what this test needs"
        self.sock.sendall(p.packets(p.build_handshake_response(caps, "root", database=db), 1))
        reply = self._read_quiet()
        assert reply[4] == 0, reply  # OK

    def _read_quiet(self, quiet: float = 0.15) -> bytes:
        data = b""
        self.sock.settimeout(5)
        data += self.sock.recv(1 << 20)
        self.sock.settimeout(quiet)
        try:
            while chunk := self.sock.recv(1 << 20):
                data += chunk
        except TimeoutError:
            pass
        return data

    def command(self, payload: bytes, reply: bool = True) -> bytes:
        self.sock.sendall(p.packets(payload, 0))
        return self._read_quiet() if reply else b""

    def close(self) -> None:
        self.sock.sendall(p.packets(bytes([p.COM_QUIT]), 0))
        self.sock.close()


@pytest.fixture(scope="module")
def raw_run(env):
    facts: dict = {}
    client = RawClient(env["relay"].port, env["db"])
    facts["connection_id"] = client.connection_id
    facts["select"] = "SELECT seq, seq * 2 AS twice FROM seq_1_to_5"
    client.command(bytes([p.COM_QUERY]) + facts["select"].encode())
    facts["empty"] = "SELECT seq FROM seq_1_to_5 WHERE seq > 10"
    client.command(bytes([p.COM_QUERY]) + facts["empty"].encode())
    facts["bad"] = "SELECT * FROM no_such_table"
    client.command(bytes([p.COM_QUERY]) + facts["bad"].encode())
    facts["prepare"] = "SELECT ? + 1 AS answer"
    reply = client.command(bytes([p.COM_STMT_PREPARE]) + facts["prepare"].encode())
    statement_id = p.parse_prepare_ok(reply[4 : 4 + int.from_bytes(reply[:3], "little")]).statement_id
    client.command(p.build_execute(statement_id, [41]))
    client.command(p.build_execute(statement_id, [1], bind_types=False))  # types remembered by the server
    client.command(bytes([p.COM_STMT_CLOSE]) + statement_id.to_bytes(4, "little"), reply=False)
    # MariaDB's pipelined prepare-and-execute: both in one write, the execute naming statement -1.
    facts["pipelined"] = "SELECT ? * 3 AS triple"
    client.sock.sendall(
        p.packets(bytes([p.COM_STMT_PREPARE]) + facts["pipelined"].encode(), 0)
        + p.packets(p.build_execute(0xFFFFFFFF, [14]), 0)
    )
    client._read_quiet()
    client.command(bytes([p.COM_PING]))
    client.close()
    return env["relay"].last(), facts


@pytest.fixture(scope="module")
def raw_mariadb_run(env):
    """MariaDB's own capabilities: metadata cached by the client (the second execute of a statement
    comes without column definitions) and extended column metadata; no CLIENT_DEPRECATE_EOF."""
    caps = RawClient.BASE | p.MARIADB_CLIENT_CACHE_METADATA | p.MARIADB_CLIENT_EXTENDED_METADATA
    client = RawClient(env["relay"].port, env["db"], caps)
    facts = {"prepare": "SELECT seq, seq * ? AS product, CAST(seq AS CHAR) AS s FROM seq_1_to_3"}
    reply = client.command(bytes([p.COM_STMT_PREPARE]) + facts["prepare"].encode())
    statement_id = p.parse_prepare_ok(reply[4 : 4 + int.from_bytes(reply[:3], "little")]).statement_id
    first = client.command(p.build_execute(statement_id, [10]))
    second = client.command(p.build_execute(statement_id, [100]))
    # The server skipped the column definitions the second time: the reply is much shorter.
    facts["metadata_skipped"] = len(second) < len(first) - 40
    facts["query"] = "SELECT 'a' AS letter, 2.5 AS num"
    client.command(bytes([p.COM_QUERY]) + facts["query"].encode())
    client.close()
    return env["relay"].last(), facts


@pytest.fixture(scope="module")
def cli_run(env):
    if shutil.which("mariadb") is None:
        pytest.skip("the mariadb client is not installed")
    facts = {"select": "SELECT seq FROM seq_1_to_3"}
    subprocess.run(
        ["mariadb", "-h", "127.0.0.1", "-P", str(env["relay"].port), "-u", "root", "-D", env["db"], "--skip-ssl",
         "-e", facts["select"]],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return env["relay"].last(), facts


# --- tests ----------------------------------------------------------------------------------------


@requires_server
@pytest.mark.parametrize("mode", MODES)
def test_pymysql_text_protocol(pymysql_run, env, mode: str) -> None:
    recording, f = pymysql_run
    out = decode(split(chunks_of(recording), mode), max_rows=2)

    [session] = sessions(out)
    assert (session.user, session.database, session.connection_id) == ("root", env["db"], f["connection_id"])
    assert session.server_version == env["version"]
    assert session.protocol == "mysql" and session.server == "127.0.0.1:3306" and session.process == 4242

    create = one(out, f["create"])
    assert (create.status, create.affected_rows, create.tables, create.written_tables) == (
        "ok",
        0,
        ["t1"],
        ["t1"],
    )
    insert = one(out, f["insert"])
    assert (insert.status, insert.affected_rows, insert.last_insert_id) == (
        "ok",
        f["insert_rowcount"],
        f["insert_lastrowid"],
    )
    assert insert.written_tables == ["t1"]
    select = one(out, f["select"])
    assert (select.status, select.rows, select.columns) == ("ok", f["select_rowcount"], f["select_columns"])
    assert select.sample_rows == f["select_rows"][:2]
    assert select.tables == ["t1"] and select.written_tables == []
    assert one(out, f["update"]).affected_rows == f["update_rowcount"]
    bad = one(out, f["bad"])
    assert (bad.status, bad.error_code, bad.error_message) == ("error", f["bad_code"], f["bad_message"])
    assert bad.error_code == 1146
    # One record per statement of the multi-statement query, each with its own row count and columns.
    first, second = (one(out, text) for text in f["multi"].split("; "))
    assert [first.rows, second.rows] == f["multi_rows"] == [1, 2]
    assert (first.status, second.status, first.columns, second.columns) == ("ok", "ok", ["1"], ["2", "3"])
    use = one(out, f"USE {env['db']}")
    assert use.status == "ok" and use.tables == []
    big = one(out, f["big"])
    assert (big.status, big.rows, big.truncated, big.columns) == (
        "ok",
        f["big_rowcount"],
        False,
        ["big", "one"],
    )

    # The password of CREATE USER never comes out, in records or in annotations.
    assert f["user_secret"] not in repr(out)
    assert len(by_text(out, f"CREATE USER '{f['user']}'@'localhost' IDENTIFIED BY '<redacted>'")) == 1

    for q in queries(out):
        assert q.protocol == "mysql" and q.session == "tcp:1" and q.process == 4242
        assert q.status in ("ok", "error") and q.duration is not None and q.duration >= 0
    # Each query is annotated at the call that carried it.
    notes = [o for o in out if isinstance(o, Annotation)]
    index = next(
        i for i, (d, _, data) in enumerate(recording.pieces) if d == C2S and f["select"].encode() in data
    )
    assert Annotation(index, f"mysql query: {f['select']}") in notes
    if mode == "whole":
        start = next(t for d, t, data in recording.pieces if d == C2S and f["select"].encode() in data)
        assert select.start == start


@requires_server
def test_splits_give_the_same_records(pymysql_run, connector_run, raw_run) -> None:
    for recording, _ in (pymysql_run, connector_run, raw_run):
        chunks = chunks_of(recording)
        whole = summary(decode(chunks, max_rows=3))
        assert whole == summary(decode(split(chunks, "bytes"), max_rows=3))
        for seed in range(5):
            assert whole == summary(decode(split(chunks, "random", seed), max_rows=3))


@requires_server
@pytest.mark.parametrize("mode", MODES)
def test_connector_prepared_statements(connector_run, env, mode: str) -> None:
    recording, f = connector_run
    out = decode(split(chunks_of(recording), mode), max_rows=5)
    [session] = sessions(out)
    assert (session.user, session.database, session.connection_id) == ("root", env["db"], f["connection_id"])

    first, second = by_text(out, f["select"])
    assert (first.status, first.parameters, first.rows) == ("ok", ["1", "bob"], len(f["select_rows_1"]))
    assert first.sample_rows == f["select_rows_1"]
    assert first.columns == ["id", "name", "score", "born"]
    assert (second.parameters, second.rows, second.sample_rows) == (
        ["3", None],
        len(f["select_rows_2"]),
        f["select_rows_2"],
    )
    insert = one(out, f["insert"])
    name, score, born = f["insert_params"]
    assert insert.parameters == [name, str(score), str(born)]
    assert (insert.status, insert.affected_rows, insert.last_insert_id) == (
        "ok",
        f["insert_rowcount"],
        f["insert_lastrowid"],
    )
    assert insert.written_tables == ["t2"]
    bad = one(out, f["bad"])  # fails at PREPARE: reported, since no execute follows
    assert (bad.status, bad.error_code, bad.error_message) == ("error", f["bad_code"], f["bad_message"])
    assert any(isinstance(o, Annotation) and o.text == f"mysql prepare: {f['select']}" for o in out)
    assert any(isinstance(o, Annotation) and o.text == f"mysql execute: {f['select']}" for o in out)


@requires_server
@pytest.mark.parametrize("mode", MODES)
def test_raw_client_deprecate_eof(raw_run, env, mode: str) -> None:
    recording, f = raw_run
    out = decode(split(chunks_of(recording), mode), max_rows=5)
    [session] = sessions(out)
    assert (session.user, session.database, session.connection_id) == ("root", env["db"], f["connection_id"])
    select = one(out, f["select"])
    assert (select.rows, select.columns) == (5, ["seq", "twice"])
    assert select.sample_rows == [[str(i), str(2 * i)] for i in range(1, 6)]
    empty = one(out, f["empty"])
    assert (empty.status, empty.rows) == ("ok", 0)
    assert one(out, f["bad"]).error_code == 1146
    first, second = by_text(out, f["prepare"])
    assert (first.parameters, first.sample_rows, first.rows) == (["41"], [["42"]], 1)
    assert (second.parameters, second.sample_rows, second.rows) == (["1"], [["2"]], 1)
    pipelined = one(out, f["pipelined"])
    assert (pipelined.status, pipelined.parameters, pipelined.sample_rows) == ("ok", ["14"], [["42"]])
    texts = [f["select"], f["empty"], f["bad"], f["prepare"], f["prepare"], f["pipelined"]]
    assert [q.text for q in queries(out)] == texts


@requires_server
@pytest.mark.parametrize("mode", MODES)
def test_raw_client_mariadb_cached_metadata(raw_mariadb_run, mode: str) -> None:
    recording, f = raw_mariadb_run
    assert f["metadata_skipped"]
    out = decode(split(chunks_of(recording), mode), max_rows=5)
    first, second = by_text(out, f["prepare"])
    assert (first.parameters, first.rows, first.columns) == (["10"], 3, ["seq", "product", "s"])
    assert first.sample_rows == [[str(i), str(10 * i), str(i)] for i in (1, 2, 3)]
    # No column definitions came with the second execute: its rows are read with the cached ones.
    assert (second.parameters, second.rows) == (["100"], 3)
    assert second.sample_rows == [[str(i), str(100 * i), str(i)] for i in (1, 2, 3)]
    query = one(out, f["query"])
    assert (query.columns, query.sample_rows) == (["letter", "num"], [["a", "2.5"]])


@pytest.fixture(scope="module")
def compressed_run(env):
    if shutil.which("mariadb") is None:
        pytest.skip("the mariadb client is not installed")
    facts = {"queries": ["SELECT seq FROM seq_1_to_3", "SELECT 'abc' AS s", "SELECT REPEAT('x', 100000) AS big",
                         "SELECT * FROM no_such_table"]}  # fmt: skip
    subprocess.run(
        ["mariadb", "-h", "127.0.0.1", "-P", str(env["relay"].port), "-u", "root", "-D", env["db"], "--skip-ssl",
         "--compress", "--force", "-e", "; ".join(facts["queries"])],
        capture_output=True, timeout=30,
    )  # fmt: skip
    return env["relay"].last(), facts


@requires_server
@pytest.mark.parametrize("mode", MODES)
def test_mariadb_cli_compressed(compressed_run, env, mode: str) -> None:
    """CLIENT_COMPRESS (mariadb --compress): zlib-wrapped packets after the login are decoded too."""
    recording, f = compressed_run
    out = decode(split(chunks_of(recording), mode), max_rows=1)
    [session] = sessions(out)
    assert session.extra["Compressed"] == "true" and session.database == env["db"]
    assert [q.text for q in queries(out)] == f["queries"]
    seq, abc, big, bad = queries(out)
    assert (seq.rows, abc.sample_rows, big.rows, big.sample_rows) == (3, [["abc"]], 1, [["x" * 100000]])
    assert (bad.status, bad.error_code) == ("error", 1146)


def zeros_bomb() -> bytes:
    """A compressed packet of about 16 KB that claims (and holds) 16 MB of zeros (issue 17)."""
    plain = 0xFFFFFF
    body = zlib.compress(b"\0" * plain, 9)
    return len(body).to_bytes(3, "little") + b"\0" + plain.to_bytes(3, "little") + body


@requires_server
def test_compressed_packets_claiming_16_mb_of_zeros_are_bounded(compressed_run) -> None:
    """200 packets of zeros between the first query and the second of a real `mariadb --compress`
    session: they inflated to millions of empty packets (7 s and 450 MB for one, no end for 200). Now
    each ends at its first empty packet, the channel inflates at most 128 times what it read past
    64 MB, and the session's queries around them are decoded."""
    recording, f = compressed_run
    chunks = chunks_of(recording)

    def carried(chunk: Chunk) -> bytes:  # the bytes a client's compressed packet carries
        if chunk.data[4:7] == b"\0\0\0":
            return chunk.data[7:]
        try:
            return zlib.decompressobj().decompress(chunk.data[7:])
        except zlib.error:  # the login, before compression
            return b""

    second = next(
        i for i, c in enumerate(chunks) if c.direction is Direction.OUT and f["queries"][1].encode() in carried(c)
    )
    bomb = zeros_bomb()
    assert len(bomb) < 20_000
    bombs = [Chunk(data=bomb, direction=Direction.OUT, time=chunks[second].time, pid=4242, size=len(bomb),
                   call_index=10_000 + n) for n in range(200)]  # fmt: skip
    tracemalloc.start()
    try:
        out = decode(chunks[:second] + bombs + chunks[second:])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 120 * 1024 * 1024, f"{peak / 1e6:.0f} MB"
    assert [q.text for q in queries(out)] == f["queries"]


@requires_server
@pytest.mark.parametrize("limit", [9, 20, 30, 64, 200])
def test_mariadb_cli_compressed_cut(compressed_run, limit: int) -> None:
    """Compressed and cut: what comes out is the start of what was sent with its own outcome (or
    none), never garbage and never another query's reply."""
    recording, f = compressed_run
    cut = [
        Chunk(data=c.data[:limit], direction=c.direction, time=c.time, pid=c.pid, size=len(c.data))
        for c in chunks_of(recording)
    ]
    out = decode(cut)
    assert len(sessions(out)) == 1
    for q in queries(out):
        [sql] = [sql for sql in f["queries"] if sql.startswith(q.text)]
        assert q.status in ("unknown", "error" if "no_such_table" in sql else "ok"), (q.text, q.status)
    if limit >= 30:  # the command packets (7 + 4 bytes of headers) show their SQL from here on
        assert len(queries(out)) == len(f["queries"])


@requires_server
def test_mariadb_cli(cli_run, env) -> None:
    recording, f = cli_run
    out = decode(chunks_of(recording), max_rows=5)
    [session] = sessions(out)
    assert (session.user, session.database) == ("root", env["db"])
    select = one(out, f["select"])
    assert (select.status, select.rows, select.sample_rows) == ("ok", 3, [["1"], ["2"], ["3"]])


@requires_server
def test_login_refused(env) -> None:
    """A wrong password: the server's ERR 1045 ends the login; the session says so, no password shows."""
    import pymysql

    password = f"wrong-{secrets.token_hex(4)}"
    with pytest.raises(pymysql.err.OperationalError) as refused:
        pymysql.connect(host="127.0.0.1", port=env["relay"].port, user="nobody_dockit", password=password)
    out = decode(chunks_of(env["relay"].last()))
    [session] = sessions(out)
    code, message = refused.value.args
    assert session.user == "nobody_dockit" and session.extra["LoginError"] == f"{code} {message}"
    assert code in (1045, 1698) and queries(out) == []
    assert password not in repr(out)


@requires_server
def test_ssl_request_says_tls_follows(pymysql_run) -> None:
    """After an SSL request the socket carries TLS: the decoder says so (`StartTls`, so the pipeline feeds
    it the plaintext instead), TLS records fed to it anyway are ignored, and with nothing more the
    session is reported at close, encrypted, without a user. (The plaintext that continues the
    conversation is decoded in tests/test_tls_live.py, from a real TLS server traced with ltrace.)"""
    recording, _ = pymysql_run
    greeting = chunks_of(recording)[0]
    ssl = p.packets(
        p.SslRequest.build({"capabilities": p.CLIENT_PROTOCOL_41 | p.CLIENT_SSL | p.CLIENT_LONG_PASSWORD,
                            "max_packet_size": 1 << 24, "character_set": 45, "filler": bytes(19),
                            "mariadb_capabilities": 0}),
        1,
    )  # fmt: skip
    tls = b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(200)
    decoder = MySqlDecoder(
        ChannelInfo(channel_id="tcp:1", kind="tcp", remote="127.0.0.1:3306", remote_port=3306)
    )
    out = list(decoder.feed(greeting))
    out += decoder.feed(
        Chunk(data=ssl, direction=Direction.OUT, time=2.0, pid=1, size=len(ssl), call_index=7)
    )
    assert StartTls(7) in out
    assert decoder.feed(Chunk(data=tls, direction=Direction.OUT, time=3.0, pid=1, size=len(tls))) == ()
    out += decoder.close(4.0)
    [session] = sessions(out)
    assert session.extra["Encrypted"] == "true" and session.user is None and queries(out) == []


@requires_server
def test_load_data_local_infile(env) -> None:
    import pymysql

    admin = env["admin"]
    with admin.cursor() as cur:
        cur.execute(f"CREATE TABLE {env['db']}.t4 (a INT, b VARCHAR(10))")
    path = __import__("pathlib").Path(__import__("tempfile").mkdtemp()) / "rows.tsv"
    path.write_text("".join(f"{i}\tv{i}\n" for i in range(7)))
    conn = pymysql.connect(host="127.0.0.1", port=env["relay"].port, user="root", password="",
                           database=env["db"], local_infile=True, autocommit=True)  # fmt: skip
    sql = f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE t4"
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            rowcount = cur.rowcount
            cur.execute("SELECT COUNT(*) FROM t4")
    except pymysql.err.OperationalError as error:
        pytest.skip(f"the server refuses LOAD DATA LOCAL: {error}")
    finally:
        conn.close()
    out = decode(chunks_of(env["relay"].last()))
    load = one(out, sql)
    assert (load.status, load.affected_rows, load.written_tables) == ("ok", rowcount, ["t4"])
    assert rowcount == 7
    assert one(out, "SELECT COUNT(*) FROM t4").rows == 1


@requires_server
def test_server_side_view(pymysql_run) -> None:
    """Traced from the server (an accepted socket): OUT is server->client; roles still come out right."""
    recording, f = pymysql_run
    server_channel = ChannelInfo(
        channel_id="tcp:2", kind="tcp", local="127.0.0.1:3306", remote="127.0.0.1:40000", local_port=3306,
        listening=True, pid=99,
    )  # fmt: skip
    flipped = [
        Chunk(
            data=c.data,
            direction=c.direction.reverse(),
            time=c.time,
            pid=99,
            size=c.size,
            call_index=c.call_index,
        )
        for c in chunks_of(recording)
    ]
    out = decode(flipped, channel=server_channel)
    assert one(out, f["select"]).rows == f["select_rowcount"]
    assert sessions(out)[0].server == "127.0.0.1:3306"


def _commands(recording: Recording) -> list[bytes]:
    """The client's command payloads, in order, walked with the packet header only."""
    stream = b"".join(data for d, _, data in recording.pieces if d == C2S)
    payloads, pos = [], 0
    while pos + 4 <= len(stream):
        header = p.PacketHeader.parse(stream[pos : pos + 4])
        if header.sequence_id == 0:
            payloads.append(stream[pos + 4 : pos + 4 + header.length])
        pos += 4 + header.length
    return payloads


@requires_server
@pytest.mark.parametrize("limit", [9, 20, 32, 200, 500, 4096])
def test_cut_buffers_resync(pymysql_run, connector_run, limit: int) -> None:
    """strace -s LIMIT: every buffer cut to LIMIT bytes; each query comes out as far as it was
    printed, marked truncated when cut, none lost, and the next one is decoded again."""

    def cut(recording: Recording) -> list[Chunk]:
        return [
            Chunk(
                data=c.data[:limit],
                direction=c.direction,
                time=c.time,
                pid=c.pid,
                size=len(c.data),
                call_index=c.call_index,
            )  # fmt: skip
            for c in chunks_of(recording)
        ]

    recording, f = pymysql_run
    out = decode(cut(recording))
    expected = []  # (text as far as printed, the request was cut, the full SQL)
    for payload in _commands(recording):
        visible = payload[: limit - 4]
        text = p.text(visible[1:]).replace(f["user_secret"], "<redacted>")
        if payload[0] == p.COM_QUERY and p.text(payload[1:]) == f["multi"] and limit >= 200:
            # The multi-statement query's replies (under 200 bytes) printed whole: a record per statement.
            expected += [(statement, False, statement) for statement in f["multi"].split("; ")]
        elif payload[0] == p.COM_QUERY:
            expected.append((text, len(payload) > len(visible), p.text(payload[1:])))
        elif payload[0] == p.COM_INIT_DB:
            expected.append(("USE " + text, len(payload) > len(visible), None))
    got = queries(out)
    assert [q.text for q in got] == [text for text, _, _ in expected]
    for q, (_, request_cut, sql) in zip(got, expected, strict=True):
        assert q.truncated or not request_cut
        if sql and not request_cut:  # a whole text keeps all its tables, however cut its reply
            assert q.tables == tables_in(sql)[0], (sql, q.tables)
        if sql == f["bad"]:
            assert q.status == "error" and q.error_code == 1146
        if sql == f["insert"] and limit >= 32:  # the OK packet (11 bytes) was printed whole
            assert (q.status, q.affected_rows) == ("ok", f["insert_rowcount"])

    recording, _ = connector_run
    out = decode(cut(recording))
    commands = _commands(recording)
    sql_commands = [c for c in commands if c[0] in (p.COM_QUERY, p.COM_STMT_EXECUTE, p.COM_INIT_DB)]
    failed_prepares = 1  # the unknown table
    assert len(sql_commands) <= len(queries(out)) <= len(sql_commands) + failed_prepares


@requires_server
@pytest.mark.parametrize("listening", [False, True])
def test_trace_attached_mid_connection(pymysql_run, listening: bool) -> None:
    """`dockit -p` on a connected client: no greeting, no login, the first bytes seen are a reply
    tail; roles come from the first command and queries are decoded from there on."""
    recording, f = pymysql_run
    chunks = chunks_of(recording)
    start = next(
        i for i, c in enumerate(chunks) if c.direction is Direction.OUT and f["insert"].encode() in c.data
    )
    tail = chunks[start - 1 :]  # begins with the reply to the CREATE TABLE
    channel = CHANNEL
    if listening:  # seen from the server: directions flip
        channel = ChannelInfo(channel_id="tcp:3", kind="tcp", local="127.0.0.1:3306", listening=True, pid=7)
        tail = [
            Chunk(data=c.data, direction=c.direction.reverse(), time=c.time, pid=7, size=c.size) for c in tail
        ]
    out = decode(tail, channel=channel)
    texts = [q.text for q in queries(out)]
    assert texts[0] == f["insert"] and f["create"] not in texts
    assert one(out, f["select"]).rows == f["select_rowcount"]
    # The login's capabilities are unknown, but the server's more-results flags still split the
    # multi-statement query into its statements; with no login database, unqualified names stay unresolved.
    first, second = (one(out, text) for text in f["multi"].split("; "))
    assert [first.rows, second.rows] == f["multi_rows"]
    assert one(out, f["select"]).resolved_tables == [None]
    [session] = sessions(out)
    assert session.user is None and session.server_version is None


@requires_server
def test_unfinished_request_at_close(pymysql_run) -> None:
    recording, f = pymysql_run
    chunks = chunks_of(recording)
    index = next(
        i for i, c in enumerate(chunks) if c.direction is Direction.OUT and f["select"].encode() in c.data
    )
    out = decode(chunks[: index + 1])
    last = queries(out)[-1]
    assert (last.text, last.status, last.duration, last.rows) == (f["select"], "unknown", None, None)


@requires_server
def test_sixteen_megabyte_packets(env) -> None:
    """A query and a row longer than 0xFFFFFF bytes travel as continued packets."""
    import pymysql

    admin = env["admin"]
    with admin.cursor() as cur:
        cur.execute("SELECT @@global.max_allowed_packet")
        old = cur.fetchone()[0]
        cur.execute("SET GLOBAL max_allowed_packet = 67108864")
    try:
        conn = pymysql.connect(
            host="127.0.0.1", port=env["relay"].port, user="root", password="", database=env["db"]
        )
        sql = "SELECT LENGTH('" + "y" * (p.MAX_PAYLOAD + 10) + "') AS n, REPEAT('z', 17000000) AS big"
        with conn.cursor() as cur:
            cur.execute(sql)
            [(n, big)] = cur.fetchall()
        conn.close()
    finally:
        with admin.cursor() as cur:
            cur.execute(f"SET GLOBAL max_allowed_packet = {old}")
    recording = env["relay"].last()
    for chunks in (chunks_of(recording), list(split(chunks_of(recording), "random", 7))):
        out = decode(chunks, max_rows=1)
        q = one(out, sql)
        assert (q.status, q.rows, q.truncated) == ("ok", 1, False)
        assert q.sample_rows == [[str(n), big]]
    # strace -s 200 on the same bytes: the query is its first 195 characters, the connection goes on.
    cut = [
        Chunk(data=c.data[:200], direction=c.direction, time=c.time, pid=c.pid, size=len(c.data))
        for c in chunks_of(recording)
    ]
    out = decode(cut)
    q = one(out, sql[:195])
    assert (q.status, q.truncated, q.rows) == ("ok", True, None)


# --- survol captures (strace 4, Fedora, 2018) -----------------------------------------------------

SURVOL = __import__("pathlib").Path(__file__).resolve().parents[1].parent / "shared/captures/survol"


def survol_chunks(name: str, fd: int = 3) -> list[Chunk]:
    """Socket reads and writes of one fd, from the log: bytes as printed, size from `= N`."""
    import re

    from dockit_core.ingest.cstring import parse_quoted

    path = SURVOL / name
    if not path.exists():
        pytest.skip(f"survol capture {name} not available under {SURVOL}")
    call = re.compile(rf"^(\d+):(\d+):([\d.]+) (read|write|recvfrom|sendto)\({fd}<.*?>, (\".*) = (\d+)")
    chunks = []
    connected = False  # the fd is the MySQL socket from its connect to port 3306 to its close
    for index, line in enumerate(path.read_text(errors="replace").splitlines()):
        if f" connect({fd}<" in line and "htons(3306)" in line:
            connected = True
        elif f" close({fd}<" in line:
            connected = False
        match = call.match(line) if connected else None
        if not match:
            continue
        h, m, s, name_, rest, size = match.groups()
        data, _cut, _ = parse_quoted(rest)
        direction = Direction.OUT if name_ in ("write", "sendto") else Direction.IN
        when = int(h) * 3600 + int(m) * 60 + float(s)
        chunks.append(
            Chunk(data=data, direction=direction, time=when, pid=1, size=int(size), call_index=index)
        )
    return chunks


def test_survol_big_select_cut_at_20() -> None:
    out = decode(survol_chunks("dockit_big_mysql_select.strace.18648.log"))
    got = [(q.text, q.truncated, q.status) for q in queries(out)]
    # The README's queries: `set autocommit=` (cut), `use mysql`, `show tables`, `select Host,Use` (cut).
    assert got == [
        ("set autocommit=", True, "ok"),
        ("use mysql", False, "ok"),
        ("show tables", True, "ok"),  # its reply (598 bytes) was cut: rows unknown
        ("select Host,Use", True, "ok"),
    ]
    assert [q.rows for q in queries(out)] == [None, None, None, None]
    assert one(out, "use mysql").affected_rows == 0
    [session] = sessions(out)
    assert session.server_version and "10.0.23-M".startswith(session.server_version[:9])


def test_survol_show_databases() -> None:
    out = decode(survol_chunks("dockit_mysql_show_databases.strace.log"))
    got = [(q.text, q.truncated, q.status) for q in queries(out)]
    assert got == [("set autocommit=", True, "ok"), ("show databases", True, "ok")]
    [session] = sessions(out)
    assert session.server_version == "5.6.34-log"


# --- robustness -----------------------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=64), st.integers(0, 40)), max_size=30))
def test_random_bytes_never_raise(pieces) -> None:
    decoder = MySqlDecoder(CHANNEL, max_rows=2)
    for i, (out_dir, data, missing) in enumerate(pieces):
        decoder.feed(Chunk(data=data, direction=Direction.OUT if out_dir else Direction.IN, time=float(i),
                           pid=1, size=len(data) + missing, call_index=i))  # fmt: skip
    decoder.close(None)


_MUTATION_BASE: list[list[Chunk]] = []


@requires_server
@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.data())
def test_mutated_real_streams_never_raise(connector_run, raw_run, compressed_run, data) -> None:
    recording = data.draw(st.sampled_from([connector_run[0], raw_run[0], compressed_run[0]]))
    chunks = chunks_of(recording)
    decoder = MySqlDecoder(CHANNEL, max_rows=3)
    for chunk in chunks:
        raw = bytearray(chunk.data)
        action = data.draw(st.sampled_from(["keep", "keep", "flip", "cut", "drop", "insert"]))
        if action == "flip" and raw:
            for _ in range(data.draw(st.integers(1, 4))):
                raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
        elif action == "cut" and raw:
            size = len(raw)
            raw = raw[: data.draw(st.integers(0, len(raw)))]
            decoder.feed(Chunk(data=bytes(raw), direction=chunk.direction, time=chunk.time, pid=1, size=size))
            continue
        elif action == "drop":
            continue
        elif action == "insert":
            raw[0:0] = data.draw(st.binary(min_size=1, max_size=8))
        decoder.feed(Chunk(data=bytes(raw), direction=chunk.direction, time=chunk.time, pid=1, size=len(raw)))
    decoder.close(None)


def test_score() -> None:
    greeting = p.packets(p.build_greeting("10.11.19-MariaDB", 7, p.CLIENT_PROTOCOL_41), 0)
    assert MySqlDecoder.score(greeting, Direction.IN, CHANNEL) == 100
    assert MySqlDecoder.score(p.packets(b"\x03SELECT 1"), Direction.OUT, CHANNEL) >= 50
    assert MySqlDecoder.score(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", Direction.OUT, CHANNEL) <= 0
    assert MySqlDecoder.score(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", Direction.OUT, CHANNEL) <= 0
    assert MySqlDecoder.score(os.urandom(0), Direction.OUT, CHANNEL) == 0


# --- end to end through the CLI -------------------------------------------------------------------


def _run_cli(args: list[str], cwd) -> None:
    import sys

    repo = __import__("pathlib").Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-m", "dockit_core.cli", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def _sql_elements(xml_path) -> list:
    from lxml import etree

    return etree.parse(str(xml_path)).getroot().findall("Dockit_SqlQuery")


@pytest.mark.parametrize(
    ("capture", "expected"),
    [
        (
            "dockit_big_mysql_select.strace.18648.log",
            [
                ("set autocommit=", "true"),
                ("use mysql", None),
                ("show tables", "true"),
                ("select Host,Use", "true"),
            ],
        ),
        ("dockit_mysql_show_databases.strace.log", [("set autocommit=", "true"), ("show databases", "true")]),
    ],
)
def test_cli_replays_survol_capture(tmp_path, capture: str, expected: list) -> None:
    if not (SURVOL / capture).exists():
        pytest.skip(f"survol capture {capture} not available under {SURVOL}")
    _run_cli(["-i", str(SURVOL / capture), "-l", str(tmp_path / "out")], tmp_path)
    elements = _sql_elements(tmp_path / "out.xml")
    assert [(e.findtext("Text"), e.get("Truncated")) for e in elements] == expected
    assert all(e.get("Protocol") == "mysql" and e.get("Status") == "ok" for e in elements)


@pytest.mark.live
@requires_server
def test_cli_traces_a_live_client(tmp_path, env) -> None:
    """dockit runs a real client under strace: the SQL it sent comes out whole, with its outcome."""
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    script = tmp_path / "client.py"
    script.write_text(
        "import sys, mysql.connector, pymysql\n"
        f"db = {env['db']!r}\n"
        "c = pymysql.connect(host='127.0.0.1', port=3306, user='root', password='', database=db)\n"
        "cur = c.cursor()\n"
        "cur.execute('SELECT seq FROM seq_1_to_6')\n"
        "print(cur.rowcount)\n"
        "try:\n"
        "    cur.execute('SELECT * FROM no_such_table_e2e')\n"
        "except pymysql.err.ProgrammingError as e:\n"
        "    print(e.args[0])\n"
        "c.close()\n"
        "m = mysql.connector.connect(host='127.0.0.1', port=3306, user='root', password='', database=db, use_pure=True)\n"
        "pc = m.cursor(prepared=True)\n"
        "pc.execute('SELECT seq FROM seq_1_to_9 WHERE seq > %s', (7,))\n"
        "print(len(pc.fetchall()))\n"
        "m.close()\n"
    )
    _run_cli(["-l", str(tmp_path / "live"), __import__("sys").executable, str(script)], tmp_path)
    [xml] = list(tmp_path.glob("live*.xml"))
    by = {e.findtext("Text"): e for e in _sql_elements(xml)}
    select = by["SELECT seq FROM seq_1_to_6"]
    assert (select.get("Status"), select.get("Rows"), select.get("Truncated")) == ("ok", "6", None)
    assert [t.get("Name") for t in select.findall("Table")] == ["seq_1_to_6"]
    bad = by["SELECT * FROM no_such_table_e2e"]
    assert (bad.get("Status"), bad.get("ErrorCode")) == ("error", "1146")
    prepared = by["SELECT seq FROM seq_1_to_9 WHERE seq > ?"]
    assert [p_.get("Value") for p_ in prepared.findall("Parameter")] == ["7"]
    assert prepared.get("Rows") == "2"
    calls = next(tmp_path.glob("live*.txt")).read_text()
    assert "mysql query: SELECT seq FROM seq_1_to_6" in calls


def test_replies_never_seen_are_reported_without_one() -> None:
    """Only the client's writes were traced: every query still comes out, status unknown, and the
    queue of requests waiting for replies stays bounded."""
    decoder = MySqlDecoder(CHANNEL)
    out: list[Output] = []
    for i in range(500):
        sql = f"SELECT {i} FROM t"
        out += decoder.feed(Chunk(data=p.packets(b"\x03" + sql.encode()), direction=Direction.OUT, time=float(i),
                                  pid=1, size=len(sql) + 5, call_index=i))  # fmt: skip
        assert len(decoder._queue) <= 64
    out += decoder.close(None)
    assert [q.text for q in queries(out)] == [f"SELECT {i} FROM t" for i in range(500)]
    assert {q.status for q in queries(out)} == {"unknown"}


@requires_server
def test_builders_match_the_real_server_bytes(pymysql_run) -> None:
    """protocols.mysql builds, byte for byte, the OK and ERR packets the server sent."""
    recording, f = pymysql_run
    replies = [data for d, _, data in recording.pieces if d == S2C]
    assert p.packets(p.build_ok(status=2), 2) in replies  # the OK that ends the login (autocommit on)
    err = p.packets(p.build_err(f["bad_code"], "42S02", f["bad_message"]), 1)
    assert err in replies
    info = f"Records: {f['insert_rowcount']}  Duplicates: 0  Warnings: 0"  # the server's wording
    insert_ok = p.packets(p.build_ok(f["insert_rowcount"], f["insert_lastrowid"], status=2, info=info), 1)
    assert insert_ok in replies
    assert p.parse_ok(insert_ok[4:]).info == info
