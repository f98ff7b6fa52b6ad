"""Wireshark as the independent check of what dockit decodes inside TLS.

tshark captures the loopback while dockit traces a TLS client with ltrace; the client writes its TLS
secrets to SSLKEYLOGFILE (OpenSSL's key log, which Python's ssl and curl honour), so tshark decrypts
the connection and its dissectors say what crossed. Every statement, login and request tshark finds
must be in dockit's summary, which had only ltrace's view of the plaintext.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import run_dockit
from tests.test_tls_live import DATABASE, PASSWORD, PYMYSQL_PROGRAM, USER, mariadb_tls, reset_tables  # noqa: F401
from tests.tls_servers import HttpsServer, environment_without_proxies, make_certificate
from tests.tshark import loopback_capture, needs_tshark

pytestmark = [
    pytest.mark.live,
    needs_tshark,
    pytest.mark.skipif(shutil.which("ltrace") is None, reason="needs ltrace"),
]


def decrypted(
    capture: Path, keys: Path, port: int, protocol: str, display: str, *names: str
) -> list[list[str]]:
    """The fields tshark's dissector finds in the capture, decrypted with the client's key log."""
    command = ["tshark", "-r", str(capture), "-o", f"tls.keylog_file:{keys}", "-d", f"tcp.port=={port},{protocol}",
               "-Y", display, "-T", "fields", "-E", "separator=\t"]  # fmt: skip
    for name in names:
        command += ["-e", name]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return [line.split("\t") for line in result.stdout.splitlines()]


def test_pymysql_over_tls_against_tshark(mariadb_tls, tmp_path: Path) -> None:  # noqa: F811
    program = tmp_path / "client.py"
    program.write_text(PYMYSQL_PROGRAM)
    keys = tmp_path / "keys.log"
    reset_tables(mariadb_tls)
    environment = {**environment_without_proxies(), "SSLKEYLOGFILE": str(keys)}
    with loopback_capture(tmp_path / "tls.pcap", f"tcp port {mariadb_tls.port}") as capture:
        result = run_dockit("-t", "ltrace", "-l", str(tmp_path / "py"), sys.executable, str(program),
                            str(mariadb_tls.port), USER, PASSWORD, DATABASE, "tls", env=environment)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert keys.stat().st_size > 0
    rows = decrypted(capture, keys, mariadb_tls.port, "mysql", "mysql.command == 3 || mysql.user",
                     "mysql.query", "mysql.user")  # fmt: skip
    queries = [query for query, _user in rows if query]
    users = {user for _query, user in rows if user}
    assert len(queries) >= 3 and users == {USER}, rows
    (xml,) = tmp_path.glob("py.ltrace.*.xml")
    root = etree.parse(str(xml)).getroot()
    assert [q.findtext("Text") for q in root.iter("Dockit_SqlQuery")] == queries
    (session,) = root.iter("Dockit_DatabaseSession")
    assert session.get("User") == USER and session.get("Encrypted") == "true"


def test_curl_https_against_tshark(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    cert, key = make_certificate(tmp_path / "certificate")
    keys = tmp_path / "keys.log"
    environment = {**environment_without_proxies(), "SSLKEYLOGFILE": str(keys)}
    with HttpsServer(cert, key) as server:
        base = f"https://localhost:{server.port}"
        with loopback_capture(tmp_path / "https.pcap", f"tcp port {server.port}") as capture:
            result = run_dockit("-t", "ltrace", "-l", str(tmp_path / "curl"), "curl", "-sk", f"{base}/x?y=1",
                                f"{base}/missing/z", env=environment)  # fmt: skip
        port = server.port
    assert result.returncode == 0, result.stderr
    assert os.path.getsize(keys) > 0
    uris = [row[0] for row in decrypted(capture, keys, port, "tls", "http.request", "http.request.uri")]
    codes = [row[0] for row in decrypted(capture, keys, port, "tls", "http.response", "http.response.code")]
    assert uris == ["/x?y=1", "/missing/z"] and codes == ["200", "404"]
    (xml,) = tmp_path.glob("curl.ltrace.*.xml")
    root = etree.parse(str(xml)).getroot()
    assert [(r.get("Url"), r.get("Status")) for r in root.iter("Dockit_HttpRequest")] == list(
        zip(uris, codes, strict=True)
    )
