"""TCP reassembly with bytes alone (no capture file): whatever the order, copies and overlaps the
segments come in, the stream comes out whole, once, in order; a hole the capture never filled comes
out as lost bytes of the right size, and what follows it is still delivered."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dockit_core.ingest.pcap.frames import ACK, FIN, SYN, Segment
from dockit_core.ingest.pcap.reassembly import FlowClosed, FlowData, FlowOpened, Reassembler

CLIENT, SERVER = "10.0.0.1:40000", "10.0.0.2:3306"
ISN = (1 << 32) - 50  # the sequence numbers wrap inside the stream


def segment(seq: int, payload: bytes = b"", flags: int = ACK, source: str = CLIENT) -> Segment:
    destination = SERVER if source == CLIENT else CLIENT
    return Segment("tcp", source, destination, payload, seq % (1 << 32), 0, flags)


def run(segments: list[Segment]) -> tuple[list, Reassembler]:
    reassembler = Reassembler()
    events = []
    for number, each in enumerate(segments):
        events += reassembler.feed(each, 1000.0 + number)
    events += reassembler.finish(2000.0)
    return events, reassembler


def client_bytes(events: list) -> tuple[bytes, int]:
    """(the client's bytes with lost ones as '?', bytes lost)."""
    out, lost = b"", 0
    for event in events:
        if type(event) is FlowData and event.from_client:
            out += event.data + b"?" * (event.size - len(event.data))
            lost += event.size - len(event.data)
    return out, lost


@settings(max_examples=200, deadline=None)
@given(
    stream=st.binary(min_size=1, max_size=600),
    cuts=st.lists(st.integers(min_value=1, max_value=599), max_size=12),
    extra=st.lists(st.tuples(st.integers(0, 599), st.integers(1, 80)), max_size=5),
    order=st.randoms(use_true_random=False),
)
def test_any_order_copies_and_overlaps_give_the_stream_once(stream, cuts, extra, order) -> None:  # type: ignore[no-untyped-def]
    bounds = sorted({c for c in cuts if c < len(stream)} | {0, len(stream)})
    pieces = [segment(ISN + 1 + a, stream[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]
    pieces += [segment(ISN + 1 + a, stream[a : a + n]) for a, n in extra if a < len(stream)]  # overlaps
    pieces += pieces[: len(pieces) // 2]  # retransmissions
    order.shuffle(pieces)
    events, _ = run([segment(ISN, flags=SYN), *pieces, segment(ISN + 1 + len(stream), flags=FIN | ACK)])
    data, lost = client_bytes(events)
    assert (data, lost) == (stream, 0)
    assert type(events[0]) is FlowOpened and events[0].client == CLIENT and events[0].server == SERVER
    assert type(events[-1]) is FlowClosed


def test_a_lost_segment_is_a_hole_of_its_size_and_the_rest_follows() -> None:
    stream = b"first segment|LOST SEGMENT|third segment"
    a, b = stream.index(b"|") + 1, stream.index(b"|", stream.index(b"|") + 1) + 1
    events, reassembler = run([
        segment(ISN, flags=SYN),
        segment(ISN + 1, stream[:a]),
        segment(ISN + 1 + b, stream[b:]),  # the middle one never captured
    ])  # fmt: skip
    data, lost = client_bytes(events)
    assert data == stream[:a] + b"?" * (b - a) + stream[b:]
    assert lost == b - a == reassembler.stats["lost_bytes"]


def test_an_ack_past_a_hole_releases_what_waits_behind_it() -> None:
    """The server acknowledged bytes the capture missed: they are lost now, not at the flow's end."""
    reassembler = Reassembler()
    out = []
    for each in [segment(ISN, flags=SYN), segment(ISN + 1, b"abc"), segment(ISN + 7, b"ghi")]:
        out += reassembler.feed(each, 1.0)
    out += reassembler.feed(Segment("tcp", SERVER, CLIENT, b"", 4999, (ISN + 1) % (1 << 32), SYN | ACK), 1.0)
    assert client_bytes(out) == (b"abc", 0)  # ghi waits behind the hole
    out += reassembler.feed(Segment("tcp", SERVER, CLIENT, b"", 5000, (ISN + 10) % (1 << 32), ACK), 2.0)
    assert client_bytes(out) == (b"abc???ghi", 3)
