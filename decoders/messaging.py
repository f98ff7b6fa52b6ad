"""What the message-broker decoders (AMQP, MQTT, NATS) share: messages and requests waiting for their
acknowledgement or reply, kept in bounded maps, and how one is settled.

A broker connection can carry millions of messages, and a consumer that never acknowledges would make
any unbounded map grow with them: each map here holds at most `limit` entries, and the oldest one is
let go (reported with its status still `unknown`) when a new one would pass it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from decoders.records import BrokerMessage, BrokerOperation

PENDING_LIMIT = 10_000

Key = TypeVar("Key")
Value = TypeVar("Value")

STATUS_OK = "ok"
STATUS_ERROR = "error"
STATUS_UNACKNOWLEDGED = "unacknowledged"  # the mode used asks no acknowledgement
STATUS_UNKNOWN = "unknown"  # an acknowledgement or reply was due and not seen
STATUS_SENT = "sent"  # a request that asks no reply (AMQP no-wait, NATS SUB)


class Pending(Generic[Key, Value]):
    """Insertion-ordered, bounded: `add` returns what it had to let go to stay within `limit`."""

    def __init__(self, limit: int = PENDING_LIMIT) -> None:
        self.limit = limit
        self.items: dict[Key, Value] = {}

    def add(self, key: Key, value: Value) -> list[Value]:
        evicted = []
        old = self.items.pop(key, None)
        if old is not None:
            evicted.append(old)  # the same key again (a redelivery with a reused tag): the old one is done
        self.items[key] = value
        while len(self.items) > self.limit:
            evicted.append(self.items.pop(next(iter(self.items))))
        return evicted

    def pop(self, key: Key) -> Value | None:
        return self.items.pop(key, None)

    def pop_until(self, key: Key) -> list[Value]:
        """Every entry up to and including `key`, in order (AMQP's `multiple` acknowledgements; keys
        are increasing delivery tags or sequence numbers)."""
        taken = []
        while self.items:
            first = next(iter(self.items))
            if first > key:  # type: ignore[operator]
                break
            taken.append(self.items.pop(first))
        return taken

    def drain(self) -> list[Value]:
        values = list(self.items.values())
        self.items.clear()
        return values

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Key]:
        return iter(self.items)


def settle(
    record: BrokerMessage | BrokerOperation,
    status: str,
    time: float | None,
    ack: str | None = None,
    error: str | None = None,
) -> BrokerMessage | BrokerOperation:
    """The record's outcome, and how long after it the acknowledgement or reply came."""
    record.status = status
    if error is not None:
        record.error = error
    if ack is not None and isinstance(record, BrokerMessage):
        record.ack = ack
    if time is not None and record.time is not None and time >= record.time:
        record.duration = time - record.time
    return record


def count(commands: dict[str, int], name: str) -> None:
    commands[name] = commands.get(name, 0) + 1
