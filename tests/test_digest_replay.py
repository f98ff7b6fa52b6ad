"""The query digest of the saved captures (captures/*.log), whose statements captures/PROTOCOL_FACTS.md
and POSTGRES_FACTS.md list: each fingerprint's count, rows, errors and tables are those facts. Then
`dockit report`'s inputs and errors, `/api/digest` of `--serve`, and the digest's bounds (fingerprints
past the cap counted as `other`, the sessions it remembers)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from lxml import etree

from decoders.records import CimChild, CimObject, Duration, Time
from dockit_core.outputs.digest.digest import MAX_SESSIONS, Digest, digest_objects
from tests.conftest import CAPTURES, run_dockit
from tests.test_serve import Served


def replayed_digests(tmp_path: Path, capture: str) -> dict[str, etree._Element]:
    result = run_dockit("-i", str(CAPTURES / capture), "-l", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    root = etree.parse(str(tmp_path / "run.xml")).getroot()
    return {e.findtext("Fingerprint"): e for e in root.iter("Dockit_QueryDigest")}


def facts(element: etree._Element, *names: str) -> tuple[str | None, ...]:
    return tuple(element.get(name) for name in names)


def test_pymysql_capture(tmp_path: Path) -> None:
    """PROTOCOL_FACTS.md, mysql_pymysql: eight statements, once each, one failing with 1146."""
    found = replayed_digests(tmp_path, "mysql_pymysql.strace.25969.log")
    assert len(found) == 8
    assert facts(
        found["select id, name, city from customers where city = ? order by id"], "Count", "Rows"
    ) == ("1", "2")
    assert facts(found["insert into customers(name, city, balance) values(?+)"], "Count", "AffectedRows") == (
        "1",
        "2",
    )
    assert facts(
        found["update customers set balance = balance * ? where city in(?+)"], "AffectedRows", "Flags"
    ) == ("2", None)
    assert facts(found["delete from customers where name = ?"], "AffectedRows") == ("1",)
    missing = found["select * from missing_table"]
    assert facts(missing, "Errors", "Flags") == ("1", "always-fails")
    assert [(e.get("Code"), e.get("Count")) for e in missing.iter("Error")] == [("1146", "1")]
    join = next(f for f in found if f.startswith("select c.name, c.city, count(o.id)"))
    assert facts(found[join], "Rows") == ("5",)
    assert [(t.get("Name"), t.get("Reads")) for t in found[join].iter("Table")] == [
        ("customers", "1"),
        ("orders", "1"),
    ]
    assert {e.get("Processes") for e in found.values()} == {"25969"}
    assert found["use ?"].findtext("Example") == "USE dockit_capture"


def test_connector_capture_prepared_statements(tmp_path: Path) -> None:
    """mysql_connector: prepared statements fingerprint on their SQL (`?` kept); the INSERT executed
    twice is one fingerprint counted twice; the refused prepare fails every time."""
    found = replayed_digests(tmp_path, "mysql_connector.strace.25975.log")
    assert len(found) == 6
    insert = found["insert into orders(customer_id, note, amount, shipped, placed) values(?+)"]
    assert facts(insert, "Count", "AffectedRows") == ("2", "2")
    assert facts(found["select id, amount from orders where customer_id = ? and placed >= ?"], "Rows") == (
        "1",
    )
    assert facts(found["update orders set shipped = ? where placed >= ?"], "AffectedRows") == ("3",)
    assert facts(found["select note from no_such_orders where id = ?"], "Flags") == ("always-fails",)
    assert "set @@session.autocommit = on" in found


def test_psycopg_capture(tmp_path: Path) -> None:
    """POSTGRES_FACTS.md, pg_psycopg: server-side binding, `$n` kept; the INSERT twice, one invalid
    input (22P02)."""
    found = replayed_digests(tmp_path, "pg_psycopg.strace.574.log")
    assert facts(found["insert into parts(id, name, weight) values(?+)"], "Count", "AffectedRows") == (
        "2",
        "2",
    )
    assert facts(found["update parts set weight = weight * $1 where id >= $2"], "AffectedRows") == ("2",)
    failing = found["select * from parts where id = $1"]
    assert [(e.get("Code"), e.get("Count")) for e in failing.iter("Error")] == [("22P02", "1")]


def test_http_capture_routes(tmp_path: Path) -> None:
    """http_requests: four requests, the query string out of the route; their share is of HTTP time."""
    found = replayed_digests(tmp_path, "http_requests.strace.26011.log")
    assert sorted(found) == [
        "GET /session/logout",
        "GET /session/profile",
        "GET /stream/numbers",
        "POST /session/cart",
    ]
    assert found["GET /session/profile"].findtext("Example") == "GET /session/profile?user=ada"
    assert {e.get("Kind") for e in found.values()} == {"http"}
    assert sum(float(e.get("TimeShare")) for e in found.values()) == pytest.approx(100, abs=0.3)


def test_report_merges_runs_and_reads_gzip_logs(tmp_path: Path) -> None:
    pymysql_log = str(CAPTURES / "mysql_pymysql.strace.25969.log")
    connector_log = str(CAPTURES / "mysql_connector.strace.25975.log")
    report = json.loads(run_dockit("report", "--json", pymysql_log, connector_log).stdout)
    assert report["fingerprints"] == 14 and report["executions"] == 15
    assert {q["Runs"] for q in report["queries"]} == {1}
    twice = json.loads(run_dockit("report", "--json", pymysql_log, pymysql_log).stdout)
    assert {(q["Count"], q["Runs"]) for q in twice["queries"]} == {(2, 2)}


def test_report_errors_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "empty.log").write_text("")
    (tmp_path / "bad.xml").write_text("<Dockit><Dockit_SqlQuery")
    (tmp_path / "other.xml").write_text("<html><body/></html>")
    run_dockit("-i", str(CAPTURES / "mysql_cli.strace.25968.log"), "-l", str(tmp_path / "t"), "-F", "TXT")
    cases = [
        (str(tmp_path / "nothing.log"), "no such file"),
        (str(tmp_path), "is a directory"),
        (str(tmp_path / "empty.log"), "is empty"),
        (str(tmp_path / "bad.xml"), "is not a dockit XML summary: not well-formed XML"),
        (str(tmp_path / "other.xml"), "is not a dockit XML summary: its root element is <html>"),
        (str(tmp_path / "t.summary.txt"), "is a TXT summary"),
    ]
    for path, message in cases:
        result = run_dockit("report", path)
        assert result.returncode == 2, (path, result.stderr)
        assert (
            message in result.stderr and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        )
    # a good input given with a bad one: the bad one is named before anything is read
    result = run_dockit("report", str(CAPTURES / "mysql_cli.strace.25968.log"), str(tmp_path / "nothing.log"))
    assert result.returncode == 2 and "nothing.log: no such file" in result.stderr
    # a trace without queries: said, status 1
    quiet = run_dockit("report", str(CAPTURES / "forkexec.strace.24972.log"))
    assert quiet.returncode == 1 and "no SQL statement, Redis command or HTTP request" in quiet.stderr


def test_api_digest_is_the_reports(tmp_path: Path) -> None:
    log = str(CAPTURES / "mysql_connector.strace.25975.log")
    served = Served("-i", log, "-l", str(tmp_path / "s"), "--serve-after")
    try:
        served.wait_line("still serving")
        api = served.get("/api/digest")
        objects = served.get("/api/objects?class=Dockit_QueryDigest")
    finally:
        served.stop()
    report = json.loads(run_dockit("report", "--json", log).stdout)
    assert api == report  # type: ignore[comparison-overlap]
    assert len(objects["objects"]) == 6  # type: ignore[index]
    served = Served("-i", log, "-l", str(tmp_path / "n"), "--serve-after", "--no-digest")
    try:
        served.wait_line("still serving")
        try:
            urllib.request.urlopen(served.url + "api/digest", timeout=30)
            raise AssertionError("a run without a digest served one")
        except urllib.error.HTTPError as error:
            assert error.code == 404
    finally:
        served.stop()


def query(text: str, session: str, start: float, duration: float = 0.001, status: str = "ok") -> CimObject:
    return CimObject.make(
        "Dockit_SqlQuery",
        {"Protocol": "mysql", "Process": 1, "Session": session, "Start": Time(start), "Duration": Duration(duration),
         "Status": status},
        [CimChild("Text", (), text)],
    )  # fmt: skip


def test_distinct_fingerprints_past_the_cap_are_counted_as_other() -> None:
    digest = Digest(max_fingerprints=100)
    for i in range(5000):
        digest.add(query(f"select * from table_{i} where id = {i}", "s", float(i)))
    assert len(digest._pending) < Digest.BATCH  # the records waiting to be counted: a batch at most
    digest.flush()
    assert len(digest.entries) == 100
    [other] = digest.overflow.values()
    assert (other.count, other.fingerprint, other.overflow) == (4900, "*", True)
    objects = digest_objects(digest)
    assert len(objects) == 101 and objects[-1].attr("Overflow") == "true"
    assert sum(int(o.attr("Count")) for o in objects) == 5000  # type: ignore[arg-type]


def test_sessions_remembered_for_the_loop_flag_are_bounded() -> None:
    digest = Digest()
    for i in range(3 * MAX_SESSIONS):
        digest.add(query("select 1", f"session-{i}", float(i)))
    digest.flush()
    assert len(digest._last) == MAX_SESSIONS
    [entry] = digest.entries.values()
    assert entry.count == 3 * MAX_SESSIONS and entry.longest_run == 1
    assert len(entry.sessions) == 32 and entry.more_sessions


def test_report_of_a_summary_with_damaged_values(tmp_path: Path) -> None:
    """A summary is untrusted input too: durations and times that are no number, infinite or absurd
    are not counted as time; the executions still are."""
    damaged = tmp_path / "damaged.xml"
    damaged.write_text(
        '<Dockit><Dockit_SqlQuery Protocol="mysql" Duration="inf" Start="nan"><Text>select 1</Text></Dockit_SqlQuery>'
        '<Dockit_SqlQuery Protocol="mysql" Duration="nan" Start="x"><Text>select 2</Text></Dockit_SqlQuery>'
        '<Dockit_SqlQuery Protocol="mysql" Duration="1e308" Rows="many"><Text>select 3</Text></Dockit_SqlQuery>'
        '<Dockit_SqlQuery Protocol="mysql" Duration="0.5" Start="2026-12-03T10:00:00+00:00"><Text>select 4</Text>'
        '</Dockit_SqlQuery><Dockit_RedisCommand Command="GET"><Argument Index="z">k:1</Argument></Dockit_RedisCommand>'
        "</Dockit>"
    )
    result = run_dockit("report", "--json", str(damaged))
    assert result.returncode == 0, result.stderr
    [sql] = [q for q in json.loads(result.stdout)["queries"] if q["Kind"] == "sql"]
    assert (sql["Fingerprint"], sql["Count"], sql["TotalTime"], sql["Rows"]) == ("select ?", 4, 0.5, 0)
    assert sql["FirstSeen"] == "2026-12-03T10:00:00.000000+00:00"
