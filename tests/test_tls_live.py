"""What crosses TLS, decoded: real clients against TLS servers the tests start, traced live with ltrace.

The truth comes from outside dockit: the same workload run in clear under strace (whose decoding the
MySQL and HTTP tests check against the servers), the server's own account of the TLS session
(`SHOW SESSION STATUS LIKE 'Ssl_cipher'`, read from the client's output), the subject openssl prints for
the certificate it made, the responses the HTTPS server sent. Every live ltrace log is replayed too, and
must give the same objects.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import run_dockit
from tests.tls_servers import (
    HttpsServer,
    PrivateMariaDB,
    certificate_subject,
    environment_without_proxies,
    make_certificate,
    why_no_mariadb,
)

pytestmark = pytest.mark.live
needs_tracers = pytest.mark.skipif(
    shutil.which("ltrace") is None or shutil.which("strace") is None, reason="needs strace and ltrace"
)

USER, PASSWORD, DATABASE = "dockit_tls", "tls-Secret-4417", "dockit_tls"
STATEMENTS = [
    "SHOW SESSION STATUS LIKE 'Ssl_cipher'",
    "SELECT title FROM books ORDER BY id",
    "UPDATE books SET title = 'Dune Messiah' WHERE id = 2",
    "INSERT INTO books VALUES (3, 'Hyperion')",
    "SELECT COUNT(*) FROM books",
    "SELECT * FROM no_such_table",
]
VOLATILE = {"Process", "Start", "Duration", "Session", "Id", "ConnectionId"}
TLS_FACTS = {"Encrypted", "TlsVersion", "TlsCipher", "ServerName"}


@pytest.fixture(scope="module")
def mariadb_tls(tmp_path_factory):  # type: ignore[no-untyped-def]
    reason = why_no_mariadb()
    if reason:
        pytest.skip(reason)
    server = PrivateMariaDB.start(tmp_path_factory.mktemp("mariadb-tls"))
    try:
        server.sql(
            f"CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'; CREATE DATABASE {DATABASE};"
            f"GRANT ALL ON {DATABASE}.* TO '{USER}'@'%';"
        )
        yield server
    finally:
        server.stop()


def reset_tables(server: PrivateMariaDB) -> None:
    """The same rows before every traced run, so that each run gets the same answers."""
    server.sql(
        f"DROP TABLE IF EXISTS {DATABASE}.books; CREATE TABLE {DATABASE}.books (id INT PRIMARY KEY, title VARCHAR(64));"
        f"INSERT INTO {DATABASE}.books VALUES (1, 'Dune'), (2, 'Children of Dune');"
    )


def outputs(folder: Path, name: str) -> dict[str, Path]:
    return {
        p.suffix[1:]: p for p in folder.glob(f"{name}.*.*") if p.suffix in (".xml", ".txt", ".log", ".ini")
    }


def elements(xml: Path, cim_class: str) -> list[etree._Element]:
    return list(etree.parse(str(xml)).getroot().iter(cim_class))


def queries(xml: Path) -> list[tuple]:
    """Each statement as the comparison needs it: what was asked and what the server answered."""
    return [
        (q.findtext("Text"), q.get("Status"), q.get("Rows"), q.get("AffectedRows"), q.get("ErrorCode"),
         sorted(t.get("Name") for t in q.iter("Table")))
        for q in elements(xml, "Dockit_SqlQuery")
    ]  # fmt: skip


def stable(element: etree._Element, leave: set[str] = frozenset()) -> dict[str, str]:  # type: ignore[assignment]
    return {k: v for k, v in element.attrib.items() if k not in VOLATILE and k not in leave}


def decoded_objects(xml: Path) -> list[str]:
    """Every object a decoder made, whole: what a replay of the same log must give again."""
    root = etree.parse(str(xml)).getroot()
    found = []
    for element in root.iter():
        if isinstance(element.tag, str) and element.tag.startswith("Dockit_") and element.tag not in (
            "Dockit_Statistics", "Dockit_SqlTable", "Dockit_TracedRun",
        ):  # fmt: skip
            found.append(etree.tostring(element, encoding="unicode"))
    return sorted(found)


def assert_replay_gives_the_same(files: dict[str, Path], tmp_path: Path) -> None:
    """Replaying the live run's log gives the same decoded objects, attribute for attribute."""
    prefix = tmp_path / ("replay-" + files["log"].name.removesuffix(".log"))
    result = run_dockit("-i", str(files["log"]), "-l", str(prefix), timeout=120)
    assert result.returncode == 0, result.stderr
    assert decoded_objects(Path(f"{prefix}.xml")) == decoded_objects(files["xml"])


def mariadb_client(server: PrivateMariaDB, tls: bool) -> list[str]:
    return [
        "mariadb", "-h", "127.0.0.1", "-P", str(server.port), "-u", USER, f"--password={PASSWORD}",
        "--ssl" if tls else "--skip-ssl", DATABASE, "-e", "; ".join(STATEMENTS),
    ]  # fmt: skip


def trace(tmp_path: Path, name: str, tracer: str, command: list[str], status: int = 0) -> dict[str, Path]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    result = run_dockit("-t", tracer, "-l", str(tmp_path / name), *command, timeout=180,
                        env=environment_without_proxies())  # fmt: skip
    assert result.returncode == status, result.stderr
    (tmp_path / f"{name}.stdout").write_text(result.stdout)
    (tmp_path / f"{name}.stderr").write_text(result.stderr)
    files = outputs(tmp_path, name)
    assert {"xml", "txt", "log", "ini"} <= set(files), result.stderr
    return files


def server_cipher(stdout: str) -> str:
    """What the server says the session's cipher is (the client printed `Ssl_cipher<TAB>NAME`), by its
    IANA name as `openssl ciphers -stdname` gives it (OpenSSL names TLS 1.2 suites its own way)."""
    found = re.search(r"^Ssl_cipher\t(\S*)$", stdout, re.M)
    assert found, stdout
    name = found.group(1)
    if not name or name.startswith("TLS_"):
        return name
    listed = subprocess.run(
        ["openssl", "ciphers", "-stdname", name], capture_output=True, text=True, check=True
    )
    (iana,) = [line.split()[0] for line in listed.stdout.splitlines() if line.split()[2:3] == [name]]
    return iana


# -- MySQL -------------------------------------------------------------------------------------------
@needs_tracers
def test_mariadb_over_tls_under_ltrace_tells_what_clear_tells_under_strace(
    mariadb_tls, tmp_path: Path
) -> None:
    """`mariadb --ssl`: the greeting and the SSL request in clear, the login and every query inside TLS.
    Traced with ltrace, the same statements, statuses, row counts and login as `--skip-ssl` under strace;
    the session says encrypted, with the version and cipher the server reports."""
    reset_tables(mariadb_tls)
    clear = trace(tmp_path, "clear", "strace", mariadb_client(mariadb_tls, tls=False), status=1)
    reset_tables(mariadb_tls)
    tls = trace(tmp_path, "tls", "ltrace", mariadb_client(mariadb_tls, tls=True), status=1)

    assert server_cipher((tmp_path / "clear.stdout").read_text()) == ""
    cipher = server_cipher((tmp_path / "tls.stdout").read_text())
    assert cipher.startswith("TLS_")
    assert queries(tls["xml"]) == queries(clear["xml"])
    assert [q[0] for q in queries(tls["xml"])] == STATEMENTS  # each statement once, in order
    assert queries(tls["xml"])[-1][1:5] == ("error", None, None, "1146")

    (clear_session,) = elements(clear["xml"], "Dockit_DatabaseSession")
    (tls_session,) = elements(tls["xml"], "Dockit_DatabaseSession")
    assert tls_session.get("User") == USER and tls_session.get("Database") == DATABASE
    assert stable(tls_session, TLS_FACTS) == stable(clear_session)
    assert tls_session.get("Encrypted") == "true" and clear_session.get("Encrypted") is None
    assert tls_session.get("TlsVersion") == "TLS 1.3"  # what MariaDB 10.11 and OpenSSL 3 agree on
    assert tls_session.get("TlsCipher") == cipher
    sessions = {q.get("Session") for q in elements(tls["xml"], "Dockit_SqlQuery")}
    assert sessions == {tls_session.get("Id")} and not tls_session.get("Id").startswith("socket:-")

    (tls_record,) = elements(tls["xml"], "Dockit_TlsSession")
    assert tls_record.get("Protocol") == "mysql" and tls_record.get("Cipher") == cipher
    assert int(tls_record.get("PlaintextBytesOut")) > sum(len(s) for s in STATEMENTS)
    assert elements(clear["xml"], "Dockit_TlsSession") == []
    for files in (clear, tls):
        for extension in ("xml", "txt", "ini"):
            assert PASSWORD not in files[extension].read_text(errors="replace"), extension
    assert "->SSL_write(" in tls["log"].read_text(errors="replace")
    assert_replay_gives_the_same(tls, tmp_path)


@needs_tracers
def test_mariadb_over_tls_under_strace_says_what_it_can(mariadb_tls, tmp_path: Path) -> None:
    """strace sees the records only: an encrypted session with its version and cipher, no query, and
    the summary says that ltrace would show the plaintext."""
    reset_tables(mariadb_tls)
    files = trace(tmp_path, "strace", "strace", mariadb_client(mariadb_tls, tls=True), status=1)
    cipher = server_cipher((tmp_path / "strace.stdout").read_text())
    (session,) = elements(files["xml"], "Dockit_DatabaseSession")
    assert session.get("Encrypted") == "true" and session.get("TlsCipher") == cipher
    assert session.get("TlsVersion") == "TLS 1.3" and session.get("User") is None
    assert elements(files["xml"], "Dockit_SqlQuery") == []
    (record,) = elements(files["xml"], "Dockit_TlsSession")
    assert record.get("Plaintext") == "false" and "-t ltrace" in record.get("Hint")
    assert record.get("Protocol") == "mysql"
    stderr = (tmp_path / "strace.stderr").read_text()
    assert "dockit: 1 TLS connection(s) whose plaintext crosses no system call: -t ltrace decodes it" in stderr


@needs_tracers
def test_tls12_shows_the_certificate_subject_in_clear(mariadb_tls, tmp_path: Path) -> None:
    """Before TLS 1.3 the server's certificate crosses in clear: strace alone tells whose it is."""
    command = mariadb_client(mariadb_tls, tls=True)
    command[command.index("--ssl") + 1 : command.index("--ssl") + 1] = ["--tls-version=TLSv1.2"]
    reset_tables(mariadb_tls)
    files = trace(tmp_path, "tls12", "strace", command, status=1)
    (record,) = elements(files["xml"], "Dockit_TlsSession")
    assert record.get("Version") == "TLS 1.2"
    assert (
        record.get("CertificateSubject")
        == certificate_subject(mariadb_tls.cert)
        == "CN=localhost,O=Dockit Tests"
    )
    assert record.get("Cipher") == server_cipher((tmp_path / "tls12.stdout").read_text())
    (session,) = elements(files["xml"], "Dockit_DatabaseSession")
    assert session.get("TlsVersion") == "TLS 1.2"


PYMYSQL_PROGRAM = """\
import ssl, sys
import pymysql
port, user, password, database, mode = sys.argv[1:6]
if mode == "tls":
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    options = {"ssl": context}
else:
    options = {"ssl_disabled": True}
connection = pymysql.connect(host="127.0.0.1", port=int(port), user=user, password=password,
                             database=database, **options)
cursor = connection.cursor()
cursor.execute("SELECT title FROM books WHERE id <= %s ORDER BY id", (2,))
print(cursor.fetchall())
cursor.execute("UPDATE books SET title = %s WHERE id = %s", ("Dune Messiah", 2))
connection.commit()
try:
    cursor.execute("SELECT nothing FROM no_such_table")
except pymysql.MySQLError as error:
    print(error)
connection.close()
"""


@needs_tracers
def test_pymysql_over_tls(mariadb_tls, tmp_path: Path) -> None:
    """Python's ssl module (SSL_set_fd, SSL_write_ex, SSL_read_ex) under pymysql: the same records as
    the same program in clear under strace."""
    program = tmp_path / "client.py"
    program.write_text(PYMYSQL_PROGRAM)
    args = [str(mariadb_tls.port), USER, PASSWORD, DATABASE]
    reset_tables(mariadb_tls)
    clear = trace(tmp_path, "clear", "strace", [sys.executable, str(program), *args, "clear"])
    reset_tables(mariadb_tls)
    tls = trace(tmp_path, "tls", "ltrace", [sys.executable, str(program), *args, "tls"])
    assert queries(tls["xml"]) == queries(clear["xml"])
    texts = [q[0] for q in queries(tls["xml"])]
    assert "SELECT title FROM books WHERE id <= 2 ORDER BY id" in texts
    assert queries(tls["xml"])[-1][1] == "error"
    (clear_session,) = elements(clear["xml"], "Dockit_DatabaseSession")
    (tls_session,) = elements(tls["xml"], "Dockit_DatabaseSession")
    assert stable(tls_session, TLS_FACTS) == stable(clear_session)
    assert tls_session.get("User") == USER and tls_session.get("Encrypted") == "true"
    assert tls_session.get("TlsVersion") == "TLS 1.3"
    assert_replay_gives_the_same(tls, tmp_path)


# -- HTTPS -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def certificate(tmp_path_factory):  # type: ignore[no-untyped-def]
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    return make_certificate(tmp_path_factory.mktemp("https"))


def http_requests(xml: Path) -> list[tuple]:
    return [
        (e.get("Side"), e.get("Method"), e.get("Url"), e.get("Status"), e.get("Version"))
        for e in elements(xml, "Dockit_HttpRequest")
    ]


@needs_tracers
def test_curl_https_openssl(certificate, tmp_path: Path) -> None:
    """curl (libcurl with OpenSSL, its own BIO: no SSL_set_fd) gives the requests, on the socket's channel."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    with HttpsServer(*certificate) as server:
        base = f"https://localhost:{server.port}"
        files = trace(tmp_path, "curl", "ltrace", ["curl", "-sk", f"{base}/a?x=1", f"{base}/missing"])
    assert http_requests(files["xml"]) == [
        ("client", "GET", "/a?x=1", "200", "1.1"),
        ("client", "GET", "/missing", "404", "1.1"),
    ]
    (record,) = elements(files["xml"], "Dockit_TlsSession")
    assert record.get("ServerName") == "localhost" and record.get("Protocol") == "http"
    assert record.get("Server") == f"127.0.0.1:{server.port}"
    (request,) = [e for e in elements(files["xml"], "Dockit_HttpRequest") if e.get("Url") == "/a?x=1"]
    assert request.get("Server") == f"127.0.0.1:{server.port}"
    assert_replay_gives_the_same(files, tmp_path)


@needs_tracers
def test_gnutls_client(certificate, tmp_path: Path) -> None:
    """gnutls-cli: gnutls_transport_set_int2 ties the session to its socket, gnutls_record_send/recv
    carry the request the test typed and the server's answer."""
    if shutil.which("gnutls-cli") is None:
        pytest.skip("gnutls-cli is not installed (apt-get install gnutls-bin)")
    request = b"GET /gnutls HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    with HttpsServer(*certificate) as server:
        result = run_dockit(
            "-t", "ltrace", "-l", str(tmp_path / "gnu"), "gnutls-cli", "--insecure", "-p", str(server.port),
            "localhost", input=request, timeout=120,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "hello over tls" in result.stdout
    files = outputs(tmp_path, "gnu")
    assert http_requests(files["xml"]) == [("client", "GET", "/gnutls", "200", "1.1")]
    (exchange,) = elements(files["xml"], "Dockit_HttpRequest")
    assert exchange.get("RequestBytes") == str(len(request))
    (record,) = elements(files["xml"], "Dockit_TlsSession")
    assert record.get("Protocol") == "http" and record.get("Version") == "TLS 1.3"
    assert "->gnutls_record_send(" in files["log"].read_text(errors="replace")
    assert_replay_gives_the_same(files, tmp_path)


REQUESTS_PROGRAM = """\
import sys
import requests
for path in sys.argv[2:]:
    response = requests.get(f"https://localhost:{sys.argv[1]}{path}", verify=False)
    print(response.status_code, response.text.strip())
"""


@needs_tracers
def test_python_requests_https(certificate, tmp_path: Path) -> None:
    program = tmp_path / "get.py"
    program.write_text(REQUESTS_PROGRAM)
    with HttpsServer(*certificate) as server:
        files = trace(
            tmp_path,
            "req",
            "ltrace",
            [sys.executable, "-W", "ignore", str(program), str(server.port), "/one", "/missing/two"],
        )
    assert (tmp_path / "req.stdout").read_text().split("\n")[:2] == [
        "200 hello over tls",
        "404 hello over tls",
    ]
    assert http_requests(files["xml"]) == [
        ("client", "GET", "/one", "200", "1.1"),
        ("client", "GET", "/missing/two", "404", "1.1"),
    ]
    assert {e.get("Protocol") for e in elements(files["xml"], "Dockit_TlsSession")} == {"http"}
    assert_replay_gives_the_same(files, tmp_path)


@needs_tracers
def test_alpn_chosen_by_the_server_picks_the_decoder(certificate, tmp_path: Path) -> None:
    """TLS 1.2 shows the protocol the server chose (ALPN) in clear: the plaintext goes to the decoder
    that declares it (HTTP/1.1 here; an HTTP/2 decoder would declare h2)."""
    with HttpsServer(*certificate, alpn=["http/1.1"]) as server:
        files = trace(tmp_path, "alpn", "ltrace",
                      ["curl", "-sk", "--tls-max", "1.2", f"https://localhost:{server.port}/alpn"])  # fmt: skip
    (record,) = elements(files["xml"], "Dockit_TlsSession")
    assert record.get("Version") == "TLS 1.2" and record.get("AlpnSelected") == "http/1.1"
    assert record.get("Alpn") == "h2,http/1.1"  # what curl offered
    assert http_requests(files["xml"]) == [("client", "GET", "/alpn", "200", "1.1")]


ASYNCIO_PROGRAM = """\
import asyncio, ssl, sys

async def main(port):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="localhost")
    writer.write(b"GET /asyncio HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n")
    await writer.drain()
    print((await reader.read()).split(b"\\r\\n")[0].decode())
    writer.close()

asyncio.run(main(int(sys.argv[1])))
"""


@needs_tracers
def test_asyncio_memory_bio_https(certificate, tmp_path: Path) -> None:
    """asyncio's TLS uses memory BIOs (SSL_set_bio): the program moves the ciphertext itself. The socket
    whose write begins with what the object's BIO gave out is its own: the request is on that socket."""
    program = tmp_path / "aio.py"
    program.write_text(ASYNCIO_PROGRAM)
    with HttpsServer(*certificate) as server:
        files = trace(tmp_path, "aio", "ltrace", [sys.executable, str(program), str(server.port)])
    assert (tmp_path / "aio.stdout").read_text().strip() == "HTTP/1.1 200 OK"
    (request,) = elements(files["xml"], "Dockit_HttpRequest")
    assert (request.get("Url"), request.get("Status")) == ("/asyncio", "200")
    assert request.get("Server") == f"127.0.0.1:{server.port}"  # the socket's channel, not one of its own
    (record,) = elements(files["xml"], "Dockit_TlsSession")
    assert record.get("Protocol") == "http" and record.get("ServerName") == "localhost"
    log = files["log"].read_text(errors="replace")
    assert "->SSL_set_bio(" in log and "->BIO_read(" in log
    assert_replay_gives_the_same(files, tmp_path)


# -- Redis over TLS ----------------------------------------------------------------------------------
REDIS_COMMANDS = [
    ["SET", "dockit:tls:k", "v1"],
    ["GET", "dockit:tls:k"],
    ["INCR", "dockit:tls:n"],
    ["HGET", "dockit:tls:k", "f"],
]


@pytest.fixture(scope="module")
def redis_tls(tmp_path_factory):  # type: ignore[no-untyped-def]
    from decoders.registry import Registry
    from tests.tls_servers import PrivateRedis

    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.skip("redis-server and redis-cli are not installed")
    if Registry.default(plugins=False).by_name("redis") is None:
        pytest.skip("the Redis decoder (decoders/redis, branch redis) is not on this branch yet")
    server = PrivateRedis.start(tmp_path_factory.mktemp("redis-tls"))
    try:
        yield server
    finally:
        server.stop()


def redis_commands(xml: Path) -> list[tuple]:
    return [(e.get("Command"), e.get("Status")) for e in elements(xml, "Dockit_RedisCommand")]


@needs_tracers
def test_redis_over_tls(redis_tls, tmp_path: Path) -> None:
    """redis-cli --tls (hiredis with OpenSSL): the commands and replies, as the same commands in clear
    under strace, on a port that is not Redis's (the content says RESP)."""
    results = {}
    for name, tracer, port, tls in (("clear", "strace", redis_tls.port, []),
                                    ("tls", "ltrace", redis_tls.tls_port, ["--tls", "--insecure"])):  # fmt: skip
        subprocess.run(["redis-cli", "-p", str(redis_tls.port), "DEL", "dockit:tls:k", "dockit:tls:n"],
                       check=True, capture_output=True)  # fmt: skip
        files = {}
        for index, command in enumerate(REDIS_COMMANDS):
            files = trace(
                tmp_path / f"{name}{index}", name, tracer, ["redis-cli", *tls, "-p", str(port), *command]
            )
            results.setdefault(name, []).extend(redis_commands(files["xml"]))
        if name == "tls":
            (record,) = elements(files["xml"], "Dockit_TlsSession")
            assert record.get("Protocol") == "redis" and record.get("Version") == "TLS 1.3"
            assert_replay_gives_the_same(files, tmp_path / "tls-replay")
    assert results["tls"] == results["clear"]
    assert [command for command, _status in results["tls"]] == ["SET", "GET", "INCR", "HGET"]
    assert results["tls"][-1][1] == "error"  # WRONGTYPE: the key holds a string


# -- PostgreSQL over TLS -----------------------------------------------------------------------------
PG_STATEMENTS = [
    "SELECT title FROM books WHERE id <= 2 ORDER BY id",
    "UPDATE books SET title = 'Dune Messiah' WHERE id = 2",
    "SELECT count(*) FROM books",
    "SELECT * FROM no_such_table",
]
PSYCOPG_PROGRAM = """\
import sys
import psycopg
port, mode = sys.argv[1:3]
with psycopg.connect(host="127.0.0.1", port=int(port), user="postgres", dbname="postgres", sslmode=mode) as connection:
    print(connection.pgconn.ssl_in_use)
    with connection.cursor() as cursor:
        cursor.execute("SELECT title FROM books WHERE id <= %s ORDER BY id", (2,))
        print(cursor.fetchall())
        cursor.execute("UPDATE books SET title = %s WHERE id = %s", ("Dune Messiah", 2))
    connection.commit()
    try:
        connection.execute("SELECT * FROM no_such_table")
    except psycopg.Error as error:
        print(type(error).__name__)
"""


@pytest.fixture(scope="module")
def postgres_tls():  # type: ignore[no-untyped-def]
    from decoders.registry import Registry

    if Registry.default(plugins=False).by_name("postgresql") is None:
        pytest.skip("the PostgreSQL decoder (decoders/postgres, branch postgres) is not on this branch yet")
    from tests.pg_private import private_server

    with private_server() as server:
        yield server


def reset_books(server) -> None:  # type: ignore[no-untyped-def]
    subprocess.run(
        ["psql", "-X", "-q", "-h", server.socket_dir, "-p", str(server.port), "-U", "postgres", "-d", "postgres",
         "-v", "ON_ERROR_STOP=1", "-c", "DROP TABLE IF EXISTS books; CREATE TABLE books (id int PRIMARY KEY, title text);"
         " INSERT INTO books VALUES (1, 'Dune'), (2, 'Children of Dune')"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip


def psql_client(server, sslmode: str) -> list[str]:  # type: ignore[no-untyped-def]
    command = [
        "psql",
        "-X",
        f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres sslmode={sslmode}",
    ]
    for statement in PG_STATEMENTS:
        command += ["-c", statement]
    return command


@needs_tracers
def test_psql_over_tls(postgres_tls, tmp_path: Path) -> None:
    """psql with sslmode=require: the SSLRequest answered `S` in clear, the startup, the login and every
    query inside TLS, decoded by the same decoder; the same records as sslmode=disable under strace,
    each statement once though libpq's PQsendQuery shows it too."""
    reset_books(postgres_tls)
    clear = trace(tmp_path, "clear", "strace", psql_client(postgres_tls, "disable"), status=1)
    reset_books(postgres_tls)
    tls = trace(tmp_path, "tls", "ltrace", psql_client(postgres_tls, "require"), status=1)
    assert queries(tls["xml"]) == queries(clear["xml"])
    assert [q[0] for q in queries(tls["xml"])] == PG_STATEMENTS
    (clear_session,) = elements(clear["xml"], "Dockit_DatabaseSession")
    (tls_session,) = elements(tls["xml"], "Dockit_DatabaseSession")
    assert tls_session.get("User") == clear_session.get("User") == "postgres"
    assert tls_session.get("Encrypted") == "true" and clear_session.get("Encrypted") == "false"
    assert tls_session.get("TlsVersion") == "TLS 1.3" and tls_session.get("TlsCipher", "").startswith("TLS_")
    (record,) = elements(tls["xml"], "Dockit_TlsSession")
    assert record.get("Protocol") == "postgresql"
    assert "->PQsendQuery(" in tls["log"].read_text(errors="replace") or "->PQexec(" in tls["log"].read_text(
        errors="replace"
    )
    assert_replay_gives_the_same(tls, tmp_path)


@needs_tracers
def test_psycopg_over_tls(postgres_tls, tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    program = tmp_path / "client.py"
    program.write_text(PSYCOPG_PROGRAM)
    reset_books(postgres_tls)
    clear = trace(
        tmp_path, "clear", "strace", [sys.executable, str(program), str(postgres_tls.port), "disable"]
    )
    reset_books(postgres_tls)
    tls = trace(tmp_path, "tls", "ltrace", [sys.executable, str(program), str(postgres_tls.port), "require"])
    assert (tmp_path / "tls.stdout").read_text().splitlines()[0] == "True"  # psycopg says TLS was used
    assert queries(tls["xml"]) == queries(clear["xml"])
    assert any(q[0].startswith("SELECT title FROM books") for q in queries(tls["xml"]))
    (tls_session,) = elements(tls["xml"], "Dockit_DatabaseSession")
    assert tls_session.get("User") == "postgres" and tls_session.get("Encrypted") == "true"
    assert_replay_gives_the_same(tls, tmp_path)


MYSQLDB_PROGRAM = """\
import sys
import MySQLdb
port, user, password, database, certificate = sys.argv[1:6]
connection = MySQLdb.connect(host="127.0.0.1", port=int(port), user=user, password=password, db=database,
                             ssl={"ca": certificate})
cursor = connection.cursor()
cursor.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
print(cursor.fetchall())
cursor.execute("SELECT title FROM books ORDER BY id")
print(cursor.fetchall())
try:
    cursor.execute("SELECT nothing FROM no_such_table")
except MySQLdb.ProgrammingError as error:
    print(error)
connection.close()
"""


@needs_tracers
def test_mysqldb_over_tls_counts_each_statement_once(mariadb_tls, tmp_path: Path) -> None:
    """MySQLdb links libmariadb: each statement is seen twice, as the SQL handed to `mysql_real_query`
    and inside TLS's plaintext; the summary has it once, with what the server answered."""
    pytest.importorskip("MySQLdb")
    program = tmp_path / "client.py"
    program.write_text(MYSQLDB_PROGRAM)
    reset_tables(mariadb_tls)
    files = trace(tmp_path, "mysqldb", "ltrace", [sys.executable, str(program), str(mariadb_tls.port), USER,
                                                  PASSWORD, DATABASE, str(mariadb_tls.cert)])  # fmt: skip
    assert "TLSv1.3" in (tmp_path / "mysqldb.stdout").read_text()
    log = files["log"].read_text(errors="replace")
    assert log.count("->mysql_real_query(") >= 3 and "->SSL_write(" in log
    assert [q[:2] for q in queries(files["xml"])] == [
        ("SET NAMES utf8mb4", "ok"),  # MySQLdb's own
        ("SET autocommit=0", "ok"),
        ("SHOW SESSION STATUS LIKE 'Ssl_version'", "ok"),
        ("SELECT title FROM books ORDER BY id", "ok"),
        ("SELECT nothing FROM no_such_table", "error"),
    ]
    assert queries(files["xml"])[3][2] == "2"  # rows: the wire's record, not the library's
    (session,) = elements(files["xml"], "Dockit_DatabaseSession")
    assert session.get("User") == USER and session.get("Encrypted") == "true"
    assert {q.get("Session") for q in elements(files["xml"], "Dockit_SqlQuery")} == {session.get("Id")}


@needs_tracers
def test_login_inside_tls_is_hidden_in_the_calls_file(mariadb_tls, tmp_path: Path) -> None:
    """The login packet (its auth hash) crosses in SSL_write's plaintext: `--each-call` shows that call
    without its buffer, as it does for a login in clear."""
    reset_tables(mariadb_tls)
    result = run_dockit("-t", "ltrace", "--each-call", "-l", str(tmp_path / "each"),
                        *mariadb_client(mariadb_tls, tls=True), timeout=180)  # fmt: skip
    assert result.returncode == 1, result.stderr
    calls = outputs(tmp_path, "each")["txt"].read_text(errors="replace")
    (login,) = [line for line in calls.splitlines() if "mysql login: user" in line]
    assert "->SSL_write(" in login and "<credentials redacted>" in login
    assert PASSWORD not in calls
