"""MQTT 3.1, 3.1.1 and 5.0 connections (Mosquitto): the session, every message published and
delivered with its QoS handshake, and the subscriptions with what the broker granted.

One decoder per connection, fed both directions. Roles come from content: the side that sends CONNECT,
SUBSCRIBE, UNSUBSCRIBE or PINGREQ is the client; CONNACK, SUBACK, UNSUBACK or PINGRESP mark the
server (`ChannelInfo.listening` only when nothing has told yet). Packets come from
`decoders.measured_frames.MeasuredReader` (the fixed header's remaining length); the protocol level the CONNECT
names (5 adds properties and reason codes) decides how the rest is read.

What comes out:
- `BrokerSession` at close: client id, user name (the CONNECT's password and any MQTT 5 authentication
  data make that call a `Secret`), protocol version, keep alive, clean start, will topic, the
  CONNACK's result, MQTT 5 properties of both sides, how the connection ended (DISCONNECT and its
  reason code, or a refused CONNACK), and how many of each packet type crossed it.
- `BrokerMessage` per PUBLISH: `publish` from the client, `deliver` from the server, with topic (MQTT 5
  topic aliases resolved), QoS, retain, dup, packet id, payload size, MQTT 5 properties (user
  properties as headers, redacted by name). QoS 0 is `unacknowledged`; QoS 1 settles with PUBACK;
  QoS 2 with PUBREC, PUBREL and PUBCOMP (`Ack` names the last step seen); a reason code of 0x80 or more
  (MQTT 5) is an error.
- `BrokerOperation` per SUBSCRIBE and UNSUBSCRIBE, matched by packet id with SUBACK or UNSUBACK:
  a `Subscription` child per filter with the QoS asked and what was granted (or the failure).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from decoders.api import ChannelInfo, Chunk, Decoder, Direction
from decoders.measured_frames import MeasuredFrame as Frame
from decoders.measured_frames import MeasuredReader
from decoders.messaging import STATUS_ERROR, STATUS_OK, STATUS_UNACKNOWLEDGED, Pending, settle
from decoders.records import (
    MESSAGE_DELIVER,
    MESSAGE_PUBLISH,
    Annotation,
    BrokerMessage,
    BrokerOperation,
    BrokerSession,
    CimChild,
    Output,
    Secret,
)
from protocols import mqtt as p

MAX_KEEP = 64 * 1024  # packet bytes kept: a PUBLISH's topic and properties come first, the payload is counted
MAX_RESYNC_PACKET = 64 * 1024
PORTS = frozenset({1883, 8883})
# MQTT 5 properties that describe the session, and the session attribute each becomes.
SESSION_PROPERTIES = frozenset(
    {
        "session-expiry-interval",
        "receive-maximum",
        "maximum-packet-size",
        "topic-alias-maximum",
        "request-response-information",
        "request-problem-information",
        "authentication-method",
        "assigned-client-identifier",
        "server-keep-alive",
        "maximum-qos",
        "retain-available",
        "wildcard-subscription-available",
        "subscription-identifier-available",
        "shared-subscription-available",
        "response-information",
        "server-reference",
        "reason-string",
    }
)


def camel(name: str) -> str:
    """`session-expiry-interval` -> `SessionExpiryInterval`."""
    return "".join(part.capitalize() for part in name.split("-"))


def message_properties(
    properties: list[tuple[str, Any]],
) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
    """A PUBLISH's MQTT 5 properties: (protocol properties, user properties as headers)."""
    shown, headers = [], []
    for name, value in properties:
        if name == "user-property" and isinstance(value, tuple):
            headers.append(value)
        elif name != "topic-alias":
            shown.append((name, value))
    return shown, headers


class MqttDecoder(Decoder):
    name = "mqtt"
    ports = PORTS

    def __init__(self, channel: ChannelInfo) -> None:
        super().__init__(channel)
        self.readers = {d: self._reader() for d in Direction}
        self.client: Direction | None = None
        self.level = 4  # until a CONNECT says otherwise
        self.session = BrokerSession(
            session_id=channel.channel_id, protocol="mqtt", process=channel.pid, server=channel.server
        )
        self.started = False
        # In-flight QoS 1 and 2 messages, by the direction that published them, then packet id.
        self.in_flight: dict[Direction, Pending[int, BrokerMessage]] = {d: Pending() for d in Direction}
        self.requests: Pending[int, BrokerOperation] = Pending()  # SUBSCRIBE, UNSUBSCRIBE by packet id
        self.aliases: dict[Direction, dict[int, str]] = {d: {} for d in Direction}  # MQTT 5 topic aliases
        self.done = False

    @staticmethod
    def _reader() -> MeasuredReader:
        return MeasuredReader(p.measure_packet, _plausible, max_keep=MAX_KEEP, max_frame=p.MAX_REMAINING + 5)

    @classmethod
    def score(cls, data: bytes, direction: Direction, channel: ChannelInfo) -> int:
        if p.is_connect(data):
            return 100
        if not any(port in PORTS for port in channel.ports):
            return 0  # anything else is a byte and a length: evidence on MQTT's ports only
        size = p.measure_packet(data)
        return 30 if size is not None and size == len(data) and _plausible(bytearray(data), 0) else 0

    def feed(self, chunk: Chunk) -> Sequence[Output]:
        if self.done:
            return ()
        if not self.started:
            self.started = True
            self.session.process, self.session.start = chunk.pid, chunk.time
        out: list[Output] = []
        for frame in self.readers[chunk.direction].feed(
            chunk.data, chunk.missing, chunk.time, chunk.pid, chunk.call_index
        ):
            self._packet(frame, chunk.direction, out)
        return out

    def _packet(self, frame: Frame, direction: Direction, out: list[Output]) -> None:
        data = frame.data
        length = p.read_remaining_length(data, 1)  # the frame reader measured it: it is well formed
        if not isinstance(length, tuple):
            return
        header = 1 + length[1]
        kind, flags = data[0] >> 4, data[0] & 0x0F
        packet = p.parse_packet(kind, flags, data[header:], self.level, frame.size - header)
        name = p.PACKET_NAMES.get(kind, "reserved")
        commands = self.session.commands
        commands[name] = commands.get(name, 0) + 1
        if self.client is None:
            if kind in p.CLIENT_PACKETS:
                self.client = direction
            elif kind in p.SERVER_PACKETS:
                self.client = direction.reverse()
        from_client = direction is (
            self.client or (Direction.IN if self.channel.listening else Direction.OUT)
        )
        truncated = frame.cut or not packet.complete
        out.append(Annotation(frame.call_index, _annotation(name, packet)))
        if isinstance(packet, p.Connect):
            self._connect(packet, frame, out)
        elif isinstance(packet, p.ConnAck):
            self._connack(packet)
        elif isinstance(packet, p.Publish):
            self._publish(packet, direction, from_client, frame, truncated, out)
        elif isinstance(packet, p.PacketAck):
            self._publish_ack(packet, direction, frame, out)
        elif isinstance(packet, (p.Subscribe, p.Unsubscribe)):
            self._subscribe(packet, frame, truncated, out)
        elif isinstance(packet, p.SubAck):
            self._suback(packet, frame, out)
        elif isinstance(packet, p.Disconnect):
            self._disconnect(packet, from_client, frame, out)

    # -- session ---------------------------------------------------------------------------------------
    def _connect(self, packet: p.Connect, frame: Frame, out: list[Output]) -> None:
        session = self.session
        if packet.level in p.LEVELS:
            self.level = packet.level
        session.protocol_version = p.LEVELS.get(packet.level, str(packet.level))
        session.client_id = packet.client_id
        session.user = packet.username
        session.extra.update(
            {
                "KeepAlive": packet.keep_alive,
                "CleanStart": "true" if packet.clean_start else "false",
                "WillTopic": packet.will_topic,
                "WillQoS": packet.will_qos,
                "WillRetain": "true" if packet.will_retain else None,
            }
        )
        secret = packet.has_password or not packet.complete
        for name, value in packet.properties:
            if name == "authentication-data":
                secret = True
            elif name in SESSION_PROPERTIES:
                session.extra[camel(name)] = value
        if secret:  # a password, auth data, or a CONNECT cut before we could tell: hide that call
            out.append(Secret(frame.call_index))

    def _connack(self, packet: p.ConnAck) -> None:
        session = self.session
        session.extra["SessionPresent"] = "true" if packet.session_present else None
        session.extra["ConnectCode"] = packet.code
        session.extra["ConnectReason"] = p.reason_text(packet.code, self.level, p.CONNACK)
        if p.is_failure(packet.code, self.level, p.CONNACK):
            session.close_code = packet.code
            session.close_reason = p.reason_text(packet.code, self.level, p.CONNACK)
            session.extra["ClosedBy"] = "server"
        for name, value in packet.properties:
            if name == "assigned-client-identifier":
                session.client_id = session.client_id or value
                session.extra["AssignedClientId"] = value
            elif name in SESSION_PROPERTIES and name != "authentication-method":
                session.extra["Server" + camel(name)] = value

    def _disconnect(self, packet: p.Disconnect, from_client: bool, frame: Frame, out: list[Output]) -> None:
        session = self.session
        if packet.kind == p.AUTH:
            session.extra["AuthReason"] = p.reason_text(packet.code, self.level)
            if any(name == "authentication-data" for name, _ in packet.properties):
                out.append(Secret(frame.call_index))
            return
        session.close_code = packet.code
        session.close_reason = (
            p.reason_text(packet.code, self.level, p.DISCONNECT) if packet.code is not None else None
        )
        session.extra["ClosedBy"] = "client" if from_client else "server"
        session.end = frame.time
        for name, value in packet.properties:
            if name == "reason-string":
                session.extra["DisconnectReasonString"] = value

    # -- messages --------------------------------------------------------------------------------------
    def _publish(
        self,
        packet: p.Publish,
        direction: Direction,
        from_client: bool,
        frame: Frame,
        truncated: bool,
        out: list[Output],
    ) -> None:
        topic = packet.topic
        alias = next((value for name, value in packet.properties if name == "topic-alias"), None)
        aliases = self.aliases[direction]
        if isinstance(alias, int):
            if topic:
                if len(aliases) < 65536:
                    aliases[alias] = topic
            else:
                topic = aliases.get(alias)
        properties, headers = message_properties(packet.properties)
        extra: dict[str, Any] = {
            "PacketId": packet.packet_id,
            "Retain": "true" if packet.retain else None,
            "Dup": "true" if packet.dup else None,
            "TopicAlias": alias,
        }
        record = BrokerMessage(
            protocol="mqtt",
            process=frame.pid,
            session=self.session.session_id,
            direction=MESSAGE_PUBLISH if from_client else MESSAGE_DELIVER,
            destination=topic if topic is not None else "",
            time=frame.time,
            size=packet.payload_size,
            qos=packet.qos,
            truncated=truncated,
            extra={k: v for k, v in extra.items() if v is not None},
            properties=properties,
            headers=headers,
        )
        if from_client:
            self.session.published += 1
        else:
            self.session.delivered += 1
        if packet.qos == 0 or packet.packet_id is None:
            out.append(settle(record, STATUS_UNACKNOWLEDGED, None))
            return
        out += self.in_flight[direction].add(packet.packet_id, record)

    def _publish_ack(
        self, packet: p.PacketAck, direction: Direction, frame: Frame, out: list[Output]
    ) -> None:
        """PUBACK, PUBREC and PUBCOMP come from the receiver; PUBREL from the publisher."""
        if packet.packet_id is None:
            return
        publisher = direction if packet.kind == p.PUBREL else direction.reverse()
        flights = self.in_flight[publisher]
        record = flights.items.get(packet.packet_id)
        if record is None:
            return
        step = p.PACKET_NAMES[packet.kind].lower()
        failed = p.is_failure(packet.code, self.level)
        if failed:
            flights.pop(packet.packet_id)
            out.append(
                settle(
                    record, STATUS_ERROR, frame.time, ack=step, error=p.reason_text(packet.code, self.level)
                )
            )
            return
        if packet.kind == p.PUBACK or packet.kind == p.PUBCOMP:
            flights.pop(packet.packet_id)
            out.append(settle(record, STATUS_OK, frame.time, ack=step))
            return
        record.ack = step  # PUBREC, PUBREL: the QoS 2 handshake goes on
        if packet.code:  # MQTT 5 "no matching subscribers" (0x10) is a success that says something
            record.extra["ReasonCode"] = packet.code
            record.extra["Reason"] = p.reason_text(packet.code, self.level)

    # -- subscriptions ---------------------------------------------------------------------------------
    def _subscribe(
        self, packet: p.Subscribe | p.Unsubscribe, frame: Frame, truncated: bool, out: list[Output]
    ) -> None:
        if isinstance(packet, p.Subscribe):
            children = [
                CimChild(
                    "Subscription",
                    tuple(
                        (k, v)
                        for k, v in (
                            ("Topic", s.topic),
                            ("QoS", s.qos),
                            ("NoLocal", "true" if s.no_local else None),
                            ("RetainAsPublished", "true" if s.retain_as_published else None),
                            ("RetainHandling", s.retain_handling or None),
                        )
                        if v is not None
                    ),
                )
                for s in packet.subscriptions
            ]
            operation_name = "SUBSCRIBE"
        else:
            children = [CimChild("Subscription", (("Topic", topic),)) for topic in packet.topics]
            operation_name = "UNSUBSCRIBE"
        properties, headers = message_properties(packet.properties)
        operation = BrokerOperation(
            protocol="mqtt",
            process=frame.pid,
            session=self.session.session_id,
            operation=operation_name,
            time=frame.time,
            truncated=truncated,
            extra={"PacketId": packet.packet_id},
            arguments=properties + headers,
            children=children,
        )
        if packet.packet_id is None:
            out.append(operation)
            return
        out += self.requests.add(packet.packet_id, operation)

    def _suback(self, packet: p.SubAck, frame: Frame, out: list[Output]) -> None:
        if packet.packet_id is None:
            return
        operation = self.requests.pop(packet.packet_id)
        if operation is None:
            return
        errors = []
        children = []
        for index, child in enumerate(operation.children):
            code = packet.codes[index] if index < len(packet.codes) else None
            attrs = child.attrs
            if code is not None:
                failed = p.is_failure(code, self.level, packet.kind)
                if packet.kind == p.SUBACK and not failed:
                    attrs += (("Granted", code),)
                else:
                    reason = p.reason_text(code, self.level, packet.kind)
                    attrs += (("Result", reason),)
                    if failed:
                        errors.append(f"{dict(child.attrs).get('Topic')}: {reason}")
            children.append(CimChild(child.tag, attrs))
        operation.children = children
        reason = next((value for name, value in packet.properties if name == "reason-string"), None)
        if reason:
            operation.extra["ReasonString"] = reason
        out.append(
            settle(
                operation, STATUS_ERROR if errors else STATUS_OK, frame.time, error="; ".join(errors) or None
            )
        )

    def reading_since(self) -> int | None:
        """Where an unfinished packet began: a CONNECT split across writes is still hidden whole."""
        calls = [c for c in (r.reading_since() for r in self.readers.values()) if c is not None]
        return min(calls) if calls else None

    def close(self, time: float | None) -> Sequence[Output]:
        if self.done:
            return ()
        self.done = True
        out: list[Output] = []
        for flights in self.in_flight.values():
            out += flights.drain()
        out += self.requests.drain()
        resyncs = sum(reader.resyncs for reader in self.readers.values())
        if resyncs:
            self.session.extra["Resyncs"] = resyncs
        if self.session.commands:
            out.append(self.session)
        return out


def _plausible(buf: bytearray, pos: int) -> bool | None:
    """A whole packet whose header and first fields fit its type, followed by the end of what was read
    or by another packet's first byte: where a stream out of step takes up again."""
    size = p.measure_packet(buf, pos)
    if size is None:
        return None
    if size < 2 or size > MAX_RESYNC_PACKET:
        return False
    if pos + size > len(buf):
        return None
    kind = buf[pos] >> 4
    header = 1 + _length_bytes(buf, pos)
    remaining = size - header
    if kind in (p.PINGREQ, p.PINGRESP) and remaining != 0:
        return False
    if kind in (p.PUBACK, p.PUBREC, p.PUBREL, p.PUBCOMP, p.UNSUBACK) and remaining < 2:
        return False
    if kind in (p.PUBLISH, p.SUBSCRIBE, p.UNSUBSCRIBE, p.CONNECT, p.SUBACK, p.CONNACK) and remaining < 2:
        return False
    if kind == p.PUBLISH and int.from_bytes(buf[pos + header : pos + header + 2], "big") > remaining - 2:
        return False
    if pos + size < len(buf):
        return p.measure_packet(buf, pos + size) != -1
    return True


def _length_bytes(buf: bytearray, pos: int) -> int:
    length = p.read_remaining_length(buf, pos + 1)
    return length[1] if isinstance(length, tuple) else 0


def _annotation(name: str, packet: p.Packet) -> str:
    parts = [f"mqtt {name}"]
    if isinstance(packet, p.Connect):
        parts += [f"client_id={packet.client_id}", f"level={packet.level}"]
        if packet.username is not None:
            parts.append(f"user={packet.username}")
    elif isinstance(packet, p.Publish):
        parts += [f"{packet.topic}", f"qos={packet.qos}"]
        if packet.packet_id is not None:
            parts.append(f"id={packet.packet_id}")
        if packet.payload_size is not None:
            parts.append(f"({packet.payload_size} B)")
    elif (
        isinstance(packet, (p.PacketAck, p.SubAck, p.Subscribe, p.Unsubscribe))
        and packet.packet_id is not None
    ):
        parts.append(f"id={packet.packet_id}")
        if isinstance(packet, p.Subscribe):
            parts += [s.topic for s in packet.subscriptions]
        if isinstance(packet, p.Unsubscribe):
            parts += packet.topics
    elif isinstance(packet, (p.ConnAck, p.Disconnect)) and packet.code is not None:
        parts.append(f"code={packet.code}")
    return " ".join(parts)[:200]
