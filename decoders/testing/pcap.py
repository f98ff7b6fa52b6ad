"""Conversations out of a packet capture (pcap or pcapng, as tcpdump, tshark or Wireshark write them):
each TCP connection reassembled per direction (retransmissions dropped, segments put in order, a gap
the capture missed given as lost bytes), each UDP flow as one chunk per datagram. The side that sent
the first SYN (or, without one, the first packet) is the channel's local end, as if dockit had traced
that client: its bytes are OUT. A chunk's `call_index` is the frame's number in the capture, as
Wireshark numbers them, so a problem points to the frame."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from decoders.api import ChannelInfo, Chunk, Direction
from decoders.testing.chunks import Fixture

__all__ = ["is_capture", "read_capture"]

PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1": ("<", 1e-6), b"\xa1\xb2\xc3\xd4": (">", 1e-6),
               b"\x4d\x3c\xb2\xa1": ("<", 1e-9), b"\xa1\xb2\x3c\x4d": (">", 1e-9)}  # fmt: skip
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
MAX_OUT_OF_ORDER = 256  # segments held waiting for a missing one, per direction
MAX_CONNECTIONS = 100_000


class CaptureError(ValueError):
    """Not a capture this reader understands."""


def is_capture(path: str | Path) -> bool:
    with open(path, "rb") as stream:
        head = stream.read(4)
    return head in PCAP_MAGICS or head == PCAPNG_MAGIC


def _packets(path: str | Path) -> Iterator[tuple[int, float, bytes]]:
    """(link type, time, frame bytes) for each packet."""
    with open(path, "rb") as stream:
        head = stream.read(4)
        if head in PCAP_MAGICS:
            order, unit = PCAP_MAGICS[head]
            rest = stream.read(20)
            if len(rest) < 20:
                raise CaptureError("pcap header cut")
            linktype = struct.unpack(order + "I", rest[16:20])[0] & 0x0FFFFFFF
            while True:
                record = stream.read(16)
                if len(record) < 16:
                    return
                seconds, fraction, captured, _ = struct.unpack(order + "IIII", record)
                if captured > 1 << 26:
                    raise CaptureError(f"a packet claims {captured} bytes")
                yield linktype, seconds + fraction * unit, stream.read(captured)
        elif head == PCAPNG_MAGIC:
            stream.seek(0)
            yield from _pcapng(stream)
        else:
            raise CaptureError("not a pcap or pcapng file")


def _pcapng(stream) -> Iterator[tuple[int, float, bytes]]:  # type: ignore[no-untyped-def]
    order = "<"
    interfaces: list[tuple[int, float]] = []
    while True:
        head = stream.read(8)
        if len(head) < 8:
            return
        block_type = struct.unpack(order + "I", head[:4])[0]
        if head[:4] == PCAPNG_MAGIC:
            magic = stream.read(4)
            order = "<" if magic == b"\x4d\x3c\x2b\x1a" else ">"
            length = struct.unpack(order + "I", head[4:8])[0]
            stream.read(length - 12)
            interfaces = []
            continue
        length = struct.unpack(order + "I", head[4:8])[0]
        if length < 12 or length > 1 << 26:
            raise CaptureError(f"a pcapng block claims {length} bytes")
        body = stream.read(length - 8)
        if len(body) < length - 8:
            return
        if block_type == 1:  # interface description
            linktype = struct.unpack(order + "H", body[:2])[0]
            interfaces.append((linktype, _tsresol(body[8:-4], order)))
        elif block_type == 6 and len(body) >= 20:  # enhanced packet
            interface, high, low, captured = struct.unpack(order + "IIII", body[:16])
            if interface < len(interfaces):
                linktype, unit = interfaces[interface]
                yield linktype, ((high << 32) | low) * unit, body[20 : 20 + captured]
        elif block_type == 3 and interfaces:  # simple packet
            yield interfaces[0][0], 0.0, body[4:-4]


def _tsresol(options: bytes, order: str) -> float:
    position = 0
    while position + 4 <= len(options):
        code, size = struct.unpack(order + "HH", options[position : position + 4])
        if code == 0:
            break
        if code == 9 and size >= 1:
            value = options[position + 4]
            return 2.0 ** -(value & 0x7F) if value & 0x80 else 10.0**-value
        position += 4 + ((size + 3) & ~3)
    return 1e-6


def _ip_payload(linktype: int, frame: bytes) -> bytes | None:
    if linktype == 1:  # Ethernet
        ethertype, offset = struct.unpack(">H", frame[12:14])[0] if len(frame) >= 14 else 0, 14
        while ethertype in (0x8100, 0x88A8) and len(frame) >= offset + 4:
            ethertype = struct.unpack(">H", frame[offset + 2 : offset + 4])[0]
            offset += 4
        return frame[offset:] if ethertype in (0x0800, 0x86DD) else None
    if linktype == 113:  # Linux cooked (SLL)
        return frame[16:] if frame[14:16] in (b"\x08\x00", b"\x86\xdd") else None
    if linktype == 276:  # Linux cooked v2 (SLL2)
        return frame[20:] if frame[0:2] in (b"\x08\x00", b"\x86\xdd") else None
    if linktype == 0:  # BSD loopback
        return frame[4:]
    if linktype in (101, 12, 228, 229):  # raw IP
        return frame
    return None


@dataclass
class _Side:
    next_seq: int | None = None
    waiting: dict[int, tuple[int, float, bytes]] = field(default_factory=dict)


@dataclass
class _Flow:
    info: ChannelInfo
    local: tuple[str, int]
    chunks: list[Chunk] = field(default_factory=list)
    sides: dict[bool, _Side] = field(default_factory=lambda: {False: _Side(), True: _Side()})


def _address(version: int, raw: bytes) -> str:
    if version == 4:
        return ".".join(str(b) for b in raw)
    import ipaddress

    return str(ipaddress.IPv6Address(raw))


def read_capture(path: str | Path) -> list[Fixture]:
    """Every TCP connection and UDP flow of a capture, as fixtures (channel and chunks)."""
    flows: dict[tuple, _Flow] = {}
    for number, (linktype, time, frame) in enumerate(_packets(path), start=1):
        packet = _ip_payload(linktype, frame)
        if not packet:
            continue
        version = packet[0] >> 4
        if version == 4 and len(packet) >= 20:
            header = (packet[0] & 0x0F) * 4
            total = struct.unpack(">H", packet[2:4])[0]
            protocol, source, target = packet[9], packet[12:16], packet[16:20]
            body = packet[header : max(header, min(total, len(packet)))]
        elif version == 6 and len(packet) >= 40:
            protocol, source, target = packet[6], packet[8:24], packet[24:40]
            body = packet[40 : 40 + struct.unpack(">H", packet[4:6])[0]]
        else:
            continue
        if protocol not in (6, 17) or len(body) < 8:
            continue
        source_port, target_port = struct.unpack(">HH", body[:4])
        a, b = (_address(version, source), source_port), (_address(version, target), target_port)
        kind = ("tcp" if protocol == 6 else "udp") + ("6" if version == 6 else "")
        key = (kind, *sorted((a, b)))
        flow = flows.get(key)
        syn = protocol == 6 and len(body) >= 14 and body[13] & 0x12 == 0x02
        if flow is None or (syn and flow.chunks == [] and flow.local != a):
            if flow is None and len(flows) >= MAX_CONNECTIONS:
                continue
            ends = sorted((f"{a[0]}:{a[1]}" if version == 4 else f"[{a[0]}]:{a[1]}",
                           f"{b[0]}:{b[1]}" if version == 4 else f"[{b[0]}]:{b[1]}"))  # fmt: skip
            info = ChannelInfo(
                channel_id=f"{kind}:{ends[0]}-{ends[1]}",
                kind=kind,
                local=f"{a[0]}:{a[1]}" if version == 4 else f"[{a[0]}]:{a[1]}",
                remote=f"{b[0]}:{b[1]}" if version == 4 else f"[{b[0]}]:{b[1]}",
                local_port=a[1],
                remote_port=b[1],
            )
            flow = flows[key] = _Flow(info, a)
        inbound = a != flow.local
        direction = Direction.IN if inbound else Direction.OUT
        if protocol == 17:
            data = body[8:]
            if data:
                flow.chunks.append(
                    Chunk(data=data, direction=direction, time=time, pid=0, size=len(data), call_index=number)
                )
            continue
        if len(body) < 20:
            continue
        seq = struct.unpack(">I", body[4:8])[0]
        offset = (body[12] >> 4) * 4
        flags = body[13]
        data = body[offset:]
        side = flow.sides[inbound]
        if flags & 0x02:  # SYN: the data starts after it
            side.next_seq = (seq + 1) & 0xFFFFFFFF
            continue
        if not data:
            continue
        if side.next_seq is None:
            side.next_seq = seq
        side.waiting[seq] = (number, time, data)
        _drain(flow, side, direction, final=len(side.waiting) > MAX_OUT_OF_ORDER)
    fixtures = []
    for flow in flows.values():
        for inbound, side in flow.sides.items():
            while side.waiting:
                _drain(flow, side, Direction.IN if inbound else Direction.OUT, final=True)
        flow.chunks.sort(key=lambda c: c.call_index)
        if flow.chunks:
            fixtures.append(Fixture(flow.info, flow.chunks, str(path)))
    return fixtures


def _drain(flow: _Flow, side: _Side, direction: Direction, final: bool) -> None:
    """Deliver the segments that continue the stream; with `final`, jump over a gap (given as lost bytes
    on an empty chunk) to the earliest waiting segment."""
    while side.waiting:
        assert side.next_seq is not None
        expected = side.next_seq
        ready = None
        for seq in list(side.waiting):
            distance = (seq - expected) & 0xFFFFFFFF
            if distance >= 0x80000000:  # starts before what was delivered: a retransmission, or overlaps
                number, time, data = side.waiting.pop(seq)
                overlap = (expected - seq) & 0xFFFFFFFF
                if overlap < len(data):
                    side.waiting[expected] = (number, time, data[overlap:])
                ready = ready if ready is not None else None
                continue
            if distance == 0:
                ready = seq
        if ready is None and expected in side.waiting:
            ready = expected
        if ready is not None:
            number, time, data = side.waiting.pop(ready)
            flow.chunks.append(
                Chunk(data=data, direction=direction, time=time, pid=0, size=len(data), call_index=number)
            )
            side.next_seq = (ready + len(data)) & 0xFFFFFFFF
            continue
        if not final:
            return
        earliest = min(side.waiting, key=lambda s: (s - expected) & 0xFFFFFFFF)
        gap = (earliest - expected) & 0xFFFFFFFF
        number, time, _ = side.waiting[earliest]
        flow.chunks.append(
            Chunk(data=b"", direction=direction, time=time, pid=0, size=gap, call_index=number)
        )
        side.next_seq = earliest
