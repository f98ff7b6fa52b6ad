"""TNS framing: the 8-byte packet header, the packet types, and the packet bodies up to their TTC payload.

Decoded here: the 8-byte header, with a 2-byte length (protocol versions before 315) or a 4-byte one
(315 and later, once the ACCEPT said so), and the bodies of CONNECT, ACCEPT, REFUSE, REDIRECT, DATA
(its flags; the payload is TTC, read by the other modules of this package) and MARKER.

Not here: the connect descriptor a CONNECT carries (`descriptor`), reassembly of packets across reads
and lost bytes (the decoder's framer: this module parses complete packets only).
"""

from __future__ import annotations

import enum
import re
import struct
from dataclasses import dataclass

from construct import Bytes, GreedyBytes, Int8ub, Int16ub, Int32ub, Struct


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
