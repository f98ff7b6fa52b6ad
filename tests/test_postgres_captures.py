"""The PostgreSQL captures (recorded here by captures/record_postgres.py) replay to the facts of
captures/POSTGRES_FACTS.md, which were read from the logs' bytes and the clients' printed output, not
from dockit.

Each test runs twice: on the committed captures, and on the same four recorded again now into a
temporary folder by the script's own functions (its own database and work folder), so the live path on
this machine (psql traced from its execve, the Python clients attached with `dockit -p`) is proven too.
"""

from __future__ import annotations

import codecs
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import CAPTURES, REPO, load_capture_module, run_dockit

NAMES = ["pg_psql_tcp", "pg_psql_unix", "pg_psycopg", "pg_asyncpg"]
SERVER_VERSION = "15.20 (Debian 15.20-0+deb12u1)"


recorder = load_capture_module("record_postgres")


@dataclass
class Replayed:
    log: Path
    root_pid: int
    xml: etree._Element
    calls: str
    database: str
    committed: bool
    stderr: str

    def sessions(self) -> list[dict[str, str]]:
        return [dict(e.attrib) for e in self.xml.iter("Dockit_DatabaseSession")]

    def queries(self) -> list[tuple]:
        out = []
        for e in self.xml.iter("Dockit_SqlQuery"):
            out.append(
                (
                    e.findtext("Text"),
                    e.get("Status"),
                    e.get("ErrorCode"),
                    e.get("Rows"),
                    e.get("AffectedRows"),
                    tuple(p.get("Value") for p in e.iter("Parameter")),
                )
            )
        return out

    def element(self, text: str) -> etree._Element:
        (found,) = [e for e in self.xml.iter("Dockit_SqlQuery") if e.findtext("Text") == text]
        return found

    def tables(self) -> dict[str, tuple[str, str]]:
        return {e.get("Name"): (e.get("Reads"), e.get("Writes")) for e in self.xml.iter("Dockit_SqlTable")}


def replay(log: Path, out: Path, database: str, committed: bool) -> Replayed:
    prefix = out / log.name.removesuffix(".log")
    result = run_dockit("-i", str(log), "-l", str(prefix))
    assert "Traceback" not in result.stderr and result.returncode == 0, result.stderr
    match = re.search(r"\.strace\.(\d+)\.log$", log.name)
    assert match
    xml = etree.parse(f"{prefix}.xml").getroot()
    calls = Path(f"{prefix}.txt").read_text()
    return Replayed(log, int(match.group(1)), xml, calls, database, committed, result.stderr)


@pytest.fixture(scope="module", params=["committed", "recorded-now"])
def captures(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Replayed]:
    out = tmp_path_factory.mktemp("postgres_captures")
    if request.param == "committed":
        logs = {name: next(CAPTURES.glob(f"{name}.strace.*.log")) for name in NAMES}
        return {name: replay(log, out, recorder.DATABASE, True) for name, log in logs.items()}
    unreachable = recorder.postgres_reachable()
    if unreachable is not None:
        pytest.skip(unreachable)
    pytest.importorskip("psycopg")
    pytest.importorskip("asyncpg")
    database = f"dockit_pg_live_{os.getpid()}"
    settings = recorder.Settings(database=database, work=out / "work")
    folder = out / "recorded"
    folder.mkdir()
    os.environ.setdefault("DOCKIT_SOURCE", str(REPO))
    logs = recorder.record_all(NAMES, folder, settings)
    return {name: replay(log, out, database, False) for name, log in logs.items()}


def session_of(replayed: Replayed) -> dict[str, str]:
    (session,) = replayed.sessions()
    assert (session["Protocol"], session["User"], session["Database"]) == (
        "postgresql",
        "postgres",
        replayed.database,
    )
    assert (session["ServerVersion"], session["Encrypted"], session["Authentication"]) == (
        SERVER_VERSION,
        "false",
        "none",
    )
    assert session["BackendPid"] == str(backend_pid(replayed.log))
    return session


def backend_pid(log: Path) -> int:
    """The pid in the server's BackendKeyData, read from the log's recvfrom buffers (C escapes undone
    by Python's own codec, not by dockit)."""
    for buffer in re.findall(r'recvfrom\([^,]*, "((?:[^"\\]|\\.)*)"', log.read_text()):
        data = codecs.escape_decode(buffer.encode())[0]
        at = data.find(b"K\0\0\0\x0c")
        if at >= 0:
            return int.from_bytes(data[at + 5 : at + 9], "big")
    raise AssertionError(f"no BackendKeyData in {log}")


def test_every_capture_replays_cleanly(captures) -> None:
    for name, replayed in captures.items():
        statistics = dict(replayed.xml.find("Dockit_Statistics").attrib)
        assert statistics["UnparsedLines"] == "0", name
        # DecoderProblems also counts plugins installed on the machine that fail to load: not ours.
        assert "decoder postgresql" not in replayed.stderr, replayed.stderr
        assert {e.get("Process") for e in replayed.xml.iter("Dockit_SqlQuery")} == {str(replayed.root_pid)}, (
            name
        )
        session_of(replayed)


def test_psql_tcp(captures) -> None:
    replayed = captures["pg_psql_tcp"]
    session = session_of(replayed)
    assert (session["ApplicationName"], session["Server"]) == ("psql", "127.0.0.1:5432")
    assert replayed.queries() == [
        ("SELECT id, name FROM parts ORDER BY id", "ok", None, "3", None, ()),
        ("UPDATE parts SET weight = weight + 1 WHERE id >= 2", "ok", None, None, "2", ()),
        ("INSERT INTO parts (id, name) VALUES (4, 'nut')", "ok", None, None, "1", ()),
        ("SELECT * FROM no_such_parts", "error", "42P01", None, None, ()),
    ]
    error = replayed.element("SELECT * FROM no_such_parts")
    assert (error.get("ErrorMessage"), error.get("ErrorPosition")) == (
        'relation "no_such_parts" does not exist',
        "15",
    )
    assert [
        c.get("Name") for c in replayed.element("SELECT id, name FROM parts ORDER BY id").iter("Column")
    ] == ["id", "name"]
    # The session's search path is the default ("$user", public): `parts` is public.parts, and the
    # query's own <Table> keeps the name as written.
    assert replayed.tables() == {"public.parts": ("1", "2"), "public.no_such_parts": ("1", "0")}
    select = replayed.element("SELECT id, name FROM parts ORDER BY id")
    assert [(t.get("Name"), t.get("Resolved")) for t in select.iter("Table")] == [("parts", "public.parts")]
    notes = re.findall(r"# (postgresql [^\n]*)", replayed.calls)
    assert notes[:3] == [
        "postgresql SSLRequest",
        "postgresql SSLRequest refused: the session goes on in clear",
        f"postgresql startup: user postgres database {replayed.database} application psql",
    ]
    assert f"postgresql query: {recorder.PSQL_STATEMENTS}" in notes
    assert notes[-1] == "postgresql terminate"


def test_psql_unix(captures) -> None:
    replayed = captures["pg_psql_unix"]
    session = session_of(replayed)
    assert (session["ApplicationName"], session["Server"]) == ("psql", "/var/run/postgresql/.s.PGSQL.5432")
    assert replayed.queries() == [
        ("DROP TABLE IF EXISTS old_parts", "ok", None, None, None, ()),
        ("COPY (SELECT id, name FROM parts ORDER BY id) TO STDOUT", "ok", None, "3", None, ()),
        ("SELECT count(*) AS n FROM parts WHERE added < '2026-01-01'", "ok", None, "1", None, ()),
    ]
    (notice,) = replayed.element("DROP TABLE IF EXISTS old_parts").iter("Notice")
    assert (notice.get("Severity"), notice.get("Code"), notice.text) == (
        "NOTICE", "00000", 'table "old_parts" does not exist, skipping',
    )  # fmt: skip
    copy = replayed.element("COPY (SELECT id, name FROM parts ORDER BY id) TO STDOUT")
    assert (copy.get("Copy"), copy.get("Bytes")) == ("out", str(len("1\tbolt\n2\tgear\n3\tshaft\n")))
    assert "SSLRequest" not in replayed.calls


def test_psycopg(captures) -> None:
    replayed = captures["pg_psycopg"]
    assert "ApplicationName" not in session_of(replayed)
    insert = "INSERT INTO parts (id, name, weight) VALUES ($1, $2, $3)"
    assert replayed.queries() == [
        ("SELECT id, name FROM parts WHERE weight > $1 ORDER BY id", "ok", None, "2", None, ("1.5",)),
        (insert, "ok", None, None, "1", ("10", "axle", "4.5")),
        (insert, "ok", None, None, "1", ("11", "cog", "0.25")),
        ("UPDATE parts SET weight = weight * $1 WHERE id >= $2", "ok", None, None, "2", ("2", "10")),
        ("DELETE FROM parts WHERE name = $1", "ok", None, None, "1", ("cog",)),
        ("SELECT * FROM parts WHERE id = $1", "error", "22P02", None, None, ("not a number",)),
        ("COPY parts (id, name) FROM STDIN", "ok", None, "2", None, ()),
        ("SELECT count(*) FROM parts WHERE added >= $1", "ok", None, "1", None, ("2026-01-01",)),
    ]
    error = replayed.element("SELECT * FROM parts WHERE id = $1")
    assert error.get("ErrorMessage") == 'invalid input syntax for type integer: "not a number"'
    copy = replayed.element("COPY parts (id, name) FROM STDIN")
    assert (copy.get("Copy"), copy.get("Bytes")) == ("in", str(len("20\tspring\n21\twasher\n")))
    assert replayed.tables() == {"public.parts": ("3", "5")}  # the default search path: public


def test_asyncpg(captures) -> None:
    replayed = captures["pg_asyncpg"]
    session_of(replayed)
    prepared = "SELECT id, name, weight, added FROM parts WHERE id <= $1 ORDER BY id"
    assert replayed.queries() == [
        (prepared, "ok", None, "2", None, ("2",)),
        (prepared, "ok", None, "3", None, ("3",)),
        ("UPDATE parts SET added = $1 WHERE id = $2", "ok", None, None, "1", ("2026-03-01", "1")),
        ("SELECT missing_column FROM parts", "error", "42703", None, None, ()),
    ]
    first = [e for e in replayed.xml.iter("Dockit_SqlQuery") if e.findtext("Text") == prepared][0]
    assert [c.get("Name") for c in first.iter("Column")] == ["id", "name", "weight", "added"]
    assert replayed.tables() == {"public.parts": ("3", "1")}  # the default search path: public
