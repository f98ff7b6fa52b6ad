"""Oracle Net (TNS) packets and the TTC messages inside them: complete frames in, values out, and back.

Pure functions, no state, one module per layer:
- `packets`: TNS framing, the header (2- or 4-byte length) and the CONNECT, ACCEPT, REFUSE, REDIRECT,
  DATA and MARKER bodies;
- `descriptor`: the connect descriptor `(DESCRIPTION=(ADDRESS=...)(CONNECT_DATA=...))` as a nested dict;
- `ttc`: the codes of the TTC layer a DATA packet carries (message types, function codes, OALL8 options);
- `datatypes`: TTC values, Oracle's compressed ("universal") integers, length-prefixed byte strings,
  NUMBER and DATE;
- `calls`: the client's OALL8 parse/execute/fetch call and its SQL text, fetch, re-execute and
  close-cursors calls naming a cursor, in the *native* representation that 11g OCI clients (sqlplus,
  cx_Oracle) negotiate on x86_64 and in the universal one;
- `logon`: the AUTH calls' user and public key/value pairs, and the server's version;
- `replies`: the end-of-call status message (rows so far, ORA- code, cursor id, error position),
  column names and the first rows.

Not decoded: bind values, LOBs, object types, the advanced networking (ANO) negotiation, the
data-type negotiation. Layouts were learnt from real captures and from reading python-oracledb (thin
mode) and Wireshark's TNS dissector; no public specification exists. Builders are provided so that
tests can make packets from these modules and parse them back.

This package re-exports the names its users take from it (`from protocols import tns`, then `tns.X`);
new code may import from the module that holds a name.
"""

from protocols.tns.calls import (
    NATIVE_EXECUTE_PREAMBLE,
    SQL_START,
    build_close_cursors_native,
    build_execute_native,
    build_execute_universal,
    build_fetch_native,
    next_call,
    parse_close_cursors,
    parse_cursor_call,
    parse_execute,
)
from protocols.tns.datatypes import (
    decode_bytes_with_length,
    decode_number,
    decode_ub,
    encode_bytes_with_length,
    encode_number,
    encode_ub,
    is_printable,
)
from protocols.tns.descriptor import descriptor_summary, find_in_descriptor, parse_descriptor
from protocols.tns.logon import auth_pairs, auth_user, build_auth_native, native_pair, version_from_number
from protocols.tns.packets import (
    DATA_FLAG_EOF,
    HEADER_SIZE,
    MAX_PACKET,
    PACKET_TYPES,
    Header,
    MarkerType,
    Packet,
    PacketType,
    build_accept,
    build_connect,
    build_data,
    build_marker,
    build_packet,
    build_redirect,
    build_refuse,
    data_payload,
    header_is_large,
    parse_accept,
    parse_connect,
    parse_header,
    parse_marker,
    parse_packet,
    parse_redirect,
    parse_refuse,
)
from protocols.tns.replies import (
    CallStatus,
    build_call_status_native,
    build_call_status_universal,
    column_count,
    column_names,
    find_call_status,
    find_ora_error,
    scan_rows,
)
from protocols.tns.ttc import EXEC_FETCH, Function, MessageType

__all__ = [
    "CallStatus",
    "DATA_FLAG_EOF",
    "EXEC_FETCH",
    "Function",
    "HEADER_SIZE",
    "Header",
    "MAX_PACKET",
    "MarkerType",
    "MessageType",
    "NATIVE_EXECUTE_PREAMBLE",
    "PACKET_TYPES",
    "Packet",
    "PacketType",
    "SQL_START",
    "auth_pairs",
    "auth_user",
    "build_accept",
    "build_auth_native",
    "build_call_status_native",
    "build_call_status_universal",
    "build_close_cursors_native",
    "build_connect",
    "build_data",
    "build_execute_native",
    "build_execute_universal",
    "build_fetch_native",
    "build_marker",
    "build_packet",
    "build_redirect",
    "build_refuse",
    "column_count",
    "column_names",
    "data_payload",
    "decode_bytes_with_length",
    "decode_number",
    "decode_ub",
    "descriptor_summary",
    "encode_bytes_with_length",
    "encode_number",
    "encode_ub",
    "find_call_status",
    "find_in_descriptor",
    "find_ora_error",
    "header_is_large",
    "is_printable",
    "native_pair",
    "next_call",
    "parse_accept",
    "parse_close_cursors",
    "parse_connect",
    "parse_cursor_call",
    "parse_descriptor",
    "parse_execute",
    "parse_header",
    "parse_marker",
    "parse_packet",
    "parse_redirect",
    "parse_refuse",
    "scan_rows",
    "version_from_number",
]
