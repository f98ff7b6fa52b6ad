"""The query digest of real workloads traced live: a PyMySQL script against the machine's MariaDB and a
psycopg 3 script against its PostgreSQL, each running known statements a known number of times (an N+1
loop, a loop broken in two, statements spaced out in time, a statement that always fails, an UPDATE and
a DELETE without WHERE, lists of different lengths). Every count, row count, error and flag is checked
against what the script did; the times against the summary's own records of the same run."""

from __future__ import annotations

import json
import math
import secrets
import shutil
import sys
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import mariadb_listening, run_dockit
from tests.pg_helpers import admin_connection, scratch_database, server_listening

pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")

MYSQL_WORKLOAD = """
import os, sys, time, pymysql
db, t, pid_file = sys.argv[1:4]
open(pid_file, "w").write(str(os.getpid()))
c = pymysql.connect(host="127.0.0.1", user="root", password="", database=db, autocommit=True)
cur = c.cursor()
for i in range(1, 21):                      # an N+1 loop: 20 in a row
    cur.execute(f"select name from {t} where id = %s", (i,))
for i in range(1, 13):                      # a loop broken after 6 by another statement
    cur.execute(f"select score from {t} where id = %s", (i,))
    if i == 6:
        cur.execute("select 1")
for text in (f"SELECT COUNT(*) FROM {t}", f"select count(*)   from {t}", f"/* again */ select count(*) from {t}"):
    cur.execute(text)                       # one query written three ways
    cur.execute("select 2")
cur.execute(f"update {t} set score = score + 1")   # no WHERE: 20 rows each
cur.execute(f"update {t} set score = score + 1")
for i in range(4):                          # fails every time
    try:
        cur.execute(f"select * from {t}_missing where id = %s", (i,))
    except pymysql.err.ProgrammingError:
        pass
cur.executemany(f"insert into {t}_log (id, note) values (%s, %s)", [(1, "a"), (2, "b"), (3, "c")])
cur.executemany(f"insert into {t}_log (id, note) values (%s, %s)", [(i, "x") for i in range(4, 9)])
cur.execute(f"select name from {t} where id in (1, 2, 3)")
cur.execute(f"select name from {t} where id in (4, 5)")
for i in range(3):                          # the same statement, 1.3 s apart: no loop
    if i:
        time.sleep(1.3)
    cur.execute(f"select id from {t} where score > %s", (i,))
c.close()
"""


def digests(xml: Path) -> dict[str, etree._Element]:
    root = etree.parse(str(xml)).getroot()
    return {e.findtext("Fingerprint"): e for e in root.iter("Dockit_QueryDigest")}


def durations(xml: Path, texts: set[str]) -> list[float]:
    root = etree.parse(str(xml)).getroot()
    return [float(e.get("Duration")) for e in root.iter("Dockit_SqlQuery") if e.findtext("Text") in texts]


def check_times(digest: etree._Element, measured: list[float]) -> None:
    """The digest's times against the durations of the same run's records (rounded to microseconds
    there): total, mean, max exactly; p50 and p95 within the sketch's 2%."""
    assert len(measured) == int(digest.get("Count"))
    assert float(digest.get("TotalTime")) == pytest.approx(sum(measured), abs=1e-6 * len(measured) + 1e-6)
    assert float(digest.get("MeanTime")) == pytest.approx(sum(measured) / len(measured), abs=2e-6)
    assert float(digest.get("MaxTime")) == pytest.approx(max(measured), abs=1e-6)
    ordered = sorted(measured)
    for name, q in (("P50Time", 0.5), ("P95Time", 0.95)):
        exact = ordered[max(0, math.ceil(q * len(ordered)) - 1)]  # nearest rank
        assert float(digest.get(name)) == pytest.approx(exact, rel=0.021, abs=2e-6), name


@pytest.fixture(scope="module")
def mysql_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, int, Path]:
    if not mariadb_listening():
        pytest.skip("no MariaDB/MySQL server on 127.0.0.1:3306 (user root, empty password)")
    import pymysql

    admin = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    db = f"dockit_digest_{secrets.token_hex(4)}"
    with admin.cursor() as cur:
        cur.execute(f"create database {db}")
        cur.execute(f"create table {db}.t (id int primary key, name varchar(20), score int)")
        cur.execute(f"create table {db}.t_log (id int primary key, note varchar(20))")
        cur.executemany(f"insert into {db}.t values (%s, %s, 0)", [(i, f"n{i}") for i in range(1, 21)])
    tmp = tmp_path_factory.mktemp("digest_mysql")
    script = tmp / "workload.py"
    script.write_text(MYSQL_WORKLOAD)
    try:
        result = run_dockit(
            "-l", str(tmp / "run"), sys.executable, str(script), db, "t", str(tmp / "pid"), timeout=180
        )
    finally:
        with admin.cursor() as cur:
            cur.execute(f"drop database if exists {db}")
        admin.close()
    assert result.returncode == 0, result.stderr[-3000:]
    [xml] = tmp.glob("run.strace.*.xml")
    [log] = tmp.glob("run.strace.*.log")
    return xml, db, int((tmp / "pid").read_text()), log


def test_mysql_workload_digest(mysql_run: tuple[Path, str, int, Path]) -> None:
    xml, _, pid, _ = mysql_run
    found = digests(xml)

    loop = found["select name from t where id = ?"]
    assert (loop.get("Count"), loop.get("Rows"), loop.get("AffectedRows"), loop.get("Errors")) == (
        "20",
        "20",
        "0",
        "0",
    )
    assert loop.get("LongestRun") == "20" and loop.get("Flags") == "loop"
    assert (loop.get("Sessions"), loop.get("Processes")) == ("1", str(pid))
    assert [(t.get("Name"), t.get("Reads"), t.get("Writes")) for t in loop.iter("Table")] == [
        ("t", "20", "0")
    ]
    assert loop.findtext("Example") == "select name from t where id = 1"  # the first one ran
    check_times(loop, durations(xml, {f"select name from t where id = {i}" for i in range(1, 21)}))

    broken = found["select score from t where id = ?"]
    assert (broken.get("Count"), broken.get("LongestRun"), broken.get("Flags")) == ("12", "6", None)

    counted = found["select count(*) from t"]
    assert (counted.get("Count"), counted.get("Rows"), counted.get("LongestRun")) == ("3", "3", "1")

    update = found["update t set score = score + ?"]
    assert (update.get("Count"), update.get("AffectedRows"), update.get("Flags")) == (
        "2",
        "40",
        "write-without-where",
    )
    assert [(t.get("Name"), t.get("Writes")) for t in update.iter("Table")] == [("t", "2")]

    missing = found["select * from t_missing where id = ?"]
    assert (missing.get("Count"), missing.get("Errors"), missing.get("Flags")) == ("4", "4", "always-fails")
    assert [(e.get("Code"), e.get("Count")) for e in missing.iter("Error")] == [("1146", "4")]

    insert = found["insert into t_log(id, note) values(?+)"]  # PyMySQL's executemany: one multi-row INSERT
    assert (insert.get("Count"), insert.get("AffectedRows")) == ("2", "8")

    listed = found["select name from t where id in(?+)"]
    assert (listed.get("Count"), listed.get("Rows")) == ("2", "5")

    spaced = found["select id from t where score > ?"]
    assert (spaced.get("Count"), spaced.get("LongestRun"), spaced.get("Flags")) == ("3", "1", None)

    shares = [float(e.get("TimeShare")) for e in found.values() if e.get("Kind") == "sql"]
    assert sum(shares) == pytest.approx(100, abs=0.1 * len(shares))
    ranks = sorted(found.values(), key=lambda e: int(e.get("Rank")))
    assert [float(e.get("TotalTime")) for e in ranks] == sorted(
        (float(e.get("TotalTime")) for e in ranks), reverse=True
    )


def test_mysql_report_of_the_log_and_the_summary(mysql_run: tuple[Path, str, int, Path]) -> None:
    """`dockit report` on the run's log (decoded again) and on its XML gives the summary's counts; both
    at once merge into one digest where every fingerprint was seen in 2 runs, counted twice."""
    xml, _, _, log = mysql_run
    expected = {f: e.get("Count") for f, e in digests(xml).items()}
    for source in ([str(log)], [str(xml)]):
        result = run_dockit("report", "--json", *source)
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert {q["Fingerprint"]: str(q["Count"]) for q in report["queries"]} == expected
    merged = json.loads(run_dockit("report", "--json", str(log), str(xml)).stdout)
    assert {q["Fingerprint"]: (q["Count"], q["Runs"]) for q in merged["queries"]} == {
        f: (2 * int(c), 2) for f, c in expected.items()
    }
    text = run_dockit("report", str(log), str(xml))
    assert text.returncode == 0 and text.stdout.startswith("== Query digest of 2 runs:")
    assert "FLAG loop: 40 in a row" not in text.stdout  # runs are not one session: 20 in a row, twice
    assert "FLAG loop: 20 in a row in one session" in text.stdout


def test_mysql_txt_summary_starts_with_the_answers(
    mysql_run: tuple[Path, str, int, Path], tmp_path: Path
) -> None:
    _, _, _, log = mysql_run
    result = run_dockit("-i", str(log), "-l", str(tmp_path / "txt"), "-F", "TXT")
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "txt.summary.txt").read_text().splitlines()
    assert lines[0].startswith("dockit ") and lines[2].startswith("== Query digest: ")
    first_object = next(i for i, line in enumerate(lines) if line.startswith("== CIM_"))
    digest_part = "\n".join(lines[:first_object])
    assert "   select name from t where id = ?" in digest_part
    assert "FLAG always-fails: failed every time (4 of 4)" in digest_part
    assert "FLAG write-without-where" in digest_part
    assert "== Dockit_QueryDigest ==" not in lines  # said once, on top
    off = run_dockit("-i", str(log), "-l", str(tmp_path / "off"), "--no-digest")
    assert off.returncode == 0
    assert b"Dockit_QueryDigest" not in (tmp_path / "off.xml").read_bytes()


PG_WORKLOAD = """
import os, sys, psycopg
dbname, pid_file = sys.argv[1:3]
open(pid_file, "w").write(str(os.getpid()))
conn = psycopg.connect(host="127.0.0.1", user="postgres", dbname=dbname, autocommit=True, sslmode="disable")
cur = conn.cursor()
for i in range(1, 16):                      # an N+1 loop, bound parameters ($1): 15 in a row
    cur.execute("select name from t where id = %s", (i,))
    cur.fetchall()
for i in range(3):                          # fails every time
    try:
        cur.execute("select * from t_missing where id = %s", (i,))
    except psycopg.errors.UndefinedTable:
        pass
cur.execute("SELECT count(*) FROM t")
cur.execute("select COUNT(*)   from t -- again")
for i in range(4):
    cur.execute("insert into t_log (id, note) values (%s, %s)", (i, "n"))
cur.execute("delete from t_log")            # no WHERE: 4 rows
conn.close()
"""


def test_postgresql_workload_digest(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    if not server_listening():
        pytest.skip("no PostgreSQL server on 127.0.0.1:5432")

    script = tmp_path / "workload.py"
    script.write_text(PG_WORKLOAD)
    with scratch_database("dockit_digest") as dbname:
        with admin_connection(dbname) as admin:
            admin.execute("create table t (id int primary key, name text)")
            admin.execute("create table t_log (id int primary key, note text)")
            admin.execute("insert into t select g, 'n' || g from generate_series(1, 20) g")
        result = run_dockit(
            "-l",
            str(tmp_path / "run"),
            sys.executable,
            str(script),
            dbname,
            str(tmp_path / "pid"),
            timeout=180,
        )
    assert result.returncode == 0, result.stderr[-3000:]
    [xml] = tmp_path.glob("run.strace.*.xml")
    found = {f: e for f, e in digests(xml).items() if e.get("Protocol") == "postgresql"}
    pid = (tmp_path / "pid").read_text()

    loop = found["select name from t where id = $1"]  # the statement as prepared: its placeholder kept
    assert (loop.get("Count"), loop.get("Rows"), loop.get("LongestRun"), loop.get("Flags")) == (
        "15",
        "15",
        "15",
        "loop",
    )
    assert (loop.get("Sessions"), loop.get("Processes")) == ("1", pid)
    check_times(loop, durations(xml, {"select name from t where id = $1"}))

    missing = found["select * from t_missing where id = $1"]
    assert (missing.get("Count"), missing.get("Errors"), missing.get("Flags")) == ("3", "3", "always-fails")
    assert [(e.get("Code"), e.get("Count")) for e in missing.iter("Error")] == [("42P01", "3")]

    counted = found["select count(*) from t"]
    assert (counted.get("Count"), counted.get("Rows")) == ("2", "2")

    insert = found["insert into t_log(id, note) values(?+)"]
    assert (insert.get("Count"), insert.get("AffectedRows")) == ("4", "4")
    delete = found["delete from t_log"]
    assert (delete.get("Count"), delete.get("AffectedRows"), delete.get("Flags")) == (
        "1",
        "4",
        "write-without-where",
    )
