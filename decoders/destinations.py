"""Publishes and deliveries per destination, across every connection of a trace: the
`Dockit_MessageDestination` objects, counted from the `Dockit_Message` records as the summary receives
them (as `Dockit_SqlTable` is counted from the queries).

Memory is bounded whatever the trace holds: the first `limit` destinations of each protocol are
counted one by one; messages to any later destination are added to one object per protocol, its
`Destination` `*` and `Overflow="true"`, with `Destinations` saying about how many destinations it
stands for, estimated in a fixed kilobyte (a program publishing to a topic per sensor must not grow
dockit with its sensors).
"""

from __future__ import annotations

import hashlib
import math

from decoders.records import MESSAGE_PUBLISH, CimObject

DESTINATION_LIMIT = 10_000


class DistinctCount:
    """How many distinct names were added, estimated in fixed memory: HyperLogLog (Flajolet et al.,
    2007) with 1024 one-byte registers, about 3 % off, with the small-range correction."""

    BITS = 10

    def __init__(self) -> None:
        self.registers = bytearray(1 << self.BITS)

    def add(self, name: str) -> None:
        digest = hashlib.blake2b(name.encode("utf-8", "surrogateescape"), digest_size=8).digest()
        value = int.from_bytes(digest, "big")
        rest_bits = 64 - self.BITS
        index, rest = value >> rest_bits, value & ((1 << rest_bits) - 1)
        rank = rest_bits - rest.bit_length() + 1
        if rank > self.registers[index]:
            self.registers[index] = rank

    def estimate(self) -> int:
        size = len(self.registers)
        raw = 0.7213 / (1 + 1.079 / size) * size * size / sum(2.0**-r for r in self.registers)
        zeros = self.registers.count(0)
        if raw <= 2.5 * size and zeros:
            return round(size * math.log(size / zeros))
        return round(raw)


class MessageDestinations:
    def __init__(self, limit: int = DESTINATION_LIMIT) -> None:
        self.limit = limit
        self.counts: dict[tuple[str, str], list[int]] = {}  # (protocol, destination) -> counts
        self.per_protocol: dict[str, int] = {}  # destinations counted one by one
        self.overflow: dict[str, list[int]] = {}  # protocol -> counts of the rest
        self.overflow_names: dict[str, DistinctCount] = {}  # protocol -> how many the rest are

    def add(self, obj: CimObject) -> None:
        """Count one `Dockit_Message`: [publishes, deliveries, bytes published, bytes delivered]."""
        attrs = dict(obj.attrs)
        protocol = str(attrs.get("Protocol") or "")
        destination = attrs.get("Destination")
        if destination is None:
            return
        key = (protocol, str(destination))
        entry = self.counts.get(key)
        if entry is None:
            if self.per_protocol.get(protocol, 0) < self.limit:
                self.per_protocol[protocol] = self.per_protocol.get(protocol, 0) + 1
                entry = self.counts[key] = [0, 0, 0, 0]
            else:
                entry = self.overflow.setdefault(protocol, [0, 0, 0, 0])
                self.overflow_names.setdefault(protocol, DistinctCount()).add(key[1])
        publish = attrs.get("Direction") == MESSAGE_PUBLISH
        size = attrs.get("Size")
        entry[0 if publish else 1] += 1
        if isinstance(size, int):
            entry[2 if publish else 3] += size

    def objects(self) -> list[CimObject]:
        found = [
            _destination(protocol, destination, counts, {})
            for (protocol, destination), counts in sorted(self.counts.items())
        ]
        for protocol, counts in sorted(self.overflow.items()):
            names = self.overflow_names[protocol].estimate()
            found.append(_destination(protocol, "*", counts, {"Overflow": "true", "Destinations": names}))
        return found


def _destination(protocol: str, destination: str, counts: list[int], extra: dict) -> CimObject:
    publishes, deliveries, published_bytes, delivered_bytes = counts
    return CimObject.make(
        "Dockit_MessageDestination",
        {
            "Protocol": protocol,
            "Destination": destination,
            "Publishes": publishes,
            "Deliveries": deliveries,
            "PublishedBytes": published_bytes,
            "DeliveredBytes": delivered_bytes,
            **extra,
        },
    )
