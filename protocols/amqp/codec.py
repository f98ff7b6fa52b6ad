"""Method arguments, field tables and content headers read from complete frame payloads; the user in a
PLAIN or AMQPLAIN login response (never the password). Nothing here raises on garbage: a payload
shorter than its arguments gives what was read and `complete=False`."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from protocols.amqp.frames import ContentHeaderPrefix
from protocols.amqp.methods import BASIC_PROPERTIES, CLASS_BASIC, METHODS, method_name

MAX_NESTING = 16  # tables inside tables: deeper is garbage, not a message


class _Short(Exception):
    """The payload ended before the field did."""


class _Reader:
    """Big-endian reads over one frame payload; raises _Short at the end, caught by the parsers."""

    __slots__ = ("data", "pos", "bits", "bit_count")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos
        self.bits = 0
        self.bit_count = 8  # bits left in `bits`: 8 means the next bit starts a new octet

    def take(self, size: int) -> bytes:
        end = self.pos + size
        if end > len(self.data):
            raise _Short
        value = self.data[self.pos : end]
        self.pos = end
        self.bit_count = 8
        return value

    def number(self, fmt: str, size: int) -> int:
        if self.pos + size > len(self.data):
            raise _Short
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        self.bit_count = 8
        return value

    def bit(self) -> bool:
        if self.bit_count == 8:
            if self.pos >= len(self.data):
                raise _Short
            self.bits = self.data[self.pos]
            self.pos += 1
            self.bit_count = 0
        value = bool(self.bits >> self.bit_count & 1)
        self.bit_count += 1
        return value

    def shortstr(self) -> str:
        size = self.number(">B", 1)
        return self.take(size).decode("utf-8", "replace")

    def longstr(self) -> bytes:
        size = self.number(">I", 4)
        return self.take(size)

    def field(self, kind: str) -> Any:
        if kind == "bit":
            return self.bit()
        if kind == "octet":
            return self.number(">B", 1)
        if kind == "short":
            return self.number(">H", 2)
        if kind == "long":
            return self.number(">I", 4)
        if kind in ("longlong", "timestamp"):
            return self.number(">Q", 8)
        if kind == "shortstr":
            return self.shortstr()
        if kind == "longstr":
            return self.longstr()
        if kind == "table":
            return self.table(0)
        raise ValueError(kind)

    def table(self, depth: int) -> dict[str, Any]:
        body = _Reader(self.longstr())
        table: dict[str, Any] = {}
        while body.pos < len(body.data):
            name = body.shortstr()
            table[name] = body.value(depth)
        return table

    def array(self, depth: int) -> list[Any]:
        body = _Reader(self.longstr())
        values = []
        while body.pos < len(body.data):
            values.append(body.value(depth))
        return values

    def value(self, depth: int) -> Any:
        """One field value: its type letter, then the value (RabbitMQ's letters, which the errata of
        0-9-1 adopted: `s` a signed short, `l` a signed long long, `x` a byte array)."""
        if depth > MAX_NESTING:
            raise _Short
        kind = chr(self.number(">B", 1))
        if kind == "t":
            return bool(self.number(">B", 1))
        if kind == "b":
            return self.number(">b", 1)
        if kind == "B":
            return self.number(">B", 1)
        if kind == "s":
            return self.number(">h", 2)
        if kind == "u":
            return self.number(">H", 2)
        if kind == "I":
            return self.number(">i", 4)
        if kind == "i":
            return self.number(">I", 4)
        if kind == "l":
            return self.number(">q", 8)
        if kind == "L":
            return self.number(">Q", 8)
        if kind == "f":
            return struct.unpack(">f", self.take(4))[0]
        if kind == "d":
            return struct.unpack(">d", self.take(8))[0]
        if kind == "D":
            scale = self.number(">B", 1)
            return self.number(">i", 4) / 10**scale
        if kind == "S":
            return self.longstr().decode("utf-8", "replace")
        if kind == "x":
            return self.longstr()
        if kind == "A":
            return self.array(depth + 1)
        if kind == "T":
            return self.number(">Q", 8)
        if kind == "F":
            return self.table(depth + 1)
        if kind == "V":
            return None
        raise _Short  # an unknown type letter: the rest cannot be read


@dataclass(frozen=True)
class Method:
    class_id: int
    method_id: int
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    complete: bool = True  # every argument was read

    @property
    def key(self) -> tuple[int, int]:
        return (self.class_id, self.method_id)


def parse_method(payload: bytes) -> Method | None:
    """A method frame's payload (class id, method id, arguments), or None when not even the ids are
    there. Unknown methods keep their ids and no arguments."""
    if len(payload) < 4:
        return None
    class_id, method_id = struct.unpack_from(">HH", payload)
    known = METHODS.get((class_id, method_id))
    if known is None:
        return Method(class_id, method_id, method_name(class_id, method_id), {}, complete=False)
    name, fields = known
    reader = _Reader(payload, 4)
    arguments: dict[str, Any] = {}
    try:
        for argument, kind in fields:
            arguments[argument] = reader.field(kind)
    except _Short:
        return Method(class_id, method_id, name, arguments, complete=False)
    return Method(class_id, method_id, name, arguments)


@dataclass(frozen=True)
class ContentHeader:
    class_id: int
    body_size: int
    properties: dict[str, Any] = field(default_factory=dict)
    complete: bool = True


def parse_content_header(payload: bytes) -> ContentHeader | None:
    """A content header frame's payload: class, body size and the properties its flags announce."""
    if len(payload) < ContentHeaderPrefix.sizeof():
        return None
    prefix = ContentHeaderPrefix.parse(payload)
    reader = _Reader(payload, ContentHeaderPrefix.sizeof())
    flags = [prefix.flags]
    properties: dict[str, Any] = {}
    try:
        while flags[-1] & 1:  # bit 0: another flags word follows (never in 0-9-1 basic, but allowed)
            flags.append(reader.number(">H", 2))
        if prefix.class_id == CLASS_BASIC:
            for index, (name, kind) in enumerate(BASIC_PROPERTIES):
                if prefix.flags >> (15 - index) & 1:
                    properties[name] = reader.field(kind)
    except _Short:
        return ContentHeader(prefix.class_id, prefix.body_size, properties, complete=False)
    return ContentHeader(prefix.class_id, prefix.body_size, properties)


def login_user(mechanism: str, response: bytes) -> str | None:
    """The user name in a connection.start-ok response; the password beside it is never returned.

    PLAIN (RFC 4616) is `authzid NUL authcid NUL password`; AMQPLAIN is a field table without its
    length prefix, with LOGIN and PASSWORD; EXTERNAL carries no user (the TLS certificate does)."""
    if mechanism == "PLAIN":
        parts = response.split(b"\x00")
        if len(parts) >= 3:
            return parts[1].decode("utf-8", "replace") or None
        return None
    if mechanism == "AMQPLAIN":
        reader = _Reader(struct.pack(">I", len(response)) + response)
        try:
            login = reader.table(0).get("LOGIN")
        except _Short:
            return None
        if isinstance(login, bytes):
            login = login.decode("utf-8", "replace")
        return login if isinstance(login, str) else None
    return None
