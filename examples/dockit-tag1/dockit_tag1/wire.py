"""TAG1's wire format: fields, checksum, and a stream splitter for the real server and client.

Pure functions, no sockets. The decoder frames with `decoders.framing` instead; it shares only the
constants and `checksum` (the tests pin real bytes, so a wrong checksum here would show there).
"""

from __future__ import annotations

SOH = b"\x01"
CHECKSUM_TAG = b"10"
MAX_MESSAGE = 64 * 1024  # the server and client refuse a message longer than this


def checksum(data: bytes) -> int:
    """The protocol's checksum: the sum of the message's bytes before `10=`, modulo 256."""
    return sum(data) % 256


def encode(fields: list[tuple[int | str, str]], *, corrupt_checksum: bool = False) -> bytes:
    """One message: `tag=value<SOH>` for each field, then `10=NNN<SOH>`."""
    body = b"".join(f"{tag}={value}".encode() + SOH for tag, value in fields)
    total = checksum(body)
    if corrupt_checksum:
        total = (total + 1) % 256
    return body + b"10=%03d" % total + SOH


def parse(message: bytes) -> dict[str, str]:
    """The fields of one whole message (the last value wins when a tag repeats), checksum included."""
    fields: dict[str, str] = {}
    for raw in message.split(SOH):
        tag, sep, value = raw.partition(b"=")
        if sep:
            fields[tag.decode("ascii", "replace")] = value.decode("utf-8", "replace")
    return fields


def checksum_ok(message: bytes) -> bool:
    """Whether a whole message's `10=` field matches its bytes."""
    at = message.rfind(SOH + CHECKSUM_TAG + b"=", 0, len(message) - 1)
    if at < 0:
        return False
    digits = message[at + 4 : -1]
    return len(digits) == 3 and digits.isdigit() and int(digits) == checksum(message[: at + 1])


class Splitter:
    """Cuts a byte stream into whole messages, however the reads split it."""

    def __init__(self) -> None:
        self.buffer = b""
        self.searched = 0

    def feed(self, data: bytes) -> list[bytes]:
        self.buffer += data
        messages = []
        while True:
            at = self.buffer.find(SOH + CHECKSUM_TAG + b"=", self.searched)
            if at < 0 or len(self.buffer) < at + 8:
                self.searched = at if at >= 0 else max(len(self.buffer) - 3, 0)
                if len(self.buffer) > MAX_MESSAGE:
                    raise ValueError(f"a message longer than {MAX_MESSAGE} bytes")
                return messages
            end = at + 8  # SOH + "10=" + 3 digits + SOH
            messages.append(self.buffer[:end])
            self.buffer = self.buffer[end:]
            self.searched = 0
