"""The MySQL and HTTP captures (recorded here by captures/record_protocols.py) replay to the facts of
captures/PROTOCOL_FACTS.md, which were read from the logs' bytes, not from dockit.

Each test runs twice: on the committed captures, and on the same six recorded again now into a temporary
folder by the script's own functions (the live path on this machine: `dockit COMMAND` for mariadb, curl
and wget, `dockit -p PID` for the Python clients), with a database, user, port and work folder of their
own so that a recording running at the same time is not disturbed.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from lxml import etree

from dockit_core.ingest.cstring import literal_bytes
from tests.conftest import CAPTURES, load_capture_module, run_dockit

MYSQL = ["mysql_cli", "mysql_pymysql", "mysql_connector"]
HTTP = ["http_curl", "http_wget", "http_requests"]
SERVER_VERSION = "10.11.19-MariaDB-0+deb12u1"
COMMITTED_PORT = 47621
LONG_QUERY = (
    "SELECT c.name, c.city, COUNT(o.id) AS order_count, SUM(o.amount) AS total "
    "FROM customers AS c LEFT JOIN orders AS o ON o.customer_id = c.id "
    "GROUP BY c.id, c.name, c.city ORDER BY c.id"
)


recorder = load_capture_module("record_protocols")


# -- What a replay gives ----------------------------------------------------------------------------------
@dataclass
class Replayed:
    """One capture replayed: its summary, calls file, and what the run printed."""

    log: Path
    root_pid: int
    xml: etree._Element
    outputs: dict[str, str]  # name -> text of every output of the replay
    database: str
    user: str
    port: int

    def records(self, cim_class: str) -> list[dict[str, str]]:
        return [dict(e.attrib) for e in self.xml.iter(cim_class)]

    @property
    def calls(self) -> str:
        return self.outputs["calls"]


def replay_capture(log: Path, out: Path, database: str, user: str, port: int) -> Replayed:
    prefix = out / log.name.removesuffix(".log")
    result = run_dockit("-i", str(log), "-l", str(prefix))
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stderr
    match = re.search(r"\.strace\.(\d+)\.log$", log.name)
    assert match
    xml_text = Path(f"{prefix}.xml").read_text()
    return Replayed(
        log=log,
        root_pid=int(match.group(1)),
        xml=etree.fromstring(xml_text.encode()),
        outputs={
            "summary": xml_text,
            "calls": Path(f"{prefix}.txt").read_text(),
            "stdout": result.stdout,
            "stderr": result.stderr,
        },
        database=database,
        user=user,
        port=port,
    )


def capture_log(name: str, folder: Path) -> Path:
    logs = sorted(folder.glob(f"{name}.strace.*.log"))
    assert len(logs) == 1, f"expected one log for {name} in {folder}, found {logs}"
    return logs[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module", params=["committed", "recorded-now"])
def captures(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Replayed]:
    out = tmp_path_factory.mktemp("protocol_captures")
    if request.param == "committed":
        return {
            name: replay_capture(
                capture_log(name, CAPTURES), out, recorder.DATABASE, recorder.USER, COMMITTED_PORT
            )
            for name in MYSQL + HTTP
        }
    missing = [tool for tool in ("strace", "mariadb", "curl", "wget") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"recording needs {', '.join(missing)}")
    names = list(HTTP)
    unreachable = recorder.mysql_reachable()
    if unreachable is None:
        names = MYSQL + names
    tag = f"dockit_live_{os.getpid()}"
    settings = recorder.Settings(database=tag, user=tag, http_port=free_port(), work=out / "work")
    folder = out / "recorded"
    folder.mkdir()
    logs = recorder.record_all(names, folder, settings)
    found = {
        name: replay_capture(log, out, settings.database, settings.user, settings.http_port)
        for name, log in logs.items()
    }
    if unreachable is not None:
        found["unreachable"] = unreachable  # type: ignore[assignment]
    return found


def get(captures: dict[str, Replayed], name: str) -> Replayed:
    if name not in captures:
        pytest.skip(str(captures.get("unreachable", f"{name} was not recorded")))
    return captures[name]


# -- MySQL facts ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Query:
    text: str
    status: str = "ok"
    rows: int | None = None
    affected: int | None = None
    last_id: int | None = None
    error: int | None = None
    message: str | None = None
    tables: tuple[tuple[str, str], ...] = ()
    parameters: tuple[str | None, ...] = ()
    columns: tuple[str, ...] = ()


def query_of(element: etree._Element) -> Query:
    def number(name: str) -> int | None:
        value = element.get(name)
        return int(value) if value is not None else None

    return Query(
        text=element.findtext("Text") or "",
        status=element.get("Status"),
        rows=number("Rows"),
        affected=number("AffectedRows"),
        last_id=number("LastInsertId"),
        error=number("ErrorCode"),
        message=element.get("ErrorMessage"),
        tables=tuple((t.get("Name"), t.get("Access")) for t in element.iter("Table")),
        parameters=tuple(p.get("Value") for p in element.iter("Parameter")),
        columns=tuple(c.get("Name") for c in element.iter("Column")),
    )


CUSTOMERS_R, CUSTOMERS_W = ("customers", "read"), ("customers", "write")
ORDERS_R, ORDERS_W = ("orders", "read"), ("orders", "write")
JOIN = Query(
    LONG_QUERY, rows=5, tables=(CUSTOMERS_R, ORDERS_R), columns=("name", "city", "order_count", "total")
)


def missing_table(database: str, table: str) -> Query:
    return Query(
        f"SELECT * FROM {table}",
        status="error",
        error=1146,
        message=f"Table '{database}.{table}' doesn't exist",
        tables=((table, "read"),),
    )


def expected_queries(name: str, database: str) -> list[Query]:
    """PROTOCOL_FACTS.md's tables, in order."""
    use = Query(f"USE {database}", affected=0)
    if name == "mysql_cli":
        return [
            Query("SELECT DATABASE()", rows=1, columns=("DATABASE()",)),
            use,
            Query(
                "SELECT id, name, city FROM customers ORDER BY id",
                rows=4,
                tables=(CUSTOMERS_R,),
                columns=("id", "name", "city"),
            ),
            Query(
                "INSERT INTO customers (name, city, balance) VALUES ('Emil', 'Oslo', 12.5), ('Fay', 'Oslo', 0)",
                affected=2,
                last_id=5,
                tables=(CUSTOMERS_W,),
            ),
            Query(
                "UPDATE customers SET balance = balance + 10 WHERE city = 'Paris'",
                affected=2,
                tables=(CUSTOMERS_W,),
            ),
            Query("DELETE FROM customers WHERE name = 'Fay'", affected=1, tables=(CUSTOMERS_W,)),
            JOIN,
            missing_table(database, "no_such_table"),
        ]
    if name == "mysql_pymysql":
        return [
            Query("SET NAMES utf8mb4", affected=0),
            use,
            Query(
                "SELECT id, name, city FROM customers WHERE city = 'Paris' ORDER BY id",
                rows=2,
                tables=(CUSTOMERS_R,),
                columns=("id", "name", "city"),
            ),
            Query(
                "INSERT INTO customers (name, city, balance) VALUES ('Fritz', 'Bern', 5),('Greta', 'Wien', 7)",
                affected=2,
                last_id=5,
                tables=(CUSTOMERS_W,),
            ),
            Query(
                "UPDATE customers SET balance = balance * 2 WHERE city IN ('Bern', 'Wien')",
                affected=2,
                tables=(CUSTOMERS_W,),
            ),
            Query("DELETE FROM customers WHERE name = 'Greta'", affected=1, tables=(CUSTOMERS_W,)),
            missing_table(database, "missing_table"),
            JOIN,
        ]
    insert = "INSERT INTO orders (customer_id, note, amount, shipped, placed) VALUES (?, ?, ?, ?, ?)"
    return [
        Query("SET NAMES 'utf8mb4' COLLATE 'utf8mb4_general_ci'", affected=0),
        Query("SET @@session.autocommit = ON", affected=0),
        Query(
            insert,
            affected=1,
            last_id=4,
            tables=(ORDERS_W,),
            parameters=("2", "gift wrap", "19.5", None, "2026-01-15"),
        ),
        Query(
            insert,
            affected=1,
            last_id=5,
            tables=(ORDERS_W,),
            parameters=("3", "express", "7.25", None, "2026-02-01"),
        ),
        Query(
            "SELECT id, amount FROM orders WHERE customer_id = ? AND placed >= ?",
            rows=1,
            tables=(ORDERS_R,),
            parameters=("2", "2026-01-01"),
            columns=("id", "amount"),
        ),
        Query(
            "UPDATE orders SET shipped = ? WHERE placed >= ?",
            affected=3,
            tables=(ORDERS_W,),
            parameters=("2026-03-02", "2026-01-01"),
        ),
        Query(
            "SELECT note FROM no_such_orders WHERE id = ?",
            status="error",
            error=1146,
            message=f"Table '{database}.no_such_orders' doesn't exist",
            tables=(("no_such_orders", "read"),),
        ),
    ]


EXPECTED_TABLES = {
    "mysql_cli": {"customers": ("2", "3"), "orders": ("1", "0"), "no_such_table": ("1", "0")},
    "mysql_pymysql": {"customers": ("2", "3"), "orders": ("1", "0"), "missing_table": ("1", "0")},
    "mysql_connector": {"orders": ("1", "3"), "no_such_orders": ("1", "0")},
}


@pytest.mark.parametrize("name", MYSQL)
def test_mysql_queries(captures: dict[str, Replayed], name: str) -> None:
    capture = get(captures, name)
    found = [query_of(e) for e in capture.xml.iter("Dockit_SqlQuery")]
    assert found == expected_queries(name, capture.database)
    for element in capture.xml.iter("Dockit_SqlQuery"):
        assert element.get("Protocol") == "mysql"
        assert element.get("Process") == str(capture.root_pid)
        assert element.get("Truncated") is None, "dockit records with -s 1048576: nothing is cut"


@pytest.mark.parametrize("name", MYSQL)
def test_mysql_session(captures: dict[str, Replayed], name: str) -> None:
    capture = get(captures, name)
    (session,) = capture.records("Dockit_DatabaseSession")
    assert session["Protocol"] == "mysql"
    assert session["Process"] == str(capture.root_pid)
    assert session["Server"] == "127.0.0.1:3306"
    assert session["User"] == capture.user
    assert session["ServerVersion"] == SERVER_VERSION, "the greeting's 5.5.5- prefix removed"
    assert int(session["ConnectionId"]) > 0
    expected = {
        "mysql_cli": (None, "libmariadb", "mysql"),
        "mysql_pymysql": (None, "pymysql", None),
        "mysql_connector": (capture.database, "mysql-connector-python", None),
    }[name]
    assert (session.get("Database"), session.get("ClientName"), session.get("ProgramName")) == expected
    queries = {e.get("Session") for e in capture.xml.iter("Dockit_SqlQuery")}
    assert queries == {session["Id"]}


@pytest.mark.parametrize("name", MYSQL)
def test_mysql_tables(captures: dict[str, Replayed], name: str) -> None:
    capture = get(captures, name)
    tables = {t["Name"]: (t["Reads"], t["Writes"]) for t in capture.records("Dockit_SqlTable")}
    # Each client logs in to (or USEs) the capture's database: every table resolves there.
    assert tables == {
        f"{capture.database}.{table}": counts for table, counts in EXPECTED_TABLES[name].items()
    }
    written = {t.get("Name") for e in capture.xml.iter("Dockit_SqlQuery") for t in e.iter("Table")}
    assert written == set(EXPECTED_TABLES[name])  # each query's own <Table Name=...> as written


# -- The calls file ---------------------------------------------------------------------------------------
def blocks_of(calls: str, endpoint: str) -> list[list[str]]:
    """The annotations (`# ...` lines, without the `# `) under each block whose header names endpoint."""
    found: list[list[str]] = []
    current: list[str] | None = None
    for line in calls.splitlines():
        stripped = line.strip()
        if current is not None and line.startswith(" ") and stripped.startswith("# "):
            current.append(stripped[2:])
            continue
        current = None
        if endpoint in line and not line.startswith("        "):
            current = []
            found.append(current)
    return found


def mysql_block(capture: Replayed) -> list[str]:
    blocks = blocks_of(capture.calls, "->127.0.0.1:3306:")
    assert len(blocks) == 1, f"one block for the connection to 3306, found {len(blocks)}"
    return blocks[0]


@pytest.mark.parametrize("name", MYSQL)
def test_calls_file_shows_each_query_at_the_connection(captures: dict[str, Replayed], name: str) -> None:
    capture = get(captures, name)
    annotations = mysql_block(capture)
    kinds = ("mysql query: ", "mysql init db: ", "mysql execute: ")
    shown = [a for a in annotations if a.startswith(kinds)]
    expected = []
    for query in expected_queries(name, capture.database):
        if query.text.startswith("USE "):
            expected.append(f"mysql init db: {query.text}")
        elif query.parameters:
            expected.append(f"mysql execute: {query.text}")
        elif "?" not in query.text:
            expected.append(f"mysql query: {query.text}")
    assert shown == expected
    if name == "mysql_connector":
        prepared = [a.removeprefix("mysql prepare: ") for a in annotations if a.startswith("mysql prepare: ")]
        assert prepared == [
            "INSERT INTO orders (customer_id, note, amount, shipped, placed) VALUES (?, ?, ?, ?, ?)",
            "SELECT id, amount FROM orders WHERE customer_id = ? AND placed >= ?",
            "UPDATE orders SET shipped = ? WHERE placed >= ?",
            "SELECT note FROM no_such_orders WHERE id = ?",
        ]
    assert annotations[-1] == "mysql quit"


@pytest.mark.parametrize(
    "name",
    [
        "mysql_cli",
        "mysql_pymysql",
        "mysql_connector",
    ],
)
def test_calls_file_shows_the_greeting(captures: dict[str, Replayed], name: str) -> None:
    capture = get(captures, name)
    greetings = [a for a in mysql_block(capture) if a.startswith("mysql greeting: ")]
    assert len(greetings) == 1
    assert re.fullmatch(rf"mysql greeting: server {re.escape(SERVER_VERSION)} connection \d+", greetings[0])


# -- Secrets ----------------------------------------------------------------------------------------------
def auth_response(log: Path) -> bytes:
    """The 20-byte scramble of the client's login packet, read from the log (after `user\\0` and its
    length byte 0x14)."""
    for line in log.read_text(errors="replace").splitlines():
        match = re.search(
            r"(?:sendto|write)\(\d+<TCP:\[[^\]]*->127\.0\.0\.1:3306\]>, (\".*?\")(?:\.\.\.)?, \d+", line
        )
        if not match:
            continue
        data, _cut = literal_bytes(match.group(1))
        marker = b"dockit_capture_user\0\x14" if b"dockit_capture_user\0" in data else None
        if marker is None:
            user = re.search(rb"(dockit_live_\d+)\0\x14", data)
            marker = user.group(0) if user else None
        if marker is not None:
            start = data.index(marker) + len(marker)
            return data[start : start + 20]
    raise AssertionError(f"no login packet in {log}")


@pytest.mark.parametrize("name", MYSQL + HTTP)
def test_no_secret_in_any_output(captures: dict[str, Replayed], name: str) -> None:
    capture = get(captures, name)
    password = recorder.PASSWORD
    for what, text in capture.outputs.items():
        assert password not in text, f"the password is in the replay's {what}"
    assert password not in capture.log.with_suffix(".ini").read_text(), "the .ini holds the password"
    log = capture.log.read_text(errors="replace")
    if name == "mysql_cli":  # strace's own record of the argv; the user is dropped after recording
        assert [line for line in log.splitlines() if password in line] == [
            line for line in log.splitlines() if password in line and " execve(" in line
        ]
        assert "-p<redacted>" in capture.log.with_suffix(".ini").read_text()
    else:
        assert password not in log
    if name in MYSQL:
        scramble = auth_response(capture.log)
        assert len(scramble) == 20
        for what, text in capture.outputs.items():
            assert scramble.hex() not in text and scramble.decode("latin-1") not in text, what


# -- Every capture ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MYSQL + HTTP)
def test_replays_cleanly(captures: dict[str, Replayed], name: str) -> None:
    capture = get(captures, name)
    (statistics,) = capture.records("Dockit_Statistics")
    assert statistics["UnparsedLines"] == "0"
    assert statistics["ResumedWithoutStart"] == "0"
    assert statistics["DecoderProblems"] == "0"
    assert capture.log.stat().st_size < 300_000
    ini = dict(
        line.split("=", 1) for line in capture.log.with_suffix(".ini").read_text().splitlines() if "=" in line
    )
    assert ini["TopProcessId"] == str(capture.root_pid)
    attached = name in ("mysql_pymysql", "mysql_connector", "http_requests")
    assert ini.get("ExitStatus") == (None if attached else "1" if name == "mysql_cli" else "0")


# -- HTTP facts -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Exchange:
    method: str
    url: str
    status: int
    reason: str
    content_type: str
    request_bytes: int
    response_bytes: int
    request_headers: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


EXPECTED_HTTP = {
    "http_curl": [
        Exchange("GET", "/search?q=dockit&page=2", 200, "OK", "application/json", 101, 219),
        Exchange("POST", "/api/items", 201, "Created", "application/json", 169, 183),
        Exchange("GET", "/no/such/page", 404, "no such page", "text/html;charset=utf-8", 91, 507),
    ],
    "http_wget": [Exchange("GET", "/files/report.txt", 200, "OK", "text/plain", 146, 159)],
    "http_requests": [
        Exchange("GET", "/stream/numbers", 200, "OK", "text/plain; charset=utf-8", 160, 188),
        Exchange("GET", "/session/profile?user=ada", 200, "OK", "application/json", 170, 168),
        Exchange("POST", "/session/cart", 200, "OK", "application/json", 237, 173),
        Exchange("GET", "/session/logout", 200, "OK", "text/plain", 160, 134),
    ],
}
USER_AGENTS = {
    "http_curl": "curl/7.88.1",
    "http_wget": "Wget/1.21.3",
    "http_requests": "python-requests/2.34.2",
}
# (bytes out, bytes in) of each TCP connection to the server
EXPECTED_SOCKETS = {
    "http_curl": [(361, 909)],
    "http_wget": [(146, 159)],
    "http_requests": [(160, 188), (567, 475)],
}


def host_delta(capture: Replayed) -> int:
    """A request carries `Host: 127.0.0.1:PORT`: another port may have another number of digits."""
    return len(str(capture.port)) - len(str(COMMITTED_PORT))


@pytest.mark.parametrize("name", HTTP)
def test_http_exchanges(captures: dict[str, Replayed], name: str) -> None:
    capture = get(captures, name)
    elements = sorted(capture.xml.iter("Dockit_HttpRequest"), key=lambda e: e.get("Start"))
    found = [
        Exchange(
            e.get("Method"),
            e.get("Url"),
            int(e.get("Status")),
            e.get("Reason"),
            e.get("ContentType"),
            int(e.get("RequestBytes")),
            int(e.get("ResponseBytes")),
        )
        for e in elements
    ]
    delta = host_delta(capture)
    expected = [
        Exchange(
            x.method, x.url, x.status, x.reason, x.content_type, x.request_bytes + delta, x.response_bytes
        )
        for x in EXPECTED_HTTP[name]
    ]
    assert found == expected
    address = f"127.0.0.1:{capture.port}"
    for element in elements:
        assert element.get("Side") == "client"
        assert element.get("Process") == str(capture.root_pid)
        assert (element.get("Host"), element.get("Server"), element.get("Version")) == (
            address,
            address,
            "1.1",
        )
        assert element.get("Truncated") is None and element.get("Complete") is None
        request = {
            h.get("Name"): h.get("Value") for h in element.iter("Header") if h.get("Direction") == "request"
        }
        response = {
            h.get("Name"): h.get("Value") for h in element.iter("Header") if h.get("Direction") == "response"
        }
        assert request["User-Agent"] == USER_AGENTS[name]
        assert request["Host"] == address
        assert response["Server"] == "dockit-capture/1.0", "the value without its trailing space"
        if element.get("Method") == "POST":
            assert request["Content-Type"] == "application/json"
        if element.get("Url") == "/stream/numbers":
            assert response["Transfer-Encoding"] == "chunked"


@pytest.mark.parametrize("name", HTTP)
def test_http_connections(captures: dict[str, Replayed], name: str) -> None:
    """curl's three requests share one connection, requests' Session its three; each byte counts once
    (wget's MSG_PEEK read is not counted again)."""
    capture = get(captures, name)
    sockets = [s for s in capture.records("Dockit_Socket") if s.get("Remote") == f"127.0.0.1:{capture.port}"]
    delta = host_delta(capture)
    found = sorted((int(s["BytesOut"]), int(s["BytesIn"])) for s in sockets)
    requests_per_socket = {"http_curl": [3], "http_wget": [1], "http_requests": [1, 3]}[name]
    expected = sorted(
        (out + delta * count, bytes_in)
        for (out, bytes_in), count in zip(EXPECTED_SOCKETS[name], requests_per_socket, strict=True)
    )
    assert found == expected
    assert all(s["Process"] == str(capture.root_pid) for s in sockets)


@pytest.mark.parametrize("name", HTTP)
def test_calls_file_shows_each_request_at_its_connection(captures: dict[str, Replayed], name: str) -> None:
    capture = get(captures, name)
    blocks = blocks_of(capture.calls, f"->127.0.0.1:{capture.port}:")
    shown = sorted([a for a in block if a.startswith("http ")] for block in blocks)
    requests = [f"http {x.method} {x.url}" for x in EXPECTED_HTTP[name]]
    expected = {
        "http_curl": [requests],
        "http_wget": [requests],
        "http_requests": [requests[:1], requests[1:]],
    }
    assert shown == sorted(expected[name])


def test_calls_file_counts_peeked_bytes_once(captures: dict[str, Replayed]) -> None:
    capture = get(captures, "http_wget")
    headers = [line for line in capture.calls.splitlines() if f"->127.0.0.1:{capture.port}:" in line]
    assert len(headers) == 1
    assert "159 B in" in headers[0], headers[0]
