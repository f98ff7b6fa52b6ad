"""What an AMQP connection remembers between frames (per channel: its mode, its requests waiting for
their replies, its unsettled messages), and the tables of methods the other modules read."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from decoders.api import Direction
from decoders.messaging import Pending
from decoders.records import BrokerMessage, BrokerOperation

MAX_KEEP = 256 * 1024  # frame bytes kept: method and header frames are far smaller; bodies are counted
MAX_FRAME = 1 << 26  # a frame claiming more is garbage (RabbitMQ's frame_max defaults to 128 KiB)
MAX_RESYNC_FRAME = 1 << 18
MAX_QUEUED_REQUESTS = 256  # per channel: requests waiting for their -ok

CLIENT_ONLY = frozenset(
    {
        "connection.start-ok",
        "connection.secure-ok",
        "connection.tune-ok",
        "connection.open",
        "connection.update-secret",
        "channel.open",
        "exchange.declare",
        "exchange.delete",
        "exchange.bind",
        "exchange.unbind",
        "queue.declare",
        "queue.bind",
        "queue.unbind",
        "queue.purge",
        "queue.delete",
        "basic.qos",
        "basic.consume",
        "basic.publish",
        "basic.get",
        "basic.reject",
        "basic.recover",
        "basic.recover-async",
        "confirm.select",
        "tx.select",
        "tx.commit",
        "tx.rollback",
    }
)
SERVER_ONLY = frozenset(
    {
        "connection.start",
        "connection.secure",
        "connection.tune",
        "connection.open-ok",
        "connection.blocked",
        "connection.unblocked",
        "connection.update-secret-ok",
        "channel.open-ok",
        "exchange.declare-ok",
        "exchange.delete-ok",
        "exchange.bind-ok",
        "exchange.unbind-ok",
        "queue.declare-ok",
        "queue.bind-ok",
        "queue.unbind-ok",
        "queue.purge-ok",
        "queue.delete-ok",
        "basic.qos-ok",
        "basic.consume-ok",
        "basic.return",
        "basic.deliver",
        "basic.get-ok",
        "basic.get-empty",
        "basic.recover-ok",
        "confirm.select-ok",
        "tx.select-ok",
        "tx.commit-ok",
        "tx.rollback-ok",
    }
)
# Requests of a channel that become a BrokerOperation, and the replies that answer each.
OPERATIONS: dict[str, tuple[str, ...]] = {
    "channel.open": ("channel.open-ok",),
    "channel.flow": ("channel.flow-ok",),
    "exchange.declare": ("exchange.declare-ok",),
    "exchange.delete": ("exchange.delete-ok",),
    "exchange.bind": ("exchange.bind-ok",),
    "exchange.unbind": ("exchange.unbind-ok",),
    "queue.declare": ("queue.declare-ok",),
    "queue.bind": ("queue.bind-ok",),
    "queue.unbind": ("queue.unbind-ok",),
    "queue.purge": ("queue.purge-ok",),
    "queue.delete": ("queue.delete-ok",),
    "basic.qos": ("basic.qos-ok",),
    "basic.consume": ("basic.consume-ok",),
    "basic.cancel": ("basic.cancel-ok",),
    "basic.recover": ("basic.recover-ok",),
    "basic.get": ("basic.get-ok", "basic.get-empty"),
    "confirm.select": ("confirm.select-ok",),
    "tx.select": ("tx.select-ok",),
    "tx.commit": ("tx.commit-ok",),
    "tx.rollback": ("tx.rollback-ok",),
}
REPLIES = {reply for replies in OPERATIONS.values() for reply in replies}
# Arguments shown for each operation, as attributes (the rest, and `arguments` tables, as children).
SHOWN = {
    "exchange": "Exchange",
    "type": "Type",
    "queue": "Queue",
    "routing-key": "RoutingKey",
    "destination": "Destination",
    "source": "Source",
    "consumer-tag": "ConsumerTag",
    "prefetch-count": "PrefetchCount",
    "prefetch-size": "PrefetchSize",
    "global": "Global",
    "durable": "Durable",
    "passive": "Passive",
    "exclusive": "Exclusive",
    "auto-delete": "AutoDelete",
    "internal": "Internal",
    "no-ack": "NoAck",
    "if-unused": "IfUnused",
    "if-empty": "IfEmpty",
    "requeue": "Requeue",
    "active": "Active",
}
REPLY_SHOWN = {
    "queue": "Queue",
    "message-count": "MessageCount",
    "consumer-count": "ConsumerCount",
    "consumer-tag": "ConsumerTag",
}


def flag(value: Any) -> Any:
    return ("true" if value else "false") if isinstance(value, bool) else value


def text_of(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {text_of(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(text_of(v) for v in value) + "]"
    return str(value)


def destination(exchange: str | None, routing_key: str | None) -> str:
    """`exchange/routing key`; the default exchange (``) gives `/queue`; a method cut before its
    exchange (a tracer's short buffer) gives ``."""
    if exchange is None:
        return ""
    return f"{exchange}/{routing_key or ''}"


def reply_error(code: Any, text: Any) -> str:
    return f"{code} {text}" if text else str(code)


@dataclass
class Content:
    """A message whose method has been seen, waiting for its content header and body."""

    record: BrokerMessage
    body_size: int | None = None
    received: int = 0
    header_seen: bool = False
    mandatory: bool = False
    no_ack: bool = False  # a delivery that needs no acknowledgement (no-ack consumer or get)


@dataclass
class ChannelState:
    number: int
    confirm: bool = False
    publish_sequence: int = 0
    transaction: bool = False
    unconfirmed: Pending[int, BrokerMessage] = field(default_factory=Pending)  # by publish sequence
    returned: dict[int, str] = field(default_factory=dict)  # publish sequence -> why the broker returned it
    unacked: Pending[int, BrokerMessage] = field(default_factory=Pending)  # deliveries, by delivery tag
    tx_publishes: list[BrokerMessage] = field(default_factory=list)
    tx_settles: list[tuple[str, int, bool, bool | None, float | None]] = field(default_factory=list)
    consumers: dict[str, tuple[str | None, bool]] = field(default_factory=dict)  # tag -> (queue, no-ack)
    requests: deque[tuple[str, BrokerOperation]] = field(default_factory=deque)
    gets: deque[tuple[str | None, bool]] = field(default_factory=deque)  # basic.get: (queue, no-ack)
    content: dict[Direction, Content] = field(default_factory=dict)
