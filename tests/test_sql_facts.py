"""Exact facts per statement, from real clients traced live by dockit against the machine's MariaDB
(127.0.0.1:3306) and PostgreSQL (127.0.0.1:5432): one `Dockit_SqlQuery` per statement of a
multi-statement query, with its own rows, columns, status and tables; table names resolved against the
session's current database or schema; the tables of a statement whose text strace cut, from the
answer's column definitions. Each test makes and drops its own database or schema; the numbers
expected are those of the SQL it sent (and the server's own answers, read back by the client)."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import mariadb_listening
from tests.pg_helpers import server_listening
from tests.tshark import fields, loopback_capture, needs_tshark

pytestmark = [pytest.mark.live]

REPO = Path(__file__).resolve().parents[1]


def dockit(tmp_path: Path, *args: str, stdin: bytes | None = None) -> etree._Element:
    """`dockit -l PREFIX ARGS...`: the summary's root (no decoder problem allowed)."""
    command = [sys.executable, "-m", "dockit_core.cli", "-l", str(tmp_path / "run"), *args]
    result = subprocess.run(command, cwd=REPO, capture_output=True, input=stdin, timeout=120, check=False)
    assert b"Traceback" not in result.stderr, result.stderr[-3000:]
    [xml] = tmp_path.glob("run*.xml")
    root = etree.parse(str(xml)).getroot()
    [stats] = root.findall("Dockit_Statistics")
    assert stats.get("DecoderProblems") == "0"
    return root


def queries(root: etree._Element) -> list[etree._Element]:
    return root.findall("Dockit_SqlQuery")


def one(root: etree._Element, text: str) -> etree._Element:
    found = [e for e in queries(root) if e.findtext("Text") == text]
    assert len(found) == 1, (text, [e.findtext("Text") for e in queries(root)])
    return found[0]


def tables(query: etree._Element) -> list[tuple[str | None, str | None, str | None]]:
    """(Name as written, Access, Resolved) of each <Table> of a query."""
    return [(t.get("Name"), t.get("Access"), t.get("Resolved")) for t in query.iter("Table")]


def table_objects(root: etree._Element) -> dict[str, tuple[str | None, str | None]]:
    return {t.get("Name"): (t.get("Reads"), t.get("Writes")) for t in root.findall("Dockit_SqlTable")}


def facts(query: etree._Element) -> tuple:
    return (
        query.get("Status"),
        query.get("Rows"),
        query.get("AffectedRows"),
        [c.get("Name") for c in query.iter("Column")],
        [r.text for r in query.iter("Row")],
    )


# --- MySQL / MariaDB ------------------------------------------------------------------------------


@pytest.fixture
def mysql_db():
    """A scratch database `facts_XXXX` with `customers` (3 rows) and an empty `archive`; a second
    database `DB_other` with `t2`. Dropped afterwards."""
    if not mariadb_listening():
        pytest.skip("no MariaDB/MySQL server on 127.0.0.1:3306 (user root, empty password)")
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    import pymysql

    name = f"facts_{secrets.token_hex(3)}"
    conn = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    with conn.cursor() as cur:
        for statement in (
            f"CREATE DATABASE {name}",
            f"CREATE DATABASE {name}_other",
            f"CREATE TABLE {name}.customers (id INT PRIMARY KEY, name VARCHAR(20))",
            f"INSERT INTO {name}.customers VALUES (1, 'ann'), (2, 'bob'), (3, 'cy')",
            f"CREATE TABLE {name}.archive (id INT, name VARCHAR(20))",
            f"CREATE TABLE {name}_other.t2 (x INT)",
            f"INSERT INTO {name}_other.t2 VALUES (7), (8)",
        ):
            cur.execute(statement)
    yield name
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE {name}")
        cur.execute(f"DROP DATABASE {name}_other")
    conn.close()


def test_pymysql_multi_statements_and_resolved_tables(tmp_path, mysql_db) -> None:
    """PyMySQL with CLIENT.MULTI_STATEMENTS, logged in to DB: a four-statement COM_QUERY gives four
    records (1 row, 3 rows, 2 affected, 1 row), a failing one stops at its error, and `customers` and
    `DB.customers` are one Dockit_SqlTable; `select_db` (COM_INIT_DB) and `USE` move the resolution."""
    db = mysql_db
    multi = f"select 1 as a; select id from customers; update customers set name='z' where id > 1; select name from {db}.customers where id = 1"
    failing = "select 1 as b; select * from missing_t; select 2 as c"
    script = tmp_path / "client.py"
    script.write_text(
        "import pymysql\n"
        "from pymysql.constants import CLIENT\n"
        f"c = pymysql.connect(host='127.0.0.1', user='root', password='', database='{db}', autocommit=True, client_flag=CLIENT.MULTI_STATEMENTS)\n"
        "cur = c.cursor()\n"
        f"cur.execute({multi!r})\n"
        "counts = [cur.rowcount]\n"
        "while cur.nextset():\n"
        "    counts.append(cur.rowcount)\n"
        "assert counts == [1, 3, 2, 1], counts\n"
        "try:\n"
        f"    cur.execute({failing!r})\n"
        "    while cur.nextset():\n"
        "        pass\n"
        "except pymysql.err.ProgrammingError as error:\n"
        "    assert error.args[0] == 1146\n"
        "cur.execute('insert into archive select * from customers where id >= 2')\n"
        f"c.select_db('{db}_other')\n"
        "cur.execute('select x from t2')\n"
        f"cur.execute('use {db}')\n"
        "cur.execute('select count(*) from archive')\n"
    )
    root = dockit(tmp_path, "--rows", "5", sys.executable, str(script))
    statements = multi.split("; ")
    first, second, third, fourth = (one(root, s) for s in statements)
    assert facts(first) == ("ok", "1", None, ["a"], ["1"])
    assert facts(second) == ("ok", "3", None, ["id"], ["1", "2", "3"])
    assert facts(third) == ("ok", None, "2", [], [])
    assert facts(fourth) == ("ok", "1", None, ["name"], ["ann"])
    assert tables(first) == []
    assert tables(second) == [("customers", "read", f"{db}.customers")]
    assert tables(third) == [("customers", "write", f"{db}.customers")]
    assert tables(fourth) == [(f"{db}.customers", "read", f"{db}.customers")]
    # The server runs them in turn: each starts when the one before it ended.
    assert first.get("Start") <= second.get("Start") <= third.get("Start") <= fourth.get("Start")

    b, missing = one(root, "select 1 as b"), one(root, "select * from missing_t")
    assert facts(b) == ("ok", "1", None, ["b"], ["1"])
    assert (missing.get("Status"), missing.get("ErrorCode")) == ("error", "1146")
    assert tables(missing) == [("missing_t", "read", f"{db}.missing_t")]
    assert not [q for q in queries(root) if q.findtext("Text") == "select 2 as c"]  # never ran

    archive = one(root, "insert into archive select * from customers where id >= 2")
    assert archive.get("AffectedRows") == "2"
    assert tables(archive) == [
        ("archive", "write", f"{db}.archive"),
        ("customers", "read", f"{db}.customers"),
    ]
    assert tables(one(root, f"USE {db}_other")) == []  # COM_INIT_DB, reported as USE
    assert tables(one(root, "select x from t2")) == [("t2", "read", f"{db}_other.t2")]
    assert tables(one(root, "select count(*) from archive")) == [("archive", "read", f"{db}.archive")]

    assert table_objects(root) == {
        f"{db}.customers": ("3", "1"),  # two reads in the multi-statement query, one by INSERT ... SELECT
        f"{db}.archive": ("1", "1"),
        f"{db}.missing_t": ("1", "0"),
        f"{db}_other.t2": ("1", "0"),
    }


def test_mariadb_cli_multi_statement(tmp_path, mysql_db) -> None:
    """The `mariadb` client sends what lies between two `//` delimiters as one COM_QUERY: three
    records, with their own counts and tables, resolved in the database named on its command line."""
    db = mysql_db
    sql = "delimiter //\nselect 1 as a; select id from customers; update customers set name='y' where id = 1 //\n"
    root = dockit(tmp_path, "--rows", "5", "mariadb", "-h", "127.0.0.1", "-u", "root", db, stdin=sql.encode())
    a, ids, update = (
        one(root, t)
        for t in ("select 1 as a", "select id from customers", "update customers set name='y' where id = 1")
    )
    assert facts(a) == ("ok", "1", None, ["a"], ["1"])
    assert facts(ids) == ("ok", "3", None, ["id"], ["1", "2", "3"])
    assert facts(update) == ("ok", None, "1", [], [])
    assert tables(ids) == [("customers", "read", f"{db}.customers")]
    assert tables(update) == [("customers", "write", f"{db}.customers")]
    assert table_objects(root)[f"{db}.customers"] == ("1", "1")


def test_cut_text_takes_tables_from_the_answer(tmp_path, mysql_db) -> None:
    """strace -s 64 cuts a COM_QUERY before its FROM: the text names no table, but mysql-connector
    (pure Python, one read per packet) reads each column definition whole, and those name
    `DB.customers` (schema and original table): the record still reads it."""
    pytest.importorskip("mysql.connector")
    db = mysql_db
    pad = "x" * 80
    text = f"SELECT id, name, '{pad}' AS pad FROM customers ORDER BY id"
    script = tmp_path / "client.py"
    script.write_text(
        "import mysql.connector\n"
        f"c = mysql.connector.connect(host='127.0.0.1', user='root', password='', database='{db}', use_pure=True)\n"
        "cur = c.cursor()\n"
        f"cur.execute({text!r})\n"
        "assert len(cur.fetchall()) == 3\n"
    )
    log = tmp_path / "cut.log"
    subprocess.run(
        ["strace", "-f", "-q", "-ttt", "-T", "-yy", "-s", "64", "-e", "trace=process,file,desc,network",
         "-o", str(log), sys.executable, str(script)],
        check=True, timeout=60,
    )  # fmt: skip
    root = dockit(tmp_path, "-i", str(log))
    [query] = [q for q in queries(root) if (q.findtext("Text") or "").startswith("SELECT id, name, 'xxx")]
    assert query.get("Truncated") == "true" and "FROM" not in query.findtext("Text")
    assert query.get("Rows") == "3"
    assert tables(query) == [(f"{db}.customers", "read", f"{db}.customers")]
    assert table_objects(root)[f"{db}.customers"] == ("1", "0")


# --- PostgreSQL -----------------------------------------------------------------------------------


@pytest.fixture
def pg_schema():
    """A scratch schema `facts_XXXX` in database postgres with `customers` (3 rows), and a
    `public.facts_XXXX_pub` table; both dropped afterwards."""
    if not server_listening():
        pytest.skip("no PostgreSQL server on 127.0.0.1:5432")
    if shutil.which("strace") is None or shutil.which("psql") is None:
        pytest.skip("strace and psql are needed")
    psycopg = pytest.importorskip("psycopg")
    name = f"facts_{secrets.token_hex(3)}"
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
        conn.execute(f"CREATE TABLE {name}.customers (id int PRIMARY KEY, name text)")
        conn.execute(f"INSERT INTO {name}.customers VALUES (1, 'ann'), (2, 'bob'), (3, 'cy')")
        conn.execute(f"CREATE TABLE public.{name}_pub (x int)")
    yield name
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {name} CASCADE")
        conn.execute(f"DROP TABLE public.{name}_pub")


def test_psql_multi_statement_and_search_path(tmp_path, pg_schema) -> None:
    """`psql -c` sends its text as one simple Query: one record per statement. The default search
    path resolves to public; after `SET search_path` (its own statement of the same Query), to the
    schema; a schema-qualified name stays as written."""
    schema = pg_schema
    text = (
        f"select x from {schema}_pub; set search_path to {schema}, public; select 1 as a; "
        f"select id from customers; update customers set name = 'z' where id > 1; "
        f"select name from {schema}.customers where id = 1; select * from missing_t; select 2"
    )
    root = dockit(
        tmp_path, "--rows", "5", "psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c", text
    )
    pub = one(root, f"select x from {schema}_pub")
    assert facts(pub)[:2] == ("ok", "0")
    assert tables(pub) == [(f"{schema}_pub", "read", f"public.{schema}_pub")]
    assert facts(one(root, "select 1 as a")) == ("ok", "1", None, ["a"], ["1"])
    ids = one(root, "select id from customers")
    assert facts(ids) == ("ok", "3", None, ["id"], ["1", "2", "3"])
    assert tables(ids) == [("customers", "read", f"{schema}.customers")]
    update = one(root, "update customers set name = 'z' where id > 1")
    assert facts(update) == ("ok", None, "2", [], [])
    assert tables(update) == [("customers", "write", f"{schema}.customers")]
    qualified = one(root, f"select name from {schema}.customers where id = 1")
    assert facts(qualified) == ("ok", "1", None, ["name"], ["ann"])
    assert tables(qualified) == [(f"{schema}.customers", "read", f"{schema}.customers")]
    missing = one(root, "select * from missing_t")
    assert (missing.get("Status"), missing.get("ErrorCode")) == ("error", "42P01")
    assert tables(missing) == [("missing_t", "read", f"{schema}.missing_t")]
    assert not [q for q in queries(root) if q.findtext("Text") == "select 2"]  # after the error: never ran
    assert table_objects(root) == {
        f"public.{schema}_pub": ("1", "0"),
        f"{schema}.customers": ("2", "1"),
        f"{schema}.missing_t": ("1", "0"),
    }


def test_psycopg_multi_statement_and_startup_search_path(tmp_path, pg_schema) -> None:
    """psycopg connecting with `options=-c search_path=SCHEMA`: a three-statement execute gives three
    records, and `customers` is SCHEMA.customers from the start."""
    schema = pg_schema
    text = (
        "select 1 as a; select id from customers; insert into customers select id + 10, name from customers"
    )
    script = tmp_path / "client.py"
    script.write_text(
        "import psycopg\n"
        f"c = psycopg.connect('host=127.0.0.1 user=postgres dbname=postgres options=-csearch_path={schema}', autocommit=True)\n"
        f"c.execute({text!r})\n"
    )
    root = dockit(tmp_path, "--rows", "5", sys.executable, str(script))
    a, ids, insert = (one(root, s) for s in text.split("; "))
    assert facts(a) == ("ok", "1", None, ["a"], ["1"])
    assert facts(ids) == ("ok", "3", None, ["id"], ["1", "2", "3"])
    assert (insert.get("Status"), insert.get("AffectedRows")) == ("ok", "3")
    # INSERT ... SELECT writes its target and reads its source (here the same table: written)
    assert tables(insert) == [("customers", "write", f"{schema}.customers")]
    assert table_objects(root) == {f"{schema}.customers": ("1", "1")}


def test_mysql_statement_split_follows_the_lexer() -> None:
    """Semicolons inside strings, quoted names and comments do not end a statement; a routine's body
    holds the rest of the text; blank and comment-only pieces are dropped. (The server agrees: each
    of these texts was checked against MariaDB by the live tests' rule, one result per statement.)"""
    from decoders.mysql.statements import split_statements

    assert split_statements('select \';\' as a; select "b;\\"c"; select `d;e` from t -- x;\n; # y;\n') == [
        "select ';' as a",
        'select "b;\\"c"',
        "select `d;e` from t -- x;",
    ]
    assert split_statements("select 1 /* ; */; select 2;") == ["select 1 /* ; */", "select 2"]
    assert split_statements("select 1--1; select 2") == [
        "select 1--1",
        "select 2",
    ]  # `--1` is minus minus one
    routine = "create procedure p() begin select 1; select 2; end"
    assert split_statements(f"select 0; {routine}") == ["select 0", routine]
    assert split_statements("select 1;") == ["select 1;"]  # one statement: its text as sent


@needs_tshark
def test_multi_statement_results_match_tshark(tmp_path, mysql_db) -> None:
    """Wireshark's MySQL dissector, capturing the loopback while PyMySQL runs a four-statement query
    under dockit, sees the same results dockit gives each statement: the column names in order, the
    row values, the affected rows and the error code."""
    db = mysql_db
    multi = "select 1 as a; select id from customers; update customers set name='w' where id > 1; select * from missing_t"
    script = tmp_path / "client.py"
    script.write_text(
        "import pymysql\n"
        "from pymysql.constants import CLIENT\n"
        f"c = pymysql.connect(host='127.0.0.1', user='root', password='', database='{db}', autocommit=True, client_flag=CLIENT.MULTI_STATEMENTS)\n"
        "cur = c.cursor()\n"
        f"cur.execute({multi!r})\n"
        "try:\n"
        "    while cur.nextset():\n"
        "        pass\n"
        "except pymysql.err.ProgrammingError:\n"
        "    pass\n"
    )
    with loopback_capture(tmp_path / "lo.pcap", "tcp port 3306") as capture:
        root = dockit(tmp_path, "--rows", "10", sys.executable, str(script))
    records = [one(root, s) for s in multi.split("; ")]
    assert [r.get("Status") for r in records] == ["ok", "ok", "ok", "error"]
    # the frames after the query's, up to the next command: its results as tshark dissects them
    rows = fields(capture, "frame.number", "mysql.query", display_filter="mysql.query")
    [query_frame] = [int(number) for number, text in rows if text == multi]
    names, values, affected, errors = [], [], [], []
    for _number, name, value, rows_affected, error, command in fields(
        capture, "frame.number", "mysql.field.name", "mysql.row.text", "mysql.affected_rows", "mysql.error_code",
        "mysql.command", display_filter=f"mysql && frame.number > {query_frame}",
    ):  # fmt: skip
        if command:
            break  # the client's next command
        names += [n for n in name.split(",") if n]
        values += [v for v in value.split(",") if v]
        affected += [int(a) for a in rows_affected.split(",") if a]
        errors += [e for e in error.split(",") if e]
    assert names == [c.get("Name") for r in records for c in r.iter("Column")] == ["a", "id"]
    assert values == [row.text for r in records for row in r.iter("Row")] == ["1", "1", "2", "3"]
    assert affected == [int(r.get("AffectedRows")) for r in records if r.get("AffectedRows")] == [2]
    assert errors == [r.get("ErrorCode") for r in records if r.get("ErrorCode")] == ["1146"]


def test_pg_cut_text_takes_tables_from_learned_oids(tmp_path, pg_schema) -> None:
    """strace -s 600 cuts two of psql's statements (1,000-character literals) before their FROM; the
    replies' RowDescriptions name tables by OID only. The connection's first, complete, statement
    read SCHEMA.customers and its columns came from one OID: the cut statement whose columns come
    from that OID reads SCHEMA.customers; the one reading a table never named whole stays without."""
    schema = pg_schema
    pad = "x" * 1000
    cut_customers = f"SELECT id, '{pad}' AS p FROM {schema}.customers ORDER BY id"
    cut_other = f"SELECT x, '{pad}' AS p FROM public.{schema}_pub"
    log = tmp_path / "cut.log"
    subprocess.run(
        ["strace", "-f", "-q", "-ttt", "-T", "-yy", "-s", "600", "-e", "trace=process,file,desc,network",
         "-o", str(log), "psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres",
         "-c", f"select id from {schema}.customers", "-c", cut_customers, "-c", cut_other],
        check=True, timeout=60, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    root = dockit(tmp_path, "-i", str(log))
    first, second, third = queries(root)
    assert first.findtext("Text") == f"select id from {schema}.customers" and first.get("Truncated") is None
    assert tables(first) == [(f"{schema}.customers", "read", f"{schema}.customers")]
    for query, whole in ((second, cut_customers), (third, cut_other)):
        text = query.findtext("Text")
        assert query.get("Truncated") == "true" and whole.startswith(text) and "FROM" not in text
    assert [c.get("Name") for c in second.iter("Column")] == ["id", "p"]
    assert tables(second) == [(f"{schema}.customers", "read", f"{schema}.customers")]
    assert tables(third) == []  # its table's OID was never named by a whole text
    assert table_objects(root) == {f"{schema}.customers": ("2", "0")}


def test_change_user_moves_the_current_database(tmp_path, mysql_db) -> None:
    """mysql-connector's cmd_change_user (COM_CHANGE_USER) logs in again into DB_other: the names
    after it resolve there, those before it in DB."""
    pytest.importorskip("mysql.connector")
    db = mysql_db
    script = tmp_path / "client.py"
    script.write_text(
        "import mysql.connector\n"
        f"c = mysql.connector.connect(host='127.0.0.1', user='root', password='', database='{db}', use_pure=True)\n"
        "cur = c.cursor()\n"
        "cur.execute('select id from customers')\n"
        "assert len(cur.fetchall()) == 3\n"
        f"c.cmd_change_user(username='root', password='', database='{db}_other')\n"
        "cur = c.cursor()\n"
        "cur.execute('select x from t2')\n"
        "assert len(cur.fetchall()) == 2\n"
    )
    root = dockit(tmp_path, sys.executable, str(script))
    assert tables(one(root, "select id from customers")) == [("customers", "read", f"{db}.customers")]
    assert tables(one(root, "select x from t2")) == [("t2", "read", f"{db}_other.t2")]
