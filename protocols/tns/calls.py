"""The client's TTC calls that name SQL or a cursor: OALL8 (execute), fetch, re-execute, close cursors.

Read in both layouts: the *native* one that 11g OCI clients (sqlplus, cx_Oracle) negotiate on x86_64
(fixed-width little-endian integers, 8-byte pointers) and the *universal* one of python-oracledb and
12c+ clients (compressed integers, one-byte pointers). From an OALL8: its options, cursor and SQL text,
found by its declared length and checked to read as SQL. `next_call` skips a piggyback to the call
after it. Builders make native and universal calls for tests.

Not decoded: bind values, defines, the al8i4 vector's meaning, LOB operations, other functions.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from construct import Bytes, Int32ul, Int64ul, Struct

from protocols.tns.datatypes import (
    LONG_LENGTH_INDICATOR,
    MAX_SHORT_LENGTH,
    decode_bytes_with_length,
    decode_ub,
    encode_bytes_with_length,
    encode_ub,
    is_printable,
)
from protocols.tns.ttc import (
    EXEC_EXECUTE,
    EXEC_FETCH,
    EXEC_NOT_PLSQL,
    EXEC_PARSE,
    NATIVE_POINTER,
    NULL_POINTER,
    Function,
    MessageType,
    build_function,
)

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
        if text and _looks_like_sql(text, 0) and is_printable(text[:64]):
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
