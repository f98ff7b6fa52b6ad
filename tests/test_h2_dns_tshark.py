"""Wireshark as the independent check of the HTTP/2, gRPC and DNS decoders: tshark captures the loopback
while dockit traces a workload of real clients against the test's own servers (nghttp and httpx against
hypercorn, grpcio's client against the gRPC service, dig over UDP and TCP and dnspython against the
dnslib server). tshark is told the ports (`-d tcp.port==P,http2`, `-d udp.port==P,dns`): every request
its HTTP/2 dissector shows (method and path of each HEADERS and PUSH_PROMISE), every gRPC method (the
path of each call), every DNS question and every response code must be in dockit's summary, as many
times.

Rerun it by hand with `python3 -m pytest tests/test_h2_dns_tshark.py` (as root: tshark captures loopback).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest
from lxml import etree

from tests import grpc_service
from tests.conftest import run_dockit
from tests.h2dns_servers import dns_server, grpc_client_command, grpc_code, grpc_server, hypercorn_server
from tests.test_postgres_tshark import stop_capture, tshark_available

pytestmark = pytest.mark.live


def capture(pcap: Path, ports: list[int]) -> subprocess.Popen:
    import time

    capture_filter = " or ".join(f"port {port}" for port in ports)
    process = subprocess.Popen(
        ["tshark", "-i", "lo", "-f", capture_filter, "-w", str(pcap), "-q"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    assert process.stderr is not None
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if "Capturing on" in line or "Capture started" in line:
            return process
        if not line and process.poll() is not None:
            break
    process.kill()
    pytest.fail("tshark did not start capturing")


def layers(pcap: Path, display: str, decode_as: list[str], *names: str) -> list[dict[str, list[str]]]:
    command = ["tshark", "-r", str(pcap), "-Y", display, "-T", "json"]
    for rule in decode_as:
        command += ["-d", rule]
    for name in names:
        command += ["-e", name]
    result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)
    return [frame["_source"]["layers"] for frame in json.loads(result.stdout or "[]")]


def test_tshark_sees_nothing_dockit_misses(tmp_path: Path) -> None:
    reason = tshark_available()
    if reason:
        pytest.skip(reason)
    for tool in ("nghttp", "dig", "strace"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}")
    with (
        grpc_code() as folder,
        hypercorn_server() as h2_port,
        grpc_server(folder) as grpc_port,
        dns_server() as dns_port,
    ):
        httpx_script = textwrap.dedent(f"""
            import asyncio, httpx
            async def main():
                async with httpx.AsyncClient(http1=False, http2=True, base_url="http://127.0.0.1:{h2_port}") as c:
                    await asyncio.gather(*(c.get(f"/hello?n={{n}}") for n in range(3)), c.post("/echo", content=b"z" * 40000))
            asyncio.run(main())
        """)
        resolver_script = textwrap.dedent(f"""
            import dns.resolver
            r = dns.resolver.Resolver(configure=False)
            r.nameservers, r.port = ["127.0.0.1"], {dns_port}
            for name, kind in (("alias.example.test", "A"), ("note.example.test", "TXT"), ("www.example.test", "AAAA")):
                r.resolve(name, kind)
        """)
        (tmp_path / "httpx_work.py").write_text(httpx_script)
        (tmp_path / "resolver_work.py").write_text(resolver_script)
        base = f"http://127.0.0.1:{h2_port}"
        dig = f"dig @127.0.0.1 -p {dns_port} +tries=1"
        script = " ; ".join(
            [
                f"nghttp -n {base}/hello {base}/missing {base}/pushed {base}/big?n=30000",
                f"{sys.executable} httpx_work.py",
                " ".join(grpc_client_command(folder, grpc_port, reflection=True)),
                f"{dig} www.example.test A nx.example.test A mail.example.test MX",
                f"{dig} +tcp api.example.test AAAA",
                f"{sys.executable} resolver_work.py",
            ]
        )
        pcap = tmp_path / "loopback.pcap"
        process = capture(pcap, [h2_port, grpc_port, dns_port])
        try:
            result = run_dockit("-l", str(tmp_path / "work"), "sh", "-c", script, cwd=tmp_path, timeout=300)
        finally:
            stop_capture(process)
    assert result.returncode == 0, result.stderr
    root = etree.parse(str(next(tmp_path.glob("work.strace.*.xml")))).getroot()
    decode_as = [
        f"tcp.port=={h2_port},http2",
        f"tcp.port=={grpc_port},http2",
        f"udp.port=={dns_port},dns",
        f"tcp.port=={dns_port},dns",
    ]

    # HTTP/2: every request (HEADERS or PUSH_PROMISE with :method and :path), per server
    for port in (h2_port, grpc_port):
        seen: Counter = Counter()
        for frame in layers(
            pcap,
            f"http2.headers.method && tcp.port == {port}",
            decode_as,
            "http2.headers.method",
            "http2.headers.path",
        ):
            seen.update(
                zip(frame.get("http2.headers.method", []), frame.get("http2.headers.path", []), strict=True)
            )
        mine = Counter(
            (r.get("Method"), r.get("Url"))
            for r in root.iter("Dockit_HttpRequest")
            if r.get("Server", "").endswith(f":{port}")
        )
        assert seen, f"tshark saw no HTTP/2 request on {port}"
        assert mine == seen, (port, mine, seen)
    # gRPC: every method tshark saw called is a call in the summary
    calls = Counter(f"/{c.get('Service')}/{c.get('Method')}" for c in root.iter("Dockit_RpcCall"))
    grpc_paths = Counter(path for method, path in seen.elements())
    assert calls == grpc_paths
    methods = {method for method, *_ in grpc_service.CALLS}
    assert sum(calls[f"/{grpc_service.SERVICE}/{method}"] for method in methods) == len(grpc_service.CALLS)

    # DNS: every question asked, and every answer's response code
    questions: Counter = Counter()
    answers: Counter = Counter()
    types = {"1": "A", "28": "AAAA", "15": "MX", "16": "TXT", "5": "CNAME"}
    rcodes = {"0": "NOERROR", "3": "NXDOMAIN"}
    for frame in layers(
        pcap, "dns", decode_as, "dns.flags.response", "dns.qry.name", "dns.qry.type", "dns.flags.rcode"
    ):
        question = (frame["dns.qry.name"][0], types.get(frame["dns.qry.type"][0], frame["dns.qry.type"][0]))
        if frame["dns.flags.response"][0] in ("1", "True"):
            answers[(*question, rcodes.get(frame["dns.flags.rcode"][0], frame["dns.flags.rcode"][0]))] += 1
        else:
            questions[question] += 1
    mine_questions = Counter((q.get("Name"), q.get("Type")) for q in root.iter("Dockit_DnsQuery"))
    mine_answers = Counter(
        (q.get("Name"), q.get("Type"), q.get("Rcode")) for q in root.iter("Dockit_DnsQuery") if q.get("Rcode")
    )
    assert len(questions) == 7, questions
    assert mine_questions == questions
    assert mine_answers == answers
    assert os.path.getsize(pcap) > 0
