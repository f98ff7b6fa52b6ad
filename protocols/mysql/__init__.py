"""The MySQL / MariaDB client-server wire format: complete packets in, messages out (and back).

Pure functions, no state, one module per part of the protocol:
- `codec`: the packet header (3-byte little-endian length, sequence id), length-encoded integers and
  strings, the bounds-checked `Reader`, and `MySqlError`;
- `constants`: command bytes and names, capability and status flags, column types;
- `handshake`: the server greeting (handshake v10, MariaDB's extended capabilities included), the
  client's SSL request and HandshakeResponse41 (user, database, capabilities; the auth response is
  skipped and never kept);
- `replies`: OK / ERR / EOF;
- `resultset`: column definitions (with MariaDB extended metadata), text and binary result rows;
- `values`: the binary protocol's values (rows and parameters of prepared statements);
- `prepared`: COM_STMT_PREPARE_OK and COM_STMT_EXECUTE parameters (NULL bitmap, types, binary
  values), MySQL 8 query attributes before a COM_QUERY's text.
Builders for each (tests and fuzzing).

Not here: the compressed protocol's framing (CLIENT_COMPRESS; decoders/mysql/stream.py unwraps it),
anything after an SSL request (it is TLS), the old pre-4.1 handshake response (only its capabilities
and user), session-state tracking info in OK packets, COM_STMT_BULK_EXECUTE, replication and
COM_BINLOG_DUMP.

Parsers raise `MySqlError` (a ValueError) on a payload too short or malformed for what it claims
(`parse_execute(partial=True)` excepted); framing, state and partial packets are the decoder's
business (decoders/mysql/).

This package re-exports the names its users take from it (`from protocols import mysql as p`, then
`p.X`); new code may import from the module that holds a name.
"""

from protocols.mysql.codec import (
    MAX_PAYLOAD,
    MySqlError,
    PacketHeader,
    Reader,
    lenenc_int,
    lenenc_str,
    packets,
    text,
)
from protocols.mysql.constants import (
    CLIENT_COMPRESS,
    CLIENT_CONNECT_ATTRS,
    CLIENT_DEPRECATE_EOF,
    CLIENT_LONG_PASSWORD,
    CLIENT_MULTI_RESULTS,
    CLIENT_MULTI_STATEMENTS,
    CLIENT_OPTIONAL_RESULTSET_METADATA,
    CLIENT_PLUGIN_AUTH,
    CLIENT_PROTOCOL_41,
    CLIENT_QUERY_ATTRIBUTES,
    CLIENT_SECURE_CONNECTION,
    CLIENT_SSL,
    CLIENT_TRANSACTIONS,
    COM_CHANGE_USER,
    COM_CONNECT,
    COM_CREATE_DB,
    COM_DEBUG,
    COM_DROP_DB,
    COM_FIELD_LIST,
    COM_INIT_DB,
    COM_PING,
    COM_PROCESS_INFO,
    COM_PROCESS_KILL,
    COM_QUERY,
    COM_QUIT,
    COM_REFRESH,
    COM_RESET_CONNECTION,
    COM_SET_OPTION,
    COM_SHUTDOWN,
    COM_SLEEP,
    COM_STATISTICS,
    COM_STMT_CLOSE,
    COM_STMT_EXECUTE,
    COM_STMT_FETCH,
    COM_STMT_PREPARE,
    COM_STMT_RESET,
    COM_STMT_SEND_LONG_DATA,
    COMMAND_NAMES,
    MARIADB_CLIENT_CACHE_METADATA,
    MARIADB_CLIENT_EXTENDED_METADATA,
    SERVER_MORE_RESULTS_EXISTS,
    SERVER_STATUS_CURSOR_EXISTS,
    TYPE_DATETIME,
    TYPE_DOUBLE,
    TYPE_LONGLONG,
    TYPE_VAR_STRING,
)
from protocols.mysql.handshake import (
    SslRequest,
    build_greeting,
    build_handshake_response,
    change_user_database,
    parse_greeting,
    parse_handshake_response,
)
from protocols.mysql.prepared import (
    build_execute,
    build_prepare_ok,
    build_query_attributes,
    parse_execute,
    parse_prepare_ok,
    parse_query_attributes,
)
from protocols.mysql.replies import (
    build_eof,
    build_err,
    build_ok,
    eof_status,
    is_eof,
    parse_eof,
    parse_err,
    parse_ok,
)
from protocols.mysql.resultset import (
    Column,
    build_column,
    build_text_row,
    parse_binary_row,
    parse_column,
    parse_text_row,
)

__all__ = [
    "CLIENT_COMPRESS",
    "CLIENT_CONNECT_ATTRS",
    "CLIENT_DEPRECATE_EOF",
    "CLIENT_LONG_PASSWORD",
    "CLIENT_MULTI_RESULTS",
    "CLIENT_MULTI_STATEMENTS",
    "CLIENT_OPTIONAL_RESULTSET_METADATA",
    "CLIENT_PLUGIN_AUTH",
    "CLIENT_PROTOCOL_41",
    "CLIENT_QUERY_ATTRIBUTES",
    "CLIENT_SECURE_CONNECTION",
    "CLIENT_SSL",
    "CLIENT_TRANSACTIONS",
    "COMMAND_NAMES",
    "COM_CHANGE_USER",
    "COM_CONNECT",
    "COM_CREATE_DB",
    "COM_DEBUG",
    "COM_DROP_DB",
    "COM_FIELD_LIST",
    "COM_INIT_DB",
    "COM_PING",
    "COM_PROCESS_INFO",
    "COM_PROCESS_KILL",
    "COM_QUERY",
    "COM_QUIT",
    "COM_REFRESH",
    "COM_RESET_CONNECTION",
    "COM_SET_OPTION",
    "COM_SHUTDOWN",
    "COM_SLEEP",
    "COM_STATISTICS",
    "COM_STMT_CLOSE",
    "COM_STMT_EXECUTE",
    "COM_STMT_FETCH",
    "COM_STMT_PREPARE",
    "COM_STMT_RESET",
    "COM_STMT_SEND_LONG_DATA",
    "Column",
    "MARIADB_CLIENT_CACHE_METADATA",
    "MARIADB_CLIENT_EXTENDED_METADATA",
    "MAX_PAYLOAD",
    "MySqlError",
    "PacketHeader",
    "Reader",
    "SERVER_MORE_RESULTS_EXISTS",
    "SERVER_STATUS_CURSOR_EXISTS",
    "SslRequest",
    "TYPE_DATETIME",
    "TYPE_DOUBLE",
    "TYPE_LONGLONG",
    "TYPE_VAR_STRING",
    "build_column",
    "build_eof",
    "build_err",
    "build_execute",
    "build_greeting",
    "build_handshake_response",
    "build_ok",
    "build_prepare_ok",
    "build_query_attributes",
    "build_text_row",
    "eof_status",
    "is_eof",
    "lenenc_int",
    "lenenc_str",
    "packets",
    "parse_binary_row",
    "parse_column",
    "parse_eof",
    "parse_err",
    "parse_execute",
    "parse_greeting",
    "parse_handshake_response",
    "change_user_database",
    "parse_ok",
    "parse_prepare_ok",
    "parse_query_attributes",
    "parse_text_row",
    "text",
]
