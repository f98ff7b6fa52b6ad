"""The committed HTTP/2, gRPC and DNS captures (captures/record_h2dns.py, captures/H2DNS_FACTS.md),
replayed: the facts each must yield, and the same objects as the live run that recorded it."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from lxml import etree

from tests import grpc_service
from tests.conftest import CAPTURES, replay
from tests.h2dns_servers import expected_answer

OBJECTS = ("Dockit_HttpRequest", "Dockit_RpcCall", "Dockit_DnsQuery", "Dockit_Socket")
NAMES = ["h2_nghttp", "h2_upgrade", "grpc_reflection", "dns_dig", "dns_resolved"]


def replayed(name: str, tmp_path: Path) -> tuple[etree._Element, Path]:
    logs = sorted(CAPTURES.glob(f"{name}.strace.*.log")) + sorted(CAPTURES.glob(f"{name}.strace.*.log.gz"))
    assert logs, f"captures/{name}.strace.<pid>.log is missing: run captures/record_h2dns.py"
    summary, result = replay(logs[-1], tmp_path)
    assert summary.statistics["UnparsedLines"] == "0"
    assert summary.statistics["DecoderProblems"] == "0"
    return summary.root, logs[-1]


def objects(root: etree._Element) -> list[dict]:
    return [
        {
            "class": e.tag,
            "attributes": dict(e.attrib),
            "children": [[c.tag, dict(c.attrib), c.text] for c in e],
        }
        for e in root.iter(*OBJECTS)
        if e.tag != "Dockit_Socket" or e.get("RemoteName") is not None
    ]


@pytest.mark.parametrize("name", NAMES)
def test_replay_gives_the_live_runs_objects(name: str, tmp_path: Path) -> None:
    root, log = replayed(name, tmp_path)
    assert objects(root) == json.loads((CAPTURES / f"{name}.objects.json").read_text())
    assert log.stat().st_size < 300_000


def requests(root: etree._Element) -> list[tuple]:
    return [
        (r.get("Method"), r.get("Url"), r.get("Status"), r.get("Version"))
        for r in root.iter("Dockit_HttpRequest")
    ]


def test_h2_nghttp(tmp_path: Path) -> None:
    root, _ = replayed("h2_nghttp", tmp_path)
    rows = {r.get("Url"): r for r in root.iter("Dockit_HttpRequest")}
    assert sorted(requests(root)) == [
        ("GET", "/hello", "200", "2"),
        ("GET", "/missing", "404", "2"),
        ("GET", "/pushed", "200", "2"),
        ("GET", "/style.css", "200", "2"),
    ]
    assert [rows[u].get("Stream") for u in ("/hello", "/missing", "/pushed")] == ["13", "15", "17"]
    assert rows["/style.css"].get("Pushed") == "true" and int(rows["/style.css"].get("Stream")) % 2 == 0
    assert (
        rows["/style.css"].get("ContentType") == "text/css"
        and rows["/pushed"].get("ContentType") == "text/html"
    )


def test_h2_upgrade(tmp_path: Path) -> None:
    root, _ = replayed("h2_upgrade", tmp_path)
    assert requests(root) == [("GET", "/hello", "101", "1.1"), ("GET", "/hello", "200", "2")]
    upgrade, stream = root.iter("Dockit_HttpRequest")
    assert (
        stream.get("Stream") == "1"
        and stream.get("Complete") is None
        and stream.get("Start") == upgrade.get("Start")
    )


def test_grpc_reflection(tmp_path: Path) -> None:
    root, log = replayed("grpc_reflection", tmp_path)
    calls = [c for c in root.iter("Dockit_RpcCall") if c.get("Service") == grpc_service.SERVICE]
    rows = [
        (
            c.get("Method"),
            c.get("Streaming"),
            int(c.get("RequestMessages")),
            int(c.get("ResponseMessages")),
            int(c.get("Code")),
        )
        for c in calls
    ]
    assert rows == grpc_service.CALLS
    assert {c.get("StreamingFrom") for c in calls} == {"schema"} and {c.get("Protocol") for c in calls} == {
        "grpc"
    }
    assert (calls[1].get("CodeName"), calls[1].get("Error")) == ("NOT_FOUND", "no item 404")
    assert abs(float(calls[0].get("Deadline")) - 5.0) < 0.05  # grpc-timeout as the client sent it
    reflection = [
        c
        for c in root.iter("Dockit_RpcCall")
        if c.get("Service") == "grpc.reflection.v1alpha.ServerReflection"
    ]
    assert reflection and "CANCEL" in {c.get("Reset") for c in reflection}
    fields = {
        f.get("Name"): f.get("Value") for f in calls[0].iter("Field") if f.get("Direction") == "response"
    }
    assert (fields["name"], fields["kind"], fields["delta"], fields["owner.password"]) == (
        "hammer",
        "TOOL",
        "-3",
        "<redacted>",
    )
    assert grpc_service.OWNER_PASSWORD.encode() in gzip.decompress(log.read_bytes())
    assert grpc_service.OWNER_PASSWORD not in etree.tostring(root).decode()


def dns_rows(root: etree._Element) -> list[tuple]:
    return [
        (q.get("Name"), q.get("Type"), q.get("Rcode"), q.get("Addresses"), q.get("Transport"))
        for q in root.iter("Dockit_DnsQuery")
    ]


def test_dns_dig(tmp_path: Path) -> None:
    root, _ = replayed("dns_dig", tmp_path)
    assert expected_answer("nx.example.test", "A") == ("NXDOMAIN", [])
    assert dns_rows(root) == [
        ("www.example.test", "A", "NOERROR", "127.0.0.1", "udp"),
        ("nx.example.test", "A", "NXDOMAIN", None, "udp"),
        ("mail.example.test", "MX", "NOERROR", None, "udp"),
        ("www.example.test", "AAAA", "NOERROR", "::1", "tcp"),
    ]
    mx = next(q for q in root.iter("Dockit_DnsQuery") if q.get("Type") == "MX")
    assert [a.get("Value") for a in mx.iter("Answer")] == expected_answer("mail.example.test", "MX")[1]
    assert len({q.get("Server") for q in root.iter("Dockit_DnsQuery")}) == 1


def test_dns_resolved(tmp_path: Path) -> None:
    root, _ = replayed("dns_resolved", tmp_path)
    assert sorted(dns_rows(root)) == [
        ("api.example.test", "A", "NOERROR", "127.0.0.1", "udp"),
        ("api.example.test", "AAAA", "NOERROR", "::1", "udp"),
    ]
    assert {q.get("Server") for q in root.iter("Dockit_DnsQuery")} == {"127.0.0.1:53"}
    tcp = [
        s
        for s in root.iter("Dockit_Socket")
        if s.get("Family") == "tcp" and s.get("Remote") == "127.0.0.1:8080"
    ]
    assert [s.get("RemoteName") for s in tcp] == ["api.example.test"]
    assert requests(root) == [("GET", "/hello", "200", "1.1")]
    assert next(root.iter("Dockit_HttpRequest")).get("Host") == "api.example.test:8080"
