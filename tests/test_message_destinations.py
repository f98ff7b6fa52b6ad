"""Dockit_MessageDestination: publishes and deliveries counted per destination across connections, in
memory that stays bounded however many destinations a trace holds (decoders/destinations.py)."""

from __future__ import annotations

import tracemalloc

from decoders.destinations import DistinctCount, MessageDestinations
from decoders.records import MESSAGE_DELIVER, MESSAGE_PUBLISH, BrokerMessage


def message(destination: str, direction: str = MESSAGE_PUBLISH, size: int = 3, protocol: str = "mqtt"):
    return BrokerMessage(
        protocol=protocol, process=1, session="s", direction=direction, destination=destination, size=size
    ).to_cim()


def counts(destinations: MessageDestinations) -> dict[tuple, tuple]:
    found = {}
    for obj in destinations.objects():
        attrs = dict(obj.attrs)
        found[(attrs["Protocol"], attrs["Destination"])] = (
            attrs["Publishes"],
            attrs["Deliveries"],
            attrs["PublishedBytes"],
            attrs["DeliveredBytes"],
            attrs.get("Overflow"),
            attrs.get("Destinations"),
        )
    return found


def test_counts_per_protocol_and_destination():
    destinations = MessageDestinations()
    for obj in (
        message("a/b"),
        message("a/b", MESSAGE_DELIVER, 5),
        message("a/b", MESSAGE_DELIVER, 5),
        message("a/b", protocol="nats"),
        message("ex/rk", size=10, protocol="amqp"),
    ):
        destinations.add(obj)
    assert counts(destinations) == {
        ("amqp", "ex/rk"): (1, 0, 10, 0, None, None),
        ("mqtt", "a/b"): (1, 2, 3, 10, None, None),
        ("nats", "a/b"): (1, 0, 3, 0, None, None),
    }


def test_past_the_limit_destinations_are_counted_together():
    destinations = MessageDestinations(limit=3)
    for i in range(10):
        destinations.add(message(f"t/{i}"))
        destinations.add(message(f"t/{i}", MESSAGE_DELIVER))
    found = counts(destinations)
    assert found[("mqtt", "t/0")] == (1, 1, 3, 3, None, None)
    assert found[("mqtt", "*")] == (7, 7, 21, 21, "true", 7)
    assert len(destinations.counts) == 3


def test_memory_stays_flat_with_the_number_of_destinations():
    """100,000 topics past the limit cost what 10,000 cost: the count of the rest is an estimate."""

    def peak(topics: int) -> int:
        destinations = MessageDestinations(limit=100)
        objects = [message(f"sensors/{i}") for i in range(100)]
        for obj in objects:
            destinations.add(obj)
        tracemalloc.start()
        for i in range(topics):
            destinations.add(message(f"more/{i}"))
        size = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        return size

    assert peak(100_000) < peak(10_000) + 64 * 1024


def test_distinct_count_is_within_a_few_percent():
    for size in (1, 50, 3_000, 200_000):
        count = DistinctCount()
        for i in range(size):
            count.add(f"devices/{i}/temperature")
            count.add(f"devices/{i}/temperature")  # twice: counted once
        assert abs(count.estimate() - size) <= max(1, size * 0.06), size
