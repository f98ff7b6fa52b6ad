"""DNS messages (RFC 1035, with RFC 3596's AAAA, RFC 2782's SRV, RFC 6891's OPT): one whole message
in, its parts out.

Decoded: the header (id, QR, opcode, AA, TC, RD, RA, rcode; the EDNS extended rcode when an OPT record
carries it), the questions (name, type, class), and the answer, authority and additional records with
their data read for A, AAAA, CNAME, NS, PTR, DNAME (a name), MX (preference and name), SRV (priority,
weight, port, target), TXT (the strings), SOA (primary name server), and their size for the others.
Names are read with compression pointers, each pointer going back, at most 128 labels: a message
cannot make the reader loop. Over TCP (and DoT) each message has a 2-byte length before it.

Nothing raises: a message that is not DNS, or is cut, gives None.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

HEADER_SIZE = 12
MAX_RECORDS = 64  # records of a section read; a message claiming more is read that far
MAX_LABELS = 128

TYPE_NAMES = {
    1: "A",
    2: "NS",
    5: "CNAME",
    6: "SOA",
    12: "PTR",
    13: "HINFO",
    15: "MX",
    16: "TXT",
    28: "AAAA",
    33: "SRV",
    35: "NAPTR",
    39: "DNAME",
    41: "OPT",
    43: "DS",
    46: "RRSIG",
    47: "NSEC",
    48: "DNSKEY",
    64: "SVCB",
    65: "HTTPS",
    99: "SPF",
    252: "AXFR",
    255: "ANY",
    257: "CAA",
}
TYPE_NUMBERS = {name: number for number, name in TYPE_NAMES.items()}
RCODE_NAMES = {
    0: "NOERROR",
    1: "FORMERR",
    2: "SERVFAIL",
    3: "NXDOMAIN",
    4: "NOTIMP",
    5: "REFUSED",
    6: "YXDOMAIN",
    7: "YXRRSET",
    8: "NXRRSET",
    9: "NOTAUTH",
    10: "NOTZONE",
    16: "BADVERS",
}
OPCODE_NAMES = {0: "QUERY", 1: "IQUERY", 2: "STATUS", 4: "NOTIFY", 5: "UPDATE"}
CLASS_NAMES = {1: "IN", 3: "CH", 4: "HS", 255: "ANY"}
OPT = 41
_NAME_TYPES = frozenset({2, 5, 12, 39})  # NS, CNAME, PTR, DNAME


def type_name(number: int) -> str:
    return TYPE_NAMES.get(number, f"TYPE{number}")


def rcode_name(number: int) -> str:
    return RCODE_NAMES.get(number, f"RCODE{number}")


@dataclass(frozen=True)
class Question:
    name: str
    type: int
    qclass: int


@dataclass(frozen=True)
class ResourceRecord:
    name: str
    type: int
    rclass: int
    ttl: int
    value: str | None  # an address, a name, the text: None for types not read
    size: int  # bytes of its data


@dataclass
class Message:
    id: int
    response: bool
    opcode: int
    authoritative: bool
    truncated: bool  # TC: the answer did not fit (over UDP: ask again over TCP)
    recursion_desired: bool
    recursion_available: bool
    rcode: int
    questions: list[Question] = field(default_factory=list)
    answers: list[ResourceRecord] = field(default_factory=list)
    authority: list[ResourceRecord] = field(default_factory=list)
    additional: list[ResourceRecord] = field(default_factory=list)
    size: int = 0
    complete: bool = True  # every section was read to its end

    @property
    def question(self) -> Question | None:
        return self.questions[0] if self.questions else None


def read_name(data: bytes, pos: int) -> tuple[str, int] | None:
    """(the name, the position after it where it was written), following compression pointers."""
    labels: list[str] = []
    end = None
    jumps = 0
    while True:
        if pos >= len(data) or len(labels) > MAX_LABELS:
            return None
        length = data[pos]
        if length == 0:
            pos += 1
            break
        if length & 0xC0 == 0xC0:
            if pos + 1 >= len(data):
                return None
            target = ((length & 0x3F) << 8) | data[pos + 1]
            if end is None:
                end = pos + 2
            if target >= pos or jumps > MAX_LABELS:  # a pointer must go back: no loop
                return None
            jumps += 1
            pos = target
            continue
        if length & 0xC0:
            return None  # the reserved label types
        label = data[pos + 1 : pos + 1 + length]
        if len(label) < length:
            return None
        labels.append(label.decode("ascii", "backslashreplace").replace(".", "\\."))
        pos += 1 + length
    return ".".join(labels) if labels else ".", end if end is not None else pos


def _record(data: bytes, pos: int) -> tuple[ResourceRecord, int] | None:
    found = read_name(data, pos)
    if found is None:
        return None
    name, pos = found
    if pos + 10 > len(data):
        return None
    kind, rclass, ttl, length = struct.unpack_from(">HHIH", data, pos)
    pos += 10
    if pos + length > len(data):
        return None
    rdata = data[pos : pos + length]
    value: str | None = None
    if kind == 1 and length == 4:
        value = str(ipaddress.IPv4Address(rdata))
    elif kind == 28 and length == 16:
        value = str(ipaddress.IPv6Address(rdata))
    elif kind in _NAME_TYPES:
        target = read_name(data, pos)
        value = target[0] if target else None
    elif kind == 15 and length >= 3:
        target = read_name(data, pos + 2)
        value = f"{int.from_bytes(rdata[:2], 'big')} {target[0]}" if target else None
    elif kind == 33 and length >= 7:
        priority, weight, port = struct.unpack_from(">HHH", rdata)
        target = read_name(data, pos + 6)
        value = f"{priority} {weight} {port} {target[0]}" if target else None
    elif kind == 6:
        target = read_name(data, pos)
        value = target[0] if target else None
    elif kind == 16:
        strings, at = [], 0
        while at < length:
            size = rdata[at]
            strings.append(rdata[at + 1 : at + 1 + size].decode("utf-8", "backslashreplace"))
            at += 1 + size
        value = " ".join(strings)
    return ResourceRecord(name, kind, rclass, ttl, value, length), pos + length


def parse(data: bytes) -> Message | None:
    """One whole message (UDP's datagram, or TCP's after its length), or None if it is not one (shorter
    than a header). A message whose sections end early (cut by the tracer) is read as far as it goes,
    `complete` False."""
    if len(data) < HEADER_SIZE:
        return None
    ident, flags, qd, an, ns, ar = struct.unpack_from(">HHHHHH", data)
    message = Message(
        id=ident,
        response=bool(flags & 0x8000),
        opcode=(flags >> 11) & 0xF,
        authoritative=bool(flags & 0x0400),
        truncated=bool(flags & 0x0200),
        recursion_desired=bool(flags & 0x0100),
        recursion_available=bool(flags & 0x0080),
        rcode=flags & 0xF,
        size=len(data),
    )
    pos = HEADER_SIZE
    for _ in range(min(qd, MAX_RECORDS)):
        found = read_name(data, pos)
        if found is None or found[1] + 4 > len(data):
            message.complete = False
            return message  # cut inside the questions: the header is still known
        name, pos = found
        kind, qclass = struct.unpack_from(">HH", data, pos)
        pos += 4
        message.questions.append(Question(name, kind, qclass))
    for count, section in ((an, message.answers), (ns, message.authority), (ar, message.additional)):
        for _ in range(min(count, MAX_RECORDS)):
            found_record = _record(data, pos)
            if found_record is None:
                message.complete = False
                return message
            record, pos = found_record
            section.append(record)
    for record in message.additional:
        if record.type == OPT:  # EDNS: the rcode's high bits are in the TTL field
            message.rcode |= (record.ttl >> 24) << 4
    return message


def looks_like_query(data: bytes) -> bool:
    """A whole standard query: QR clear, opcode QUERY, one question, no answers, and nothing after the
    question but additional records (EDNS's OPT, a TSIG): strong enough for a channel on no DNS port."""
    if len(data) < HEADER_SIZE + 5 or len(data) > 4096:
        return False
    ident, flags, qd, an, ns, ar = struct.unpack_from(">HHHHHH", data)
    if flags & 0x8000 or (flags >> 11) & 0xF or flags & 0x000F or qd != 1 or an or ns or ar > 2:
        return False
    message = parse(data)
    if message is None or not message.complete or not message.questions:
        return False
    question = message.questions[0]
    return question.qclass in CLASS_NAMES and len(message.additional) == ar and _ends_at(data, ar)


def _ends_at(data: bytes, additional: int) -> bool:
    """The question and `additional` records take exactly the message's bytes."""
    found = read_name(data, HEADER_SIZE)
    if found is None:
        return False
    pos = found[1] + 4
    for _ in range(additional):
        record = _record(data, pos)
        if record is None:
            return False
        pos = record[1]
    return pos == len(data)


def looks_like_response(data: bytes) -> bool:
    """A whole response: QR set, opcode QUERY, one question, every section read to its end."""
    if len(data) < HEADER_SIZE + 5:
        return False
    flags, qd = struct.unpack_from(">HH", data, 2)
    if not flags & 0x8000 or (flags >> 11) & 0xF or qd != 1:
        return False
    message = parse(data)
    return message is not None and message.complete and bool(message.questions)


def query(name: str, kind: int = 1, ident: int = 0x1234) -> bytes:
    """A standard recursive query (tests build conversations with it)."""
    labels = b"".join(bytes([len(part)]) + part.encode() for part in name.rstrip(".").split(".") if part)
    return struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack(">HH", kind, 1)
