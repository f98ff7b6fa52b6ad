"""The DNS decoder, sans-IO, on real exchanges with the test DNS server (dnslib, tests/h2dns_servers.py):
queries built by dnspython, sent over a real UDP socket (each datagram a chunk, as the tracker feeds
them) and over TCP through the relay (length-prefixed, split every way). Expected answers come from the
server's zone (ZONE), never from the decoder. Then the server's side, cut datagrams, garbage, a
compression loop, and hypothesis on the parser.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders.api import ChannelInfo, Chunk, Direction
from decoders.dns import DnsDecoder
from decoders.registry import Registry
from decoders.testing import assert_never_raises, assert_same_records, decode, garbage
from protocols import dns
from tests.h2dns_servers import ZONE, dns_server, expected_answer
from tests.relay import Recording, Relay

dnsmessage = pytest.importorskip("dns.message")

QUESTIONS = [
    ("www.example.test", "A"),
    ("www.example.test", "AAAA"),
    ("alias.example.test", "A"),
    ("mail.example.test", "MX"),
    ("note.example.test", "TXT"),
    ("nx.example.test", "A"),
]


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    with dns_server() as port:
        yield port


def udp_exchange(port: int, questions: list[tuple[str, str]]) -> tuple[list[Chunk], ChannelInfo]:
    """Each query sent in a datagram of its own, each answer received likewise, in a real socket."""
    chunks: list[Chunk] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("127.0.0.1", port))
        sock.settimeout(5)
        for name, kind in questions:
            query = dnsmessage.make_query(name, kind).to_wire()
            sock.send(query)
            chunks.append(
                Chunk(
                    data=query,
                    direction=Direction.OUT,
                    time=time.time(),
                    pid=7,
                    size=len(query),
                    call_index=len(chunks) + 1,
                )
            )
            answer = sock.recv(4096)
            chunks.append(
                Chunk(
                    data=answer,
                    direction=Direction.IN,
                    time=time.time(),
                    pid=7,
                    size=len(answer),
                    call_index=len(chunks) + 1,
                )
            )
        host, local_port = sock.getsockname()
        local = f"{host}:{local_port}"
    channel = ChannelInfo(channel_id="udp-test", kind="udp", local=local, remote=f"127.0.0.1:{port}",
                          local_port=int(local.rsplit(":", 1)[1]), remote_port=port, pid=7)  # fmt: skip
    return chunks, channel


def expected(questions: list[tuple[str, str]]) -> list[tuple]:
    rows = []
    for name, kind in questions:
        rcode, values = expected_answer(name, kind)
        rows.append((name, kind, rcode, len(values)))
    return rows


def table(decoded) -> list[tuple]:  # type: ignore[no-untyped-def]
    return decoded.table("Name", "Type", "Rcode", "Answers")


def test_udp_queries_and_answers(server: int) -> None:
    chunks, channel = udp_exchange(server, QUESTIONS)
    decoded = decode(DnsDecoder, chunks, channel)
    assert table(decoded) == expected(QUESTIONS)
    by = {(r.attr("Name"), r.attr("Type")): r for r in decoded.records}
    www = by[("www.example.test", "A")]
    assert (
        www.attr("Addresses") == "127.0.0.1" and www.attr("Status") == "ok" and www.attr("Transport") == "udp"
    )
    assert (
        www.attr("Server") == f"127.0.0.1:{server}"
        and www.attr("Side") == "client"
        and www.attr("Duration") >= 0
    )
    assert by[("www.example.test", "AAAA")].attr("Addresses") == "::1"
    alias = [dict(c.attrs) for c in by[("alias.example.test", "A")].children]
    assert [(a["Type"], a["Value"]) for a in alias] == [("CNAME", "www.example.test"), ("A", "127.0.0.1")]
    assert [dict(c.attrs)["Value"] for c in by[("mail.example.test", "MX")].children] == [
        "10 mx.example.test"
    ]
    assert [dict(c.attrs)["Value"] for c in by[("note.example.test", "TXT")].children] == ["hello dns"]
    nx = by[("nx.example.test", "A")]
    assert nx.attr("Status") == "error" and nx.attr("Rcode") == "NXDOMAIN" and nx.attr("Addresses") is None
    assert decoded.notes()[0] == "dns A www.example.test"


def test_detected_on_any_port(server: int) -> None:
    chunks, channel = udp_exchange(server, QUESTIONS[:1])
    chosen = Registry.default(plugins=False).choose(chunks[0].data, Direction.OUT, channel)
    assert chosen is DnsDecoder


def test_server_side_and_answers_out_of_order(server: int) -> None:
    chunks, channel = udp_exchange(server, QUESTIONS[:2])
    # glibc sends A and AAAA together and takes the answers as they come
    reordered = [chunks[0], chunks[2], chunks[3], chunks[1]]
    decoded = decode(DnsDecoder, reordered, channel)
    assert sorted(table(decoded)) == sorted(expected(QUESTIONS[:2]))
    flipped = [
        Chunk(
            data=c.data,
            direction=c.direction.reverse(),
            time=c.time,
            pid=c.pid,
            size=c.size,
            call_index=c.call_index,
        )
        for c in chunks
    ]
    server_side = ChannelInfo(
        channel_id="s", kind="udp", local=channel.remote, remote=channel.local, listening=False, pid=9
    )
    decoded = decode(DnsDecoder, flipped, server_side)
    assert table(decoded) == expected(QUESTIONS[:2])
    assert {r.attr("Side") for r in decoded.records} == {"server"}


def test_tcp_through_a_relay_every_split(server: int) -> None:
    import dns.query

    relay = Relay(("127.0.0.1", server))
    for name, kind in QUESTIONS:
        dns.query.tcp(dnsmessage.make_query(name, kind), "127.0.0.1", port=relay.port, timeout=5)
    recordings: list[Recording] = relay.take(len(QUESTIONS))
    rows = []
    for recording in recordings:
        chunks = recording.chunks()
        decoded = assert_same_records(DnsDecoder, chunks, recording.channel(False), seeds=range(3))
        assert {r.attr("Transport") for r in decoded.records} == {"tcp"}
        rows += table(decoded)
    assert sorted(rows) == sorted(expected(QUESTIONS))


def test_a_cut_answer_is_marked(server: int) -> None:
    chunks, channel = udp_exchange(server, QUESTIONS[:1])
    answer = chunks[1]
    cut = Chunk(
        data=answer.data[:30],
        direction=answer.direction,
        time=answer.time,
        pid=7,
        size=answer.size,
        call_index=2,
    )
    decoded = decode(DnsDecoder, [chunks[0], cut], channel)
    (record,) = decoded.records
    assert record.attr("Truncated") == "true" and record.attr("Name") == "www.example.test"


def test_unanswered_at_close() -> None:
    query = dns.query("lost.example.test")
    decoded = decode(DnsDecoder, [Chunk(data=query, direction=Direction.OUT, time=1.0, pid=1, size=len(query), call_index=1)],
                     ChannelInfo(channel_id="u", kind="udp", remote="127.0.0.1:53", remote_port=53))  # fmt: skip
    assert table(decoded) == [("lost.example.test", "A", None, None)]
    assert decoded.records[0].attr("Status") == "unknown"


def test_pending_queries_are_bounded() -> None:
    decoder = DnsDecoder(ChannelInfo(channel_id="u", kind="udp", remote="127.0.0.1:53", remote_port=53))
    out = []
    for n in range(1000):
        data = dns.query(f"q{n}.example.test", 1, n)
        out += decoder.feed(
            Chunk(data=data, direction=Direction.OUT, time=1.0, pid=1, size=len(data), call_index=n)
        )
    assert len(decoder.pending) <= 256
    assert sum(1 for o in out if getattr(o, "cim_class", "") == "Dockit_DnsQuery") == 1000 - 256


def test_compression_loops_and_garbage_never_raise() -> None:
    loop = bytes.fromhex("1234 0100 0001 0000 0000 0000") + b"\xc0\x0c" + b"\x00\x01\x00\x01"
    assert dns.parse(loop) is None or not dns.parse(loop).questions
    forward = (
        bytes.fromhex("1234 8180 0001 0001 0000 0000")
        + b"\x01a\x00\x00\x01\x00\x01"
        + b"\xc0\x30\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x7f\x00\x00\x01"
    )
    assert dns.parse(forward) is not None and not dns.parse(forward).complete
    for kind in ("udp", "tcp"):
        channel = ChannelInfo(channel_id="g", kind=kind)
        assert_never_raises(DnsDecoder, [garbage(seed) for seed in range(30)], channel)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_parser_never_raises(data: bytes) -> None:
    message = dns.parse(data)
    if message is not None:
        assert len(message.answers) <= dns.MAX_RECORDS
    dns.looks_like_query(data)
    dns.looks_like_response(data)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(ZONE)), st.integers(0, 60))
def test_mutated_answers_never_raise(question: tuple[str, str], flip: int) -> None:
    name, kind = question
    query = dnsmessage.make_query(name, kind)
    data = bytearray(dnsmessage.make_response(query).to_wire())
    if flip < len(data):
        data[flip] ^= 0xFF
    dns.parse(bytes(data))
