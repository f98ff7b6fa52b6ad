"""Values of the binary protocol, as text: what prepared statements' rows and parameters carry.

Decoded: integers of 1 to 8 bytes (signed or not), FLOAT and DOUBLE, DATE, DATETIME and TIMESTAMP
(with microseconds), TIME (negative and over 24 hours included); every other type (strings, blobs,
DECIMAL, ENUM, SET, BIT, JSON, GEOMETRY) is a length-encoded string, shown as text.
"""

from __future__ import annotations

import struct

from protocols.mysql.codec import Reader, text
from protocols.mysql.constants import (
    TYPE_DATE,
    TYPE_DATETIME,
    TYPE_DOUBLE,
    TYPE_FLOAT,
    TYPE_INT24,
    TYPE_LONG,
    TYPE_LONGLONG,
    TYPE_NEWDATE,
    TYPE_NULL,
    TYPE_SHORT,
    TYPE_TIME,
    TYPE_TIMESTAMP,
    TYPE_TINY,
    TYPE_YEAR,
)

_FIXED_INT: dict[int, tuple[str, int]] = {
    TYPE_TINY: ("b", 1),
    TYPE_SHORT: ("h", 2),
    TYPE_YEAR: ("h", 2),
    TYPE_LONG: ("i", 4),
    TYPE_INT24: ("i", 4),
    TYPE_LONGLONG: ("q", 8),
}
_DATES = frozenset({TYPE_DATE, TYPE_DATETIME, TYPE_TIMESTAMP, TYPE_NEWDATE})


def binary_value(r: Reader, type_code: int, unsigned: bool) -> str:
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
