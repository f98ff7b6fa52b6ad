"""MQTT 3.1, 3.1.1 and 5.0 (Mosquitto's protocol): complete control packets in, messages out.

Decoded: the fixed header (type, flags, remaining length as a variable byte integer of at most four
bytes), and each of the fifteen packet types: CONNECT (protocol name and level, flags, keep alive, client
id, will topic and QoS, user name; the password and the will payload are skipped, never kept),
CONNACK, PUBLISH (topic, QoS, retain, dup, packet id, payload size, not the payload), PUBACK, PUBREC,
PUBREL, PUBCOMP, SUBSCRIBE with each filter's options, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ,
PINGRESP, DISCONNECT and AUTH; MQTT 5 properties (all 27 of the specification, by id) and reason
codes. A packet's layout depends on the protocol level the CONNECT named (5 adds properties and
reason codes), so each parser takes it.

The fixed header's variable-length integer and the fields that exist only under some flags or
levels do not fit `construct`'s declarative structs well: a small bounds-checked reader walks them.
Parsers never raise: a packet cut short gives the fields read so far and `complete=False`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = 8, 9, 10, 11, 12, 13, 14, 15
PACKET_NAMES = {
    CONNECT: "CONNECT",
    CONNACK: "CONNACK",
    PUBLISH: "PUBLISH",
    PUBACK: "PUBACK",
    PUBREC: "PUBREC",
    PUBREL: "PUBREL",
    PUBCOMP: "PUBCOMP",
    SUBSCRIBE: "SUBSCRIBE",
    SUBACK: "SUBACK",
    UNSUBSCRIBE: "UNSUBSCRIBE",
    UNSUBACK: "UNSUBACK",
    PINGREQ: "PINGREQ",
    PINGRESP: "PINGRESP",
    DISCONNECT: "DISCONNECT",
    AUTH: "AUTH",
}
# The flags the specification fixes (PUBLISH's are its dup, QoS and retain; AUTH exists from 5 on).
FIXED_FLAGS = {
    t: (0b0010 if t in (PUBREL, SUBSCRIBE, UNSUBSCRIBE) else 0) for t in PACKET_NAMES if t != PUBLISH
}
CLIENT_PACKETS = frozenset({CONNECT, SUBSCRIBE, UNSUBSCRIBE, PINGREQ})
SERVER_PACKETS = frozenset({CONNACK, SUBACK, UNSUBACK, PINGRESP})

LEVELS = {3: "3.1", 4: "3.1.1", 5: "5.0"}
PROTOCOL_NAMES = {b"MQTT": (4, 5), b"MQIsdp": (3,)}
MAX_REMAINING = 268_435_455  # four bytes of variable byte integer

# MQTT 5 properties: id -> (name, type). Types: byte, u16, u32, varint, str, bin, pair.
PROPERTIES: dict[int, tuple[str, str]] = {
    0x01: ("payload-format-indicator", "byte"),
    0x02: ("message-expiry-interval", "u32"),
    0x03: ("content-type", "str"),
    0x08: ("response-topic", "str"),
    0x09: ("correlation-data", "bin"),
    0x0B: ("subscription-identifier", "varint"),
    0x11: ("session-expiry-interval", "u32"),
    0x12: ("assigned-client-identifier", "str"),
    0x13: ("server-keep-alive", "u16"),
    0x15: ("authentication-method", "str"),
    0x16: ("authentication-data", "bin"),
    0x17: ("request-problem-information", "byte"),
    0x18: ("will-delay-interval", "u32"),
    0x19: ("request-response-information", "byte"),
    0x1A: ("response-information", "str"),
    0x1C: ("server-reference", "str"),
    0x1F: ("reason-string", "str"),
    0x21: ("receive-maximum", "u16"),
    0x22: ("topic-alias-maximum", "u16"),
    0x23: ("topic-alias", "u16"),
    0x24: ("maximum-qos", "byte"),
    0x25: ("retain-available", "byte"),
    0x26: ("user-property", "pair"),
    0x27: ("maximum-packet-size", "u32"),
    0x28: ("wildcard-subscription-available", "byte"),
    0x29: ("subscription-identifier-available", "byte"),
    0x2A: ("shared-subscription-available", "byte"),
}

# MQTT 5 reason codes (2.4); a code below 0x80 is a success.
REASON_CODES = {
    0x00: "success",
    0x01: "granted QoS 1",
    0x02: "granted QoS 2",
    0x04: "disconnect with will message",
    0x10: "no matching subscribers",
    0x11: "no subscription existed",
    0x18: "continue authentication",
    0x19: "re-authenticate",
    0x80: "unspecified error",
    0x81: "malformed packet",
    0x82: "protocol error",
    0x83: "implementation specific error",
    0x84: "unsupported protocol version",
    0x85: "client identifier not valid",
    0x86: "bad user name or password",
    0x87: "not authorized",
    0x88: "server unavailable",
    0x89: "server busy",
    0x8A: "banned",
    0x8B: "server shutting down",
    0x8C: "bad authentication method",
    0x8D: "keep alive timeout",
    0x8E: "session taken over",
    0x8F: "topic filter invalid",
    0x90: "topic name invalid",
    0x91: "packet identifier in use",
    0x92: "packet identifier not found",
    0x93: "receive maximum exceeded",
    0x94: "topic alias invalid",
    0x95: "packet too large",
    0x96: "message rate too high",
    0x97: "quota exceeded",
    0x98: "administrative action",
    0x99: "payload format invalid",
    0x9A: "retain not supported",
    0x9B: "QoS not supported",
    0x9C: "use another server",
    0x9D: "server moved",
    0x9E: "shared subscriptions not supported",
    0x9F: "connection rate exceeded",
    0xA0: "maximum connect time",
    0xA1: "subscription identifiers not supported",
    0xA2: "wildcard subscriptions not supported",
}
# MQTT 3.1.1 CONNACK return codes (3.2.2.3); SUBACK's 0x80 is "failure".
CONNACK_CODES_311 = {
    0: "accepted",
    1: "unacceptable protocol version",
    2: "identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
}


def reason_text(code: int | None, level: int, packet: int = 0) -> str | None:
    if code is None:
        return None
    if level < 5:
        if packet == CONNACK:
            return CONNACK_CODES_311.get(code, f"code {code}")
        return "failure" if code == 0x80 else ("success" if code < 0x80 else f"code {code}")
    if code == 0 and packet == DISCONNECT:
        return "normal disconnection"
    if code == 0 and packet == SUBACK:
        return "granted QoS 0"
    return REASON_CODES.get(code, f"code 0x{code:02x}")


def is_failure(code: int | None, level: int, packet: int = 0) -> bool:
    if code is None:
        return False
    if level < 5 and packet == CONNACK:
        return code != 0
    return code >= 0x80


class _Short(Exception):
    """The packet ended before the field did."""


class _Reader:
    __slots__ = ("data", "pos", "end")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else min(end, len(data))

    @property
    def left(self) -> int:
        return self.end - self.pos

    def take(self, size: int) -> bytes:
        if self.pos + size > self.end:
            raise _Short
        value = self.data[self.pos : self.pos + size]
        self.pos += size
        return value

    def byte(self) -> int:
        if self.pos >= self.end:
            raise _Short
        self.pos += 1
        return self.data[self.pos - 1]

    def u16(self) -> int:
        return struct.unpack(">H", self.take(2))[0]

    def u32(self) -> int:
        return struct.unpack(">I", self.take(4))[0]

    def varint(self) -> int:
        value, shift = 0, 0
        for _ in range(4):
            octet = self.byte()
            value |= (octet & 0x7F) << shift
            if not octet & 0x80:
                return value
            shift += 7
        raise _Short  # a fifth byte: malformed

    def string(self) -> str:
        return self.take(self.u16()).decode("utf-8", "replace")

    def binary(self) -> bytes:
        return self.take(self.u16())

    def skip_binary(self) -> int:
        """Skip a length-prefixed field without keeping it (a password, a will payload): its length."""
        size = self.u16()
        self.take(size)
        return size

    def properties(self) -> list[tuple[str, Any]]:
        length = self.varint()
        body = _Reader(self.data, self.pos, self.pos + length)
        self.take(length)
        found: list[tuple[str, Any]] = []
        while body.left > 0:
            identifier = body.varint()
            name, kind = PROPERTIES.get(identifier, (f"0x{identifier:02x}", ""))
            if kind == "byte":
                found.append((name, body.byte()))
            elif kind == "u16":
                found.append((name, body.u16()))
            elif kind == "u32":
                found.append((name, body.u32()))
            elif kind == "varint":
                found.append((name, body.varint()))
            elif kind == "str":
                found.append((name, body.string()))
            elif kind == "bin":
                found.append((name, body.binary()))
            elif kind == "pair":
                found.append((name, (body.string(), body.string())))
            else:
                raise _Short  # an unknown property: its length is unknown, the rest cannot be read
        return found


def read_remaining_length(data: bytes | bytearray, pos: int) -> tuple[int, int] | None | int:
    """(remaining length, bytes it took) of the fixed header whose type byte is at `pos - 1`; None when
    more bytes are needed; -1 when it is malformed (a fifth byte)."""
    value, shift = 0, 0
    for index in range(4):
        if pos + index >= len(data):
            return None
        octet = data[pos + index]
        value |= (octet & 0x7F) << shift
        if not octet & 0x80:
            return value, index + 1
        shift += 7
    return -1


def measure_packet(data: bytes | bytearray, pos: int = 0) -> int | None:
    """How many bytes the packet at `pos` takes (fixed header included); None when more bytes are
    needed to tell; -1 when no packet starts there (a reserved type, flags the type forbids)."""
    if pos >= len(data):
        return None
    first = data[pos]
    kind, flags = first >> 4, first & 0x0F
    if (
        kind == 0
        or (kind != PUBLISH and FIXED_FLAGS.get(kind) != flags)
        or (kind == PUBLISH and flags & 0b0110 == 0b0110)
    ):
        return -1
    length = read_remaining_length(data, pos + 1)
    if length is None:
        return None
    if length == -1:
        return -1
    remaining, used = length  # type: ignore[misc]
    return 1 + used + remaining


def is_connect(data: bytes | bytearray) -> bool:
    """A CONNECT packet's beginning: type 1, then a protocol name MQTT (levels 4, 5) or MQIsdp (3)."""
    if len(data) < 2 or data[0] != 0x10:
        return False
    length = read_remaining_length(data, 1)
    if not isinstance(length, tuple):
        return False
    pos = 1 + length[1]
    name_size = int.from_bytes(data[pos : pos + 2], "big")
    name = bytes(data[pos + 2 : pos + 2 + name_size])
    levels = PROTOCOL_NAMES.get(name)
    return levels is not None and len(data) > pos + 2 + name_size and data[pos + 2 + name_size] in levels


# -- packets ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Connect:
    protocol: str = ""
    level: int = 4
    clean_start: bool = False
    keep_alive: int | None = None
    client_id: str | None = None
    will_topic: str | None = None
    will_qos: int | None = None
    will_retain: bool = False
    username: str | None = None
    has_password: bool = False
    properties: list[tuple[str, Any]] = field(default_factory=list)
    will_properties: list[tuple[str, Any]] = field(default_factory=list)
    complete: bool = True


@dataclass(frozen=True)
class ConnAck:
    session_present: bool = False
    code: int | None = None
    properties: list[tuple[str, Any]] = field(default_factory=list)
    complete: bool = True


@dataclass(frozen=True)
class Publish:
    topic: str | None = None
    qos: int = 0
    retain: bool = False
    dup: bool = False
    packet_id: int | None = None
    properties: list[tuple[str, Any]] = field(default_factory=list)
    payload_size: int | None = None
    complete: bool = True


@dataclass(frozen=True)
class PacketAck:
    """PUBACK, PUBREC, PUBREL or PUBCOMP: a packet id and, from MQTT 5, a reason code."""

    kind: int
    packet_id: int | None = None
    code: int | None = None
    properties: list[tuple[str, Any]] = field(default_factory=list)
    complete: bool = True


@dataclass(frozen=True)
class Subscription:
    topic: str
    qos: int
    no_local: bool = False
    retain_as_published: bool = False
    retain_handling: int = 0


@dataclass(frozen=True)
class Subscribe:
    packet_id: int | None = None
    subscriptions: list[Subscription] = field(default_factory=list)
    properties: list[tuple[str, Any]] = field(default_factory=list)
    complete: bool = True


@dataclass(frozen=True)
class Unsubscribe:
    packet_id: int | None = None
    topics: list[str] = field(default_factory=list)
    properties: list[tuple[str, Any]] = field(default_factory=list)
    complete: bool = True


@dataclass(frozen=True)
class SubAck:
    """SUBACK or UNSUBACK: the granted QoS or reason code of each filter, in the request's order
    (UNSUBACK has none before MQTT 5)."""

    kind: int
    packet_id: int | None = None
    codes: list[int] = field(default_factory=list)
    properties: list[tuple[str, Any]] = field(default_factory=list)
    complete: bool = True


@dataclass(frozen=True)
class Disconnect:
    """DISCONNECT or AUTH: a reason code and properties from MQTT 5 on, nothing before."""

    kind: int
    code: int | None = None
    properties: list[tuple[str, Any]] = field(default_factory=list)
    complete: bool = True


@dataclass(frozen=True)
class Empty:
    """PINGREQ, PINGRESP (or a packet of an unknown type)."""

    kind: int
    complete: bool = True


Packet = Connect | ConnAck | Publish | PacketAck | Subscribe | Unsubscribe | SubAck | Disconnect | Empty


def packet_kind(packet: Packet) -> int:
    if isinstance(packet, (PacketAck, SubAck, Disconnect, Empty)):
        return packet.kind
    return {
        Connect: CONNECT,
        ConnAck: CONNACK,
        Publish: PUBLISH,
        Subscribe: SUBSCRIBE,
        Unsubscribe: UNSUBSCRIBE,
    }[type(packet)]


def split_packet(data: bytes) -> tuple[int, int, bytes] | None:
    """(type, flags, variable header and payload) of a packet's bytes, or None if its header is bad."""
    size = measure_packet(data)
    if size is None or size < 0:
        return None
    length = read_remaining_length(data, 1)
    assert isinstance(length, tuple)
    return data[0] >> 4, data[0] & 0x0F, data[1 + length[1] :]


def parse_packet(kind: int, flags: int, body: bytes, level: int, size: int | None = None) -> Packet:
    """One packet from its type, flags and the bytes after its fixed header (all of them, or the
    beginning when the tracer cut it: `size` is then the whole remaining length)."""
    total = len(body) if size is None else size
    reader = _Reader(body)
    v5 = level >= 5
    if kind == CONNECT:
        return _connect(reader)
    if kind == CONNACK:
        fields: dict[str, Any] = {}
        try:
            fields["session_present"] = bool(reader.byte() & 1)
            fields["code"] = reader.byte()
            if v5 and reader.left:
                fields["properties"] = reader.properties()
        except _Short:
            return ConnAck(**fields, complete=False)
        return ConnAck(**fields)
    if kind == PUBLISH:
        return _publish(reader, flags, v5, total)
    if kind in (PUBACK, PUBREC, PUBREL, PUBCOMP):
        fields = {}
        try:
            fields["packet_id"] = reader.u16()
            if v5 and total > 2:
                fields["code"] = reader.byte()
                if total > 3:
                    fields["properties"] = reader.properties()
            elif v5:
                fields["code"] = 0  # a remaining length of 2: success
        except _Short:
            return PacketAck(kind, **fields, complete=False)
        return PacketAck(kind, **fields)
    if kind == SUBSCRIBE:
        return _subscribe(reader, v5)
    if kind == UNSUBSCRIBE:
        fields = {"topics": []}
        try:
            fields["packet_id"] = reader.u16()
            if v5:
                fields["properties"] = reader.properties()
            while reader.left:
                fields["topics"].append(reader.string())
        except _Short:
            return Unsubscribe(**fields, complete=False)
        return Unsubscribe(**fields)
    if kind in (SUBACK, UNSUBACK):
        fields = {"codes": []}
        try:
            fields["packet_id"] = reader.u16()
            if v5:
                fields["properties"] = reader.properties()
            if kind == SUBACK or v5:
                while reader.left:
                    fields["codes"].append(reader.byte())
        except _Short:
            return SubAck(kind, **fields, complete=False)
        return SubAck(kind, **fields, complete=len(body) >= total)
    if kind in (DISCONNECT, AUTH):
        fields = {}
        try:
            if v5 and total > 0:
                fields["code"] = reader.byte()
                if total > 1:
                    fields["properties"] = reader.properties()
            elif v5:
                fields["code"] = 0
        except _Short:
            return Disconnect(kind, **fields, complete=False)
        return Disconnect(kind, **fields)
    return Empty(kind)


def _connect(reader: _Reader) -> Connect:
    fields: dict[str, Any] = {}
    try:
        fields["protocol"] = reader.string()
        level = fields["level"] = reader.byte()
        flags = reader.byte()
        fields["keep_alive"] = reader.u16()
        fields["clean_start"] = bool(flags & 0x02)
        fields["has_password"] = bool(flags & 0x40)
        if level >= 5:
            fields["properties"] = reader.properties()
        fields["client_id"] = reader.string()
        if flags & 0x04:
            fields["will_qos"] = flags >> 3 & 0x03
            fields["will_retain"] = bool(flags & 0x20)
            if level >= 5:
                fields["will_properties"] = reader.properties()
            fields["will_topic"] = reader.string()
            reader.skip_binary()  # the will payload: application data, not kept
        if flags & 0x80:
            fields["username"] = reader.string()
        # The password (flags & 0x40) follows: never read.
    except _Short:
        return Connect(**fields, complete=False)
    return Connect(**fields)


def _publish(reader: _Reader, flags: int, v5: bool, total: int) -> Publish:
    qos = flags >> 1 & 0x03
    fields: dict[str, Any] = {"qos": qos, "retain": bool(flags & 1), "dup": bool(flags & 0x08)}
    try:
        fields["topic"] = reader.string()
        if qos:
            fields["packet_id"] = reader.u16()
        if v5:
            fields["properties"] = reader.properties()
    except _Short:
        return Publish(**fields, complete=False)
    fields["payload_size"] = total - reader.pos
    return Publish(**fields)


def _subscribe(reader: _Reader, v5: bool) -> Subscribe:
    fields: dict[str, Any] = {"subscriptions": []}
    try:
        fields["packet_id"] = reader.u16()
        if v5:
            fields["properties"] = reader.properties()
        while reader.left:
            topic = reader.string()
            options = reader.byte()
            fields["subscriptions"].append(
                Subscription(
                    topic,
                    options & 0x03,
                    no_local=bool(options & 0x04),
                    retain_as_published=bool(options & 0x08),
                    retain_handling=options >> 4 & 0x03,
                )
            )
    except _Short:
        return Subscribe(**fields, complete=False)
    return Subscribe(**fields)


# -- builders: the tests make packets with them -----------------------------------------------------------
def encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        octet, value = value & 0x7F, value >> 7
        out.append(octet | (0x80 if value else 0))
        if not value:
            return bytes(out)


def encode_string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">H", len(raw)) + raw


def encode_properties(properties: list[tuple[str, Any]]) -> bytes:
    ids = {name: (identifier, kind) for identifier, (name, kind) in PROPERTIES.items()}
    body = b""
    for name, value in properties:
        identifier, kind = ids[name]
        body += encode_varint(identifier)
        if kind == "byte":
            body += bytes([value])
        elif kind == "u16":
            body += struct.pack(">H", value)
        elif kind == "u32":
            body += struct.pack(">I", value)
        elif kind == "varint":
            body += encode_varint(value)
        elif kind == "str":
            body += encode_string(value)
        elif kind == "bin":
            body += struct.pack(">H", len(value)) + value
        elif kind == "pair":
            body += encode_string(value[0]) + encode_string(value[1])
    return encode_varint(len(body)) + body


def build_packet(kind: int, body: bytes, flags: int | None = None) -> bytes:
    if flags is None:
        flags = FIXED_FLAGS.get(kind, 0)
    return bytes([kind << 4 | flags]) + encode_varint(len(body)) + body
