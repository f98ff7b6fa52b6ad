"""Record the MySQL and HTTP captures with dockit itself: real clients, real servers, traced live.

    python captures/record_protocols.py                      # all six captures into captures/
    python captures/record_protocols.py mysql_cli http_curl  # some of them
    python captures/record_protocols.py --out DIR http_wget  # elsewhere (the live tests do this)

MySQL: the MariaDB server on 127.0.0.1:3306 (root, empty password). Before the captures the recorder
(untraced, as root) creates the database `dockit_capture` and the user `dockit_capture_user` with a
throwaway password; before each MySQL capture it re-creates the tables with the same rows, so every
recording sends and receives the same things; afterwards it drops the user and the database. The
password is never usable after a recording: the user is gone.

HTTP: a `http.server` on 127.0.0.1:HTTP_PORT, run by the recorder in a thread (untraced); only the
clients are traced.

How: `mariadb`, `curl` and `wget` run under `dockit -l captures/<name> COMMAND` (traced from their
execve). The Python clients (captures/protocol_clients.py) are started untraced, import their driver,
say they are ready, and are then attached with `dockit -p PID` until they exit: their imports alone
would be 400-800 KB of strace lines, against 300 KB allowed per capture.

The tests record again into a temporary folder (`Settings` with their own database, user, port and
work folder, so they never disturb a recording running at the same time) and check the same facts.

Each capture runs in its own empty folder /tmp/dockit-captures/<name> with a small fixed environment,
like captures/record.py, and leaves `captures/<name>.strace.<pid>.log` and `.ini` (older recordings of
the same name are removed first: pids change). The facts each must yield are in PROTOCOL_FACTS.md and
checked by tests/test_protocol_captures.py.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO
from urllib.parse import parse_qs, urlsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from record import ENVIRONMENT, WORK, collect_log  # noqa: E402 - the recorder of the core captures

MYSQL_HOST = "127.0.0.1"
MYSQL_PORT = 3306
DATABASE = "dockit_capture"
USER = "dockit_capture_user"
# Throwaway: the user it logs in is dropped after every recording. The tests check it is in no output.
PASSWORD = "Thr0waway-dockit-7c41"
HTTP_PORT = 47621


@dataclass(frozen=True)
class Settings:
    """Where a recording runs: the committed captures use the defaults."""

    database: str = DATABASE
    user: str = USER
    http_port: int = HTTP_PORT  # 0: any free port (the server says which)
    work: Path = WORK


LONG_QUERY = (
    "SELECT c.name, c.city, COUNT(o.id) AS order_count, SUM(o.amount) AS total "
    "FROM customers AS c LEFT JOIN orders AS o ON o.customer_id = c.id "
    "GROUP BY c.id, c.name, c.city ORDER BY c.id"
)


def cli_statements(database: str = DATABASE) -> list[str]:
    return [
        f"USE {database}",
        "SELECT id, name, city FROM customers ORDER BY id",
        "INSERT INTO customers (name, city, balance) VALUES ('Emil', 'Oslo', 12.5), ('Fay', 'Oslo', 0)",
        "UPDATE customers SET balance = balance + 10 WHERE city = 'Paris'",
        "DELETE FROM customers WHERE name = 'Fay'",
        LONG_QUERY,
        "SELECT * FROM no_such_table",  # last: the client stops at the first error of -e
    ]


TABLES = [
    "CREATE TABLE customers (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50) NOT NULL, "
    "city VARCHAR(50) NOT NULL, balance DECIMAL(10,2) NOT NULL)",
    "INSERT INTO customers (name, city, balance) VALUES ('Ada', 'Paris', 100), ('Bruno', 'Paris', 50), "
    "('Chen', 'London', 75.5), ('Dana', 'Berlin', 0)",
    "CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, customer_id INT NOT NULL, note VARCHAR(100), "
    "amount DECIMAL(10,2) NOT NULL, shipped DATE NULL, placed DATE NOT NULL)",
    "INSERT INTO orders (customer_id, note, amount, shipped, placed) VALUES "
    "(1, 'first', 20, '2025-12-02', '2025-12-01'), (1, NULL, 35.5, NULL, '2025-12-20'), "
    "(3, 'bulk', 12, NULL, '2026-01-05')",
]


@dataclass
class Capture:
    name: str
    kind: str  # "mysql" or "http": which server it needs
    command: Callable[[], list[str]]
    expected_status: int = 0
    environment: dict[str, str] = field(default_factory=dict)
    attach: bool = False  # start the command untraced, attach `dockit -p` once it says it is ready


def python() -> str:
    """The interpreter that has PyMySQL, mysql-connector and requests (never a pyenv shim)."""
    return os.path.realpath(sys.executable)


def client(name: str, *args: object) -> list[str]:
    return [python(), "-B", str(HERE / "protocol_clients.py"), name, *map(str, args)]


def captures(settings: Settings = Settings(), http_port: int | None = None) -> list[Capture]:
    """The six captures; `http_port` is the port the HTTP server actually listens on."""
    base = f"http://127.0.0.1:{http_port or settings.http_port}"
    database, user = settings.database, settings.user
    secret = {"DOCKIT_CAPTURE_PASSWORD": PASSWORD}
    return [
        Capture(
            "mysql_cli",
            "mysql",
            lambda: [
                "mariadb",
                f"-h{MYSQL_HOST}",
                f"-P{MYSQL_PORT}",
                f"-u{user}",
                f"-p{PASSWORD}",  # on the command line: dockit's outputs must redact it
                "-e",
                ";\n".join(cli_statements(database)) + ";",
            ],
            expected_status=1,  # the unknown table
        ),
        Capture(
            "mysql_pymysql",
            "mysql",
            lambda: client("pymysql", MYSQL_PORT, database, user),
            environment=secret,
            attach=True,
        ),
        Capture(
            "mysql_connector",
            "mysql",
            lambda: client("connector", MYSQL_PORT, database, user),
            environment=secret,
            attach=True,
        ),
        Capture(
            "http_curl",
            "http",
            lambda: [
                "curl",
                "-sS",
                "-o",
                "search.json",
                f"{base}/search?q=dockit&page=2",
                "--next",
                "-sS",
                "-o",
                "created.json",
                "-H",
                "Content-Type: application/json",
                "--data",
                '{"name": "widget", "qty": 3}',
                f"{base}/api/items",
                "--next",
                "-sS",
                "-o",
                "missing.html",
                f"{base}/no/such/page",
            ],
        ),
        Capture("http_wget", "http", lambda: ["wget", "-q", "-O", "report.txt", f"{base}/files/report.txt"]),
        Capture(
            "http_requests", "http", lambda: client("requests", http_port or settings.http_port), attach=True
        ),
    ]


# -- MySQL: the database the captures use ---------------------------------------------------------------
def _root_connection():  # type: ignore[no-untyped-def]
    import pymysql

    return pymysql.connect(host=MYSQL_HOST, port=MYSQL_PORT, user="root", password="", autocommit=True)


def mysql_reachable() -> str | None:
    """None when MariaDB answers as root on MYSQL_HOST:MYSQL_PORT, else why not."""
    try:
        _root_connection().close()
    except Exception as error:  # noqa: BLE001 - any failure means "not reachable"
        return f"MariaDB not reachable as root on {MYSQL_HOST}:{MYSQL_PORT}: {error}"
    return None


def reset_tables(database: str = DATABASE) -> None:
    """The same tables and rows before every MySQL capture, so each recording yields the same facts."""
    connection = _root_connection()
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {database}")
        cursor.execute(f"CREATE DATABASE {database}")
        cursor.execute(f"USE {database}")
        for statement in TABLES:
            cursor.execute(statement)
    connection.close()


@contextlib.contextmanager
def mysql_database(database: str = DATABASE, user: str = USER) -> Iterator[None]:
    """The database and the throwaway user for the time of the recordings; both dropped afterwards."""
    connection = _root_connection()
    with connection.cursor() as cursor:
        cursor.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        cursor.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{PASSWORD}'")
        cursor.execute(f"GRANT ALL PRIVILEGES ON {database}.* TO '{user}'@'%'")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP USER IF EXISTS '{user}'@'%'")
            cursor.execute(f"DROP DATABASE IF EXISTS {database}")
        connection.close()


# -- HTTP: the server the clients talk to ---------------------------------------------------------------
class Handler(BaseHTTPRequestHandler):
    """Fixed answers: JSON, plain text, a chunked body, keep-alive (HTTP/1.1), 404 for anything else."""

    protocol_version = "HTTP/1.1"
    server_version = "dockit-capture/1.0"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, value: object) -> None:
        self._send(status, "application/json", json.dumps(value, sort_keys=True).encode())

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/search":
            self._json(200, {"query": query, "results": ["dockit", "strace", "ltrace"]})
        elif url.path == "/files/report.txt":
            self._send(200, "text/plain", b"report line 1\nreport line 2\n")
        elif url.path == "/stream/numbers":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"one\n", b"two\n", b"three\n"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif url.path == "/session/profile":
            self._json(200, {"user": query.get("user"), "plan": "free"})
        elif url.path == "/session/logout":
            self._send(200, "text/plain", b"bye\n")
        else:
            self.send_error(404, "no such page")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/api/items":
            self._json(201, {"created": json.loads(body)})
        elif self.path == "/session/cart":
            self._json(200, {"cart": json.loads(body)})
        else:
            self.send_error(404, "no such page")


@contextlib.contextmanager
def http_server(port: int = HTTP_PORT) -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


# -- Recording --------------------------------------------------------------------------------------------
def record(capture: Capture, out: Path = HERE, settings: Settings = Settings()) -> Path:
    """Run the capture's command under `dockit -l out/<name>`; keep only the .log and .ini."""
    folder = settings.work / capture.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for old in glob.glob(str(out / f"{capture.name}.strace.*")):
        os.unlink(old)
    if capture.kind == "mysql":
        reset_tables(settings.database)
    environment = dict(ENVIRONMENT, **capture.environment)
    dockit = [sys.executable, "-m", "dockit_core.cli", "-l", str(out / capture.name)]
    dockit_environment = dict(ENVIRONMENT)
    if os.environ.get("DOCKIT_SOURCE"):  # another checkout of dockit; else the installed one
        dockit_environment["PYTHONPATH"] = os.environ["DOCKIT_SOURCE"]
    with open(folder / "stdout.txt", "wb") as stdout, open(folder / "stderr.txt", "wb") as stderr:
        if capture.attach:
            status = _attach(capture, folder, dockit, environment, dockit_environment, stdout, stderr)
        else:
            status = subprocess.run(
                [*dockit, *capture.command()],
                cwd=folder,
                env=dict(dockit_environment, **capture.environment),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                check=False,
            ).returncode
    return collect_log(out, capture.name, folder, status, capture.expected_status)


def _attach(
    capture: Capture,
    folder: Path,
    dockit: list[str],
    environment: dict[str, str],
    dockit_environment: dict[str, str],
    stdout: IO[bytes],
    stderr: IO[bytes],
) -> int:
    """Start the command untraced; once it has written `ready` (imports done), `dockit -p` it until it
    exits. Returns the command's exit status (dockit's own must be 0)."""
    program = subprocess.Popen(
        capture.command(), cwd=folder, env=environment, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr
    )
    try:
        deadline = time.monotonic() + 60
        while not (folder / "ready").exists():
            if program.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{capture.name}: never ready (status {program.poll()})")
            time.sleep(0.01)
        (folder / "ready").unlink()
        attached = subprocess.run(
            [*dockit, "-p", str(program.pid)],
            cwd=folder,
            env=dockit_environment,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            timeout=120,
            check=False,
        )
        if attached.returncode != 0:
            raise SystemExit(f"{capture.name}: dockit -p returned {attached.returncode}")
        return program.wait(timeout=60)
    finally:
        if program.poll() is None:
            program.kill()
            program.wait()


def record_all(names: list[str], out: Path = HERE, settings: Settings = Settings()) -> dict[str, Path]:
    """Record the named captures (all when empty), each server up only while it is needed."""
    known = [c.name for c in captures(settings)]
    unknown = set(names) - set(known)
    if unknown:
        raise SystemExit(f"unknown capture(s): {sorted(unknown)}")
    chosen = [name for name in known if not names or name in names]
    kinds = {c.name: c.kind for c in captures(settings)}
    logs: dict[str, Path] = {}
    if any(kinds[name] == "mysql" for name in chosen):
        with mysql_database(settings.database, settings.user):
            for capture in captures(settings):
                if capture.name in chosen and capture.kind == "mysql":
                    logs[capture.name] = record(capture, out, settings)
    if any(kinds[name] == "http" for name in chosen):
        with http_server(settings.http_port) as server:
            for capture in captures(settings, http_port=server.server_address[1]):
                if capture.name in chosen and capture.kind == "http":
                    logs[capture.name] = record(capture, out, settings)
    return logs


def main(args: list[str]) -> int:
    out = HERE
    if args[:1] == ["--out"]:
        out, args = Path(args[1]).resolve(), args[2:]
        out.mkdir(parents=True, exist_ok=True)
    for name, log in record_all(args, out).items():
        print(f"{name}: {log} ({log.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
