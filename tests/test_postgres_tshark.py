"""Wireshark as the independent check of the PostgreSQL decoder: tshark captures loopback (port 5432) while
dockit traces a workload of real clients (psql over TCP, psycopg 3 with the extended protocol, a
pipeline and COPY); every query text (`pgsql.query`: Query and Parse messages) and every SQLSTATE
(`pgsql.code`: ErrorResponse and NoticeResponse) tshark's dissector shows on the workload's connections
must be in dockit's summary, as many times.

Rerun it by hand with `python3 -m pytest tests/test_postgres_tshark.py` (as root: tshark captures
loopback). A Query holding several statements is one `pgsql.query` for tshark and one record per
statement for dockit: the workload's one such Query is compared statement by statement.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import run_dockit
from tests.pg_helpers import HOST, requires_server, scratch_database

pytestmark = [requires_server, pytest.mark.live, pytest.mark.postgres]
SEVERAL = "SELECT 1 AS a; SELECT 2 AS b"

WORKLOAD = r"""
import sys, psycopg
from psycopg import errors
with psycopg.connect(host="127.0.0.1", dbname=sys.argv[1], user="postgres", sslmode="disable",
                     autocommit=True, prepare_threshold=None) as conn:
    cur = conn.cursor()
    cur.execute("CREATE TABLE probe (id int PRIMARY KEY, label text)")
    cur.executemany("INSERT INTO probe VALUES (%s, %s)", [(1, "one"), (2, "two"), (3, "three")])
    cur.execute("SELECT label FROM probe WHERE id > %s", (1,))
    for value in ("2", "x"):
        try:
            cur.execute("SELECT label FROM probe WHERE id = %s::int", (value,))
        except errors.InvalidTextRepresentation:
            pass
    try:
        cur.execute("INSERT INTO probe VALUES (%s, %s)", (1, "again"))
    except errors.UniqueViolation:
        pass
    with conn.pipeline():
        cur.execute("UPDATE probe SET label = upper(label) WHERE id = %s", (2,))
        cur.execute("DELETE FROM probe WHERE id = %s", (3,))
    with cur.copy("COPY probe TO STDOUT") as copy:
        for _ in copy:
            pass
"""


def tshark_available() -> str | None:
    if shutil.which("tshark") is None:
        return "tshark is not installed (apt-get install tshark)"
    if os.geteuid() != 0:
        return "capturing loopback with tshark needs root"
    return None


def start_capture(pcap: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        ["tshark", "-i", "lo", "-f", "tcp port 5432", "-w", str(pcap), "-q"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    seen = ""
    while time.monotonic() < deadline:  # tshark says so on stderr once it captures
        line = process.stderr.readline()
        seen += line
        if "Capturing on" in line or "Capture started" in line:
            return process
        if not line and process.poll() is not None:
            break
    process.kill()
    pytest.fail(f"tshark did not start capturing: {seen}")


def stop_capture(process: subprocess.Popen) -> None:
    time.sleep(1.0)  # the last segments reach the capture
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def dissected(pcap: Path, ports: set[str]) -> tuple[Counter, Counter]:
    """(query texts, SQLSTATEs) tshark's pgsql dissector shows on the connections from `ports`."""
    ports_filter = " || ".join(f"tcp.port == {port}" for port in sorted(ports))
    result = subprocess.run(
        ["tshark", "-r", str(pcap), "-Y", f"pgsql && ({ports_filter})", "-T", "json",
         "-e", "pgsql.query", "-e", "pgsql.code"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    queries: Counter = Counter()
    codes: Counter = Counter()
    for frame in json.loads(result.stdout or "[]"):
        layers = frame["_source"]["layers"]
        queries.update(layers.get("pgsql.query", []))
        codes.update(layers.get("pgsql.code", []))
    return queries, codes


def test_tshark_sees_nothing_dockit_misses(tmp_path) -> None:
    reason = tshark_available()
    if reason:
        pytest.skip(reason)
    if shutil.which("psql") is None or shutil.which("strace") is None:
        pytest.skip("needs psql and strace")
    pytest.importorskip("psycopg")
    (tmp_path / "workload.py").write_text(WORKLOAD)
    pcap = tmp_path / "loopback.pcap"
    with scratch_database("dockit_tshark") as database:
        script = (
            f"psql -X -q -h {HOST} -d {database} -c 'DROP TABLE IF EXISTS not_there' -c '{SEVERAL}' "
            f"-c 'SELECT * FROM missing_relation' ; {sys.executable} workload.py {database}"
        )
        capture = start_capture(pcap)
        try:
            environment = dict(os.environ, PGSSLMODE="disable", PGUSER="postgres")
            result = run_dockit(
                "-l", str(tmp_path / "work"), "sh", "-c", script, cwd=tmp_path, env=environment
            )
        finally:
            stop_capture(capture)
    assert result.returncode == 0, result.stderr
    root = etree.parse(str(next(tmp_path.glob("work.strace.*.xml")))).getroot()
    ports = {
        s.get("Local").rsplit(":", 1)[1]
        for s in root.iter("Dockit_Socket")
        if s.get("Remote") == f"{HOST}:5432" and s.get("Local")
    }
    assert len(ports) == 2  # psql's connection and psycopg's
    shown, codes = dissected(pcap, ports)
    assert shown and codes  # the dissector saw the workload

    mine = [e for e in root.iter("Dockit_SqlQuery") if e.get("Protocol") == "postgresql"]
    texts = Counter(e.findtext("Text") for e in mine)
    states = Counter(e.get("ErrorCode") for e in mine if e.get("ErrorCode"))
    states.update(n.get("Code") for e in mine for n in e.iter("Notice"))
    # tshark's one Query of two statements is two records for dockit.
    assert shown.pop(SEVERAL) == 1
    assert texts["SELECT 1 AS a"] == texts["SELECT 2 AS b"] == 1
    for text, count in shown.items():
        assert texts[text] == count, (text, count, texts[text])
    for code, count in codes.items():
        assert states[code] == count, (code, count, states[code])
    assert set(codes) == {"00000", "42P01", "22P02", "23505"}
    # And dockit claims nothing tshark did not see (but the split Query).
    assert set(texts) - set(shown) == {"SELECT 1 AS a", "SELECT 2 AS b"}
