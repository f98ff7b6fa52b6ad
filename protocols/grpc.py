"""gRPC over HTTP/2 (the PROTOCOL-HTTP2 document of grpc/grpc): what rides on an HTTP/2 stream.

Decoded: the request path (`/package.Service/Method`), the length-prefixed messages of a stream's DATA
(a compressed flag and a 4-byte big-endian length, then the message), `grpc-timeout` (a number and a
unit: H, M, S, m, u, n), `grpc-status` with its code names, and `grpc-message` (percent-encoded).
Message bodies are protobuf, read by `protocols.protobuf`.
"""

from __future__ import annotations

from urllib.parse import unquote

MESSAGE_PREFIX = 5  # compressed flag, 4-byte length

STATUS_NAMES = {
    0: "OK",
    1: "CANCELLED",
    2: "UNKNOWN",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    6: "ALREADY_EXISTS",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    10: "ABORTED",
    11: "OUT_OF_RANGE",
    12: "UNIMPLEMENTED",
    13: "INTERNAL",
    14: "UNAVAILABLE",
    15: "DATA_LOSS",
    16: "UNAUTHENTICATED",
}

_TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}

STREAMING_KINDS = ("unary", "client", "server", "bidi")


def is_grpc(content_type: str | None) -> bool:
    """`application/grpc`, `application/grpc+proto`, `application/grpc+json`..."""
    if not content_type:
        return False
    lowered = content_type.strip().lower()
    return lowered == "application/grpc" or lowered.startswith(("application/grpc+", "application/grpc;"))


def split_path(path: str | None) -> tuple[str | None, str | None]:
    """`/helloworld.Greeter/SayHello` -> ("helloworld.Greeter", "SayHello")."""
    if not path or not path.startswith("/"):
        return None, None
    service, _, method = path[1:].partition("/")
    if not service or not method or "/" in method:
        return (service or None), (method or None)
    return service, method


def timeout_seconds(value: str | None) -> float | None:
    """`grpc-timeout: 100m` -> 0.1. At most 8 digits and a unit; anything else is None."""
    if not value:
        return None
    value = value.strip()
    digits, unit = value[:-1], value[-1:]
    if not digits.isdigit() or len(digits) > 8 or unit not in _TIMEOUT_UNITS:
        return None
    return int(digits) * _TIMEOUT_UNITS[unit]


def status_code(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit():
        return None
    return int(value.strip())


def status_name(code: int | None) -> str | None:
    if code is None:
        return None
    return STATUS_NAMES.get(code, str(code))


def status_message(value: str | None) -> str | None:
    """`grpc-message` is percent-encoded UTF-8."""
    if value is None:
        return None
    return unquote(value, errors="replace")


def streaming_kind(client_streaming: bool, server_streaming: bool) -> str:
    if client_streaming and server_streaming:
        return "bidi"
    if client_streaming:
        return "client"
    if server_streaming:
        return "server"
    return "unary"


def message_prefix(data: bytes | bytearray, pos: int = 0) -> tuple[bool, int] | None:
    """(compressed, length) of the message that starts at `pos`, None when fewer than 5 bytes are there."""
    if len(data) - pos < MESSAGE_PREFIX:
        return None
    return bool(data[pos] & 1), int.from_bytes(data[pos + 1 : pos + 5], "big")


def message(body: bytes, compressed: bool = False) -> bytes:
    """One length-prefixed message (tests build streams with it)."""
    return bytes([1 if compressed else 0]) + len(body).to_bytes(4, "big") + body
