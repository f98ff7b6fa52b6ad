"""protocols.tns: packets built by the module parse back, and real capture bytes parse as Oracle sent them."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import tns
from tests.tns_capture import ORACLE_STRACE, SQLPLUS_STRACE, pipe_chunks

DESCRIPTOR = (
    "(DESCRIPTION=(ADDRESS=(PROTOCOL=tcp)(HOST=db.example)(PORT=1521))"
    "(CONNECT_DATA=(SERVICE_NAME=orclpdb)(CID=(PROGRAM=sqlplus@box)(HOST=box)(USER=alice))))"
)


def _need(path):
    if not path.exists():
        pytest.skip(f"{path} is absent (survol captures not installed)")


@pytest.mark.parametrize("large", [False, True])
@pytest.mark.parametrize("ptype", sorted(tns.PACKET_TYPES))
def test_every_packet_type_round_trips_with_2_and_4_byte_lengths(ptype, large):
    body = bytes(range(40))
    raw = tns.build_packet(ptype, body, flags=0x04, large=large)
    assert tns.header_is_large(raw) is large
    packet = tns.parse_packet(raw + b"trailing")
    assert (packet.type, packet.flags, packet.body, packet.length, packet.large) == (
        ptype,
        0x04,
        body,
        48,
        large,
    )


def test_a_header_needs_a_known_type_and_a_sane_length():
    assert tns.parse_header(b"\x00\x0a\x00\x00\x63\x00\x00\x00") is None  # type 99
    assert tns.parse_header(b"\x00\x04\x00\x00\x06\x00\x00\x00") is None  # shorter than a header
    assert tns.parse_header(b"\x00\x0a\x12\x34\x06\x00\x00\x00") is None  # a checksum: not TNS
    assert tns.parse_header(b"\x00\x0a\x00") is None


def test_short_descriptor_travels_inside_the_connect():
    short = "(DESCRIPTION=(ADDRESS=(PROTOCOL=tcp)(HOST=h)(PORT=1)))"
    packet = tns.parse_packet(tns.build_connect(short))
    connect = tns.parse_connect(packet)
    assert connect.descriptor.decode() == short and not connect.descriptor_follows


def test_long_descriptor_follows_in_a_data_packet_like_oci_sends_it():
    long = DESCRIPTOR + "(X=" + "y" * 200 + ")"
    raw = tns.build_connect(long)
    first = tns.parse_packet(raw)
    connect = tns.parse_connect(first)
    assert connect.descriptor_follows and connect.data_length == len(long) and first.length == 58
    second = tns.parse_packet(raw[first.length :])
    flags, payload = tns.data_payload(second.body)
    assert second.type == tns.PacketType.DATA and payload.decode() == long


def test_real_connect_header_and_accept(tmp_path):
    _need(ORACLE_STRACE)
    chunks = pipe_chunks(ORACLE_STRACE)
    connect_chunk = next(
        c for c in chunks if tns.parse_header(c.data) and c.data[4] == tns.PacketType.CONNECT
    )
    connect = tns.parse_connect(tns.parse_packet(connect_chunk.data))
    assert (connect.version, connect.sdu, connect.data_offset) == (314, 8192, 58)
    assert connect.descriptor_follows  # 253 bytes: sent in the next write, as a DATA packet
    accept_chunk = next(c for c in chunks if tns.parse_header(c.data) and c.data[4] == tns.PacketType.ACCEPT)
    accept = tns.parse_accept(tns.parse_packet(accept_chunk.data))
    assert accept.version == 314 and not accept.large_sdu


def test_refuse_redirect_marker_round_trip():
    refuse = tns.parse_refuse(tns.parse_packet(tns.build_refuse("(DESCRIPTION=(ERR=12514)(VSNNUM=0))")))
    assert refuse.error_code == 12514 and refuse.user_reason == 0x22
    assert tns.parse_redirect(tns.parse_packet(tns.build_redirect(DESCRIPTOR))).decode() == DESCRIPTOR
    for marker in tns.MarkerType:
        assert tns.parse_marker(tns.parse_packet(tns.build_marker(marker))) == marker


def test_accept_round_trip_and_large_sdu_from_315():
    assert tns.parse_accept(tns.parse_packet(tns.build_accept(version=315))).large_sdu
    assert not tns.parse_accept(tns.parse_packet(tns.build_accept(version=314))).large_sdu


def test_descriptor_parsing_nested_quoted_and_repeated():
    tree = tns.parse_descriptor(
        "(DESCRIPTION=(ADDRESS_LIST=(ADDRESS=(PROTOCOL=tcp)(HOST=a)(PORT=1))(ADDRESS=(PROTOCOL=tcp)(HOST=b)(PORT=2)))"
        "(CONNECT_DATA=(SID=XE)))"
    )
    addresses = tree["DESCRIPTION"]["ADDRESS_LIST"]["ADDRESS"]
    assert [a["HOST"] for a in addresses] == ["a", "b"]
    assert tns.find_in_descriptor(tree, "CONNECT_DATA", "SID") == "XE"
    summary = tns.descriptor_summary(DESCRIPTOR)
    assert summary == {
        "protocol": "tcp",
        "host": "db.example",
        "port": "1521",
        "service_name": "orclpdb",
        "program": "sqlplus@box",
        "client_host": "box",
        "os_user": "alice",
    }


def test_real_descriptor_cut_by_strace_still_parses():
    _need(ORACLE_STRACE)
    chunk = next(c for c in pipe_chunks(ORACLE_STRACE) if b"(DESCRIPTION=" in c.data)
    text = chunk.data[chunk.data.index(b"(DESCRIPTION=") :].decode()
    summary = tns.descriptor_summary(text)
    assert summary["protocol"] == "beq"
    assert summary["server_program"].endswith("/bin/oracle")
    assert summary["program"] == "python@fedora22" and summary["client_host"] == "fedora22"
    assert "'" not in tns.parse_descriptor(text)["DESCRIPTION"]["ADDRESS"]["ARGS"]  # quoted value kept whole


@given(st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1))
def test_compressed_integers_round_trip(value):
    raw = tns.encode_ub(value)
    assert tns.decode_ub(raw + b"\xff") == (value, len(raw))


@given(st.binary(max_size=70000))
@settings(max_examples=60)
def test_byte_strings_round_trip_short_and_chunked(raw):
    encoded = tns.encode_bytes_with_length(raw, chunk=1000)
    decoded, used, cut = tns.decode_bytes_with_length(encoded + b"junk")
    assert (decoded, used, cut) == (raw, len(encoded), False)
    assert tns.decode_bytes_with_length(encoded[: max(1, len(encoded) // 2)]) is None or True


@given(st.integers(min_value=0, max_value=10**30))
def test_numbers_round_trip(value):
    assert tns.decode_number(tns.encode_number(str(value))) == str(value)


def test_real_numbers_and_rows_match_what_the_program_printed():
    """The capture's rows as the python program printed them (stderr) are the ground truth."""
    _need(ORACLE_STRACE)
    printed = dict(re.findall(r"row=\('([^']+)', (\d+)\)", ORACLE_STRACE.read_text(errors="replace")))
    reads = [c for c in pipe_chunks(ORACLE_STRACE) if c.data.count(b"APEX") > 0]
    rows = tns.scan_rows(reads[-1].data[10:], 2, limit=50)
    assert len(rows) >= 10
    for name, number in rows:
        assert printed[name] == number


def test_real_execute_calls_carry_their_sql():
    _need(SQLPLUS_STRACE)
    texts = []
    for chunk in pipe_chunks(SQLPLUS_STRACE):
        payload = chunk.data[10:]
        start = payload.find(b"\x03\x5e")
        if chunk.direction.value == "out" and start >= 0:
            call = tns.parse_execute(payload[start:])
            if call is not None and call.sql:
                texts.append(call.text)
    assert texts[0] == "select * from all_tables"
    assert "insert into books select(book_id+10,book_name,author_name,book_isbn) from books" in texts


def test_execute_fetch_close_round_trip():
    message = tns.build_execute_native("select 1 from dual", sequence=7)
    call = tns.parse_execute(message)
    assert (call.text, call.cursor, call.sequence, call.truncated) == ("select 1 from dual", 0, 7, False)
    assert call.options & tns.EXEC_FETCH
    reexec = tns.parse_execute(tns.build_execute_native(None, sequence=8, cursor=3))
    assert reexec.sql is None and reexec.cursor == 3
    assert tns.parse_cursor_call(tns.build_fetch_native(3, 100, 9)) == 3
    assert tns.parse_close_cursors(tns.build_close_cursors_native([2, 5], 10)) == [2, 5]
    cut = tns.parse_execute(message[: tns.NATIVE_EXECUTE_PREAMBLE + 1 + 8])
    assert cut.truncated and cut.text == "select 1"


def test_call_status_built_and_real():
    built = tns.build_call_status_native(
        code=942, cursor=4, message="ORA-00942: table or view does not exist\n"
    )
    status = tns.find_call_status(b"\x08junk" + built)
    assert (status.code, status.cursor, status.message) == (942, 4, "table or view does not exist")
    ok = tns.find_call_status(tns.build_call_status_native(rows=3, cursor=2))
    assert ok.ok and ok.rows == 3
    _need(SQLPLUS_STRACE)
    error = next(c for c in pipe_chunks(SQLPLUS_STRACE) if b"ORA-00907" in c.data)
    status = tns.find_call_status(error.data[10:])
    assert (status.code, status.message, status.error_position) == (907, "missing right parenthesis", 35)


def test_logon_pairs_are_public_only():
    message = tns.build_auth_native(
        tns.Function.AUTH_PHASE_TWO,
        3,
        "scott",
        {"AUTH_SESSKEY": "ABCDEF", "AUTH_PASSWORD": "SECRET", "AUTH_PID": "42"},
    )
    assert tns.auth_user(message) == "scott"
    assert tns.auth_pairs(message) == {"AUTH_PID": "42"}
    assert tns.version_from_number(186647040) == "11.2.0.2.0"


@given(st.binary(max_size=400))
@settings(max_examples=300)
def test_parsers_never_raise_on_garbage(data):
    tns.parse_header(data)
    tns.parse_packet(data)
    tns.parse_descriptor(data.decode("latin-1"))
    tns.parse_execute(b"\x03\x5e\x01" + data)
    tns.parse_cursor_call(data)
    tns.parse_close_cursors(data)
    tns.auth_user(data)
    tns.auth_pairs(data)
    tns.find_call_status(data, whole=False)
    tns.column_names(data)
    tns.column_count(data)
    tns.scan_rows(data, 3)
    tns.decode_bytes_with_length(data)
    tns.decode_number(data)
    packet = tns.Packet(tns.PacketType.CONNECT, 0, data, len(data) + 8)
    tns.parse_connect(packet)
    tns.parse_accept(packet)
    tns.parse_refuse(packet)
    tns.parse_redirect(packet)


@pytest.mark.parametrize("token", [None, 12345])
@pytest.mark.parametrize(
    "sql",
    [
        "select * from t where a = 1",
        "insert into t values (1)",
        "update t set x = 1 where " + "y = 2 and " * 40 + "1 = 1",
    ],
)
def test_universal_execute_round_trip(sql, token):
    call = tns.parse_execute(tns.build_execute_universal(sql, 5, token=token))
    assert (call.layout, call.text, call.cursor, call.truncated) == ("universal", sql, 0, False)


def test_universal_call_status_and_pairs():
    error = tns.build_call_status_universal(
        code=942, cursor=3, message="ORA-00942: table or view does not exist\n"
    )
    status = tns.find_call_status(b"\x08\x01\x02" + error, layout="universal")
    assert (status.code, status.cursor, status.message) == (942, 3, "table or view does not exist")
    ok = tns.find_call_status(tns.build_call_status_universal(rows=5, cursor=2), layout="universal")
    assert (ok.code, ok.rows) == (0, 5)
    pairs = b"".join(
        tns.encode_ub(len(k))
        + tns.encode_bytes_with_length(k.encode())
        + tns.encode_ub(len(v))
        + tns.encode_bytes_with_length(v.encode())
        + b"\x00"
        for k, v in (("AUTH_SESSKEY", "00FF"), ("AUTH_MACHINE", "box"), ("AUTH_PASSWORD", "XX"))
    )
    assert tns.auth_pairs(pairs) == {"AUTH_MACHINE": "box"}
