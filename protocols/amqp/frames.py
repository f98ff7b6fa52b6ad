"""AMQP 0-9-1 framing: the protocol header, the frame header (type, channel, size), the end octet, and
the fixed start of a content header; how long the frame at a position is, and whether one surely starts
there (what a stream out of step looks for)."""

from __future__ import annotations

import struct

from construct import Const, Int8ub, Int16ub, Int32ub, Int64ub, Struct

from protocols.amqp.methods import METHODS

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
PROTOCOL_HEADER_SIZE = 8
ProtocolHeader = Struct(
    "magic" / Const(b"AMQP"), "id" / Int8ub, "major" / Int8ub, "minor" / Int8ub, "revision" / Int8ub
)

FRAME_METHOD = 1
FRAME_HEADER = 2
FRAME_BODY = 3
FRAME_HEARTBEAT = 8
FRAME_TYPES = {
    FRAME_METHOD: "method",
    FRAME_HEADER: "header",
    FRAME_BODY: "body",
    FRAME_HEARTBEAT: "heartbeat",
}
FRAME_END = 0xCE
FRAME_HEADER_SIZE = 7  # type, channel, size
FRAME_OVERHEAD = FRAME_HEADER_SIZE + 1  # and the end octet
FrameHeader = Struct("type" / Int8ub, "channel" / Int16ub, "size" / Int32ub)
ContentHeaderPrefix = Struct(
    "class_id" / Int16ub, "weight" / Int16ub, "body_size" / Int64ub, "flags" / Int16ub
)


def measure_frame(data: bytes | bytearray, pos: int = 0) -> int | None:
    """How many bytes the frame (or protocol header) at `pos` takes, None when too few bytes are there
    to tell, -1 when no frame starts there."""
    left = len(data) - pos
    if left < 1:
        return None
    if data[pos] == 0x41:  # "A": the protocol header, client first (or a server refusing the version)
        if left < 4:
            return None if PROTOCOL_HEADER.startswith(bytes(data[pos : pos + left])) else -1
        return PROTOCOL_HEADER_SIZE if data[pos : pos + 4] == b"AMQP" else -1
    if data[pos] not in FRAME_TYPES:
        return -1
    if left < FRAME_HEADER_SIZE:
        return None
    size = int.from_bytes(data[pos + 3 : pos + 7], "big")
    return FRAME_OVERHEAD + size


def frame_fields(data: bytes) -> tuple[int, int, bytes, bool] | None:
    """(type, channel, payload, end octet right) of a whole frame, or None for the protocol header."""
    if data[:4] == b"AMQP":
        return None
    header = FrameHeader.parse(data)
    payload = data[FRAME_HEADER_SIZE : FRAME_HEADER_SIZE + header.size]
    end = data[FRAME_HEADER_SIZE + header.size : FRAME_HEADER_SIZE + header.size + 1]
    return header.type, header.channel, payload, end == bytes([FRAME_END])


def looks_like_frame(data: bytes | bytearray, pos: int = 0, max_size: int = 1 << 20) -> bool | None:
    """Whether a whole, well-formed frame starts at `pos`: known type, a method that exists, the end
    octet where the size says. None: not enough bytes to tell."""
    size = measure_frame(data, pos)
    if size is None:
        return None
    if size < 0 or size > max_size:
        return False
    if data[pos : pos + 4] == b"AMQP":
        if len(data) - pos < PROTOCOL_HEADER_SIZE:
            return None
        return bytes(data[pos : pos + PROTOCOL_HEADER_SIZE]) == PROTOCOL_HEADER
    if len(data) - pos < size:
        return None
    if data[pos + size - 1] != FRAME_END:
        return False
    kind = data[pos]
    if kind == FRAME_METHOD:
        return size >= FRAME_OVERHEAD + 4 and struct.unpack_from(">HH", data, pos + 7) in METHODS
    if kind == FRAME_HEADER:
        return size >= FRAME_OVERHEAD + 14 and data[pos + 7 : pos + 9] == b"\x00\x3c"
    if kind == FRAME_HEARTBEAT:
        return size == FRAME_OVERHEAD and data[pos + 1 : pos + 3] == b"\x00\x00"
    return True
