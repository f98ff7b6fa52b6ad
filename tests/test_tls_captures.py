"""The committed TLS captures (captures/record_tls.py, captures/TLS_FACTS.md), replayed: the facts each
must yield, and the same objects as the live run that recorded it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import CAPTURES, replay

OBJECTS = ("Dockit_SqlQuery", "Dockit_DatabaseSession", "Dockit_HttpRequest", "Dockit_TlsSession")


def replayed(name: str, tmp_path: Path) -> tuple[etree._Element, Path]:
    logs = sorted(CAPTURES.glob(f"{name}.ltrace.*.log"))
    assert logs, f"captures/{name}.ltrace.<pid>.log is missing: run captures/record_tls.py"
    summary, result = replay(logs[-1], tmp_path)
    assert result.returncode == 0, result.stderr
    assert summary.statistics["UnparsedLines"] == "0"
    return summary.root, logs[-1]


def objects(root: etree._Element) -> list[dict]:
    return [
        {
            "class": e.tag,
            "attributes": dict(e.attrib),
            "children": [[c.tag, dict(c.attrib), c.text] for c in e],
        }
        for e in root.iter(*OBJECTS)
    ]


@pytest.mark.parametrize("name", ["mariadb_tls", "curl_https", "gnutls_https", "psql_tls"])
def test_replay_gives_the_live_runs_objects(name: str, tmp_path: Path) -> None:
    root, _log = replayed(name, tmp_path)
    assert objects(root) == json.loads((CAPTURES / f"{name}.objects.json").read_text())


def test_mariadb_tls(tmp_path: Path) -> None:
    root, log = replayed("mariadb_tls", tmp_path)
    text = log.read_text(errors="replace")
    assert "mariadb->SSL_set_fd(" in text and "mariadb->SSL_write(" in text
    assert [
        (q.findtext("Text"), q.get("Status"), q.get("Rows"), q.get("AffectedRows"), q.get("ErrorCode"))
        for q in root.iter("Dockit_SqlQuery")
    ] == [
        ("SELECT title FROM books WHERE id <= 2 ORDER BY id", "ok", "2", None, None),
        ("UPDATE books SET title = 'Dune Messiah' WHERE id = 2", "ok", None, "1", None),
        ("SELECT COUNT(*) FROM books", "ok", "1", None, None),
        ("SELECT * FROM no_such_table", "error", None, None, "1146"),
    ]
    (session,) = root.iter("Dockit_DatabaseSession")
    assert (session.get("User"), session.get("Database")) == ("dockit_capture", "dockit_capture")
    assert session.get("Encrypted") == "true" and session.get("TlsVersion") == "TLS 1.3"
    assert session.get("TlsCipher") == "TLS_AES_256_GCM_SHA384"
    assert {q.get("Session") for q in root.iter("Dockit_SqlQuery")} == {session.get("Id")}
    assert not session.get("Id").startswith("socket:-")
    (tls,) = root.iter("Dockit_TlsSession")
    assert tls.get("Protocol") == "mysql"
    assert "Thr0waway" not in etree.tostring(root, encoding="unicode")


def test_curl_https(tmp_path: Path) -> None:
    root, log = replayed("curl_https", tmp_path)
    assert "SSL_set_fd" not in log.read_text(errors="replace")
    assert [(e.get("Method"), e.get("Url"), e.get("Status")) for e in root.iter("Dockit_HttpRequest")] == [
        ("GET", "/books?id=1", "200"),
        ("GET", "/missing", "404"),
    ]
    (tls,) = root.iter("Dockit_TlsSession")
    assert (tls.get("ServerName"), tls.get("Version"), tls.get("Alpn"), tls.get("Protocol")) == (
        "localhost", "TLS 1.3", "h2,http/1.1", "http",
    )  # fmt: skip


def test_gnutls_https(tmp_path: Path) -> None:
    root, log = replayed("gnutls_https", tmp_path)
    assert "gnutls-cli->gnutls_transport_set_int2(" in log.read_text(errors="replace")
    (exchange,) = root.iter("Dockit_HttpRequest")
    assert (exchange.get("Method"), exchange.get("Url"), exchange.get("Status")) == ("GET", "/gnutls", "200")
    assert exchange.get("RequestBytes") == "60"
    (tls,) = root.iter("Dockit_TlsSession")
    assert (tls.get("Version"), tls.get("Protocol")) == ("TLS 1.3", "http")


def test_psql_tls(tmp_path: Path) -> None:
    root, log = replayed("psql_tls", tmp_path)
    text = log.read_text(errors="replace")
    assert text.count("->PQsendQuery(") == 3 and "->SSL_write(" in text
    assert [
        (q.findtext("Text"), q.get("Status"), q.get("Rows"), q.get("AffectedRows"), q.get("ErrorCode"))
        for q in root.iter("Dockit_SqlQuery")
    ] == [
        ("SELECT title FROM books ORDER BY id", "ok", "2", None, None),
        ("UPDATE books SET title = 'Dune Messiah' WHERE id = 1", "ok", None, "1", None),
        ("SELECT * FROM no_such_table", "error", None, None, "42P01"),
    ]
    (session,) = root.iter("Dockit_DatabaseSession")
    assert (session.get("User"), session.get("Database"), session.get("Encrypted")) == (
        "postgres",
        "postgres",
        "true",
    )
    assert (session.get("TlsVersion"), session.get("TlsCipher")) == ("TLS 1.3", "TLS_AES_256_GCM_SHA384")
    assert {q.get("Session") for q in root.iter("Dockit_SqlQuery")} == {session.get("Id")}
    (tls,) = root.iter("Dockit_TlsSession")
    assert tls.get("Protocol") == "postgresql"
