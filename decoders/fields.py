"""Typed summary records: a decoder declares its class's attributes and their types once, and each value
is written by its type, never by its attribute's name.

Before these, a float was a date if its attribute was called `Start` or `End` and an epoch number under
any other name. A declared `RecordType` says it instead, and checks every value when the record is made
(a wrong type is the decoder's bug, reported at once, not a strange attribute in the summary):

    KV_COMMAND = RecordType("Kv_Command", Command=TEXT, Key=TEXT, Start=TIME, Latency=DURATION,
                            ValueBytes=COUNT, Truncated=FLAG)
    KV_COMMAND(Command="GET", Key="color", Start=chunk.time, Latency=0.000063)   # -> a CimObject

Field types, and how each is written in the XML and TXT summaries:

| type       | value given              | written as                                                    |
|------------|--------------------------|---------------------------------------------------------------|
| `TIME`     | seconds (float or int)   | ISO 8601 (`2026-11-26T17:46:07.849269+00:00`; a time of day with the log's date when it has none) |
| `DURATION` | seconds (float or int)   | six decimals: `0.000109`                                      |
| `COUNT`    | int                      | digits                                                        |
| `DECIMAL`  | str of a decimal number, `decimal.Decimal` or int | exactly as given: `10.25`, `-0.50`, `1.5e3` (a price, an amount) |
| `BYTES`    | bytes                    | text, printable ASCII as is, any other byte as `\\xhh` (a key or value that may be binary) |
| `TEXT`     | str                      | the text (characters XML cannot hold shown as `\\xhh`)        |
| `SECRET`   | anything                 | `<redacted>`: says a credential was there, never what it was  |
| `FLAG`     | bool                     | `true`, or left out when false                                |

A value of None leaves the attribute out, whatever its type. A record holds each value as the summary
writes it (a FLAG as "true", BYTES and DECIMAL as text): converted when the record is made, so a test
compares with what the XML will show.

DECIMAL takes no float: a binary float cannot hold `0.1` exactly, and the summary would print six
decimals of it. Give the number's text as the wire carried it (checked: `DECIMAL.accepts(text)` says
whether a peer's text is one) or a `decimal.Decimal`.
"""

from __future__ import annotations

import decimal
import enum
import re
from collections.abc import Iterable

from decoders.redact import REDACTED

__all__ = [
    "BYTES",
    "COUNT",
    "DECIMAL",
    "DURATION",
    "FLAG",
    "SECRET",
    "TEXT",
    "TIME",
    "ChildType",
    "Duration",
    "FieldType",
    "RecordType",
    "Time",
    "printable_bytes",
]


class Time(float):
    """A time, in seconds since the epoch (or since midnight when the log has no date): the summary
    writes it as an ISO 8601 date and time, whatever the attribute is called."""

    __slots__ = ()


class Duration(float):
    """A duration in seconds: the summary writes it with six decimals."""

    __slots__ = ()


class FieldType(enum.Enum):
    """How a declared attribute's value is checked and written (see the table in this module's doc)."""

    TIME = "time"
    DURATION = "duration"
    COUNT = "count"
    DECIMAL = "decimal"
    BYTES = "bytes"
    TEXT = "text"
    SECRET = "secret"
    FLAG = "flag"

    def accepts(self, value: object) -> bool:
        """Whether a record takes `value` for a field of this type (None always): the check a decoder
        makes on a peer's text before it gives it, `Price=text if DECIMAL.accepts(text) else None`."""
        try:
            typed_value("", "", self, value)
        except TypeError:
            return False
        return True


TIME = FieldType.TIME
DURATION = FieldType.DURATION
COUNT = FieldType.COUNT
DECIMAL = FieldType.DECIMAL
BYTES = FieldType.BYTES
TEXT = FieldType.TEXT
SECRET = FieldType.SECRET
FLAG = FieldType.FLAG

# A decimal number as text: a sign, digits with a point anywhere, an exponent (`10.25`, `-.5`, `1.5e3`).
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

_PRINTABLE = {b: chr(b) for b in range(0x20, 0x7F)}
_PRINTABLE[0x5C] = "\\\\"


def printable_bytes(data: bytes) -> str:
    """Bytes as text a person can read and no terminal or XML parser can be tricked by: printable ASCII
    as is, a backslash doubled, anything else as `\\xhh`."""
    return "".join(_PRINTABLE.get(b) or f"\\x{b:02x}" for b in data)


def typed_value(record: str, name: str, kind: FieldType, value: object) -> object:
    """`value` checked against its declared type and made into what the summary writes."""
    if value is None:
        return None
    if kind is FieldType.TEXT:
        if isinstance(value, str):
            return value
    elif kind is FieldType.COUNT:
        if isinstance(value, int) and not isinstance(value, bool):
            return int(value)
    elif kind is FieldType.TIME:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return Time(value)
    elif kind is FieldType.DURATION:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return Duration(value)
    elif kind is FieldType.DECIMAL:
        if isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value):
            return value
        if isinstance(value, decimal.Decimal) and value.is_finite():
            return str(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, float):
            raise TypeError(
                f"{record}.{name} is declared decimal: float {value!r} is not exact; give the number's "
                "text as sent, or a decimal.Decimal"
            )
    elif kind is FieldType.FLAG:
        if isinstance(value, bool):
            return "true" if value else None
    elif kind is FieldType.BYTES:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return printable_bytes(bytes(value))
    elif kind is FieldType.SECRET:
        return REDACTED
    raise TypeError(
        f"{record}.{name} is declared {kind.value}: {type(value).__name__} {value!r:.40} is not one"
    )


def _check_fields(owner: str, fields: dict[str, FieldType]) -> dict[str, FieldType]:
    for name, kind in fields.items():
        if not isinstance(kind, FieldType):
            raise TypeError(
                f"{owner}.{name}: {kind!r} is not a field type (TIME, DURATION, COUNT, BYTES, ...)"
            )
    return dict(fields)


class RecordType:
    """A summary class declared with its attributes' types; calling it makes one object of it.

    `RecordType("Kv_Command", Command=TEXT, Start=TIME)(Command="GET", Start=t)` is the `CimObject`
    `<Kv_Command Command="GET" Start="2026-...">`. Attributes come out in the declared order; a name that
    was not declared, or a value of the wrong type, raises TypeError (a bug in the decoder, which dockit
    reports as such). Children, if any, are given first: `KV(children, Command=...)`."""

    def __init__(self, cim_class: str, /, **fields: FieldType) -> None:
        self.cim_class = cim_class
        self.fields = _check_fields(cim_class, fields)

    def __call__(self, children: Iterable[object] = (), /, **values: object):  # -> CimObject
        from decoders.records import CimObject  # records re-exports this module: imported late

        return CimObject(self.cim_class, _typed_attrs(self.cim_class, self.fields, values), tuple(children))  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"RecordType({self.cim_class!r}, {', '.join(f'{n}={k.name}' for n, k in self.fields.items())})"


class ChildType:
    """A child element declared the same way: `ChildType("Header", Name=TEXT, Value=TEXT)` makes
    `CimChild`s; an element's text, if any, is given first: `TEXT_CHILD("SELECT 1")`."""

    def __init__(self, tag: str, /, **fields: FieldType) -> None:
        self.tag = tag
        self.fields = _check_fields(tag, fields)

    def __call__(self, text: str | None = None, /, **values: object):  # -> CimChild
        from decoders.records import CimChild

        if text is not None and not isinstance(text, str):
            raise TypeError(f"{self.tag}'s text must be a str, not {type(text).__name__}")
        return CimChild(self.tag, _typed_attrs(self.tag, self.fields, values), text)  # type: ignore[arg-type]


def _typed_attrs(owner: str, fields: dict[str, FieldType], values: dict[str, object]) -> tuple:
    unknown = [name for name in values if name not in fields]
    if unknown:
        raise TypeError(f"{owner} has no field {unknown[0]!r} (declared: {', '.join(fields)})")
    attrs = []
    for name, kind in fields.items():
        value = typed_value(owner, name, kind, values.get(name))
        if value is not None:
            attrs.append((name, value))
    return tuple(attrs)
