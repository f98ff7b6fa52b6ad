"""Live run: a connection's decoder is closed when the connection's last descriptor is, not when the
trace ends. A response that ends with its connection (HTTP/1.0, no Content-Length) is then complete at
that close, not at the end of the trace (and the connection's state leaves memory)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Summary, run_dockit

pytestmark = pytest.mark.live

PROGRAM = """
import socket, threading, time
server = socket.create_server(("127.0.0.1", 0))
port = server.getsockname()[1]
def serve():
    for _ in range(3):
        connection, _ = server.accept()
        request = connection.recv(1000).split(b" ")[1]
        body = b"body of " + request
        if request == b"/a":  # its end is the connection's end
            connection.sendall(b"HTTP/1.0 200 OK\\r\\n\\r\\n" + body)
        else:
            connection.sendall(b"HTTP/1.0 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n" % len(body) + body)
        connection.close()
threading.Thread(target=serve).start()
for path in ("/a", "/b", "/c"):
    client = socket.create_connection(("127.0.0.1", port))
    client.sendall(f"GET {path} HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n".encode())
    while client.recv(1000):
        pass
    client.close()
time.sleep(0.5)  # the trace ends well after the last connection
"""


def test_a_response_that_ends_with_its_connection_is_decoded_at_the_close(tmp_path: Path, strace_bin: str) -> None:
    result = run_dockit("-l", str(tmp_path / "ends"), "/usr/bin/python3", "-S", "-c", PROGRAM,
                        cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = Summary.load(next(tmp_path.glob("ends.strace.*.xml")))
    requests = [dict(e.attrib) for e in summary.root.iter("Dockit_HttpRequest")]
    # /a was complete when its connection closed, before /b began: it comes first
    assert [(r["Url"], r["Status"]) for r in requests] == [("/a", "200"), ("/b", "200"), ("/c", "200")]
    assert requests[0]["ResponseBytes"] == str(len("HTTP/1.0 200 OK\r\n\r\nbody of /a"))
    durations = [float(r["Duration"]) for r in requests]
    assert max(durations) < 0.4, f"completed at the trace's end, not at the close: {durations}"
