"""A captured frame's link, IP and transport headers read: what TCP or UDP segment it carries.

Link types read: Ethernet (with 802.1Q tags), BSD loopback (NULL and LOOP), Linux cooked capture
(SLL and SLL2, what `tcpdump -i any` writes) and raw IP. IPv4 fragments other than the first and
IPv6 extension headers other than hop-by-hop, routing and destination options are left out (counted
by the caller as frames not understood)."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

ETHERNET, NULL, RAW, LOOP, SLL, RAW_IPV4, RAW_IPV6, SLL2 = 1, 0, 101, 108, 113, 228, 229, 276
RAW_OTHER = (12, 14)  # raw IP under the numbers some systems use
_IPV6_NULL_FAMILIES = (10, 24, 28, 30)  # AF_INET6 on Linux, the BSDs and macOS

FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10


@dataclass(slots=True)
class Segment:
    """One TCP segment or UDP datagram."""

    protocol: str  # "tcp" or "udp"
    source: str  # "127.0.0.1:3306", "[::1]:80"
    destination: str
    payload: bytes
    seq: int = 0
    ack: int = 0
    flags: int = 0
    cut: int = 0  # payload bytes the snapshot length left out
    ipv6: bool = False


def _ip_payload(linktype: int, frame: bytes) -> tuple[int, bytes] | None:
    """(IP version, the IP packet) or None when the frame carries no IP."""
    if linktype == ETHERNET:
        if len(frame) < 14:
            return None
        ethertype = struct.unpack_from("!H", frame, 12)[0]
        offset = 14
        while ethertype in (0x8100, 0x88A8) and len(frame) >= offset + 4:  # VLAN tags
            ethertype = struct.unpack_from("!H", frame, offset + 2)[0]
            offset += 4
        return _by_ethertype(ethertype, frame[offset:])
    if linktype in (NULL, LOOP):
        if len(frame) < 4:
            return None
        if linktype == LOOP:
            family = struct.unpack_from("!I", frame)[0]
        else:  # the capturing machine's byte order, which the file does not say
            family = struct.unpack_from("<I", frame)[0]
            if family not in (2,) + _IPV6_NULL_FAMILIES:
                family = struct.unpack_from(">I", frame)[0]
        if family == 2:
            return 4, frame[4:]
        if family in _IPV6_NULL_FAMILIES:
            return 6, frame[4:]
        return None
    if linktype == SLL:
        if len(frame) < 16:
            return None
        return _by_ethertype(struct.unpack_from("!H", frame, 14)[0], frame[16:])
    if linktype == SLL2:
        if len(frame) < 20:
            return None
        return _by_ethertype(struct.unpack_from("!H", frame, 0)[0], frame[20:])
    if linktype in (RAW, RAW_IPV4, RAW_IPV6) or linktype in RAW_OTHER:
        if not frame:
            return None
        version = frame[0] >> 4
        return (version, frame) if version in (4, 6) else None
    return None


def _by_ethertype(ethertype: int, packet: bytes) -> tuple[int, bytes] | None:
    if ethertype == 0x0800:
        return 4, packet
    if ethertype == 0x86DD:
        return 6, packet
    return None


def _address(raw: bytes, port: int, ipv6: bool) -> str:
    if ipv6:
        return f"[{ipaddress.IPv6Address(raw)}]:{port}"
    return f"{ipaddress.IPv4Address(raw)}:{port}"


def parse_frame(linktype: int, frame: bytes, wire_length: int) -> Segment | None:
    """The TCP segment or UDP datagram a frame carries, or None."""
    found = _ip_payload(linktype, frame)
    if found is None:
        return None
    version, packet = found
    missing = max(0, wire_length - len(frame))  # what the snapshot length cut off the end
    if version == 4:
        if len(packet) < 20:
            return None
        header_length = (packet[0] & 0x0F) * 4
        total = struct.unpack_from("!H", packet, 2)[0]
        fragment = struct.unpack_from("!H", packet, 6)[0]
        if fragment & 0x1FFF or fragment & 0x2000:  # a fragment: its segment is not whole here
            return None
        protocol = packet[9]
        source, destination = packet[12:16], packet[16:20]
        if header_length < 20 or total < header_length:
            return None
        end = total if total <= len(packet) + missing else len(packet) + missing
        body = packet[header_length:end]
        body_missing = max(0, end - len(packet))
        ipv6 = False
    elif version == 6:
        if len(packet) < 40:
            return None
        payload_length = struct.unpack_from("!H", packet, 4)[0]
        protocol = packet[6]
        source, destination = packet[8:24], packet[24:40]
        offset = 40
        while protocol in (0, 43, 60):  # hop-by-hop, routing, destination options
            if len(packet) < offset + 8:
                return None
            protocol, size = packet[offset], (packet[offset + 1] + 1) * 8
            offset += size
        end = 40 + payload_length
        body = packet[offset:end]
        body_missing = max(0, end - max(len(packet), offset))
        ipv6 = True
    else:
        return None
    if protocol == 6:
        if len(body) < 20:
            return None
        sport, dport, seq, ack, offset_flags = struct.unpack_from("!HHIIH", body)
        data_offset = (offset_flags >> 12) * 4
        if data_offset < 20 or data_offset > len(body):
            return None
        return Segment(
            "tcp",
            _address(source, sport, ipv6),
            _address(destination, dport, ipv6),
            bytes(body[data_offset:]),
            seq,
            ack,
            offset_flags & 0x3F,
            body_missing,
            ipv6,
        )
    if protocol == 17:
        if len(body) < 8:
            return None
        sport, dport, length = struct.unpack_from("!HHH", body)
        data = bytes(body[8:length]) if length >= 8 else bytes(body[8:])
        return Segment("udp", _address(source, sport, ipv6), _address(destination, dport, ipv6), data,
                       cut=max(0, length - 8 - len(data)), ipv6=ipv6)  # fmt: skip
    return None
