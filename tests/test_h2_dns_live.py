"""dockit tracing real HTTP/2, gRPC and DNS clients live, as a user runs it (`dockit -l PREFIX COMMAND`),
against servers the tests start: hypercorn (tests/h2_app.py) for curl (`--http2-prior-knowledge`,
`--http2`'s Upgrade, and over TLS with ALPN h2 under ltrace) and nghttp (server push); the gRPC service of
tests/grpc_service.py for grpcio's client (reflection, or `--proto`); the dnslib server of
tests/h2dns_servers.py for dig (UDP and TCP), dnspython's resolver, and glibc's resolver (getent,
Python's getaddrinfo) in a network namespace of the test's own whose /etc/resolv.conf names it: the
traced program's connection then carries the name it resolved (`RemoteName`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from tests import grpc_service
from tests.conftest import run_dockit
from tests.h2dns_servers import (
    ROOT,
    ZONE,
    dns_server,
    expected_answer,
    free_port,
    grpc_client_command,
    grpc_code,
    grpc_server,
    hypercorn_server,
)

pytestmark = pytest.mark.live


class Run:
    def __init__(
        self, prefix: Path, result: subprocess.CompletedProcess[str], tracer: str = "strace"
    ) -> None:
        assert "Traceback" not in result.stderr, result.stderr
        (xml,) = sorted(prefix.parent.glob(f"{prefix.name}.{tracer}.*.xml"))
        self.xml = xml
        self.root = etree.parse(str(xml)).getroot()
        self.stderr = result.stderr

    def objects(self, cim_class: str) -> list[dict[str, str]]:
        return [dict(e.attrib) for e in self.root.iter(cim_class)]

    def elements(self, cim_class: str) -> list[etree._Element]:
        return list(self.root.iter(cim_class))


def trace(tmp_path: Path, name: str, command: list[str], *options: str, tracer: str = "strace") -> Run:
    prefix = tmp_path / name
    result = run_dockit("-l", str(prefix), *options, *command, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    return Run(prefix, result, tracer)


def requests(run: Run) -> list[tuple[str, str, str, str]]:
    return [(r["Method"], r["Url"], r["Status"], r["Version"]) for r in run.objects("Dockit_HttpRequest")]


@pytest.fixture(scope="module")
def h2_port() -> Iterator[int]:
    with hypercorn_server() as port:
        yield port


@pytest.fixture(scope="module")
def dns_port() -> Iterator[int]:
    with dns_server() as port:
        yield port


def test_curl_prior_knowledge(tmp_path: Path, h2_port: int) -> None:
    """curl with prior knowledge (one URL a run: curl 7.88 and hypercorn do not agree on a second stream
    of one connection, which curl reports as its error 16 whatever dockit does)."""
    base = f"http://127.0.0.1:{h2_port}"
    run = trace(
        tmp_path,
        "h2c",
        ["curl", "-s", "--http2-prior-knowledge", "--data-binary", "x" * 3000, f"{base}/echo"],
    )
    assert requests(run) == [("POST", "/echo", "200", "2")]
    (echo,) = run.objects("Dockit_HttpRequest")
    assert echo["Stream"] == "1" and echo["Side"] == "client" and echo["Server"] == f"127.0.0.1:{h2_port}"
    assert (
        int(echo["RequestBytes"]) > 3000
        and int(echo["ResponseBytes"]) > 3000
        and float(echo["Duration"]) >= 0
    )
    missing = trace(tmp_path, "h2c404", ["curl", "-s", "--http2-prior-knowledge", f"{base}/missing"])
    assert requests(missing) == [("GET", "/missing", "404", "2")]


def test_nghttp_streams(tmp_path: Path, h2_port: int) -> None:
    base = f"http://127.0.0.1:{h2_port}"
    run = trace(
        tmp_path, "nghttp", ["nghttp", "-n", f"{base}/hello", f"{base}/missing", f"{base}/big?n=50000"]
    )
    assert sorted(requests(run)) == [
        ("GET", "/big?n=50000", "200", "2"),
        ("GET", "/hello", "200", "2"),
        ("GET", "/missing", "404", "2"),
    ]
    assert sorted(r["Stream"] for r in run.objects("Dockit_HttpRequest")) == [
        "13",
        "15",
        "17",
    ]  # nghttp's first streams


def test_curl_upgrade_to_h2c(tmp_path: Path, h2_port: int) -> None:
    run = trace(tmp_path, "upgrade", ["curl", "-s", "--http2", f"http://127.0.0.1:{h2_port}/hello"])
    assert requests(run) == [("GET", "/hello", "101", "1.1"), ("GET", "/hello", "200", "2")]


def test_nghttp_server_push(tmp_path: Path, h2_port: int) -> None:
    run = trace(tmp_path, "push", ["nghttp", "-n", f"http://127.0.0.1:{h2_port}/pushed"])
    pushed = {r["Url"]: r.get("Pushed") for r in run.objects("Dockit_HttpRequest")}
    assert pushed == {"/pushed": None, "/style.css": "true"}


def test_httpx_concurrent_streams(tmp_path: Path, h2_port: int) -> None:
    script = textwrap.dedent(f"""
        import asyncio, httpx
        async def main():
            async with httpx.AsyncClient(http1=False, http2=True, base_url="http://127.0.0.1:{h2_port}") as c:
                await asyncio.gather(*(c.get(f"/hello?n={{n}}") for n in range(5)), c.post("/echo", content=b"z" * 5000))
        asyncio.run(main())
    """)
    run = trace(tmp_path, "httpx", [sys.executable, "-c", script])
    got = sorted(requests(run))
    assert got == sorted(
        [("GET", f"/hello?n={n}", "200", "2") for n in range(5)] + [("POST", "/echo", "200", "2")]
    )
    echo = next(r for r in run.objects("Dockit_HttpRequest") if r["Url"] == "/echo")
    assert int(echo["RequestBytes"]) > 5000 and int(echo["ResponseBytes"]) > 5000


@pytest.fixture(scope="module")
def grpc_folder() -> Iterator[str]:
    with grpc_code() as folder:
        yield folder


def rpc_rows(run: Run) -> list[tuple]:
    return [
        (
            r["Method"],
            r["Streaming"],
            int(r["RequestMessages"]),
            int(r["ResponseMessages"]),
            int(r.get("Code", -1)),
        )
        for r in run.objects("Dockit_RpcCall")
        if r["Service"] == grpc_service.SERVICE
    ]


def test_grpc_client_with_reflection(tmp_path: Path, grpc_folder: str) -> None:
    with grpc_server(grpc_folder, reflection=True) as port:
        run = trace(tmp_path, "grpc", grpc_client_command(grpc_folder, port, reflection=True))
    assert rpc_rows(run) == grpc_service.CALLS
    calls = [c for c in run.elements("Dockit_RpcCall") if c.get("Service") == grpc_service.SERVICE]
    assert {c.get("StreamingFrom") for c in calls} == {"schema"}  # learned from the reflection replies
    error = calls[1]
    assert (error.get("Status"), error.get("CodeName"), error.get("Error")) == (
        "error",
        "NOT_FOUND",
        "no item 404",
    )
    names = {
        f.get("Name"): f.get("Value") for f in calls[0].iter("Field") if f.get("Direction") == "response"
    }
    assert names["name"] == "hammer" and names["kind"] == "TOOL" and names["owner.password"] == "<redacted>"
    assert grpc_service.OWNER_PASSWORD not in run.xml.read_text()


def test_grpc_client_with_proto_option(tmp_path: Path, grpc_folder: str) -> None:
    with grpc_server(grpc_folder, reflection=False) as port:
        proto = os.path.join(grpc_folder, "inventory.proto")
        run = trace(tmp_path, "grpcproto", grpc_client_command(grpc_folder, port), "--proto", proto)
        described = trace(
            tmp_path,
            "grpcdesc",
            grpc_client_command(grpc_folder, port),
            "--proto",
            os.path.join(grpc_folder, "inventory.desc"),
        )
    for each in (run, described):
        assert rpc_rows(each) == grpc_service.CALLS
        assert {c["StreamingFrom"] for c in each.objects("Dockit_RpcCall")} == {"schema"}
        fields = [f.get("Name") for f in each.root.iter("Field") if f.get("Direction") == "request"]
        assert "id" in fields and "name" in fields


def test_proto_option_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.proto"
    bad.write_text("syntax = 'proto3'; message {")
    for path, says in (
        (bad, "protoc failed"),
        (tmp_path / "none.proto", "no such file"),
        (Path("/etc/hostname"), "neither"),
    ):
        result = run_dockit("--proto", str(path), "-l", str(tmp_path / "x"), "true", cwd=tmp_path)
        assert result.returncode == 2 and says in result.stderr and "Traceback" not in result.stderr


def dns_rows(run: Run) -> list[tuple]:
    return [
        (q["Name"], q["Type"], q.get("Rcode"), q.get("Addresses")) for q in run.objects("Dockit_DnsQuery")
    ]


def zone_row(name: str, kind: str) -> tuple:
    rcode, values = expected_answer(name, kind)
    addresses = [v for v in values if ":" in v or v.replace(".", "").isdigit()]
    return (name, kind, rcode, " ".join(addresses) or None)


def test_dig_udp_and_tcp(tmp_path: Path, dns_port: int) -> None:
    dig = ["dig", "@127.0.0.1", "-p", str(dns_port), "+tries=1"]
    udp = trace(
        tmp_path, "dig", dig + ["www.example.test", "A", "nx.example.test", "A", "mail.example.test", "MX"]
    )
    assert dns_rows(udp) == [
        zone_row("www.example.test", "A"),
        zone_row("nx.example.test", "A"),
        zone_row("mail.example.test", "MX"),
    ]
    assert {q["Transport"] for q in udp.objects("Dockit_DnsQuery")} == {"udp"}
    assert {q["Server"] for q in udp.objects("Dockit_DnsQuery")} == {f"127.0.0.1:{dns_port}"}
    tcp = trace(tmp_path, "digtcp", dig + ["+tcp", "www.example.test", "AAAA"])
    assert dns_rows(tcp) == [zone_row("www.example.test", "AAAA")]
    assert tcp.objects("Dockit_DnsQuery")[0]["Transport"] == "tcp"


def test_dnspython_resolver(tmp_path: Path, dns_port: int) -> None:
    script = textwrap.dedent(f"""
        import dns.resolver
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers, resolver.port = ["127.0.0.1"], {dns_port}
        print([a.to_text() for a in resolver.resolve("alias.example.test", "A")])
        print([a.to_text() for a in resolver.resolve("note.example.test", "TXT")])
    """)
    run = trace(tmp_path, "dnspython", [sys.executable, "-c", script])
    assert dns_rows(run) == [zone_row("alias.example.test", "A"), zone_row("note.example.test", "TXT")]
    (alias, _note) = run.elements("Dockit_DnsQuery")
    assert [(a.get("Type"), a.get("Value")) for a in alias.iter("Answer")] == [
        ("CNAME", "www.example.test"),
        ("A", "127.0.0.1"),
    ]
    socket = next(s for s in run.objects("Dockit_Socket") if s.get("Family") == "udp" and s.get("Remote"))
    assert socket["Remote"] == f"127.0.0.1:{dns_port}"  # an unconnected socket: where it first sent


def netns_available() -> str | None:
    if os.geteuid() != 0:
        return "a network namespace needs root"
    if not shutil.which("unshare") or not shutil.which("ip"):
        return "unshare and ip (util-linux, iproute2) are needed"
    probe = subprocess.run(
        ["unshare", "-f", "-p", "-n", "-m", "--mount-proc", "true"], capture_output=True, check=False
    )
    return None if probe.returncode == 0 else f"unshare refused: {probe.stderr.decode()[:200]}"


def in_netns(tmp_path: Path, script: str) -> None:
    """Run `script` in a network, mount and pid namespace of its own: only a loopback, a DNS server on
    127.0.0.1:53, hypercorn on 127.0.0.1:8080, and an /etc/resolv.conf naming that server. Every
    process in it ends with it (the pid namespace's first process is the script)."""
    reason = netns_available()
    if reason:
        pytest.skip(reason)
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions attempts:1 timeout:2\n")
    body = textwrap.dedent(f"""
        set -e
        ip link set lo up
        mount --bind {resolv} /etc/resolv.conf
        cd {ROOT}
        {sys.executable} -c 'import time; from tests.h2dns_servers import dns_server; cm = dns_server(53); cm.__enter__(); time.sleep(600)' &
        {sys.executable} -m hypercorn tests.h2_app:app --bind 127.0.0.1:8080 >/dev/null 2>&1 &
        for _ in $(seq 50); do {sys.executable} -c 'import socket; socket.create_connection(("127.0.0.1", 8080)).close()' 2>/dev/null && break; sleep 0.1; done
        cd {tmp_path}
    """) + textwrap.dedent(script)
    done = subprocess.run(["unshare", "-f", "-p", "-n", "-m", "--mount-proc", "sh", "-c", body],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONPATH=ROOT), check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


def test_glibc_resolver_and_remote_name(tmp_path: Path) -> None:
    """getent (gethostbyname: AAAA then A), getent ahosts (getaddrinfo: A and AAAA in one sendmmsg) and
    a Python program that resolves a name and connects to it: each lookup is a Dockit_DnsQuery, and the
    connection's socket is named by the lookup (RemoteName)."""
    client = "import http.client as h; c = h.HTTPConnection('api.example.test', 8080); c.request('GET', '/hello'); print(c.getresponse().status)"
    dockit = f"{sys.executable} -m dockit_core.cli"
    in_netns(
        tmp_path,
        f"""
        {dockit} -l {tmp_path}/getent getent hosts www.example.test
        {dockit} -l {tmp_path}/ahosts getent ahosts www.example.test
        {dockit} -l {tmp_path}/connect {sys.executable} -c "{client}"
    """,
    )
    getent = Run(tmp_path / "getent", subprocess.CompletedProcess([], 0, "", ""))
    assert dns_rows(getent)[0] == zone_row("www.example.test", "AAAA")
    assert {q["Server"] for q in getent.objects("Dockit_DnsQuery")} == {"127.0.0.1:53"}
    ahosts = Run(tmp_path / "ahosts", subprocess.CompletedProcess([], 0, "", ""))
    assert sorted(dns_rows(ahosts)) == sorted(
        [zone_row("www.example.test", "A"), zone_row("www.example.test", "AAAA")]
    )
    connect = Run(tmp_path / "connect", subprocess.CompletedProcess([], 0, "", ""))
    assert sorted(dns_rows(connect)) == sorted(
        [zone_row("api.example.test", "A"), zone_row("api.example.test", "AAAA")]
    )
    tcp = [
        s
        for s in connect.objects("Dockit_Socket")
        if s.get("Family") == "tcp" and s.get("Remote") == "127.0.0.1:8080"
    ]
    assert [s.get("RemoteName") for s in tcp] == ["api.example.test"]
    assert requests(connect) == [("GET", "/hello", "200", "1.1")]
    dns_sockets = [s for s in connect.objects("Dockit_Socket") if s.get("Remote") == "127.0.0.1:53"]
    assert dns_sockets and all("RemoteName" not in s for s in dns_sockets)
    assert ZONE[("api.example.test", "A")] == ["127.0.0.1"]


@pytest.mark.skipif(not shutil.which("ltrace"), reason="ltrace is needed to see the TLS plaintext")
def test_h2_over_tls_with_alpn(tmp_path: Path) -> None:
    """curl over HTTPS negotiates h2 by ALPN: under ltrace the plaintext continues the socket's
    conversation and ALPN hands it to the HTTP/2 decoder."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-subj", "/CN=localhost", "-days", "1"], check=True, capture_output=True)  # fmt: skip
    port = free_port()
    env = dict(os.environ, PYTHONPATH=ROOT)
    server = subprocess.Popen([sys.executable, "-m", "hypercorn", "tests.h2_app:app", "--bind", f"127.0.0.1:{port}",
                               "--certfile", str(cert), "--keyfile", str(key)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        from tests.h2dns_servers import wait_port

        wait_port(port)
        base = f"https://127.0.0.1:{port}"
        run = trace(
            tmp_path,
            "tls",
            ["curl", "-sk", "--http2", f"{base}/hello", f"{base}/missing"],
            "-t",
            "ltrace",
            tracer="ltrace",
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert requests(run) == [("GET", "/hello", "200", "2"), ("GET", "/missing", "404", "2")]
    (session,) = run.objects("Dockit_TlsSession")
    assert session["Protocol"] == "http2" and "h2" in session["Alpn"]


@pytest.mark.skipif(not shutil.which("ltrace"), reason="ltrace is needed to see the TLS plaintext")
def test_dns_over_tls(tmp_path: Path) -> None:
    """dnspython's DNS over TLS under ltrace: the plaintext continues the socket's conversation, and the
    DNS decoder reads it as TCP's length-prefixed messages (`Transport="tls"`)."""
    from tests.h2dns_servers import dot_server

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-subj", "/CN=localhost", "-days", "1"], check=True, capture_output=True)  # fmt: skip
    with dot_server(str(cert), str(key)) as port:
        script = textwrap.dedent(f"""
            import ssl, dns.message, dns.query
            context = ssl.create_default_context(cafile="{cert}")
            context.check_hostname = False
            for name in ("www.example.test", "nx.example.test"):
                dns.query.tls(dns.message.make_query(name, "A"), "127.0.0.1", port={port}, ssl_context=context, timeout=10)
        """)
        run = trace(tmp_path, "dot", [sys.executable, "-c", script], "-t", "ltrace", tracer="ltrace")
    assert dns_rows(run) == [zone_row("www.example.test", "A"), zone_row("nx.example.test", "A")]
    assert {q["Transport"] for q in run.objects("Dockit_DnsQuery")} == {"tls"}
    assert {s["Protocol"] for s in run.objects("Dockit_TlsSession")} == {"dns"}
