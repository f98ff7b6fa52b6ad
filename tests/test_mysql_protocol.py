"""protocols.mysql: frames built by the module parse back to what was built, and real packets from the
MariaDB server on 127.0.0.1:3306 parse to what the server says about itself."""

from __future__ import annotations

import datetime
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import mysql as p


@given(st.integers(0, (1 << 64) - 1))
def test_lenenc_int_round_trip(value: int) -> None:
    raw = p.lenenc_int(value)
    reader = p.Reader(raw)
    assert reader.lenenc() == value and reader.remaining == 0


def test_lenenc_int_boundaries() -> None:
    assert p.lenenc_int(250) == b"\xfa"
    assert p.lenenc_int(251) == b"\xfc\xfb\x00"
    assert p.lenenc_int(0xFFFF) == b"\xfc\xff\xff"
    assert p.lenenc_int(0x10000) == b"\xfd\x00\x00\x01"
    assert p.lenenc_int(1 << 24) == b"\xfe" + (1 << 24).to_bytes(8, "little")
    assert p.Reader(b"\xfb").lenenc() is None  # NULL in a text row
    with pytest.raises(p.MySqlError):
        p.Reader(b"\xfc\x01").lenenc()


def test_packet_header_and_continuation() -> None:
    assert p.packets(b"\x03SELECT 1", 0) == b"\x09\x00\x00\x00\x03SELECT 1"
    big = b"\x03" + b"x" * p.MAX_PAYLOAD
    raw = p.packets(big, 0)
    first = p.PacketHeader.parse(raw[:4])
    assert (first.length, first.sequence_id) == (p.MAX_PAYLOAD, 0)
    second = p.PacketHeader.parse(raw[4 + p.MAX_PAYLOAD :][:4])
    assert (second.length, second.sequence_id) == (1, 1)
    exact = p.packets(b"y" * p.MAX_PAYLOAD, 5)
    assert exact[-4:] == b"\x00\x00\x00\x06"  # an exactly-full payload is followed by an empty packet


def test_greeting_round_trip() -> None:
    caps = p.CLIENT_PROTOCOL_41 | p.CLIENT_SECURE_CONNECTION | p.CLIENT_PLUGIN_AUTH | p.CLIENT_DEPRECATE_EOF
    caps |= p.MARIADB_CLIENT_CACHE_METADATA
    g = p.parse_greeting(p.build_greeting("5.5.5-10.11.19-MariaDB", 1234, caps))
    assert (g.server_version, g.connection_id, g.auth_plugin) == (
        "5.5.5-10.11.19-MariaDB",
        1234,
        "mysql_native_password",
    )
    assert g.capabilities == caps


def test_handshake_response_round_trip_keeps_no_auth_data() -> None:
    caps = p.CLIENT_LONG_PASSWORD | p.CLIENT_SECURE_CONNECTION | p.CLIENT_PLUGIN_AUTH | p.CLIENT_CONNECT_ATTRS
    raw = p.build_handshake_response(
        caps, "alice", database="shop", auth_response=b"\x01" * 20, attributes={"_client_name": "t"}
    )
    r = p.parse_handshake_response(raw)
    assert (r.user, r.database, r.auth_plugin, r.attributes, r.ssl_request) == (
        "alice", "shop", "mysql_native_password", {"_client_name": "t"}, False
    )  # fmt: skip
    assert b"\x01" * 20 not in repr(r).encode()
    ssl = p.SslRequest.build(
        {"capabilities": p.CLIENT_PROTOCOL_41 | p.CLIENT_SSL, "max_packet_size": 0, "character_set": 8,
         "filler": bytes(19), "mariadb_capabilities": 0}
    )  # fmt: skip
    assert len(ssl) == 32 and p.parse_handshake_response(ssl).ssl_request


def test_ok_err_eof() -> None:
    ok = p.parse_ok(p.build_ok(affected_rows=300, last_insert_id=70000, status=p.SERVER_MORE_RESULTS_EXISTS))
    assert (ok.affected_rows, ok.last_insert_id, ok.status) == (300, 70000, p.SERVER_MORE_RESULTS_EXISTS)
    err = p.parse_err(p.build_err(1146, "42S02", "Table 'test.nope' doesn't exist"))
    assert (err.code, err.sql_state, err.message) == (1146, "42S02", "Table 'test.nope' doesn't exist")
    assert p.parse_err(b"\xff\x15\x04Access denied").sql_state is None  # pre-4.1 / handshake ERR
    assert p.is_eof(p.build_eof()) and not p.is_eof(b"\xfe" + b"\0" * 9)
    assert (
        p.parse_eof(p.build_eof(status=p.SERVER_STATUS_CURSOR_EXISTS)).status == p.SERVER_STATUS_CURSOR_EXISTS
    )


def test_column_and_rows() -> None:
    col = p.parse_column(p.build_column("score", p.TYPE_DOUBLE, table="t1", schema="test"))
    assert (col.name, col.type, col.table, col.schema) == ("score", p.TYPE_DOUBLE, "t1", "test")
    assert p.parse_text_row(p.build_text_row([b"1", None, b"caf\xc3\xa9"])) == ["1", None, "café"]
    columns = [p.Column(name="a", type=p.TYPE_LONGLONG), p.Column(name="b", type=p.TYPE_VAR_STRING),
               p.Column(name="c", type=p.TYPE_DATETIME)]  # fmt: skip
    row = b"\x00" + bytes([0b00010000]) + (7).to_bytes(8, "little", signed=True) + p.lenenc_str(b"hi")
    assert p.parse_binary_row(row, columns) == ["7", "hi", None]


def test_execute_round_trip_and_remembered_types() -> None:
    when = datetime.datetime(2020, 1, 2, 3, 4, 5, 6)
    params = [42, -1.5, "bob", None, when, b"\xff\x00"]
    first = p.parse_execute(p.build_execute(9, params), len(params))
    assert first.statement_id == 9
    assert first.parameters == ["42", "-1.5", "bob", None, "2020-01-02 03:04:05.000006", "\\xff\x00"]
    # Without new-params-bound the types come from the earlier execute of the same statement.
    again = p.parse_execute(
        p.build_execute(9, [1, 2.0, "x", None, when, b"z"], bind_types=False), 6, first.types
    )
    assert (
        again.parameters == ["1", "2.0", "x", None, "2020-01-02 03:04:05.000006", "z"] and again.types is None
    )
    with pytest.raises(p.MySqlError):
        p.parse_execute(p.build_execute(9, [1], bind_types=False), 1, None)
    assert p.parse_execute(p.build_execute(9, [1, 2]), 2, None, frozenset({1})).parameters == [
        "1",
        "<long data>",
    ]


def test_prepare_ok_round_trip() -> None:
    ok = p.parse_prepare_ok(p.build_prepare_ok(5, 3, 2))
    assert (ok.statement_id, ok.num_columns, ok.num_params) == (5, 3, 2)


def test_short_payloads_raise_mysql_error_only() -> None:
    samples = [
        p.build_greeting(
            "10.11", 1, p.CLIENT_PROTOCOL_41 | p.CLIENT_SECURE_CONNECTION | p.CLIENT_PLUGIN_AUTH
        ),
        p.build_handshake_response(p.CLIENT_SECURE_CONNECTION | p.CLIENT_PLUGIN_AUTH, "u", database="d"),
        p.build_column("c"),
        p.build_execute(1, [1, "a"]),
    ]
    parsers = [p.parse_greeting, p.parse_handshake_response, p.parse_column, lambda b: p.parse_execute(b, 2)]
    for raw, parse in zip(samples, parsers, strict=True):
        for cut in range(len(raw)):
            try:
                parse(raw[:cut])
            except p.MySqlError:
                pass


def _server_greeting() -> bytes | None:
    try:
        with socket.create_connection(("127.0.0.1", 3306), timeout=2) as sock:
            data = sock.recv(4096)
    except OSError:
        return None
    return data


def test_real_server_greeting() -> None:
    raw = _server_greeting()
    if raw is None:
        pytest.skip("no MariaDB/MySQL server on 127.0.0.1:3306")
    import pymysql

    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="")
    with conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        version = cur.fetchone()[0]
    conn.close()
    header = p.PacketHeader.parse(raw[:4])
    assert header.sequence_id == 0 and header.length == len(raw) - 4
    greeting = p.parse_greeting(raw[4:])
    # MariaDB prefixes "5.5.5-" for clients that expect a 5.x server.
    assert greeting.server_version.removeprefix("5.5.5-") == version
    assert greeting.capabilities & p.CLIENT_PROTOCOL_41 and greeting.auth_plugin


def test_query_attributes_round_trip() -> None:
    """MySQL 8's CLIENT_QUERY_ATTRIBUTES prefix (no MySQL 8 server here: built from the layout)."""
    body = p.build_query_attributes(b"SELECT 1", {"trace_id": "abc", "user": "u"})
    assert p.parse_query_attributes(body) == ({"trace_id": "abc", "user": "u"}, b"SELECT 1")
    assert p.parse_query_attributes(b"\x00\x01SELECT 2") == ({}, b"SELECT 2")


def test_execute_cut_among_values() -> None:
    raw = p.build_execute(3, [1, "long text value", 2])
    with pytest.raises(p.MySqlError):
        p.parse_execute(raw[:-12], 3)
    assert p.parse_execute(raw[:-12], 3, partial=True).parameters == ["1"]
