"""The protocol's numbers: command bytes (and their names), capability and status flags, column types.

Named as in the MySQL and MariaDB documentation; the values only, for the other modules of this
package and the decoder. Not here: character set numbers (but 63, binary), error codes.
"""

from __future__ import annotations

# Commands (the first byte of a client packet in the command phase).
COM_SLEEP = 0x00
COM_QUIT = 0x01
COM_INIT_DB = 0x02
COM_QUERY = 0x03
COM_FIELD_LIST = 0x04
COM_CREATE_DB = 0x05
COM_DROP_DB = 0x06
COM_REFRESH = 0x07
COM_SHUTDOWN = 0x08
COM_STATISTICS = 0x09
COM_PROCESS_INFO = 0x0A
COM_CONNECT = 0x0B
COM_PROCESS_KILL = 0x0C
COM_DEBUG = 0x0D
COM_PING = 0x0E
COM_CHANGE_USER = 0x11
COM_BINLOG_DUMP = 0x12
COM_STMT_PREPARE = 0x16
COM_STMT_EXECUTE = 0x17
COM_STMT_SEND_LONG_DATA = 0x18
COM_STMT_CLOSE = 0x19
COM_STMT_RESET = 0x1A
COM_SET_OPTION = 0x1B
COM_STMT_FETCH = 0x1C
COM_RESET_CONNECTION = 0x1F
COM_STMT_BULK_EXECUTE = 0xFA

COMMAND_NAMES: dict[int, str] = {
    COM_SLEEP: "sleep",
    COM_QUIT: "quit",
    COM_INIT_DB: "init db",
    COM_QUERY: "query",
    COM_FIELD_LIST: "field list",
    COM_CREATE_DB: "create db",
    COM_DROP_DB: "drop db",
    COM_REFRESH: "refresh",
    COM_SHUTDOWN: "shutdown",
    COM_STATISTICS: "statistics",
    COM_PROCESS_INFO: "process info",
    COM_CONNECT: "connect",
    COM_PROCESS_KILL: "process kill",
    COM_DEBUG: "debug",
    COM_PING: "ping",
    COM_CHANGE_USER: "change user",
    COM_BINLOG_DUMP: "binlog dump",
    COM_STMT_PREPARE: "prepare",
    COM_STMT_EXECUTE: "execute",
    COM_STMT_SEND_LONG_DATA: "send long data",
    COM_STMT_CLOSE: "close statement",
    COM_STMT_RESET: "reset statement",
    COM_SET_OPTION: "set option",
    COM_STMT_FETCH: "fetch",
    COM_RESET_CONNECTION: "reset connection",
    COM_STMT_BULK_EXECUTE: "bulk execute",
}

# Capability flags (the lower 32 bits; MariaDB's own flags travel separately, see below).
CLIENT_LONG_PASSWORD = 1 << 0  # unset by a MariaDB server: its extended capabilities are then sent
CLIENT_FOUND_ROWS = 1 << 1
CLIENT_CONNECT_WITH_DB = 1 << 3
CLIENT_COMPRESS = 1 << 5
CLIENT_LOCAL_FILES = 1 << 7
CLIENT_PROTOCOL_41 = 1 << 9
CLIENT_SSL = 1 << 11
CLIENT_TRANSACTIONS = 1 << 13
CLIENT_SECURE_CONNECTION = 1 << 15
CLIENT_MULTI_STATEMENTS = 1 << 16
CLIENT_MULTI_RESULTS = 1 << 17
CLIENT_PS_MULTI_RESULTS = 1 << 18
CLIENT_PLUGIN_AUTH = 1 << 19
CLIENT_CONNECT_ATTRS = 1 << 20
CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA = 1 << 21
CLIENT_SESSION_TRACK = 1 << 23
CLIENT_DEPRECATE_EOF = 1 << 24
CLIENT_OPTIONAL_RESULTSET_METADATA = 1 << 25
CLIENT_QUERY_ATTRIBUTES = 1 << 27
# MariaDB extended capabilities, kept as bits 32+ of one integer.
MARIADB_CLIENT_PROGRESS = 1 << 32
MARIADB_CLIENT_STMT_BULK_OPERATIONS = 1 << 34
MARIADB_CLIENT_EXTENDED_METADATA = 1 << 35
MARIADB_CLIENT_CACHE_METADATA = 1 << 36

SERVER_MORE_RESULTS_EXISTS = 0x0008
SERVER_STATUS_CURSOR_EXISTS = 0x0040

# Column / parameter types.
TYPE_DECIMAL = 0x00
TYPE_TINY = 0x01
TYPE_SHORT = 0x02
TYPE_LONG = 0x03
TYPE_FLOAT = 0x04
TYPE_DOUBLE = 0x05
TYPE_NULL = 0x06
TYPE_TIMESTAMP = 0x07
TYPE_LONGLONG = 0x08
TYPE_INT24 = 0x09
TYPE_DATE = 0x0A
TYPE_TIME = 0x0B
TYPE_DATETIME = 0x0C
TYPE_YEAR = 0x0D
TYPE_NEWDATE = 0x0E
TYPE_VARCHAR = 0x0F
TYPE_BIT = 0x10
TYPE_JSON = 0xF5
TYPE_NEWDECIMAL = 0xF6
TYPE_ENUM = 0xF7
TYPE_SET = 0xF8
TYPE_TINY_BLOB = 0xF9
TYPE_MEDIUM_BLOB = 0xFA
TYPE_LONG_BLOB = 0xFB
TYPE_BLOB = 0xFC
TYPE_VAR_STRING = 0xFD
TYPE_STRING = 0xFE
TYPE_GEOMETRY = 0xFF

UNSIGNED_FLAG = 0x20  # in a column definition's flags
PARAM_UNSIGNED = 0x80  # in the second byte of a parameter's type
BINARY_CHARSET = 63
