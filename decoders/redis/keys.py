"""Reads and writes per Redis key, across every connection of a trace: the `Dockit_RedisKey` objects,
counted from the `<Key>` children of the `Dockit_RedisCommand` records as the summary receives them (as
`Dockit_SqlTable` is counted from the queries' tables).

Memory is bounded whatever the trace holds: the first `limit` keys are counted one by one; commands on
any later key are added to one object, Name `*` and `Overflow="true"`, with `Keys` saying about how many
keys it stands for (estimated in a fixed kilobyte): a program writing a key per user must not grow dockit
with its users.
"""

from __future__ import annotations

from decoders.destinations import DistinctCount
from decoders.records import CimObject

KEY_LIMIT = 10_000


class RedisKeys:
    def __init__(self, limit: int = KEY_LIMIT) -> None:
        self.limit = limit
        self.counts: dict[str, list[int]] = {}  # key -> [reads, writes]
        self.overflow: list[int] | None = None
        self.overflow_names = DistinctCount()

    def add(self, obj: CimObject) -> None:
        """Count the keys of one `Dockit_RedisCommand`."""
        for child in obj.children:
            if child.tag != "Key":
                continue
            attrs = dict(child.attrs)
            name = str(attrs.get("Name"))
            entry = self.counts.get(name)
            if entry is None:
                if len(self.counts) < self.limit:
                    entry = self.counts[name] = [0, 0]
                else:
                    if self.overflow is None:
                        self.overflow = [0, 0]
                    entry = self.overflow
                    self.overflow_names.add(name)
            entry[1 if attrs.get("Access") == "write" else 0] += 1

    def objects(self) -> list[CimObject]:
        found = [
            CimObject.make("Dockit_RedisKey", {"Name": name, "Reads": reads, "Writes": writes})
            for name, (reads, writes) in sorted(self.counts.items())
        ]
        if self.overflow is not None:
            reads, writes = self.overflow
            found.append(
                CimObject.make(
                    "Dockit_RedisKey",
                    {
                        "Name": "*",
                        "Reads": reads,
                        "Writes": writes,
                        "Overflow": "true",
                        "Keys": self.overflow_names.estimate(),
                    },
                )  # fmt: skip
            )
        return found
