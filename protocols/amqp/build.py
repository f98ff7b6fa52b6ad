"""Frames built from method names and arguments: the tests make real AMQP conversations with them."""

from __future__ import annotations

import struct
from typing import Any

from protocols.amqp.frames import (
    FRAME_BODY,
    FRAME_END,
    FRAME_HEADER,
    FRAME_HEARTBEAT,
    FRAME_METHOD,
    FRAME_OVERHEAD,
    ContentHeaderPrefix,
    FrameHeader,
)
from protocols.amqp.methods import BASIC_PROPERTIES, CLASS_BASIC, METHOD_IDS, METHODS


def encode_table(table: dict[str, Any]) -> bytes:
    body = b""
    for name, value in table.items():
        raw = name.encode()
        body += bytes([len(raw)]) + raw + _encode_value(value)
    return struct.pack(">I", len(body)) + body


def _encode_value(value: Any) -> bytes:
    if isinstance(value, bool):
        return b"t" + bytes([value])
    if isinstance(value, int):
        return b"l" + struct.pack(">q", value)
    if isinstance(value, str):
        raw = value.encode()
        return b"S" + struct.pack(">I", len(raw)) + raw
    if isinstance(value, bytes):
        return b"x" + struct.pack(">I", len(value)) + value
    if isinstance(value, dict):
        return b"F" + encode_table(value)
    if isinstance(value, list):
        body = b"".join(_encode_value(v) for v in value)
        return b"A" + struct.pack(">I", len(body)) + body
    if value is None:
        return b"V"
    raise TypeError(type(value))


def _encode_fields(fields: tuple[tuple[str, str], ...], values: dict[str, Any]) -> bytes:
    out = b""
    bits: list[bool] = []

    def flush() -> bytes:
        octet = sum(1 << i for i, bit in enumerate(bits) if bit)
        bits.clear()
        return bytes([octet])

    for name, kind in fields:
        value = values.get(name)
        if kind == "bit":
            bits.append(bool(value))
            if len(bits) == 8:
                out += flush()
            continue
        if bits:
            out += flush()
        if kind == "octet":
            out += struct.pack(">B", value or 0)
        elif kind == "short":
            out += struct.pack(">H", value or 0)
        elif kind == "long":
            out += struct.pack(">I", value or 0)
        elif kind in ("longlong", "timestamp"):
            out += struct.pack(">Q", value or 0)
        elif kind == "shortstr":
            raw = (value or "").encode()
            out += bytes([len(raw)]) + raw
        elif kind == "longstr":
            raw = value if isinstance(value, bytes) else (value or "").encode()
            out += struct.pack(">I", len(raw)) + raw
        elif kind == "table":
            out += encode_table(value or {})
    if bits:
        out += flush()
    return out


def build_frame(kind: int, channel: int, payload: bytes) -> bytes:
    return (
        FrameHeader.build({"type": kind, "channel": channel, "size": len(payload)})
        + payload
        + bytes([FRAME_END])
    )


def build_method(channel: int, name: str, **arguments: Any) -> bytes:
    """A method frame; arguments by their specification names with `-` as `_`."""
    class_id, method_id = METHOD_IDS[name]
    values = {key.replace("_", "-"): value for key, value in arguments.items()}
    payload = struct.pack(">HH", class_id, method_id) + _encode_fields(
        METHODS[(class_id, method_id)][1], values
    )
    return build_frame(FRAME_METHOD, channel, payload)


def build_content(channel: int, body: bytes, frame_max: int = 131072, **properties: Any) -> bytes:
    """A content header (basic class) and the body frames that carry `body`."""
    values = {key.replace("_", "-"): value for key, value in properties.items()}
    flags = 0
    present = []
    for index, (name, kind) in enumerate(BASIC_PROPERTIES):
        if name in values:
            flags |= 1 << (15 - index)
            present.append((name, kind))
    header = ContentHeaderPrefix.build(
        {"class_id": CLASS_BASIC, "weight": 0, "body_size": len(body), "flags": flags}
    )
    frames = build_frame(FRAME_HEADER, channel, header + _encode_fields(tuple(present), values))
    step = frame_max - FRAME_OVERHEAD
    for start in range(0, len(body), step):
        frames += build_frame(FRAME_BODY, channel, body[start : start + step])
    return frames


HEARTBEAT = build_frame(FRAME_HEARTBEAT, 0, b"")
