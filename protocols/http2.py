"""HTTP/2 framing (RFC 9113): complete frames in, their parts out.

Decoded: the connection preface, the 9-byte frame header (length, type, flags, stream id), and the
payloads an observer needs: HEADERS and CONTINUATION (the header block fragment, without padding and
priority), PUSH_PROMISE (the promised stream and its fragment), DATA (how many bytes of data, padding
left out), SETTINGS (id and value pairs), RST_STREAM and GOAWAY (error codes, GOAWAY's last stream and
debug text), WINDOW_UPDATE and PING are recognised and counted only (flow control is not followed).
Header blocks are HPACK: the decoder hands them to the `hpack` package, never decoded here.

Functions never raise: a payload too short for what its flags say gives None.
"""

from __future__ import annotations

import struct

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # what a client sends first, before any frame
HEADER_SIZE = 9
MAX_FRAME_LENGTH = (1 << 24) - 1  # a 24-bit length; SETTINGS_MAX_FRAME_SIZE is at most this

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = (
    range(10)
)
FRAME_NAMES = {
    DATA: "DATA",
    HEADERS: "HEADERS",
    PRIORITY: "PRIORITY",
    RST_STREAM: "RST_STREAM",
    SETTINGS: "SETTINGS",
    PUSH_PROMISE: "PUSH_PROMISE",
    PING: "PING",
    GOAWAY: "GOAWAY",
    WINDOW_UPDATE: "WINDOW_UPDATE",
    CONTINUATION: "CONTINUATION",
}
# Frames that belong to the connection (stream 0) and frames that belong to one stream.
CONNECTION_FRAMES = frozenset({SETTINGS, PING, GOAWAY})
STREAM_FRAMES = frozenset({DATA, HEADERS, PRIORITY, RST_STREAM, PUSH_PROMISE, CONTINUATION})

END_STREAM = 0x1  # DATA, HEADERS
ACK = 0x1  # SETTINGS, PING
END_HEADERS = 0x4  # HEADERS, PUSH_PROMISE, CONTINUATION
PADDED = 0x8  # DATA, HEADERS, PUSH_PROMISE
PRIORITY_FLAG = 0x20  # HEADERS
# The flags each type defines: a frame with others set is still valid, but one whose every flag is
# defined is a stronger sign that a frame really starts where the stream was resynchronised.
DEFINED_FLAGS = {
    DATA: END_STREAM | PADDED,
    HEADERS: END_STREAM | END_HEADERS | PADDED | PRIORITY_FLAG,
    PRIORITY: 0,
    RST_STREAM: 0,
    SETTINGS: ACK,
    PUSH_PROMISE: END_HEADERS | PADDED,
    PING: ACK,
    GOAWAY: 0,
    WINDOW_UPDATE: 0,
    CONTINUATION: END_HEADERS,
}

SETTINGS_NAMES = {
    1: "HEADER_TABLE_SIZE",
    2: "ENABLE_PUSH",
    3: "MAX_CONCURRENT_STREAMS",
    4: "INITIAL_WINDOW_SIZE",
    5: "MAX_FRAME_SIZE",
    6: "MAX_HEADER_LIST_SIZE",
    8: "ENABLE_CONNECT_PROTOCOL",
}
SETTINGS_HEADER_TABLE_SIZE = 1

ERROR_NAMES = {
    0x0: "NO_ERROR",
    0x1: "PROTOCOL_ERROR",
    0x2: "INTERNAL_ERROR",
    0x3: "FLOW_CONTROL_ERROR",
    0x4: "SETTINGS_TIMEOUT",
    0x5: "STREAM_CLOSED",
    0x6: "FRAME_SIZE_ERROR",
    0x7: "REFUSED_STREAM",
    0x8: "CANCEL",
    0x9: "COMPRESSION_ERROR",
    0xA: "CONNECT_ERROR",
    0xB: "ENHANCE_YOUR_CALM",
    0xC: "INADEQUATE_SECURITY",
    0xD: "HTTP_1_1_REQUIRED",
}

_HEADER = struct.Struct(">BHBBI")  # length as a byte and a short, type, flags, stream id


def error_name(code: int) -> str:
    return ERROR_NAMES.get(code, f"0x{code:x}")


def frame_header(buf: bytes | bytearray, pos: int = 0) -> tuple[int, int, int, int] | None:
    """(length, type, flags, stream id) of the frame at `pos`, or None when fewer than 9 bytes are there."""
    if len(buf) - pos < HEADER_SIZE:
        return None
    high, low, kind, flags, stream = _HEADER.unpack_from(buf, pos)
    return (high << 16) | low, kind, flags, stream & 0x7FFFFFFF


def measure_frame(buf: bytes | bytearray, pos: int) -> int | None:
    """The whole size of the frame at `pos` (header and payload), None until its header is there."""
    if len(buf) - pos < HEADER_SIZE:
        return None
    return HEADER_SIZE + ((buf[pos] << 16) | (buf[pos + 1] << 8) | buf[pos + 2])


def plausible_frame(buf: bytes | bytearray, pos: int, max_length: int = 1 << 20) -> bool | None:
    """Whether a frame surely starts at `pos`, for a stream that lost its step: a known type with only
    its defined flags, the reserved bit clear, a stream id where the type needs one (and none where it
    must not), and a length the type allows. None: fewer than 9 bytes to tell from."""
    header = frame_header(buf, pos)
    if header is None:
        return None
    length, kind, flags, stream = header
    if kind not in FRAME_NAMES or flags & ~DEFINED_FLAGS[kind] or buf[pos + 5] & 0x80:
        return False
    if length > max_length:
        return False
    if kind in CONNECTION_FRAMES:
        if stream != 0:
            return False
        if kind == SETTINGS and length % 6:
            return False
        if kind == PING and length != 8:
            return False
        return not (kind == GOAWAY and length < 8)
    if kind in STREAM_FRAMES and stream == 0:
        return False
    if kind == RST_STREAM:
        return length == 4
    if kind == PRIORITY:
        return length == 5
    if kind == WINDOW_UPDATE:
        return length == 4
    return True


def _unpad(flags: int, payload: bytes) -> tuple[bytes, int] | None:
    """The payload without its padding, and where the content starts (after the pad length byte)."""
    if not flags & PADDED:
        return payload, 0
    if not payload:
        return None
    pad = payload[0]
    if pad > len(payload) - 1:
        return None
    return payload[: len(payload) - pad], 1


def header_fragment(kind: int, flags: int, payload: bytes) -> bytes | None:
    """The header block fragment a HEADERS or CONTINUATION frame carries (padding and priority gone)."""
    if kind == CONTINUATION:
        return payload
    unpadded = _unpad(flags, payload)
    if unpadded is None:
        return None
    data, start = unpadded
    if flags & PRIORITY_FLAG:
        start += 5
        if start > len(data):
            return None
    return data[start:]


def push_promise(flags: int, payload: bytes) -> tuple[int, bytes] | None:
    """(promised stream id, header block fragment) of a PUSH_PROMISE."""
    unpadded = _unpad(flags, payload)
    if unpadded is None:
        return None
    data, start = unpadded
    if len(data) < start + 4:
        return None
    promised = int.from_bytes(data[start : start + 4], "big") & 0x7FFFFFFF
    return promised, data[start + 4 :]


def data_length(flags: int, payload_length: int, first_byte: int | None) -> int:
    """How many bytes of data a DATA frame of `payload_length` carries (its padding left out)."""
    if not flags & PADDED or first_byte is None:
        return payload_length
    return max(0, payload_length - 1 - first_byte)


def data_content(flags: int, payload: bytes) -> bytes:
    """The data of a DATA frame as far as `payload` goes, padding left out."""
    if not flags & PADDED or not payload:
        return payload
    pad = payload[0]
    return payload[1 : max(1, len(payload) - pad)]


def settings(payload: bytes) -> list[tuple[int, int]]:
    """A SETTINGS frame's (id, value) pairs."""
    return [struct.unpack_from(">HI", payload, at) for at in range(0, len(payload) - 5, 6)]


def error_code(payload: bytes) -> int | None:
    """RST_STREAM's error code."""
    return int.from_bytes(payload[:4], "big") if len(payload) >= 4 else None


def goaway(payload: bytes) -> tuple[int, int, bytes] | None:
    """GOAWAY's (last stream id, error code, debug data)."""
    if len(payload) < 8:
        return None
    last, code = struct.unpack_from(">II", payload)
    return last & 0x7FFFFFFF, code, payload[8:]


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    """One frame's bytes (tests build conversations with it; never used to decode)."""
    return _HEADER.pack(len(payload) >> 16, len(payload) & 0xFFFF, kind, flags, stream) + payload
