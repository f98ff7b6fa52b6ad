"""Authentication, encryption and cancel requests, against a private PostgreSQL instance (tests/pg_private.py:
MD5, SCRAM-SHA-256 and cleartext passwords, a rejected user, TLS), recorded through a relay and traced
live. The exchange is recorded as happening (the session's Authentication), never its content: no
password, hash, salt or SASL message reaches an output, and the calls that carried them are hidden."""

from __future__ import annotations

import os
import threading
import time

import pytest

from decoders.api import ChannelInfo, Chunk, Direction
from decoders.records import Annotation, Secret, TlsSession
from protocols import postgres as p
from tests.conftest import run_dockit
from tests.pg_helpers import decode, needs, queries, sessions
from tests.pg_private import PASSWORDS, private_server
from tests.relay import Relay, split

pytestmark = pytest.mark.skipif(
    not __import__("shutil").which("openssl"), reason="the private server's certificate needs openssl"
)


@pytest.fixture(scope="module")
def server():
    with private_server() as running:
        relay = Relay(("127.0.0.1", running.port))
        yield {"server": running, "relay": relay}
        relay.close()


def login(server, user: str, password: str | None = None, sslmode: str = "disable"):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(host="127.0.0.1", port=server["relay"].port, user=user, password=password,
                           dbname="postgres", sslmode=sslmode, autocommit=True)  # fmt: skip


@pytest.mark.parametrize(
    ("user", "method"), [("md5_user", "md5"), ("scram_user", "SCRAM-SHA-256"), ("clear_user", "password")]
)
def test_password_methods(server, user: str, method: str) -> None:
    with login(server, user, PASSWORDS[user]) as conn:
        conn.execute("SELECT current_user").fetchone()
        backend = conn.info.backend_pid
    recording = server["relay"].last()
    for mode in ("whole", "bytes"):
        out = decode(split(recording.chunks(), mode), recording.channel(False))
        (session,) = sessions(out)
        assert (session.user, session.extra["Authentication"], session.extra["BackendPid"]) == (
            user,
            method,
            backend,
        )
        assert [q.text for q in queries(out)] == ["SELECT current_user"]
        text = repr(out)
        assert PASSWORDS[user] not in text
        secret_calls = {o.call_index for o in out if isinstance(o, Secret)}
        # Every call that carried an authentication message but the final "ok" is hidden.
        expected = set()
        for index, chunk in enumerate(recording.chunks()):
            if chunk.direction is Direction.OUT and chunk.data[:1] == b"p":
                expected.add(index)
            if chunk.direction is Direction.IN and chunk.data[:1] == b"R" and chunk.data[5:9] != b"\0\0\0\0":
                if int.from_bytes(chunk.data[5:9], "big") in (
                    p.AUTH_MD5,
                    p.AUTH_SASL_CONTINUE,
                    p.AUTH_SASL_FINAL,
                ):
                    expected.add(index)
        if mode == "whole":
            assert secret_calls == expected and expected
    if method == "md5":
        salt_call = next(c for c in recording.chunks() if c.data[:1] == b"R")
        assert salt_call.data[5:9] == p.AUTH_MD5.to_bytes(4, "big")


def test_wrong_password_and_rejected_user(server) -> None:
    import psycopg

    with pytest.raises(psycopg.OperationalError) as wrong:
        login(server, "scram_user", "not-the-password")
    recording = server["relay"].last()
    (session,) = sessions(decode(recording.chunks(), recording.channel(False)))
    assert 'password authentication failed for user "scram_user"' in str(wrong.value)
    assert session.extra["LoginError"] == '28P01 password authentication failed for user "scram_user"'
    assert "not-the-password" not in repr(session)

    with pytest.raises(psycopg.OperationalError) as rejected:
        login(server, "refused_user")
    recording = server["relay"].last()
    (session,) = sessions(decode(recording.chunks(), recording.channel(False)))
    assert 'pg_hba.conf rejects connection for host "127.0.0.1", user "refused_user"' in str(rejected.value)
    assert session.extra["LoginError"].startswith('28000 pg_hba.conf rejects connection for host "127.0.0.1"')


def test_ssl_accepted_then_tls(server) -> None:
    with login(server, "postgres", sslmode="require") as conn:
        conn.execute("SELECT 1").fetchone()
        version = conn.execute("SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()[0]
    recording = server["relay"].last()
    out = decode(recording.chunks(), recording.channel(False))
    (session,) = sessions(out)
    assert session.extra["Encrypted"] == "true"
    assert session.user is None  # the startup travelled inside TLS
    assert queries(out) == []
    (tls,) = [o for o in out if isinstance(o, TlsSession)]
    assert (tls.version, version) == ("TLS 1.3", "TLSv1.3")
    notes = [o.text for o in out if isinstance(o, Annotation)]
    assert notes[:2] == ["postgresql SSLRequest", "postgresql SSL accepted: the rest is TLS"]


def test_ssl_refused_goes_on_in_clear() -> None:
    """The machine's server has ssl=off: libpq's sslmode=prefer asks, hears N, and starts in clear."""
    import psycopg

    from tests.pg_helpers import requires_server

    if requires_server.args[0]:
        pytest.skip(requires_server.kwargs["reason"])
    relay = Relay(("127.0.0.1", 5432))
    try:
        with psycopg.connect(
            host="127.0.0.1", port=relay.port, user="postgres", dbname="postgres", sslmode="prefer"
        ) as conn:
            conn.execute("SELECT 7").fetchone()
        recording = relay.last()
    finally:
        relay.close()
    out = decode(recording.chunks(), recording.channel(False))
    (session,) = sessions(out)
    assert (session.user, session.extra["Encrypted"]) == ("postgres", "false")
    assert [q.text for q in queries(out)] == ["BEGIN", "SELECT 7", "COMMIT"]  # psycopg: a transaction
    assert "postgresql SSLRequest refused: the session goes on in clear" in [
        o.text for o in out if isinstance(o, Annotation)
    ]


def test_cancel_request(server) -> None:
    import psycopg

    with server["relay"].lock:
        server["relay"].recordings.clear()
    with login(server, "postgres") as conn:
        backend = conn.info.backend_pid
        timer = threading.Timer(0.5, conn.cancel)
        timer.start()
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("SELECT pg_sleep(20)")
        timer.join()
    time.sleep(0.1)
    cancel, main = sorted(server["relay"].take(2), key=lambda r: len(r.stream("c2s")))
    (cancel_session,) = sessions(decode(cancel.chunks(), cancel.channel(False)))
    assert cancel_session.extra["CancelBackendPid"] == backend
    out = decode(main.chunks(), main.channel(False))
    (sleep,) = [q for q in queries(out) if q.text == "SELECT pg_sleep(20)"]
    assert (sleep.status, sleep.error_code, sleep.error_message) == (
        "error",
        "57014",
        "canceling statement due to user request",
    )


def test_gssenc_refused_then_startup() -> None:
    """libpq asks for GSSAPI encryption only with a Kerberos ticket; the exchange, built by hand."""
    client = p.build_ssl_request(p.GSSENC_REQUEST)
    startup = p.build_startup({"user": "u", "database": "d"})
    channel = ChannelInfo(channel_id="t", kind="tcp", remote="127.0.0.1:5432", remote_port=5432, pid=1)
    chunks = [
        Chunk(data=client, direction=Direction.OUT, time=1.0, pid=1, size=len(client), call_index=0),
        Chunk(data=b"N", direction=Direction.IN, time=1.1, pid=1, size=1, call_index=1),
        Chunk(data=startup, direction=Direction.OUT, time=1.2, pid=1, size=len(startup), call_index=2),
        Chunk(data=p.build_authentication(0) + p.build_ready_for_query(), direction=Direction.IN, time=1.3, pid=1,
              size=14, call_index=3),
    ]  # fmt: skip
    (session,) = sessions(decode(chunks, channel))
    assert (session.user, session.database, session.extra["Encrypted"]) == ("u", "d", "false")


def test_live_psql_password_never_in_outputs(server, tmp_path) -> None:
    """psql with SCRAM, traced live: the password (from PGPASSWORD) is in no output but the raw log, and
    `--each-call` shows the authentication calls without their buffers."""
    needs("psql", "strace")
    running = server["server"]
    env = dict(os.environ, PGPASSWORD=PASSWORDS["scram_user"], PGSSLMODE="disable", HOME=str(tmp_path))
    prefix = tmp_path / "scram"
    result = run_dockit("--each-call", "-l", str(prefix), "psql", "-X", "-h", "127.0.0.1", "-p", str(running.port),
                        "-U", "scram_user", "-d", "postgres", "-c", "SELECT 'scram ok'", env=env, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    outputs = {path.name: path.read_text(errors="replace") for path in tmp_path.iterdir() if path.is_file()}
    for name, text in outputs.items():
        if name.endswith(".log"):
            continue
        assert PASSWORDS["scram_user"] not in text, name
        assert "SCRAM-SHA-256$" not in text and "n,,n=" not in text and "c=biws" not in text, name
    summary = next(text for name, text in outputs.items() if name.endswith(".xml"))
    assert 'Authentication="SCRAM-SHA-256"' in summary and 'User="scram_user"' in summary
    assert "<Text>SELECT 'scram ok'</Text>" in summary
    calls = next(text for name, text in outputs.items() if name.endswith(".txt"))
    assert calls.count("<credentials redacted>") >= 4  # SASLInitialResponse, SASLResponse, continue, final
