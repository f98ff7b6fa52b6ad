"""Prepared statements: COM_STMT_PREPARE's OK and COM_STMT_EXECUTE's parameters; COM_QUERY's attributes.

Decoded: the PREPARE OK (statement id, column and parameter counts, whether metadata follows) and an
execute's statement id, flags and parameters (NULL bitmap, the types when the client binds new ones,
the values), given the parameter count from the PREPARE and the types from an earlier execute. MySQL
8's query attributes before a COM_QUERY's text share that layout, so they are read here too.
Not decoded: COM_STMT_BULK_EXECUTE, the values of COM_STMT_SEND_LONG_DATA (marked `<long data>`).
"""

from __future__ import annotations

import datetime
import struct
from dataclasses import dataclass

from protocols.mysql.codec import MySqlError, Reader, lenenc_int, lenenc_str, text
from protocols.mysql.constants import (
    COM_STMT_EXECUTE,
    PARAM_UNSIGNED,
    TYPE_DATETIME,
    TYPE_DOUBLE,
    TYPE_LONGLONG,
    TYPE_NULL,
    TYPE_VAR_STRING,
)
from protocols.mysql.values import binary_value


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
                params.append(binary_value(r, *types[i]))
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
            attributes[name] = None if null else binary_value(r, code, unsigned)
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
