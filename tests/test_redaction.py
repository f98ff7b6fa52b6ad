"""Secrets never reach an output other than the tracer's own .log."""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from decoders.redact import redact_sql
from dockit_core.outputs.redaction import redact_argv, redact_call_arguments, redact_text
from tests.conftest import run_dockit

SECRET = "Zq8-very-secret-7Hk"


def test_command_line_passwords() -> None:
    assert redact_argv(["mariadb", "-u", "bob", f"-p{SECRET}", "test"]) == [
        "mariadb",
        "-u",
        "bob",
        "-p<redacted>",
        "test",
    ]
    assert redact_argv(["curl", "-u", f"bob:{SECRET}", f"http://bob:{SECRET}@h/x"]) == [
        "curl",
        "-u",
        "bob:<redacted>",
        "http://bob:<redacted>@h/x",
    ]
    assert redact_argv(["tool", "--password", SECRET, f"--token={SECRET}", f"DB_PASSWORD={SECRET}"]) == [
        "tool",
        "--password",
        "<redacted>",
        "--token=<redacted>",
        "DB_PASSWORD=<redacted>",
    ]
    # Not passwords: -p of mkdir, a port, a plain URL.
    assert redact_argv(["mkdir", "-p", "/tmp/x"]) == ["mkdir", "-p", "/tmp/x"]
    assert redact_argv(["curl", "http://h:8080/a"]) == ["curl", "http://h:8080/a"]


def test_header_values_in_strace_buffers() -> None:
    buffer = (
        rf'3, "GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Basic {SECRET}\r\nCookie: s={SECRET}\r\n\r\n", 90'
    )
    cleaned = redact_text(buffer)
    assert SECRET not in cleaned
    assert r"Host: h\r\n" in cleaned and r"Authorization: <redacted>\r\n" in cleaned
    execve = f'"/usr/bin/mariadb", ["mariadb", "-p{SECRET}", "-e", "select 1"], 0x7ffd /* 3 vars */'
    assert SECRET not in redact_call_arguments("execve", execve)


@pytest.mark.live
@pytest.mark.skipif(
    shutil.which("strace") is None or shutil.which("curl") is None, reason="needs strace and curl"
)
def test_traced_curl_keeps_credentials_out_of_every_output(tmp_path: Path) -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Set-Cookie", f"session={SECRET}")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        for prefix, calls_options in (("c", []), ("e", ["--each-call", "-f", "JSON"])):
            command = [
                sys.executable,
                "-m",
                "dockit_core.cli",
                "-l",
                str(tmp_path / prefix),
                *calls_options,
                "curl",
                "-s",
                "-u",
                f"bob:{SECRET}",
                "-H",
                f"X-Api-Key: {SECRET}",
                "-b",
                f"c={SECRET}",
                f"http://127.0.0.1:{port}/x?access_token={SECRET}&page=2",
            ]
            result = subprocess.run(command, capture_output=True, text=True, timeout=120)
            assert result.returncode == 0, result.stderr
    finally:
        server.shutdown()
    outputs = {path.name: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()}
    assert sum(name.endswith(".xml") for name in outputs) == 2 and any(name.endswith(".json") for name in outputs)
    (summary,) = tmp_path.glob("c.strace.*.xml")
    assert b'Url="/x?access_token=&lt;redacted&gt;&amp;page=2"' in summary.read_bytes()
    for name, content in outputs.items():
        if name.endswith(".log"):
            assert SECRET.encode() in content  # the raw trace is the user's own, and keeps everything
        else:
            assert SECRET.encode() not in content, f"{name} shows the secret"


def test_passwords_inside_sql() -> None:
    assert (
        redact_sql(f"alter user scott identified by {SECRET}")
        == "alter user scott identified by '<redacted>'"
    )
    assert SECRET not in redact_sql(f"CREATE USER 'a'@'%' IDENTIFIED BY '{SECRET}'; select 1")
    assert (
        redact_sql(f"SET PASSWORD FOR bob = PASSWORD('{SECRET}')")
        == "SET PASSWORD FOR bob = PASSWORD('<redacted>')"
    )
    assert redact_sql("select password from users") == "select password from users"


def test_recorded_environment_leaves_out_secrets_by_name() -> None:
    from dockit_core.outputs.ini import safe_environment

    kept = safe_environment(
        {
            "MYSQL_PWD": SECRET,
            "PGPASSWORD": SECRET,
            "GITHUB_TOKEN": SECRET,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "PWD": "/srv",
            "OLDPWD": "/",
            "LANG": "C.UTF-8",
        }
    )
    assert kept == {"PWD": "/srv", "OLDPWD": "/", "LANG": "C.UTF-8"}


@pytest.fixture
def admin():  # type: ignore[no-untyped-def]
    """A root connection to the local MariaDB, to create and drop the users a test needs."""
    pymysql = pytest.importorskip("pymysql")
    try:
        connection = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    except pymysql.err.OperationalError:
        pytest.skip("no MariaDB/MySQL server on 127.0.0.1:3306")
    yield connection
    connection.close()


@pytest.mark.live
@pytest.mark.skipif(
    shutil.which("strace") is None or shutil.which("mariadb") is None, reason="needs strace and mariadb"
)
def test_sampled_rows_never_show_password_hashes(tmp_path: Path, admin) -> None:  # type: ignore[no-untyped-def]
    """`--rows` prints row values: the values of columns named like secrets (authentication_string,
    password...) are redacted, the others kept. Real server, real hash."""
    import secrets as random_names

    user = f"dockit_rows_{random_names.token_hex(3)}"
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE USER '{user}'@'localhost' IDENTIFIED BY %s", (SECRET,))
        cursor.execute("SELECT authentication_string FROM mysql.user WHERE User = %s", (user,))
        (hash_text,) = cursor.fetchone()
    try:
        assert hash_text.startswith("*")  # mysql_native_password: the hash of SECRET
        sql = f"SELECT User, authentication_string, Password AS password FROM mysql.user WHERE User = '{user}'"
        command = [sys.executable, "-m", "dockit_core.cli", "-l", str(tmp_path / "m"), "--rows", "5",
                   "mariadb", "-h", "127.0.0.1", "-u", "root", "-e", sql]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert hash_text in result.stdout  # the program itself printed it: it crossed the socket
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP USER '{user}'@'localhost'")
    (summary,) = tmp_path.glob("m.strace.*.xml")
    text = summary.read_text()
    assert f"<Row>{user}\t&lt;redacted&gt;\t&lt;redacted&gt;</Row>" in text
    for path in tmp_path.iterdir():
        if path.is_file() and not path.name.endswith(".log"):
            assert hash_text not in path.read_text(errors="replace"), f"{path.name} shows the hash"


@pytest.mark.live
@pytest.mark.skipif(
    shutil.which("strace") is None or shutil.which("mariadb") is None, reason="needs strace and mariadb"
)
@pytest.mark.parametrize("calls_format", ["TXT", "JSON"])
def test_each_call_hides_login_packets_and_sql_passwords(tmp_path: Path, calls_format: str, admin) -> None:  # type: ignore[no-untyped-def]
    """`--each-call` prints each call's buffer: the MySQL login packet (the user's auth response) is
    shown without its bytes, and passwords inside SQL are redacted; the command line of a client given
    `CREATE USER ... IDENTIFIED BY '...'` too. Only the tracer's .log keeps them."""
    import secrets as random_names

    user = f"dockit_ec_{random_names.token_hex(4)}"
    password = f"pw{random_names.token_hex(6)}"
    other = f"dockit_ec2_{random_names.token_hex(4)}"
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", (password,))
    script = (
        "import pymysql\n"
        f"c = pymysql.connect(host='127.0.0.1', user='{user}', password='{password}')\n"
        "cur = c.cursor()\n"
        f"cur.execute(\"select password('{password}')\")\n"
        "cur.fetchall()\n"
    )
    try:
        for name, command in (
            ("py", [sys.executable, "-c", script]),
            ("cli", ["mariadb", "-h", "127.0.0.1", "-u", "root", "-e",
                     f"CREATE USER '{other}'@'%' IDENTIFIED BY '{password}'; DROP USER '{other}'@'%'"]),
        ):  # fmt: skip
            result = run_dockit("-l", str(tmp_path / name), "--each-call", "-f", calls_format, *command)
            assert result.returncode == 0, result.stderr
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP USER IF EXISTS '{user}'@'%'")
            cursor.execute(f"DROP USER IF EXISTS '{other}'@'%'")
    (py_log,) = tmp_path.glob("py.strace.*.log")
    assert user in py_log.read_text(errors="replace") and password in py_log.read_text(errors="replace")
    (py_calls,) = tmp_path.glob(f"py.strace.*.{calls_format.lower()}")
    calls = py_calls.read_text(errors="replace")
    assert "<credentials redacted>" in calls
    if calls_format == "JSON":
        arguments = [(r["call"], r["arguments"] or "") for r in json.loads(calls)]
    else:  # pid time name(arguments) = result ...  # decoded
        arguments = [(line.split("(", 1)[0], line.split("  # ")[0]) for line in calls.splitlines()]
    shown = [text for name, text in arguments if user in text and "execve" not in name]
    assert not shown, f"the login packet's bytes are shown: {shown}"
    for path in tmp_path.iterdir():
        if path.is_file() and not path.name.endswith(".log"):
            assert password not in path.read_text(errors="replace"), f"{path.name} shows the password"


def test_any_header_named_like_a_credential_is_hidden_in_argv_and_buffers() -> None:
    """Not only the well-known names: X-Vault-Token, X-Myapp-Api-Key... (decoders.redact's rule)."""
    assert redact_argv(["curl", "-H", "X-Vault-Token: s.abc123", "-H", "Accept: text/plain"]) == [
        "curl", "-H", "X-Vault-Token: <redacted>", "-H", "Accept: text/plain"]  # fmt: skip
    buffer = '3<TCP:[1]>, "GET / HTTP/1.1\\r\\nX-Myapp-Api-Key: k-123\\r\\nHost: h\\r\\n", 50'
    assert "k-123" not in redact_call_arguments("sendto", buffer)
    assert "Host: h" in redact_call_arguments("sendto", buffer)


@pytest.mark.live
@pytest.mark.skipif(
    shutil.which("strace") is None or shutil.which("mariadb") is None, reason="needs strace and mariadb"
)
def test_secret_columns_by_their_source_name_and_rows_in_each_call(tmp_path: Path, admin) -> None:  # type: ignore[no-untyped-def]
    """Issue 17: `SELECT api_token AS t` hid the token from `--rows` redaction (the alias says nothing):
    the column definition names its source column, and the value is redacted by it. In `--each-call`,
    the calls carrying rows of a secret column (a token, an auth hash, the value of PASSWORD('...'))
    are shown without their bytes. Real server, real rows; only the .log keeps them."""
    import secrets as random_names

    table = f"dockit_tokens_{random_names.token_hex(3)}"
    token = f"tok-{random_names.token_hex(12)}"
    user = f"dockit_hash_{random_names.token_hex(3)}"
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE TABLE test.{table} (id INT, api_token VARCHAR(64), note VARCHAR(20))")
        cursor.execute(f"INSERT INTO test.{table} VALUES (1, %s, 'plain')", (token,))
        cursor.execute(f"CREATE USER '{user}'@'localhost' IDENTIFIED BY %s", (SECRET,))
        cursor.execute("SELECT authentication_string, PASSWORD(%s) FROM mysql.user WHERE User = %s", (SECRET, user))
        hash_text, password_value = cursor.fetchone()
    sql = (
        f"SELECT id, api_token AS t, note FROM test.{table}; "
        f"SELECT authentication_string AS a FROM mysql.user WHERE User = '{user}'; "
        f"SELECT PASSWORD('{SECRET}') AS p"
    )
    try:
        for name, extra in (("rows", ["--rows", "5"]), ("each", ["--each-call", "-f", "JSON"])):
            result = run_dockit("-l", str(tmp_path / name), *extra, "mariadb", "-h", "127.0.0.1", "-u", "root",
                                "--skip-ssl", "-e", sql)  # fmt: skip
            assert result.returncode == 0, result.stderr
            assert token in result.stdout and hash_text in result.stdout  # they crossed the socket
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP TABLE test.{table}")
            cursor.execute(f"DROP USER '{user}'@'localhost'")
    (rows,) = tmp_path.glob("rows.strace.*.xml")
    assert "<Row>1\t&lt;redacted&gt;\tplain</Row>" in rows.read_text()
    (calls,) = tmp_path.glob("each.strace.*.json")
    records = json.loads(calls.read_text())
    on_socket = [r for r in records if (r["target"] or "").startswith("tcp:")]
    assert any("<credentials redacted>" in (r["arguments"] or "") for r in on_socket)
    assert not [r for r in on_socket if token in (r["arguments"] or "")]
    # (the client prints the token on its stdout, which the calls file shows as the program wrote it)
    for path in tmp_path.iterdir():
        if path.is_file() and not path.name.endswith(".log"):
            text = path.read_text(errors="replace")
            for secret in (hash_text, password_value):
                assert secret not in text, f"{path.name} shows {secret}"
    (log,) = tmp_path.glob("each.strace.*.log")
    assert token in log.read_text(errors="replace")
