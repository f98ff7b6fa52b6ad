"""Record the TLS captures with dockit itself: real clients over TLS, traced live with `-t ltrace`.

    DOCKIT_SOURCE=$PWD python captures/record_tls.py               # all of them into captures/
    DOCKIT_SOURCE=$PWD python captures/record_tls.py curl_https    # some of them

- `mariadb_tls`: Debian's `mariadb` client with `--ssl` against a private MariaDB started for the
  recording (tests/tls_servers.py: its own data folder, port and self-signed certificate): the greeting
  and the SSL request in clear, the login and four statements inside TLS (the last one fails).
- `curl_https`: curl (OpenSSL, its own BIO) against an HTTPS server in a thread of the recorder: two GETs.
- `gnutls_https`: gnutls-cli (GnuTLS) against the same server, one GET typed on its stdin.
- `psql_tls`: Debian's `psql` (a Perl wrapper that execs the real one, linked with libpq and OpenSSL)
  with `sslmode=require` against a private PostgreSQL (tests/pg_private.py): the SSLRequest answered
  `S` in clear, the startup and three statements inside TLS (the last one fails).

Each capture runs in its own empty folder /tmp/dockit-captures/<name> with a small fixed environment
(like captures/record.py) and leaves `captures/<name>.ltrace.<pid>.log` and `.ini`, plus
`captures/<name>.objects.json`: the objects the live run's summary held (decoded records, TLS sessions),
which a replay of the log must give again. The facts each must yield, checked by
tests/test_tls_captures.py, are in TLS_FACTS.md. The password is a throwaway: the server it was valid
for is deleted after the recording.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from lxml import etree

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from tests.tls_servers import HttpsServer, PrivateMariaDB, make_certificate  # noqa: E402

WORK = Path("/tmp/dockit-captures")
ENVIRONMENT = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}
MAX_BYTES = 300_000
USER, PASSWORD, DATABASE = "dockit_capture", "Thr0waway-tls-5d21", "dockit_capture"
STATEMENTS = [
    "SELECT title FROM books WHERE id <= 2 ORDER BY id",
    "UPDATE books SET title = 'Dune Messiah' WHERE id = 2",
    "SELECT COUNT(*) FROM books",
    "SELECT * FROM no_such_table",
]
PG_STATEMENTS = [
    "SELECT title FROM books ORDER BY id",
    "UPDATE books SET title = 'Dune Messiah' WHERE id = 1",
    "SELECT * FROM no_such_table",
]
HTTP_REQUEST = b"GET /gnutls HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
OBJECTS = ("Dockit_SqlQuery", "Dockit_DatabaseSession", "Dockit_HttpRequest", "Dockit_TlsSession")


def decoded_objects(xml: Path) -> list[dict]:
    """The summary's decoded objects, each as its class, attributes and children's text."""
    found = []
    for element in etree.parse(str(xml)).getroot().iter(*OBJECTS):
        found.append({
            "class": element.tag,
            "attributes": dict(element.attrib),
            "children": [[child.tag, dict(child.attrib), child.text] for child in element],
        })  # fmt: skip
    return found


def record(
    name: str, command: list[str], out: Path, expected_status: int, stdin: bytes | None = None
) -> Path:
    folder = WORK / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for old in glob.glob(str(out / f"{name}.ltrace.*")) + glob.glob(str(out / f"{name}.objects.json")):
        os.unlink(old)
    environment = dict(ENVIRONMENT)
    if os.environ.get("DOCKIT_SOURCE"):
        environment["PYTHONPATH"] = os.environ["DOCKIT_SOURCE"]
    with open(folder / "stdout.txt", "wb") as stdout, open(folder / "stderr.txt", "wb") as stderr:
        result = subprocess.run(
            [sys.executable, "-m", "dockit_core.cli", "-t", "ltrace", "-l", str(out / name), *command],
            cwd=folder, env=environment, input=stdin, stdout=stdout, stderr=stderr, timeout=300, check=False,
        )  # fmt: skip
    if result.returncode != expected_status:
        raise SystemExit(f"{name}: exit status {result.returncode}, expected {expected_status}: "
                         + (folder / "stderr.txt").read_text(errors="replace")[-2000:])  # fmt: skip
    (xml,) = glob.glob(str(out / f"{name}.ltrace.*.xml"))
    (out / f"{name}.objects.json").write_text(json.dumps(decoded_objects(Path(xml)), indent=1) + "\n")
    for extra in glob.glob(str(out / f"{name}.ltrace.*.xml")) + glob.glob(str(out / f"{name}.ltrace.*.txt")):
        os.unlink(extra)
    (log,) = glob.glob(str(out / f"{name}.ltrace.*.log"))
    size = os.path.getsize(log)
    if size > MAX_BYTES:
        raise SystemExit(f"{name}: {size} bytes, more than {MAX_BYTES}")
    print(f"{log}: {size} bytes")
    return Path(log)


def mariadb_tls(out: Path) -> None:
    server = PrivateMariaDB.start(WORK / "mariadb_tls_server")
    try:
        server.sql(
            f"CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'; CREATE DATABASE {DATABASE};"
            f"GRANT ALL ON {DATABASE}.* TO '{USER}'@'%';"
            f"CREATE TABLE {DATABASE}.books (id INT PRIMARY KEY, title VARCHAR(64));"
            f"INSERT INTO {DATABASE}.books VALUES (1, 'Dune'), (2, 'Children of Dune'), (3, 'Hyperion');"
        )
        defaults = WORK / "mariadb_tls.cnf"
        defaults.write_text(f"[client]\npassword={PASSWORD}\n")
        command = ["mariadb", f"--defaults-extra-file={defaults}", "-h", "127.0.0.1", "-P", str(server.port),
                   "-u", USER, "--ssl", DATABASE, "-e", "; ".join(STATEMENTS)]  # fmt: skip
        record("mariadb_tls", command, out, expected_status=1)
    finally:
        server.stop()
        shutil.rmtree(WORK / "mariadb_tls_server", ignore_errors=True)


def curl_https(out: Path) -> None:
    cert, key = make_certificate(WORK / "https_certificate")
    with HttpsServer(cert, key) as server:
        base = f"https://localhost:{server.port}"
        record("curl_https", ["curl", "-sk", f"{base}/books?id=1", f"{base}/missing"], out, expected_status=0)


def psql_tls(out: Path) -> None:
    from tests.pg_private import private_server

    with private_server() as server:
        subprocess.run(
            ["psql", "-X", "-q", "-h", server.socket_dir, "-p", str(server.port), "-U", "postgres", "-d",
             "postgres", "-v", "ON_ERROR_STOP=1", "-c",
             "CREATE TABLE books (id int PRIMARY KEY, title text); INSERT INTO books VALUES (1, 'Dune'), (2, 'Hyperion')"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        command = [
            "psql",
            "-X",
            f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres sslmode=require",
        ]
        for statement in PG_STATEMENTS:
            command += ["-c", statement]
        record("psql_tls", command, out, expected_status=1)


def gnutls_https(out: Path) -> None:
    cert, key = make_certificate(WORK / "https_certificate")
    with HttpsServer(cert, key) as server:
        command = ["gnutls-cli", "--insecure", "-p", str(server.port), "localhost"]
        record("gnutls_https", command, out, expected_status=0, stdin=HTTP_REQUEST)


RECORDERS = {
    "mariadb_tls": mariadb_tls,
    "curl_https": curl_https,
    "gnutls_https": gnutls_https,
    "psql_tls": psql_tls,
}


def main(argv: list[str]) -> None:
    out = HERE
    if argv[:1] == ["--out"]:
        out, argv = Path(argv[1]).resolve(), argv[2:]
    for name in argv or list(RECORDERS):
        RECORDERS[name](out)


if __name__ == "__main__":
    main(sys.argv[1:])
