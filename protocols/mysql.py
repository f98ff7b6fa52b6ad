"""The MySQL / MariaDB client-server wire format: complete packets in, messages out (and back).

Decoded: the packet header (3-byte little-endian length, sequence id), length-encoded integers and
strings, the server greeting (handshake v10, MariaDB's extended capabilities included), the client's
SSL request and HandshakeResponse41 (user, database, capabilities; the auth response is skipped and
never kept), OK / ERR / EOF, column definitions (with MariaDB extended metadata), text and binary
result rows, COM_STMT_PREPARE_OK and COM_STMT_EXECUTE parameters (NULL bitmap, types, binary values),
MySQL 8 query attributes before a COM_QUERY's text. Builders for each (tests and fuzzing).

Not here: the compressed protocol's framing (CLIENT_COMPRESS; decoders/mysql.py unwraps it), anything
after an SSL request (it is TLS), the old
pre-4.1 handshake response (only its capabilities and user), session-state tracking info in OK packets,
COM_STMT_BULK_EXECUTE, replication and COM_BINLOG_DUMP.

Parsers raise `MySqlError` (a ValueError) on a payload too short or malformed for what it claims
(`parse_execute(partial=True)` excepted); framing, state and partial packets are the decoder's
business (decoders/mysql.py).
"""

from __future__ import annotations

import datetime
import struct
from dataclasses import dataclass, field

from construct import Bytes, Int8ul, Int24ul, Int32ul, Struct, this

MAX_PAYLOAD = 0xFFFFFF  # a payload of exactly this length continues in the next packet

PacketHeader = Struct("length" / Int24ul, "sequence_id" / Int8ul)
Packet = Struct("length" / Int24ul, "sequence_id" / Int8ul, "payload" / Bytes(this.length))
SslRequest = Struct(
    "capabilities" / Int32ul,
    "max_packet_size" / Int32ul,
    "character_set" / Int8ul,
    "filler" / Bytes(19),
    "mariadb_capabilities" / Int32ul,
)


class MySqlError(ValueError):
    """A payload that does not parse as the message it should be."""


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

_FIXED_INT: dict[int, tuple[str, int]] = {
    TYPE_TINY: ("b", 1),
    TYPE_SHORT: ("h", 2),
    TYPE_YEAR: ("h", 2),
    TYPE_LONG: ("i", 4),
    TYPE_INT24: ("i", 4),
    TYPE_LONGLONG: ("q", 8),
}
_DATES = frozenset({TYPE_DATE, TYPE_DATETIME, TYPE_TIMESTAMP, TYPE_NEWDATE})


class Reader:
    """A cursor over one payload; every read checks the bounds, so a short payload is an error."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = bytes(data)  # slices of bytes are bytes: no copy per read
        self.pos = pos

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def _short(self, n: int) -> MySqlError:
        return MySqlError(f"need {n} bytes at {self.pos}, payload has {len(self.data)}")

    def take(self, n: int) -> bytes:
        pos = self.pos
        end = pos + n
        if n < 0 or end > len(self.data):
            raise self._short(n)
        self.pos = end
        return self.data[pos:end]

    def int(self, n: int) -> int:
        pos = self.pos
        end = pos + n
        if end > len(self.data):
            raise self._short(n)
        self.pos = end
        return self.data[pos] if n == 1 else int.from_bytes(self.data[pos:end], "little")

    def lenenc(self) -> int | None:
        """A length-encoded integer; None for 0xfb (NULL in a text row)."""
        if self.pos >= len(self.data):
            raise self._short(1)
        first = self.data[self.pos]
        self.pos += 1
        if first < 0xFB:
            return first
        if first == 0xFB:
            return None
        if first == 0xFC:
            return self.int(2)
        if first == 0xFD:
            return self.int(3)
        if first == 0xFE:
            return self.int(8)
        raise MySqlError("0xff is not a length-encoded integer")

    def lenenc_bytes(self) -> bytes | None:
        length = self.lenenc()
        return None if length is None else self.take(length)

    def nul_string(self) -> bytes:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise MySqlError("string without its NUL terminator")
        out = self.data[self.pos : end]
        self.pos = end + 1
        return out

    def rest(self) -> bytes:
        out = self.data[self.pos :]
        self.pos = len(self.data)
        return out


def text(raw: bytes | None) -> str | None:
    """Bytes from the wire as text: UTF-8 when it is, backslash escapes for the rest."""
    return None if raw is None else raw.decode("utf-8", "backslashreplace")


def lenenc_int(value: int) -> bytes:
    if value < 0xFB:
        return bytes([value])
    if value < 1 << 16:
        return b"\xfc" + value.to_bytes(2, "little")
    if value < 1 << 24:
        return b"\xfd" + value.to_bytes(3, "little")
    return b"\xfe" + value.to_bytes(8, "little")


def lenenc_str(value: bytes) -> bytes:
    return lenenc_int(len(value)) + value


def packets(payload: bytes, sequence_id: int = 0) -> bytes:
    """A payload as one or more packets (split at 0xFFFFFF bytes, as the protocol does)."""
    out = bytearray()
    pos = 0
    while True:
        piece = payload[pos : pos + MAX_PAYLOAD]
        out += Packet.build({"length": len(piece), "sequence_id": sequence_id & 0xFF, "payload": piece})
        pos += len(piece)
        sequence_id += 1
        if len(piece) < MAX_PAYLOAD:
            return bytes(out)


# --- connection phase ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Greeting:
    """The server's first packet (handshake v10)."""

    protocol_version: int
    server_version: str
    connection_id: int
    capabilities: int  # MariaDB's extended capabilities as bits 32+
    character_set: int | None = None
    status: int | None = None
    auth_plugin: str | None = None


def parse_greeting(payload: bytes) -> Greeting:
    r = Reader(payload)
    protocol_version = r.int(1)
    if protocol_version != 10:
        raise MySqlError(f"handshake protocol {protocol_version}, not 10")
    server_version = text(r.nul_string()) or ""
    connection_id = r.int(4)
    r.take(8 + 1)  # auth plugin data part 1, filler
    capabilities = r.int(2)
    if not r.remaining:
        return Greeting(
            protocol_version=10,
            server_version=server_version,
            connection_id=connection_id,
            capabilities=capabilities,
        )
    character_set = r.int(1)
    status = r.int(2)
    capabilities |= r.int(2) << 16
    auth_length = r.int(1)
    r.take(6)
    mariadb = r.int(4)
    if not capabilities & CLIENT_LONG_PASSWORD:
        capabilities |= mariadb << 32
    plugin = None
    if capabilities & CLIENT_SECURE_CONNECTION:
        r.take(min(r.remaining, max(13, auth_length - 8)))
    if capabilities & CLIENT_PLUGIN_AUTH and r.remaining:
        raw = r.rest()
        plugin = text(raw.split(b"\0", 1)[0])
    return Greeting(
        protocol_version=10,
        server_version=server_version,
        connection_id=connection_id,
        capabilities=capabilities,
        character_set=character_set,
        status=status,
        auth_plugin=plugin,
    )


def build_greeting(
    server_version: str,
    connection_id: int,
    capabilities: int,
    *,
    auth_plugin: str = "mysql_native_password",
    character_set: int = 45,
    status: int = 2,
) -> bytes:
    """A handshake v10 payload (for tests and fuzzing); the scramble is a fixed dummy."""
    scramble = b"0123456789abcdefghij"
    mariadb = capabilities >> 32 if not capabilities & CLIENT_LONG_PASSWORD else 0
    return (
        b"\x0a"
        + server_version.encode() + b"\0"
        + connection_id.to_bytes(4, "little")
        + scramble[:8] + b"\0"
        + (capabilities & 0xFFFF).to_bytes(2, "little")
        + bytes([character_set])
        + status.to_bytes(2, "little")
        + ((capabilities >> 16) & 0xFFFF).to_bytes(2, "little")
        + bytes([len(scramble) + 1])
        + bytes(6)
        + mariadb.to_bytes(4, "little")
        + scramble[8:] + b"\0"
        + auth_plugin.encode() + b"\0"
    )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class HandshakeResponse:
    """The client's login packet; the auth response is skipped on purpose and never kept."""

    capabilities: int  # MariaDB's extended capabilities as bits 32+
    user: str | None = None
    database: str | None = None
    auth_plugin: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    ssl_request: bool = False


def parse_handshake_response(payload: bytes) -> HandshakeResponse:
    """HandshakeResponse41, the 32-byte SSL request, or (user only) the pre-4.1 response."""
    r = Reader(payload)
    capabilities = r.int(2)
    if not capabilities & CLIENT_PROTOCOL_41:
        r.take(3)  # max packet size (old protocol)
        return HandshakeResponse(capabilities=capabilities, user=text(r.nul_string()))
    capabilities |= r.int(2) << 16
    r.take(4 + 1 + 19)  # max packet size, character set, filler
    mariadb = r.int(4)
    if not capabilities & CLIENT_LONG_PASSWORD:
        capabilities |= mariadb << 32
    if not r.remaining:
        return HandshakeResponse(capabilities=capabilities, ssl_request=bool(capabilities & CLIENT_SSL))
    user = text(r.nul_string())
    if capabilities & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA:
        r.lenenc_bytes()
    elif capabilities & CLIENT_SECURE_CONNECTION:
        r.take(r.int(1))
    else:
        r.nul_string()
    database = None
    if capabilities & CLIENT_CONNECT_WITH_DB and r.remaining:
        database = text(r.nul_string())
    plugin = None
    if capabilities & CLIENT_PLUGIN_AUTH and r.remaining:
        plugin = text(r.nul_string())
    attributes: dict[str, str] = {}
    if capabilities & CLIENT_CONNECT_ATTRS and r.remaining:
        attrs = Reader(r.lenenc_bytes() or b"")
        while attrs.remaining:
            key = text(attrs.lenenc_bytes()) or ""
            attributes[key] = text(attrs.lenenc_bytes()) or ""
    return HandshakeResponse(
        capabilities=capabilities, user=user, database=database, auth_plugin=plugin, attributes=attributes
    )


def build_handshake_response(
    capabilities: int,
    user: str,
    *,
    database: str | None = None,
    auth_response: bytes = b"",
    auth_plugin: str | None = "mysql_native_password",
    attributes: dict[str, str] | None = None,
) -> bytes:
    """A HandshakeResponse41 payload (for tests)."""
    caps = capabilities | CLIENT_PROTOCOL_41
    if database is not None:
        caps |= CLIENT_CONNECT_WITH_DB
    mariadb = caps >> 32 if not caps & CLIENT_LONG_PASSWORD else 0
    out = bytearray(
        SslRequest.build(
            {
                "capabilities": caps & 0xFFFFFFFF,
                "max_packet_size": 1 << 24,
                "character_set": 45,
                "filler": bytes(19),
                "mariadb_capabilities": mariadb,
            }
        )
    )
    out += user.encode() + b"\0"
    if caps & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA:
        out += lenenc_str(auth_response)
    else:
        out += bytes([len(auth_response)]) + auth_response
    if database is not None:
        out += database.encode() + b"\0"
    if caps & CLIENT_PLUGIN_AUTH and auth_plugin is not None:
        out += auth_plugin.encode() + b"\0"
    if caps & CLIENT_CONNECT_ATTRS:
        blob = b"".join(
            lenenc_str(k.encode()) + lenenc_str(v.encode()) for k, v in (attributes or {}).items()
        )
        out += lenenc_str(blob)
    return bytes(out)


# --- replies --------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Ok:
    affected_rows: int
    last_insert_id: int
    status: int = 0
    warnings: int = 0
    info: str = ""


@dataclass(frozen=True, kw_only=True)
class Err:
    code: int
    sql_state: str | None
    message: str


@dataclass(frozen=True, kw_only=True)
class Eof:
    warnings: int
    status: int


def parse_ok(payload: bytes) -> Ok:
    """An OK packet (header 0x00, or 0xfe when it ends a result set under CLIENT_DEPRECATE_EOF)."""
    r = Reader(payload, 1)
    affected = r.lenenc() or 0
    last_id = r.lenenc() or 0
    status = r.int(2) if r.remaining >= 2 else 0
    warnings = r.int(2) if r.remaining >= 2 else 0
    info = r.rest()
    if info:
        # MariaDB (and MySQL under CLIENT_SESSION_TRACK) prefix the info with its length.
        inner = Reader(info)
        try:
            length = inner.lenenc()
            if length is not None and length == inner.remaining:
                info = inner.rest()
        except MySqlError:
            pass
    return Ok(
        affected_rows=affected,
        last_insert_id=last_id,
        status=status,
        warnings=warnings,
        info=text(info) or "",
    )


def build_ok(
    affected_rows: int = 0,
    last_insert_id: int = 0,
    status: int = 2,
    warnings: int = 0,
    header: int = 0,
    info: str = "",
) -> bytes:
    """An OK payload; `info` is written length-prefixed, as MariaDB does."""
    return (
        bytes([header])
        + lenenc_int(affected_rows)
        + lenenc_int(last_insert_id)
        + status.to_bytes(2, "little")
        + warnings.to_bytes(2, "little")
        + (lenenc_str(info.encode()) if info else b"")
    )


def parse_err(payload: bytes) -> Err:
    r = Reader(payload, 1)
    code = r.int(2)
    sql_state = None
    if r.remaining and payload[r.pos] == 0x23:  # '#': CLIENT_PROTOCOL_41
        r.take(1)
        sql_state = text(r.take(min(5, r.remaining)))
    return Err(code=code, sql_state=sql_state, message=text(r.rest()) or "")


def build_err(code: int, sql_state: str, message: str) -> bytes:
    return b"\xff" + code.to_bytes(2, "little") + b"#" + sql_state.encode()[:5] + message.encode()


def parse_eof(payload: bytes) -> Eof:
    r = Reader(payload, 1)
    if r.remaining < 4:
        return Eof(warnings=0, status=0)
    return Eof(warnings=r.int(2), status=r.int(2))


def eof_status(payload: bytes) -> int:
    """`parse_eof(payload).status` without building the Eof: a result set's end is read once per query."""
    return payload[3] | payload[4] << 8 if len(payload) >= 5 else 0


def build_eof(status: int = 2, warnings: int = 0) -> bytes:
    return b"\xfe" + warnings.to_bytes(2, "little") + status.to_bytes(2, "little")


def is_eof(payload: bytes) -> bool:
    """An old-style EOF packet: 0xfe and shorter than 9 bytes."""
    return len(payload) < 9 and payload[:1] == b"\xfe"


# --- result sets ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Column:
    name: str
    type: int
    flags: int = 0
    table: str = ""
    schema: str = ""
    character_set: int = 0
    decimals: int = 0


def parse_column(payload: bytes, extended_metadata: bool = False) -> Column:
    """A ColumnDefinition41 packet."""
    # Fast path, one per column of every result set: strings shorter than 251 bytes (one-byte
    # lengths) and the whole packet present. Anything else goes the careful way below.
    data = payload if type(payload) is bytes else bytes(payload)
    size = len(data)
    pos = 0
    strings = []
    for _ in range(7 if extended_metadata else 6):
        if pos >= size:
            break
        length = data[pos]
        end = pos + 1 + length
        if length >= 0xFB or end > size:
            break
        strings.append(data[pos + 1 : end])
        pos = end
    else:
        if pos + 11 <= size and data[pos] < 0xFB:
            return Column(
                name=strings[4].decode("utf-8", "backslashreplace"),
                type=data[pos + 7],
                flags=data[pos + 8] | data[pos + 9] << 8,
                table=strings[2].decode("utf-8", "backslashreplace"),
                schema=strings[1].decode("utf-8", "backslashreplace"),
                character_set=data[pos + 1] | data[pos + 2] << 8,
                decimals=data[pos + 10],
            )
    return _parse_column(data, extended_metadata)


def _parse_column(payload: bytes, extended_metadata: bool) -> Column:
    r = Reader(payload)
    r.lenenc_bytes()  # catalog, always "def"
    schema = text(r.lenenc_bytes()) or ""
    table = text(r.lenenc_bytes()) or ""
    r.lenenc_bytes()  # original table
    name = text(r.lenenc_bytes()) or ""
    r.lenenc_bytes()  # original name
    if extended_metadata:
        r.lenenc_bytes()
    r.lenenc()  # length of the fixed fields, 0x0c
    character_set = r.int(2)
    r.int(4)  # column length
    column_type = r.int(1)
    flags = r.int(2)
    decimals = r.int(1)
    return Column(
        name=name,
        type=column_type,
        flags=flags,
        table=table,
        schema=schema,
        character_set=character_set,
        decimals=decimals,
    )


def build_column(
    name: str, column_type: int = TYPE_VAR_STRING, *, table: str = "", schema: str = "", flags: int = 0
) -> bytes:
    return (
        lenenc_str(b"def")
        + lenenc_str(schema.encode())
        + lenenc_str(table.encode())
        + lenenc_str(table.encode())
        + lenenc_str(name.encode())
        + lenenc_str(name.encode())
        + b"\x0c"
        + (45).to_bytes(2, "little")
        + (255).to_bytes(4, "little")
        + bytes([column_type])
        + flags.to_bytes(2, "little")
        + b"\0\0\0"
    )


def parse_text_row(payload: bytes) -> list[str | None]:
    r = Reader(payload)
    values: list[str | None] = []
    while r.remaining:
        values.append(text(r.lenenc_bytes()))
    return values


def build_text_row(values: list[bytes | None]) -> bytes:
    return b"".join(b"\xfb" if v is None else lenenc_str(v) for v in values)


def _binary_value(r: Reader, type_code: int, unsigned: bool) -> str:
    """One value of the binary protocol, as text."""
    if type_code in _FIXED_INT:
        fmt, size = _FIXED_INT[type_code]
        return str(struct.unpack("<" + (fmt.upper() if unsigned else fmt), r.take(size))[0])
    if type_code == TYPE_FLOAT:
        return repr(struct.unpack("<f", r.take(4))[0])
    if type_code == TYPE_DOUBLE:
        return repr(struct.unpack("<d", r.take(8))[0])
    if type_code == TYPE_NULL:
        return ""
    if type_code in _DATES:
        n = r.int(1)
        part = Reader(r.take(n))
        year, month, day = (part.int(2), part.int(1), part.int(1)) if n >= 4 else (0, 0, 0)
        hour, minute, second = (part.int(1), part.int(1), part.int(1)) if n >= 7 else (0, 0, 0)
        micro = part.int(4) if n >= 11 else 0
        out = f"{year:04d}-{month:02d}-{day:02d}"
        if type_code != TYPE_DATE:
            out += f" {hour:02d}:{minute:02d}:{second:02d}" + (f".{micro:06d}" if micro else "")
        return out
    if type_code == TYPE_TIME:
        n = r.int(1)
        part = Reader(r.take(n))
        if n < 8:
            return "00:00:00"
        negative, days, hour, minute, second = part.int(1), part.int(4), part.int(1), part.int(1), part.int(1)
        micro = part.int(4) if n >= 12 else 0
        hours = days * 24 + hour
        return (
            ("-" if negative else "")
            + f"{hours:02d}:{minute:02d}:{second:02d}"
            + (f".{micro:06d}" if micro else "")
        )
    # Everything else (strings, blobs, decimals, enum, set, bit, json, geometry) is a lenenc string.
    return text(r.lenenc_bytes()) or ""


def parse_binary_row(payload: bytes, columns: list[Column]) -> list[str | None]:
    """A binary protocol result row (prepared statements): 0x00, NULL bitmap (offset 2), values."""
    r = Reader(payload, 1)
    bitmap = r.take((len(columns) + 7 + 2) // 8)
    values: list[str | None] = []
    for i, column in enumerate(columns):
        bit = i + 2
        if bitmap[bit // 8] & (1 << (bit % 8)):
            values.append(None)
        else:
            values.append(_binary_value(r, column.type, bool(column.flags & UNSIGNED_FLAG)))
    return values


# --- prepared statements --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PrepareOk:
    statement_id: int
    num_columns: int
    num_params: int
    warnings: int = 0
    metadata_follows: bool = True


def parse_prepare_ok(payload: bytes) -> PrepareOk:
    r = Reader(payload, 1)
    statement_id = r.int(4)
    num_columns = r.int(2)
    num_params = r.int(2)
    warnings = 0
    if r.remaining >= 3:
        r.take(1)
        warnings = r.int(2)
    metadata_follows = r.int(1) != 0 if r.remaining else True
    return PrepareOk(
        statement_id=statement_id,
        num_columns=num_columns,
        num_params=num_params,
        warnings=warnings,
        metadata_follows=metadata_follows,
    )


def build_prepare_ok(statement_id: int, num_columns: int, num_params: int) -> bytes:
    return (
        b"\0"
        + statement_id.to_bytes(4, "little")
        + num_columns.to_bytes(2, "little")
        + num_params.to_bytes(2, "little")
        + b"\0\0\0"
    )


@dataclass(frozen=True, kw_only=True)
class Execute:
    statement_id: int
    flags: int
    parameters: list[str | None]
    types: list[tuple[int, bool]] | None  # (type, unsigned) when the packet bound new types


def parse_execute(
    payload: bytes,
    num_params: int,
    known_types: list[tuple[int, bool]] | None = None,
    long_data: frozenset[int] = frozenset(),
    partial: bool = False,
) -> Execute:
    """COM_STMT_EXECUTE; `num_params` comes from the PREPARE reply, `known_types` from an earlier
    execute of the same statement (a client sends the types only when it binds new ones), `long_data`
    the parameters sent before by COM_STMT_SEND_LONG_DATA (their values are not in this packet).
    With `partial`, a payload cut among the values gives the values before the cut."""
    r = Reader(payload, 1)
    statement_id = r.int(4)
    flags = r.int(1)
    r.int(4)  # iteration count, always 1
    if num_params <= 0:
        return Execute(statement_id=statement_id, flags=flags, parameters=[], types=None)
    bitmap = r.take((num_params + 7) // 8)
    bound = r.int(1)
    new_types = None
    if bound:
        new_types = []
        for _ in range(num_params):
            code, extra = r.int(1), r.int(1)
            new_types.append((code, bool(extra & PARAM_UNSIGNED)))
    types = new_types or known_types
    params: list[str | None] = []
    for i in range(num_params):
        if bitmap[i // 8] & (1 << (i % 8)):
            params.append(None)
        elif i in long_data:
            params.append("<long data>")
        elif types is None or i >= len(types):
            raise MySqlError("parameter types unknown (no earlier execute bound them)")
        else:
            try:
                params.append(_binary_value(r, *types[i]))
            except MySqlError:
                if not partial:
                    raise
                break  # a packet cut by the tracer: the values before the cut
    return Execute(statement_id=statement_id, flags=flags, parameters=params, types=new_types)


def parse_query_attributes(body: bytes) -> tuple[dict[str, str | None], bytes]:
    """COM_QUERY's body under CLIENT_QUERY_ATTRIBUTES (MySQL 8.0.23+): (attributes, SQL text)."""
    r = Reader(body)
    count = r.lenenc() or 0
    r.lenenc()  # parameter set count, always 1
    attributes: dict[str, str | None] = {}
    if count:
        bitmap = r.take((count + 7) // 8)
        if not r.int(1):
            raise MySqlError("query attributes without types")
        types = []
        for _ in range(count):
            code, extra = r.int(1), r.int(1)
            types.append((code, bool(extra & PARAM_UNSIGNED), text(r.lenenc_bytes()) or ""))
        for i, (code, unsigned, name) in enumerate(types):
            null = bitmap[i // 8] & (1 << (i % 8))
            attributes[name] = None if null else _binary_value(r, code, unsigned)
    return attributes, r.rest()


def build_query_attributes(sql: bytes, attributes: dict[str, str]) -> bytes:
    """A COM_QUERY body with string attributes (for tests)."""
    out = bytearray(lenenc_int(len(attributes)) + lenenc_int(1))
    if attributes:
        out += bytes((len(attributes) + 7) // 8) + b"\x01"
        for name in attributes:
            out += bytes([TYPE_VAR_STRING, 0]) + lenenc_str(name.encode())
        for value in attributes.values():
            out += lenenc_str(value.encode())
    return bytes(out) + sql


def _binary_param(value: object) -> tuple[int, bool, bytes]:
    if isinstance(value, bool | int):
        return TYPE_LONGLONG, False, struct.pack("<q", int(value))
    if isinstance(value, float):
        return TYPE_DOUBLE, False, struct.pack("<d", value)
    if isinstance(value, datetime.datetime):
        body = struct.pack(
            "<HBBBBBI",
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
        )
        return TYPE_DATETIME, False, bytes([len(body)]) + body
    raw = value if isinstance(value, bytes) else str(value).encode()
    return TYPE_VAR_STRING, False, lenenc_str(raw)


def build_execute(statement_id: int, params: list[object], *, bind_types: bool = True) -> bytes:
    """A COM_STMT_EXECUTE payload (for tests): ints, floats, datetimes, bytes, str, None."""
    out = (
        bytearray([COM_STMT_EXECUTE]) + statement_id.to_bytes(4, "little") + b"\0" + (1).to_bytes(4, "little")
    )
    if not params:
        return bytes(out)
    bitmap = bytearray((len(params) + 7) // 8)
    types = bytearray()
    values = bytearray()
    for i, value in enumerate(params):
        if value is None:
            bitmap[i // 8] |= 1 << (i % 8)
            types += bytes([TYPE_NULL, 0])
            continue
        code, unsigned, raw = _binary_param(value)
        types += bytes([code, PARAM_UNSIGNED if unsigned else 0])
        values += raw
    out += bitmap + bytes([1 if bind_types else 0])
    if bind_types:
        out += types
    return bytes(out + values)
