"""The decoder registry: built-ins, `dockit.decoders` entry points, `--decoder module:Class`, detection by
score plus port bonus, `--decode PORT=name` overrides, and failures that are reported, never fatal.

The bytes are real: a conversation with the example KV1 server (examples/dockit-kvproto) on 127.0.0.1,
imported from its source directory, so nothing here needs the example installed (test_example_plugin.py
does the pip install and the live traces).
"""

from __future__ import annotations

import importlib
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from lxml import etree

import decoders.registry as registry_module
from decoders.api import ChannelInfo, Chunk, Decoder, Direction
from decoders.http import HttpDecoder
from decoders.records import CimObject
from decoders.registry import BUILTIN_DECODERS, PORT_BONUS, DecoderLoadError, Registry, load_reference

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "dockit-kvproto"
GROUP = "dockit.decoders"
COMMANDS = ["SET color blue", "GET color", "DEL color", "GET color"]


@pytest.fixture
def kvproto(monkeypatch: pytest.MonkeyPatch) -> type[Decoder]:
    """The example's decoder class, importable from its source tree (not through its entry point)."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    return importlib.import_module("dockit_kvproto").KvDecoder


@pytest.fixture
def kv_port(kvproto: type[Decoder]) -> Iterator[int]:
    from dockit_kvproto.server import KvServer

    with KvServer(("127.0.0.1", 0), "kvd") as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield server.server_address[1]
        server.shutdown()


def converse(port: int, commands: list[str]) -> list[Chunk]:
    """What a client of the real server sent (OUT) and received (IN), one chunk per call."""
    chunks: list[Chunk] = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for command in [None, *commands]:
            if command is not None:
                data = f"{command}\n".encode()
                sock.sendall(data)
                chunks.append(Chunk(data=data, direction=Direction.OUT, time=None, pid=1, size=len(data)))
            received = b""
            while not received.endswith(b"\n"):
                received += sock.recv(4096)
            chunks.append(Chunk(data=received, direction=Direction.IN, time=None, pid=1, size=len(received)))
    return chunks


def channel(port: int) -> ChannelInfo:
    return ChannelInfo(channel_id="c", kind="tcp", remote=f"127.0.0.1:{port}", remote_port=port, pid=1)


def kv_triples(decoder: Decoder, chunks: list[Chunk]) -> list[tuple]:
    outputs = [out for chunk in chunks for out in decoder.feed(chunk)] + list(decoder.close(None))
    records = [out for out in outputs if isinstance(out, CimObject)]
    return [(r.attr("Command"), r.attr("Key"), r.attr("Status")) for r in records]


# -- finding decoders -----------------------------------------------------------------------------------
def test_builtins_only_without_plugins_or_references() -> None:
    registry = Registry.default(plugins=False)
    assert registry.classes == [load_reference(reference) for reference in BUILTIN_DECODERS]
    assert "kvproto" not in registry.names()
    assert registry.problems == []


def test_decoder_reference_adds_a_class_without_its_entry_point(kvproto, kv_port: int) -> None:
    chunks = converse(kv_port, COMMANDS)
    greeting = chunks[0]
    assert Registry.default(plugins=False).choose(greeting.data, greeting.direction, channel(kv_port)) is None
    registry = Registry.default(["dockit_kvproto:KvDecoder"], plugins=False)
    assert registry.by_name("kvproto") is kvproto
    assert registry.choose(greeting.data, greeting.direction, channel(kv_port)) is kvproto


def test_entry_points_load_and_broken_ones_are_skipped(kvproto, monkeypatch: pytest.MonkeyPatch) -> None:
    plugins = [
        EntryPoint("kvproto", "dockit_kvproto:KvDecoder", GROUP),
        EntryPoint("missing", "no_such_module_for_dockit:Decoder", GROUP),
        EntryPoint("notadecoder", "json:loads", GROUP),
        EntryPoint("abstract", "decoders.api:Decoder", GROUP),
    ]
    monkeypatch.setattr(registry_module, "entry_points", lambda group: plugins if group == GROUP else [])
    registry = Registry.default()
    assert registry.by_name("kvproto") is kvproto
    assert len(registry.problems) == 3
    for name, reason in [
        ("missing", "No module named 'no_such_module_for_dockit'"),
        ("notadecoder", "not a subclass of decoders.api.Decoder"),
        ("abstract", "has no `name`"),
    ]:
        assert any(p.startswith(f"decoder plugin {name} (") and reason in p for p in registry.problems), (
            registry.problems
        )


def test_a_later_reference_replaces_a_decoder_of_the_same_name(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "team_http.py").write_text(
        "from decoders.http import HttpDecoder\n\nclass TeamHttp(HttpDecoder):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry.default(["team_http:TeamHttp"], plugins=False)
    assert registry.by_name("http").__name__ == "TeamHttp"
    assert registry.names().count("http") == 1
    assert HttpDecoder not in registry.classes


@pytest.mark.parametrize(
    "reference, message",
    [
        ("x", "'x' is not of the form module:Class"),
        ("no_such_module_for_dockit:X", "cannot import no_such_module_for_dockit"),
        ("json:loads", "json:loads is not a subclass of decoders.api.Decoder"),
        ("json:NoSuchClass", "json:NoSuchClass: module json has no class NoSuchClass"),
        ("decoders.api:Decoder", "decoders.api:Decoder has no `name`"),
    ],
)
def test_bad_references_are_refused_with_a_reason(reference: str, message: str) -> None:
    with pytest.raises(DecoderLoadError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        Registry.default([reference], plugins=False)


# -- choosing a decoder -----------------------------------------------------------------------------------
def test_port_bonus_decides_between_two_claims(kvproto, kv_port: int) -> None:
    """Both claim the greeting; the one whose well-known port the channel uses gets PORT_BONUS."""

    class PortKv(kvproto):
        name = "portkv"
        ports = frozenset({kv_port})

        @classmethod
        def score(cls, data: bytes, direction: Direction, info: ChannelInfo) -> int:
            return 100 - PORT_BONUS + 1 if super().score(data, direction, info) else 0

    greeting = converse(kv_port, [])[0]
    registry = Registry([kvproto, PortKv])
    assert registry.choose(greeting.data, greeting.direction, channel(kv_port)) is PortKv
    assert registry.choose(greeting.data, greeting.direction, channel(kv_port + 1)) is kvproto


def test_a_decoder_whose_score_raises_is_reported_and_skipped(kvproto, kv_port: int) -> None:
    class Broken(kvproto):
        name = "broken"

        @classmethod
        def score(cls, data: bytes, direction: Direction, info: ChannelInfo) -> int:
            raise ValueError("bug in score")

    greeting = converse(kv_port, [])[0]
    registry = Registry([Broken, kvproto])
    assert registry.choose(greeting.data, greeting.direction, channel(kv_port)) is kvproto
    assert registry.problems == ["decoder broken failed to score a channel: ValueError('bug in score')"]


def test_decode_override_claims_a_stream_that_does_not_score(kvproto, kv_port: int) -> None:
    """A capture that began after the greeting: no decoder claims `SET color blue`, unless told to."""
    middle = converse(kv_port, COMMANDS)[1:]  # the greeting went by before the trace began
    first = middle[0]
    plain = Registry.default(["dockit_kvproto:KvDecoder"], plugins=False)
    assert plain.choose(first.data, first.direction, channel(kv_port)) is None
    forced = Registry.default(["dockit_kvproto:KvDecoder"], overrides={kv_port: "kvproto"}, plugins=False)
    assert forced.choose(first.data, first.direction, channel(kv_port + 1)) is None  # other ports: as before
    chosen = forced.choose(first.data, first.direction, channel(kv_port))
    assert chosen is kvproto
    assert kv_triples(chosen(channel(kv_port)), middle) == [
        ("SET", "color", "ok"),
        ("GET", "color", "ok"),
        ("DEL", "color", "ok"),
        ("GET", "color", "error"),
    ]


def test_decode_override_wins_over_content(kvproto, kv_port: int) -> None:
    """`--decode PORT=mysql` on a stream kvproto would claim: the user's word wins, and the MySQL decoder
    fed bytes that are not MySQL does not raise."""
    chunks = converse(kv_port, COMMANDS)
    registry = Registry.default(["dockit_kvproto:KvDecoder"], overrides={kv_port: "mysql"}, plugins=False)
    chosen = registry.choose(chunks[0].data, chunks[0].direction, channel(kv_port))
    assert chosen is registry.by_name("mysql")
    decoder = chosen(channel(kv_port))
    for chunk in chunks:
        decoder.feed(chunk)
    decoder.close(None)


def test_an_override_naming_no_decoder_is_refused() -> None:
    with pytest.raises(
        DecoderLoadError, match=r"^--decode 1=nosuch: no decoder named 'nosuch' \(known: mysql"
    ):
        Registry.default(overrides={1: "nosuch"}, plugins=False)


# -- the command line: a usage error is one line and exit status 2 ---------------------------------------
@pytest.mark.parametrize(
    "args, message",
    [
        (["--decode", "1=nosuch"], "dockit: --decode 1=nosuch: no decoder named 'nosuch' (known: "),
        (["--decode", "nosuch"], "dockit: --decode 'nosuch': expected PORT=NAME"),
        (["--decoder", "x"], "dockit: 'x' is not of the form module:Class"),
        (["--decoder", "no_such_module_for_dockit:X"], "dockit: cannot import no_such_module_for_dockit"),
        (["--decoder", "json:loads"], "dockit: json:loads is not a subclass of decoders.api.Decoder"),
        (["--decoder", "decoders.mysql:Nope"], "dockit: decoders.mysql:Nope: module decoders.mysql has no class Nope"),
    ],
)
def test_cli_decoder_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    result = subprocess.run(
        [sys.executable, "-m", "dockit_core.cli", *args, "-l", str(tmp_path / "run"), "true"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(message), result.stderr
    assert list(tmp_path.iterdir()) == []  # refused before anything ran or was written


@pytest.mark.live
def test_postgresql_traffic_is_claimed_by_the_postgresql_decoder_only(tmp_path: Path) -> None:
    """A real psql session (its server's `R\\0\\0\\0\\x08` once read as a MySQL command): no other built-in
    decoder may claim a protocol it does not speak; the postgresql decoder does, and alone."""
    if shutil.which("strace") is None or shutil.which("psql") is None:
        pytest.skip("strace or psql is not installed")
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=2).close()
    except OSError:
        pytest.skip("no PostgreSQL server on 127.0.0.1:5432")
    prefix = tmp_path / "psql"
    command = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c", "SELECT 41 + 1"]
    result = subprocess.run(
        [sys.executable, "-m", "dockit_core.cli", "-l", str(prefix), *command],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "42" in result.stdout
    (summary,) = tmp_path.glob("psql.strace.*.xml")
    root = etree.parse(str(summary)).getroot()
    sockets = [s for s in root.iter("Dockit_Socket") if s.get("Remote") == "127.0.0.1:5432"]
    assert sockets and int(sockets[0].get("BytesIn")) > 0
    assert root.find("Dockit_Statistics").get("DecodedChannels") == "1"
    records = list(root.iter("Dockit_SqlQuery")) + list(root.iter("Dockit_DatabaseSession"))
    assert {r.get("Protocol") for r in records} == {"postgresql"}
    assert [q.findtext("Text") for q in root.iter("Dockit_SqlQuery")] == ["SELECT 41 + 1"]


class _H2Decoder(Decoder):
    """A stand-in for the HTTP/2 decoder dockit does not have yet: it declares ALPN's `h2` and scores
    nothing, so only ALPN can give it a channel."""

    name = "h2-test"
    alpn = frozenset({"h2"})

    @classmethod
    def score(cls, data: bytes, direction: Direction, channel: ChannelInfo) -> int:
        return 0

    def feed(self, chunk: Chunk) -> list:
        return []


def test_alpn_picks_the_decoder_of_a_tls_connections_plaintext() -> None:
    """The protocol the TLS handshake agreed on (ChannelInfo.alpn) gives the plaintext to the decoder that
    declares it, whatever its first bytes score; without ALPN the bytes decide."""
    registry = Registry([HttpDecoder, _H2Decoder])
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    encrypted = ChannelInfo(
        channel_id="t", kind="tcp", remote="127.0.0.1:8443", remote_port=8443, encrypted=True
    )
    assert registry.choose(preface, Direction.OUT, encrypted) is None
    assert (
        registry.choose(preface, Direction.OUT, ChannelInfo(**{**encrypted.__dict__, "alpn": "h2"}))
        is _H2Decoder
    )
    garbage = b"\x00\x01\x02"
    assert registry.choose(garbage, Direction.OUT, encrypted) is None
    assert (
        registry.choose(garbage, Direction.OUT, ChannelInfo(**{**encrypted.__dict__, "alpn": "http/1.1"}))
        is HttpDecoder
    )
    # a protocol no decoder declares: the content decides, as without ALPN
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    assert (
        registry.choose(request, Direction.OUT, ChannelInfo(**{**encrypted.__dict__, "alpn": "spdy/3"}))
        is HttpDecoder
    )
