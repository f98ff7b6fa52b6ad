"""The Python clients that captures/record_protocols.py runs under dockit: fixed statements and requests,
so that each recording yields the same facts (captures/PROTOCOL_FACTS.md).

    python protocol_clients.py pymysql PORT DATABASE USER    # PyMySQL (pure Python), text protocol
    python protocol_clients.py connector PORT DATABASE USER  # mysql-connector-python, prepared statements
    python protocol_clients.py requests PORT                 # python-requests against the recorder's server

Each first imports its driver and runs the driver's one-time probes, writes the file `ready` in its
working folder, and waits until a tracer is attached (TracerPid in /proc/self/status): the recorder
then attaches `dockit -p PID`. So the capture holds the protocol work, not the imports (requests'
imports alone are about 700 KB of strace lines; mysql-connector also runs `lsb_release -a` once).

The MySQL password comes from the environment (DOCKIT_CAPTURE_PASSWORD: dockit leaves such names out of
its .ini and strace does not print the environment), so it is in no file the trace reads.
"""

from __future__ import annotations

import datetime
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

HOST = "127.0.0.1"
# Longer than strace's default 32-byte cut (dockit itself records with -s 1048576).
LONG_QUERY = (
    "SELECT c.name, c.city, COUNT(o.id) AS order_count, SUM(o.amount) AS total "
    "FROM customers AS c LEFT JOIN orders AS o ON o.customer_id = c.id "
    "GROUP BY c.id, c.name, c.city ORDER BY c.id"
)


def show(rows: object) -> None:
    """The rows on stdout: the log then shows what the server returned (the facts are read from it)."""
    print(repr(rows), flush=True)


def run_pymysql(port: int, database: str, user: str) -> None:
    import pymysql

    connection = pymysql.connect(
        host=HOST, port=port, user=user, password=os.environ["DOCKIT_CAPTURE_PASSWORD"], autocommit=True
    )
    connection.select_db(database)  # COM_INIT_DB
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, name, city FROM customers WHERE city = %s ORDER BY id", ("Paris",))
        show(cursor.fetchall())
        cursor.executemany(
            "INSERT INTO customers (name, city, balance) VALUES (%s, %s, %s)",
            [("Fritz", "Bern", 5), ("Greta", "Wien", 7)],
        )
        show(cursor.rowcount)
        cursor.execute("UPDATE customers SET balance = balance * 2 WHERE city IN ('Bern', 'Wien')")
        show(cursor.rowcount)
        cursor.execute("DELETE FROM customers WHERE name = %s", ("Greta",))
        show(cursor.rowcount)
        try:
            cursor.execute("SELECT * FROM missing_table")
        except pymysql.err.ProgrammingError as error:
            print("expected error", error.args[0], flush=True)
        cursor.execute(LONG_QUERY)
        show(cursor.fetchall())
    connection.close()


def run_connector(port: int, database: str, user: str) -> None:
    import mysql.connector

    connection = mysql.connector.connect(
        host=HOST,
        port=port,
        user=user,
        password=os.environ["DOCKIT_CAPTURE_PASSWORD"],
        database=database,
        use_pure=True,
        autocommit=True,
    )
    cursor = connection.cursor(prepared=True)
    insert = "INSERT INTO orders (customer_id, note, amount, shipped, placed) VALUES (?, ?, ?, ?, ?)"
    cursor.execute(insert, (2, "gift wrap", 19.5, None, datetime.date(2026, 1, 15)))
    show((cursor.rowcount, cursor.lastrowid))
    cursor.execute(insert, (3, "express", 7.25, None, datetime.date(2026, 2, 1)))
    show((cursor.rowcount, cursor.lastrowid))
    cursor.execute(
        "SELECT id, amount FROM orders WHERE customer_id = ? AND placed >= ?", (2, datetime.date(2026, 1, 1))
    )
    show(cursor.fetchall())
    cursor.execute(
        "UPDATE orders SET shipped = ? WHERE placed >= ?",
        (datetime.date(2026, 3, 2), datetime.date(2026, 1, 1)),
    )
    show(cursor.rowcount)
    try:  # the server refuses to prepare it: COM_STMT_PREPARE answered by an error
        cursor.execute("SELECT note FROM no_such_orders WHERE id = ?", (1,))
    except mysql.connector.errors.ProgrammingError as error:
        print("expected error", error.errno, flush=True)
    cursor.close()
    connection.close()


def run_requests(port: int) -> None:
    import requests

    base = f"http://{HOST}:{port}"
    response = requests.get(f"{base}/stream/numbers", timeout=10)  # the server answers chunked
    assert response.text == "one\ntwo\nthree\n", response.text
    with requests.Session() as session:  # three requests, one keep-alive connection
        session.get(f"{base}/session/profile", params={"user": "ada"}, timeout=10).raise_for_status()
        session.post(f"{base}/session/cart", json={"item": "book", "qty": 2}, timeout=10).raise_for_status()
        session.get(f"{base}/session/logout", timeout=10).raise_for_status()


def prepare(name: str) -> None:
    """Everything a client does once per process, done before the tracer comes."""
    if name == "pymysql":
        import pymysql  # noqa: F401
    elif name == "connector":
        import mysql.connector
        import mysql.connector.plugins.mysql_native_password  # noqa: F401 - loaded at login otherwise
        from mysql.connector.utils import get_platform

        get_platform()  # cached; runs `lsb_release -a` the first time (for the connection attributes)
        mysql.connector.connect  # noqa: B018
    elif name == "requests":
        import requests  # noqa: F401


def traced() -> bool:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("TracerPid:"):
                return int(line.split()[1]) != 0
    return False


def wait_for_tracer(timeout: float = 60) -> None:
    Path("ready").write_text(str(os.getpid()))
    deadline = time.monotonic() + timeout
    while not traced():
        if time.monotonic() > deadline:
            raise SystemExit(f"no tracer attached within {timeout} s")
        time.sleep(0.01)


def main(args: list[str]) -> int:
    clients: dict[str, Callable[..., None]] = {
        "pymysql": run_pymysql,
        "connector": run_connector,
        "requests": run_requests,
    }
    name, port, rest = args[0], int(args[1]), args[2:]
    prepare(name)
    wait_for_tracer()
    clients[name](port, *rest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
