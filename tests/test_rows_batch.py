"""`--rows N` writes each sampled row as `mariadb --batch` writes it, byte for byte.

A table of values that need care (NUL, tab, newline, backslash, carriage return, every byte from 0 to
255, NULL, an empty string, UTF-8) is read by `mariadb --batch` untraced: its output is the reference.
The same query is then traced through dockit twice, run by `mariadb --batch` itself and by PyMySQL;
the TXT summary's `Row:` lines must be the reference's lines, byte for byte (the XML's too, where XML can
hold the characters)."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import mariadb_listening

REPO = Path(__file__).resolve().parents[1]
ALL_BYTES = bytes(range(256))
# utf8mb4, as PyMySQL's connection below: the client's default (utf8mb3) would turn the emoji into `?`
CLIENT = ("-h", "127.0.0.1", "-u", "root", "--default-character-set=utf8mb4", "test")


@pytest.fixture
def table():
    if not mariadb_listening():
        pytest.skip("no MariaDB/MySQL server on 127.0.0.1:3306 (user root, empty password)")
    if shutil.which("mariadb") is None or shutil.which("strace") is None:
        pytest.skip("the mariadb client and strace are needed")
    import pymysql

    name = f"rows_{secrets.token_hex(3)}"
    conn = pymysql.connect(host="127.0.0.1", user="root", password="", database="test", autocommit=True)
    with conn.cursor() as cur:
        cur.execute(
            f"CREATE TABLE {name} (id INT PRIMARY KEY, t TEXT CHARACTER SET utf8mb4, b VARBINARY(300), n INT)"
        )
        cur.executemany(
            f"INSERT INTO {name} VALUES (%s, %s, %s, %s)",
            [
                (1, "tab\there\nnew line\\back slash", b"\x00\xff\n\t\\\r\x1aA", 7),
                (2, None, None, None),
                (3, "", b"", 0),
                (4, "cr\rhere, h\u00e9llo \u20ac \U0001f600", "é".encode(), -1),
                (5, "x", ALL_BYTES, 2**31 - 1),
            ],
        )
    yield name
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE {name}")
    conn.close()


def batch(sql: str) -> list[bytes]:
    """`mariadb --batch -e SQL`'s output lines (the first names the columns)."""
    out = subprocess.run(
        ["mariadb", *CLIENT, "--batch", "-e", sql],
        capture_output=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    assert out.endswith(b"\n")
    return out[:-1].split(b"\n")


def traced_rows(tmp_path: Path, name: str, *command: str) -> tuple[list[bytes], etree._Element, bytes]:
    """The TXT summary's `Row:` lines as bytes, the XML summary's root, and the program's stdout."""
    args = [sys.executable, "-m", "dockit_core.cli", "--rows", "10", "-l", str(tmp_path / name)]
    txt = subprocess.run([*args, "-F", "TXT", *command], cwd=REPO, capture_output=True, timeout=120)
    assert txt.returncode == 0 and b"Traceback" not in txt.stderr, txt.stderr[-2000:]
    xml = subprocess.run([*args, "-F", "XML", *command], cwd=REPO, capture_output=True, timeout=120)
    assert xml.returncode == 0, xml.stderr[-2000:]
    [summary] = tmp_path.glob(f"{name}.*.summary.txt")
    rows = [
        line[len(b"    Row: ") :]
        for line in summary.read_bytes().split(b"\n")
        if line.startswith(b"    Row: ")
    ]
    [xml_path] = tmp_path.glob(f"{name}.*.xml")
    return rows, etree.parse(str(xml_path)).getroot(), txt.stdout


def test_rows_are_mariadb_batch_bytes(tmp_path, table) -> None:
    sql = f"SELECT * FROM {table} ORDER BY id"
    reference = batch(sql)
    assert reference[0] == b"id\tt\tb\tn" and len(reference) == 6
    # what mariadb --batch does, checked here rather than assumed: NUL, tab, newline and backslash
    # escaped, a carriage return and the other bytes as they are, NULL as NULL
    assert reference[1].startswith(b"1\ttab\\there\\nnew line\\\\back slash\t\\0\xff\\n\\t\\\\\r\x1aA\t7")
    assert reference[2] == b"2\tNULL\tNULL\tNULL"
    assert reference[3] == b"3\t\t\t0"

    # mariadb --batch traced: its own output is the reference, and so are the summary's rows
    rows, root, stdout = traced_rows(tmp_path, "cli", "mariadb", *CLIENT, "--batch", "-e", sql)
    assert stdout.split(b"\n")[:-1] == reference
    assert rows == reference[1:]
    [query] = [q for q in root.iter("Dockit_SqlQuery") if q.findtext("Text") == sql]
    assert [c.get("Name") for c in query.iter("Column")] == reference[0].decode().split("\t")
    xml_rows = [r.text for r in query.iter("Row")]
    # XML holds rows 2 to 4 whole (no byte XML cannot carry); rows 1 and 5 name those bytes `\xNN`
    assert [row.encode() for row in xml_rows[1:4]] == reference[2:5]
    assert "\\x00" not in xml_rows[0] and "\\0\\xff" in xml_rows[0]

    # PyMySQL sending the same query: the same rows
    script = tmp_path / "client.py"
    script.write_text(
        "import pymysql\n"
        "c = pymysql.connect(host='127.0.0.1', user='root', password='', database='test', charset='utf8mb4')\n"
        "cur = c.cursor()\n"
        f"cur.execute({sql!r})\n"
        "assert len(cur.fetchall()) == 5\n"
    )
    rows, _, _ = traced_rows(tmp_path, "pymysql", sys.executable, str(script))
    assert rows == reference[1:]
