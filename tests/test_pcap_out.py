"""`--pcap FILE`: the channels a trace saw, written as pcapng and read back by Wireshark's tshark, the
independent check: its dissectors must find the same queries and requests as dockit's summary of the
same run, over TCP and over unix sockets (which no packet capture can see)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from tests.conftest import CAPTURES, mariadb_listening, run_dockit
from tests.tshark import column, fields, mysql_queries, needs_tshark, summary_queries, summary_requests

pytestmark = [pytest.mark.live, needs_tshark]

MYSQL_SOCKET = "/run/mysqld/mysqld.sock"
needs_mariadb = pytest.mark.skipif(
    shutil.which("mariadb") is None or shutil.which("strace") is None or not mariadb_listening(),
    reason="needs strace, the mariadb client and MariaDB on 127.0.0.1:3306",
)


def outputs(tmp_path: Path, name: str) -> tuple[Path, Path]:
    return tmp_path / name, tmp_path / f"{name}.pcapng"


def the_xml(prefix: Path) -> Path:
    found = sorted(prefix.parent.glob(prefix.name + ".strace.*.xml"))
    assert len(found) == 1, found
    return found[0]


@pytest.fixture
def table() -> str:
    """A table of the shared MariaDB's `test` database for this test alone, dropped after it."""
    name = f"bridges_{uuid.uuid4().hex[:10]}"
    yield name
    subprocess.run(["mariadb", "-h", "127.0.0.1", "-u", "root", "test", "-e", f"drop table if exists {name}"],
                   check=False, capture_output=True)  # fmt: skip


def sql_script(table: str) -> str:
    return (
        f"create table {table} (id int primary key, item varchar(20)); "
        f"insert into {table} values (1, 'pen'), (2, 'ink'); "
        f"select id, item from {table} where id < 10; "
        f"update {table} set item = 'quill' where id = 1; "
        f"select * from {table}_nosuch"
    )


@needs_mariadb
@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_mariadb_queries_seen_by_tshark(tmp_path: Path, table: str, transport: str) -> None:
    if transport == "unix" and not os.path.exists(MYSQL_SOCKET):
        pytest.skip(f"{MYSQL_SOCKET} is absent")
    prefix, pcap = outputs(tmp_path, transport)
    where = ["-h", "127.0.0.1"] if transport == "tcp" else ["-S", MYSQL_SOCKET]
    result = run_dockit("-l", str(prefix), "--pcap", str(pcap), "mariadb", *where, "-u", "root", "test",
                        "-e", sql_script(table))  # fmt: skip
    assert result.returncode == 1, result.stderr  # the last statement fails: mariadb exits 1
    assert "Traceback" not in result.stderr
    ours = summary_queries(the_xml(prefix))
    assert len(ours) == 5 and ours[-1] == f"select * from {table}_nosuch"
    assert mysql_queries(pcap) == ours
    # tshark sees the error too, and the greeting's server version
    assert column(pcap, "mysql.error_code") == ["1146"]
    assert column(pcap, "mysql.version")
    # a real TCP conversation: one handshake, sequence numbers tshark finds no fault in but the hole
    # where the credential was, FINs both ways (the other streams are stdout and stderr: pipes)
    mysql = "tcp.port == 3306"
    assert (
        len(
            fields(
                pcap, "frame.number", display_filter=f"{mysql} && tcp.flags.syn == 1 && tcp.flags.ack == 0"
            )
        )
        == 1
    )
    assert len(fields(pcap, "frame.number", display_filter=f"{mysql} && tcp.flags.fin == 1")) == 2
    assert not fields(pcap, "frame.number", display_filter=f"{mysql} && tcp.analysis.flags"
                      " && !tcp.analysis.lost_segment && !tcp.analysis.ack_lost_segment")  # fmt: skip
    comments = column(pcap, "frame.comment")
    assert any(comment.startswith("pid ") and ": mariadb " in comment for comment in comments)
    # the login's auth data is left out of the file, and a comment says so
    assert any("a credential" in comment for comment in comments)
    if transport == "tcp":
        syn = "tcp.flags.syn == 1 && tcp.flags.ack == 0 && tcp.port == 3306"
        assert column(pcap, "tcp.dstport", syn) == ["3306"]
        assert column(pcap, "ip.dst", syn) == ["127.0.0.1"]
    else:  # synthetic loopback addresses on MySQL's port, the real path in the first packet's comment
        first = fields(pcap, "ip.src", "ip.dst", "tcp.dstport", "frame.comment",
                       display_filter="tcp.flags.syn == 1 && tcp.flags.ack == 0 && tcp.dstport == 3306")  # fmt: skip
        assert len(first) == 1
        assert first[0][0].startswith("127.1.") and first[0][1] == "127.1.0.1"
        assert MYSQL_SOCKET in first[0][3]


def test_replayed_capture_queries_seen_by_tshark(tmp_path: Path) -> None:
    """A committed log replayed with --pcap: the same check without a live server."""
    log = CAPTURES / "mysql_pymysql.strace.25969.log"
    pcap = tmp_path / "replay.pcapng"
    result = run_dockit("-i", str(log), "-l", str(tmp_path / "replay"), "--pcap", str(pcap))
    assert result.returncode == 0, result.stderr
    ours = summary_queries(tmp_path / "replay.xml")
    assert ours and mysql_queries(pcap) == ours
    # the times are the trace's, not the replay's
    times = [float(t) for t in column(pcap, "frame.time_epoch")]
    assert times and all(1.7e9 < t < 1.9e9 for t in times) and max(times) - min(times) < 60


HTTP_SERVER = textwrap.dedent(
    """
    import http.server, os, socket, socketserver, sys

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            status = 404 if self.path.startswith("/missing") else 200
            body = b"hello " + self.path.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def address_string(self):
            return "client"

        def log_message(self, *args):
            pass

    where = sys.argv[1]
    if where == "tcp":
        server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        print(server.server_address[1], flush=True)
    else:
        class UnixServer(socketserver.UnixStreamServer):
            def get_request(self):
                request, _ = super().get_request()
                return request, ("unix", 0)

        server = UnixServer(where, Handler)
        print(where, flush=True)
    server.serve_forever()
    """
)


@pytest.fixture
def http_server(tmp_path: Path, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    script = tmp_path / "server.py"
    script.write_text(HTTP_SERVER)
    where = request.param if request.param == "tcp" else str(tmp_path / "http.sock")
    process = subprocess.Popen([sys.executable, str(script), where], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    address = process.stdout.readline().strip()
    yield request.param, address
    process.kill()
    process.wait()


@pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("strace") is None, reason="needs curl, strace"
)
@pytest.mark.parametrize("http_server", ["tcp", "unix"], indirect=True)
def test_curl_requests_seen_by_tshark(tmp_path: Path, http_server) -> None:  # type: ignore[no-untyped-def]
    transport, address = http_server
    prefix, pcap = outputs(tmp_path, "curl")
    if transport == "tcp":
        base, extra = f"http://127.0.0.1:{address}", []
    else:
        base, extra = "http://localhost", ["--unix-socket", address]
    urls = [f"{base}/one?x=1", f"{base}/missing", f"{base}/two"]
    result = run_dockit("-l", str(prefix), "--pcap", str(pcap), "curl", "-s", *extra, *urls)
    assert result.returncode == 0, result.stderr
    ours = summary_requests(the_xml(prefix))
    assert [(m, u, s) for m, u, s in ours] == [("GET", "/one?x=1", "200"), ("GET", "/missing", "404"),
                                               ("GET", "/two", "200")]  # fmt: skip
    theirs = fields(pcap, "http.request.method", "http.request.uri", display_filter="http.request")
    assert [tuple(row) for row in theirs] == [(m, u) for m, u, _ in ours]
    assert column(pcap, "http.response.code") == [s for _, _, s in ours]
    if transport == "unix":  # written on HTTP's port, so that the dissector takes it
        assert set(column(pcap, "tcp.dstport", "http.request")) == {"80"}


@pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("openssl") is None or shutil.which("strace") is None,
    reason="needs curl, openssl and strace",
)
def test_tls_server_name_seen_by_tshark(tmp_path: Path) -> None:
    """curl to a TLS server this test starts: tshark reads the ClientHello's server name where dockit's
    TLS decoder did."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "k.pem"),
                    "-out", str(tmp_path / "c.pem"), "-subj", "/CN=bridges.test", "-days", "1"],
                   check=True, capture_output=True)  # fmt: skip
    script = tmp_path / "tls.py"
    script.write_text(textwrap.dedent(f"""
        import http.server, ssl
        server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain({str(tmp_path / "c.pem")!r}, {str(tmp_path / "k.pem")!r})
        server.socket = context.wrap_socket(server.socket, server_side=True)
        print(server.server_address[1], flush=True)
        server.serve_forever()
    """))  # fmt: skip
    server = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True, cwd=tmp_path)  # fmt: skip
    try:
        assert server.stdout is not None
        port = server.stdout.readline().strip()
        prefix, pcap = outputs(tmp_path, "tls")
        result = run_dockit("-l", str(prefix), "--pcap", str(pcap), "curl", "-sk", "--resolve",
                            f"bridges.test:{port}:127.0.0.1", f"https://bridges.test:{port}/")  # fmt: skip
        assert result.returncode == 0, result.stderr
    finally:
        server.kill()
        server.wait()
    from lxml import etree

    root = etree.parse(str(the_xml(prefix))).getroot()
    ours = [t.get("ServerName") for t in root.iter("Dockit_TlsSession")]
    assert ours == ["bridges.test"]
    assert column(pcap, "tls.handshake.extensions_server_name") == ours
    assert column(pcap, "tcp.dstport", "tls.handshake.type == 1") == [port]


@needs_mariadb
def test_cut_buffer_written_as_seen_with_the_gap_marked(tmp_path: Path, table: str) -> None:
    """A log recorded with strace's default -s 32 cuts each long query: the pcap holds the 32 bytes
    seen, then the sequence numbers jump over the rest, which tshark reports as not captured."""
    log = tmp_path / "cut.log"
    long_query = f"select '{'x' * 200}' as padding"
    subprocess.run(["strace", "-f", "-ttt", "-yy", "-o", str(log), "mariadb", "-h", "127.0.0.1", "-u", "root",
                    "test", "-e", long_query], check=True, capture_output=True)  # fmt: skip
    pcap = tmp_path / "cut.pcapng"
    result = run_dockit("-i", str(log), "-l", str(tmp_path / "cut"), "--pcap", str(pcap))
    assert result.returncode == 0, result.stderr
    comments = column(pcap, "frame.comment")
    cut = [c for c in comments if "the tracer cut this buffer" in c]
    assert cut, comments
    assert fields(pcap, "frame.number", display_filter="tcp.analysis.lost_segment")
    query_frames = fields(
        pcap, "tcp.len", "frame.comment", display_filter="tcp.dstport == 3306 && tcp.len > 0"
    )
    # what was seen is written: 32 bytes of the COM_QUERY packet, not zeros nor the whole query
    assert any(row[0] == "32" and "not seen" in row[1] for row in query_frames), query_frames


def test_pcap_written_atomically(tmp_path: Path) -> None:
    """A replay that fails leaves no pcap, not even a partial one."""
    bad = tmp_path / "bad.log.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage, a gzip cut short")
    pcap = tmp_path / "never.pcapng"
    result = run_dockit("-i", str(bad), "-l", str(tmp_path / "bad"), "--pcap", str(pcap))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert not pcap.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".never.pcapng")]


def test_no_loopback_server_needed_for_pipes(tmp_path: Path) -> None:
    """A shell pipeline's pipe is a channel too: written as TCP between 127.2.x.x addresses, with the
    pipe named in the first packet's comment and the bytes that crossed it."""
    if shutil.which("strace") is None:
        pytest.skip("needs strace")
    prefix, pcap = outputs(tmp_path, "pipe")
    result = run_dockit(
        "-l", str(prefix), "--pcap", str(pcap), "sh", "-c", "printf 'hello pipe' | cat > /dev/null"
    )
    assert result.returncode == 0, result.stderr
    first = fields(
        pcap, "ip.src", "ip.dst", "frame.comment", display_filter="tcp.flags.syn == 1 && tcp.flags.ack == 0"
    )
    assert first and first[0][0].startswith("127.2.") and first[0][2].startswith("pipe:[")
    payloads = column(pcap, "tcp.payload")
    assert bytes.fromhex("".join(payloads)) == b"hello pipe"
    assert socket  # the loopback is never touched: the file is made from the trace alone


@pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("strace") is None, reason="needs curl, strace"
)
@pytest.mark.parametrize("http_server", ["tcp"], indirect=True)
def test_attached_server_written_server_side(tmp_path: Path, http_server) -> None:  # type: ignore[no-untyped-def]
    """-p on a running HTTP server: its accepted connections are written with the client as the
    connection's opener (the SYN goes to the server's port), and tshark reads the requests."""
    import signal
    import time

    from tests.test_http_live import wait_until_traced

    _transport, port = http_server
    pid = int(subprocess.check_output(["pgrep", "-n", "-f", f"{tmp_path}/server.py"]).split()[0])
    prefix, pcap = outputs(tmp_path, "srv")
    dockit = subprocess.Popen([sys.executable, "-m", "dockit_core.cli", "-l", str(prefix), "-p", str(pid),
                               "--pcap", str(pcap)], stderr=subprocess.PIPE, text=True)  # fmt: skip
    wait_until_traced(pid)
    for path in ("/a", "/missing/b"):
        subprocess.run(
            ["curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{port}{path}"], check=True, timeout=30
        )
    time.sleep(0.3)
    dockit.send_signal(signal.SIGINT)
    _, stderr = dockit.communicate(timeout=60)
    assert dockit.returncode == 0, stderr
    ours = summary_requests(the_xml(prefix))
    assert ours == [("GET", "/a", "200"), ("GET", "/missing/b", "404")]
    theirs = fields(pcap, "http.request.method", "http.request.uri", display_filter="http.request")
    assert [tuple(row) for row in theirs] == [(m, u) for m, u, _ in ours]
    assert set(column(pcap, "tcp.dstport", "tcp.flags.syn == 1 && tcp.flags.ack == 0")) == {port}


PG_SOCKET_DIR = "/var/run/postgresql"


def _has_postgres_decoder() -> bool:
    import importlib.util

    return importlib.util.find_spec("decoders.postgres") is not None


@pytest.mark.skipif(
    not _has_postgres_decoder(), reason="the PostgreSQL decoder (decoders/postgres) is not on this branch yet"
)
@pytest.mark.skipif(
    shutil.which("psql") is None or shutil.which("strace") is None, reason="needs psql and strace"
)
@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_postgres_queries_seen_by_tshark(tmp_path: Path, transport: str) -> None:
    """psql against the machine's PostgreSQL, over TCP and over its unix socket: tshark's pgsql
    dissector reads the same statements as dockit's summary."""
    where = ["-h", "127.0.0.1"] if transport == "tcp" else ["-h", PG_SOCKET_DIR]
    table = f"bridges_{uuid.uuid4().hex[:10]}"
    script = (f"create table {table} (id int primary key, item text); insert into {table} values (1, 'pen'); "
              f"select item from {table}; drop table {table}")  # fmt: skip
    prefix, pcap = outputs(tmp_path, f"pg-{transport}")
    result = run_dockit("-l", str(prefix), "--pcap", str(pcap), "psql", *where, "-U", "postgres", "-d", "postgres",
                        "-c", script)  # fmt: skip
    if "Connection refused" in result.stderr or "No such file" in result.stderr:
        pytest.skip(f"no PostgreSQL on {where[-1]}")
    assert result.returncode == 0, result.stderr
    from lxml import etree

    root = etree.parse(str(the_xml(prefix))).getroot()
    ours = [q.findtext("Text") for q in root.iter("Dockit_SqlQuery")]  # psql's: the run has no other SQL
    theirs = [row[0] for row in fields(pcap, "pgsql.query")]  # one Query a frame (`column` splits at commas)
    # psql -c sends the four statements as one Query; the summary has one record per statement.
    assert theirs == [script]
    assert ours == [statement.strip() for statement in script.split(";")]
