"""Messages: basic.publish, basic.deliver, basic.get-ok and basic.return, each completed by its
content header (size, properties, headers) and body frames; a finished message goes to its
acknowledgement's wait, or out."""

from __future__ import annotations

from typing import Any

from decoders.amqp.state import ChannelState, Content, destination, reply_error, text_of
from decoders.api import Direction
from decoders.measured_frames import MeasuredFrame as Frame
from decoders.messaging import (
    STATUS_ERROR,
    STATUS_UNACKNOWLEDGED,
    settle,
)
from decoders.records import MESSAGE_DELIVER, MESSAGE_PUBLISH, BrokerMessage, BrokerOperation, Output
from protocols import amqp as p


class ContentMixin:
    """Messages: basic.publish, basic.deliver, basic.get-ok and basic.return, each completed by its Part of `AmqpDecoder`."""

    def _content_method(
        self,
        method: p.Method,
        state: ChannelState,
        direction: Direction,
        frame: Frame,
        truncated: bool,
        out: list[Output],
    ) -> None:
        args = method.arguments
        name = method.name
        extra: dict[str, Any] = {
            "Exchange": args.get("exchange"),
            "RoutingKey": args.get("routing-key"),
            "Channel": state.number,
        }
        no_ack = False
        if name == "basic.publish":
            if args.get("mandatory"):
                extra["Mandatory"] = "true"
        elif name == "basic.deliver":
            tag = args.get("consumer-tag")
            queue, no_ack = state.consumers.get(tag or "", (None, False))
            extra.update({"Queue": queue, "ConsumerTag": tag, "DeliveryTag": args.get("delivery-tag")})
        elif name == "basic.get-ok":
            queue, no_ack = state.gets.popleft() if state.gets else (None, False)
            extra.update(
                {
                    "Queue": queue,
                    "DeliveryTag": args.get("delivery-tag"),
                    "MessageCount": args.get("message-count"),
                }
            )
        elif name == "basic.return":
            extra.update({"ReplyCode": args.get("reply-code"), "ReplyText": args.get("reply-text")})
        if args.get("redelivered"):
            extra["Redelivered"] = "true"
        record = BrokerMessage(
            protocol="amqp",
            process=frame.pid,
            session=self.session.session_id,
            direction=MESSAGE_PUBLISH if name == "basic.publish" else MESSAGE_DELIVER,
            destination=destination(args.get("exchange"), args.get("routing-key")),
            time=frame.time,
            truncated=truncated,
            extra={k: v for k, v in extra.items() if v is not None},
        )
        pending = state.content.pop(direction, None)
        if pending is not None:  # the last one's body never came whole (lost by the tracer)
            pending.record.truncated |= not pending.header_seen  # its size is known from its header
            self._complete(pending, state, frame.time, out)
        content = Content(record, mandatory=bool(args.get("mandatory")), no_ack=no_ack)
        if name == "basic.return":
            content.record.extra["Returned"] = "true"
        state.content[direction] = content

    def _content_header(
        self, header: p.ContentHeader, number: int, direction: Direction, frame: Frame, out: list[Output]
    ) -> None:
        state = self._state(number)
        content = state.content.get(direction)
        if content is None or content.header_seen:
            return
        content.header_seen = True
        content.body_size = header.body_size
        content.record.size = header.body_size
        properties = header.properties
        for key, value in properties.items():
            if key == "headers" and isinstance(value, dict):
                content.record.headers += [(name, text_of(v)) for name, v in value.items()]
            elif key != "headers":
                content.record.properties.append((key, text_of(value)))
        if frame.cut or not header.complete:
            content.record.truncated = True
        if header.body_size == 0:
            state.content.pop(direction, None)
            self._complete(content, state, frame.end_time, out)

    def _body(self, size: int, number: int, direction: Direction, frame: Frame, out: list[Output]) -> None:
        state = self.channels.get(number)
        content = state.content.get(direction) if state else None
        if state is None or content is None or not content.header_seen:
            return
        content.received += size
        if content.body_size is not None and content.received >= content.body_size:
            state.content.pop(direction, None)
            self._complete(content, state, frame.end_time, out)

    def _complete(self, content: Content, state: ChannelState, time: float | None, out: list[Output]) -> None:
        record = content.record
        if record.direction == MESSAGE_PUBLISH:
            self.session.published += 1
            if state.transaction:
                record.extra["Transaction"] = "open"
                state.tx_publishes.append(record)
                if len(state.tx_publishes) > 10_000:
                    out.append(state.tx_publishes.pop(0))
            elif state.confirm:
                state.publish_sequence += 1
                record.extra["PublishSequence"] = state.publish_sequence
                out += state.unconfirmed.add(state.publish_sequence, record)
            else:
                out.append(settle(record, STATUS_UNACKNOWLEDGED, None))
            return
        if record.extra.get("Returned"):
            self._returned(record, state, out)
            return
        self.session.delivered += 1
        tag = record.extra.get("DeliveryTag")
        if content.no_ack or not isinstance(tag, int):
            record.extra["NoAck"] = "true" if content.no_ack else None
            out.append(settle(record, STATUS_UNACKNOWLEDGED, None, ack="auto" if content.no_ack else None))
            return
        out += state.unacked.add(tag, record)

    def _returned(self, returned: BrokerMessage, state: ChannelState, out: list[Output]) -> None:
        """basic.return: the broker could not route a mandatory publish. In confirm mode its basic.ack
        follows; the publish it matches (same exchange and routing key, oldest first) is marked."""
        why = reply_error(returned.extra.get("ReplyCode"), returned.extra.get("ReplyText"))
        for sequence, record in state.unconfirmed.items.items():
            if (
                record.destination == returned.destination
                and sequence not in state.returned
                and record.extra.get("Mandatory")
            ):
                state.returned[sequence] = why
                return
        operation = BrokerOperation(
            protocol="amqp",
            process=returned.process,
            session=returned.session,
            operation="basic.return",
            time=returned.time,
            status=STATUS_ERROR,
            error=why,
            extra={
                k: returned.extra.get(k)
                for k in ("Channel", "Exchange", "RoutingKey", "ReplyCode", "ReplyText")
            },
        )
        operation.extra["Size"] = returned.size
        out.append(operation)
