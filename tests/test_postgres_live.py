"""Real PostgreSQL clients traced live with dockit, against the machine's server (127.0.0.1:5432 and its unix
socket /var/run/postgresql/.s.PGSQL.5432, trust auth) and a private server traced on its own side:
psql over TCP and over the unix socket, psycopg 3, asyncpg, pg_dump and pgbench. Each test makes its own
database and drops it; expected statements, SQLSTATEs, row counts and parameters are what the test sent
and what the clients and the server printed, never what the decoder said."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import run_dockit
from tests.pg_helpers import ADMIN, HOST, SOCKET_DIR, needs, requires_server, scratch_database

pytestmark = [requires_server, pytest.mark.live, pytest.mark.postgres]
PG_ENV = {"PGSSLMODE": "disable", "PGUSER": ADMIN, "PGCONNECT_TIMEOUT": "10"}


def env(**extra: str) -> dict[str, str]:
    return dict(os.environ, **PG_ENV, **extra)


class Traced:
    """A live run's summary: sessions, queries (as dicts), messages, and the calls file."""

    def __init__(self, prefix: Path, result: subprocess.CompletedProcess[str]) -> None:
        self.result = result
        xml = next(prefix.parent.glob(prefix.name + ".strace.*.xml"))
        self.root = etree.parse(str(xml)).getroot()
        self.calls = next(prefix.parent.glob(prefix.name + ".strace.*.txt")).read_text(errors="replace")
        self.log = next(prefix.parent.glob(prefix.name + ".strace.*.log"))

    def sessions(self) -> list[dict[str, str]]:
        return [
            dict(e.attrib)
            for e in self.root.iter("Dockit_DatabaseSession")
            if e.get("Protocol") == "postgresql"
        ]

    def queries(self) -> list[dict]:
        out = []
        for e in self.root.iter("Dockit_SqlQuery"):
            if e.get("Protocol") != "postgresql":
                continue
            record = dict(e.attrib)
            record["Text"] = e.findtext("Text")
            record["Parameters"] = [p.get("Value") for p in e.iter("Parameter")]
            record["Tables"] = [(t.get("Name"), t.get("Access")) for t in e.iter("Table")]
            record["Rows_"] = [r.text for r in e.iter("Row")]
            record["Notices"] = [(n.get("Code"), n.text) for n in e.iter("Notice")]
            out.append(record)
        return out

    def by_text(self, text: str) -> list[dict]:
        return [q for q in self.queries() if q["Text"] == text]

    def one(self, text: str) -> dict:
        found = self.by_text(text)
        assert len(found) == 1, (text, [q["Text"] for q in self.queries()])
        return found[0]

    def statistics(self) -> dict[str, str]:
        return dict(self.root.find("Dockit_Statistics").attrib)


def trace(tmp_path: Path, name: str, *command: str, extra: tuple[str, ...] = (), **kwargs) -> Traced:  # type: ignore[no-untyped-def]
    prefix = tmp_path / name
    result = run_dockit("-l", str(prefix), *extra, *command, cwd=tmp_path, **kwargs)
    assert "Traceback" not in result.stderr, result.stderr
    traced = Traced(prefix, result)
    # DecoderProblems also counts plugins installed on the machine that fail to load: not ours.
    assert "decoder postgresql" not in result.stderr, result.stderr
    return traced


@pytest.fixture
def database():
    with scratch_database("dockit_live") as name:
        yield name


# --- psql -------------------------------------------------------------------------------------------------

PSQL_SCRIPT = (
    "CREATE TABLE fruit (id int PRIMARY KEY, name text, secret_token text); "
    "INSERT INTO fruit VALUES (1, 'apple', 't0k3n-a'), (2, 'pear', 't0k3n-b'), (3, 'fig', 't0k3n-c'); "
    "UPDATE fruit SET name = upper(name) WHERE id > 1; "
    "SELECT id, name, secret_token FROM fruit ORDER BY id; "
    "SELECT pg_backend_pid() AS backend"
)


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_psql(tmp_path, database, transport: str) -> None:
    needs("psql", "strace")
    where = ["-h", HOST] if transport == "tcp" else []  # psql's default: the unix socket
    traced = trace(tmp_path, "psql", "psql", "-X", "-q", "-A", "-t", *where, "-d", database, "-c", PSQL_SCRIPT,
                   "-c", "SELECT * FROM no_such_fruit", extra=("--rows", "5"), env=env())  # fmt: skip
    assert traced.result.returncode == 1  # the second -c fails
    printed = traced.result.stdout.split()
    backend = printed[-1]  # psql printed the backend's pid
    assert printed[:3] == ["1|apple|t0k3n-a", "2|PEAR|t0k3n-b", "3|FIG|t0k3n-c"]
    (session,) = traced.sessions()
    assert (session["User"], session["Database"], session["ApplicationName"]) == (ADMIN, database, "psql")
    assert (session["BackendPid"], session["Encrypted"], session["Authentication"]) == (
        backend,
        "false",
        "none",
    )
    server = f"{HOST}:5432" if transport == "tcp" else f"{SOCKET_DIR}/.s.PGSQL.5432"
    assert session["Server"] == server
    found = [
        (q["Text"], q["Status"], q.get("ErrorCode"), q.get("Rows"), q.get("AffectedRows"))
        for q in traced.queries()
    ]
    assert found == [
        ("CREATE TABLE fruit (id int PRIMARY KEY, name text, secret_token text)", "ok", None, None, None),
        ("INSERT INTO fruit VALUES (1, 'apple', 't0k3n-a'), (2, 'pear', 't0k3n-b'), (3, 'fig', 't0k3n-c')",
         "ok", None, None, "3"),
        ("UPDATE fruit SET name = upper(name) WHERE id > 1", "ok", None, None, "2"),
        ("SELECT id, name, secret_token FROM fruit ORDER BY id", "ok", None, "3", None),
        ("SELECT pg_backend_pid() AS backend", "ok", None, "1", None),
        ("SELECT * FROM no_such_fruit", "error", "42P01", None, None),
    ]  # fmt: skip
    select = traced.one("SELECT id, name, secret_token FROM fruit ORDER BY id")
    assert select["Rows_"] == ["1\tapple\t<redacted>", "2\tPEAR\t<redacted>", "3\tFIG\t<redacted>"]
    assert (
        traced.one("SELECT * FROM no_such_fruit")["ErrorMessage"] == 'relation "no_such_fruit" does not exist'
    )
    assert traced.one("UPDATE fruit SET name = upper(name) WHERE id > 1")["Tables"] == [("fruit", "write")]
    assert f"# postgresql query: {PSQL_SCRIPT}" in traced.calls


def test_psql_script_file_and_copy(tmp_path, database) -> None:
    """psql -f sends each statement as its own Query; \\copy is COPY FROM STDIN with the file's bytes."""
    needs("psql", "strace")
    rows = "10\tkiwi\n11\tlime\n12\tplum\n"
    (tmp_path / "rows.tsv").write_text(rows)
    (tmp_path / "script.sql").write_text(
        "CREATE TABLE basket (id int, name text);\n"
        "\\copy basket FROM 'rows.tsv'\n"
        "SELECT count(*) FROM basket;\n"
        "DROP TABLE IF EXISTS not_here;\n"
        "BEGIN;\nDELETE FROM basket WHERE id = 10;\nROLLBACK;\n"
    )
    traced = trace(tmp_path, "psqlf", "psql", "-X", "-h", HOST, "-d", database, "-f", "script.sql", env=env())
    assert traced.result.returncode == 0, traced.result.stderr
    found = [
        (q["Text"], q["Status"], q.get("Rows"), q.get("AffectedRows"), q.get("Command"))
        for q in traced.queries()
    ]
    assert found == [
        ("CREATE TABLE basket (id int, name text);", "ok", None, None, "CREATE TABLE"),  # psql -f: as written
        ("COPY  basket FROM STDIN ", "ok", "3", None, "COPY"),
        ("SELECT count(*) FROM basket;", "ok", "1", None, "SELECT"),
        ("DROP TABLE IF EXISTS not_here;", "ok", None, None, "DROP TABLE"),
        ("BEGIN;", "ok", None, None, "BEGIN"),
        ("DELETE FROM basket WHERE id = 10;", "ok", None, "1", "DELETE"),
        ("ROLLBACK;", "ok", None, None, "ROLLBACK"),
    ]  # fmt: skip
    copy = traced.one("COPY  basket FROM STDIN ")
    assert (copy["Copy"], copy["Bytes"]) == ("in", str(len(rows)))
    assert traced.one("DROP TABLE IF EXISTS not_here;")["Notices"] == [
        ("00000", 'table "not_here" does not exist, skipping')
    ]


# --- psycopg 3 and asyncpg ----------------------------------------------------------------------------------

PSYCOPG_CLIENT = r"""
import json, sys, psycopg
from psycopg import errors
facts = {}
with psycopg.connect(dbname=sys.argv[1], host="127.0.0.1", autocommit=True) as conn:
    cur = conn.cursor()
    cur.execute("CREATE TABLE orders (id int PRIMARY KEY, item text, qty int)")
    cur.executemany("INSERT INTO orders VALUES (%s, %s, %s)", [(1, "bolt", 10), (2, "nut", 20), (3, "gear", 1)])
    cur.execute("SELECT item FROM orders WHERE qty >= %s ORDER BY id", (10,))
    facts["selected"] = [r[0] for r in cur.fetchall()]
    with conn.pipeline():
        cur.execute("UPDATE orders SET qty = qty + %s WHERE id = %s", (5, 1))
        cur.execute("DELETE FROM orders WHERE id = %s", (3,))
    facts["deleted"] = cur.rowcount
    try:
        cur.execute("INSERT INTO orders VALUES (%s, %s, %s)", (1, "dup", 0))
    except errors.UniqueViolation as error:
        facts["duplicate"] = [error.sqlstate, error.diag.message_primary]
    with cur.copy("COPY orders TO STDOUT") as copy:
        facts["copied"] = sum(len(bytes(b)) for b in copy)
    facts["pid"] = conn.info.backend_pid
print(json.dumps(facts))
"""


def test_psycopg(tmp_path, database) -> None:
    needs("strace")
    pytest.importorskip("psycopg")
    (tmp_path / "client.py").write_text(PSYCOPG_CLIENT)
    traced = trace(tmp_path, "psycopg", sys.executable, "client.py", database, env=env())
    assert traced.result.returncode == 0, traced.result.stderr
    facts = json.loads(traced.result.stdout)
    (session,) = traced.sessions()
    assert session["BackendPid"] == str(facts["pid"]) and session["Database"] == database
    found = [(q["Text"], q["Status"], q.get("ErrorCode"), q.get("Rows"), q.get("AffectedRows"), q["Parameters"])
             for q in traced.queries()]  # fmt: skip
    insert = "INSERT INTO orders VALUES ($1, $2, $3)"
    assert found == [
        ("CREATE TABLE orders (id int PRIMARY KEY, item text, qty int)", "ok", None, None, None, []),
        (insert, "ok", None, None, "1", ["1", "bolt", "10"]),
        (insert, "ok", None, None, "1", ["2", "nut", "20"]),
        (insert, "ok", None, None, "1", ["3", "gear", "1"]),
        ("SELECT item FROM orders WHERE qty >= $1 ORDER BY id", "ok", None, str(len(facts["selected"])), None, ["10"]),
        ("UPDATE orders SET qty = qty + $1 WHERE id = $2", "ok", None, None, "1", ["5", "1"]),
        ("DELETE FROM orders WHERE id = $1", "ok", None, None, str(facts["deleted"]), ["3"]),
        (insert, "error", facts["duplicate"][0], None, None, ["1", "dup", "0"]),
        ("COPY orders TO STDOUT", "ok", None, "2", None, []),
    ]  # fmt: skip
    assert traced.one("COPY orders TO STDOUT")["Bytes"] == str(facts["copied"])
    assert traced.by_text(insert)[-1]["ErrorMessage"] == facts["duplicate"][1]


ASYNCPG_CLIENT = r"""
import asyncio, json, sys, asyncpg
async def main():
    conn = await asyncpg.connect(database=sys.argv[1], host="127.0.0.1", user="postgres", ssl=False)
    await conn.execute("CREATE TABLE readings (sensor int, at timestamptz, value float8, ok bool)")
    await conn.executemany("INSERT INTO readings VALUES ($1, '2026-01-01 00:00:00+00', $2, $3)",
                           [(7, 21.5, True), (8, -3.25, False)])
    statement = await conn.prepare("SELECT sensor, value FROM readings WHERE value > $1 ORDER BY sensor")
    first = await statement.fetch(0.0)
    second = await statement.fetch(-100.0)
    print(json.dumps({"first": len(first), "second": len(second), "pid": conn.get_server_pid()}))
    await conn.close()
asyncio.run(main())
"""


def test_asyncpg(tmp_path, database) -> None:
    needs("strace")
    pytest.importorskip("asyncpg")
    (tmp_path / "client.py").write_text(ASYNCPG_CLIENT)
    traced = trace(
        tmp_path, "asyncpg", sys.executable, "client.py", database, extra=("--rows", "2"), env=env()
    )
    assert traced.result.returncode == 0, traced.result.stderr
    facts = json.loads(traced.result.stdout)
    assert (facts["first"], facts["second"]) == (1, 2)
    inserts = traced.by_text("INSERT INTO readings VALUES ($1, '2026-01-01 00:00:00+00', $2, $3)")
    assert [(q["AffectedRows"], q["Parameters"]) for q in inserts] == [
        ("1", ["7", "21.5", "t"]),
        ("1", ["8", "-3.25", "f"]),
    ]
    runs = traced.by_text("SELECT sensor, value FROM readings WHERE value > $1 ORDER BY sensor")
    assert [(q["Rows"], q["Parameters"], q["Rows_"]) for q in runs] == [
        ("1", ["0"], ["7\t21.5"]),
        ("2", ["-100"], ["7\t21.5", "8\t-3.25"]),
    ]
    assert traced.sessions()[0]["BackendPid"] == str(facts["pid"])


# --- pg_dump ------------------------------------------------------------------------------------------------


def test_pg_dump(tmp_path, database) -> None:
    needs("pg_dump", "psql", "strace")
    setup = ("CREATE TABLE authors (id int PRIMARY KEY, name text); INSERT INTO authors VALUES (1, 'Ada'), (2, 'Alan'), "
             "(3, 'Grace'); CREATE TABLE books (id int, author int REFERENCES authors, title text); "
             "INSERT INTO books VALUES (1, 1, 'Notes'), (2, 3, 'Compilers')")  # fmt: skip
    subprocess.run(["psql", "-X", "-q", "-h", HOST, "-d", database, "-c", setup], check=True, env=env())
    traced = trace(tmp_path, "dump", "pg_dump", "-h", HOST, "-d", database, "-f", "dump.sql", env=env())
    assert traced.result.returncode == 0, traced.result.stderr
    dump = (tmp_path / "dump.sql").read_text()
    queries = traced.queries()
    assert queries and all(q["Status"] == "ok" for q in queries), [q for q in queries if q["Status"] != "ok"]
    for table, count in (("authors", 3), ("books", 2)):
        block = re.search(rf"^COPY public\.{table} \(.*?\) FROM stdin;\n(.*?)^\\\.$", dump, re.M | re.S)
        assert block is not None
        (copy,) = [
            q for q in queries if q["Text"].startswith(f"COPY public.{table} (") and "TO stdout" in q["Text"]
        ]
        assert (copy["Rows"], copy["Bytes"], copy["Copy"]) == (
            str(count),
            str(len(block.group(1).encode())),
            "out",
        )
        assert copy["Tables"] == [(f"public.{table}", "read")]
        lock = [q for q in queries if q["Text"].startswith(f"LOCK TABLE public.{table} ")]
        assert lock and lock[0]["Tables"] == [(f"public.{table}", "read")]
    (session,) = traced.sessions()
    assert (session["ApplicationName"], session["Database"]) == ("pg_dump", database)


# --- pgbench: a long run stays correct and bounded -----------------------------------------------------------

TPCB = ["BEGIN", "UPDATE pgbench_accounts", "SELECT abalance FROM pgbench_accounts", "UPDATE pgbench_tellers",
        "UPDATE pgbench_branches", "INSERT INTO pgbench_history", "END"]  # fmt: skip


def peak_rss_kb(command: list[str]) -> int:
    result = subprocess.run(
        ["/usr/bin/time", "-f", "%M", *command], capture_output=True, text=True, check=True
    )
    return int(result.stderr.strip().splitlines()[-1])


def test_pgbench(tmp_path, database) -> None:
    needs("pgbench", "strace")
    if not Path("/usr/bin/time").exists():
        pytest.skip("needs /usr/bin/time (GNU time) to measure memory")
    subprocess.run(
        ["pgbench", "-i", "-q", "-s", "1", "-h", HOST, database], check=True, capture_output=True, env=env()
    )
    traced = trace(
        tmp_path, "bench", "pgbench", "-n", "-c", "4", "-T", "5", "-h", HOST, database, env=env(), timeout=300
    )
    assert traced.result.returncode == 0, traced.result.stderr
    processed = int(
        re.search(r"number of transactions actually processed: (\d+)", traced.result.stdout).group(1)
    )
    failed = re.search(r"number of failed transactions: (\d+)", traced.result.stdout)
    assert processed > 50 and (failed is None or failed.group(1) == "0")
    queries = traced.queries()
    counts = {prefix: sum(q["Text"].startswith(prefix) for q in queries) for prefix in TPCB}
    assert all(
        q["Status"] == "ok"
        for q in queries
        if q["Text"].split(" ")[0] in ("BEGIN", "UPDATE", "SELECT", "INSERT", "END")
    )
    # Every transaction pgbench counts ran its seven statements; a client stopped by -T may have sent
    # its last transaction's first statements only (at most one per client).
    ends = sum(q["Text"] == "END;" for q in queries)
    assert ends == processed
    for prefix in TPCB:
        assert processed <= counts[prefix] <= processed + 4, (prefix, counts, processed)
    assert counts["INSERT INTO pgbench_history"] == sum(
        q.get("AffectedRows") == "1" for q in queries if q["Text"].startswith("INSERT INTO pgbench_history")
    )
    assert len(traced.sessions()) == 5  # pgbench's own first connection, then its four clients
    # Memory does not follow the log's length: replaying the whole log peaks where a third of it does.
    lines = traced.log.read_text(errors="surrogateescape").splitlines(keepends=True)
    third = tmp_path / "third.log"
    third.write_text("".join(lines[: len(lines) // 3]), errors="surrogateescape")
    whole = peak_rss_kb(
        [sys.executable, "-m", "dockit_core.cli", "-i", str(traced.log), "-l", str(tmp_path / "r1")]
    )
    part = peak_rss_kb(
        [sys.executable, "-m", "dockit_core.cli", "-i", str(third), "-l", str(tmp_path / "r2")]
    )
    assert whole < part + 15_000, (whole, part, len(lines))


# --- the server's side: a private PostgreSQL traced while clients use it -----------------------------------


def test_server_side_trace(tmp_path) -> None:
    """dockit runs the private server itself; the backends' reads are the clients' messages (IN) and
    their writes the answers (OUT). psql over TCP and over the server's unix socket."""
    needs("psql", "strace", "runuser")
    from tests.pg_private import prepared_server, wait_ready

    with prepared_server() as server:
        prefix = tmp_path / "server"
        dockit = subprocess.Popen(
            [sys.executable, "-m", "dockit_core.cli", "-l", str(prefix), *server.command],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        try:
            wait_ready(server, dockit, timeout=60)
            for where in (["-h", HOST], ["-h", server.socket_dir]):
                subprocess.run(
                    ["psql", "-X", *where, "-p", str(server.port), "-U", "postgres", "-d", "postgres", "-c",
                     "CREATE TABLE IF NOT EXISTS seen (n int); INSERT INTO seen VALUES (1), (2); SELECT count(*) FROM seen"],
                    check=True, capture_output=True, env=env(),
                )  # fmt: skip
        finally:
            pid = int((server.data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGINT)
            _, stderr = dockit.communicate(timeout=120)
        assert dockit.returncode == 0, stderr
        assert "Traceback" not in stderr
        traced = Traced(prefix, subprocess.CompletedProcess([], 0, "", stderr))
    sessions = [s for s in traced.sessions() if s.get("ApplicationName") == "psql"]
    assert len(sessions) == 2
    assert {s["Server"] for s in sessions} == {
        f"{HOST}:{server.port}",
        f"{server.socket_dir}/.s.PGSQL.{server.port}",
    }
    mine = [q for q in traced.queries() if q["Session"] in {s["Id"] for s in sessions}]
    found = [(q["Text"], q["Status"], q.get("Rows"), q.get("AffectedRows")) for q in mine]
    one_client = [
        ("CREATE TABLE IF NOT EXISTS seen (n int)", "ok", None, None),
        ("INSERT INTO seen VALUES (1), (2)", "ok", None, "2"),
        ("SELECT count(*) FROM seen", "ok", "1", None),
    ]
    assert found == one_client + one_client
    backends = {s["BackendPid"] for s in sessions}
    assert {q["Process"] for q in mine} == backends  # the backend processes ran them
