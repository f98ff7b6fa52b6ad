"""pcap and pcapng files, plain or gzip, read one frame at a time (a capture of any size costs one
frame of memory). A record's length is the file's claim: a record longer than any snapshot length
(256 KiB) is a damaged file's, and the reading stops there with a clear message, never a read of that
size."""

from __future__ import annotations

import gzip
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
MAX_RECORD = 256 * 1024 + 64  # the largest snapshot length tcpdump and tshark use, and a block's header
MAX_BLOCK = 16 * 1024 * 1024  # a pcapng block other than a packet (a long comment, a name table)


class CaptureError(Exception):
    """The file is no capture, or is damaged past the point where reading can go on."""


@dataclass(slots=True)
class Frame:
    time: float
    linktype: int
    data: bytes
    wire_length: int  # what the frame was on the wire; more than len(data) when the snapshot cut it


def _open(path: str) -> BinaryIO:
    raw = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
    magic = raw.read(2)
    raw.seek(0)
    if magic == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    return raw


def capture_format(path: str) -> str | None:
    """ "pcap", "pcapng" or None (not a capture), from the file's first bytes (gunzipped if need be)."""
    try:
        with _open(path) as stream:
            magic = stream.read(4)
    except (OSError, EOFError, zlib.error):  # a gzip that is not one: the log reader will say so
        return None
    if magic in PCAP_MAGICS:
        return "pcap"
    if magic == PCAPNG_MAGIC:
        return "pcapng"
    return None


def read_frames(path: str) -> Iterator[Frame]:
    """Every frame of the capture, in file order."""
    with _open(path) as stream:
        magic = stream.read(4)
        if magic in PCAP_MAGICS:
            yield from _pcap_frames(stream, magic)
        elif magic == PCAPNG_MAGIC:
            yield from _pcapng_frames(stream, magic)
        else:
            raise CaptureError("not a pcap or pcapng capture")


def _read_exact(stream: BinaryIO, size: int) -> bytes | None:
    data = stream.read(size)
    if len(data) < size:
        return None
    return data


def _pcap_frames(stream: BinaryIO, magic: bytes) -> Iterator[Frame]:
    endian, unit = PCAP_MAGICS[magic]
    header = _read_exact(stream, 20)
    if header is None:
        raise CaptureError("the pcap header is cut")
    linktype = struct.unpack(endian + "I", header[16:20])[0] & 0x0FFFFFFF
    record = struct.Struct(endian + "IIII")
    while True:
        head = stream.read(16)
        if len(head) < 16:
            if head:
                raise CaptureError("the last packet record is cut")
            return
        seconds, fraction, captured, original = record.unpack(head)
        if captured > MAX_RECORD:
            raise CaptureError(f"a packet record claims {captured} bytes: the file is damaged")
        data = _read_exact(stream, captured)
        if data is None:
            raise CaptureError("the last packet is cut")
        yield Frame(seconds + fraction * unit, linktype, data, max(original, captured))


@dataclass(slots=True)
class _Interface:
    linktype: int
    unit: float  # seconds per timestamp tick
    offset: int  # seconds added to every timestamp (if_tsoffset)


def _pcapng_frames(stream: BinaryIO, magic: bytes) -> Iterator[Frame]:
    endian = "<"
    interfaces: list[_Interface] = []
    block_type = magic
    first = True
    while True:
        if not first:
            block_type = stream.read(4)
            if len(block_type) < 4:
                if block_type:
                    raise CaptureError("the last pcapng block is cut")
                return
        first = False
        length_bytes = _read_exact(stream, 4)
        if length_bytes is None:
            raise CaptureError("the last pcapng block is cut")
        if block_type == PCAPNG_MAGIC:
            order = _read_exact(stream, 4)
            if order == b"\x4d\x3c\x2b\x1a":
                endian = "<"
            elif order == b"\x1a\x2b\x3c\x4d":
                endian = ">"
            else:
                raise CaptureError("a pcapng section header has no byte-order magic")
            interfaces = []
            length = struct.unpack(endian + "I", length_bytes)[0]
            if length < 28 or length > MAX_BLOCK or length % 4:
                raise CaptureError(f"a pcapng section header claims {length} bytes: the file is damaged")
            if _read_exact(stream, length - 12) is None:
                raise CaptureError("the pcapng section header is cut")
            continue
        kind = struct.unpack(endian + "I", block_type)[0]
        length = struct.unpack(endian + "I", length_bytes)[0]
        limit = MAX_RECORD if kind in (2, 3, 6) else MAX_BLOCK
        if length < 12 or length % 4 or length > limit:
            raise CaptureError(f"a pcapng block claims {length} bytes: the file is damaged")
        body = _read_exact(stream, length - 8)
        if body is None:
            raise CaptureError("the last pcapng block is cut")
        body = body[:-4]  # the trailing copy of the length
        if kind == 1:  # interface description
            if len(body) < 8:
                raise CaptureError("a pcapng interface block is cut")
            interfaces.append(_interface(body, endian))
        elif kind == 6:  # enhanced packet
            if len(body) < 20:
                raise CaptureError("a pcapng packet block is cut")
            index, high, low, captured, original = struct.unpack(endian + "IIIII", body[:20])
            if index >= len(interfaces):
                raise CaptureError(f"a packet names interface {index}, which the capture never described")
            interface = interfaces[index]
            data = body[20 : 20 + captured]
            time = ((high << 32) | low) * interface.unit + interface.offset
            yield Frame(time, interface.linktype, data, max(original, len(data)))
        elif kind == 3:  # simple packet: no time, interface 0
            if not interfaces or len(body) < 4:
                raise CaptureError("a pcapng simple packet comes before any interface")
            original = struct.unpack(endian + "I", body[:4])[0]
            data = body[4 : 4 + min(original, len(body) - 4)]
            yield Frame(0.0, interfaces[0].linktype, data, max(original, len(data)))
        elif kind == 2:  # the obsolete packet block
            if len(body) < 20:
                raise CaptureError("a pcapng packet block is cut")
            index, _drops, high, low, captured, original = struct.unpack(endian + "HHIIII", body[:20])
            if index >= len(interfaces):
                raise CaptureError(f"a packet names interface {index}, which the capture never described")
            interface = interfaces[index]
            data = body[20 : 20 + captured]
            yield Frame(((high << 32) | low) * interface.unit + interface.offset, interface.linktype, data,
                        max(original, len(data)))  # fmt: skip
        # other blocks (name resolution, statistics, journal, custom) say nothing about the traffic


def _interface(body: bytes, endian: str) -> _Interface:
    linktype = struct.unpack(endian + "H", body[:2])[0]
    unit, offset = 1e-6, 0
    position = 8
    while position + 4 <= len(body):
        code, size = struct.unpack(endian + "HH", body[position : position + 4])
        value = body[position + 4 : position + 4 + size]
        if code == 0:
            break
        if code == 9 and size >= 1:  # if_tsresol
            resolution = value[0]
            unit = 2.0 ** -(resolution & 0x7F) if resolution & 0x80 else 10.0**-resolution
        elif code == 14 and size >= 8:  # if_tsoffset
            offset = struct.unpack(endian + "q", value[:8])[0]
        position += 4 + size + (-size % 4)
    return _Interface(linktype, unit, offset)
