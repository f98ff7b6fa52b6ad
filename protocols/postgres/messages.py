"""The messages of the PostgreSQL protocol 3.0, both ways: type bytes and names, parsers of complete
message bodies, and builders (see this package's docstring for what is decoded and what not)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache

from construct import Int32sb, Int32ub, Struct

PROTOCOL_3_0 = 196608  # 3 << 16
SSL_REQUEST = 80877103  # 1234 << 16 | 5679
GSSENC_REQUEST = 80877104  # 1234 << 16 | 5680
CANCEL_REQUEST = 80877102  # 1234 << 16 | 5678
MAX_STARTUP = 10000  # the server refuses a longer startup packet
STARTUP_CODES = frozenset({PROTOCOL_3_0, SSL_REQUEST, GSSENC_REQUEST, CANCEL_REQUEST})

StartupHeader = Struct("length" / Int32ub, "code" / Int32ub)
CancelRequest = Struct("length" / Int32ub, "code" / Int32ub, "pid" / Int32sb, "secret" / Int32ub)

# Frontend (client) message types.
QUERY = ord("Q")
PARSE = ord("P")
BIND = ord("B")
DESCRIBE = ord("D")
EXECUTE = ord("E")
CLOSE = ord("C")
SYNC = ord("S")
FLUSH = ord("H")
TERMINATE = ord("X")
FUNCTION_CALL = ord("F")
PASSWORD = ord("p")  # PasswordMessage, SASLInitialResponse, SASLResponse, GSSResponse
COPY_DATA = ord("d")
COPY_DONE = ord("c")
COPY_FAIL = ord("f")

# Backend (server) message types.
AUTHENTICATION = ord("R")
BACKEND_KEY_DATA = ord("K")
PARAMETER_STATUS = ord("S")
READY_FOR_QUERY = ord("Z")
ROW_DESCRIPTION = ord("T")
DATA_ROW = ord("D")
COMMAND_COMPLETE = ord("C")
EMPTY_QUERY = ord("I")
ERROR_RESPONSE = ord("E")
NOTICE_RESPONSE = ord("N")
PARSE_COMPLETE = ord("1")
BIND_COMPLETE = ord("2")
CLOSE_COMPLETE = ord("3")
NO_DATA = ord("n")
PORTAL_SUSPENDED = ord("s")
PARAMETER_DESCRIPTION = ord("t")
COPY_IN_RESPONSE = ord("G")
COPY_OUT_RESPONSE = ord("H")
COPY_BOTH_RESPONSE = ord("W")
NOTIFICATION = ord("A")
FUNCTION_CALL_RESPONSE = ord("V")
NEGOTIATE_PROTOCOL = ord("v")

FRONTEND_NAMES: dict[int, str] = {
    QUERY: "query",
    PARSE: "parse",
    BIND: "bind",
    DESCRIBE: "describe",
    EXECUTE: "execute",
    CLOSE: "close",
    SYNC: "sync",
    FLUSH: "flush",
    TERMINATE: "terminate",
    FUNCTION_CALL: "function call",
    PASSWORD: "authentication response",
    COPY_DATA: "copy data",
    COPY_DONE: "copy done",
    COPY_FAIL: "copy fail",
}
BACKEND_NAMES: dict[int, str] = {
    AUTHENTICATION: "authentication",
    BACKEND_KEY_DATA: "backend key data",
    PARAMETER_STATUS: "parameter status",
    READY_FOR_QUERY: "ready for query",
    ROW_DESCRIPTION: "row description",
    DATA_ROW: "data row",
    COMMAND_COMPLETE: "command complete",
    EMPTY_QUERY: "empty query",
    ERROR_RESPONSE: "error",
    NOTICE_RESPONSE: "notice",
    PARSE_COMPLETE: "parse complete",
    BIND_COMPLETE: "bind complete",
    CLOSE_COMPLETE: "close complete",
    NO_DATA: "no data",
    PORTAL_SUSPENDED: "portal suspended",
    PARAMETER_DESCRIPTION: "parameter description",
    COPY_IN_RESPONSE: "copy in",
    COPY_OUT_RESPONSE: "copy out",
    COPY_BOTH_RESPONSE: "copy both",
    COPY_DATA: "copy data",
    COPY_DONE: "copy done",
    NOTIFICATION: "notification",
    FUNCTION_CALL_RESPONSE: "function call response",
    NEGOTIATE_PROTOCOL: "negotiate protocol version",
}
FRONTEND_TYPES = frozenset(FRONTEND_NAMES)
BACKEND_TYPES = frozenset(BACKEND_NAMES)
# Types that only one side sends: they tell the roles of a connection whose start was not traced.
FRONTEND_ONLY = FRONTEND_TYPES - BACKEND_TYPES
BACKEND_ONLY = BACKEND_TYPES - FRONTEND_TYPES

# Authentication request codes (the first 4 bytes of an `R` body).
AUTH_OK = 0
AUTH_KERBEROS_V5 = 2
AUTH_CLEARTEXT = 3
AUTH_MD5 = 5
AUTH_GSS = 7
AUTH_GSS_CONTINUE = 8
AUTH_SSPI = 9
AUTH_SASL = 10
AUTH_SASL_CONTINUE = 11
AUTH_SASL_FINAL = 12
AUTH_NAMES: dict[int, str] = {
    AUTH_OK: "ok",
    AUTH_KERBEROS_V5: "kerberos",
    AUTH_CLEARTEXT: "password",
    AUTH_MD5: "md5",
    AUTH_GSS: "gss",
    AUTH_GSS_CONTINUE: "gss continue",
    AUTH_SSPI: "sspi",
    AUTH_SASL: "sasl",
    AUTH_SASL_CONTINUE: "sasl continue",
    AUTH_SASL_FINAL: "sasl final",
}

# ErrorResponse / NoticeResponse field codes.
FIELD_SEVERITY = "S"
FIELD_SEVERITY_PLAIN = "V"  # not localised (9.6 and later)
FIELD_CODE = "C"
FIELD_MESSAGE = "M"
FIELD_DETAIL = "D"
FIELD_HINT = "H"
FIELD_POSITION = "P"

# ReadyForQuery transaction status.
TRANSACTION_STATUS = {ord("I"): "idle", ord("T"): "transaction", ord("E"): "failed transaction"}

# CommandComplete commands whose number is rows returned or moved, and rows changed.
ROWS_COMMANDS = frozenset({"SELECT", "FETCH", "COPY"})
AFFECTED_COMMANDS = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE"})

_INT16 = struct.Struct("!h")
_UINT16 = struct.Struct("!H")
_INT32 = struct.Struct("!i")
_UINT32 = struct.Struct("!I")


class PgError(ValueError):
    """A body that does not parse as the message it should be."""


def text(raw: bytes) -> str:
    """Bytes from the wire as text: UTF-8 when it is, backslash escapes for the rest."""
    return raw.decode("utf-8", "backslashreplace")


class Reader:
    """Reads a message body from the front; every read past its end raises PgError."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise PgError(f"need {n} bytes at {self.pos}, body has {len(self.data)}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def int16(self) -> int:
        return _INT16.unpack(self.take(2))[0]

    def uint16(self) -> int:
        return _UINT16.unpack(self.take(2))[0]

    def int32(self) -> int:
        return _INT32.unpack(self.take(4))[0]

    def uint32(self) -> int:
        return _UINT32.unpack(self.take(4))[0]

    def byte(self) -> int:
        return self.take(1)[0]

    def cstring(self) -> bytes:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise PgError(f"string at {self.pos} has no terminating NUL")
        out = self.data[self.pos : end]
        self.pos = end + 1
        return out


# --- the startup family (no type byte) ----------------------------------------------------------------


@dataclass(frozen=True)
class Startup:
    """A StartupMessage: the protocol version and the parameters (user, database, application_name...)."""

    major: int
    minor: int
    parameters: dict[str, str]


def startup_code(body: bytes) -> int | None:
    """The code after the length of an untyped message (`body` starts after the length), or None."""
    return _UINT32.unpack_from(body)[0] if len(body) >= 4 else None


def parse_startup(body: bytes) -> Startup:
    """A StartupMessage's body (after its length). Options start with the version."""
    reader = Reader(body)
    version = reader.uint32()
    parameters: dict[str, str] = {}
    while reader.remaining:
        name = reader.cstring()
        if not name:
            break
        parameters[text(name)] = text(reader.cstring())
    return Startup(version >> 16, version & 0xFFFF, parameters)


def parse_cancel(body: bytes) -> int:
    """A CancelRequest's body (after its length): the backend pid it names (its secret key is not kept)."""
    reader = Reader(body)
    if reader.uint32() != CANCEL_REQUEST:
        raise PgError("not a CancelRequest")
    return reader.int32()


# --- frontend messages ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parse:
    statement: str  # "" is the unnamed statement
    query: str
    param_types: tuple[int, ...]  # type OIDs; 0 leaves the type to the server


@dataclass(frozen=True)
class Bind:
    portal: str
    statement: str
    param_formats: tuple[int, ...]  # none: all text; one: all the same; else one per parameter
    values: tuple[bytes | None, ...]  # None is SQL NULL
    result_formats: tuple[int, ...]

    def param_format(self, index: int) -> int:
        return format_at(self.param_formats, index)


def format_at(formats: tuple[int, ...], index: int) -> int:
    """The format code of column or parameter `index` under the protocol's shorthand rules."""
    if not formats:
        return 0
    if len(formats) == 1:
        return formats[0]
    return formats[index] if index < len(formats) else 0


def parse_query(body: bytes) -> str:
    """A Query's SQL (everything up to its NUL; a body cut before the NUL gives what there is)."""
    end = body.find(b"\0")
    return text(body if end < 0 else body[:end])


def parse_parse(body: bytes) -> Parse:
    reader = Reader(body)
    name = text(reader.cstring())
    query = text(reader.cstring())
    count = reader.int16()
    types = tuple(reader.uint32() for _ in range(max(count, 0)))
    return Parse(name, query, types)


def parse_parse_partial(body: bytes) -> tuple[str, str]:
    """The statement name and as much of the query as a cut Parse holds."""
    name, _, rest = body.partition(b"\0")
    query = rest.partition(b"\0")[0]
    return text(name), text(query)


def parse_bind(body: bytes) -> Bind:
    """A Bind (read with offsets rather than `Reader`: one comes with nearly every execution)."""
    try:
        end = body.index(b"\0")
        portal = text(body[:end]) if end else ""
        start = end + 1
        end = body.index(b"\0", start)
        statement = text(body[start:end]) if end > start else ""
        pos = end + 1
        count = _INT16.unpack_from(body, pos)[0]
        pos += 2
        formats = struct.unpack_from(f"!{count}h", body, pos) if count > 0 else ()
        pos += 2 * max(count, 0)
        count = _INT16.unpack_from(body, pos)[0]
        pos += 2
        values: list[bytes | None] = []
        unpack_length = _INT32.unpack_from
        for _ in range(max(count, 0)):
            length = unpack_length(body, pos)[0]
            pos += 4
            if length < 0:
                values.append(None)
                continue
            if pos + length > len(body):
                raise PgError("a Bind value runs past the message")
            values.append(body[pos : pos + length])
            pos += length
        count = _INT16.unpack_from(body, pos)[0]
        result_formats = struct.unpack_from(f"!{count}h", body, pos + 2) if count > 0 else ()
    except (ValueError, struct.error) as error:
        raise PgError(f"not a Bind: {error}") from error
    return Bind(portal, statement, formats, tuple(values), result_formats)


def parse_bind_names(body: bytes) -> tuple[str, str]:
    """The portal and statement names of a Bind, even a cut one."""
    portal, _, rest = body.partition(b"\0")
    return text(portal), text(rest.partition(b"\0")[0])


def parse_describe(body: bytes) -> tuple[str, str]:
    """Describe and Close: ("S" for a statement or "P" for a portal, its name)."""
    reader = Reader(body)
    kind = chr(reader.byte())
    return kind, text(reader.cstring())


def parse_execute(body: bytes) -> tuple[str, int]:
    """(portal, maximum rows; 0 is no limit)."""
    reader = Reader(body)
    portal = text(reader.cstring())
    return portal, reader.int32()


def parse_function_call(body: bytes) -> int:
    """A FunctionCall's function OID (its arguments are not kept)."""
    return Reader(body).uint32()


def sasl_mechanism(body: bytes) -> str | None:
    """The mechanism a SASLInitialResponse names (its response, which follows, is never read)."""
    end = body.find(b"\0")
    if end <= 0 or end > 64:
        return None
    name = body[:end]
    return name.decode("ascii") if name.isascii() and name.replace(b"-", b"").isalnum() else None


# --- backend messages -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Authentication:
    """What the server asked for: the request code, and for SASL the mechanisms it offers."""

    code: int
    mechanisms: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return AUTH_NAMES.get(self.code, f"code {self.code}")


def parse_authentication(body: bytes) -> Authentication:
    """Only the code, and SASL's mechanism names: salts, nonces and proofs are never read."""
    reader = Reader(body)
    code = reader.uint32()
    if code != AUTH_SASL:
        return Authentication(code)
    mechanisms: list[str] = []
    while reader.remaining:
        name = reader.cstring()
        if not name:
            break
        mechanisms.append(text(name))
    return Authentication(code, tuple(mechanisms))


def parse_parameter_status(body: bytes) -> tuple[str, str]:
    reader = Reader(body)
    return text(reader.cstring()), text(reader.cstring())


def parse_backend_key_data(body: bytes) -> int:
    """The backend's process id (the secret key after it is not kept)."""
    return Reader(body).int32()


def parse_ready_for_query(body: bytes) -> str:
    if len(body) != 1:
        raise PgError("ReadyForQuery has one byte")
    return TRANSACTION_STATUS.get(body[0], f"status {body[0]}")


@dataclass(frozen=True)
class Field:
    """One column of a RowDescription."""

    name: str
    table_oid: int
    column: int
    type_oid: int
    size: int
    modifier: int
    format: int  # 0 text, 1 binary (0 too in a Describe of a statement: "not known yet")


@lru_cache(maxsize=512)
def parse_row_description(body: bytes) -> tuple[Field, ...]:
    """The columns (cached: a statement run again describes the same columns in the same bytes)."""
    return tuple(_row_description(body))


def _row_description(body: bytes) -> list[Field]:
    reader = Reader(body)
    count = reader.int16()
    fields = []
    for _ in range(max(count, 0)):
        name = text(reader.cstring())
        table_oid, column, type_oid, size, modifier, fmt = struct.unpack("!IhIhih", reader.take(18))
        fields.append(Field(name, table_oid, column, type_oid, size, modifier, fmt))
    return fields


def parse_data_row(body: bytes) -> list[bytes | None]:
    """The raw values of a DataRow (None for NULL); a row cut short gives the values it holds whole."""
    reader = Reader(body)
    count = reader.int16()
    values: list[bytes | None] = []
    for _ in range(max(count, 0)):
        length = reader.int32()
        values.append(None if length < 0 else reader.take(length))
    return values


def parse_parameter_description(body: bytes) -> tuple[int, ...]:
    reader = Reader(body)
    return tuple(reader.uint32() for _ in range(max(reader.int16(), 0)))


@dataclass(frozen=True)
class CommandTag:
    """A CommandComplete tag: the command (`SELECT`, `CREATE TABLE`) and its number, when it has one."""

    command: str
    count: int | None

    @property
    def rows(self) -> int | None:
        return self.count if self.command in ROWS_COMMANDS else None

    @property
    def affected(self) -> int | None:
        return self.count if self.command in AFFECTED_COMMANDS else None


@lru_cache(maxsize=1024)
def parse_command_complete(body: bytes) -> CommandTag:
    """`INSERT 0 5` (the 0 is an OID, always 0 since PostgreSQL 12), `SELECT 3`, `CREATE TABLE`."""
    tag = text(body.partition(b"\0")[0])
    words = tag.split(" ")
    count: int | None = None
    if len(words) > 1 and words[-1].isascii() and words[-1].isdigit() and len(words[-1]) < 21:
        count = int(words[-1])
        words = words[:-1]
        if words[0] == "INSERT" and len(words) > 1 and words[-1].isdigit():
            words = words[:-1]  # the OID
    return CommandTag(" ".join(words), count)


def parse_fields(body: bytes) -> dict[str, str]:
    """ErrorResponse and NoticeResponse: field code -> value (S severity, C SQLSTATE, M message...)."""
    fields: dict[str, str] = {}
    pos = 0
    size = len(body)
    while pos < size and body[pos]:
        end = body.find(b"\0", pos + 1)
        if end < 0:
            fields[chr(body[pos])] = text(body[pos + 1 :])  # cut: as far as it goes
            break
        fields[chr(body[pos])] = text(body[pos + 1 : end])
        pos = end + 1
    return fields


@dataclass(frozen=True)
class CopyResponse:
    """CopyInResponse, CopyOutResponse, CopyBothResponse: overall format and one format per column."""

    format: int  # 0 text (rows are lines), 1 binary
    column_formats: tuple[int, ...]


def parse_copy_response(body: bytes) -> CopyResponse:
    reader = Reader(body)
    fmt = reader.byte()
    return CopyResponse(fmt, tuple(reader.int16() for _ in range(max(reader.int16(), 0))))


@dataclass(frozen=True)
class Notification:
    """A NotificationResponse: the notifying backend, the channel, the payload."""

    pid: int
    channel: str
    payload: bytes


def parse_notification(body: bytes) -> Notification:
    reader = Reader(body)
    pid = reader.int32()
    channel = text(reader.cstring())
    return Notification(pid, channel, reader.cstring())


def parse_negotiate_protocol(body: bytes) -> tuple[int, tuple[str, ...]]:
    """NegotiateProtocolVersion: the newest minor version the server speaks, the options it ignored."""
    reader = Reader(body)
    minor = reader.int32()
    return minor, tuple(text(reader.cstring()) for _ in range(max(reader.int32(), 0)))


# --- builders (tests, fuzzing, benchmarks) -------------------------------------------------------------


def message(kind: int | str, body: bytes = b"") -> bytes:
    """A typed message: type byte, length, body."""
    type_byte = kind.encode() if isinstance(kind, str) else bytes([kind])
    return type_byte + _UINT32.pack(len(body) + 4) + body


def cstring(value: str | bytes) -> bytes:
    return (value.encode() if isinstance(value, str) else value) + b"\0"


def build_startup(parameters: dict[str, str], version: int = PROTOCOL_3_0) -> bytes:
    body = _UINT32.pack(version) + b"".join(cstring(k) + cstring(v) for k, v in parameters.items()) + b"\0"
    return _UINT32.pack(len(body) + 4) + body


def build_ssl_request(code: int = SSL_REQUEST) -> bytes:
    return StartupHeader.build({"length": 8, "code": code})


def build_cancel(pid: int, secret: int) -> bytes:
    return CancelRequest.build({"length": 16, "code": CANCEL_REQUEST, "pid": pid, "secret": secret})


def build_query(sql: str) -> bytes:
    return message(QUERY, cstring(sql))


def build_parse(sql: str, statement: str = "", param_types: tuple[int, ...] = ()) -> bytes:
    body = cstring(statement) + cstring(sql) + _INT16.pack(len(param_types))
    return message(PARSE, body + b"".join(_UINT32.pack(t) for t in param_types))


def build_bind(
    values: list[bytes | None],
    statement: str = "",
    portal: str = "",
    param_formats: tuple[int, ...] = (),
    result_formats: tuple[int, ...] = (),
) -> bytes:
    body = cstring(portal) + cstring(statement)
    body += _INT16.pack(len(param_formats)) + b"".join(_INT16.pack(f) for f in param_formats)
    body += _INT16.pack(len(values))
    for value in values:
        body += _INT32.pack(-1) if value is None else _INT32.pack(len(value)) + value
    body += _INT16.pack(len(result_formats)) + b"".join(_INT16.pack(f) for f in result_formats)
    return message(BIND, body)


def build_describe(kind: str = "P", name: str = "") -> bytes:
    return message(DESCRIBE, kind.encode() + cstring(name))


def build_execute(portal: str = "", max_rows: int = 0) -> bytes:
    return message(EXECUTE, cstring(portal) + _INT32.pack(max_rows))


def build_close(kind: str = "S", name: str = "") -> bytes:
    return message(CLOSE, kind.encode() + cstring(name))


def build_sync() -> bytes:
    return message(SYNC)


def build_authentication(code: int, extra: bytes = b"") -> bytes:
    return message(AUTHENTICATION, _UINT32.pack(code) + extra)


def build_parameter_status(name: str, value: str) -> bytes:
    return message(PARAMETER_STATUS, cstring(name) + cstring(value))


def build_backend_key_data(pid: int, secret: int) -> bytes:
    return message(BACKEND_KEY_DATA, _INT32.pack(pid) + _UINT32.pack(secret))


def build_ready_for_query(status: str = "I") -> bytes:
    return message(READY_FOR_QUERY, status.encode())


@dataclass(frozen=True)
class FieldSpec:
    """What build_row_description needs of a column."""

    name: str
    type_oid: int = 25
    format: int = 0
    table_oid: int = 0
    column: int = 0
    size: int = -1
    modifier: int = -1


def build_row_description(fields: list[FieldSpec]) -> bytes:
    body = _INT16.pack(len(fields))
    for f in fields:
        body += cstring(f.name) + struct.pack(
            "!IhIhih", f.table_oid, f.column, f.type_oid, f.size, f.modifier, f.format
        )
    return message(ROW_DESCRIPTION, body)


def build_data_row(values: list[bytes | None]) -> bytes:
    body = _INT16.pack(len(values))
    for value in values:
        body += _INT32.pack(-1) if value is None else _INT32.pack(len(value)) + value
    return message(DATA_ROW, body)


def build_command_complete(tag: str) -> bytes:
    return message(COMMAND_COMPLETE, cstring(tag))


def build_error(fields: dict[str, str], notice: bool = False) -> bytes:
    body = b"".join(code.encode() + cstring(value) for code, value in fields.items()) + b"\0"
    return message(NOTICE_RESPONSE if notice else ERROR_RESPONSE, body)


def build_copy_response(kind: int, columns: int, fmt: int = 0) -> bytes:
    return message(kind, bytes([fmt]) + _INT16.pack(columns) + _INT16.pack(fmt) * columns)


def build_notification(pid: int, channel: str, payload: bytes) -> bytes:
    return message(NOTIFICATION, _INT32.pack(pid) + cstring(channel) + payload + b"\0")
