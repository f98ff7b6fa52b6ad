"""Real clients traced live by dockit against the MariaDB server on 127.0.0.1:3306, one case per bug the
live battery found. Each test creates and drops its own tables and users; expected values come from
the SQL each test sent and the server's own answers, never from the decoder."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import mariadb_listening

pytestmark = [pytest.mark.mysql, pytest.mark.live]

REPO = Path(__file__).resolve().parents[1]




@pytest.fixture(scope="module")
def admin():
    if not mariadb_listening():
        pytest.skip("no MariaDB/MySQL server on 127.0.0.1:3306 (user root, empty password)")
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    import pymysql

    try:
        conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database="test",
                               autocommit=True)  # fmt: skip
    except pymysql.err.MySQLError as e:
        pytest.skip(f"MariaDB on 127.0.0.1:3306 refused root with no password on database test: {e}")
    yield conn
    conn.close()


def sql(conn, statement: str):
    with conn.cursor() as cur:
        cur.execute(statement)
        return cur.fetchall()


def trace(tmp_path: Path, *command: str, rows: int = 0) -> tuple[etree._Element, list[Path]]:
    """dockit -l PREFIX [--rows N] COMMAND: the summary's root and every output file but the raw .log
    and the .ini (the only ones allowed to hold secrets)."""
    args = [sys.executable, "-m", "dockit_core.cli", "-l", str(tmp_path / "run")]
    if rows:
        args += ["--rows", str(rows)]
    result = subprocess.run([*args, *command], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    [xml] = tmp_path.glob("run*.xml")
    outputs = [f for f in tmp_path.glob("run*") if f.is_file() and f.suffix not in (".log", ".ini")]
    root = etree.parse(str(xml)).getroot()
    [stats] = root.findall("Dockit_Statistics")
    assert stats.get("DecoderProblems") == "0"
    return root, outputs


def query(root: etree._Element, text: str) -> etree._Element:
    found = [e for e in root.findall("Dockit_SqlQuery") if e.findtext("Text") == text]
    assert len(found) == 1, (text, [e.findtext("Text") for e in root.findall("Dockit_SqlQuery")])
    return found[0]


def test_cut_row_keeps_the_row_count(tmp_path, admin) -> None:
    """`SELECT REPEAT('x', 3000000)` through PyMySQL, which reads a packet's payload with reads no longer
    than what is left of it. The client waits before reading, so the reply sits whole in the socket and
    a read returns more than strace's -s 1048576 prints: the lost bytes end inside the row's packet, the
    stream keeps step, and the result is still one row (marked truncated); the next query's reply is
    decoded as usual."""
    script = tmp_path / "client.py"
    script.write_text(
        "import time, pymysql\n"
        "c = pymysql.connect(host='127.0.0.1', user='root', password='', database='test')\n"
        "c._execute_command(3, \"SELECT REPEAT('x', 3000000) AS big, 7 AS n\")  # COM_QUERY\n"
        "time.sleep(0.3)\n"
        "c._read_query_result()\n"
        "assert len(c._result.rows[0][0]) == 3000000\n"
        "c.cursor().execute(\"SELECT 'after'\")\n"
        "c.close()\n"
    )
    root, _ = trace(tmp_path, sys.executable, str(script))
    [log] = tmp_path.glob("run*.log")
    cut = [
        line for line in log.read_text(errors="replace").splitlines() if "3306]>" in line and '"...,' in line
    ]
    assert cut, "strace cut no read of the 3 MB row (the client's wait was not long enough)"
    big = query(root, "SELECT REPEAT('x', 3000000) AS big, 7 AS n")
    assert (big.get("Status"), big.get("Rows"), big.get("Truncated")) == ("ok", "1", "true")
    assert [c.get("Name") for c in big.findall("Column")] == ["big", "n"]
    after = query(root, "SELECT 'after'")
    assert (after.get("Status"), after.get("Rows"), after.get("Truncated")) == ("ok", "1", None)


def test_no_password_or_hash_in_outputs(tmp_path, admin) -> None:
    """A client that sets a password and reads hashes back with --rows: neither the password nor the
    server's hash of it is in any output (a column named after the expression `password('...')`, a
    hash under a column alias, the JSON of mysql.global_priv)."""
    password = "secret" + secrets.token_hex(6)
    user = f"dockit_bat_{secrets.token_hex(3)}"
    [(hashed,)] = sql(admin, f"SELECT PASSWORD('{password}')")
    assert hashed.startswith("*") and len(hashed) == 41
    script = tmp_path / "client.py"
    script.write_text(
        "import pymysql\n"
        "c = pymysql.connect(host='127.0.0.1', user='root', password='', database='test', autocommit=True)\n"
        "cur = c.cursor()\n"
        f"cur.execute(\"CREATE USER {user}@'%' IDENTIFIED BY '{password}'\")\n"
        f"cur.execute(\"SELECT PASSWORD('{password}')\")\n"
        f"cur.execute(\"SELECT user, concat('x', authentication_string) AS a FROM mysql.user WHERE user = '{user}'\")\n"
        f"cur.execute(\"SELECT user, priv FROM mysql.global_priv WHERE user = '{user}'\")\n"
        f"cur.execute(\"SELECT authentication_string AS h FROM mysql.user WHERE user = '{user}'\")\n"
        "print(cur.fetchall())\n"
        "c.close()\n"
    )
    try:
        root, outputs = trace(tmp_path, sys.executable, str(script), rows=3)
    finally:
        sql(admin, f"DROP USER IF EXISTS {user}@'%'")
    texts = [e.findtext("Text") for e in root.findall("Dockit_SqlQuery")]
    assert f"CREATE USER {user}@'%' IDENTIFIED BY '<redacted>'" in texts
    assert len(texts) == 6  # SET NAMES, the five above
    for q in root.findall("Dockit_SqlQuery"):
        assert q.get("Status") == "ok", q.findtext("Text")
    assert query(root, f"SELECT user, priv FROM mysql.global_priv WHERE user = '{user}'").get("Rows") == "1"
    for path in outputs:
        content = path.read_text(errors="replace")
        assert password not in content, path.name
        assert hashed[1:] not in content, path.name


def test_no_password_in_prepared_parameters_or_via_using(tmp_path, admin) -> None:
    """mysql-connector's server-side prepared statements send passwords as parameters (`PASSWORD(?)`,
    `WHERE password = ?`, an INSERT into a password column), and MariaDB's `IDENTIFIED VIA plugin
    USING '<hash>'` carries a hash in the SQL: none of them is in any output; other values are."""
    password = "secret" + secrets.token_hex(6)
    user = f"dockit_bat_{secrets.token_hex(3)}"
    table = f"bat_app_{secrets.token_hex(3)}"
    [(hashed,)] = sql(admin, f"SELECT PASSWORD('{password}')")
    sql(admin, f"CREATE TABLE {table} (id int, name varchar(20), password_hash varchar(100))")
    script = tmp_path / "client.py"
    script.write_text(
        "import sys, mysql.connector\n"
        "password = bytes.fromhex(open(sys.argv[1]).read()).decode()\n"  # not on the command line
        "hashed = open(sys.argv[2]).read()\n"
        "m = mysql.connector.connect(host='127.0.0.1', user='root', password='', database='test', use_pure=True)\n"
        "pc = m.cursor(prepared=True)\n"
        f"pc.execute('INSERT INTO {table} (id, name, password_hash) VALUES (?, ?, ?)', (1, 'alice', password))\n"
        f"pc.execute('SELECT id FROM {table} WHERE name = ? AND password_hash = ?', ('alice', password))\n"
        "print(pc.fetchall())\n"
        "pc.execute('SELECT PASSWORD(?)', (password,))\n"
        "print(pc.fetchall())\n"
        "cur = m.cursor()\n"
        f"cur.execute(\"CREATE USER {user}@'%' IDENTIFIED VIA mysql_native_password USING '\" + hashed + \"'\")\n"
        "m.commit()\n"
        "m.close()\n"
    )
    (tmp_path / "pw").write_text(password.encode().hex())
    (tmp_path / "hash").write_text(hashed)
    try:
        root, outputs = trace(
            tmp_path, sys.executable, str(script), str(tmp_path / "pw"), str(tmp_path / "hash")
        )
    finally:
        sql(admin, f"DROP USER IF EXISTS {user}@'%'")
        sql(admin, f"DROP TABLE IF EXISTS {table}")
    insert = query(root, f"INSERT INTO {table} (id, name, password_hash) VALUES (?, ?, ?)")
    assert (insert.get("Status"), insert.get("AffectedRows")) == ("ok", "1")
    assert [p.get("Value") for p in insert.findall("Parameter")][:2] == ["1", "alice"]
    select = query(root, f"SELECT id FROM {table} WHERE name = ? AND password_hash = ?")
    assert (select.get("Status"), select.get("Rows")) == ("ok", "1")
    assert [p.get("Value") for p in select.findall("Parameter")][0] == "alice"
    assert query(root, "SELECT PASSWORD(?)").get("Rows") == "1"
    create = query(root, f"CREATE USER {user}@'%' IDENTIFIED VIA mysql_native_password USING '<redacted>'")
    assert create.get("Status") == "ok"
    for path in outputs:
        content = path.read_text(errors="replace")
        assert password not in content, path.name
        assert hashed[1:] not in content, path.name


def test_sampled_values_with_tabs_and_newlines_keep_their_row(tmp_path, admin) -> None:
    """`--rows`: a Row is tab-separated, so a tab, a newline or a backslash inside a value is escaped as
    `mariadb --batch` prints it; the client's own output is the reference."""
    statement = r"select concat('a', char(9), 'b', char(10), 'c\\d') as v, 'x' as w"
    root, _ = trace(tmp_path, "mariadb", "-h", "127.0.0.1", "-u", "root", "--batch", "--skip-column-names",
                    "test", "-e", statement, rows=5)  # fmt: skip
    printed = subprocess.run(["mariadb", "-h", "127.0.0.1", "-u", "root", "--batch", "--skip-column-names",
                              "test", "-e", statement], capture_output=True, text=True, check=True).stdout
    (row,) = query(root, statement).findall("Row")
    assert row.text + "\n" == printed
