"""Redis over TLS (issue 12): redis-cli --tls (hiredis over OpenSSL) and redis-py with ssl=True (Python's
ssl module, OpenSSL too), traced live with `-t ltrace` against a private redis-server with a TLS port and a
self-signed certificate made by openssl (tests/tls_servers.py; the shared server stays as it is). The
commands are decoded from the plaintext that SSL_write/SSL_read carry, on the socket's own session
(`Encrypted="true"`, with the TLS version and cipher its handshake showed), and they are the same as the
same workload sent in clear to the same server's clear port under strace. The ltrace log replayed
gives the same objects.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import run_dockit

pytestmark = pytest.mark.live
needs_tools = pytest.mark.skipif(
    any(shutil.which(t) is None for t in ("ltrace", "strace", "redis-server", "redis-cli", "openssl")),
    reason="needs ltrace, strace, redis-server, redis-cli and openssl",
)
CLI_INPUT = "SET tls:a 1\nGET tls:a\nINCR tls:n\nHGET tls:a f\nHELLO 3\nHGETALL tls:none\n"
REDIS_PY = """
import sys, redis
port, tls = int(sys.argv[1]), sys.argv[2] == "tls"
r = redis.Redis(host="127.0.0.1", port=port, ssl=tls, ssl_cert_reqs="none", protocol=2)
pipe = r.pipeline(transaction=False)
pipe.set("tls:p", "1"); pipe.get("tls:p"); pipe.incr("tls:pn")
print(pipe.execute())
print(r.lrange("tls:none", 0, -1))
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):  # type: ignore[no-untyped-def]
    from tests.tls_servers import PrivateRedis

    if any(shutil.which(t) is None for t in ("redis-server", "redis-cli", "openssl")):
        pytest.skip("needs redis-server, redis-cli and openssl")
    started = PrivateRedis.start(tmp_path_factory.mktemp("redis-tls"))
    try:
        yield started
    finally:
        started.stop()


def run(tmp_path: Path, name: str, tracer: str, command: list[str]) -> etree._Element:
    prefix = tmp_path / name
    result = run_dockit("-t", tracer, "-l", str(prefix), *command, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    log = next(tmp_path.glob(f"{name}.{tracer}.*.log"))
    root = etree.parse(str(next(tmp_path.glob(f"{name}.{tracer}.*.xml")))).getroot()
    replayed = run_dockit("-i", str(log), "-l", str(tmp_path / f"{name}-replay"), cwd=tmp_path)
    assert replayed.returncode == 0, replayed.stderr
    again = etree.parse(str(next(tmp_path.glob(f"{name}-replay.xml")))).getroot()
    assert commands(again) == commands(root)  # the replay of the log gives the same commands
    return root


def commands(root: etree._Element) -> list[tuple]:
    return [
        (e.get("Command"), e.get("Status"), e.get("ReplyType"), e.get("ReplySize"),
         tuple(a.text for a in e.iter("Argument")))
        for e in root.iter("Dockit_RedisCommand")
        if e.get("Command") != "CLIENT SETINFO"
    ]  # fmt: skip


def redis_sessions(root: etree._Element) -> list[dict[str, str]]:
    return [dict(e.attrib) for e in root.iter("Dockit_DatabaseSession") if e.get("Protocol") == "redis"]


@needs_tools
def test_redis_cli_tls(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    found = {}
    for name, tracer, port, tls in (("clear", "strace", server.port, ""), ("tls", "ltrace", server.tls_port,
                                                                           "--tls --insecure")):  # fmt: skip
        script = f"printf '{CLI_INPUT}' | redis-cli {tls} -p {port}"
        found[name] = run(tmp_path, name, tracer, ["sh", "-c", script])
    tls, clear = found["tls"], found["clear"]
    assert commands(tls) == commands(clear)
    assert [(c[0], c[1], c[2]) for c in commands(tls)] == [
        ("COMMAND DOCS", "ok", "array"),  # redis-cli's hints, when it reads its stdin
        ("SET", "ok", "string"),
        ("GET", "ok", "bulk"),
        ("INCR", "ok", "integer"),
        ("HGET", "error", "error"),  # WRONGTYPE: the key holds a string
        ("HELLO", "ok", "map"),
        ("HGETALL", "ok", "map"),  # RESP3 after HELLO 3
    ]
    (session,) = redis_sessions(tls)
    assert session["Encrypted"] == "true" and session["TlsVersion"] == "TLS 1.3" and session["TlsCipher"]
    assert session["Server"] == f"127.0.0.1:{server.tls_port}" and session["ProtocolVersion"] == "3"
    (plain,) = redis_sessions(clear)
    assert plain["Encrypted"] == "false"
    (record,) = list(tls.iter("Dockit_TlsSession"))
    assert record.get("Protocol") == "redis" and int(record.get("PlaintextBytesIn")) > 100_000  # COMMAND DOCS


@needs_tools
def test_redis_py_ssl(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("redis")
    (tmp_path / "client.py").write_text(REDIS_PY)
    tls = run(tmp_path, "tls", "ltrace", [sys.executable, "client.py", str(server.tls_port), "tls"])
    clear = run(tmp_path, "clear", "strace", [sys.executable, "client.py", str(server.port), "clear"])
    assert commands(tls) == commands(clear)
    assert [(c[0], c[1], c[2], c[4]) for c in commands(tls)] == [
        ("SET", "ok", "string", ("tls:p", "1")),
        ("GET", "ok", "bulk", ("tls:p",)),
        ("INCRBY", "ok", "integer", ("tls:pn", "1")),
        ("LRANGE", "ok", "array", ("tls:none", "0", "-1")),
    ]
    (session,) = redis_sessions(tls)
    assert session["Encrypted"] == "true" and session["TlsVersion"] == "TLS 1.3"
    assert session["Server"] == f"127.0.0.1:{server.tls_port}"
