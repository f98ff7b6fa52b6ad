"""ltrace: what ltrace 0.7.3 really prints, read back into bytes; each byte counted once; the same SQL
statements as strace for the mariadb client; SQL from client-library calls when the socket is unreadable.

The truth is always outside dockit: the bytes a program sent (it checks its peer received them), the
statements a test sent to MariaDB, and sizes read from a log's own lines with a regex.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from dockit_core.ingest.events import Call
from dockit_core.ingest.ltrace_buffers import call_bytes, decode_buffer, decode_string, trim_array
from dockit_core.ingest.strace_parser import StraceParser
from dockit_core.ingest.tracers import LTRACE_PROTOTYPES, ltrace_command
from tests.conftest import CAPTURES, REPO, Summary, replay, run_dockit

LTRACE = shutil.which("ltrace")
needs_ltrace = pytest.mark.skipif(LTRACE is None, reason="ltrace is not installed")

# Every byte value, and the characters that delimit ltrace's arrays and strings.
PAYLOAD = bytes(range(256)) + b"\"', ]...\"...[ 'x' ]\\" + bytes(range(255, -1, -1))
# NUL before octal digits: where ltrace's string escapes could be read two ways.
AMBIGUOUS = b"\x001\x0012\n7\x07\x008\x00\x01\x02" + b"\x0077x"

# A TCP connection to itself on 127.0.0.1: the client sends, the accepted socket receives.
PROGRAM = """\
import socket, sys
payload = bytes.fromhex(sys.argv[1])
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(1)
client = socket.create_connection(server.getsockname())
peer, _ = server.accept()
client.send(payload)
got = b""
while len(got) < len(payload):
    got += peer.recv(65536)
assert got == payload, (got, payload)
"""

ARRAY_PROTOTYPES = """\
long send(int, array(char, arg3)*, ulong, hex(int));
long recv(int, +array(char, retval)*, ulong, hex(int));
"""
STRING_PROTOTYPES = """\
long send(int, string(array(char, arg3)*), ulong, hex(int));
long recv(int, +string(array(char, retval)*), ulong, hex(int));
"""


def ltrace_calls(tmp_path: Path, payload: bytes, prototypes: str | None, *flags: str) -> list[Call]:
    """Run PROGRAM under ltrace (send and recv hooked) and parse its log: the send and recv calls."""
    program = tmp_path / "program.py"
    program.write_text(PROGRAM)
    log = tmp_path / "program.ltrace.log"
    command = ["ltrace", "-f", "-e", "send+recv", "-o", str(log), *flags]
    if prototypes is not None:
        conf = tmp_path / "prototypes.conf"
        conf.write_text(prototypes)
        command[1:1] = ["-F", str(conf)]
    result = subprocess.run(
        [*command, sys.executable, str(program), payload.hex()], capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    parser = StraceParser(1)
    calls = []
    with open(log, encoding="utf-8", errors="surrogateescape") as lines:
        for index, line in enumerate(lines, 1):
            event = parser.parse(line, index)
            if isinstance(event, Call) and event.name in ("send", "recv") and event.library:
                calls.append(event)
    return calls


def received(calls: list[Call]) -> bytes:
    """What the recv calls returned, joined (the program may need more than one)."""
    return b"".join(call_bytes(c).data for c in calls if c.name == "recv" and c.retval)  # type: ignore[union-attr]


# -- buffers, from ltrace's own output ---------------------------------------------------------------
@needs_ltrace
def test_char_arrays_give_back_every_byte(tmp_path: Path) -> None:
    calls = ltrace_calls(tmp_path, PAYLOAD, ARRAY_PROTOTYPES, "-A", "65536")
    (send,) = [c for c in calls if c.name == "send"]
    assert "[ '\\0', '\\001'" in send.args  # really the array form
    buffer = call_bytes(send)
    assert buffer is not None and buffer.data == PAYLOAD and not buffer.cut and not buffer.ambiguous
    assert received(calls) == PAYLOAD


@needs_ltrace
def test_strings_give_back_the_bytes_and_say_when_escapes_are_ambiguous(tmp_path: Path) -> None:
    calls = ltrace_calls(tmp_path, PAYLOAD, STRING_PROTOTYPES, "-s", "65536")
    (send,) = [c for c in calls if c.name == "send"]
    assert '"\\0\\001\\002' in send.args  # the string form, `"` printed bare inside it
    assert call_bytes(send).data == PAYLOAD  # type: ignore[union-attr]
    assert received(calls) == PAYLOAD
    (tmp_path / "b").mkdir()
    calls = ltrace_calls(tmp_path / "b", AMBIGUOUS, STRING_PROTOTYPES, "-s", "65536")
    (send,) = [c for c in calls if c.name == "send"]
    assert "\\01\\012" in send.args  # NUL then "1", NUL then "12": ltrace's own ambiguity
    buffer = call_bytes(send)
    assert buffer is not None and buffer.ambiguous
    assert buffer.data == AMBIGUOUS  # the reading rule gets this real case right


@needs_ltrace
def test_cut_buffers_keep_their_head_and_say_so(tmp_path: Path) -> None:
    calls = ltrace_calls(tmp_path, PAYLOAD, ARRAY_PROTOTYPES, "-A", "5")
    (send,) = [c for c in calls if c.name == "send"]
    assert "... ]" in send.args
    buffer = call_bytes(send)
    assert buffer is not None and buffer.data == PAYLOAD[:5] and buffer.cut
    (tmp_path / "s").mkdir()
    calls = ltrace_calls(tmp_path / "s", PAYLOAD, STRING_PROTOTYPES, "-s", "7")
    (send,) = [c for c in calls if c.name == "send"]
    buffer = call_bytes(send)
    assert buffer is not None and buffer.data == PAYLOAD[:7] and buffer.cut


@needs_ltrace
def test_raw_pointers_carry_no_bytes(tmp_path: Path) -> None:
    """Without prototypes (`-F /dev/null`) ltrace prints pointers: no bytes, never made up."""
    calls = ltrace_calls(tmp_path, PAYLOAD, "", "-A", "65536")
    (send,) = [c for c in calls if c.name == "send"]
    assert re.search(rf"send\(\d+, 0x[0-9a-f]+, {len(PAYLOAD)}", send.raw)
    assert call_bytes(send) is None


def test_trimmed_array_reads_back_as_its_head() -> None:
    """What the saved log keeps of a file read: ltrace's own cut form, read back as cut."""
    elements = ", ".join(["'a'", "'\\0'", "'''", "'\\\\'", "']'"] * 20)
    line = f"12 1.5 <... read resumed> , [ {elements} ], 4096) = 100 <0.000010>"
    trimmed = trim_array(line, 7)
    assert trimmed is not None and trimmed.endswith("'\\0'... ], 4096) = 100 <0.000010>")
    head = decode_buffer(trimmed[trimmed.index("[") : trimmed.index("... ]") + 5])
    assert head is not None and head.data == b"a\0'\\]a\0" and head.cut
    assert trim_array(line.replace(", [ ", ', "', 1), 7) is None  # not an array
    stopped = decode_string('"abc"', 10)  # `string` stops at NUL: that NUL is known, the rest is not
    assert stopped is not None and stopped.data == b"abc\0" and stopped.cut


# -- counted once --------------------------------------------------------------------------------------
@needs_ltrace
def test_dockit_ltrace_counts_each_byte_once_and_decodes_nothing_from_pointers(tmp_path: Path) -> None:
    program = tmp_path / "program.py"
    program.write_text(PROGRAM)
    result = run_dockit(
        "-t", "ltrace", "-l", str(tmp_path / "own"), sys.executable, str(program), PAYLOAD.hex(), timeout=120
    )
    assert result.returncode == 0, result.stderr
    (log,) = tmp_path.glob("own.ltrace.*.log")
    text = log.read_text(errors="replace")
    assert "->send(" in text and "SYS_sendto(" in text  # both levels show the same bytes
    summary = Summary.load(log.with_suffix(".xml"))
    assert [s for s in summary.sockets if s["BytesOut"] == str(len(PAYLOAD))], summary.sockets
    assert [s for s in summary.sockets if s["BytesIn"] == str(len(PAYLOAD))], summary.sockets
    assert not [s for s in summary.sockets if int(s["BytesOut"]) > len(PAYLOAD)]
    # The same program under ltrace without prototypes: sizes only, still counted once, no chunk fed.
    log = tmp_path / "bare.ltrace.1.log"
    subprocess.run(
        ["ltrace", "-f", "-S", "-F", "/dev/null", "-e", "send+recv", "-o", str(log), sys.executable,
         str(program), PAYLOAD.hex()],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    summary, _ = replay(log, tmp_path)
    assert [s for s in summary.sockets if s["BytesOut"] == str(len(PAYLOAD))], summary.sockets
    assert [s for s in summary.sockets if s["BytesIn"] == str(len(PAYLOAD))], summary.sockets
    assert summary.statistics["Channels"] == "0"


# -- the mariadb client: strace and ltrace agree ------------------------------------------------------
# Named after this test process: other test runs on the machine may use the same server at the same time.
USER, PASSWORD, DATABASE = f"dockit_lt_{os.getpid()}", "Lt-pw-7c1e9f", f"dockit_lt_{os.getpid()}"
STATEMENTS = [
    "SELECT title FROM books WHERE id <= 2 ORDER BY id",
    "INSERT INTO books VALUES (3, 'Hyperion')",
    "UPDATE books SET title = 'Dune Messiah' WHERE id = 2",
    "SELECT b.id, b.title FROM books AS b JOIN authors AS a ON a.book_id = b.id WHERE a.name LIKE 'F%'",
    "DELETE FROM books WHERE id = 3",
    "SELECT * FROM no_such_table",
]
# (Text, Status, Rows, Tables): what MariaDB answers to STATEMENTS on the fixture's tables.
EXPECTED = [
    (STATEMENTS[0], "ok", "2", ["books"]),
    (STATEMENTS[1], "ok", None, ["books"]),
    (STATEMENTS[2], "ok", None, ["books"]),
    (STATEMENTS[3], "ok", "1", ["authors", "books"]),
    (STATEMENTS[4], "ok", None, ["books"]),
    (STATEMENTS[5], "error", None, ["no_such_table"]),
]


def root_sql(sql: str) -> None:
    subprocess.run(["mariadb", "-h", "127.0.0.1", "-u", "root", "-e", sql], check=True, timeout=30)


def reset_tables() -> None:
    """The same rows before every traced run, so each run gets the same answers (affected rows...)."""
    root_sql(
        f"DROP DATABASE IF EXISTS {DATABASE}; CREATE DATABASE {DATABASE};"
        f"CREATE TABLE {DATABASE}.books (id INT PRIMARY KEY, title VARCHAR(64));"
        f"CREATE TABLE {DATABASE}.authors (book_id INT, name VARCHAR(64));"
        f"INSERT INTO {DATABASE}.books VALUES (1, 'Dune'), (2, 'Children of Dune');"
        f"INSERT INTO {DATABASE}.authors VALUES (1, 'Frank Herbert'), (2, 'Brian Herbert');"
    )


@pytest.fixture(scope="module")
def mariadb_user():  # type: ignore[no-untyped-def]
    if shutil.which("mariadb") is None:
        pytest.skip("the mariadb client is not installed")
    probe = subprocess.run(
        ["mariadb", "-h", "127.0.0.1", "-u", "root", "-e", "SELECT 1"], capture_output=True, timeout=30
    )
    if probe.returncode != 0:
        pytest.skip(f"no MariaDB on 127.0.0.1:3306: {probe.stderr!r}")
    reset_tables()
    root_sql(
        f"DROP USER IF EXISTS '{USER}'@'%'; CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}';"
        f"GRANT ALL ON {DATABASE}.* TO '{USER}'@'%';"
    )
    yield USER
    root_sql(f"DROP USER IF EXISTS '{USER}'@'%'; DROP DATABASE IF EXISTS {DATABASE};")


def sql_queries(xml: Path) -> list[tuple[str, str, str | None, list[str]]]:
    root = etree.parse(str(xml)).getroot()
    return [
        (
            query.findtext("Text"),
            query.get("Status"),
            query.get("Rows"),
            sorted(t.get("Name") for t in query.iter("Table")),
        )
        for query in root.iter("Dockit_SqlQuery")
    ]


VOLATILE = {"Process", "Start", "Duration", "Session", "Id", "ConnectionId", "Server"}


def records(xml: Path) -> list[str]:
    """Every SQL query and database session, whole (children too), without what differs between two
    runs of the same client: pids, times, connection ids, and the session's name (strace names the
    connection by its TCP ends, ltrace only sees an fd)."""
    root = etree.parse(str(xml)).getroot()
    found = []
    for element in [*root.iter("Dockit_DatabaseSession"), *root.iter("Dockit_SqlQuery")]:
        for name in VOLATILE & set(element.attrib):
            del element.attrib[name]
        found.append(etree.tostring(element, encoding="unicode"))
    return found


def trace_mariadb(tmp_path: Path, tracer: str) -> dict[str, Path]:
    reset_tables()
    command = [
        "mariadb",
        "-h",
        "127.0.0.1",
        "-u",
        USER,
        f"-p{PASSWORD}",
        DATABASE,
        "-e",
        "; ".join(STATEMENTS),
    ]
    result = run_dockit("-t", tracer, "-l", str(tmp_path / tracer), *command, timeout=120)
    assert result.returncode == 1, result.stderr  # the last statement fails, so does the client
    assert "1146" in result.stderr
    return {p.suffix[1:]: p for p in tmp_path.glob(f"{tracer}.{tracer}.*")}


@pytest.mark.live
@needs_ltrace
def test_mariadb_client_same_queries_under_strace_and_ltrace(tmp_path: Path, mariadb_user: str) -> None:
    by_tracer = {tracer: trace_mariadb(tmp_path, tracer) for tracer in ("strace", "ltrace")}
    strace_queries = sql_queries(by_tracer["strace"]["xml"])
    ltrace_queries = sql_queries(by_tracer["ltrace"]["xml"])
    assert ltrace_queries == strace_queries
    assert ltrace_queries == EXPECTED
    for files in by_tracer.values():  # ltrace reads connect's sockaddr from its bytes
        (session,) = etree.parse(str(files["xml"])).getroot().iter("Dockit_DatabaseSession")
        assert session.get("Server") == "127.0.0.1:3306"
    assert records(by_tracer["ltrace"]["xml"]) == records(by_tracer["strace"]["xml"])
    for files in by_tracer.values():
        root = etree.parse(str(files["xml"])).getroot()
        (session,) = root.iter("Dockit_DatabaseSession")
        assert session.get("User") == USER and session.get("Database") == DATABASE
        # The password is in no decoded record and not in the calls file.
        for element in [*root.iter("Dockit_SqlQuery"), session]:
            assert PASSWORD not in etree.tostring(element, encoding="unicode")
        assert PASSWORD not in files["txt"].read_text(errors="replace")
    # The ltrace log went through ltrace's arrays, not strace's strings.
    assert "->send(3, [ '" in by_tracer["ltrace"]["log"].read_text(errors="replace")


@pytest.mark.live
@needs_ltrace
def test_password_in_no_output_but_the_log(tmp_path: Path, mariadb_user: str) -> None:
    for tracer in ("strace", "ltrace"):
        for extension, path in trace_mariadb(tmp_path, tracer).items():
            if extension != "log":
                assert PASSWORD not in path.read_text(errors="replace"), path.name


# -- SQL from client-library calls (Python's MySQLdb links libmariadb) --------------------------------
MYSQLDB_PROGRAM = """\
import sys
import MySQLdb
# MySQLdb compresses whenever `compress` is passed at all, even False: pass it only when wanted.
options = {"compress": True} if sys.argv[4] == "compress" else {}
connection = MySQLdb.connect(host="127.0.0.1", user=sys.argv[1], password=sys.argv[2], db=sys.argv[3], **options)
cursor = connection.cursor()
cursor.execute("SELECT title FROM books ORDER BY id")
print(cursor.fetchall())
try:
    cursor.execute("SELECT nothing FROM no_such_table")
except MySQLdb.ProgrammingError as error:
    print(error)
connection.close()
"""
needs_mysqldb = pytest.mark.skipif(
    importlib.util.find_spec("MySQLdb") is None, reason="MySQLdb (pip install mysqlclient) is not installed"
)


def trace_mysqldb(tmp_path: Path, compress: bool) -> list[tuple[str, str, str | None, list[str]]]:
    program = tmp_path / "client.py"
    program.write_text(MYSQLDB_PROGRAM)
    prefix = tmp_path / ("compressed" if compress else "plain")
    result = run_dockit(
        "-t", "ltrace", "-l", str(prefix), sys.executable, str(program), USER, PASSWORD, DATABASE,
        "compress" if compress else "plain", timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (xml,) = tmp_path.glob(f"{prefix.name}.ltrace.*.xml")
    return sql_queries(xml)


@pytest.mark.live
@needs_ltrace
@needs_mysqldb
def test_library_calls_give_the_sql_when_the_socket_bytes_are_not_shown(
    tmp_path: Path, mariadb_user: str
) -> None:
    """An ltrace log recorded with prototypes for the client library only (send and recv hooked but
    printed as pointers, as in older logs): the statements come from mysql_real_query, once each."""
    program = tmp_path / "client.py"
    program.write_text(MYSQLDB_PROGRAM)
    conf = tmp_path / "library-only.conf"
    conf.write_text("".join(line + "\n" for line in LTRACE_PROTOTYPES.splitlines() if "mysql_" in line))
    log = tmp_path / "library.ltrace.1.log"
    command = [sys.executable, str(program), USER, PASSWORD, DATABASE, "plain"]
    result = subprocess.run(
        ltrace_command(str(log), str(conf), command=command), capture_output=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"->send\(\d+, 0x[0-9a-f]+,", log.read_text(errors="replace"))  # pointers only
    summary, _ = replay(log, tmp_path)
    queries = sql_queries(tmp_path / "library.ltrace.1.xml")
    ours = [q for q in queries if "books" in q[0] or "no_such_table" in q[0]]
    assert ours == [
        ("SELECT title FROM books ORDER BY id", "ok", None, ["books"]),  # no rows at this level
        ("SELECT nothing FROM no_such_table", "error", None, ["no_such_table"]),
    ]
    # MySQLdb's own statements at connect time come out too (from libmariadb), once each.
    texts = [q[0] for q in queries]
    assert len(texts) == len(set(texts)) and "SET NAMES utf8mb4" in texts
    assert summary.statistics["Channels"] == "0"


@pytest.mark.live
@needs_ltrace
@needs_mysqldb
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "compressed"])
def test_library_calls_never_double_what_the_socket_decoder_reports(
    tmp_path: Path, mariadb_user: str, compress: bool
) -> None:
    queries = trace_mysqldb(tmp_path, compress=compress)
    ours = [q for q in queries if "books" in q[0] or "no_such_table" in q[0]]
    assert ours == [
        ("SELECT title FROM books ORDER BY id", "ok", "2", ["books"]),  # with rows: the decoder's record
        ("SELECT nothing FROM no_such_table", "error", None, ["no_such_table"]),
    ]
    texts = [q[0] for q in queries]
    assert len(texts) == len(set(texts))


# -- survol's ltrace captures (ltrace 0.7.x on Fedora, 2018: raw pointers for socket buffers) ---------
def test_survol_mysql_ltrace_finds_the_socket_and_decodes_nothing(survol: Path, tmp_path: Path) -> None:
    log = survol / "dockit_mysql_show_databases.ltrace.log"
    text = log.read_text(errors="replace")
    sizes = {
        name: sum(int(n) for n in re.findall(rf"{name}@SYS\(3, 0x[0-9a-f]+, \S+, \d+\)\s+= (\d+)", text))
        for name in ("recvfrom", "sendto")
    }
    assert sizes["recvfrom"] > 0 and sizes["sendto"] > 0
    summary, _ = replay(log, tmp_path)
    assert [
        s
        for s in summary.sockets
        if s["BytesIn"] == str(sizes["recvfrom"]) and s["BytesOut"] == str(sizes["sendto"])
    ], summary.sockets
    assert summary.statistics["Channels"] == "0"  # no chunk of unknown bytes reached a decoder
    assert not list(summary.root.iter("Dockit_SqlQuery"))
    assert not list(summary.root.iter("Dockit_DatabaseSession"))


def test_survol_oracle_ltrace_decodes_nothing_bogus(survol: Path, tmp_path: Path) -> None:
    """cx_Oracle over BEQ pipes whose buffers ltrace printed as pointers: no SQL can be had, and none is
    made up; the only bytes shown on a socket are D-Bus's text handshake."""
    summary, _ = replay(survol / "dockit_oracle_db_schemas.ltrace.log", tmp_path)
    assert summary.sockets
    assert not list(summary.root.iter("Dockit_SqlQuery"))
    assert not list(summary.root.iter("Dockit_DatabaseSession"))
    assert summary.statistics["DecodedChannels"] == "0"
    assert summary.statistics["DecoderProblems"] == "0"


# -- the project's own ltrace capture (captures/record_ltrace.sh) -------------------------------------
CAPTURE_STATEMENTS = [
    ("SELECT title FROM books WHERE id <= 2 ORDER BY id", "ok", "2", ["books"]),
    ("UPDATE books SET title = 'Dune Messiah' WHERE id = 2", "ok", None, ["books"]),
    ("SELECT COUNT(*) FROM books", "ok", "1", ["books"]),
    ("SELECT * FROM no_such_table", "error", None, ["no_such_table"]),
]


def test_recorded_ltrace_capture_replays_to_its_statements(tmp_path: Path) -> None:
    logs = sorted(CAPTURES.glob("mariadb_select.ltrace.*.log"))
    assert logs, "captures/mariadb_select.ltrace.<pid>.log is missing: run captures/record_ltrace.sh"
    summary, result = replay(logs[-1], tmp_path)
    prefix = tmp_path / logs[-1].name.removesuffix(".log")
    assert sql_queries(Path(f"{prefix}.xml")) == CAPTURE_STATEMENTS
    (session,) = summary.root.iter("Dockit_DatabaseSession")
    assert session.get("User") == "dockit_capture" and session.get("Database") == "dockit_capture"
    assert session.get("Server") == "127.0.0.1:3306"
    assert summary.statistics["UnparsedLines"] == "0"
    assert summary.statistics["ResumedWithoutStart"] == "0"
    assert (REPO / "captures/record_ltrace.sh").exists()


# -- TLS: the plaintext from OpenSSL's calls ----------------------------------------------------------
TLS_PROGRAM = """\
import socket, ssl, sys, threading
certificate, key = sys.argv[1], sys.argv[2]
server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
server_context.load_cert_chain(certificate, key)
client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
client_context.check_hostname = False
client_context.verify_mode = ssl.CERT_NONE
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(1)
REQUEST = b"GET /behind-tls?q=1 HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n"
RESPONSE = b"HTTP/1.1 201 Created\\r\\nContent-Length: 5\\r\\nConnection: close\\r\\n\\r\\nhello"

def serve():
    connection, _ = listener.accept()
    with server_context.wrap_socket(connection, server_side=True) as tls:
        assert tls.recv(65536) == REQUEST
        tls.sendall(RESPONSE)

thread = threading.Thread(target=serve)
thread.start()
with client_context.wrap_socket(socket.create_connection(listener.getsockname())) as tls:
    tls.sendall(REQUEST)
    assert tls.recv(65536) == RESPONSE
thread.join()
"""


@needs_ltrace
def test_tls_plaintext_from_openssl_calls(tmp_path: Path) -> None:
    """Python's ssl module (SSL_set_fd, SSL_write_ex, SSL_read_ex): the socket carries TLS records, its
    plaintext the HTTP exchange the program checked. Both ends are in the traced process and their
    sockets are one connection: each byte once, one exchange, as strace shows the same in clear."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "key.pem"),
         "-out", str(tmp_path / "cert.pem"), "-days", "1", "-subj", "/CN=localhost"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    program = tmp_path / "tls.py"
    program.write_text(TLS_PROGRAM)
    result = run_dockit(
        "-t", "ltrace", "-l", str(tmp_path / "tls"), sys.executable, str(program),
        str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"), timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (xml,) = tmp_path.glob("tls.ltrace.*.xml")
    root = etree.parse(str(xml)).getroot()
    exchanges = sorted(
        (
            e.get("Side"),
            e.get("Method"),
            e.get("Url"),
            e.get("Status"),
            e.get("RequestBytes"),
            e.get("ResponseBytes"),
        )
        for e in root.iter("Dockit_HttpRequest")
    )
    request, response = 68, 67  # len(REQUEST), len(RESPONSE) in TLS_PROGRAM
    # Seen from the end whose socket opened the channel, client or server as the threads ran.
    assert [e[1:] for e in exchanges] == [("GET", "/behind-tls?q=1", "201", str(request), str(response))]
    assert exchanges[0][0] in ("client", "server")
    (tls,) = root.iter("Dockit_TlsSession")  # the socket's records, and what they carried
    assert tls.get("Protocol") == "http"
    sent = (str(request), str(response)) if exchanges[0][0] == "client" else (str(response), str(request))
    assert (tls.get("PlaintextBytesOut"), tls.get("PlaintextBytesIn")) == sent  # seen from the same end


def compile_c_client(tmp_path: Path) -> Path:
    if shutil.which("gcc") is None or shutil.which("pkg-config") is None:
        pytest.skip("gcc or pkg-config is not installed")
    flags = subprocess.run(
        ["pkg-config", "--cflags", "--libs", "libmariadb"], capture_output=True, text=True, check=False
    )
    if flags.returncode != 0:
        pytest.skip("libmariadb-dev is not installed")
    binary = tmp_path / "mysql_c_client"
    subprocess.run(
        ["gcc", "-o", str(binary), str(REPO / "tests/data/mysql_c_client.c"), *flags.stdout.split()],
        check=True,
        timeout=120,
    )
    return binary


@pytest.mark.live
@needs_ltrace
def test_c_client_each_statement_once(tmp_path: Path, mariadb_user: str) -> None:
    """mysql_query (with mysql_real_query inside the library), a prepared statement executed, one never
    executed: the decoder reports what crossed the socket as statements, the library what it alone saw."""
    binary = compile_c_client(tmp_path)
    reset_tables()
    result = run_dockit("-t", "ltrace", "-l", str(tmp_path / "c"), str(binary), USER, PASSWORD, DATABASE)
    assert result.returncode == 0, result.stderr
    (xml,) = tmp_path.glob("c.ltrace.*.xml")
    assert sql_queries(xml) == [
        ("SELECT title FROM books ORDER BY id", "ok", "2", ["books"]),
        ("SELECT title FROM books WHERE id = ?", "ok", "1", ["books"]),
        ("SELECT COUNT(*) FROM books WHERE title LIKE ?", "unknown", None, ["books"]),  # library only
    ]
    root = etree.parse(str(xml)).getroot()
    executed = list(root.iter("Dockit_SqlQuery"))[1]
    assert [p.get("Value") for p in executed.iter("Parameter")] == ["2"]
    log = next(tmp_path.glob("c.ltrace.*.log")).read_text(errors="replace")
    assert "->mysql_query(" in log and "->mysql_real_query(" in log and "->mysql_stmt_prepare(" in log


ADDRESS_PROGRAM = """\
import json, socket, sys
found = {}
for family, address in ((socket.AF_INET, ("127.0.0.1", 0)), (socket.AF_INET6, ("::1", 0)),
                        (socket.AF_UNIX, sys.argv[1])):
    try:
        server = socket.socket(family)
        server.bind(address)
    except OSError:
        continue  # no IPv6 here
    server.listen(1)
    client = socket.socket(family)
    client.connect(server.getsockname())
    peer, _ = server.accept()
    client.send(b"ping")
    assert peer.recv(4) == b"ping"
    name = server.getsockname()
    found[family.name] = name if family == socket.AF_UNIX else f"{name[0]}:{name[1]}"
print(json.dumps(found))
"""


@needs_ltrace
def test_socket_addresses_from_ltrace(tmp_path: Path) -> None:
    """connect/bind/accept/getsockname print their sockaddr as bytes: the sockets get their ends."""
    program = tmp_path / "addresses.py"
    program.write_text(ADDRESS_PROGRAM)
    path = str(tmp_path / "server.sock")
    result = run_dockit("-t", "ltrace", "-l", str(tmp_path / "a"), sys.executable, str(program), path)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["AF_INET"].startswith("127.0.0.1:") and found["AF_UNIX"] == path
    if "AF_INET6" in found:
        host, port = found["AF_INET6"].rsplit(":", 1)
        found["AF_INET6"] = f"[{host}]:{port}"  # as the summary writes an IPv6 end
    summary = Summary.load(next(tmp_path.glob("a.ltrace.*.xml")))
    for address in found.values():
        assert [s for s in summary.sockets if s.get("Remote") == address and s["BytesOut"] == "4"], (
            address,
            summary.sockets,
        )


def test_recorded_ltrace_pipe_counts_its_bytes_once(tmp_path: Path) -> None:
    """`printf "hello pipe\\n" | cat`: the library write and the system call inside it (there, one that
    another process's line interrupted: `<... SYS_write resumed>`) show the same 11 bytes."""
    logs = sorted(CAPTURES.glob("ltrace_pipe.ltrace.*.log"))
    assert logs, "captures/ltrace_pipe.ltrace.<pid>.log is missing: run captures/record_ltrace.sh"
    text = logs[-1].read_text()
    assert "->write(1, [ 'h', 'e', 'l', 'l', 'o', ' ', 'p', 'i', 'p', 'e', '\\n' ], 11" in text
    assert re.search(r"SYS_write\(1, 0x[0-9a-f]+, 11,", text)
    summary, _ = replay(logs[-1], tmp_path)
    (pipe,) = summary.pipes
    assert pipe["Bytes"] == "11"
    writer, reader = (summary.processes[int(pipe[role])] for role in ("Writers", "Readers"))
    assert writer.ppid == reader.ppid
