"""`--events FILE`: the run as an event log, read by pm4py (the process-mining library), never by our
own code: OCEL 2.0 JSON with its objects and events, and the flat CSV with each `--case`. The runs are
real programs: a shell pipeline, and a Python program doing SQL against the local MariaDB and HTTP
against a server the test starts."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from tests.conftest import mariadb_listening, run_dockit

pytestmark = [pytest.mark.live, pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")]
pm4py = pytest.importorskip("pm4py")
pd = pytest.importorskip("pandas")


def read_csv(path: Path):  # type: ignore[no-untyped-def]
    frame = pd.read_csv(path)
    return pm4py.format_dataframe(
        frame, case_id="case_id", activity_key="activity", timestamp_key="timestamp"
    )


def test_shell_pipeline(tmp_path: Path) -> None:
    ocel_path, csv_path = tmp_path / "pipeline.json", tmp_path / "pipeline.csv"
    command = ["sh", "-c", "ls / | wc -l"]
    assert run_dockit("-l", str(tmp_path / "a"), "--events", str(ocel_path), *command).returncode == 0
    assert run_dockit("-l", str(tmp_path / "b"), "--events", str(csv_path), *command).returncode == 0
    ocel = pm4py.read_ocel2_json(str(ocel_path))
    activities = set(ocel.events["ocel:activity"])
    assert {"exec", "fork", "exit", "open", "read", "write"} <= activities
    assert {"process", "file", "pipe"} <= set(ocel.objects["ocel:type"])
    processes = ocel.objects[ocel.objects["ocel:type"] == "process"]
    assert len(processes) == 3  # sh, ls, wc
    assert (ocel.events["ocel:activity"] == "fork").sum() == 2
    # the pipe links the writer (ls) and the reader (wc): both touch the one pipe object
    relations = ocel.relations
    pipe_events = relations[relations["ocel:type"] == "pipe"]
    assert set(pipe_events["ocel:activity"]) >= {"write", "read"}
    dfg = pm4py.discover_ocdfg(ocel)
    assert {"exec", "fork", "exit"} <= set(dfg["activities"])
    assert {"process", "file", "pipe"} <= set(dfg["object_types"])
    # the flat log, one case per process: three cases, each starting with its exec and ending with its exit
    log = read_csv(csv_path)
    assert log["case:concept:name"].nunique() == 3
    _dfg, start, end = pm4py.discover_dfg(log)
    assert start == {"exec": 3} and end == {"exit": 3}
    assert set(log["resource"]) == {"sh", "ls", "wc"}


APP = textwrap.dedent(
    """
    import sys, urllib.request
    import pymysql
    table, port = sys.argv[1], sys.argv[2]
    connection = pymysql.connect(host="127.0.0.1", user="root", password="", database="test", autocommit=True)
    with connection.cursor() as cursor:
        cursor.execute(f"create table {table} (id int primary key, item varchar(20))")
        cursor.execute(f"insert into {table} values (1, 'pen'), (2, 'ink')")
        cursor.execute(f"select item from {table} where id = %s", (2,))
        cursor.fetchall()
    connection.close()
    for path in ("/items/1?full=yes", "/items/2", "/missing"):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}").read()
        except Exception:
            pass
    """
)


@pytest.fixture
def app_run(tmp_path: Path):  # type: ignore[no-untyped-def]
    pytest.importorskip("pymysql")
    if not mariadb_listening():
        pytest.skip("needs MariaDB on 127.0.0.1:3306")
    (tmp_path / "items").mkdir()
    (tmp_path / "items" / "1").write_text("one")
    (tmp_path / "items" / "2").write_text("two")
    server = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "0"], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    assert server.stdout is not None
    port = server.stdout.readline().split(" port ")[1].split(" ")[0]
    table = f"bridges_{uuid.uuid4().hex[:10]}"
    (tmp_path / "app.py").write_text(APP)

    def run(*options: str) -> None:
        result = run_dockit("-l", str(tmp_path / "app"), *options, sys.executable, str(tmp_path / "app.py"),
                            table, port)  # fmt: skip
        assert result.returncode == 0, result.stderr
        subprocess.run(["mariadb", "-h", "127.0.0.1", "-u", "root", "test", "-e", f"drop table if exists {table}"],
                       capture_output=True, check=False)  # fmt: skip

    yield run, table
    server.kill()
    server.wait()


def test_python_app_doing_sql_and_http(tmp_path: Path, app_run) -> None:  # type: ignore[no-untyped-def]
    run, table = app_run
    ocel_path = tmp_path / "app.jsonocel"
    run("--events", str(ocel_path))
    ocel = pm4py.read_ocel2_json(str(ocel_path))
    events = ocel.events
    assert {"exec", "connect", "login", "query", "request", "read", "write", "exit"} <= set(
        events["ocel:activity"]
    )
    types = set(ocel.objects["ocel:type"])
    assert {"process", "file", "socket", "session", "table", "route"} <= types
    objects = set(ocel.objects["ocel:oid"])
    assert f"table:test.{table}" in objects  # resolved in the login's database, as Dockit_SqlTable
    assert {"route:GET /items/1", "route:GET /items/2", "route:GET /missing"} <= objects
    queries = events[events["ocel:activity"] == "query"]
    assert sum(table in text for text in queries["text"]) == 3  # and pymysql's own SET AUTOCOMMIT
    # every query is linked to its session, its connection and the process; the table to three of them
    relations = ocel.relations[ocel.relations["ocel:activity"] == "query"]
    for object_type in ("session", "socket", "process"):
        assert relations[relations["ocel:type"] == object_type]["ocel:eid"].nunique() == len(queries)
    assert len(relations[relations["ocel:oid"] == f"table:test.{table}"]) == 3
    requests = events[events["ocel:activity"] == "request"]
    assert sorted(requests["status"].astype(int)) == [200, 200, 404]
    dfg = pm4py.discover_ocdfg(ocel)
    assert {"session", "table", "route"} <= set(dfg["object_types"])


@pytest.mark.parametrize("case", ["session", "connection", "process"])
def test_python_app_flat_log_by_case(tmp_path: Path, app_run, case: str) -> None:  # type: ignore[no-untyped-def]
    run, _table = app_run
    csv_path = tmp_path / f"{case}.csv"
    run("--events", str(csv_path), "--case", case)
    log = read_csv(csv_path)
    _dfg, start, _end = pm4py.discover_dfg(log)
    activities = set(log["concept:name"])
    if case == "session":  # the database session, then the three HTTP connections (urllib: one each)
        assert activities == {"login", "query", "request"}
        assert start == {"login": 1, "request": 3}
        assert log["case:concept:name"].nunique() == 4
    elif case == "connection":  # what crossed each connection: its connect, its bytes, what they carried
        assert {"connect", "write", "read", "login", "query", "request"} <= activities
        assert log["case:concept:name"].str.startswith("tcp:").all()
        assert log["case:concept:name"].nunique() == 4
    else:  # the Python process: one case, from exec to exit
        assert start == {"exec": 1}
        assert {"query", "request", "open"} <= activities
        assert len(set(log["resource"])) == 1 and log["resource"].iloc[0].startswith("python")
