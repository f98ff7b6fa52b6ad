"""`dockit -i capture.pcap`: packet captures (pcap and pcapng, plain or gzip) read as traces without
processes. tshark captures the loopback while real clients talk to real servers; dockit's summary of
the capture is compared item by item with tshark's own dissection of the same file. A public sample
(the captures Debian's golang-github-google-gopacket-dev ships for its tests) is read too, and captures
mangled on purpose (segments out of order, retransmitted, overlapping, lost) test the reassembly."""

from __future__ import annotations

import gzip
import os
import random
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import mariadb_listening, run_dockit
from tests.tshark import (
    fields,
    loopback_capture,
    mysql_queries,
    needs_tshark,
    summary_queries,
    summary_requests,
)

GOPACKET = Path("/usr/share/gocode/src/github.com/google/gopacket/pcap")
needs_mariadb = pytest.mark.skipif(
    shutil.which("mariadb") is None or not mariadb_listening(), reason="needs mariadb and MariaDB on :3306"
)


def decode(capture: Path, out: Path, *extra: str) -> tuple[etree._Element, subprocess.CompletedProcess[str]]:
    result = run_dockit("-i", str(capture), "-l", str(out), *extra)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return etree.parse(f"{out}.xml").getroot(), result


@pytest.fixture(scope="module")
def live_capture(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One loopback capture of mariadb (TCP) and curl against an HTTP server, made by tshark."""
    if shutil.which("tshark") is None or shutil.which("curl") is None:
        pytest.skip("needs tshark and curl")
    if shutil.which("mariadb") is None or not mariadb_listening():
        pytest.skip("needs mariadb and MariaDB on 127.0.0.1:3306")
    folder = tmp_path_factory.mktemp("capture")
    table = f"bridges_{uuid.uuid4().hex[:10]}"
    server = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "0"],
                              cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    assert server.stdout is not None
    port = server.stdout.readline().split(" port ")[1].split(" ")[0]
    (folder / "page.html").write_text("hello")
    script = (
        f"create table {table} (id int primary key, item varchar(20)); "
        f"insert into {table} values (1, 'pen'), (2, 'ink'); "
        f"select id, item from {table} where id < 10; "
        f"update {table} set item = 'quill' where id = 1; "
        f"select concat('{table}', repeat('x', 3000)) as big; "
        f"select * from {table}_nosuch"  # mariadb -e stops at the first error: the last statement
    )
    pcap = folder / "live.pcapng"
    try:
        with loopback_capture(pcap, f"tcp port 3306 or tcp port {port}"):
            subprocess.run(["mariadb", "-h", "127.0.0.1", "-u", "root", "test", "-e", script],
                           capture_output=True, check=False)  # fmt: skip
            subprocess.run(["curl", "-s", f"http://127.0.0.1:{port}/page.html", f"http://127.0.0.1:{port}/gone"],
                           capture_output=True, check=True)  # fmt: skip
    finally:
        server.kill()
        server.wait()
        subprocess.run(["mariadb", "-h", "127.0.0.1", "-u", "root", "test", "-e", f"drop table if exists {table}"],
                       capture_output=True, check=False)  # fmt: skip
    return pcap, table, port


def ours(queries: list[str], table: str) -> list[str]:
    """This test's statements only: other engineers' tests use the same server meanwhile."""
    return [q for q in queries if table in q]


@pytest.mark.live
@needs_tshark
@pytest.mark.parametrize("form", ["pcapng", "pcap", "pcap.gz"])
def test_live_capture_decoded_as_tshark_dissects_it(live_capture, tmp_path: Path, form: str) -> None:  # type: ignore[no-untyped-def]
    pcap, table, port = live_capture
    if form != "pcapng":  # tcpdump's format, as tshark converts it, plain or gzip
        converted = tmp_path / "live.pcap"
        subprocess.run(["editcap", "-F", "pcap", str(pcap), str(converted)], check=True, capture_output=True)
        if form == "pcap.gz":
            gz = tmp_path / "live.pcap.gz"
            gz.write_bytes(gzip.compress(converted.read_bytes()))
            converted = gz
        pcap = converted
    root, result = decode(pcap, tmp_path / "out")
    theirs = ours(mysql_queries(pcap), table)
    assert len(theirs) == 6
    assert ours(summary_queries(tmp_path / "out.xml"), table) == theirs
    errors = {q.findtext("Text"): q.get("ErrorCode") for q in root.iter("Dockit_SqlQuery")}
    assert errors[f"select * from {table}_nosuch"] == "1146"
    # the 3000-byte result crossed in several segments: reassembled, its row counted
    big = [q for q in root.iter("Dockit_SqlQuery") if "repeat" in (q.findtext("Text") or "")]
    assert big and big[0].get("Rows") == "1" and big[0].get("Status") == "ok"
    requests = [r for r in summary_requests(tmp_path / "out.xml")]
    http = fields(
        pcap, "http.request.method", "http.request.uri", display_filter=f"http.request && tcp.port == {port}"
    )
    codes = fields(pcap, "http.response.code", display_filter=f"http.response && tcp.port == {port}")
    assert (
        [(m, u) for m, u, _ in requests]
        == [tuple(row) for row in http]
        == [("GET", "/page.html"), ("GET", "/gone")]
    )
    assert [s for _, _, s in requests] == [row[0] for row in codes] == ["200", "404"]
    # no process is known, and the summary and stderr say so
    capture = root.find("Dockit_Capture")
    assert capture is not None and "no processes" in capture.get("Processes")
    assert "shows no processes" in result.stderr
    assert root.find("CIM_Process") is None
    assert all(q.get("Process") == "0" for q in root.iter("Dockit_SqlQuery"))


@pytest.mark.skipif(
    not GOPACKET.is_dir(), reason="apt package golang-github-google-gopacket-dev (its test captures)"
)
@needs_tshark
@pytest.mark.parametrize("name", ["test_ethernet.pcap", "test_loopback.pcap"])
def test_public_sample_captures(tmp_path: Path, name: str) -> None:
    """gopacket's test captures: an Ethernet IPv4 HTTP exchange, and a BSD-loopback IPv6 one."""
    capture = GOPACKET / name
    _root, _result = decode(capture, tmp_path / "sample")
    requests = summary_requests(tmp_path / "sample.xml")
    theirs = fields(capture, "http.request.method", "http.request.uri", display_filter="http.request")
    codes = fields(capture, "http.response.code", display_filter="http.response")
    assert requests
    assert [(m, u) for m, u, _ in requests] == [tuple(row) for row in theirs]
    assert [s for _, _, s in requests] == [row[0] for row in codes]


# -- reassembly: captures mangled on purpose -----------------------------------------------------------
def mangle(source: Path, target: Path, table: str, how: str) -> int:
    """Rewrite the capture with scapy: the client's segments of this test's statements split, reordered,
    retransmitted and overlapping ("shuffle"), or the first one dropped ("drop"). Returns the payload
    bytes dropped."""
    from scapy.layers.inet import IP, TCP
    from scapy.packet import Raw
    from scapy.utils import PcapNgWriter, rdpcap

    packets = rdpcap(str(source))
    out = []
    dropped = 0
    rng = random.Random(7)
    marker = table.encode()
    for packet in packets:
        payload = bytes(packet[TCP].payload) if packet.haslayer(TCP) else b""
        if not (
            packet.haslayer(TCP) and packet[TCP].dport == 3306 and marker in payload and len(payload) > 24
        ):
            out.append(packet)
            continue
        if how == "drop" and not dropped:
            dropped = len(payload)
            continue
        if how == "drop":
            out.append(packet)
            continue
        pieces = []
        cuts = sorted(rng.sample(range(1, len(payload)), 3))
        for start, end in zip([0, *cuts], [*cuts, len(payload)], strict=True):
            piece = packet.copy()
            piece[TCP].seq = (packet[TCP].seq + start) % (1 << 32)
            piece[TCP].remove_payload()
            piece[TCP].add_payload(Raw(payload[start:end]))
            del piece[IP].len, piece[IP].chksum, piece[TCP].chksum
            pieces.append(piece)
        overlap = packet.copy()  # bytes 2..12 again, as a sender that re-segments retransmits them
        overlap[TCP].seq = (packet[TCP].seq + 2) % (1 << 32)
        overlap[TCP].remove_payload()
        overlap[TCP].add_payload(Raw(payload[2:12]))
        del overlap[IP].len, overlap[IP].chksum, overlap[TCP].chksum
        order = [pieces[2], pieces[0], overlap, pieces[3], pieces[0], pieces[1]]  # out of order, a copy twice
        out += order
    writer = PcapNgWriter(str(target))
    for packet in out:
        writer.write(packet)
    writer.close()
    return dropped


@pytest.mark.live
@needs_tshark
def test_reordered_retransmitted_overlapping_segments(live_capture, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pcap, table, _port = live_capture
    mangled = tmp_path / "shuffled.pcapng"
    mangle(pcap, mangled, table, "shuffle")
    root, _ = decode(mangled, tmp_path / "shuffled")
    assert ours(summary_queries(tmp_path / "shuffled.xml"), table) == ours(mysql_queries(pcap), table)
    capture = root.find("Dockit_Capture")
    assert int(capture.get("Retransmitted")) >= 6 and capture.get("LostBytes") == "0"


@pytest.mark.live
@needs_tshark
def test_lost_segment_marked_cut_and_decoding_goes_on(live_capture, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pcap, table, _port = live_capture
    mangled = tmp_path / "lossy.pcapng"
    dropped = mangle(pcap, mangled, table, "drop")
    assert dropped
    root, _ = decode(mangled, tmp_path / "lossy")
    expected = ours(mysql_queries(pcap), table)
    # the lost statement is missing (or unreadable); every later one is decoded again
    assert (
        ours(summary_queries(tmp_path / "lossy.xml"), table)
        == expected[1:]
        == ours(mysql_queries(mangled), table)
    )
    assert int(root.find("Dockit_Capture").get("LostBytes")) >= dropped


# -- bad input -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content, message",
    [
        (b"\xd4\xc3\xb2\xa1\x02\x00", "cut"),
        (
            b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00"
            + bytes(12)
            + b"\x01\x00\x00\x00"
            + bytes(8)
            + b"\xff\xff\xff\x7f" * 2,
            "claims",
        ),  # fmt: skip
        (b"\x0a\x0d\x0d\x0a\xff\xff\xff\x7f\x4d\x3c\x2b\x1a", "claims"),
        (b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00junk", "byte-order"),
    ],
)
def test_damaged_capture_is_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(content)
    result = run_dockit("-i", str(bad), "-l", str(tmp_path / "bad"))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr
    assert not os.path.exists(tmp_path / "bad.xml")


def test_capture_given_with_other_logs_is_refused(tmp_path: Path) -> None:
    if not GOPACKET.is_dir():
        pytest.skip("needs golang-github-google-gopacket-dev's captures")
    log = tmp_path / "x.log"
    log.write_text("1 0.1 exit_group(0) = ?\n")
    result = run_dockit("-i", str(GOPACKET / "test_ethernet.pcap"), str(log), "-l", str(tmp_path / "o"))
    assert result.returncode == 2 and "replay it alone" in result.stderr


@pytest.mark.skipif(
    not GOPACKET.is_dir(), reason="apt package golang-github-google-gopacket-dev (its test captures)"
)
@needs_tshark
def test_udp_flows_of_a_public_sample(tmp_path: Path) -> None:
    """gopacket's DNS capture: each UDP conversation tshark numbers is one flow, one socket, with the
    datagrams' bytes."""
    capture = GOPACKET / "test_dns.pcap"
    root, _result = decode(capture, tmp_path / "dns")
    streams = fields(capture, "udp.stream", "ip.src", "udp.srcport", "ip.dst", "udp.dstport", "udp.length")
    sockets = {(s.get("Local"), s.get("Remote")): int(s.get("BytesOut")) + int(s.get("BytesIn"))
               for s in root.iter("Dockit_Socket")}  # fmt: skip
    expected: dict[tuple[str, str], int] = {}
    for _stream, src, sport, dst, dport, length in streams:
        key = (f"{src}:{sport}", f"{dst}:{dport}")
        expected[key] = expected.get(key, 0) + int(length) - 8
    assert sockets == expected
    assert root.find("Dockit_Capture").get("Flows") == str(len({row[0] for row in streams}))
