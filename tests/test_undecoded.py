"""A connection that no decoder claims is said so in the summary: `Dockit_UndecodedChannel` with its
first bytes (printable, credentials cut off) and the `--decode PORT=NAME` hint.

The facts come from the captures' own record (captures/FACTS.md: tcp_pair sends `ping from client` and
answers `pong back` on port 47613) and from the bytes the live test's client sends.
"""

from __future__ import annotations

import socket
import sys
import threading
from pathlib import Path

from lxml import etree

from dockit_core.model.undecoded import printable
from tests.conftest import CAPTURES, needs_strace_and_curl, replay, run_dockit


def undecoded(root: etree._Element) -> list[etree._Element]:
    return list(root.iter("Dockit_UndecodedChannel"))


def test_tcp_pair_capture_is_reported_undecoded_with_its_first_bytes(tmp_path: Path) -> None:
    summary, _ = replay(CAPTURES / "tcp_pair.strace.24997.log", tmp_path)
    found = undecoded(summary.root)
    assert len(found) == 1, [etree.tostring(e) for e in found]
    channel = found[0]
    assert channel.get("Kind") == "tcp"
    assert {channel.get("Local"), channel.get("Remote")} >= {"127.0.0.1:47613"}
    first = {child.get("Direction"): child.text for child in channel.iter("FirstBytes")}
    assert sorted(first.values()) == ["ping from client", "pong back"]
    sent_by_local = first["out"]
    # the local end is the server (accepted) or the client: its bytes out are what the facts give it
    if channel.get("Side") == "server":
        assert sent_by_local == "pong back" and channel.get("BytesOut") == "9"
    else:
        assert sent_by_local == "ping from client" and channel.get("BytesOut") == "16"
    assert "`--decode 47613=NAME` forces a decoder" in channel.get("Hint")
    assert "mysql" in channel.get("Hint")  # the names a user may give


def test_decoded_and_no_decode_runs_report_nothing_undecoded(tmp_path: Path) -> None:
    decoded, _ = replay(CAPTURES / "mysql_cli.strace.25968.log", tmp_path / "a")
    assert undecoded(decoded.root) == []
    plain, _ = replay(CAPTURES / "tcp_pair.strace.24997.log", tmp_path / "b", "--no-decode")
    assert undecoded(plain.root) == []


def test_printable_escapes_and_cuts_credentials() -> None:
    assert printable(b"HELO x\r\n\x00\xff\\") == "HELO x\\r\\n\\x00\\xff\\\\"
    assert printable(b"USER bob\r\nPASS hunter2\r\n") == "USER bob\\r\\nPASS <redacted>"
    assert printable(b'{"op":1,"token":"abc"}') == '{"op":1,"token <redacted>'


@needs_strace_and_curl
def test_live_unknown_protocol_with_a_password_shows_its_start_not_the_password(tmp_path: Path) -> None:
    secret = "hunter2-undecoded-7f3a"
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        connection, _ = server.accept()
        with connection:
            received = b""
            while not received.endswith(b"\r\n\r\n"):
                data = connection.recv(4096)
                if not data:
                    return
                received += data
            connection.sendall(b"+WELCOME bob\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client = (
        "import socket, sys; s = socket.create_connection(('127.0.0.1', int(sys.argv[1]))); "
        "s.sendall(b'HELO dockit\\r\\nUSER bob\\r\\nPASS ' + sys.stdin.buffer.read() + b'\\r\\n\\r\\n'); "
        "print(s.recv(100)); s.close()"
    )
    # the password comes on stdin: on the command line it would be in the summary's CommandLine
    result = run_dockit(
        "-l", str(tmp_path / "u"), sys.executable, "-S", "-c", client, str(port), input=secret.encode()
    )
    thread.join(10)
    server.close()
    assert result.returncode == 0, result.stderr
    xml = next(tmp_path.glob("u.strace.*.xml"))
    channels = undecoded(etree.parse(str(xml)).getroot())
    ours = [c for c in channels if c.get("Remote") == f"127.0.0.1:{port}"]
    assert len(ours) == 1, [etree.tostring(c) for c in channels]
    first = {child.get("Direction"): child.text for child in ours[0].iter("FirstBytes")}
    assert first == {"out": "HELO dockit\\r\\nUSER bob\\r\\nPASS <redacted>", "in": "+WELCOME bob\\r\\n"}
    assert ours[0].get("Side") == "client" and f"--decode {port}=NAME" in ours[0].get("Hint")
    for output in tmp_path.iterdir():
        if output.suffix != ".log":  # the raw log keeps every byte, by design
            assert secret not in output.read_text(errors="replace"), output
