"""The HTTP decoder on real traffic: a real http.server, real clients (requests, curl, wget, a raw
socket for pipelining), a relay that records both directions with times.

Expected values come from the test and the server, never from the decoder: the URL the server's
handler saw (`self.path`), the status and reason it sent (`http.HTTPStatus`), and the exact bytes it
consumed and wrote for each request (its rfile/wfile are wrapped in counters). Every recording is fed
whole, one byte at a time and in random splits, from the client's side and from the server's.
"""

from __future__ import annotations

import base64
import http
import http.server
import json
import os
import random
import socket
import socketserver
import subprocess
import sys
import threading
import time
from pathlib import Path
from xml.etree import ElementTree

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import decoders.http
from decoders.api import ChannelInfo, Chunk, Direction
from decoders.http import MAX_WAITING, HttpDecoder
from decoders.records import Annotation, HttpExchange, as_cim
from decoders.redact import REDACTED
from tests.relay import C2S, CLIENT_PID, S2C, SERVER_PID, Recording, Relay, cut, run_decoder, split

SECRET_PASSWORD = "Sup3rSecretPw-1984"
SECRET_COOKIE = "CookieSecretValue42"
SECRET_SET_COOKIE = "ServerSetCookieSecret77"
BIG_BODY = bytes(range(256)) * 1200  # 300 KiB: many h11 pieces, buffer trimming
WS_CLIENT_FRAME = b"\x82\x12GET /no HTTP/1.1\r\n"
CHUNKS = [b"first chunk;", b"second, longer chunk of the body;", b"x" * 5000, b"end"]


class Counter:
    """Wraps the handler's rfile/wfile: the exact bytes the server consumed and wrote."""

    def __init__(self, raw) -> None:
        self.raw, self.count = raw, 0

    def readline(self, *args):
        data = self.raw.readline(*args)
        self.count += len(data)
        return data

    def read(self, *args):
        data = self.raw.read(*args)
        self.count += len(data)
        return data

    def write(self, data):
        self.count += len(data)
        return self.raw.write(data)

    def __getattr__(self, name):
        return getattr(self.raw, name)


SERVER_LOG: list[dict] = []
LOG_LOCK = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def setup(self) -> None:
        super().setup()
        self.rfile, self.wfile = Counter(self.rfile), Counter(self.wfile)

    def handle_one_request(self) -> None:
        self.rfile.count = self.wfile.count = 0
        self.sent_status = None
        self.sent_type = None
        super().handle_one_request()
        if self.rfile.count:
            with LOG_LOCK:
                SERVER_LOG.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "read": self.rfile.count,
                        "written": self.wfile.count,
                        "status": self.sent_status,
                        "type": self.sent_type,
                        "host": self.headers.get("Host") if self.headers else None,
                    }
                )

    def reply(self, status: int, body: bytes, content_type: str | None = "text/plain", headers=()) -> None:
        self.sent_status, self.sent_type = status, content_type
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path.startswith(("/query", "/ka/", "/pipe/", "/bound/")):
            self.reply(200, b"you asked " + query.encode() + b" at " + path.encode())
        elif path == "/big":
            self.reply(200, BIG_BODY, "application/octet-stream")
        elif path == "/chunked":
            self.sent_status, self.sent_type = 200, "text/plain; charset=utf-8"
            self.send_response(200)
            self.send_header("Content-Type", self.sent_type)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in CHUNKS:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/ws" and self.headers.get("Upgrade") == "websocket":
            self.sent_status = 101
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.end_headers()
            self.wfile.write(b"\x81\x1eHTTP/1.1 200 OK\r\nX: inside\r\n\r\n")  # a frame that looks like HTTP
            self.rfile.read(len(WS_CLIENT_FRAME))
            self.close_connection = True
        elif path == "/nocontent":
            self.sent_status = 204
            self.send_response(204)
            self.end_headers()
        elif path == "/notmodified":
            self.sent_status = 304
            self.send_response(304)
            self.send_header("ETag", '"v1"')
            self.end_headers()
        elif path == "/cookie":
            self.reply(200, b"cookie set", headers=[("Set-Cookie", f"token={SECRET_SET_COOKIE}; HttpOnly")])
        elif path == "/cut":
            self.sent_status, self.sent_type = 200, "text/plain"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"only ten!!")
            self.close_connection = True
        elif path == "/until-close":
            self.protocol_version = "HTTP/1.0"
            self.sent_status, self.sent_type = 200, "text/plain"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"a body with no length, ended by the close\n" * 20)
            self.close_connection = True
        else:
            self.sent_status, self.sent_type = 404, self.error_content_type
            self.send_error(404)

    def do_HEAD(self) -> None:
        self.reply(200, b"h" * 1234, "text/html")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/json":
            payload = json.loads(body)
            self.reply(200, json.dumps({"echo": payload}).encode(), "application/json")
        else:
            self.reply(201, b"stored %d bytes" % len(body))


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def relay(server):
    relay = Relay(server.server_address[:2])
    yield relay
    relay.close()


class Fetched:
    """What a python-requests call returned, without the response (which holds the socket open)."""

    def __init__(self, response: requests.Response) -> None:
        self.status_code = response.status_code
        self.content = response.content
        self.headers = dict(response.headers)
        self.version = response.raw.version
        response.close()

    def json(self):
        return json.loads(self.content)


def fetch(method: str, url: str, **kwargs) -> Fetched:
    with requests.Session() as session:
        return Fetched(session.request(method, url, **kwargs))


def base_url(relay: Relay) -> str:
    return f"http://127.0.0.1:{relay.port}"


def logged(path: str) -> list[dict]:
    with LOG_LOCK:
        return [entry for entry in SERVER_LOG if entry["path"] == path]


def the_log(path: str) -> dict:
    """The server's record of the latest request for `path` (tests run twice: client and server side)."""
    entries = logged(path)
    assert entries, f"the server never saw {path}"
    return entries[-1]


SPLITS = ("whole", "bytes", "random")


def decode(recording: Recording, server_side: bool, how: str, seed: int = 0) -> list:
    chunks = recording.chunks(server_side)
    if how == "bytes" and sum(len(c.data) for c in chunks) > 40000:
        how = "random"  # one byte at a time through 300 KiB is slow and proves nothing more
    decoder = HttpDecoder(recording.channel(server_side))
    return run_decoder(decoder, split(chunks, how, seed))


def exchanges(outputs: list) -> list[HttpExchange]:
    return [o for o in outputs if isinstance(o, HttpExchange)]


def check_exchange(
    exchange: HttpExchange,
    relay: Relay,
    entry: dict,
    server_side: bool,
    *,
    reason: str | None = None,
    content_type: str | None = None,
    version: str = "1.1",
) -> None:
    """Everything the server saw and sent, as the decoder must have read it."""
    assert exchange.method == entry["method"]
    assert exchange.url == entry["path"]
    assert exchange.host == entry["host"] == f"127.0.0.1:{relay.port}"
    assert exchange.status == entry["status"]
    assert exchange.reason == (reason or http.HTTPStatus(entry["status"]).phrase)
    assert exchange.content_type == content_type
    assert exchange.request_bytes == entry["read"]
    assert exchange.response_bytes == entry["written"]
    assert exchange.http_version == version
    assert exchange.side == ("server" if server_side else "client")
    assert exchange.process == (SERVER_PID if server_side else CLIENT_PID)
    assert exchange.server == f"127.0.0.1:{relay.port}"
    assert not exchange.truncated


def request_start_times(recording: Recording) -> list[tuple[float, int]]:
    """(time, index) of each c2s recv that begins with a request line, from the raw recording."""
    return [
        (when, index)
        for index, (direction, when, data) in enumerate(recording.pieces)
        if direction == C2S and data.split(b" ", 1)[0] in (b"GET", b"POST", b"HEAD")
    ]


# -- single requests with python-requests --------------------------------------------------------


@pytest.mark.parametrize("server_side", [False, True], ids=["client", "server"])
def test_get_with_query_string(relay, server_side):
    response = fetch("GET", base_url(relay) + "/query", params={"a": "1", "b": "two words"})
    assert response.status_code == 200
    (recording,) = relay.take()
    entry = the_log("/query?a=1&b=two+words")
    starts = request_start_times(recording)
    last_response_time = [when for d, when, _ in recording.pieces if d == S2C][-1]
    for how in SPLITS:
        outputs = decode(recording, server_side, how)
        (exchange,) = exchanges(outputs)
        check_exchange(exchange, relay, entry, server_side, content_type="text/plain")
        assert exchange.complete
        assert exchange.start == starts[0][0]
        assert exchange.duration == pytest.approx(last_response_time - starts[0][0])
        assert Annotation(starts[0][1], "http GET /query?a=1&b=two+words") in outputs
        assert exchange.response_bytes == recording.total(S2C)
        assert exchange.request_bytes == recording.total(C2S)


@pytest.mark.parametrize("server_side", [False, True], ids=["client", "server"])
def test_post_json_echo(relay, server_side):
    payload = {"name": "dockit", "items": list(range(50)), "nested": {"ok": True}}
    response = fetch("POST", base_url(relay) + "/json", json=payload)
    assert response.json() == {"echo": payload}
    (recording,) = relay.take()
    entry = the_log("/json")
    assert entry["read"] > len(json.dumps(payload))  # the body was read by the server
    for how in SPLITS:
        (exchange,) = exchanges(decode(recording, server_side, how, seed=3))
        check_exchange(exchange, relay, entry, server_side, content_type="application/json")
        assert ("Content-Type", "application/json") in exchange.request_headers


@pytest.mark.parametrize("server_side", [False, True], ids=["client", "server"])
def test_not_found(relay, server_side):
    assert fetch("GET", base_url(relay) + "/nowhere").status_code == 404
    (recording,) = relay.take()
    entry = the_log("/nowhere")
    for how in SPLITS:
        (exchange,) = exchanges(decode(recording, server_side, how))
        check_exchange(exchange, relay, entry, server_side, content_type=Handler.error_content_type)


@pytest.mark.parametrize("server_side", [False, True], ids=["client", "server"])
def test_chunked_response(relay, server_side):
    response = fetch("GET", base_url(relay) + "/chunked")
    assert response.content == b"".join(CHUNKS)
    (recording,) = relay.take()
    entry = the_log("/chunked")
    for how in SPLITS:
        (exchange,) = exchanges(decode(recording, server_side, how))
        check_exchange(exchange, relay, entry, server_side, content_type="text/plain; charset=utf-8")
        assert ("Transfer-Encoding", "chunked") in exchange.response_headers


@pytest.mark.parametrize("server_side", [False, True], ids=["client", "server"])
def test_big_body(relay, server_side):
    assert fetch("GET", base_url(relay) + "/big").content == BIG_BODY
    (recording,) = relay.take()
    entry = the_log("/big")
    for how in ("whole", "random"):
        (exchange,) = exchanges(decode(recording, server_side, how))
        check_exchange(exchange, relay, entry, server_side, content_type="application/octet-stream")


@pytest.mark.parametrize("server_side", [False, True], ids=["client", "server"])
def test_keep_alive_three_requests_on_one_connection(relay, server_side):
    with requests.Session() as session:
        for number in (1, 2, 3):
            assert session.get(base_url(relay) + f"/ka/{number}", params={"n": number}).status_code == 200
    (recording,) = relay.take()  # one connection for the three
    entries = [the_log(f"/ka/{n}?n={n}") for n in (1, 2, 3)]
    starts = request_start_times(recording)
    assert len(starts) == 3
    for how in SPLITS:
        outputs = decode(recording, server_side, how, seed=7)
        found = exchanges(outputs)
        assert len(found) == 3
        for exchange, entry, (when, index) in zip(found, entries, starts, strict=True):
            check_exchange(exchange, relay, entry, server_side, content_type="text/plain")
            assert exchange.start == when
            assert Annotation(index, f"http GET {entry['path']}") in outputs
        assert sum(e.request_bytes for e in found) == recording.total(C2S)
        assert sum(e.response_bytes for e in found) == recording.total(S2C)
        assert found[0].start < found[1].start < found[2].start


@pytest.mark.parametrize("server_side", [False, True], ids=["client", "server"])
def test_responses_without_body_head_204_304(relay, server_side):
    with requests.Session() as session:
        assert session.head(base_url(relay) + "/head").headers["Content-Length"] == "1234"
        assert session.get(base_url(relay) + "/nocontent").status_code == 204
        assert session.get(base_url(relay) + "/notmodified").status_code == 304
        assert session.get(base_url(relay) + "/query/after").status_code == 200
    (recording,) = relay.take()
    for how in SPLITS:
        found = exchanges(decode(recording, server_side, how, seed=11))
        assert [e.method for e in found] == ["HEAD", "GET", "GET", "GET"]
        check_exchange(found[0], relay, the_log("/head"), server_side, content_type="text/html")
        check_exchange(found[1], relay, the_log("/nocontent"), server_side)
        check_exchange(found[2], relay, the_log("/notmodified"), server_side)
        check_exchange(found[3], relay, the_log("/query/after"), server_side, content_type="text/plain")


@pytest.mark.parametrize("server_side", [False, True], ids=["client", "server"])
def test_connection_closed_mid_body(relay, server_side):
    with pytest.raises(requests.exceptions.RequestException):
        fetch("GET", base_url(relay) + "/cut")
    (recording,) = relay.take()
    entry = the_log("/cut")
    for how in SPLITS:
        (exchange,) = exchanges(decode(recording, server_side, how))
        assert exchange.status == 200 and exchange.url == "/cut"
        assert exchange.complete is False
        assert exchange.response_bytes == entry["written"] == recording.total(S2C)
        assert as_cim(exchange).attr("Complete") == "false"


@pytest.mark.parametrize("server_side", [False, True], ids=["client", "server"])
def test_body_until_close(relay, server_side):
    response = fetch("GET", base_url(relay) + "/until-close")
    assert response.version == 10
    (recording,) = relay.take()
    entry = the_log("/until-close")
    for how in SPLITS:
        (exchange,) = exchanges(decode(recording, server_side, how))
        check_exchange(exchange, relay, entry, server_side, content_type="text/plain")
        assert exchange.complete
        # the client asked in HTTP/1.1 and the server answered in HTTP/1.0: both are said
        attributes = dict(exchange.to_cim().attrs)
        assert (attributes["Version"], attributes["ResponseVersion"]) == ("1.1", "1.0")


# -- secrets ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("server_side", [False, True], ids=["client", "server"])
def test_authorization_and_cookies_are_redacted(relay, server_side):
    response = fetch(
        "GET",
        base_url(relay) + "/cookie",
        auth=("alice", SECRET_PASSWORD),
        cookies={"session": SECRET_COOKIE},
    )
    assert response.status_code == 200
    (recording,) = relay.take()
    wire = recording.stream(C2S) + recording.stream(S2C)
    basic = base64.b64encode(f"alice:{SECRET_PASSWORD}".encode()).decode()
    on_the_wire = (SECRET_COOKIE, SECRET_SET_COOKIE, basic)
    assert all(secret.encode() in wire for secret in on_the_wire)  # the secrets did cross the socket
    secrets = (*on_the_wire, SECRET_PASSWORD)
    for how in SPLITS:
        outputs = decode(recording, server_side, how)
        (exchange,) = exchanges(outputs)
        assert exchange.status == 200
        names = {name.lower(): value for name, value in exchange.request_headers}
        assert names["authorization"] == REDACTED and names["cookie"] == REDACTED
        assert dict(exchange.response_headers)["Set-Cookie"] == REDACTED
        text = repr(outputs) + repr([as_cim(o) for o in outputs if isinstance(o, HttpExchange)])
        for secret in secrets:
            assert secret not in text


# -- curl and wget -----------------------------------------------------------------------------


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, timeout=30, check=True)


@pytest.mark.parametrize("server_side", [False, True], ids=["client", "server"])
def test_curl_http10(relay, server_side):
    run("curl", "-s", "-o", "/dev/null", "--http1.0", base_url(relay) + "/query/curl10?x=%20y")
    (recording,) = relay.take()
    entry = the_log("/query/curl10?x=%20y")
    assert recording.stream(C2S).startswith(b"GET /query/curl10?x=%20y HTTP/1.0\r\n")
    for how in SPLITS:
        (exchange,) = exchanges(decode(recording, server_side, how))
        check_exchange(exchange, relay, entry, server_side, content_type="text/plain", version="1.0")


@pytest.mark.parametrize("server_side", [False, True], ids=["client", "server"])
def test_curl_expect_100_continue(relay, server_side, tmp_path):
    upload = tmp_path / "upload.bin"
    upload.write_bytes(os.urandom(20000))
    run(
        "curl", "-s", "-o", "/dev/null", "-H", "Expect: 100-continue",
        "--data-binary", f"@{upload}", base_url(relay) + "/upload",
    )  # fmt: skip
    (recording,) = relay.take()
    entry = the_log("/upload")
    assert b"HTTP/1.1 100 Continue\r\n" in recording.stream(S2C)  # the server did send the interim reply
    for how in SPLITS:
        found = exchanges(decode(recording, server_side, how))
        assert len(found) == 1  # the 100 is not an exchange of its own
        check_exchange(found[0], relay, entry, server_side, content_type="text/plain")
        assert found[0].request_bytes > 20000


@pytest.mark.parametrize("server_side", [False, True], ids=["client", "server"])
def test_curl_head(relay, server_side):
    run("curl", "-s", "-o", "/dev/null", "-I", base_url(relay) + "/head/curl")
    (recording,) = relay.take()
    entry = the_log("/head/curl")
    for how in SPLITS:
        (exchange,) = exchanges(decode(recording, server_side, how))
        check_exchange(exchange, relay, entry, server_side, content_type="text/html")


@pytest.mark.parametrize("server_side", [False, True], ids=["client", "server"])
def test_wget(relay, server_side):
    run("wget", "-q", "-O", "/dev/null", base_url(relay) + "/query/wget?lang=fr&q=caf%C3%A9")
    (recording,) = relay.take()
    entry = the_log("/query/wget?lang=fr&q=caf%C3%A9")
    for how in SPLITS:
        (exchange,) = exchanges(decode(recording, server_side, how))
        check_exchange(exchange, relay, entry, server_side, content_type="text/plain")
        assert any(
            name == "User-Agent" and value.startswith("Wget/") for name, value in exchange.request_headers
        )


# -- pipelining ------------------------------------------------------------------------------------


@pytest.mark.parametrize("server_side", [False, True], ids=["client", "server"])
def test_pipelined_requests(relay, server_side):
    host = f"127.0.0.1:{relay.port}"
    requests_bytes = (
        f"GET /pipe/1?a=b HTTP/1.1\r\nHost: {host}\r\n\r\n"
        f"HEAD /pipe/head HTTP/1.1\r\nHost: {host}\r\n\r\n"
        f"GET /pipe/3 HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", relay.port)) as sock:
        sock.sendall(requests_bytes)  # all three before any response
        while sock.recv(65536):
            pass
    (recording,) = relay.take()
    assert recording.pieces[0] == (C2S, recording.pieces[0][1], requests_bytes)
    entries = [the_log("/pipe/1?a=b"), the_log("/pipe/head"), the_log("/pipe/3")]
    for how in SPLITS:
        found = exchanges(decode(recording, server_side, how))
        assert [e.method for e in found] == ["GET", "HEAD", "GET"]
        types = ["text/plain", "text/html", "text/plain"]
        for exchange, entry, content_type in zip(found, entries, types, strict=True):
            check_exchange(exchange, relay, entry, server_side, content_type=content_type)
            assert exchange.start == recording.pieces[0][1]  # one recv carried all three


@pytest.mark.parametrize("server_side", [False, True], ids=["client", "server"])
def test_pipelined_requests_past_the_bound(relay, server_side, monkeypatch):
    """More requests in flight than a connection may hold (issue 17: 200,000 unanswered made memory
    follow them): the oldest are written out without their response, the responses that come for
    them are not taken for later requests', and the last `bound` get their own. The bound is lowered
    to 512 here (the real one, 16,384, is held by the test below), so that the live exchange stays short."""
    bound = 512
    monkeypatch.setattr(decoders.http, "MAX_WAITING", bound)
    host = f"127.0.0.1:{relay.port}"
    total = bound + 300
    paths = [f"/bound/{number}" for number in range(total)]
    requests_bytes = "".join(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n" for path in paths).encode()
    requests_bytes += f"GET /bound/last HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", relay.port)) as sock:
        sender = threading.Thread(target=sock.sendall, args=(requests_bytes,))
        sender.start()  # all of them before reading any response (the server answers as they come)
        while sock.recv(65536):
            pass
        sender.join()
    (recording,) = relay.take(timeout=60)
    # The server answered as requests came; for the decoder, every request comes first, then every
    # response: more requests in flight than a connection may hold, as a load tool that never reads.
    recording.pieces.sort(key=lambda piece: piece[0] != C2S)
    for how in ("whole", "random"):
        found = exchanges(decode(recording, server_side, how))
        assert [e.url for e in found] == [*paths, "/bound/last"]
        dropped = total + 1 - bound
        assert all(e.status is None for e in found[:dropped])
        for exchange in found[dropped:]:
            check_exchange(exchange, relay, the_log(exchange.url), server_side, content_type="text/plain")


def test_a_connection_never_answered_holds_a_bounded_number_of_requests():
    decoder = HttpDecoder(ChannelInfo(channel_id="tcp:a-b", kind="tcp", local="127.0.0.1:4000",
                                      remote="127.0.0.1:80", local_port=4000, remote_port=80))  # fmt: skip
    written = 0
    for number in range(5 * MAX_WAITING):
        request = f"GET /n/{number} HTTP/1.1\r\nHost: h\r\n\r\n".encode()
        outputs = decoder.feed(Chunk(data=request, direction=Direction.OUT, time=1.0, pid=1, size=len(request),
                                     call_index=number))  # fmt: skip
        written += len(exchanges(outputs))
        assert len(decoder.exchanges) <= MAX_WAITING
    written += len(exchanges(decoder.close(2.0)))
    assert written == 5 * MAX_WAITING


@pytest.mark.parametrize("server_side", [False, True], ids=["client", "server"])
def test_upgrade_101_ends_http(relay, server_side):
    """After `101 Switching Protocols` the bytes are websocket frames, even ones that look like HTTP."""
    host = f"127.0.0.1:{relay.port}"
    upgrade = f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    with socket.create_connection(("127.0.0.1", relay.port)) as sock:
        sock.sendall(upgrade.encode())
        received = b""
        while b"inside" not in received:
            received += sock.recv(65536)
        sock.sendall(WS_CLIENT_FRAME)
        while sock.recv(65536):
            pass
    (recording,) = relay.take()
    entry = the_log("/ws")
    for how in SPLITS:
        found = exchanges(decode(recording, server_side, how))
        assert len(found) == 1
        (exchange,) = found
        assert (exchange.method, exchange.url, exchange.status) == ("GET", "/ws", 101)
        assert exchange.reason == "Switching Protocols" and exchange.host == host
        assert exchange.request_bytes == len(upgrade)
        assert exchange.response_bytes == entry["written"] - len(
            b"\x81\x1eHTTP/1.1 200 OK\r\nX: inside\r\n\r\n"
        )


@pytest.mark.parametrize("server_side", [False, True], ids=["client", "server"])
def test_what_h11_refuses_is_still_read(relay, server_side):
    """HTTP/1.1 without Host (h11 refuses it; http.server, like many servers, answers it): read our way."""
    sent = b"GET /query/nohost?x=1 HTTP/1.1\r\nUser-Agent: raw-socket\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", relay.port)) as sock:
        sock.sendall(sent)
        while sock.recv(65536):
            pass
    (recording,) = relay.take()
    entry = the_log("/query/nohost?x=1")
    assert entry["host"] is None and entry["read"] == len(sent)
    for how in SPLITS:
        (exchange,) = exchanges(decode(recording, server_side, how))
        assert (exchange.method, exchange.url, exchange.host) == ("GET", "/query/nohost?x=1", None)
        assert (exchange.status, exchange.reason, exchange.content_type) == (200, "OK", "text/plain")
        assert exchange.request_bytes == entry["read"] and exchange.response_bytes == entry["written"]
        assert ("User-Agent", "raw-socket") in exchange.request_headers
        assert not exchange.truncated and exchange.complete


# -- strace -s: cut buffers --------------------------------------------------------------------


@pytest.fixture(scope="module")
def keep_alive_recording(relay):
    with requests.Session() as session:
        for number in (1, 2, 3):
            session.get(base_url(relay) + f"/ka/cut{number}")
        session.post(base_url(relay) + "/json", json={"k": "v" * 3000})
        session.get(base_url(relay) + "/chunked")
        session.get(base_url(relay) + "/ka/last")
    (recording,) = relay.take()
    return recording


@pytest.mark.parametrize("limit", [14, 20, 40, 200, 1000])
@pytest.mark.parametrize("server_side", [False, True], ids=["client", "server"])
def test_cut_buffers_decode_as_far_as_they_go_and_resync(keep_alive_recording, relay, limit, server_side):
    recording = keep_alive_recording
    full = exchanges(run_decoder(HttpDecoder(recording.channel(server_side)), recording.chunks(server_side)))
    paths = ["/ka/cut1", "/ka/cut2", "/ka/cut3", "/json", "/chunked", "/ka/last"]
    assert [e.url for e in full] == paths
    chunks = cut(recording.chunks(server_side), limit)
    assert any(c.truncated for c in chunks)
    found = exchanges(run_decoder(HttpDecoder(recording.channel(server_side)), chunks))
    assert len(found) == len(paths)
    for exchange, complete in zip(found, full, strict=True):
        request_line = f"{complete.method} {complete.url} HTTP/1.1\r\n"
        assert exchange.method == complete.method
        if len(request_line) <= limit:
            assert exchange.url == complete.url
        else:
            assert complete.url.startswith(exchange.url or "")
        assert exchange.status == complete.status  # "HTTP/1.1 200" fits in 14 bytes
        assert exchange.reason in (None, complete.reason)  # a cut reason is left out, not shown cut
        # every message starts a new call, so each one is found again and its bytes are exact
        assert exchange.request_bytes == complete.request_bytes
        assert exchange.response_bytes == complete.response_bytes
        assert exchange.start == complete.start
        assert exchange.duration == pytest.approx(complete.duration)  # to the call holding its last byte
        if limit <= 40:
            assert exchange.truncated


def test_cut_inside_a_content_length_body_is_counted(relay):
    """Lost body bytes are padded: framing holds and the next message is read whole."""
    with requests.Session() as session:
        assert session.get(base_url(relay) + "/big").content == BIG_BODY
        session.get(base_url(relay) + "/ka/after-big")
    (recording,) = relay.take()
    head_size = recording.stream(S2C).index(b"\r\n\r\n") + 4
    chunks = []
    for chunk in recording.chunks():
        if chunk.direction is Direction.IN and len(chunk.data) > 1000:
            chunk = Chunk(data=chunk.data[:700], direction=chunk.direction, time=chunk.time, pid=chunk.pid,
                          size=chunk.size, call_index=chunk.call_index)  # fmt: skip
        chunks.append(chunk)
    found = exchanges(run_decoder(HttpDecoder(recording.channel(False)), chunks))
    assert [e.url for e in found] == ["/big", "/ka/after-big"]
    assert found[0].response_bytes == the_log("/big")["written"] == head_size + len(BIG_BODY)
    assert found[0].truncated and found[0].complete
    check_exchange(found[1], relay, the_log("/ka/after-big"), False, content_type="text/plain")


# -- detection -------------------------------------------------------------------------------------


def test_score(relay):
    channel = ChannelInfo(channel_id="x", kind="tcp", remote_port=12345)
    for method in ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND", "MKCOL"):
        assert HttpDecoder.score(f"{method} /x HTTP/1.1\r\n".encode(), Direction.OUT, channel) == 100
    assert HttpDecoder.score(b"HTTP/1.1 301 Moved P", Direction.IN, channel) > 0
    assert HttpDecoder.score(b"GET /some/long/pa", Direction.OUT, channel) > 0  # strace -s 16
    for garbage in (
        b"",
        b"\x16\x03\x01\x02\x00",
        b"SSH-2.0-OpenSSH_9.2\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    ):
        assert HttpDecoder.score(garbage, Direction.OUT, channel) < 1


def test_role_from_content_not_from_listening_hint(relay):
    """A server-side capture whose channel was not flagged listening is still read as a server."""
    fetch("GET", base_url(relay) + "/query/roles")
    (recording,) = relay.take()
    chunks = recording.chunks(server_side=True)
    channel = ChannelInfo(channel_id="x", kind="tcp", listening=False)
    (exchange,) = exchanges(run_decoder(HttpDecoder(channel), chunks))
    assert exchange.side == "server" and exchange.url == "/query/roles" and exchange.status == 200


# -- garbage ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_streams(relay):
    with requests.Session() as session:
        session.get(base_url(relay) + "/query/fuzz?x=1")
        session.post(base_url(relay) + "/json", json={"fuzz": True})
        session.get(base_url(relay) + "/chunked")
        session.head(base_url(relay) + "/head")
    (recording,) = relay.take()
    return recording


CHANNEL = ChannelInfo(channel_id="fuzz", kind="tcp", remote="127.0.0.1:80", remote_port=80)


def feed_all(pieces: list[tuple[bool, bytes, int]]) -> list:
    decoder = HttpDecoder(CHANNEL)
    outputs = []
    for index, (out, data, lost) in enumerate(pieces):
        chunk = Chunk(data=data, direction=Direction.OUT if out else Direction.IN, time=float(index), pid=1,
                      size=len(data) + lost, call_index=index)  # fmt: skip
        outputs.extend(decoder.feed(chunk))
    outputs.extend(decoder.close(None))
    for output in outputs:
        assert isinstance(output, (HttpExchange, Annotation))
        if isinstance(output, HttpExchange):
            as_cim(output)
            assert output.request_bytes >= 0 and output.response_bytes >= 0
    return outputs


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.booleans(), st.binary(max_size=300), st.integers(0, 5000) | st.just(0)), max_size=20
    )
)
def test_random_bytes_never_raise(pieces):
    feed_all(pieces)


_PREFIXES = [b"GET / HTTP/1.1\r\n", b"HTTP/1.1 200 OK\r\n", b"Content-Length: ", b"Transfer-Encoding: chunked\r\n",
             b"\r\n\r\n", b"0\r\n\r\n", b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 101 Switching\r\n\r\n",
             b"CONNECT a:443 HTTP/1.1\r\n", b"Host: x\r\n", b"Upgrade: websocket\r\n"]  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.booleans(),
            st.lists(st.sampled_from(_PREFIXES) | st.binary(max_size=20), max_size=8),
            st.integers(0, 100) | st.just(0),
        ),  # fmt: skip
        max_size=15,
    )
)
def test_http_looking_garbage_never_raises(pieces):
    feed_all([(out, b"".join(parts), lost) for out, parts, lost in pieces])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_real_traffic_never_raises(real_streams, data):
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    pieces = []
    for direction, _, raw in real_streams.pieces:
        raw = bytearray(raw)
        for _ in range(rng.randint(0, 6)):
            if not raw:
                break
            position = rng.randrange(len(raw))
            action = rng.choice(("flip", "delete", "insert", "truncate"))
            if action == "flip":
                raw[position] ^= 1 << rng.randrange(8)
            elif action == "delete":
                del raw[position : position + rng.randint(1, 40)]
            elif action == "insert":
                raw[position:position] = rng.choice(_PREFIXES)
            else:
                del raw[position:]
        lost = rng.choice((0, 0, 0, rng.randint(1, 500)))
        pieces.append((direction == C2S, bytes(raw), lost))
    feed_all(pieces)


def test_long_stream_is_linear():
    """Ten thousand pipelined requests in one chunk, then byte-wise garbage: no quadratic blow-up."""
    request = b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n"
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    decoder = HttpDecoder(CHANNEL)
    began = time.perf_counter()
    outputs = list(decoder.feed(Chunk(data=request * 10000, direction=Direction.OUT, time=1.0, pid=1,
                                      size=len(request) * 10000)))  # fmt: skip
    outputs += decoder.feed(Chunk(data=response * 10000, direction=Direction.IN, time=2.0, pid=1,
                                  size=len(response) * 10000))  # fmt: skip
    garbage = os.urandom(200000)
    for i in range(0, len(garbage), 7):
        outputs += decoder.feed(
            Chunk(data=garbage[i : i + 7], direction=Direction.IN, time=3.0, pid=1, size=7)
        )
    outputs += decoder.close(4.0)
    elapsed = time.perf_counter() - began
    found = exchanges(outputs)
    assert len(found) == 10000 and all(e.status == 200 and e.response_bytes == len(response) for e in found)
    assert elapsed < 20, elapsed


# -- the survol capture, end to end --------------------------------------------------------------

CAPTURES = Path(__file__).resolve().parents[1].parent / "shared/captures/survol"
REPO = Path(__file__).resolve().parents[1]


def dockit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dockit_core.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def summary(prefix: Path, tag: str) -> list[dict[str, str]]:
    """The attributes of every `tag` element of the summary XML a dockit run wrote under `prefix`."""
    found = sorted(prefix.parent.glob(prefix.name + "*.xml"))
    assert len(found) == 1, f"expected one summary for {prefix}, found {found}"
    root = ElementTree.parse(found[0]).getroot()
    return [dict(element.attrib) for element in root.iter(tag)]


HOTMAIL = CAPTURES / "dockit_wget_hotmail.strace.866.log"


@pytest.fixture(scope="module")
def hotmail_prefix(tmp_path_factory) -> Path:
    if not HOTMAIL.exists():
        pytest.skip(f"survol capture not found: {HOTMAIL}")
    prefix = tmp_path_factory.mktemp("hotmail") / "hotmail"
    result = dockit("-i", str(HOTMAIL), "-l", str(prefix))
    assert result.returncode == 0, result.stderr
    return prefix


def test_survol_wget_hotmail_http_exchange(hotmail_prefix):
    """wget's `GET /` to www.hotmail.com, cut by `strace -s 20`: the write shows
    "GET / HTTP/1.1\\r\\nUser"... of 136 bytes, the read "HTTP/1.1 301 Moved P"... of 263 (log lines 469-473)."""
    exchanges_seen = [e for e in summary(hotmail_prefix, "Dockit_HttpRequest") if e.get("Method")]
    for exchange in exchanges_seen:
        exchange.pop("Duration")  # checked below, once the core stops feeding MSG_PEEK bytes
    assert exchanges_seen == [
        {
            "Method": "GET",
            "Url": "/",
            "Status": "301",  # the reason phrase was cut ("Moved P"): left out, not shown cut
            "Side": "client",
            "Process": "869",
            "Start": "2018-05-08T10:07:39.341430",
            "RequestBytes": "136",
            "ResponseBytes": "263",
            "Version": "1.1",
            "Server": "204.79.197.212:80",
            "Truncated": "true",
            # no Host: the header lies in the 116 bytes strace did not show
        }
    ]


def test_survol_wget_hotmail_one_exchange(hotmail_prefix):
    (exchange,) = summary(hotmail_prefix, "Dockit_HttpRequest")
    # the response ends when the read at 10:07:39.373657 returned, 0.000018 s later (the peek at
    # .373335 is not a read); the request was written at .341430
    assert exchange["Duration"] == "0.032245"


# -- live: dockit traces wget and curl against the test server --------------------------------


def traced(tmp_path: Path, name: str, *command: str) -> Path:
    prefix = tmp_path / name
    result = dockit("-l", str(prefix), *command)
    assert result.returncode == 0, result.stderr
    return prefix


@pytest.mark.live
def test_live_wget(server, tmp_path):
    port = server.server_address[1]
    prefix = traced(
        tmp_path, "wget", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{port}/query/live?x=1"
    )
    entry = the_log("/query/live?x=1")
    (exchange,) = [e for e in summary(prefix, "Dockit_HttpRequest") if e.get("Method")]
    assert exchange["Method"] == "GET" and exchange["Url"] == entry["path"]
    assert exchange["Host"] == entry["host"] == f"127.0.0.1:{port}"
    assert (exchange["Status"], exchange["Reason"], exchange["ContentType"]) == ("200", "OK", "text/plain")
    assert int(exchange["RequestBytes"]) == entry["read"]
    assert int(exchange["ResponseBytes"]) == entry["written"]
    assert exchange["Side"] == "client" and exchange["Server"] == f"127.0.0.1:{port}"


@pytest.mark.live
def test_live_curl_with_credentials_kept_secret(server, tmp_path):
    port = server.server_address[1]
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login bob password {SECRET_PASSWORD}\n")
    jar = tmp_path / "cookies"  # files, so the secrets stay off the traced command line
    jar.write_text(f"127.0.0.1\tFALSE\t/\tFALSE\t0\tsid\t{SECRET_COOKIE}\n")
    prefix = traced(
        tmp_path, "curl", "curl", "-s", "-o", "/dev/null", "--netrc-file", str(netrc),
        "-b", str(jar), f"http://127.0.0.1:{port}/cookie",
    )  # fmt: skip
    entry = the_log("/cookie")
    (exchange,) = summary(prefix, "Dockit_HttpRequest")
    assert (exchange["Method"], exchange["Url"], exchange["Status"]) == ("GET", "/cookie", "200")
    assert int(exchange["RequestBytes"]) == entry["read"]
    assert int(exchange["ResponseBytes"]) == entry["written"]
    xml = next(prefix.parent.glob("curl*.xml")).read_text()
    basic = base64.b64encode(f"bob:{SECRET_PASSWORD}".encode()).decode()
    for secret in (SECRET_PASSWORD, SECRET_COOKIE, SECRET_SET_COOKIE, basic):
        assert secret not in xml
    assert xml.count('Value="&lt;redacted&gt;"') == 3  # Authorization, Cookie, Set-Cookie


class UnixHandler(Handler):
    def address_string(self) -> str:
        return "unix"


@pytest.mark.live
def test_live_curl_over_a_unix_socket(tmp_path):
    """HTTP over a unix socket, the way the Docker CLI talks to dockerd: same decoder, the path as server."""
    path = tmp_path / "api.sock"

    class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

    unix_server = UnixServer(str(path), UnixHandler)
    threading.Thread(target=unix_server.serve_forever, daemon=True).start()
    try:
        prefix = traced(
            tmp_path, "docker-like", "curl", "-s", "-o", "/dev/null", "--unix-socket", str(path),
            "http://localhost/query/v1.43/containers/json?all=1",
        )  # fmt: skip
    finally:
        unix_server.shutdown()
        unix_server.server_close()
    entry = the_log("/query/v1.43/containers/json?all=1")
    (exchange,) = summary(prefix, "Dockit_HttpRequest")
    assert (exchange["Method"], exchange["Url"], exchange["Host"]) == ("GET", entry["path"], "localhost")
    assert (exchange["Status"], exchange["ContentType"]) == ("200", "text/plain")
    assert int(exchange["RequestBytes"]) == entry["read"]
    assert int(exchange["ResponseBytes"]) == entry["written"]
    assert exchange["Server"] == str(path)


SERVE = """
import http.server, json, sys
sys.path.insert(0, {repo!r})
from tests.test_http_decoder import SERVER_LOG, Handler

server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
with open({port_file!r}, "w") as out:
    out.write(str(server.server_address[1]))
for _ in range({connections}):
    server.handle_request()
with open({log_file!r}, "w") as out:
    json.dump(SERVER_LOG, out)
"""


@pytest.mark.live
def test_live_traced_server(tmp_path):
    """dockit traces the server: requests come IN on accepted sockets, and content says side=server."""
    port_file, log_file = tmp_path / "port", tmp_path / "log.json"
    script = tmp_path / "serve.py"
    script.write_text(
        SERVE.format(repo=str(REPO), port_file=str(port_file), log_file=str(log_file), connections=2)
    )
    prefix = tmp_path / "server"
    tracer = subprocess.Popen(
        [sys.executable, "-m", "dockit_core.cli", "-l", str(prefix), sys.executable, str(script)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        for _ in range(600):
            if port_file.exists() and port_file.read_text():
                break
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port_file.read_text()}"
        with requests.Session() as session:  # connection 1: keep-alive, three requests
            assert session.get(url + "/ka/s1", params={"q": "1"}).status_code == 200
            assert session.post(url + "/json", json={"traced": "server"}).status_code == 200
            assert session.head(url + "/head").status_code == 200
        run("curl", "-s", "-o", "/dev/null", url + "/chunked")  # connection 2
        _, stderr = tracer.communicate(timeout=60)
    finally:
        tracer.kill()
    assert tracer.returncode == 0, stderr
    log = json.loads(log_file.read_text())
    assert [entry["path"] for entry in log] == ["/ka/s1?q=1", "/json", "/head", "/chunked"]
    found = summary(prefix, "Dockit_HttpRequest")
    assert len(found) == 4
    for exchange, entry in zip(found, log, strict=True):
        assert exchange["Side"] == "server"
        assert (exchange["Method"], exchange["Url"]) == (entry["method"], entry["path"])
        assert exchange["Status"] == str(entry["status"])
        assert int(exchange["RequestBytes"]) == entry["read"]
        assert int(exchange["ResponseBytes"]) == entry["written"]
        assert exchange["Server"] == f"127.0.0.1:{port_file.read_text()}"


def test_secret_query_parameters_and_url_passwords_in_targets_and_header_values() -> None:
    from decoders.redact import redact_header, redact_url

    # names as clients really encode them: requests sends params={"user[password]": x} as user%5Bpassword%5D
    assert redact_url("/s?user%5Bpassword%5D=S1&page=2") == "/s?user%5Bpassword%5D=<redacted>&page=2"
    assert redact_url("/s?user[password]=S1&ids[]=3") == "/s?user[password]=<redacted>&ids[]=3"
    assert redact_url("/s?access%5Ftoken=S1") == "/s?access%5Ftoken=<redacted>"
    assert redact_url("/s?next=/a?refresh_token=S1") == "/s?next=/a?refresh_token=<redacted>"
    assert redact_url("http://proxy.user:S1@h:8080/x") == "http://proxy.user:<redacted>@h:8080/x"
    assert redact_url("/s?monkey=1&passage=2&author=3") == "/s?monkey=1&passage=2&author=3"
    # any header holding a URL (Referer, Location, Link) loses its secrets; credential headers their value
    assert (
        redact_header("Referer", "http://h/p?code=1&access_token=S1")
        == "http://h/p?code=1&access_token=<redacted>"
    )
    assert redact_header("Location", "https://u:S1@h/") == "https://u:<redacted>@h/"
    assert [redact_header(name, "S1") for name in ("X-Goog-Api-Key", "X-Myapp-Session", "Api-Key")] == [
        "<redacted>"
    ] * 3
    assert redact_header("Cache-Control", "max-age=0") == "max-age=0"
