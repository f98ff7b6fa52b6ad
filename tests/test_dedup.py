"""Both ends traced: a loopback connection, or two pipes between a parent and its child, carry each
byte twice in the trace (the sender's write, the receiver's read). Each message must come out once."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from lxml import etree

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        shutil.which("strace") is None, reason="strace is not installed (apt-get install strace)"
    ),
]

LOOPBACK_PROGRAM = textwrap.dedent(
    """
    import http.server, threading, urllib.request

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = self.path.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    for path in ("/first?x=1", "/second"):
        urllib.request.urlopen(f"http://127.0.0.1:{port}{path}").read()
    server.shutdown()
    """
)

# A parent speaks HTTP to its child over two pipes (the shape of an Oracle BEQ link): both traced.
PIPES_PROGRAM = textwrap.dedent(
    """
    import os, sys

    to_child_r, to_child_w = os.pipe()
    to_parent_r, to_parent_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(to_child_w); os.close(to_parent_r)
        for _ in range(2):
            request = b""
            while not request.endswith(b"\\r\\n\\r\\n"):
                request += os.read(to_child_r, 4096)
            path = request.split(b" ")[1]
            os.write(to_parent_w, b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n%s" % (len(path), path))
        os._exit(0)
    os.close(to_child_r); os.close(to_parent_w)
    for path in (b"/one", b"/two"):
        os.write(to_child_w, b"GET " + path + b" HTTP/1.1\\r\\nHost: child\\r\\n\\r\\n")
        expected = len(b"HTTP/1.1 200 OK\\r\\nContent-Length: 4\\r\\n\\r\\n/one")
        answer = b""
        while len(answer) < expected:
            answer += os.read(to_parent_r, 4096)
    os.waitpid(pid, 0)
    """
)

# A unix-socket server and its client in one process: the client's decoration names no peer until the
# server accepts (`4<UNIX-STREAM:[56234]>`), the server's holds a comma (`5<UNIX-STREAM:[57267->56234,"/p"]>`).
UNIX_PROGRAM = textwrap.dedent(
    """
    import os, socket, sys, threading

    path = sys.argv[1]
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen()

    def serve():
        connection, _ = server.accept()
        request = connection.recv(1000)
        path_asked = request.split(b" ")[1]
        connection.sendall(b"HTTP/1.0 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n%s" % (len(path_asked), path_asked))
        connection.close()

    thread = threading.Thread(target=serve)
    thread.start()
    client = socket.socket(socket.AF_UNIX)
    client.connect(path)
    client.sendall(b"GET /over-unix HTTP/1.0\\r\\nHost: app\\r\\n\\r\\n")
    answer = b""
    while not answer.endswith(b"/over-unix"):
        answer += client.recv(1000)
    thread.join()
    """
)


def trace(tmp_path: Path, name: str, program: str, *args: str) -> etree._Element:
    script = tmp_path / f"{name}.py"
    script.write_text(program)
    prefix = tmp_path / name
    result = subprocess.run(
        [sys.executable, "-m", "dockit_core.cli", "-l", str(prefix), sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    (summary,) = tmp_path.glob(f"{name}.strace.*.xml")
    return etree.parse(str(summary)).getroot()


def test_loopback_http_with_both_ends_traced_comes_out_once(tmp_path: Path) -> None:
    root = trace(tmp_path, "loopback", LOOPBACK_PROGRAM)
    exchanges = [(e.get("Method"), e.get("Url"), e.get("Status")) for e in root.iter("Dockit_HttpRequest")]
    assert exchanges == [("GET", "/first?x=1", "200"), ("GET", "/second", "200")]
    assert int(root.find("Dockit_Statistics").get("DuplicateChunks")) > 0  # the server's reads were seen


def test_pipe_pair_with_both_ends_traced_comes_out_once(tmp_path: Path) -> None:
    root = trace(tmp_path, "pipes", PIPES_PROGRAM)
    exchanges = [
        (e.get("Method"), e.get("Url"), e.get("Status"), e.get("Host"))
        for e in root.iter("Dockit_HttpRequest")
    ]
    assert exchanges == [("GET", "/one", "200", "child"), ("GET", "/two", "200", "child")]
    processes = {p.get("Handle") for p in root.iter("CIM_Process")}
    assert len(processes) == 2


def test_unix_socket_with_both_ends_traced_comes_out_once(tmp_path: Path) -> None:
    """The server's end is found although its decoration holds a comma (its bytes and close count),
    and joins the client's channel although the client's decoration never named it."""
    root = trace(tmp_path, "unix", UNIX_PROGRAM, str(tmp_path / "app.sock"))
    exchanges = [(e.get("Method"), e.get("Url"), e.get("Status")) for e in root.iter("Dockit_HttpRequest")]
    assert exchanges == [("GET", "/over-unix", "200")]
    request = len(b"GET /over-unix HTTP/1.0\r\nHost: app\r\n\r\n")
    response = len(b"HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\n/over-unix")
    ends = {
        ("accepted" if s.get("Accepted") else "client"): (int(s.get("BytesIn")), int(s.get("BytesOut")))
        for s in root.iter("Dockit_Socket")
        if s.get("Family") == "unix" and not s.get("Listening") and str(tmp_path) in (s.get("Local") or s.get("Remote") or "")
    }
    assert ends == {"client": (response, request), "accepted": (request, response)}
