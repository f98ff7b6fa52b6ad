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


CONNECTIONS_LOG = "".join(
    f"4242  1796240000.00{i}100 socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_TCP) = 3<TCP:[{100 + i}]> <0.000010>\n"
    f'4242  1796240000.00{i}200 connect(3<TCP:[{100 + i}]>, {{sa_family=AF_INET, sin_port=htons(8000), '
    f'sin_addr=inet_addr("127.0.0.1")}}, 16) = 0 <0.000050>\n'
    f'4242  1796240000.00{i}300 sendto(3<TCP:[127.0.0.1:4000{i}->127.0.0.1:8000]>, "GET /{i} HTTP/1.1\\r\\nHost: h\\r\\n\\r\\n", '
    f"27, 0, NULL, 0) = 27 <0.000010>\n"
    f'4242  1796240000.00{i}400 recvfrom(3<TCP:[127.0.0.1:4000{i}->127.0.0.1:8000]>, '
    f'"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok", 8192, 0, NULL, NULL) = 40 <0.000010>\n'
    f"4242  1796240000.00{i}500 close(3<TCP:[127.0.0.1:4000{i}->127.0.0.1:8000]>) = 0 <0.000010>\n"
    for i in range(3)
) + "4242  1796240000.009000 +++ exited with 0 +++\n"


@pytest.mark.parametrize(
    ("summary_filter", "sockets"), [(None, 3), ("Dockit_Socket", 3), ("CIM_Process", 0), ("Dockit_HttpRequest", 0)]
)
def test_finished_connections_are_in_the_summary_and_obey_s(tmp_path: Path, summary_filter: str | None,
                                                             sockets: int) -> None:  # fmt: skip
    """A finished connection leaves memory for a spool of its own: it is still in the summary, in the
    XML and the TXT forms, and `-s` still chooses what is kept."""
    log = tmp_path / "three.log"
    log.write_text(CONNECTIONS_LOG)
    for form, suffix in (("XML", ".xml"), ("TXT", ".summary.txt")):
        args = ["-i", str(log), "-l", str(tmp_path / form), "-F", form]
        result = run_dockit(*args, *(["-s", summary_filter] if summary_filter else []))
        assert result.returncode == 0, result.stderr
        text = (tmp_path / (form + suffix)).read_text()
        if form == "XML":
            found = Summary.load(tmp_path / "XML.xml").sockets
            assert len(found) == sockets
            assert sorted(s["Local"] for s in found) == [f"127.0.0.1:4000{i}" for i in range(sockets)]
        else:
            assert text.count("== Dockit_Socket ==") == (1 if sockets else 0)
