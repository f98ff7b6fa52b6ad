"""Oracle Net (TNS) packets and the TTC messages inside them: complete frames in, values out, and back.

Decoded here (pure functions, no state):
- the TNS header, with a 2-byte length (protocol versions before 315) or a 4-byte one (315 and later,
  once the ACCEPT said so), and the bodies of CONNECT, ACCEPT, REFUSE, REDIRECT, DATA and MARKER;
- the connect descriptor `(DESCRIPTION=(ADDRESS=...)(CONNECT_DATA=...))` as a nested dict;
- TTC helpers: Oracle's compressed ("universal") integers and length-prefixed byte strings, the
  NUMBER format, and the messages dockit needs from the *native* representation that 11g OCI
  clients (sqlplus, cx_Oracle) negotiate on x86_64: the OALL8 parse/execute/fetch call and its SQL
  text, fetch and re-execute calls naming a cursor, the logon key/value pairs, and the end-of-call
  status message (rows so far, ORA- code, cursor id, error position).

Not decoded: bind values, LOBs, object types, the advanced networking (ANO) negotiation, the
data-type negotiation. Layouts were learnt from real captures and from reading python-oracledb (thin
mode) and Wireshark's TNS dissector; no public specification exists. Builders are provided so that
tests can make packets from this module and parse them back.
"""

from __future__ import annotations

import enum
import re
import struct
from dataclasses import dataclass
from decimal import Decimal, localcontext

from construct import Bytes, GreedyBytes, Int8ub, Int16ub, Int16ul, Int32ub, Int32ul, Int64ul, Struct

# --------------------------------------------------------------------------------------------------
# TNS packets


class PacketType(enum.IntEnum):
    CONNECT = 1
    ACCEPT = 2
    ACK = 3
    REFUSE = 4
    REDIRECT = 5
    DATA = 6
    NULL = 7
    ABORT = 9
    RESEND = 11
    MARKER = 12
    ATTENTION = 13
    CONTROL = 14


PACKET_TYPES = frozenset(int(t) for t in PacketType)
HEADER_SIZE = 8
MIN_LARGE_SDU_VERSION = 315  # from this version on, lengths are 4 bytes after the ACCEPT
MAX_PACKET = 4 * 1024 * 1024  # larger than any SDU Oracle allows; a sanity bound for framing
MAX_CONNECT_DATA_INLINE = 230  # longer descriptors follow the CONNECT in a DATA packet

DATA_FLAG_EOF = 0x0040
DATA_FLAG_END_OF_REQUEST = 0x0800
DATA_FLAG_END_OF_RESPONSE = 0x2000


class MarkerType(enum.IntEnum):
    BREAK = 1
    RESET = 2
    INTERRUPT = 3


SmallHeader = Struct(
    "length" / Int16ub, "checksum" / Int16ub, "type" / Int8ub, "flags" / Int8ub, "header_checksum" / Int16ub
)
LargeHeader = Struct("length" / Int32ub, "type" / Int8ub, "flags" / Int8ub, "header_checksum" / Int16ub)

ConnectBody = Struct(
    "version" / Int16ub,
    "version_compatible" / Int16ub,
    "service_options" / Int16ub,
    "sdu" / Int16ub,
    "tdu" / Int16ub,
    "nt_characteristics" / Int16ub,
    "line_turnaround" / Int16ub,
    "value_of_one" / Bytes(2),
    "data_length" / Int16ub,
    "data_offset" / Int16ub,
    "max_receivable_data" / Int32ub,
    "flags0" / Int8ub,
    "flags1" / Int8ub,
)  # 26 bytes after the header; the rest (up to data_offset) is padding or newer fields

AcceptBody = Struct(
    "version" / Int16ub,
    "service_options" / Int16ub,
    "sdu" / Int16ub,
    "tdu" / Int16ub,
    "value_of_one" / Bytes(2),
    "data_length" / Int16ub,
    "data_offset" / Int16ub,
    "flags0" / Int8ub,
    "flags1" / Int8ub,
)  # 16 bytes after the header; version >= 315 appends 4-byte SDU and TDU

RefuseBody = Struct(
    "user_reason" / Int8ub, "system_reason" / Int8ub, "data_length" / Int16ub, "data" / GreedyBytes
)
RedirectBody = Struct("data_length" / Int16ub, "data" / GreedyBytes)


@dataclass(frozen=True)
class Header:
    length: int
    type: int
    flags: int
    large: bool  # 4-byte length


@dataclass(frozen=True)
class Packet:
    """One TNS packet: `body` is what follows the 8-byte header (possibly cut by the tracer)."""

    type: int
    flags: int
    body: bytes
    length: int
    large: bool = False
    truncated: bool = False


def header_is_large(data: bytes | bytearray, offset: int = 0) -> bool:
    """A 2-byte length is never 0, so a header starting with two zero bytes carries a 4-byte one."""
    return data[offset] == 0 and data[offset + 1] == 0


def parse_header(data: bytes | bytearray, offset: int = 0, large: bool | None = None) -> Header | None:
    """The header at `offset`, or None if fewer than 8 bytes are there or it cannot be a TNS header."""
    if len(data) - offset < HEADER_SIZE:
        return None
    if large is None:
        large = header_is_large(data, offset)
    if large:
        (length,) = struct.unpack_from(">I", data, offset)
    else:
        length, checksum = struct.unpack_from(">HH", data, offset)
        if checksum != 0:
            return None
    ptype, flags = data[offset + 4], data[offset + 5]
    if ptype not in PACKET_TYPES or length < HEADER_SIZE or length > MAX_PACKET:
        return None
    return Header(length, ptype, flags, large)


def build_packet(ptype: int, body: bytes, flags: int = 0, large: bool = False) -> bytes:
    length = HEADER_SIZE + len(body)
    if large:
        head = LargeHeader.build(dict(length=length, type=ptype, flags=flags, header_checksum=0))
    else:
        head = SmallHeader.build(dict(length=length, checksum=0, type=ptype, flags=flags, header_checksum=0))
    return head + body


def parse_packet(data: bytes, large: bool | None = None) -> Packet | None:
    """A complete packet at the start of `data` (trailing bytes ignored), or None."""
    header = parse_header(data, 0, large)
    if header is None or len(data) < header.length:
        return None
    return Packet(
        header.type, header.flags, bytes(data[HEADER_SIZE : header.length]), header.length, header.large
    )


def build_data(payload: bytes, data_flags: int = 0, large: bool = False) -> bytes:
    return build_packet(PacketType.DATA, struct.pack(">H", data_flags) + payload, large=large)


def data_payload(body: bytes) -> tuple[int, bytes]:
    """(data flags, payload) of a DATA packet's body."""
    if len(body) < 2:
        return 0, b""
    return struct.unpack_from(">H", body)[0], body[2:]


@dataclass(frozen=True)
class Connect:
    version: int
    version_compatible: int
    sdu: int
    tdu: int
    data_length: int
    data_offset: int
    descriptor: bytes  # what the packet carries inline (empty when it follows in a DATA packet)

    @property
    def descriptor_follows(self) -> bool:
        return self.data_length > 0 and not self.descriptor


def build_connect(
    descriptor: str, version: int = 314, sdu: int = 8192, tdu: int = 32767, large: bool = False
) -> bytes:
    """A CONNECT packet, followed by a DATA packet carrying the descriptor when it is long (as OCI does)."""
    raw = descriptor.encode()
    offset = HEADER_SIZE + ConnectBody.sizeof() + 24  # OCI pads the body to 58 bytes
    fields = dict(
        version=version,
        version_compatible=300,
        service_options=0x0C01,
        sdu=sdu,
        tdu=tdu,
        nt_characteristics=0x4F98,
        line_turnaround=0,
        value_of_one=b"\x00\x01",
        data_length=len(raw),
        data_offset=offset,
        max_receivable_data=0x800,
        flags0=0x41,
        flags1=0x41,
    )
    body = ConnectBody.build(fields) + bytes(offset - HEADER_SIZE - ConnectBody.sizeof())
    if len(raw) <= MAX_CONNECT_DATA_INLINE:
        return build_packet(PacketType.CONNECT, body + raw)
    return build_packet(PacketType.CONNECT, body) + build_data(raw, large=large)


def parse_connect(packet: Packet) -> Connect | None:
    body = packet.body
    if len(body) < ConnectBody.sizeof():
        return None
    fields = ConnectBody.parse(body)
    start = fields.data_offset - HEADER_SIZE
    inline = b""
    if fields.data_length and 0 <= start < len(body):
        inline = body[start : start + fields.data_length]
    return Connect(
        fields.version,
        fields.version_compatible,
        fields.sdu,
        fields.tdu,
        fields.data_length,
        fields.data_offset,
        bytes(inline),
    )


@dataclass(frozen=True)
class Accept:
    version: int
    sdu: int
    tdu: int
    data: bytes

    @property
    def large_sdu(self) -> bool:
        return self.version >= MIN_LARGE_SDU_VERSION


def build_accept(version: int = 314, sdu: int = 8192, tdu: int = 4096, data: bytes = b"") -> bytes:
    offset = HEADER_SIZE + AcceptBody.sizeof() + 8
    fields = dict(
        version=version,
        service_options=0x0C01,
        sdu=min(sdu, 0xFFFF),
        tdu=min(tdu, 0xFFFF),
        value_of_one=b"\x00\x01",
        data_length=len(data),
        data_offset=offset,
        flags0=0x41,
        flags1=0x41,
    )
    body = AcceptBody.build(fields) + bytes(offset - HEADER_SIZE - AcceptBody.sizeof()) + data
    return build_packet(PacketType.ACCEPT, body)


def parse_accept(packet: Packet) -> Accept | None:
    if len(packet.body) < AcceptBody.sizeof():
        return None
    fields = AcceptBody.parse(packet.body)
    start = fields.data_offset - HEADER_SIZE
    data = packet.body[start : start + fields.data_length] if fields.data_length and start >= 0 else b""
    return Accept(fields.version, fields.sdu, fields.tdu, bytes(data))


@dataclass(frozen=True)
class Refuse:
    user_reason: int
    system_reason: int
    data: bytes

    @property
    def error_code(self) -> int | None:
        """The `(ERR=12514)` a listener puts in its refusal, when there is one."""
        match = re.search(rb"\(ERR=(\d+)\)", self.data)
        return int(match.group(1)) if match else None


def build_refuse(data: str, user_reason: int = 0x22, system_reason: int = 0) -> bytes:
    raw = data.encode()
    return build_packet(
        PacketType.REFUSE,
        RefuseBody.build(
            dict(user_reason=user_reason, system_reason=system_reason, data_length=len(raw), data=raw)
        ),
    )


def parse_refuse(packet: Packet) -> Refuse | None:
    if len(packet.body) < 4:
        return None
    fields = RefuseBody.parse(packet.body)
    return Refuse(fields.user_reason, fields.system_reason, bytes(fields.data[: fields.data_length]))


def build_redirect(descriptor: str) -> bytes:
    raw = descriptor.encode()
    return build_packet(PacketType.REDIRECT, RedirectBody.build(dict(data_length=len(raw), data=raw)))


def parse_redirect(packet: Packet) -> bytes:
    if len(packet.body) < 2:
        return b""
    fields = RedirectBody.parse(packet.body)
    return bytes(fields.data[: fields.data_length])


def build_marker(marker: int = MarkerType.BREAK, large: bool = False) -> bytes:
    return build_packet(PacketType.MARKER, bytes([1, 0, marker]), large=large)


def parse_marker(packet: Packet) -> int | None:
    return packet.body[2] if len(packet.body) >= 3 else None


# --------------------------------------------------------------------------------------------------
# Connect descriptors

Descriptor = dict[str, "str | Descriptor | list[str | Descriptor]"]


def parse_descriptor(text: str) -> Descriptor:
    """`(DESCRIPTION=(ADDRESS=(PROTOCOL=tcp)(HOST=h)))` as nested dicts with upper-case keys.

    A key seen twice at one level (several ADDRESS entries) becomes a list. A cut descriptor (the tracer
    stopped mid-way) yields what was complete; quoted values (`ARGS='(...)'`) stay strings.
    """
    root: Descriptor = {}
    stack: list[Descriptor] = [root]
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "(":
            end = i + 1
            while end < n and text[end] not in "=()":
                end += 1
            key = text[i + 1 : end].strip().upper()
            if end >= n or text[end] != "=":
                i = end
                continue
            j = end + 1
            while j < n and text[j] in " \t\r\n":
                j += 1
            if j < n and text[j] == "(":
                child: Descriptor = {}
                _add_value(stack[-1], key, child)
                stack.append(child)
                i = j
                continue
            value, i = _read_value(text, j)
            if i < n and text[i] == ")":
                _add_value(stack[-1], key, value)
                i += 1
            continue
        if ch == ")":
            if len(stack) > 1:
                stack.pop()
            i += 1
            continue
        i += 1
    return root


def _read_value(text: str, start: int) -> tuple[str, int]:
    if start < len(text) and text[start] in "'\"":
        quote = text[start]
        end = text.find(quote, start + 1)
        if end < 0:
            return text[start + 1 :], len(text)
        close = end + 1
        while close < len(text) and text[close] != ")":
            close += 1
        return text[start + 1 : end], close
    end = start
    while end < len(text) and text[end] != ")":
        end += 1
    return text[start:end].strip(), end


def _add_value(node: Descriptor, key: str, value: str | Descriptor) -> None:
    if key not in node:
        node[key] = value
        return
    existing = node[key]
    if isinstance(existing, list):
        existing.append(value)
    else:
        node[key] = [existing, value]


def find_in_descriptor(node: object, *path: str) -> str | None:
    """The first string at the end of `path`, searching nested levels and lists depth-first."""
    if not path:
        return node if isinstance(node, str) else None
    if isinstance(node, list):
        for item in node:
            found = find_in_descriptor(item, *path)
            if found is not None:
                return found
        return None
    if not isinstance(node, dict):
        return None
    head = path[0]
    if head in node:
        found = find_in_descriptor(node[head], *path[1:])
        if found is not None:
            return found
    for value in node.values():
        if isinstance(value, (dict, list)):
            found = find_in_descriptor(value, *path)
            if found is not None:
                return found
    return None


def descriptor_summary(text: str) -> dict[str, str]:
    """The fields a session record wants: protocol, host, port, SID or service, programs, OS user."""
    tree = parse_descriptor(text)
    out: dict[str, str] = {}
    for name, path in (
        ("protocol", ("ADDRESS", "PROTOCOL")),
        ("host", ("ADDRESS", "HOST")),
        ("port", ("ADDRESS", "PORT")),
        ("server_program", ("ADDRESS", "PROGRAM")),
        ("sid", ("CONNECT_DATA", "SID")),
        ("service_name", ("CONNECT_DATA", "SERVICE_NAME")),
        ("program", ("CID", "PROGRAM")),
        ("client_host", ("CID", "HOST")),
        ("os_user", ("CID", "USER")),
    ):
        value = find_in_descriptor(tree, *path)
        if value:
            out[name] = value
    return out


# --------------------------------------------------------------------------------------------------
# TTC: integers, strings, numbers


class MessageType(enum.IntEnum):
    PROTOCOL = 1
    DATA_TYPES = 2
    FUNCTION = 3
    ERROR = 4  # the end-of-call status, sent after every call, error or not
    ROW_HEADER = 6
    ROW_DATA = 7
    PARAMETER = 8
    STATUS = 9
    IO_VECTOR = 11
    LOB_DATA = 14
    WARNING = 15
    DESCRIBE_INFO = 16
    PIGGYBACK = 17
    FLUSH_OUT_BINDS = 19
    BIT_VECTOR = 21
    SERVER_SIDE_PIGGYBACK = 23


class Function(enum.IntEnum):
    REEXECUTE = 4
    FETCH = 5
    LOGOFF = 9
    COMMIT = 14
    ROLLBACK = 15
    REEXECUTE_AND_FETCH = 78
    EXECUTE = 94  # OALL8: parse, bind, execute, fetch as the options say
    LOB_OP = 96
    TPC_TXN_SWITCH = 103
    CLOSE_CURSORS = 105
    AUTH_PHASE_TWO = 115
    AUTH_PHASE_ONE = 118
    SET_END_TO_END_ATTR = 135
    PING = 147
    SET_SCHEMA = 152
    SESSION_GET = 162
    SESSION_RELEASE = 163


EXEC_PARSE = 0x01
EXEC_BIND = 0x08
EXEC_DEFINE = 0x10
EXEC_EXECUTE = 0x20
EXEC_FETCH = 0x40
EXEC_COMMIT = 0x100
EXEC_NOT_PLSQL = 0x8000
EXEC_DESCRIBE = 0x20000

NO_DATA_FOUND = 1403
LONG_LENGTH_INDICATOR = 0xFE
NULL_LENGTH_INDICATOR = 0xFF
MAX_SHORT_LENGTH = 252


def encode_ub(value: int) -> bytes:
    """Oracle's compressed integer (universal representation): a length byte, then big-endian bytes.

    The length byte's high bit marks a negative value. Zero is the single byte 0.
    """
    if value == 0:
        return b"\x00"
    negative = value < 0
    magnitude = -value if negative else value
    raw = magnitude.to_bytes((magnitude.bit_length() + 7) // 8, "big")
    return bytes([len(raw) | (0x80 if negative else 0)]) + raw


def decode_ub(data: bytes | bytearray, offset: int = 0) -> tuple[int, int] | None:
    """(value, bytes used) of the compressed integer at `offset`, or None if it is not there whole."""
    if offset >= len(data):
        return None
    head = data[offset]
    size = head & 0x7F
    if size > 8 or offset + 1 + size > len(data):
        return None
    value = int.from_bytes(data[offset + 1 : offset + 1 + size], "big")
    return (-value if head & 0x80 else value), 1 + size


def encode_bytes_with_length(raw: bytes, chunk: int = 32767) -> bytes:
    """A TTC byte string: one length byte when short, else 0xFE, chunks with compressed lengths, 0."""
    if len(raw) <= MAX_SHORT_LENGTH:
        return bytes([len(raw)]) + raw
    out = bytearray([LONG_LENGTH_INDICATOR])
    for start in range(0, len(raw), chunk):
        piece = raw[start : start + chunk]
        out += encode_ub(len(piece)) + piece
    out += b"\x00"
    return bytes(out)


def decode_bytes_with_length(
    data: bytes | bytearray, offset: int = 0
) -> tuple[bytes | None, int, bool] | None:
    """(bytes or None for NULL, bytes used, cut short) of the TTC byte string at `offset`."""
    if offset >= len(data):
        return None
    head = data[offset]
    if head in (0, NULL_LENGTH_INDICATOR):
        return None if head else b"", 1, False
    if head != LONG_LENGTH_INDICATOR:
        raw = bytes(data[offset + 1 : offset + 1 + head])
        return raw, 1 + len(raw), len(raw) < head
    pos, out = offset + 1, bytearray()
    while True:
        chunk = decode_ub(data, pos)
        if chunk is None:
            return bytes(out), pos - offset, True
        size, used = chunk
        pos += used
        if size <= 0:
            return bytes(out), pos - offset, False
        piece = data[pos : pos + size]
        out += piece
        pos += len(piece)
        if len(piece) < size:
            return bytes(out), pos - offset, True


def decode_number(raw: bytes) -> str | None:
    """Oracle's NUMBER (base-100 digits, excess-65 exponent) as a decimal string, or None if malformed."""
    if not raw:
        return None
    head = raw[0]
    if head == 0x80 and len(raw) == 1:
        return "0"
    if head & 0x80:
        exponent = (head & 0x7F) - 65
        digits = list(raw[1:])
        if any(not 1 <= d <= 100 for d in digits):
            return None
        values = [d - 1 for d in digits]
        sign = ""
    else:
        exponent = ((~head) & 0x7F) - 65
        digits = list(raw[1:])
        if digits and digits[-1] == 102:
            digits = digits[:-1]
        if any(not 2 <= d <= 101 for d in digits):
            return None
        values = [101 - d for d in digits]
        sign = "-"
    if not values:
        return None
    with localcontext() as context:
        context.prec = 200  # NUMBER holds 40 digits; the exponent spans 10^-130..10^126
        total = Decimal(0)
        for index, value in enumerate(values):
            total += Decimal(value).scaleb(2 * (exponent - index))
        text = format(total.normalize(), "f")
    return sign + text


def encode_number(text: str) -> bytes:
    """The NUMBER bytes of a non-negative integer (enough for tests that build rows)."""
    value = int(text)
    if value == 0:
        return b"\x80"
    if value < 0:
        raise ValueError("negative numbers are not needed by the tests")
    digits: list[int] = []
    while value:
        value, digit = divmod(value, 100)
        digits.insert(0, digit)
    exponent = len(digits) - 1
    while digits and digits[-1] == 0:
        digits.pop()
    return bytes([0xC1 + exponent] + [d + 1 for d in digits])


# --------------------------------------------------------------------------------------------------
# TTC messages in the native representation (11g OCI, 64-bit): fixed-width little-endian integers,
# 8-byte pointers (0xFE.. when the argument is present).

NATIVE_POINTER = b"\xfe\xff\xff\xff\xff\xff\xff\xff"
NULL_POINTER = bytes(8)

NativeExecuteHead = Struct(
    "options" / Int32ul,
    "cursor" / Int32ul,
    "sql_pointer" / Bytes(8),
    "sql_length" / Int64ul,
    "al8i4_pointer" / Bytes(8),
    "al8i4_length" / Int64ul,
    "al8o4_pointer" / Bytes(8),
    "al8o4l_pointer" / Bytes(8),
    "prefetch_buffer" / Int32ul,
    "prefetch_rows" / Int32ul,
    "max_long" / Int32ul,
)  # 68 bytes; 124 opaque bytes (bind, define and other pointers) follow before the SQL text
NATIVE_EXECUTE_PREAMBLE = 195  # from the message type byte to the SQL's length byte, in real captures

SQL_START = re.compile(
    rb"\s*\(?\s*(?:select|insert|update|delete|merge|create|alter|drop|truncate|begin|declare|with|commit|"
    rb"rollback|grant|revoke|call|lock|comment|rename|analyze|explain|savepoint|set|purge|flashback|audit)\b",
    re.I,
)


@dataclass
class ExecuteCall:
    """An OALL8 call: options, cursor (0 = new), and the SQL text when the call carries one."""

    sequence: int
    options: int
    cursor: int
    sql_length: int
    sql: bytes | None  # None when the call names a cursor only
    truncated: bool = False  # the text was cut short (by the tracer)
    layout: str = "native"  # "native" or "universal"

    @property
    def text(self) -> str:
        return (self.sql or b"").decode("utf-8", "replace")


def build_function(function: int, sequence: int, body: bytes, piggyback: bool = False) -> bytes:
    return (
        bytes([MessageType.PIGGYBACK if piggyback else MessageType.FUNCTION, function, sequence & 0xFF])
        + body
    )


def build_execute_native(
    sql: str | None, sequence: int, cursor: int = 0, options: int | None = None, prefetch: int = 2
) -> bytes:
    """An OALL8 message as 64-bit 11g OCI sends it (the layout of the real captures)."""
    raw = sql.encode() if sql is not None else b""
    if options is None:
        options = EXEC_PARSE | EXEC_EXECUTE | EXEC_NOT_PLSQL
        if raw.lstrip().lower().startswith((b"select", b"with")):
            options |= EXEC_FETCH
    head = NativeExecuteHead.build(
        dict(
            options=options,
            cursor=cursor,
            sql_pointer=NATIVE_POINTER if raw else NULL_POINTER,
            sql_length=len(raw),
            al8i4_pointer=NATIVE_POINTER,
            al8i4_length=13,
            al8o4_pointer=NATIVE_POINTER,
            al8o4l_pointer=NATIVE_POINTER,
            prefetch_buffer=0,
            prefetch_rows=prefetch,
            max_long=0,
        )
    )
    body = head + bytes(NATIVE_EXECUTE_PREAMBLE - 3 - len(head))
    if raw:
        body += encode_bytes_with_length(raw)
    body += struct.pack("<13I", 1, 1 if cursor == 0 else 0, *([0] * 11))
    return build_function(Function.EXECUTE, sequence, body)


def build_fetch_native(cursor: int, rows: int, sequence: int) -> bytes:
    return build_function(Function.FETCH, sequence, struct.pack("<II", cursor, rows))


def build_close_cursors_native(cursors: list[int], sequence: int) -> bytes:
    body = NATIVE_POINTER + struct.pack("<Q", len(cursors)) + b"".join(struct.pack("<I", c) for c in cursors)
    return build_function(Function.CLOSE_CURSORS, sequence, body, piggyback=True)


def _looks_like_sql(data: bytes | bytearray, start: int) -> bool:
    return SQL_START.match(bytes(data[start : start + 40])) is not None


def _printable(raw: bytes | bytearray) -> bool:
    if not raw:
        return False
    bad = sum(1 for b in raw if b < 0x20 and b not in (9, 10, 13))
    return bad == 0


def _find_text(
    data: bytes | bytearray, start: int, length: int, preferred: int
) -> tuple[bytes, int, bool] | None:
    """Find the SQL text of `length` bytes written as a TTC byte string at or after `start`.

    The call declared the length, so the length byte (or the long-string marker) must agree with it and
    the text must read as SQL: two independent checks. Returns (text, offset, cut short).
    """
    candidates = [preferred] if start <= preferred < len(data) else []
    candidates += range(start, min(len(data), start + 600))
    for pos in candidates:
        head = data[pos]
        if length <= MAX_SHORT_LENGTH:
            if head != length:
                continue
            text = bytes(data[pos + 1 : pos + 1 + length])
        else:
            if head != LONG_LENGTH_INDICATOR:
                continue
            decoded = decode_bytes_with_length(data, pos)
            if decoded is None or decoded[0] is None:
                continue
            text = decoded[0][:length]
            # OCI may write chunk lengths as single bytes: take the printable run instead
            if not _looks_like_sql(text, 0):
                text = bytes(data[pos + 2 : pos + 2 + length])
        if text and _looks_like_sql(text, 0) and _printable(text[:64]):
            return text, pos, len(text) < length
    return None


def parse_execute(message: bytes | bytearray) -> ExecuteCall | None:
    """An OALL8 message (starting at its type byte 3, function 0x5e), native or universal layout."""
    if len(message) < 3 or message[0] != MessageType.FUNCTION or message[1] != Function.EXECUTE:
        return None
    return _parse_execute_native(message) or _parse_execute_universal(message)


def _parse_execute_native(message: bytes | bytearray) -> ExecuteCall | None:
    if len(message) < 3 + 12:
        return None
    options, cursor = struct.unpack_from("<II", message, 3)
    pointer = bytes(message[11:19])
    if (
        options == 0
        or options >= 1 << 24
        or cursor >= 1 << 20
        or pointer not in (NATIVE_POINTER, NULL_POINTER)
    ):
        return None
    if len(message) < 27:
        if pointer == NATIVE_POINTER:  # cut before the length: an execution whose text is lost
            return ExecuteCall(message[2], options, cursor, 0, b"", True)
        return ExecuteCall(message[2], options, cursor, 0, None)
    (sql_length,) = struct.unpack_from("<Q", message, 19)
    if pointer == NULL_POINTER or sql_length == 0:
        return ExecuteCall(message[2], options, cursor, 0, None)
    if sql_length > 1 << 26:
        return None
    found = _find_text(message, 27, sql_length, NATIVE_EXECUTE_PREAMBLE)
    if found is None:
        # the buffer may end before the text: the call is real, its text is lost
        if len(message) < NATIVE_EXECUTE_PREAMBLE + 2:
            return ExecuteCall(message[2], options, cursor, sql_length, b"", True)
        return None
    text, _, cut = found
    return ExecuteCall(message[2], options, cursor, sql_length, text, cut)


def _parse_execute_universal(message: bytes | bytearray) -> ExecuteCall | None:
    """Compressed integers and one-byte pointers (python-oracledb and 12c+ clients).

    From field version 23.1 (ext 1) a token number follows the sequence number: tried second.
    """
    call = _parse_universal_at(message, 3)
    if call is None or call.sql is None:
        token = decode_ub(message, 3)
        with_token = _parse_universal_at(message, 3 + token[1]) if token is not None else None
        if with_token is not None and (call is None or with_token.sql is not None):
            return with_token
    return call


def _parse_universal_at(message: bytes | bytearray, pos: int) -> ExecuteCall | None:
    values = []
    for _ in range(2):
        item = decode_ub(message, pos)
        if item is None:
            return None
        values.append(item[0])
        pos += item[1]
    options, cursor = values
    if options <= 0 or options >= 1 << 24 or not 0 <= cursor < 1 << 20 or pos >= len(message):
        return None
    pointer = message[pos]
    pos += 1
    length = decode_ub(message, pos)
    if pointer not in (0, 1) or length is None:
        return None
    sql_length = length[0]
    pos += length[1]
    if pointer == 0 or sql_length <= 0:
        return ExecuteCall(message[2], options, cursor, 0, None, layout="universal")
    found = _find_text(message, pos, sql_length, pos)
    if found is None:
        return None
    text, _, cut = found
    return ExecuteCall(message[2], options, cursor, sql_length, text, cut, layout="universal")


def build_execute_universal(
    sql: str, sequence: int, cursor: int = 0, prefetch: int = 2, token: int | None = None
) -> bytes:
    """An OALL8 in the universal representation, field by field as a thin client writes it (for tests)."""
    raw = sql.encode()
    options = EXEC_PARSE | EXEC_EXECUTE | EXEC_NOT_PLSQL
    if raw.lstrip().lower().startswith((b"select", b"with")):
        options |= EXEC_FETCH
    ub = encode_ub
    body = bytearray(ub(token) if token is not None else b"")
    body += ub(options) + ub(cursor) + b"\x01" + ub(len(raw))  # SQL pointer and length
    body += b"\x01" + ub(13) + b"\x00\x00"  # al8i4 vector; al8o4, al8o4l absent
    body += ub(0) + ub(prefetch) + ub(0x7FFFFFFF)  # prefetch buffer, rows, max long
    body += b"\x00" + ub(0) + b"\x00" * 5  # no binds; al8app, al8txn, al8txl, al8kv, al8kvl
    body += b"\x00" + ub(0) + ub(0)  # no defines; registration id
    body += b"\x00\x01\x00" + ub(0) + b"\x00" + ub(0) + ub(0)  # object list, blv, dnam, regid msb
    body += b"\x00" + ub(0) + b"\x00"  # DML row counts
    body += encode_bytes_with_length(raw)
    body += b"".join(ub(v) for v in (1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0))  # al8i4
    return build_function(Function.EXECUTE, sequence, bytes(body))


def parse_cursor_call(message: bytes | bytearray) -> int | None:
    """The cursor a fetch or re-execute call names (native layout: the first 4-byte field)."""
    if len(message) < 7:
        return None
    (cursor,) = struct.unpack_from("<I", message, 3)
    if cursor < 1 << 20:
        return cursor
    item = decode_ub(message, 3)
    return item[0] if item and 0 <= item[0] < 1 << 20 else None


def parse_close_cursors(message: bytes | bytearray) -> list[int]:
    """The cursor ids a close-cursors call (usually a piggyback) lists, native layout; [] if unsure."""
    if len(message) < 19 or bytes(message[3:11]) != NATIVE_POINTER:
        return []
    (count,) = struct.unpack_from("<Q", message, 11)
    if not 0 < count <= 500 or len(message) < 19 + 4 * count:
        return []
    return list(struct.unpack_from(f"<{count}I", message, 19))


def next_call(data: bytes | bytearray, offset: int, sequence: int) -> int | None:
    """Where the call following a piggyback of sequence number `sequence` starts.

    Piggyback bodies vary by function and version; the next call carries the next sequence number,
    which is a safer anchor than guessing a body's length.
    """
    want = (sequence + 1) & 0xFF
    known = {int(f) for f in Function}
    for pos in range(offset, len(data) - 2):
        if (
            data[pos] in (MessageType.FUNCTION, MessageType.PIGGYBACK)
            and data[pos + 2] == want
            and data[pos + 1] in known
        ):
            return pos
    return None


# --------------------------------------------------------------------------------------------------
# Logon key/value pairs (AUTH phase one and two, and the server's answers)

PUBLIC_AUTH_KEYS = frozenset(
    {
        "AUTH_TERMINAL",
        "AUTH_PROGRAM_NM",
        "AUTH_MACHINE",
        "AUTH_PID",
        "AUTH_SID",
        "AUTH_VERSION_NO",
        "AUTH_VERSION_STRING",
        "AUTH_DBNAME",
        "AUTH_INSTANCENAME",
        "AUTH_INSTANCE_NO",
        "AUTH_SESSION_ID",
        "AUTH_SERIAL_NUM",
        "AUTH_SC_SERVICE_NAME",
        "AUTH_SC_INSTANCE_NAME",
        "AUTH_SC_DB_DOMAIN",
        "AUTH_SC_DBUNIQUE_NAME",
        "AUTH_SC_SERVER_HOST",
        "AUTH_SC_INSTANCE_START_TIME",
    }
)  # a whitelist: session keys, password verifiers and hashes are never read out
_KEY = re.compile(rb"[A-Z][A-Z0-9_]{2,62}\x00?")


def auth_user(message: bytes | bytearray) -> str | None:
    """The database user an AUTH call (0x76 or 0x73) logs on as."""
    if len(message) < 15:
        return None
    if bytes(message[3:11]) in (NATIVE_POINTER, NULL_POINTER):
        (length,) = struct.unpack_from("<I", message, 11)
        start = 19
    else:  # universal: pointer byte, compressed length
        item = decode_ub(message, 4)
        if item is None:
            return None
        length, start = item[0], 4 + item[1]
    if not 0 < length <= 128:
        return None
    for pos in range(start, min(len(message) - length, start + 120)):
        if message[pos] == length:
            raw = bytes(message[pos + 1 : pos + 1 + length])
            if len(raw) == length and _printable(raw) and b" " not in raw:
                return raw.decode("utf-8", "replace")
    return None


def auth_pairs(data: bytes | bytearray) -> dict[str, str]:
    """The public logon key/value pairs in `data`, in either representation.

    Each key and value is a length (4 bytes little-endian natively, a compressed integer otherwise)
    followed by a TTC byte string; both lengths must agree. Only whitelisted keys are read.
    """
    out: dict[str, str] = {}
    for match in _KEY.finditer(data):
        pos = match.start()
        key_length = data[pos - 1] if pos else 0
        if key_length == 0 or pos < 3:
            continue
        if pos >= 5 and bytes(data[pos - 5 : pos - 1]) == bytes([key_length, 0, 0, 0]):
            native = True
        elif bytes(data[pos - 3 : pos - 1]) == bytes([1, key_length]):
            native = False
        else:
            continue
        key = bytes(data[pos : pos + key_length]).rstrip(b"\x00").decode("ascii", "replace")
        if key not in PUBLIC_AUTH_KEYS:
            continue
        value = _pair_value(data, pos + key_length, native)
        if value is not None:
            out.setdefault(key, value)
    return out


def _pair_value(data: bytes | bytearray, at: int, native: bool) -> str | None:
    if native:
        if len(data) < at + 4:
            return None
        (length,) = struct.unpack_from("<I", data, at)
        start = at + 4
    else:
        item = decode_ub(data, at)
        if item is None:
            return None
        length, start = item[0], at + item[1]
    if length == 0:
        return ""
    if not 0 < length <= MAX_SHORT_LENGTH or len(data) <= start or data[start] != length:
        return None
    return bytes(data[start + 1 : start + 1 + length]).rstrip(b"\x00").decode("utf-8", "replace")


def build_auth_native(function: int, sequence: int, user: str, pairs: dict[str, str], mode: int = 1) -> bytes:
    """An AUTH call in the native layout (for tests): user, then key/value pairs."""
    raw_user = user.encode()
    body = (
        NATIVE_POINTER
        + struct.pack("<II", len(raw_user), mode)
        + NATIVE_POINTER
        + struct.pack("<Q", len(pairs))
    )
    body += NATIVE_POINTER + NATIVE_POINTER + bytes([len(raw_user)]) + raw_user
    body += b"".join(native_pair(key, value) for key, value in pairs.items())
    return build_function(function, sequence, body)


def native_pair(key: str, value: str, flags: int = 0) -> bytes:
    raw_key, raw_value = key.encode(), value.encode()
    out = struct.pack("<I", len(raw_key)) + bytes([len(raw_key)]) + raw_key
    out += struct.pack("<I", len(raw_value)) + (bytes([len(raw_value)]) + raw_value if raw_value else b"")
    return out + struct.pack("<I", flags)


def version_from_number(number: int) -> str:
    """AUTH_VERSION_NO (e.g. 186647040) as Oracle prints it (11.2.0.2.0)."""
    return ".".join(
        str(part)
        for part in (
            (number >> 24) & 0xFF,
            (number >> 20) & 0x0F,
            (number >> 12) & 0xFF,
            (number >> 8) & 0x0F,
            number & 0xFF,
        )
    )


# --------------------------------------------------------------------------------------------------
# Server replies: the end-of-call status, column names, rows

STATUS_WINDOW = 4096  # the end-of-call message closes a reply: only its last bytes are searched
CALL_STATUS_TEXT_OFFSET = 136  # from the status message's type byte to its message text (native)
_ORA = re.compile(rb"(ORA-(\d{5}): ?)([^\x00\n]*)")


@dataclass
class CallStatus:
    """The end-of-call message (type 4) every call's reply ends with."""

    code: int  # 0 when the call succeeded
    rows: int  # rows processed so far by the cursor (fetched, or affected by DML)
    cursor: int
    error_position: int = 0
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.code in (0, NO_DATA_FOUND)


CallStatusHead = Struct(
    "type" / Int8ub,
    "call_status" / Int32ul,
    "sequence" / Int16ul,
    "unknown" / Int8ub,
    "rows" / Int32ul,
    "code" / Int16ul,
    "array_error_1" / Int16ul,
    "array_error_2" / Int16ul,
    "cursor" / Int16ul,
    "error_position" / Int16ul,
)  # 22 bytes; 114 more follow (SQL type, flags, rowid, OS error...) before the message text


def build_call_status_native(
    code: int = 0,
    rows: int = 0,
    cursor: int = 1,
    message: str | None = None,
    sequence: int = 0,
    error_position: int = 0,
) -> bytes:
    head = CallStatusHead.build(
        dict(
            type=MessageType.ERROR,
            call_status=1,
            sequence=sequence,
            unknown=1,
            rows=rows,
            code=code,
            array_error_1=0,
            array_error_2=0,
            cursor=cursor,
            error_position=error_position,
        )
    )
    out = head + bytes(CALL_STATUS_TEXT_OFFSET - len(head))
    if code:
        text = (message or f"ORA-{code:05d}: error\n").encode()
        out += bytes([len(text)]) + text
    return out


def _status_at(data: bytes | bytearray, pos: int, whole: bool) -> CallStatus | None:
    """The status message at `pos`, if its fields hold together (a cut one needs its first 14 bytes)."""
    size = CallStatusHead.sizeof()
    available = len(data) - pos
    if data[pos] != MessageType.ERROR or available < (size if whole else 14):
        return None
    head = bytes(data[pos : pos + size]).ljust(size, b"\x00")
    fields = CallStatusHead.parse(head)
    if fields.call_status > 0xFFFF or fields.unknown > 1 or fields.rows >= 1 << 31:
        return None
    if fields.array_error_1 or fields.array_error_2 or fields.cursor >= 1 << 15:
        return None
    text_at = pos + CALL_STATUS_TEXT_OFFSET
    message = None
    if fields.code:
        if text_at < len(data):
            ora = _ORA.match(bytes(data[text_at + 1 : text_at + 1 + 600]))
            if ora is None or int(ora.group(2)) != fields.code:
                return None
            message = ora.group(3).decode("utf-8", "replace").strip()
        elif fields.code != NO_DATA_FOUND:
            return None  # an error code we cannot confirm against its text
    elif len(data) < text_at:
        return None
    return CallStatus(fields.code, fields.rows, fields.cursor, fields.error_position, message)


def find_call_status(
    data: bytes | bytearray, whole: bool = True, layout: str = "native"
) -> CallStatus | None:
    """The end-of-call message of a reply segment, checked field by field.

    `layout` "universal" (compressed integers) is read by `find_call_status_universal`.

    First by its text: an `ORA-nnnnn` whose status message, 136 bytes before, carries the same code.
    Else the last message with a success (or no-data-found) code whose fixed part fits, and whose
    flag byte reads 1 as in every reply seen; a cut segment (`whole` False) may end inside it.
    """
    if layout == "universal":
        return find_call_status_universal(data)
    raw = bytes(data)
    for match in reversed(list(_ORA.finditer(raw, max(0, len(raw) - STATUS_WINDOW - 1000)))):
        pos = match.start() - 1 - CALL_STATUS_TEXT_OFFSET
        if pos >= 0:
            status = _status_at(raw, pos, whole)
            if status is not None and status.code == int(match.group(2)):
                return status
    if len(raw) < 14:
        return None
    floor = max(0, len(raw) - STATUS_WINDOW)
    pos = raw.rfind(b"\x04", floor, len(raw) - 13)
    while pos >= 0:
        if raw[pos + 7] == 1:
            status = _status_at(raw, pos, whole)
            if status is not None and status.code in (0, NO_DATA_FOUND):
                return status
        pos = raw.rfind(b"\x04", floor, pos)
    return None


def find_call_status_universal(data: bytes | bytearray) -> CallStatus | None:
    """The end-of-call message in the universal representation: compressed integers throughout.

    Fields as python-oracledb reads them: call status, sequence, current row, error number, two array
    errors, cursor, error position. An error is believed when its `ORA-nnnnn` text follows; a
    success only when the message opens the segment (nothing else anchors it).
    """
    raw = bytes(data)
    for pos in range(len(raw) - 9, -1, -1):
        if raw[pos] != MessageType.ERROR:
            continue
        at, values = pos + 1, []
        for _ in range(8):
            item = decode_ub(raw, at)
            if item is None or item[1] > 5:
                break
            values.append(item[0])
            at += item[1]
        if len(values) < 8:
            continue
        call_status, _sequence, rows, code, array_1, array_2, cursor, position = values
        if (
            call_status > 0xFFFF
            or rows < 0
            or not 0 <= code < 100000
            or array_1
            or array_2
            or not 0 <= cursor < 1 << 16
        ):
            continue
        if code and code != NO_DATA_FOUND:
            ora = _ORA.search(raw, at, at + 600)
            if ora is None or int(ora.group(2)) != code:
                continue
            return CallStatus(code, rows, cursor, position, ora.group(3).decode("utf-8", "replace").strip())
        if code == NO_DATA_FOUND or pos == 0:
            return CallStatus(code, rows, cursor, position)
    return None


def build_call_status_universal(
    code: int = 0, rows: int = 0, cursor: int = 1, message: str | None = None, sequence: int = 1
) -> bytes:
    """A universal end-of-call message (for tests): the leading fields, padding, then the text."""
    out = bytes([MessageType.ERROR]) + b"".join(
        encode_ub(v) for v in (1, sequence, rows, code, 0, 0, cursor, 0)
    )
    out += bytes(12)
    if code:
        text = (message or f"ORA-{code:05d}: error\n").encode()
        out += encode_ub(len(text)) + encode_bytes_with_length(text)
    return out


def find_ora_error(data: bytes | bytearray) -> tuple[int, str] | None:
    """The last `ORA-nnnnn: text` in a reply, when the status message itself cannot be located."""
    matches = list(_ORA.finditer(bytes(data)))
    if not matches:
        return None
    last = matches[-1]
    if last is None:
        return None
    return int(last.group(2)), last.group(3).decode("utf-8", "replace").strip()


def column_names(data: bytes | bytearray) -> list[str]:
    """Column names from a describe-info message: each is written as (n, 4-byte n, n, name)."""
    names: list[str] = []
    pattern = re.compile(rb"([\x01-\x7f])\x00\x00\x00")
    for match in pattern.finditer(data):
        length = match.group(1)[0]
        pos = match.start()
        if pos == 0 or data[pos - 1] != length or match.end() >= len(data) or data[match.end()] != length:
            continue
        raw = bytes(data[match.end() + 1 : match.end() + 1 + length])
        if len(raw) == length and re.fullmatch(rb"[A-Za-z_$#(][A-Za-z0-9_$#() ,.*+'|-]*", raw):
            names.append(raw.decode("ascii"))
    return names


def value_text(raw: bytes | None) -> str | None:
    """A column value for display: text when it reads as text, else a NUMBER, else hex."""
    if raw is None:
        return None
    try:
        text = raw.decode("utf-8")
        if _printable(raw):
            return text
    except UnicodeDecodeError:
        pass
    date = decode_date(raw)
    if date is not None:
        return date
    number = decode_number(raw)
    return number if number is not None else raw.hex()


def decode_date(raw: bytes) -> str | None:
    """Oracle's 7-byte DATE (century+100, year+100, month, day, hour+1, minute+1, second+1), if it is one."""
    if len(raw) != 7:
        return None
    century, year, month, day, hour, minute, second = raw
    if not (100 <= century <= 199 and 100 <= year <= 199 and 1 <= month <= 12 and 1 <= day <= 31):
        return None
    if not (1 <= hour <= 24 and 1 <= minute <= 60 and 1 <= second <= 60):
        return None
    return f"{(century - 100) * 100 + year - 100:04d}-{month:02d}-{day:02d} {hour - 1:02d}:{minute - 1:02d}:{second - 1:02d}"


_COLUMN_COUNT = re.compile(rb"([\x01-\xff][\x00-\x03])\x00\x00\x51\x01[\x01-\xfc]")


def column_count(data: bytes | bytearray) -> int | None:
    """The column count a describe-info message announces (native layout: 4 bytes before 0x51 0x01)."""
    match = _COLUMN_COUNT.search(bytes(data))
    if match is None:
        return None
    (count,) = struct.unpack_from("<I", match.group(0))
    return count if 0 < count <= 1000 else None


def scan_rows(
    data: bytes | bytearray, columns: int, previous: list[str | None] | None = None, limit: int = 20
) -> list[list[str | None]]:
    """Rows from row-data messages (type 7) in a reply, given the column count.

    Each row is the 7 byte and one TTC byte string per column sent; a bit-vector message (21: column
    count, then one bit per column) before a row says which columns were sent, the others repeating
    the previous row's values. The first row must be followed by another message type to be believed;
    scanning stops at the first thing that does not fit.
    """
    if columns <= 0:
        return []
    start = data.find(bytes([MessageType.ROW_DATA]))
    for _ in range(64):  # a bounded number of false starts keeps this linear
        if start < 0:
            break
        rows = _rows_from(data, start, columns, previous, limit)
        if rows:
            return rows
        start = data.find(bytes([MessageType.ROW_DATA]), start + 1)
    return []


_AFTER_ROW = frozenset(
    {
        MessageType.ROW_DATA,
        MessageType.BIT_VECTOR,
        MessageType.PARAMETER,
        MessageType.ERROR,
        MessageType.ROW_HEADER,
    }
)


def _rows_from(
    data: bytes | bytearray, pos: int, columns: int, previous: list[str | None] | None, limit: int
) -> list[list[str | None]]:
    rows: list[list[str | None]] = []
    last = list(previous) if previous and len(previous) == columns else [None] * columns
    vector_bytes = (columns + 7) // 8
    sent = [True] * columns
    while pos < len(data) and len(rows) < limit:
        kind = data[pos]
        if kind == MessageType.BIT_VECTOR:
            if len(data) < pos + 3 + vector_bytes:
                break
            bits = data[pos + 3 : pos + 3 + vector_bytes]
            sent = [bool(bits[i // 8] & (1 << (i % 8))) for i in range(columns)]
            pos += 3 + vector_bytes
            continue
        if kind != MessageType.ROW_DATA:
            break
        at = pos + 1
        row: list[str | None] = []
        for index in range(columns):
            if not sent[index]:
                row.append(last[index])
                continue
            item = decode_bytes_with_length(data, at)
            if item is None or item[2]:
                return rows
            raw, used, _ = item
            row.append(value_text(raw))
            at += used
        if (at < len(data) and data[at] not in _AFTER_ROW) or all(value in (None, "") for value in row):
            return rows
        rows.append(row)
        last = row
        sent = [True] * columns
        pos = at
    return rows
