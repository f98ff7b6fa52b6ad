"""The Python PostgreSQL clients that captures/record_postgres.py runs under dockit: fixed statements, so that
each recording yields the same facts (captures/POSTGRES_FACTS.md).

    python postgres_clients.py psycopg DATABASE   # psycopg 3: extended protocol, pipeline, COPY
    python postgres_clients.py asyncpg DATABASE   # asyncpg: binary formats, a prepared statement

Like captures/protocol_clients.py, each imports its driver, writes the file `ready` in its working
folder and waits until a tracer is attached (TracerPid in /proc/self/status); the recorder then attaches
`dockit -p PID`, so the capture holds the protocol work, not the imports. Both connect to 127.0.0.1:5432
as postgres (trust authentication), without TLS.
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import sys
import time
from pathlib import Path

HOST = "127.0.0.1"


def show(value: object) -> None:
    """What the server returned, on stdout: the log then shows it (the facts are read from it)."""
    print(repr(value), flush=True)


def wait_for_tracer() -> None:
    Path("ready").write_text("ready\n")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = Path("/proc/self/status").read_text()
        if any(line.startswith("TracerPid:") and line.split()[1] != "0" for line in status.splitlines()):
            time.sleep(0.2)  # the tracer attaches to every thread
            return
        time.sleep(0.01)
    raise SystemExit("no tracer attached")


def run_psycopg(database: str) -> None:
    import psycopg
    from psycopg import errors

    wait_for_tracer()
    with psycopg.connect(
        host=HOST, user="postgres", dbname=database, sslmode="disable", autocommit=True
    ) as conn:
        cur = conn.cursor()
        cur.execute("SELECT id, name FROM parts WHERE weight > %s ORDER BY id", (decimal.Decimal("1.5"),))
        show(cur.fetchall())
        cur.executemany(
            "INSERT INTO parts (id, name, weight) VALUES (%s, %s, %s)", [(10, "axle", 4.5), (11, "cog", 0.25)]
        )
        with conn.pipeline():
            cur.execute("UPDATE parts SET weight = weight * %s WHERE id >= %s", (2, 10))
            cur.execute("DELETE FROM parts WHERE name = %s", ("cog",))
        show(cur.rowcount)
        try:
            cur.execute("SELECT * FROM parts WHERE id = %s", ("not a number",))
        except errors.InvalidTextRepresentation as error:
            show((error.sqlstate, error.diag.message_primary))
        with cur.copy("COPY parts (id, name) FROM STDIN") as copy:
            copy.write_row((20, "spring"))
            copy.write_row((21, "washer"))
        show(cur.rowcount)
        cur.execute("SELECT count(*) FROM parts WHERE added >= %s", (datetime.date(2026, 1, 1),))
        show(cur.fetchone())


def run_asyncpg(database: str) -> None:
    import asyncpg

    async def work() -> None:
        conn = await asyncpg.connect(host=HOST, user="postgres", database=database, ssl=False)
        statement = await conn.prepare("SELECT id, name, weight, added FROM parts WHERE id <= $1 ORDER BY id")
        show(await statement.fetch(2))
        show(await statement.fetch(3))
        show(await conn.execute("UPDATE parts SET added = $1 WHERE id = $2", datetime.date(2026, 3, 1), 1))
        try:
            await conn.fetch("SELECT missing_column FROM parts")
        except asyncpg.PostgresError as error:
            show((error.sqlstate, error.message))
        await conn.close()

    wait_for_tracer()
    asyncio.run(work())


if __name__ == "__main__":
    name, database = sys.argv[1], sys.argv[2]
    if name == "asyncpg":
        import asyncpg  # noqa: F401 - imported before the tracer attaches

        run_asyncpg(database)
    else:
        import psycopg  # noqa: F401

        run_psycopg(database)
