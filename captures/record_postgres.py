"""Record the PostgreSQL captures with dockit itself: real clients, the machine's real server, traced live.

    python captures/record_postgres.py                        # all four captures into captures/
    python captures/record_postgres.py pg_psql_tcp pg_psycopg  # some of them
    python captures/record_postgres.py --out DIR pg_asyncpg    # elsewhere (the tests do this)

The server is the machine's PostgreSQL on 127.0.0.1:5432 and /var/run/postgresql (trust authentication).
Before the captures the recorder (untraced) creates the database `dockit_pg_capture`; before each
capture it re-creates the same table with the same rows, so every recording sends and receives the same
things; afterwards it drops the database.

How, as captures/record_protocols.py does it (its `record` runs each capture in its own empty folder
with a small fixed environment and keeps `captures/<name>.strace.<pid>.log` and `.ini`): psql runs
under `dockit -l captures/<name> COMMAND` (the binary in /usr/lib/postgresql/15/bin, not Debian's Perl
wrapper, whose module reads would fill the log); the Python clients
(captures/postgres_clients.py) are started untraced and attached with `dockit -p PID` once their driver
is imported. pg_dump is traced by the live tests only: its catalog queries' answers make a log of
1.2 MB, four times what a committed capture may weigh. The facts each capture must yield are in POSTGRES_FACTS.md and checked by
tests/test_postgres_captures.py.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from record import WORK  # noqa: E402
from record_protocols import Capture, python, record  # noqa: E402

HOST = "127.0.0.1"
DATABASE = "dockit_pg_capture"
BIN = Path("/usr/lib/postgresql/15/bin")

TABLE = [
    "DROP TABLE IF EXISTS parts",
    "CREATE TABLE parts (id int PRIMARY KEY, name text NOT NULL, weight numeric(6,2), added date)",
    "INSERT INTO parts VALUES (1, 'bolt', 0.50, '2025-12-01'), (2, 'gear', 2.25, '2026-01-10'), "
    "(3, 'shaft', 7.00, '2026-02-03')",
]
# psql over TCP: several statements in one Query, the second -c fails.
PSQL_STATEMENTS = (
    "SELECT id, name FROM parts ORDER BY id; UPDATE parts SET weight = weight + 1 WHERE id >= 2; "
    "INSERT INTO parts (id, name) VALUES (4, 'nut')"
)


@dataclass(frozen=True)
class Settings:
    """Where a recording runs: the committed captures use the defaults."""

    database: str = DATABASE
    work: Path = WORK


def tool(name: str) -> str:
    return str(BIN / name) if (BIN / name).exists() else name


def captures(settings: Settings = Settings()) -> list[Capture]:
    database = settings.database
    no_tls = {"PGSSLMODE": "disable"}
    return [
        Capture(
            "pg_psql_tcp",
            "postgres",
            lambda: [
                tool("psql"),
                "-X",
                "-h",
                HOST,
                "-U",
                "postgres",
                "-d",
                database,
                "-c",
                PSQL_STATEMENTS,
                "-c",
                "SELECT * FROM no_such_parts",
            ],  # fmt: skip
            expected_status=1,  # the unknown table
        ),
        Capture(
            "pg_psql_unix",
            "postgres",
            lambda: [
                tool("psql"),
                "-X",
                "-U",
                "postgres",
                "-d",
                database,
                "-c",
                "DROP TABLE IF EXISTS old_parts",
                "-c",
                "COPY (SELECT id, name FROM parts ORDER BY id) TO STDOUT",
                "-c",
                "SELECT count(*) AS n FROM parts WHERE added < '2026-01-01'",
            ],  # fmt: skip
        ),
        Capture(
            "pg_psycopg", "postgres", lambda: client("psycopg", database), environment=no_tls, attach=True
        ),
        Capture(
            "pg_asyncpg", "postgres", lambda: client("asyncpg", database), environment=no_tls, attach=True
        ),
    ]


def client(name: str, database: str) -> list[str]:
    return [python(), "-B", str(HERE / "postgres_clients.py"), name, database]


def _psql(database: str, *statements: str) -> None:
    command = [
        tool("psql"),
        "-X",
        "-q",
        "-h",
        HOST,
        "-U",
        "postgres",
        "-d",
        database,
        "-v",
        "ON_ERROR_STOP=1",
    ]
    for statement in statements:
        command += ["-c", statement]
    subprocess.run(
        command, check=True, capture_output=True, env={"PGSSLMODE": "disable", "PATH": "/usr/bin:/bin"}
    )


def postgres_reachable() -> str | None:
    """None when the server answers as postgres on 127.0.0.1:5432, else why not."""
    if shutil.which(tool("psql")) is None:
        return "psql is not installed"
    try:
        _psql("postgres", "SELECT 1")
    except (subprocess.CalledProcessError, OSError) as error:
        return f"PostgreSQL not reachable as postgres on {HOST}:5432: {error}"
    return None


@contextlib.contextmanager
def capture_database(database: str = DATABASE) -> Iterator[None]:
    _psql("postgres", f"DROP DATABASE IF EXISTS {database} WITH (FORCE)", f"CREATE DATABASE {database}")
    try:
        yield
    finally:
        _psql("postgres", f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def record_all(names: list[str], out: Path = HERE, settings: Settings = Settings()) -> dict[str, Path]:
    known = [c.name for c in captures(settings)]
    unknown = set(names) - set(known)
    if unknown:
        raise SystemExit(f"unknown capture(s): {sorted(unknown)}")
    logs: dict[str, Path] = {}
    with capture_database(settings.database):
        for capture in captures(settings):
            if names and capture.name not in names:
                continue
            _psql(settings.database, *TABLE)
            logs[capture.name] = record(capture, out, _work(settings))
    return logs


def _work(settings: Settings):  # type: ignore[no-untyped-def]
    """record_protocols' settings: only the work folder matters to `record` for these captures."""
    from record_protocols import Settings as ProtocolSettings

    return ProtocolSettings(work=settings.work)


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
