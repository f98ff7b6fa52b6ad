"""Framing and the primitive types every message is made of; `MySqlError`, which every parser raises.

Decoded: the 4-byte packet header (3-byte little-endian length, sequence id) and the 16 MB split of a
long payload (`packets` builds it), length-encoded integers and strings, NUL-terminated strings, read
by `Reader`, a cursor that checks every read against the payload's end. Not here: reassembly of
packets across reads, 16 MB continuations and the compressed protocol's framing (CLIENT_COMPRESS),
which are the decoder's (decoders/mysql/stream.py).
"""

from __future__ import annotations

from construct import Bytes, Int8ul, Int24ul, Struct, this

MAX_PAYLOAD = 0xFFFFFF  # a payload of exactly this length continues in the next packet


PacketHeader = Struct("length" / Int24ul, "sequence_id" / Int8ul)
Packet = Struct("length" / Int24ul, "sequence_id" / Int8ul, "payload" / Bytes(this.length))


class MySqlError(ValueError):
    """A payload that does not parse as the message it should be."""


class Reader:
    """A cursor over one payload; every read checks the bounds, so a short payload is an error."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = bytes(data)  # slices of bytes are bytes: no copy per read
        self.pos = pos

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def _short(self, n: int) -> MySqlError:
        return MySqlError(f"need {n} bytes at {self.pos}, payload has {len(self.data)}")

    def take(self, n: int) -> bytes:
        pos = self.pos
        end = pos + n
        if n < 0 or end > len(self.data):
            raise self._short(n)
        self.pos = end
        return self.data[pos:end]

    def int(self, n: int) -> int:
        pos = self.pos
        end = pos + n
        if end > len(self.data):
            raise self._short(n)
        self.pos = end
        return self.data[pos] if n == 1 else int.from_bytes(self.data[pos:end], "little")

    def lenenc(self) -> int | None:
        """A length-encoded integer; None for 0xfb (NULL in a text row)."""
        if self.pos >= len(self.data):
            raise self._short(1)
        first = self.data[self.pos]
        self.pos += 1
        if first < 0xFB:
            return first
        if first == 0xFB:
            return None
        if first == 0xFC:
            return self.int(2)
        if first == 0xFD:
            return self.int(3)
        if first == 0xFE:
            return self.int(8)
        raise MySqlError("0xff is not a length-encoded integer")

    def lenenc_bytes(self) -> bytes | None:
        length = self.lenenc()
        return None if length is None else self.take(length)

    def nul_string(self) -> bytes:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise MySqlError("string without its NUL terminator")
        out = self.data[self.pos : end]
        self.pos = end + 1
        return out

    def rest(self) -> bytes:
        out = self.data[self.pos :]
        self.pos = len(self.data)
        return out


def text(raw: bytes | None) -> str | None:
    """Bytes from the wire as text: UTF-8 when it is, backslash escapes for the rest."""
    return None if raw is None else raw.decode("utf-8", "backslashreplace")


def lenenc_int(value: int) -> bytes:
    if value < 0xFB:
        return bytes([value])
    if value < 1 << 16:
        return b"\xfc" + value.to_bytes(2, "little")
    if value < 1 << 24:
        return b"\xfd" + value.to_bytes(3, "little")
    return b"\xfe" + value.to_bytes(8, "little")


def lenenc_str(value: bytes) -> bytes:
    return lenenc_int(len(value)) + value


def packets(payload: bytes, sequence_id: int = 0) -> bytes:
    """A payload as one or more packets (split at 0xFFFFFF bytes, as the protocol does)."""
    out = bytearray()
    pos = 0
    while True:
        piece = payload[pos : pos + MAX_PAYLOAD]
        out += Packet.build({"length": len(piece), "sequence_id": sequence_id & 0xFF, "payload": piece})
        pos += len(piece)
        sequence_id += 1
        if len(piece) < MAX_PAYLOAD:
            return bytes(out)
