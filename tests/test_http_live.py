"""HTTP end to end: a server attached with -p (the server side), and a client log written with strace -xx
(every byte in hex) replayed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import needs_strace_and_curl

pytestmark = [pytest.mark.live, needs_strace_and_curl]

SERVER = textwrap.dedent(
    """
    import http.server, sys

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            body = b"not here" if self.path.startswith("/missing") else b"hello " + self.path.encode()
            self.send_response(404 if self.path.startswith("/missing") else 200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()
    """
)


@pytest.fixture
def http_server(tmp_path: Path):
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    port = int(process.stdout.readline())
    yield process, port
    process.kill()
    process.wait()


def exchanges(xml: Path) -> list[tuple[str | None, ...]]:
    root = etree.parse(str(xml)).getroot()
    return [
        (e.get("Side"), e.get("Method"), e.get("Url"), e.get("Status"), e.get("ContentType"))
        for e in root.iter("Dockit_HttpRequest")
    ]


def wait_until_traced(pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/status") as status:
            if any(line.startswith("TracerPid:") and line.split()[1] != "0" for line in status):
                return
        time.sleep(0.02)
    raise AssertionError(f"strace never attached to {pid}")


def test_server_side_attached_with_p(http_server, tmp_path: Path) -> None:
    server, port = http_server
    prefix = tmp_path / "srv"
    dockit = subprocess.Popen(
        [sys.executable, "-m", "dockit_core.cli", "-l", str(prefix), "-p", str(server.pid)],
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until_traced(server.pid)
    base = f"http://127.0.0.1:{port}"
    subprocess.run(["curl", "-s", "-o", "/dev/null", f"{base}/items?id=7"], check=True, timeout=30)
    subprocess.run(["curl", "-s", "-o", "/dev/null", f"{base}/missing"], check=True, timeout=30)
    subprocess.run(
        [
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-H",
            "Content-Type: application/json",
            "-d",
            '{"a": 1}',
            f"{base}/new",
        ],
        check=True,
        timeout=30,
    )
    time.sleep(0.3)
    dockit.send_signal(signal.SIGINT)
    _, stderr = dockit.communicate(timeout=60)
    assert dockit.returncode == 0, stderr
    assert server.poll() is None, "the attached server must go on after dockit detached"
    (xml,) = tmp_path.glob(f"srv.strace.{server.pid}.xml")
    assert exchanges(xml) == [
        ("server", "GET", "/items?id=7", "200", "text/plain"),
        ("server", "GET", "/missing", "404", "text/plain"),
        ("server", "POST", "/new", "201", "application/json"),
    ]
    for request in etree.parse(str(xml)).getroot().iter("Dockit_HttpRequest"):
        assert request.get("Process") == str(server.pid)


def test_client_log_written_with_xx_hex_strings_replays(http_server, tmp_path: Path) -> None:
    _, port = http_server
    log = tmp_path / "curl.xx.log"
    subprocess.run(
        [
            "strace",
            "-f",
            "-xx",
            "-tt",
            "-T",
            "-s",
            "65536",
            "-o",
            str(log),
            "curl",
            "-s",
            "-o",
            os.devnull,
            f"http://127.0.0.1:{port}/hex?q=1",
        ],
        check=True,
        timeout=60,
    )
    assert "\\x47\\x45\\x54\\x20" in log.read_text()  # "GET " as strace -xx wrote it
    result = subprocess.run(
        [sys.executable, "-m", "dockit_core.cli", "-i", str(log), "-l", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert exchanges(tmp_path / "out.xml") == [("client", "GET", "/hex?q=1", "200", "text/plain")]
