"""The decoder SDK itself: typed records, the framing readers, the testing helpers (chunks, hex dumps,
variants, fixture files, replay of a log and of a pcap), `dockit extract` and `dockit decoders`.

Real data where the helpers meet the outside: the MySQL capture recorded by captures/record_protocols.py
(its facts are in captures/PROTOCOL_FACTS.md), a loopback capture that tshark (Wireshark's own
capture tool) records while the KV1 example's client talks to its server, and installed-distribution
metadata laid out as pip lays it out.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from decimal import Decimal
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from construct import Int16ub, Int32ub, Struct
from lxml import etree

from decoders import framing
from decoders import registry as registry_module
from decoders.api import Direction
from decoders.records import (
    BYTES,
    COUNT,
    DECIMAL,
    DURATION,
    FLAG,
    SECRET,
    TEXT,
    TIME,
    CimObject,
    RecordType,
    SqlQuery,
)
from decoders.registry import Registry
from decoders.testing import (
    IN,
    OUT,
    byte_by_byte,
    channel,
    chunk,
    conversation,
    cut,
    from_hex,
    hexdump,
    load_chunks,
    merged,
    random_splits,
    replay,
    save_chunks,
)
from dockit_core.outputs.summary.writers import element_markup, txt_block

REPO = Path(__file__).resolve().parents[1]
MYSQL_LOG = REPO / "captures" / "mysql_cli.strace.25968.log"
EXAMPLE = REPO / "examples" / "dockit-kvproto"


def dockit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dockit_core.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=REPO,
    )


# -- typed records ------------------------------------------------------------------------------------
def iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="microseconds")


EVENT = RecordType(
    "My_Event", Start=TIME, Wait=DURATION, Count=COUNT, Key=BYTES, Name=TEXT, Token=SECRET, Cut=FLAG
)


def test_a_value_is_written_by_its_declared_type_whatever_its_name() -> None:
    record = EVENT(
        Start=1_795_716_012.713953, Wait=0.0001, Count=3, Key=b"k\x00\x1b\\", Name="n", Token="abc", Cut=True
    )
    assert element_markup(record, None) == (
        f'<My_Event Start="{iso(1_795_716_012.713953)}" Wait="0.000100" Count="3" Key="k\\x00\\x1b\\\\" '
        'Name="n" Token="&lt;redacted&gt;" Cut="true"/>'
    )
    # The same float under another name, declared a time too: a date, not an epoch number.
    other = RecordType("My_Other", When=TIME, Elapsed=DURATION)(When=1_795_716_012.5, Elapsed=2)
    assert element_markup(other, None) == f'<My_Other When="{iso(1_795_716_012.5)}" Elapsed="2.000000"/>'
    assert f"When={iso(1_795_716_012.5)}" in txt_block(other, None)
    # A time of day from a log without dates, with the .ini's date.
    assert 'When="2018-05-08T10:07:39.446765"' in element_markup(
        RecordType("T", When=TIME)(When=36459.446765), "2018-05-08"
    )


def test_false_flags_and_none_values_are_left_out_and_wrong_types_raise() -> None:
    assert EVENT(Name="x", Cut=False).attrs == (("Name", "x"),)
    for wrong in (
        {"Count": "3"},
        {"Count": True},
        {"Start": "now"},
        {"Name": 5},
        {"Key": "text"},
        {"Cut": 1},
    ):
        with pytest.raises(TypeError, match="is declared"):
            EVENT(**wrong)
    with pytest.raises(TypeError, match="has no field 'Nmae'"):
        EVENT(Nmae="typo")


def test_a_decimal_is_written_exactly_as_given_and_a_float_is_refused() -> None:
    """A price as the wire carried it: no binary rounding, no six decimals, no lost trailing zero."""
    price = RecordType("My_Order", Price=DECIMAL, Quantity=COUNT)
    for given, written in (
        ("10.25", "10.25"),
        ("-0.50", "-0.50"),
        ("1.5e3", "1.5e3"),
        (".5", ".5"),
        ("0.1000000000000000000001", "0.1000000000000000000001"),
        (Decimal("19.990"), "19.990"),
        (Decimal("1E+2"), "1E+2"),
        (42, "42"),
    ):
        record = price(Price=given)
        assert record.attr("Price") == written
        assert element_markup(record, None) == f'<My_Order Price="{written}"/>'
        assert DECIMAL.accepts(given)
    for wrong in (
        0.1,
        "abc",
        "1,5",
        "10.25 ",
        "",
        "NaN",
        "inf",
        Decimal("NaN"),
        Decimal("Infinity"),
        True,
        b"1",
    ):
        assert not DECIMAL.accepts(wrong)
        with pytest.raises(TypeError, match="is declared decimal"):
            price(Price=wrong)
    with pytest.raises(TypeError, match="not exact"):
        price(Price=10.25)
    # a peer's text, checked before it is given: what docs/decoders.md shows
    for text, kept in (("10.25", "10.25"), ("ten", None)):
        assert price(Price=text if DECIMAL.accepts(text) else None).attr("Price") == kept
    assert DECIMAL.accepts(None) and not COUNT.accepts("3") and COUNT.accepts(3)


def test_builtin_records_are_typed_and_their_xml_unchanged() -> None:
    query = SqlQuery(
        protocol="mysql", process=7, session="s", text="select 1", start=1_795_716_012.25, duration=0.5
    )
    assert element_markup(query.to_cim(), None) == (
        f'<Dockit_SqlQuery Protocol="mysql" Process="7" Session="s" Start="{iso(1_795_716_012.25)}" '
        'Duration="0.500000" Status="unknown"><Text>select 1</Text></Dockit_SqlQuery>'
    )
    # An untyped object, as decoders built them before RecordType, renders as it always did.
    legacy = CimObject.make("Old", {"Start": 1_795_716_012.25, "Latency": 0.5})
    assert element_markup(legacy, None) == f'<Old Start="{iso(1_795_716_012.25)}" Latency="0.500000"/>'


# -- framing ------------------------------------------------------------------------------------------
def test_line_reader_gives_each_line_once_however_it_is_split() -> None:
    chunks = conversation([(OUT, b"get a\r\nset b 0 0 1\r\n"), (OUT, b"x\r\nget"), (OUT, b" c\r\n")])
    for variant in (chunks, byte_by_byte(chunks), random_splits(chunks, 3)):
        reader = framing.LineReader(b"\r\n")
        lines = [(f.data, f.start.call_index) for c in variant for f in reader.feed(c)]
        assert lines == [(b"get a", 1), (b"set b 0 0 1", 1), (b"x", 2), (b"get c", 2)]
    reader = framing.LineReader(b"\r\n")  # merged: one call carried them all
    assert [f.data for c in merged(chunks) for f in reader.feed(c)] == [
        b"get a",
        b"set b 0 0 1",
        b"x",
        b"get c",
    ]
    reader = framing.LineReader()
    reader.feed(chunk(b"half a li", call_index=9))
    assert reader.reading_since == 9
    reader.feed(chunk(b"ne\n", call_index=10))
    assert reader.reading_since is None


def test_line_reader_caps_a_line_and_resynchronises_after_a_cut() -> None:
    reader = framing.LineReader(max_line=8, starts_message=lambda data: data.startswith(b"GET"))
    frames = reader.feed(chunk(b"0123456789abcdef\nGET x\n"))
    assert [(f.data, f.truncated) for f in frames] == [(b"01234567", True), (b"GET x", False)]
    frames = reader.feed(chunk(b"SET k ", size=100))  # 94 bytes lost after these
    assert [(f.data, f.truncated) for f in frames] == [(b"SET k ", True)]
    assert [f.data for f in reader.feed(chunk(b"GET y\n"))] == [b"GET y"]  # a chunk that starts a message


HEADER = Struct("kind" / Int16ub, "length" / Int32ub)


def test_length_prefixed_reads_a_construct_header_and_skips_exactly_what_was_lost() -> None:
    messages = [
        HEADER.build({"kind": k, "length": len(body)}) + body
        for k, body in ((1, b"hello"), (2, b""), (3, b"x" * 40))
    ]
    chunks = conversation([(IN, b"".join(messages))])
    for variant in (chunks, byte_by_byte(chunks), random_splits(chunks, 1)):
        reader = framing.LengthPrefixed(HEADER)
        frames = [f for c in variant for f in reader.feed(c)]
        assert [(f.header.kind, f.data, f.truncated) for f in frames] == [
            (1, b"hello", False),
            (2, b"", False),
            (3, b"x" * 40, False),
        ]
    reader = framing.LengthPrefixed(HEADER)
    stream = b"".join(messages)
    # two messages, the third's header and 7 bytes of its body; 26 bytes lost; its last 7 bytes.
    frames = reader.feed(chunk(stream[:30], size=len(stream) - 7))
    frames += reader.feed(chunk(stream[-7:]))
    assert [(f.header.kind, f.truncated) for f in frames] == [(1, False), (2, False), (3, True)]
    assert reader.synced


def test_length_prefixed_keeps_a_bounded_head_of_a_huge_claim() -> None:
    reader = framing.LengthPrefixed(HEADER, max_keep=16)
    frames = reader.feed(chunk(HEADER.build({"kind": 9, "length": 4_000_000_000})))
    assert frames == [] and reader.reading_since == 0
    for _ in range(100):
        reader.feed(chunk(b"y" * 100_000))
    assert len(reader.body) == 16  # memory does not follow the length the stream claims


def test_tlv() -> None:
    reader = framing.TLV(type_size=1, length_size=2)
    frames = reader.feed(chunk(b"\x01\x00\x03abc\x02\x00\x00\x07\x00\x01z"))
    assert [(f.header.type, f.data) for f in frames] == [(1, b"abc"), (2, b""), (7, b"z")]


# -- chunks, hex dumps, fixtures --------------------------------------------------------------------------
def test_hex_dumps_of_every_usual_shape() -> None:
    data = bytes(range(40)) + b"SELECT 1"
    xxd = (
        subprocess.run(["xxd"], input=data, capture_output=True).stdout.decode()
        if shutil.which("xxd")
        else None
    )
    hexdump_c = (
        subprocess.run(["hexdump", "-C"], input=data, capture_output=True).stdout.decode()
        if shutil.which("hexdump")
        else None
    )
    for dump in filter(None, (xxd, hexdump_c, hexdump(data), data.hex(), " ".join(f"{b:02x}" for b in data))):
        assert from_hex(dump) == data, dump


def test_a_fixture_file_round_trips(tmp_path: Path) -> None:
    chunks = conversation([(IN, b"KV1 x\n"), (OUT, b"GET a\n")]) + [
        chunk(b"VAL", IN, time=5.0, size=9, call_index=3)
    ]
    info = channel(7379)
    save_chunks(tmp_path / "f.chunks", info, chunks, source="a test")
    loaded = load_chunks(tmp_path / "f.chunks")
    assert loaded.channel == info and loaded.chunks == chunks and loaded.source == "a test"
    assert cut(chunks, 0, 2)[0].missing == 4


def test_extract_writes_a_channel_that_replays_to_the_captures_facts(tmp_path: Path) -> None:
    """PROTOCOL_FACTS.md: mysql_cli logs in as dockit_capture_user, runs 8 statements (one an error)."""
    listing = dockit("extract", str(MYSQL_LOG))
    assert listing.returncode == 0, listing.stderr
    rows = listing.stdout.splitlines()
    assert rows[0].split()[:3] == ["CHANNEL", "KIND", "DECODER"]
    (channel_id,) = [row.split()[0] for row in rows[1:] if row.split()[2] == "mysql"]
    target = tmp_path / "mysql.chunks"
    result = dockit("extract", "--channel", channel_id, "-o", str(target), str(MYSQL_LOG))
    assert result.returncode == 0 and f"wrote {target}" in result.stderr, result.stderr
    fixture = load_chunks(target)
    assert fixture.channel.channel_id == channel_id and fixture.channel.remote_port == 3306
    from decoders.mysql import MySqlDecoder

    from_fixture = replay(target, MySqlDecoder)
    from_log = replay(MYSQL_LOG, MySqlDecoder)
    assert from_fixture.records == from_log.records
    sessions = from_log.of("Dockit_DatabaseSession")
    assert [s.attr("User") for s in sessions] == ["dockit_capture_user"]
    statuses = [q.attr("Status") for q in from_log.of("Dockit_SqlQuery")]
    assert statuses.count("error") == 1 and len(statuses) == 8
    assert from_log.secrets and from_log.failures == []
    missing = dockit("extract", "--channel", "tcp:nothing", str(MYSQL_LOG))
    assert missing.returncode == 2 and missing.stderr.startswith("dockit: no channel 'tcp:nothing'")
    for wrong, says in (
        ("nosuch_module_x:Nope", "cannot import nosuch_module_x"),
        ("nocolon", "module:Class"),
    ):
        bad = dockit("extract", "--decoder", wrong, str(MYSQL_LOG))
        assert bad.returncode == 2 and bad.stdout == "", bad.stderr
        assert bad.stderr.startswith("dockit: ") and says in bad.stderr and bad.stderr.count("\n") == 1
    assert (
        dockit("extract", str(tmp_path / "none.log")).stderr
        == f"dockit: {tmp_path / 'none.log'}: no such file\n"
    )


@pytest.mark.live
@pytest.mark.skipif(shutil.which("tshark") is None or os.geteuid() != 0, reason="needs tshark, as root")
def test_replay_of_a_pcap_that_tshark_recorded(tmp_path: Path) -> None:
    pytest.importorskip("dockit_kvproto")
    from dockit_kvproto import KvDecoder

    from tests.test_example_plugin import CLIENT, kv_server

    pcap = tmp_path / "kv.pcapng"
    with kv_server(name="wire") as port:
        capture = subprocess.Popen(
            ["tshark", "-q", "-i", "lo", "-f", f"tcp port {port}", "-w", str(pcap)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 20
            while not pcap.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(0.5)
            subprocess.run(
                [*CLIENT, "--port", str(port), "SET a 1", "GET a", "DEL b"], capture_output=True, timeout=30
            )
            time.sleep(1)
        finally:
            capture.terminate()
            capture.wait(timeout=20)
    decoded = replay(pcap, KvDecoder)
    assert decoded.table("Command", "Key", "Status", "Error") == [
        ("SET", "a", "ok", None),
        ("GET", "a", "ok", None),
        ("DEL", "b", "error", "no such key"),
    ]
    # The frames carrying the commands, as tshark numbers them, are where the annotations point.
    frames = subprocess.run(
        ["tshark", "-r", str(pcap), "-Y", "tcp.len > 0", "-T", "fields", "-e", "frame.number", "-e", "tcp.payload"],
        capture_output=True, text=True, check=True,
    ).stdout.split("\n")  # fmt: skip
    by_payload = {bytes.fromhex(p.split("\t")[1]): int(p.split("\t")[0]) for p in frames if "\t" in p}
    notes = {a.text: a.call_index for a in decoded.annotations}
    assert notes["kvproto: SET a"] == by_payload[b"SET a 1\n"]


# -- registering and listing ------------------------------------------------------------------------------
def test_an_entry_point_named_unlike_its_class_is_refused_at_load(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("dockit_kvproto")
    plugins = [EntryPoint("kv", "dockit_kvproto:KvDecoder", "dockit.decoders")]
    monkeypatch.setattr(registry_module, "entry_points", lambda group: plugins)
    registry = Registry.default()
    assert registry.by_name("kvproto") is None and registry.by_name("kv") is None
    (failure,) = registry.failures
    assert "entry point 'kv' names dockit_kvproto:KvDecoder, whose `name` is 'kvproto'" in failure.reason


def test_dockit_decoders_lists_where_each_comes_from_and_what_failed(tmp_path: Path) -> None:
    site = tmp_path / "site"
    dist = site / "acme_dockit-2.3.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-dockit\nVersion: 2.3\n")
    (dist / "entry_points.txt").write_text(
        "[dockit.decoders]\nacmekv = acme_kv:AcmeKv\nwrongname = acme_kv:AcmeKv\nbroken = acme_missing:X\n"
    )
    (site / "acme_kv.py").write_text(
        "from dockit_kvproto import KvDecoder\n\nclass AcmeKv(KvDecoder):\n    name = 'acmekv'\n    ports = frozenset({7400})\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), str(EXAMPLE), os.environ.get("PYTHONPATH", "")]),
    }
    result = dockit("decoders", "--decoder", "decoders.http:HttpDecoder", env=env)
    assert result.returncode == 1, result.stderr  # a plugin failed to load
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "PORTS", "FROM", "CLASS"]
    rows = {line.split()[0]: line for line in lines[1:] if line and not line.startswith((" ", "not loaded"))}
    assert "built-in (dockit 0.1.0)" in rows["mysql"] and "3306" in rows["mysql"]
    assert (
        "plugin acme-dockit 2.3" in rows["acmekv"]
        and "7400" in rows["acmekv"]
        and "acme_kv:AcmeKv" in rows["acmekv"]
    )
    assert "--decoder" in rows["http"]
    failed = result.stdout.split("not loaded:\n", 1)[1]
    assert "wrongname (acme_kv:AcmeKv, plugin acme-dockit 2.3): entry point 'wrongname'" in failed
    assert "broken (acme_missing:X, plugin acme-dockit 2.3): No module named 'acme_missing'" in failed


def test_dockit_decoders_with_nothing_wrong_exits_0() -> None:
    result = dockit("decoders")
    assert result.returncode in (0, 1)  # 1 only if this machine has a broken plugin installed
    assert {line.split()[0] for line in result.stdout.splitlines()[1:5]} == {"mysql", "http", "tls", "oracle"}


def test_the_problem_objects_of_a_replay_are_in_the_summary(tmp_path: Path) -> None:
    """A Problem a decoder returns becomes a Dockit_DecoderProblem tied to its channel (KV1's decoder
    reports a server line that is no reply)."""
    pytest.importorskip("dockit_kvproto")
    from dockit_kvproto import KvDecoder

    chunks = conversation([(IN, b"KV1 kvd\n"), (OUT, b"GET a\n"), (IN, b"HELLO\n"), (IN, b"OK\n")])
    save_chunks(tmp_path / "p.chunks", channel(7379), chunks)
    decoded = replay(tmp_path / "p.chunks", KvDecoder)
    assert [(p.severity, p.call_index) for p in decoded.problems] == [("warning", 3)]
    assert "'HELLO'" in decoded.problems[0].message


def test_xml_of_a_problem_names_decoder_channel_and_line(tmp_path: Path) -> None:
    from dockit_core.model.channels import ChannelManager

    records: list[CimObject] = []
    pytest.importorskip("dockit_kvproto")
    from dockit_kvproto import KvDecoder

    manager = ChannelManager(Registry([KvDecoder]), records.append)
    info = channel(7379, channel_id="tcp:127.0.0.1:40000-127.0.0.1:7379")
    for item in conversation([(IN, b"KV1 kvd\n"), (OUT, b"GET a\n"), (IN, b"HELLO\n")]):
        manager.feed_chunk(info, item)
    (problem,) = [r for r in records if r.cim_class == "Dockit_DecoderProblem"]
    element = etree.fromstring(element_markup(problem, None))
    assert element.get("Decoder") == "kvproto" and element.get("Channel") == info.channel_id
    assert (
        element.get("Severity") == "warning" and element.get("Line") == "3" and element.get("Process") == "1"
    )
    assert Direction.IN  # the chunk's direction is the server's
