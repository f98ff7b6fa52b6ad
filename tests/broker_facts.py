"""The facts each broker scenario of captures/broker_clients.py must yield, and the summary read back
as the same plain tuples whether it comes from decoder records (sans-IO tests) or from a summary XML
(live runs, replays of captures).

The facts come from what each scenario does and what the protocol requires of the broker (RabbitMQ
confirms a routed publish, returns an unroutable mandatory one with 312 NO_ROUTE and still confirms it;
Mosquitto grants the QoS asked; a JetStream publish gets `{"stream", "seq"}`...), written here by hand;
captures/BROKER_FACTS.md says the same in prose. Subjects nats-py makes up (`_INBOX.<random>...`) are
compared as `_INBOX.*`.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from decoders.records import CimObject, as_cim
from tests.conftest import load_capture_module

Message = tuple  # (protocol, direction, destination, size, qos, status, ack)
Operation = tuple  # (protocol, operation, status)


clients = load_capture_module("broker_clients")
SECRET_HEADER_VALUE = clients.SECRET_HEADER_VALUE


def normal(destination: str | None) -> str | None:
    if destination and destination.startswith("_INBOX."):
        return "_INBOX.*"
    return destination


@dataclass
class Facts:
    """What a summary says about brokers, as comparable values."""

    messages: Counter = field(default_factory=Counter)
    operations: Counter = field(default_factory=Counter)
    sessions: list[dict[str, str]] = field(default_factory=list)
    commands: list[dict[str, int]] = field(default_factory=list)  # per session, as its Command children
    destinations: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    message_objects: list[dict[str, str]] = field(default_factory=list)
    operation_objects: list[tuple[dict[str, str], list[tuple[str, dict[str, str]]]]] = field(
        default_factory=list
    )
    message_children: list[list[tuple[str, dict[str, str]]]] = field(default_factory=list)
    objects: list[CimObject] = field(default_factory=list)

    def of(self, protocol: str) -> Facts:
        return facts([obj for obj in self.objects if dict(obj.attrs).get("Protocol") == protocol])


def _text(value: object) -> str:
    return "true" if value is True else "false" if value is False else str(value)


def facts(objects: Iterable[CimObject]) -> Facts:
    found = Facts()
    for obj in objects:
        found.objects.append(obj)
        attrs = {name: _text(value) for name, value in obj.attrs if value is not None}
        children = [
            (child.tag, {n: _text(v) for n, v in child.attrs if v is not None}) for child in obj.children
        ]
        if obj.cim_class == "Dockit_Message":
            found.messages[message_key(attrs)] += 1
            found.message_objects.append(attrs)
            found.message_children.append(children)
        elif obj.cim_class == "Dockit_BrokerOperation":
            found.operations[(attrs["Protocol"], attrs["Operation"], attrs["Status"])] += 1
            found.operation_objects.append((attrs, children))
        elif obj.cim_class == "Dockit_BrokerSession":
            found.sessions.append(attrs)
            found.commands.append({c["Name"]: int(c["Count"]) for tag, c in children if tag == "Command"})
        elif obj.cim_class == "Dockit_MessageDestination":
            found.destinations[(attrs["Protocol"], normal(attrs["Destination"]))] = (
                int(attrs["Publishes"]),
                int(attrs["Deliveries"]),
            )
    return found


def message_key(attrs: dict[str, str]) -> Message:
    size = attrs.get("Size")
    qos = attrs.get("QoS")
    return (
        attrs["Protocol"],
        attrs["Direction"],
        normal(attrs["Destination"]),
        int(size) if size is not None else None,
        int(qos) if qos is not None else None,
        attrs["Status"],
        attrs.get("Ack"),
    )


def facts_of_outputs(outputs: Iterable[object]) -> Facts:
    """Decoder outputs (records, annotations, secrets) as the summary would hold them."""
    from decoders.destinations import MessageDestinations
    from decoders.records import Record

    objects = [as_cim(o) for o in outputs if isinstance(o, (Record, CimObject))]
    counts = MessageDestinations()
    for obj in objects:
        if obj.cim_class == "Dockit_Message":
            counts.add(obj)
    return facts(objects + counts.objects())


def facts_of_xml(root) -> Facts:  # type: ignore[no-untyped-def]
    """A summary XML (lxml root) read back as CimObjects."""
    from decoders.records import CimChild

    objects = []
    for element in root:
        if not element.tag.startswith("Dockit_"):
            continue
        children = tuple(CimChild(child.tag, tuple(child.attrib.items()), child.text) for child in element)
        objects.append(CimObject(element.tag, tuple(element.attrib.items()), children))
    return facts(objects)


# -- the scenarios' facts ---------------------------------------------------------------------------------
def amqp_messages(tag: str) -> Counter:
    x, q, rk = f"{tag}.x", f"{tag}.q", clients.ROUTING_KEY
    routed = f"{x}/{rk}"
    return Counter(
        [
            ("amqp", "publish", routed, 5, None, "ok", "confirm"),
            ("amqp", "publish", routed, 7, None, "ok", "confirm"),
            ("amqp", "publish", f"{x}/nowhere", 4, None, "error", "returned"),
            ("amqp", "deliver", routed, 5, None, "ok", "ack"),  # basic.get, then basic.ack
            ("amqp", "deliver", routed, 7, None, "unacknowledged", "auto"),  # basic.get with no-ack
            ("amqp", "publish", routed, 2, None, "ok", "confirm"),  # c1
            ("amqp", "publish", routed, 2, None, "ok", "confirm"),  # c2
            ("amqp", "deliver", routed, 2, None, "ok", "ack"),  # c1, basic.deliver then basic.ack
            ("amqp", "deliver", routed, 2, None, "error", "nack"),  # c2, basic.nack
            ("amqp", "publish", f"/{q}", 3, None, "ok", "commit"),  # tx1
            ("amqp", "publish", f"/{q}", 3, None, "error", "rollback"),  # tx2
        ]
    )


AMQP_OPERATIONS = Counter(
    {
        ("amqp", "channel.open", "ok"): 3,  # the scenario's, the transaction's, and the cleanup's
        ("amqp", "exchange.declare", "ok"): 1,
        ("amqp", "queue.declare", "ok"): 1,
        ("amqp", "queue.bind", "ok"): 1,
        ("amqp", "confirm.select", "ok"): 1,
        ("amqp", "basic.get", "ok"): 2,
        ("amqp", "basic.get", "empty"): 1,
        ("amqp", "basic.consume", "ok"): 1,
        ("amqp", "basic.cancel", "ok"): 1,
        ("amqp", "tx.select", "ok"): 1,
        ("amqp", "tx.commit", "ok"): 1,
        ("amqp", "tx.rollback", "ok"): 1,
        ("amqp", "queue.declare", "error"): 1,  # passive, of a queue that does not exist: 404
        ("amqp", "channel.close", "error"): 1,  # the broker closing channel 1 for it
        ("amqp", "queue.delete", "ok"): 1,
        ("amqp", "exchange.delete", "ok"): 1,
        ("amqp", "channel.close", "ok"): 2,  # the client closing its two channels
    }
)

AMQP_DESTINATIONS = {
    "routed": (4, 4),
    "nowhere": (1, 0),
    "queue": (2, 0),
}


def amqp_destinations(tag: str) -> dict[tuple[str, str], tuple[int, int]]:
    return {
        ("amqp", f"{tag}.x/{clients.ROUTING_KEY}"): AMQP_DESTINATIONS["routed"],
        ("amqp", f"{tag}.x/nowhere"): AMQP_DESTINATIONS["nowhere"],
        ("amqp", f"/{tag}.q"): AMQP_DESTINATIONS["queue"],
    }


def mqtt_messages(tag: str) -> Counter:
    return Counter(
        [
            ("mqtt", "publish", f"{tag}/a", 4, 0, "unacknowledged", None),
            ("mqtt", "deliver", f"{tag}/a", 4, 0, "unacknowledged", None),
            ("mqtt", "publish", f"{tag}/b", 4, 1, "ok", "puback"),
            ("mqtt", "deliver", f"{tag}/b", 4, 1, "ok", "puback"),
            ("mqtt", "publish", f"{tag}/c", 5, 2, "ok", "pubcomp"),
            ("mqtt", "deliver", f"{tag}/c", 5, 2, "ok", "pubcomp"),
            ("mqtt", "publish", f"{tag}/b", 0, 1, "ok", "puback"),  # the retained message cleared
        ]
    )


MQTT_OPERATIONS = Counter({("mqtt", "SUBSCRIBE", "ok"): 1, ("mqtt", "UNSUBSCRIBE", "ok"): 1})
MQTT_COMMANDS = {
    "CONNECT": 1,
    "CONNACK": 1,
    "SUBSCRIBE": 1,
    "SUBACK": 1,
    "PUBLISH": 7,
    "PUBACK": 3,
    "PUBREC": 2,
    "PUBREL": 2,
    "PUBCOMP": 2,
    "UNSUBSCRIBE": 1,
    "UNSUBACK": 1,
    "DISCONNECT": 1,
}


def mqtt_destinations(tag: str) -> dict[tuple[str, str], tuple[int, int]]:
    return {("mqtt", f"{tag}/a"): (1, 1), ("mqtt", f"{tag}/b"): (2, 1), ("mqtt", f"{tag}/c"): (1, 1)}


def nats_messages(tag: str) -> Counter:
    return Counter(
        [
            ("nats", "publish", f"{tag}.a", 5, None, "unacknowledged", None),
            ("nats", "deliver", f"{tag}.a", 5, None, "unacknowledged", None),
            ("nats", "publish", f"{tag}.b", 2, None, "unacknowledged", None),  # HPUB
            ("nats", "deliver", f"{tag}.b", 2, None, "unacknowledged", None),  # HMSG
            ("nats", "publish", f"{tag}_work", 3, None, "unacknowledged", None),
            ("nats", "deliver", f"{tag}_work", 3, None, "unacknowledged", None),  # to the queue group
            ("nats", "publish", f"{tag}.req", 4, None, "ok", "reply"),  # the request, answered
            ("nats", "deliver", f"{tag}.req", 4, None, "unacknowledged", None),  # to our own responder
            ("nats", "publish", "_INBOX.*", 4, None, "unacknowledged", None),  # the responder's "pong"
            ("nats", "deliver", "_INBOX.*", 4, None, "unacknowledged", None),  # and the requester's
            ("nats", "publish", f"{tag}_nobody", 1, None, "error", "503"),  # no responders
            ("nats", "publish", f"{tag}_js.one", 1, None, "ok", "pub-ack"),
            ("nats", "publish", f"{tag}_js.two", 2, None, "ok", "pub-ack"),
            ("nats", "deliver", f"{tag}_js.one", 1, None, "ok", "ack"),
            ("nats", "deliver", f"{tag}_js.two", 2, None, "error", "nak"),
            ("nats", "deliver", f"{tag}_js.two", 2, None, "error", "term"),  # redelivered, terminated
        ]
    )


NATS_OPERATIONS = Counter(
    {
        ("nats", "SUB", "sent"): 4,  # TAG.>, TAG_work (queue group), nats-py's request and pull inboxes
        ("nats", "STREAM.CREATE", "ok"): 1,
        ("nats", "CONSUMER.INFO", "error"): 1,  # nats-py's pull_subscribe looks the durable up first: 404
        ("nats", "CONSUMER.CREATE", "ok"): 1,
        ("nats", "STREAM.INFO", "error"): 1,  # stream not found
        ("nats", "STREAM.DELETE", "ok"): 1,
    }
)


def nats_destinations(tag: str) -> dict[tuple[str, str], tuple[int, int]]:
    return {
        ("nats", f"{tag}.a"): (1, 1),
        ("nats", f"{tag}.b"): (1, 1),
        ("nats", f"{tag}_work"): (1, 1),
        ("nats", f"{tag}.req"): (1, 1),
        ("nats", f"{tag}_nobody"): (1, 0),
        ("nats", f"{tag}_js.one"): (1, 1),
        ("nats", f"{tag}_js.two"): (1, 2),
    }


def check_amqp(found: Facts, tag: str, user: str, server_version: str | None = None) -> None:
    found = found.of("amqp")
    assert found.messages == amqp_messages(tag)
    assert found.operations == AMQP_OPERATIONS
    (session,) = found.sessions
    assert session["User"] == user
    assert session["VirtualHost"] == "/"
    assert session["ClientId"] == f"{tag}-amqp"
    assert session["ServerProduct"] == "RabbitMQ"
    if server_version:
        assert session["ServerVersion"] == server_version
    assert session["ProtocolVersion"] == "0-9-1"
    assert session["Mechanism"] == "PLAIN"
    assert (session["CloseCode"], session["CloseReason"], session["ClosedBy"]) == (
        "200",
        "Normal shutdown",
        "client",
    )
    assert (session["Published"], session["Delivered"]) == ("7", "4")
    (commands,) = found.commands
    assert commands["basic.publish"] == 7 and commands["basic.deliver"] == 2 and commands["basic.get-ok"] == 2
    assert commands["basic.return"] == 1 and commands["basic.ack"] == 2 + 5  # the client's 2, the broker's 5
    assert commands["basic.nack"] == 1 and commands["basic.get-empty"] == 1
    for name, expected in amqp_destinations(tag).items():
        assert found.destinations[name] == expected, name
    refused = [attrs for attrs, _ in found.operation_objects if attrs["Status"] == "error"]
    assert {(a["Operation"], a.get("ReplyCode"), a.get("FailedMethod")) for a in refused} == {
        ("queue.declare", None, None),
        ("channel.close", "404", "queue.declare"),
    }
    assert all(a["Error"].startswith(f"404 NOT_FOUND - no queue '{tag}.missing'") for a in refused)
    returned = [m for m in found.message_objects if m.get("Ack") == "returned"]
    assert [m["Error"] for m in returned] == ["returned: 312 NO_ROUTE"]
    first = next(
        children
        for m, children in zip(found.message_objects, found.message_children, strict=True)
        if m["Size"] == "5"
    )
    assert ("Property", {"Name": "content-type", "Value": "text/plain"}) in first
    assert ("Property", {"Name": "delivery-mode", "Value": "2"}) in first
    assert ("Header", {"Name": "x-request-id", "Value": "r-1"}) in first
    assert ("Header", {"Name": "x-api-key", "Value": "<redacted>"}) in first


def check_mqtt(found: Facts, tag: str, user: str, level: int) -> None:
    found = found.of("mqtt")
    assert found.messages == mqtt_messages(tag)
    assert found.operations == MQTT_OPERATIONS
    (session,) = found.sessions
    assert session["ClientId"] == f"{tag}-mqtt{level}"
    assert session["User"] == user
    assert session["ProtocolVersion"] == {4: "3.1.1", 5: "5.0"}[level]
    assert session["WillTopic"] == f"{tag}/will" and session["WillQoS"] == "1"
    assert session["ConnectCode"] == "0" and session["ClosedBy"] == "client"
    if level == 5:
        assert (session["CloseCode"], session["CloseReason"]) == ("0", "normal disconnection")
    (commands,) = found.commands
    assert {name: commands.get(name, 0) for name in MQTT_COMMANDS} == MQTT_COMMANDS
    subscribe = next(
        children for attrs, children in found.operation_objects if attrs["Operation"] == "SUBSCRIBE"
    )
    assert subscribe == [
        ("Subscription", {"Topic": f"{tag}/#", "QoS": "2", "Granted": "2"}),
        ("Subscription", {"Topic": f"{tag}/solo", "QoS": "0", "Granted": "0"}),
    ]
    for name, expected in mqtt_destinations(tag).items():
        assert found.destinations[name] == expected, name
    retained = [m for m in found.message_objects if m.get("Retain") == "true"]
    assert [(m["Destination"], m["Size"]) for m in retained] == [(f"{tag}/b", "4"), (f"{tag}/b", "0")]
    if level == 5:
        first = [
            c for m, c in zip(found.message_objects, found.message_children, strict=True) if m["Size"] == "5"
        ]
        assert all(("Header", {"Name": "api-key", "Value": "<redacted>"}) in c for c in first)
        assert all(("Header", {"Name": "trace", "Value": "t-1"}) in c for c in first)
        assert all(("Property", {"Name": "content-type", "Value": "text/plain"}) in c for c in first)


def check_nats(found: Facts, tag: str, user: str) -> None:
    found = found.of("nats")
    assert found.messages == nats_messages(tag)
    pulls = found.operations.pop(("nats", "CONSUMER.MSG.NEXT", "ok"), 0)
    assert found.operations == NATS_OPERATIONS
    (session,) = found.sessions
    assert session["User"] == user and session["Auth"] == "password"
    assert session["ClientId"] == f"{tag}-nats"
    assert session["ServerProduct"] == "nats-server" and session["JetStream"] == "true"
    for name, expected in nats_destinations(tag).items():
        assert found.destinations[name] == expected, name
    acks = {m["Destination"]: m for m in found.message_objects if m.get("Ack") == "pub-ack"}
    assert {name: (m["Stream"], m["Sequence"]) for name, m in acks.items()} == {
        f"{tag}_js.one": (f"{tag}_S", "1"),
        f"{tag}_js.two": (f"{tag}_S", "2"),
    }
    delivered = [m for m in found.message_objects if m.get("Consumer") == f"{tag}_c"]
    assert sorted((m["StreamSequence"], m["Delivered"], m["Ack"]) for m in delivered) == [
        ("1", "1", "ack"),
        ("2", "1", "nak"),
        ("2", "2", "term"),
    ]
    by_operation = {}
    for attrs, children in found.operation_objects:
        by_operation.setdefault(attrs["Operation"], []).append((attrs, children))
    ((create, create_children),) = by_operation["STREAM.CREATE"]
    assert create["Stream"] == f"{tag}_S"
    assert ("Argument", {"Name": "subjects", "Value": f"{tag}_js.>"}) in create_children
    ((info, _),) = by_operation["STREAM.INFO"]
    assert (info["ErrorCode"], info["JsErrorCode"], info["Error"]) == ("404", "10059", "stream not found")
    # fetch(2) and fetch(1) bring their messages; the last fetch ends with 408 (its request expired) or,
    # when nats-py gave up first and deleted the stream, 409 Consumer Deleted. nats-py asks first with
    # no_wait: when the redelivery is not ready yet, the broker says 404 and nats-py asks again.
    ends = sorted(
        attrs["Messages"] + ":" + attrs.get("End", "") for attrs, _ in by_operation["CONSUMER.MSG.NEXT"]
    )
    assert len(ends) == pulls
    ends = [end.replace("0:409 Consumer Deleted", "0:408 Request Timeout") for end in ends]
    assert [end for end in ends if end != "0:404 No Messages"] == ["0:408 Request Timeout", "1:", "2:"], ends
    hpub = next(
        c
        for m, c in zip(found.message_objects, found.message_children, strict=True)
        if m["Destination"] == f"{tag}.b"
    )
    assert hpub == [
        ("Header", {"Name": "X-Trace", "Value": "t-1"}),
        ("Header", {"Name": "Authorization", "Value": "<redacted>"}),
    ]
    queue = [m for m in found.message_objects if m.get("Queue") == "workers"]
    assert [m["Destination"] for m in queue] == [f"{tag}_work"]


def check_mosquitto(found: Facts, tag: str) -> None:
    """The mosquitto_pub / mosquitto_sub script (captures/record_brokers.py's mosquitto_script)."""
    found = found.of("mqtt")
    assert found.messages == Counter(
        [
            ("mqtt", "publish", f"{tag}/ready", 1, 1, "ok", "puback"),
            ("mqtt", "deliver", f"{tag}/ready", 1, 1, "ok", "puback"),  # retained, to the new subscriber
            ("mqtt", "publish", f"{tag}/x", 3, 0, "unacknowledged", None),
            ("mqtt", "deliver", f"{tag}/x", 3, 0, "unacknowledged", None),
            ("mqtt", "publish", f"{tag}/y", 3, 1, "ok", "puback"),
            ("mqtt", "deliver", f"{tag}/y", 3, 1, "ok", "puback"),
            ("mqtt", "publish", f"{tag}/z", 5, 2, "ok", "pubcomp"),
            ("mqtt", "deliver", f"{tag}/z", 5, 1, "ok", "puback"),  # granted QoS 1: delivered at 1
            ("mqtt", "publish", f"{tag}/ready", 0, 1, "ok", "puback"),  # the retained message cleared
        ]
    )
    assert found.operations == Counter({("mqtt", "SUBSCRIBE", "ok"): 1})
    (subscribe,) = [children for attrs, children in found.operation_objects]
    assert subscribe == [("Subscription", {"Topic": f"{tag}/#", "QoS": "1", "Granted": "1"})]
    sessions = {s["ClientId"]: s for s in found.sessions}
    assert sorted(sessions) == sorted(f"{tag}-{n}" for n in ("r", "sub", "p0", "p1", "p2", "c"))
    assert sessions[f"{tag}-p2"]["User"] == "bob"
    assert all(s["ProtocolVersion"] == "3.1.1" and s["ClosedBy"] == "client" for s in sessions.values())
    retained = [m for m in found.message_objects if m.get("Retain") == "true"]
    assert sorted((m["Direction"], m["Size"]) for m in retained) == [
        ("deliver", "1"),
        ("publish", "0"),
        ("publish", "1"),
    ]
    assert found.destinations[("mqtt", f"{tag}/ready")] == (2, 1)
    assert found.destinations[("mqtt", f"{tag}/z")] == (1, 1)


def unique_tag(prefix: str = "dockit_t") -> str:
    return f"{prefix}_{os.getpid()}_{re.sub(r'[^0-9a-z]', '', os.urandom(4).hex())}"
