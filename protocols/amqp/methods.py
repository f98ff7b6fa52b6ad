"""The classes and methods of AMQP 0-9-1 (RabbitMQ's extensions included) as data: each method's name
and its arguments' types in order, the basic class's properties, the reply codes."""

from __future__ import annotations

CLASS_CONNECTION, CLASS_CHANNEL, CLASS_EXCHANGE, CLASS_QUEUE = 10, 20, 40, 50
CLASS_BASIC, CLASS_CONFIRM, CLASS_TX = 60, 85, 90
CLASS_NAMES = {
    CLASS_CONNECTION: "connection",
    CLASS_CHANNEL: "channel",
    CLASS_EXCHANGE: "exchange",
    CLASS_QUEUE: "queue",
    CLASS_BASIC: "basic",
    CLASS_CONFIRM: "confirm",
    CLASS_TX: "tx",
}

# Argument types: octet, short, long, longlong, shortstr, longstr, bit, table, timestamp.
_RESERVED_SHORT = ("reserved-1", "short")
_CLOSE = (("reply-code", "short"), ("reply-text", "shortstr"), ("class-id", "short"), ("method-id", "short"))
_DELIVERY = (("delivery-tag", "longlong"), ("multiple", "bit"))
METHODS: dict[tuple[int, int], tuple[str, tuple[tuple[str, str], ...]]] = {
    (10, 10): (
        "connection.start",
        (
            ("version-major", "octet"),
            ("version-minor", "octet"),
            ("server-properties", "table"),
            ("mechanisms", "longstr"),
            ("locales", "longstr"),
        ),
    ),
    (10, 11): (
        "connection.start-ok",
        (
            ("client-properties", "table"),
            ("mechanism", "shortstr"),
            ("response", "longstr"),
            ("locale", "shortstr"),
        ),
    ),
    (10, 20): ("connection.secure", (("challenge", "longstr"),)),
    (10, 21): ("connection.secure-ok", (("response", "longstr"),)),
    (10, 30): ("connection.tune", (("channel-max", "short"), ("frame-max", "long"), ("heartbeat", "short"))),
    (10, 31): (
        "connection.tune-ok",
        (("channel-max", "short"), ("frame-max", "long"), ("heartbeat", "short")),
    ),
    (10, 40): (
        "connection.open",
        (("virtual-host", "shortstr"), ("reserved-1", "shortstr"), ("reserved-2", "bit")),
    ),
    (10, 41): ("connection.open-ok", (("reserved-1", "shortstr"),)),
    (10, 50): ("connection.close", _CLOSE),
    (10, 51): ("connection.close-ok", ()),
    (10, 60): ("connection.blocked", (("reason", "shortstr"),)),
    (10, 61): ("connection.unblocked", ()),
    (10, 70): ("connection.update-secret", (("new-secret", "longstr"), ("reason", "shortstr"))),
    (10, 71): ("connection.update-secret-ok", ()),
    (20, 10): ("channel.open", (("reserved-1", "shortstr"),)),
    (20, 11): ("channel.open-ok", (("reserved-1", "longstr"),)),
    (20, 20): ("channel.flow", (("active", "bit"),)),
    (20, 21): ("channel.flow-ok", (("active", "bit"),)),
    (20, 40): ("channel.close", _CLOSE),
    (20, 41): ("channel.close-ok", ()),
    (40, 10): (
        "exchange.declare",
        (
            _RESERVED_SHORT,
            ("exchange", "shortstr"),
            ("type", "shortstr"),
            ("passive", "bit"),
            ("durable", "bit"),
            ("auto-delete", "bit"),
            ("internal", "bit"),
            ("no-wait", "bit"),
            ("arguments", "table"),
        ),
    ),
    (40, 11): ("exchange.declare-ok", ()),
    (40, 20): (
        "exchange.delete",
        (_RESERVED_SHORT, ("exchange", "shortstr"), ("if-unused", "bit"), ("no-wait", "bit")),
    ),
    (40, 21): ("exchange.delete-ok", ()),
    (40, 30): (
        "exchange.bind",
        (
            _RESERVED_SHORT,
            ("destination", "shortstr"),
            ("source", "shortstr"),
            ("routing-key", "shortstr"),
            ("no-wait", "bit"),
            ("arguments", "table"),
        ),
    ),
    (40, 31): ("exchange.bind-ok", ()),
    (40, 40): (
        "exchange.unbind",
        (
            _RESERVED_SHORT,
            ("destination", "shortstr"),
            ("source", "shortstr"),
            ("routing-key", "shortstr"),
            ("no-wait", "bit"),
            ("arguments", "table"),
        ),
    ),
    (40, 51): ("exchange.unbind-ok", ()),
    (50, 10): (
        "queue.declare",
        (
            _RESERVED_SHORT,
            ("queue", "shortstr"),
            ("passive", "bit"),
            ("durable", "bit"),
            ("exclusive", "bit"),
            ("auto-delete", "bit"),
            ("no-wait", "bit"),
            ("arguments", "table"),
        ),
    ),
    (50, 11): (
        "queue.declare-ok",
        (("queue", "shortstr"), ("message-count", "long"), ("consumer-count", "long")),
    ),
    (50, 20): (
        "queue.bind",
        (
            _RESERVED_SHORT,
            ("queue", "shortstr"),
            ("exchange", "shortstr"),
            ("routing-key", "shortstr"),
            ("no-wait", "bit"),
            ("arguments", "table"),
        ),
    ),
    (50, 21): ("queue.bind-ok", ()),
    (50, 30): ("queue.purge", (_RESERVED_SHORT, ("queue", "shortstr"), ("no-wait", "bit"))),
    (50, 31): ("queue.purge-ok", (("message-count", "long"),)),
    (50, 40): (
        "queue.delete",
        (
            _RESERVED_SHORT,
            ("queue", "shortstr"),
            ("if-unused", "bit"),
            ("if-empty", "bit"),
            ("no-wait", "bit"),
        ),
    ),
    (50, 41): ("queue.delete-ok", (("message-count", "long"),)),
    (50, 50): (
        "queue.unbind",
        (
            _RESERVED_SHORT,
            ("queue", "shortstr"),
            ("exchange", "shortstr"),
            ("routing-key", "shortstr"),
            ("arguments", "table"),
        ),
    ),
    (50, 51): ("queue.unbind-ok", ()),
    (60, 10): ("basic.qos", (("prefetch-size", "long"), ("prefetch-count", "short"), ("global", "bit"))),
    (60, 11): ("basic.qos-ok", ()),
    (60, 20): (
        "basic.consume",
        (
            _RESERVED_SHORT,
            ("queue", "shortstr"),
            ("consumer-tag", "shortstr"),
            ("no-local", "bit"),
            ("no-ack", "bit"),
            ("exclusive", "bit"),
            ("no-wait", "bit"),
            ("arguments", "table"),
        ),
    ),
    (60, 21): ("basic.consume-ok", (("consumer-tag", "shortstr"),)),
    (60, 30): ("basic.cancel", (("consumer-tag", "shortstr"), ("no-wait", "bit"))),
    (60, 31): ("basic.cancel-ok", (("consumer-tag", "shortstr"),)),
    (60, 40): (
        "basic.publish",
        (
            _RESERVED_SHORT,
            ("exchange", "shortstr"),
            ("routing-key", "shortstr"),
            ("mandatory", "bit"),
            ("immediate", "bit"),
        ),
    ),
    (60, 50): (
        "basic.return",
        (
            ("reply-code", "short"),
            ("reply-text", "shortstr"),
            ("exchange", "shortstr"),
            ("routing-key", "shortstr"),
        ),
    ),
    (60, 60): (
        "basic.deliver",
        (
            ("consumer-tag", "shortstr"),
            ("delivery-tag", "longlong"),
            ("redelivered", "bit"),
            ("exchange", "shortstr"),
            ("routing-key", "shortstr"),
        ),
    ),
    (60, 70): ("basic.get", (_RESERVED_SHORT, ("queue", "shortstr"), ("no-ack", "bit"))),
    (60, 71): (
        "basic.get-ok",
        (
            ("delivery-tag", "longlong"),
            ("redelivered", "bit"),
            ("exchange", "shortstr"),
            ("routing-key", "shortstr"),
            ("message-count", "long"),
        ),
    ),
    (60, 72): ("basic.get-empty", (("reserved-1", "shortstr"),)),
    (60, 80): ("basic.ack", _DELIVERY),
    (60, 90): ("basic.reject", (("delivery-tag", "longlong"), ("requeue", "bit"))),
    (60, 100): ("basic.recover-async", (("requeue", "bit"),)),
    (60, 110): ("basic.recover", (("requeue", "bit"),)),
    (60, 111): ("basic.recover-ok", ()),
    (60, 120): ("basic.nack", (*_DELIVERY, ("requeue", "bit"))),
    (85, 10): ("confirm.select", (("no-wait", "bit"),)),
    (85, 11): ("confirm.select-ok", ()),
    (90, 10): ("tx.select", ()),
    (90, 11): ("tx.select-ok", ()),
    (90, 20): ("tx.commit", ()),
    (90, 21): ("tx.commit-ok", ()),
    (90, 30): ("tx.rollback", ()),
    (90, 31): ("tx.rollback-ok", ()),
}
METHOD_IDS = {name: key for key, (name, _) in METHODS.items()}
# Methods followed by a content header and body frames.
CONTENT_METHODS = frozenset({"basic.publish", "basic.return", "basic.deliver", "basic.get-ok"})

# The basic class's properties, in property-flag order (bit 15 first).
BASIC_PROPERTIES: tuple[tuple[str, str], ...] = (
    ("content-type", "shortstr"),
    ("content-encoding", "shortstr"),
    ("headers", "table"),
    ("delivery-mode", "octet"),
    ("priority", "octet"),
    ("correlation-id", "shortstr"),
    ("reply-to", "shortstr"),
    ("expiration", "shortstr"),
    ("message-id", "shortstr"),
    ("timestamp", "timestamp"),
    ("type", "shortstr"),
    ("user-id", "shortstr"),
    ("app-id", "shortstr"),
    ("cluster-id", "shortstr"),
)

# Reply codes of the specification (connection.close, channel.close, basic.return).
REPLY_CODES = {
    200: "reply-success",
    311: "content-too-large",
    312: "no-route",
    313: "no-consumers",
    320: "connection-forced",
    402: "invalid-path",
    403: "access-refused",
    404: "not-found",
    405: "resource-locked",
    406: "precondition-failed",
    501: "frame-error",
    502: "syntax-error",
    503: "command-invalid",
    504: "channel-error",
    505: "unexpected-frame",
    506: "resource-error",
    530: "not-allowed",
    540: "not-implemented",
    541: "internal-error",
}


def method_name(class_id: int, method_id: int) -> str:
    known = METHODS.get((class_id, method_id))
    return known[0] if known else f"{CLASS_NAMES.get(class_id, class_id)}.{method_id}"
