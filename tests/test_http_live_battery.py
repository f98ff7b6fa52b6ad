"""HTTP decoding of real clients and servers traced live on 127.0.0.1: each test starts its own server on
a free port, runs a real client (curl, python) under dockit, and checks the summary against what went
over the wire."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import unquote

import pytest
from lxml import etree

from tests.conftest import needs_strace_and_curl

pytestmark = [pytest.mark.live, needs_strace_and_curl]

SERVER = textwrap.dedent(
    """
    import http.server, socketserver, sys, time

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def reply(self, code, body, extra=()):
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            for name, value in extra:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self):
            port = self.server.server_address[1]
            if self.path.startswith("/login"):
                location = f"http://127.0.0.1:{port}/home?access_token=LOCTOKEN77&password=LOCPASS77"
                self.reply(302, b"moved", [("Location", location)])
            elif self.path.startswith("/chunked"):
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for part in (b"hello ", b"chunked " * 100):
                    self.wfile.write(b"%x\\r\\n%s\\r\\n" % (len(part), part))
                self.wfile.write(b"0\\r\\n\\r\\n")
            elif self.path.startswith("/empty"):
                self.send_response(204)
                self.end_headers()
            elif self.path.startswith("/slow"):
                time.sleep(0.5)  # then the whole response in one write: the client gets it in one read
                self.wfile.write(b"HTTP/1.1 200 OK\\r\\nContent-Length: 4\\r\\n\\r\\nslow")
            else:
                self.reply(200, b"hello " + self.path.encode())

        do_HEAD = do_GET

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            self.reply(201, b"got %d" % len(body))

        def log_message(self, *args):
            pass

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True

    server = Server(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()
    """
)


@pytest.fixture
def server_script(tmp_path: Path) -> Path:
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    return script


@pytest.fixture
def port(server_script: Path):
    process = subprocess.Popen([sys.executable, str(server_script)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    yield int(process.stdout.readline())
    process.kill()
    process.wait()


def dockit(tmp_path: Path, name: str, *command: str) -> etree._Element:
    result = subprocess.run(
        [sys.executable, "-m", "dockit_core.cli", "-l", str(tmp_path / name), "-w", *command],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    (xml,) = tmp_path.glob(f"{name}.strace.*.xml")
    root = etree.parse(str(xml)).getroot()
    (statistics,) = root.iter("Dockit_Statistics")
    assert statistics.get("DecoderProblems") == "0"
    return root


def requests_of(root: etree._Element) -> list[etree._Element]:
    return list(root.iter("Dockit_HttpRequest"))


def test_urls_in_referer_and_location_headers_and_api_key_headers_are_redacted(
    port: int, tmp_path: Path
) -> None:
    # The secrets go in a curl config file, so that none is on the command line: the outputs can only
    # get them from the bytes on the socket.
    config = tmp_path / "curl.conf"
    config.write_text(
        textwrap.dedent(
            f"""
            silent
            location
            output = "/dev/null"
            referer = "http://127.0.0.1/page?access_token=REFTOKEN77"
            header = "X-Goog-Api-Key: GOOGKEY77"
            header = "Api-Key: APIKEY77"
            url = "http://127.0.0.1:{port}/login"
            """
        )
    )
    root = dockit(tmp_path, "redact", "curl", "-K", str(config))
    seen = [(r.get("Method"), r.get("Url"), r.get("Status")) for r in requests_of(root)]
    assert seen == [
        ("GET", "/login", "302"),
        ("GET", "/home?access_token=<redacted>&password=<redacted>", "200"),
    ]
    headers = {h.get("Name"): h.get("Value") for h in root.iter("Header")}
    assert headers["Referer"] == "http://127.0.0.1/page?access_token=<redacted>"
    assert headers["Location"] == f"http://127.0.0.1:{port}/home?access_token=<redacted>&password=<redacted>"
    assert headers["X-Goog-Api-Key"] == headers["Api-Key"] == "<redacted>"
    secrets = ("REFTOKEN77", "LOCTOKEN77", "LOCPASS77", "GOOGKEY77", "APIKEY77")
    assert any(
        secret in path.read_text(errors="replace")
        for path in tmp_path.glob("redact.*.log")
        for secret in secrets
    )
    for path in tmp_path.glob("redact.*"):
        if path.suffix not in (".log", ".ini"):
            text = path.read_text(errors="replace")
            assert not [secret for secret in secrets if secret in text], path


def test_keep_alive_connection_with_chunked_head_204_and_post(port: int, tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{port}"
    root = dockit(
        tmp_path,
        "keep",
        "curl", "-s", "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null",
        f"{base}/chunked", f"{base}/empty", f"{base}/after",
        "--next", "-s", "-I", "-o", "/dev/null", f"{base}/head",
        "--next", "-s", "-o", "/dev/null", "-d", "a=1&b=22", f"{base}/form",
    )  # fmt: skip
    seen = [(r.get("Method"), r.get("Url"), r.get("Status")) for r in requests_of(root)]
    assert seen == [
        ("GET", "/chunked", "200"),
        ("GET", "/empty", "204"),
        ("GET", "/after", "200"),
        ("HEAD", "/head", "200"),
        ("POST", "/form", "201"),
    ]
    sockets = [s for s in root.iter("Dockit_Socket") if s.get("Remote") == f"127.0.0.1:{port}"]
    assert len(sockets) == 1, "curl reuses one connection for all five"
    # every byte on the connection belongs to exactly one exchange
    assert sum(int(r.get("RequestBytes")) for r in requests_of(root)) == int(sockets[0].get("BytesOut"))
    assert sum(int(r.get("ResponseBytes")) for r in requests_of(root)) == int(sockets[0].get("BytesIn"))


def test_pipelined_requests_traced_on_both_sides_are_counted_once(
    server_script: Path, tmp_path: Path
) -> None:
    client = tmp_path / "pipeline.py"
    client.write_text(
        textwrap.dedent(
            """
            import socket, sys, time
            for attempt in range(100):
                try:
                    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
                    break
                except ConnectionRefusedError:
                    time.sleep(0.05)
            s.sendall(b"GET /p1 HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"
                      b"POST /p2 HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 5\\r\\n\\r\\nhello"
                      b"HEAD /p3 HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
            while s.recv(65536):
                pass
            """
        )
    )
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    shell = f"{sys.executable} {server_script} {free} >/dev/null & {sys.executable} {client} {free}; kill $!"
    root = dockit(tmp_path, "both", "sh", "-c", shell)
    seen = [(r.get("Method"), r.get("Url"), r.get("Status")) for r in requests_of(root)]
    assert seen == [("GET", "/p1", "200"), ("POST", "/p2", "201"), ("HEAD", "/p3", "200")]
    assert [int(r.get("RequestBytes")) for r in requests_of(root)] == [29, 54, 49]


def test_utf8_bytes_in_request_targets(port: int, tmp_path: Path) -> None:
    """curl sends a URL typed with `日本` as raw UTF-8 bytes (it percent-encodes only some parts,
    depending on its version); a raw client sends them everywhere, with a POST body after."""
    base = f"http://127.0.0.1:{port}"
    root = dockit(
        tmp_path,
        "curl8",
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-o",
        "/dev/null",
        f"{base}/café?q=日本",
        f"{base}/x",
    )
    seen = [(r.get("Method"), unquote(r.get("Url")), r.get("Status")) for r in requests_of(root)]
    assert seen == [("GET", "/café?q=日本", "200"), ("GET", "/x", "200")]

    first = "POST /café/日本?q=ü HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc".encode()
    second = b"GET /second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    client = (
        f"import socket; s = socket.create_connection(('127.0.0.1', {port})); s.sendall({first!r}); "
        f"s.recv(65536); s.sendall({second!r})\nwhile s.recv(65536): pass"
    )
    root = dockit(tmp_path, "raw8", sys.executable, "-c", client)
    seen = [
        (r.get("Method"), r.get("Url"), r.get("Status"), int(r.get("RequestBytes")))
        for r in requests_of(root)
    ]
    assert seen == [("POST", "/café/日本?q=ü", "201", len(first)), ("GET", "/second", "200", len(second))]
    assert not [r for r in requests_of(root) if r.get("Complete") or r.get("Truncated")]


def test_duration_of_a_response_read_by_one_blocking_recv(port: int, tmp_path: Path) -> None:
    client = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/slow').read()"
    root = dockit(tmp_path, "slow", sys.executable, "-c", client)
    (request,) = requests_of(root)
    assert (request.get("Url"), request.get("Status")) == ("/slow", "200")
    assert float(request.get("Duration")) >= 0.5  # the server slept 0.5 s before answering
