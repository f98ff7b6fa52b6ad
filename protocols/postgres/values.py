"""PostgreSQL values as text, from a Bind parameter or a DataRow value, by format code and type OID.

Format 0 (text) is the value's own text. Format 1 (binary) is read by type, and written as PostgreSQL's
own text output would write it (server defaults: DateStyle ISO, IntervalStyle postgres, bytea_output
hex; timestamptz shown in UTC): bool, bytea, char, name, text/varchar/bpchar/unknown, json, jsonb,
xml, int2/int4/int8, oid and the other unsigned 4-byte ids, float4/float8, numeric, uuid, date, time,
timetz, timestamp, timestamptz, interval, inet/cidr, money, and one-dimensional or nested arrays of
those. A binary value of another type, or one too short for its type, is shown as hex (`\\x...`), as
bytea would be. Never raises.
"""

from __future__ import annotations

import datetime
import math
import struct
import uuid

# Type OIDs (pg_type.oid, fixed for built-in types).
BOOL = 16
BYTEA = 17
CHAR = 18
NAME = 19
INT8 = 20
INT2 = 21
INT4 = 23
REGPROC = 24
TEXT = 25
OID = 26
XID = 28
CID = 29
JSON = 114
XML = 142
CIDR = 650
FLOAT4 = 700
FLOAT8 = 701
UNKNOWN = 705
MONEY = 790
INET = 869
BPCHAR = 1042
VARCHAR = 1043
DATE = 1082
TIME = 1083
TIMESTAMP = 1114
TIMESTAMPTZ = 1184
INTERVAL = 1186
TIMETZ = 1266
NUMERIC = 1700
REGCLASS = 2205
UUID = 2950
JSONB = 3802

TYPE_NAMES: dict[int, str] = {
    BOOL: "bool",
    BYTEA: "bytea",
    CHAR: "char",
    NAME: "name",
    INT8: "int8",
    INT2: "int2",
    INT4: "int4",
    REGPROC: "regproc",
    TEXT: "text",
    OID: "oid",
    XID: "xid",
    CID: "cid",
    JSON: "json",
    XML: "xml",
    CIDR: "cidr",
    FLOAT4: "float4",
    FLOAT8: "float8",
    UNKNOWN: "unknown",
    MONEY: "money",
    INET: "inet",
    BPCHAR: "bpchar",
    VARCHAR: "varchar",
    DATE: "date",
    TIME: "time",
    TIMESTAMP: "timestamp",
    TIMESTAMPTZ: "timestamptz",
    INTERVAL: "interval",
    TIMETZ: "timetz",
    NUMERIC: "numeric",
    REGCLASS: "regclass",
    UUID: "uuid",
    JSONB: "jsonb",
}

# Array type OID -> element type OID.
ARRAY_ELEMENTS: dict[int, int] = {
    1000: BOOL,
    1001: BYTEA,
    1002: CHAR,
    1003: NAME,
    1005: INT2,
    1007: INT4,
    1009: TEXT,
    1014: BPCHAR,
    1015: VARCHAR,
    1016: INT8,
    1021: FLOAT4,
    1022: FLOAT8,
    1028: OID,
    1115: TIMESTAMP,
    1182: DATE,
    1183: TIME,
    1185: TIMESTAMPTZ,
    1187: INTERVAL,
    1231: NUMERIC,
    1270: TIMETZ,
    199: JSON,
    3807: JSONB,
    2951: UUID,
    1041: INET,
    651: CIDR,
}
for _array, _element in ARRAY_ELEMENTS.items():
    TYPE_NAMES[_array] = "_" + TYPE_NAMES[_element]

_TEXT_TYPES = frozenset({NAME, TEXT, UNKNOWN, BPCHAR, VARCHAR, JSON, XML, REGCLASS})
_UNSIGNED = frozenset({OID, XID, CID, REGPROC})
_EPOCH_DATE = datetime.date(2000, 1, 1).toordinal()
_INT64_MAX = 2**63 - 1
_INT64_MIN = -(2**63)
_INT32_MAX = 2**31 - 1
_INT32_MIN = -(2**31)


def type_name(oid: int) -> str:
    return TYPE_NAMES.get(oid, f"oid {oid}")


def value_text(raw: bytes, fmt: int, oid: int) -> str:
    """A value as PostgreSQL's text output shows it. Text format is taken as it is."""
    if fmt == 0:
        return raw.decode("utf-8", "replace")
    try:
        return _binary(raw, oid)
    except (struct.error, ValueError, OverflowError, IndexError):
        return hex_text(raw)


def hex_text(raw: bytes) -> str:
    return "\\x" + raw.hex()


def _binary(raw: bytes, oid: int) -> str:
    if oid in _TEXT_TYPES:
        return raw.decode("utf-8", "replace")
    reader = _BINARY.get(oid)
    if reader is not None:
        return reader(raw)
    element = ARRAY_ELEMENTS.get(oid)
    if element is not None:
        return _array(raw)
    return hex_text(raw)


def _exact(raw: bytes, size: int) -> bytes:
    if len(raw) != size:
        raise ValueError(f"{size} bytes expected, {len(raw)} given")
    return raw


def _bool(raw: bytes) -> str:
    return "t" if _exact(raw, 1)[0] else "f"


def _int(raw: bytes) -> str:
    if len(raw) not in (2, 4, 8):
        raise ValueError("not an integer")
    return str(int.from_bytes(raw, "big", signed=True))


def _uint(raw: bytes) -> str:
    return str(int.from_bytes(_exact(raw, 4), "big"))


def _shortest_text(value: float, digits_text: str, limit: int) -> str:
    """PostgreSQL's float output (Ryu, shortest digits that read back): `digits_text` is those digits
    in `%e` form; fixed-point when the decimal exponent is in [-4, limit), else `1.5e+07`."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    mantissa, _, exponent_text = digits_text.partition("e")
    sign = "-" if mantissa.startswith("-") else ""
    digits = mantissa.lstrip("-").replace(".", "").rstrip("0") or "0"
    exponent = int(exponent_text or 0)
    if value == 0:
        return sign + "0"
    if -4 <= exponent < limit:
        if exponent < 0:
            return f"{sign}0.{'0' * (-exponent - 1)}{digits}"
        whole, fraction = digits[: exponent + 1], digits[exponent + 1 :]
        return sign + whole.ljust(exponent + 1, "0") + (f".{fraction}" if fraction else "")
    head = digits[0] + (f".{digits[1:]}" if len(digits) > 1 else "")
    return f"{sign}{head}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"


def _float4(raw: bytes) -> str:
    value = struct.unpack("!f", _exact(raw, 4))[0]
    if math.isnan(value) or math.isinf(value):
        return _shortest_text(value, "", 6)
    packed = struct.pack("!f", value)
    for digits in range(0, 9):  # the fewest digits that read back as the same float4
        candidate = f"{value:.{digits}e}"
        if struct.pack("!f", float(candidate)) == packed:
            return _shortest_text(value, candidate, 6)
    return _shortest_text(value, f"{value:.8e}", 6)


def _float8(raw: bytes) -> str:
    value = struct.unpack("!d", _exact(raw, 8))[0]
    if math.isnan(value) or math.isinf(value):
        return _shortest_text(value, "", 15)
    return _shortest_text(value, _as_e(repr(value)), 15)


def _as_e(shortest: str) -> str:
    """Python's repr (the shortest digits that read back) in `d.ddde±x` form."""
    if "e" in shortest:
        return shortest
    sign = "-" if shortest.startswith("-") else ""
    whole, _, fraction = shortest.lstrip("-").partition(".")
    digits = (whole + fraction).lstrip("0")
    if not digits.rstrip("0"):
        return sign + "0e0"
    exponent = (
        len(whole.lstrip("0")) - 1 if whole.lstrip("0") else -(len(fraction) - len(fraction.lstrip("0")) + 1)
    )
    return f"{sign}{digits[0]}.{digits[1:] or '0'}e{exponent}"


def _numeric(raw: bytes) -> str:
    ndigits, weight, sign, dscale = struct.unpack_from("!hhHh", raw)
    if len(raw) != 8 + 2 * ndigits or ndigits < 0:
        raise ValueError("numeric length")
    special = {0xC000: "NaN", 0xD000: "Infinity", 0xF000: "-Infinity"}
    if sign in special:
        return special[sign]
    digits = struct.unpack_from(f"!{ndigits}H", raw, 8)
    if any(d > 9999 for d in digits) or dscale < 0:
        raise ValueError("numeric digits")
    # Digit i (base 10000) has the value digits[i] * 10000 ** (weight - i).
    integer_groups = [digits[i] if i < ndigits else 0 for i in range(weight + 1)]
    integer = "".join(f"{g:04d}" for g in integer_groups).lstrip("0") or "0"
    fraction = ""
    if dscale:
        groups = []
        for i in range(weight + 1, weight + 1 + (dscale + 3) // 4):
            groups.append(digits[i] if 0 <= i < ndigits else 0)
        fraction = "".join(f"{g:04d}" for g in groups)[:dscale]
    text = integer + ("." + fraction if fraction else "")
    return ("-" if sign == 0x4000 else "") + text


def _uuid(raw: bytes) -> str:
    return str(uuid.UUID(bytes=_exact(raw, 16)))


def _date(raw: bytes) -> str:
    days = struct.unpack("!i", _exact(raw, 4))[0]
    if days == _INT32_MAX:
        return "infinity"
    if days == _INT32_MIN:
        return "-infinity"
    return _date_text(days)


def _date_text(days: int) -> str:
    ordinal = _EPOCH_DATE + days
    if ordinal < 1:  # before 0001-01-01: PostgreSQL writes BC dates
        return f"{days} days from 2000-01-01"
    return datetime.date.fromordinal(ordinal).isoformat()


def _clock(microseconds: int) -> str:
    seconds, micro = divmod(microseconds, 1_000_000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    text = f"{hour:02d}:{minute:02d}:{second:02d}"
    return text + (f".{micro:06d}".rstrip("0") if micro else "")


def _time(raw: bytes) -> str:
    return _clock(struct.unpack("!q", _exact(raw, 8))[0])


def _zone(seconds_west: int) -> str:
    east = -seconds_west
    sign = "+" if east >= 0 else "-"
    hours, rest = divmod(abs(east), 3600)
    minutes, seconds = divmod(rest, 60)
    return (
        f"{sign}{hours:02d}"
        + (f":{minutes:02d}" if minutes or seconds else "")
        + (f":{seconds:02d}" if seconds else "")
    )


def _timetz(raw: bytes) -> str:
    micro, zone = struct.unpack("!qi", _exact(raw, 12))
    return _clock(micro) + _zone(zone)


def _timestamp_text(micro: int) -> str:
    if micro == _INT64_MAX:
        return "infinity"
    if micro == _INT64_MIN:
        return "-infinity"
    days, in_day = divmod(micro, 86_400_000_000)
    return f"{_date_text(days)} {_clock(in_day)}"


def _timestamp(raw: bytes) -> str:
    return _timestamp_text(struct.unpack("!q", _exact(raw, 8))[0])


def _timestamptz(raw: bytes) -> str:
    text = _timestamp(raw)
    return text if text.endswith("infinity") else text + "+00"


def _interval(raw: bytes) -> str:
    micro, days, months = struct.unpack("!qii", _exact(raw, 16))
    parts = []
    years, months = int(months / 12), months - int(months / 12) * 12
    for value, unit in ((years, "year"), (months, "mon"), (days, "day")):
        if value:
            parts.append(f"{value} {unit}{'' if value == 1 else 's'}")
    if micro or not parts:
        sign = "-" if micro < 0 else "+" if (months < 0 or days < 0 or years < 0) else ""
        parts.append(sign + _clock(abs(micro)))
    return " ".join(parts)


def _inet(raw: bytes) -> str:
    family, bits, is_cidr, size = raw[0], raw[1], raw[2], raw[3]
    address = raw[4 : 4 + size]
    if len(address) != size or family not in (2, 3):
        raise ValueError("inet")
    import ipaddress

    ip = ipaddress.ip_address(address)
    full = 32 if family == 2 else 128
    return str(ip) if bits == full and not is_cidr else f"{ip}/{bits}"


def _money(raw: bytes) -> str:
    cents = struct.unpack("!q", _exact(raw, 8))[0]
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}${whole:,}.{rest:02d}"


def _jsonb(raw: bytes) -> str:
    if not raw or raw[0] != 1:
        raise ValueError("jsonb version")
    return raw[1:].decode("utf-8", "replace")


def _bytea(raw: bytes) -> str:
    return hex_text(raw)


def _char(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


_BINARY = {
    BOOL: _bool,
    BYTEA: _bytea,
    CHAR: _char,
    INT2: _int,
    INT4: _int,
    INT8: _int,
    OID: _uint,
    XID: _uint,
    CID: _uint,
    REGPROC: _uint,
    FLOAT4: _float4,
    FLOAT8: _float8,
    NUMERIC: _numeric,
    UUID: _uuid,
    DATE: _date,
    TIME: _time,
    TIMETZ: _timetz,
    TIMESTAMP: _timestamp,
    TIMESTAMPTZ: _timestamptz,
    INTERVAL: _interval,
    INET: _inet,
    CIDR: _inet,
    MONEY: _money,
    JSONB: _jsonb,
}

_MAX_ARRAY_ELEMENTS = 10_000


def _array(raw: bytes) -> str:
    ndim, _has_null, element = struct.unpack_from("!iiI", raw)
    if ndim == 0:
        return "{}"
    if not 0 < ndim <= 6:
        raise ValueError("array dimensions")
    dims = [struct.unpack_from("!ii", raw, 12 + 8 * i)[0] for i in range(ndim)]
    total = math.prod(dims)
    if total > _MAX_ARRAY_ELEMENTS or any(d < 0 for d in dims):
        raise ValueError("array too large")
    pos = 12 + 8 * ndim
    values: list[str | None] = []
    for _ in range(total):
        length = struct.unpack_from("!i", raw, pos)[0]
        pos += 4
        if length < 0:
            values.append(None)
            continue
        if pos + length > len(raw):
            raise ValueError("array element cut")
        values.append(_binary(raw[pos : pos + length], element))
        pos += length
    if pos != len(raw):
        raise ValueError("array length")
    return _nest(values, dims)


def _quote_element(value: str | None) -> str:
    if value is None:
        return "NULL"
    if value == "" or value.upper() == "NULL" or any(c in value for c in '{},"\\ \t\n'):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


def _nest(values: list[str | None], dims: list[int]) -> str:
    if len(dims) == 1:
        return "{" + ",".join(_quote_element(v) for v in values) + "}"
    step = len(values) // dims[0] if dims[0] else 0
    return "{" + ",".join(_nest(values[i * step : (i + 1) * step], dims[1:]) for i in range(dims[0])) + "}"
