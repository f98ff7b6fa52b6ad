"""The server's replies: the end-of-call status every call ends with, ORA- errors, describe info, rows.

Decoded: the end-of-call message (rows processed, ORA- code and text, cursor id, error position) in
the native and universal layouts, located from the end of a reply and checked field by field; column
names and count from the describe info; the first rows from row-data messages, with the bit vector
that omits values repeated from the previous row. Not decoded: the column types and sizes of the
describe info, out binds, warnings, LOB data, server-side piggybacks.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from construct import Int8ub, Int16ul, Int32ul, Struct

from protocols.tns.datatypes import (
    decode_bytes_with_length,
    decode_ub,
    encode_bytes_with_length,
    encode_ub,
    value_text,
)
from protocols.tns.ttc import MessageType

NO_DATA_FOUND = 1403  # ORA-01403, which ends a fetch: a success
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
