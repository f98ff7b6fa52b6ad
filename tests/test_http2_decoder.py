"""The HTTP/2 decoder, sans-IO, on real conversations recorded through a relay: httpx (HTTP/2 by prior
knowledge, concurrent streams), curl `--http2` (HTTP/1.1 Upgrade to h2c), nghttp (server push) against
hypercorn serving tests/h2_app.py, and grpcio's client against the gRPC service of
tests/grpc_service.py (with and without reflection). Fed whole, byte by byte, in random splits, seen
from the server's side, cut as `strace -s` cuts, cut mid-frame, and garbage. What each request must
give comes from what the test asked and what the app answers (tests/h2_app.py), never from the decoder.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from decoders.api import Chunk, Direction
from decoders.http import HttpDecoder
from decoders.http2 import Http2Decoder
from decoders.http2 import decoder as h2decoder
from decoders.records import HttpExchange
from decoders.testing import assert_never_raises, assert_same_records, decode, garbage, reversed_directions
from protocols import http2 as h2
from protocols import protobuf as pb
from tests import grpc_service
from tests.h2dns_servers import grpc_client_command, grpc_code, grpc_server, hypercorn_server
from tests.relay import Recording, Relay, cut

httpx = pytest.importorskip("httpx")
pytest.importorskip("h2")

BODY = bytes(range(256)) * 12  # 3072 bytes posted to /echo
# (method, path, status) of the httpx session, in the order sent (the three last concurrently)
HTTPX_REQUESTS = [
    ("GET", "/hello", 200),
    ("POST", "/echo", 200),
    ("GET", "/missing", 404),
    ("GET", "/big?n=70000", 200),
    ("GET", "/hello?a=1", 200),
    ("GET", "/style.css", 200),
]


def _run(command: list[str]) -> None:
    subprocess.run(command, check=True, capture_output=True)


def _record(relay: Relay, run) -> Recording:  # type: ignore[no-untyped-def]
    run()
    (recording,) = relay.take(1)
    return recording


@pytest.fixture(scope="module")
def h2_server() -> Iterator[int]:
    with hypercorn_server() as port:
        yield port


@pytest.fixture(scope="module")
def httpx_session(h2_server: int) -> Recording:
    relay = Relay(("127.0.0.1", h2_server))

    async def session() -> None:
        async with httpx.AsyncClient(
            http1=False, http2=True, base_url=f"http://127.0.0.1:{relay.port}"
        ) as client:
            assert (await client.get("/hello")).status_code == 200
            assert (await client.post("/echo", content=BODY)).content == BODY
            assert (await client.get("/missing")).status_code == 404
            answers = await asyncio.gather(
                client.get("/big?n=70000"), client.get("/hello?a=1"), client.get("/style.css")
            )
            assert [len(a.content) for a in answers] == [70000, 6, 21]

    return _record(relay, lambda: asyncio.run(session()))


@pytest.fixture(scope="module")
def upgrade_session(h2_server: int) -> Recording:
    relay = Relay(("127.0.0.1", h2_server))
    return _record(relay, lambda: _run(["curl", "-sf", "--http2", f"http://127.0.0.1:{relay.port}/hello"]))


@pytest.fixture(scope="module")
def push_session(h2_server: int) -> Recording:
    relay = Relay(("127.0.0.1", h2_server))
    return _record(relay, lambda: _run(["nghttp", "-n", f"http://127.0.0.1:{relay.port}/pushed"]))


@pytest.fixture(scope="module")
def grpc_folder() -> Iterator[str]:
    with grpc_code() as folder:
        yield folder


@pytest.fixture(scope="module", params=[True, False], ids=["reflection", "no-schema"])
def grpc_session(request: pytest.FixtureRequest, grpc_folder: str) -> tuple[Recording, bool]:
    reflection = request.param
    with grpc_server(grpc_folder, reflection=True) as port:
        relay = Relay(("127.0.0.1", port))
        return _record(
            relay, lambda: _run(grpc_client_command(grpc_folder, relay.port, reflection))
        ), reflection


def _requests(decoded) -> list[tuple]:  # type: ignore[no-untyped-def]
    return sorted(
        (r.attr("Method"), r.attr("Url"), r.attr("Status"))
        for r in decoded.records
        if r.cim_class == "Dockit_HttpRequest"
    )


def test_httpx_streams_are_requests(httpx_session: Recording) -> None:
    decoded = decode(Http2Decoder, httpx_session.chunks(), httpx_session.channel(False))
    assert _requests(decoded) == sorted(HTTPX_REQUESTS)
    records = {r.attr("Url"): r for r in decoded.records}
    for record in records.values():
        assert record.attr("Version") == "2" and record.attr("Side") == "client"
        assert record.attr("Complete") is None and record.attr("Truncated") is None
        assert record.attr("Duration") >= 0 and record.attr("Stream") % 2 == 1
    # bytes: the request's DATA carried the body, plus frame headers and the header block
    assert records["/echo"].attr("RequestBytes") > len(BODY) + 9
    assert records["/big?n=70000"].attr("ResponseBytes") > 70000 + 5 * 9
    assert records["/missing"].attr("ContentType") == "text/plain"
    headers = [dict(c.attrs) for c in records["/hello"].children]
    assert {"Name": "server", "Value": "hypercorn-h2", "Direction": "response"} in headers
    # every stream is a note in the calls file, on the call that carried its HEADERS
    assert sorted(n for n in decoded.notes() if n.startswith("http2")) == sorted(
        f"http2 {m} {p}" for m, p, _ in HTTPX_REQUESTS
    )


def test_every_split_gives_the_same_streams(httpx_session: Recording) -> None:
    assert_same_records(Http2Decoder, httpx_session.chunks(), httpx_session.channel(False), seeds=range(3))


def test_server_side(httpx_session: Recording) -> None:
    decoded = decode(Http2Decoder, httpx_session.chunks(server_side=True), httpx_session.channel(True))
    assert _requests(decoded) == sorted(HTTPX_REQUESTS)
    assert {r.attr("Side") for r in decoded.records} == {"server"}
    flipped = decode(Http2Decoder, reversed_directions(httpx_session.chunks()), httpx_session.channel(True))
    assert _requests(flipped) == sorted(HTTPX_REQUESTS)


def test_cut_mid_frame_goes_on_at_the_next_frame(httpx_session: Recording) -> None:
    """The 70000-byte body's chunks lose most of their bytes (a small strace -s on reads): that stream
    is truncated, every other stream is decoded whole (DATA lost costs no HPACK state)."""
    chunks = httpx_session.chunks()
    big = [i for i, c in enumerate(chunks) if c.direction is Direction.IN and c.size > 16000]
    assert big, "the big body came in large reads"
    damaged = [
        Chunk(
            data=c.data[:100],
            direction=c.direction,
            time=c.time,
            pid=c.pid,
            size=c.size,
            call_index=c.call_index,
        )
        if i in big
        else c
        for i, c in enumerate(chunks)
    ]
    decoded = decode(Http2Decoder, damaged, httpx_session.channel(False))
    truncated = {r.attr("Url") for r in decoded.records if r.attr("Truncated")}
    assert _requests(decoded) == sorted(HTTPX_REQUESTS) or truncated
    whole = [
        (r.attr("Method"), r.attr("Url"), r.attr("Status"))
        for r in decoded.records
        if not r.attr("Truncated")
    ]
    assert set(whole) <= set(HTTPX_REQUESTS)
    assert ("GET", "/hello", 200) in whole and ("POST", "/echo", 200) in whole


def test_small_strace_s_never_lies(httpx_session: Recording) -> None:
    """strace -s 64 on every call: whatever is decoded is right, or marked truncated."""
    decoded = decode(Http2Decoder, cut(httpx_session.chunks(), 64), httpx_session.channel(False))
    for record in decoded.records:
        if not record.attr("Truncated"):
            assert (record.attr("Method"), record.attr("Url"), record.attr("Status")) in HTTPX_REQUESTS


def test_connection_cut_mid_frame_at_close(httpx_session: Recording) -> None:
    chunks = httpx_session.chunks()
    half = len(chunks) // 2
    decoded = decode(
        Http2Decoder,
        chunks[:half]
        + [
            Chunk(
                data=chunks[half].data[:5],
                direction=chunks[half].direction,
                time=chunks[half].time,
                pid=1,
                size=5,
                call_index=half,
            )
        ],
    )
    for record in decoded.records:
        assert record.attr("Version") == "2"
        if record.attr("Complete") is None:
            assert (record.attr("Method"), record.attr("Url"), record.attr("Status")) in HTTPX_REQUESTS


def test_upgrade_from_http11(upgrade_session: Recording) -> None:
    """curl --http2: an HTTP/1.1 request with Upgrade: h2c, 101, then HTTP/2 with the answer on stream 1."""
    decoded = decode(HttpDecoder, upgrade_session.chunks(), upgrade_session.channel(False))
    rows = decoded.table("Method", "Url", "Status", "Version", "Stream")
    assert rows == [("GET", "/hello", 101, "1.1", None), ("GET", "/hello", 200, "2", 1)]
    assert decoded.records[1].attr("Complete") is None  # the body came whole (content-length)
    assert_same_records(HttpDecoder, upgrade_session.chunks(), upgrade_session.channel(False), seeds=range(2))


def test_server_push_is_marked(push_session: Recording) -> None:
    decoded = decode(Http2Decoder, push_session.chunks(), push_session.channel(False))
    rows = sorted(decoded.table("Url", "Status", "Pushed", "ContentType"))
    assert rows == [("/pushed", 200, None, "text/html"), ("/style.css", 200, "true", "text/css")]
    pushed = next(r for r in decoded.records if r.attr("Pushed"))
    assert pushed.attr("Stream") % 2 == 0  # the server's streams are even


def test_grpc_calls(grpc_session: tuple[Recording, bool]) -> None:
    recording, reflection = grpc_session
    decoded = decode(Http2Decoder, recording.chunks(), recording.channel(False))
    calls = [
        r
        for r in decoded.records
        if r.cim_class == "Dockit_RpcCall" and r.attr("Service") == grpc_service.SERVICE
    ]
    got = [
        (
            r.attr("Method"),
            r.attr("Streaming"),
            r.attr("RequestMessages"),
            r.attr("ResponseMessages"),
            r.attr("Code"),
        )
        for r in calls
    ]
    assert got == grpc_service.CALLS
    ok, missing = calls[0], calls[1]
    assert (
        ok.attr("Status") == "ok"
        and ok.attr("CodeName") == "OK"
        and ok.attr("Deadline") == pytest.approx(5.0, abs=0.01)
    )
    assert missing.attr("Status") == "error" and missing.attr("CodeName") == "NOT_FOUND"
    assert missing.attr("Error") == "no item 404"
    assert {r.attr("StreamingFrom") for r in calls} == {"schema" if reflection else "messages"}
    fields = [
        dict(c.attrs) for c in ok.children if c.tag == "Field" and dict(c.attrs)["Direction"] == "response"
    ]
    by_path = {f["Path"]: f for f in fields}
    assert by_path["2"]["Value"] == "hammer" and by_path["2"]["Type"] == "string"
    if reflection:  # the schema learned from the reflection replies names the fields
        assert by_path["1"]["Name"] == "id" and by_path["1"]["Value"] == "7"
        assert by_path["5"]["Value"] == "TOOL" and by_path["8"]["Value"] == "-3"
        assert by_path["6.2"]["Name"] == "owner.password" and by_path["6.2"]["Value"] == "<redacted>"
    else:  # numbers and wire types only
        assert by_path["1"]["Type"] == "varint" and "Name" not in by_path["1"]
        assert by_path["6"]["Type"] == "message" and by_path["6.1"]["Value"] == "ada"
    # every gRPC stream is also an HTTP/2 request
    posts = [
        r
        for r in decoded.records
        if r.cim_class == "Dockit_HttpRequest"
        and r.attr(
            "Url",
        ).startswith(f"/{grpc_service.SERVICE}/")
    ]
    assert len(posts) == len(grpc_service.CALLS) and {r.attr("Method") for r in posts} == {"POST"}


def test_grpc_every_split(grpc_session: tuple[Recording, bool]) -> None:
    recording, _ = grpc_session
    assert_same_records(Http2Decoder, recording.chunks(), recording.channel(False), seeds=range(2))


def test_garbage_never_raises() -> None:
    assert_never_raises(Http2Decoder, [garbage(seed) for seed in range(30)])
    with_preface = [
        [
            Chunk(
                data=h2.PREFACE + c.data,
                direction=c.direction,
                time=c.time,
                pid=c.pid,
                size=c.size + 24,
                call_index=c.call_index,
            )
            for c in garbage(seed)
        ]
        for seed in range(30)
    ]
    assert_never_raises(Http2Decoder, with_preface)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, 12), st.integers(0, 255), st.integers(0, 9), st.binary(max_size=60)),
        max_size=12,
    )
)
def test_any_frames_never_raise(frames: list[tuple[int, int, int, bytes]]) -> None:
    data = h2.PREFACE + b"".join(
        h2.frame(kind, flags, stream, payload) for kind, flags, stream, payload in frames
    )
    decoder = Http2Decoder(Recording("127.0.0.1:1", "127.0.0.1:2").channel(False))
    for direction in (Direction.OUT, Direction.IN):
        decoder.feed(Chunk(data=data, direction=direction, time=1.0, pid=1, size=len(data)))
    decoder.close(2.0)


def test_open_streams_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client that opens streams and never sees them end cannot make the decoder grow."""
    import hpack

    monkeypatch.setattr(h2decoder, "MAX_STREAMS", 50)
    encoder = hpack.Encoder()
    data = h2.PREFACE + b"".join(
        h2.frame(
            h2.HEADERS,
            h2.END_HEADERS,
            n,
            encoder.encode(
                [(":method", "GET"), (":path", f"/{n}"), (":scheme", "http"), (":authority", "x")]
            ),
        )
        for n in range(1, 400, 2)
    )
    decoder = Http2Decoder(Recording("127.0.0.1:1", "127.0.0.1:2").channel(False))
    out = decoder.feed(Chunk(data=data, direction=Direction.OUT, time=1.0, pid=1, size=len(data)))
    assert len(decoder.streams) <= 50
    assert sum(1 for o in out if isinstance(o, HttpExchange)) == 200 - 50


def test_protobuf_with_the_schema_file(grpc_folder: str) -> None:
    """The descriptor set protoc wrote names what the protobuf library itself encoded."""
    import sys

    sys.path.insert(0, grpc_folder)
    import inventory_pb2

    schema = pb.Schema()
    with open(f"{grpc_folder}/inventory.desc", "rb") as stream:
        assert schema.add_file_set(stream.read()) == 1
    assert schema.methods["/dockit.test.Inventory/Chat"].client_streaming
    item = inventory_pb2.Item(
        id=-5, name="x" * 100, price=0.25, kind=inventory_pb2.BOOK, counts=[4, -1], delta=7
    )
    fields, ok = pb.decode(item.SerializeToString(), schema, "dockit.test.Item")
    assert ok
    values = {f.name: f.value for f in fields}
    assert values == {
        "id": "-5",
        "name": "x" * 64 + "...",
        "price": "0.25",
        "kind": "BOOK",
        "counts": "4, -1",
        "delta": "7",
    }


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_protobuf_never_raises(data: bytes) -> None:
    fields, _ok = pb.decode(data, max_fields=20)
    assert len(fields) <= 20
    pb.Schema().add_file_set(data)
