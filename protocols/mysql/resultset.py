"""Result sets: column definitions and rows, text (COM_QUERY) and binary (prepared statements).

Decoded: ColumnDefinition41 (name, type, flags, table and original table, schema, character set, decimals; MariaDB's
extended metadata skipped), text rows (length-encoded strings, 0xfb for NULL) and binary rows (NULL
bitmap, then values read by `values`). The column count before the definitions and the end of the
result set are the decoder's (an OK or EOF, read by `replies`).
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.mysql.codec import Reader, lenenc_str, text
from protocols.mysql.constants import TYPE_VAR_STRING, UNSIGNED_FLAG
from protocols.mysql.values import binary_value


@dataclass(frozen=True, kw_only=True)
class Column:
    name: str
    type: int
    flags: int = 0
    table: str = ""
    schema: str = ""
    character_set: int = 0
    decimals: int = 0
    original_name: str = (
        ""  # the source column's name (`SELECT api_token AS t`: api_token), "" for an expression
    )
    original_table: str = ""  # the table it came from (`FROM customers c`: customers), "" for an expression


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
                original_name=strings[5].decode("utf-8", "backslashreplace"),
                original_table=strings[3].decode("utf-8", "backslashreplace"),
            )
    return _parse_column(data, extended_metadata)


def _parse_column(payload: bytes, extended_metadata: bool) -> Column:
    r = Reader(payload)
    r.lenenc_bytes()  # catalog, always "def"
    schema = text(r.lenenc_bytes()) or ""
    table = text(r.lenenc_bytes()) or ""
    original_table = text(r.lenenc_bytes()) or ""
    name = text(r.lenenc_bytes()) or ""
    original_name = text(r.lenenc_bytes()) or ""
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
        original_name=original_name,
        original_table=original_table,
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
    """A text protocol row: each value UTF-8, a byte that is not UTF-8 kept as a lone surrogate
    (surrogateescape), so that `value.encode("utf-8", "surrogateescape")` gives the bytes sent."""
    r = Reader(payload)
    values: list[str | None] = []
    while r.remaining:
        raw = r.lenenc_bytes()
        values.append(None if raw is None else raw.decode("utf-8", "surrogateescape"))
    return values


def build_text_row(values: list[bytes | None]) -> bytes:
    return b"".join(b"\xfb" if v is None else lenenc_str(v) for v in values)


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
            values.append(binary_value(r, column.type, bool(column.flags & UNSIGNED_FLAG)))
    return values
