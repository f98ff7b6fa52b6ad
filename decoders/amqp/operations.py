"""A channel's requests (declare, bind, consume, qos, tx...) paired with their `-ok` replies, in
order, and what a channel's close does to what still waits on it."""

from __future__ import annotations

from collections import deque
from typing import Any

from decoders.amqp.state import (
    MAX_QUEUED_REQUESTS,
    OPERATIONS,
    REPLY_SHOWN,
    SHOWN,
    ChannelState,
    flag,
    reply_error,
    text_of,
)
from decoders.api import Direction
from decoders.measured_frames import MeasuredFrame as Frame
from decoders.messaging import (
    STATUS_ERROR,
    STATUS_OK,
    STATUS_SENT,
    STATUS_UNKNOWN,
    settle,
)
from decoders.records import BrokerOperation, Output
from protocols import amqp as p


class OperationsMixin:
    """A channel's requests (declare, bind, consume, qos, tx...) paired with their `-ok` replies, in Part of `AmqpDecoder`."""

    def _operation(
        self,
        method: p.Method,
        state: ChannelState,
        frame: Frame,
        truncated: bool,
        status: str = STATUS_UNKNOWN,
        extra: dict[str, Any] | None = None,
    ) -> BrokerOperation:
        attrs: dict[str, Any] = {"Channel": state.number}
        arguments = []
        for key, value in method.arguments.items():
            if key in SHOWN:
                attrs[SHOWN[key]] = flag(value)
            elif key == "arguments" and value:
                arguments += [(name, text_of(v)) for name, v in value.items()]
        if method.arguments.get("no-wait"):
            attrs["NoWait"] = "true"
        attrs.update(extra or {})
        return BrokerOperation(
            protocol="amqp",
            process=frame.pid,
            session=self.session.session_id,
            operation=method.name,
            time=frame.time,
            status=status,
            truncated=truncated,
            extra=attrs,
            arguments=arguments,
        )

    def _request(
        self, method: p.Method, state: ChannelState, frame: Frame, truncated: bool, out: list[Output]
    ) -> None:
        name = method.name
        if name == "basic.get":
            state.gets.append((method.arguments.get("queue"), bool(method.arguments.get("no-ack"))))
            if len(state.gets) > MAX_QUEUED_REQUESTS:
                state.gets.popleft()
        operation = self._operation(method, state, frame, truncated)
        if name == "basic.consume":
            tag = method.arguments.get("consumer-tag") or ""
            state.consumers[tag] = (method.arguments.get("queue"), bool(method.arguments.get("no-ack")))
        if name == "confirm.select":
            state.confirm = True
        if method.arguments.get("no-wait"):
            if name == "tx.commit":
                self._commit(state, frame.time, out)
            out.append(settle(operation, STATUS_SENT, None))
            return
        state.requests.append((name, operation))
        if len(state.requests) > MAX_QUEUED_REQUESTS:
            out.append(state.requests.popleft()[1])

    def _reply(
        self,
        method: p.Method,
        state: ChannelState,
        direction: Direction,
        frame: Frame,
        truncated: bool,
        out: list[Output],
    ) -> None:
        name = method.name
        match = next(
            (i for i, (request, _) in enumerate(state.requests) if name in OPERATIONS.get(request, ())), None
        )
        if match is None:  # its request came before the trace began
            if name == "basic.get-ok":
                self._content_method(method, state, direction, frame, truncated, out)
            return
        for _ in range(match):  # requests the broker answered nothing to: their replies were lost
            out.append(state.requests.popleft()[1])
        request, operation = state.requests.popleft()
        for key, value in method.arguments.items():
            if key in REPLY_SHOWN and value not in (None, ""):
                operation.extra[REPLY_SHOWN[key]] = value
        if name == "basic.consume-ok":
            tag = method.arguments.get("consumer-tag")
            if tag and "" in state.consumers:  # the broker named a consumer the client left unnamed
                state.consumers[tag] = state.consumers.pop("")
        elif name == "tx.select-ok":
            state.transaction = True
        elif name == "tx.commit-ok":
            self._commit(state, frame.time, out)
        elif name == "tx.rollback-ok":
            self._rollback(state, frame.time, out)
        elif name == "channel.flow-ok":
            operation.extra["Active"] = flag(method.arguments.get("active"))
        elif name == "basic.get-empty":
            if state.gets:
                state.gets.popleft()
            out.append(settle(operation, "empty", frame.time))
            return
        elif name == "basic.get-ok":
            out.append(settle(operation, STATUS_OK, frame.time))  # the request, and the message it got
            self._content_method(method, state, direction, frame, truncated, out)
            return
        out.append(settle(operation, STATUS_OK, frame.time))

    # -- channels closing -------------------------------------------------------------------------------
    def _channel_close(
        self, method: p.Method, state: ChannelState, from_client: bool, frame: Frame, out: list[Output]
    ) -> None:
        args = method.arguments
        code, text = args.get("reply-code"), args.get("reply-text")
        extra: dict[str, Any] = {
            "ReplyCode": code,
            "ReplyText": text,
            "By": "client" if from_client else "server",
        }
        if args.get("class-id"):
            extra["FailedMethod"] = p.method_name(args["class-id"], args.get("method-id") or 0)
        failed = code not in (None, 200)
        operation = self._operation(method, state, frame, frame.cut or not method.complete, extra=extra)
        if failed:
            operation.error = reply_error(code, text)
            self._fail_channel(state, reply_error(code, text), frame.time, out)
        state.requests.append(("channel.close", operation))

    def _channel_closed(self, state: ChannelState, time: float | None, out: list[Output]) -> None:
        index = next((i for i, (request, _) in enumerate(state.requests) if request == "channel.close"), None)
        if index is not None:
            _, operation = state.requests[index]
            del state.requests[index]
            out.append(settle(operation, STATUS_ERROR if operation.error else STATUS_OK, time))
        self._flush_channel(state, out)
        self.channels.pop(state.number, None)

    def _fail_channel(self, state: ChannelState, why: str, time: float | None, out: list[Output]) -> None:
        """The broker closed the channel (or the connection) with an error: what waited on it failed."""
        for request, operation in list(state.requests):
            if request != "channel.close":
                out.append(settle(operation, STATUS_ERROR, time, error=why))
        state.requests = deque(r for r in state.requests if r[0] == "channel.close")
        for record in state.unconfirmed.drain():
            out.append(settle(record, STATUS_ERROR, time, error=f"channel closed: {why}"))
        for record in state.tx_publishes:
            out.append(settle(record, STATUS_ERROR, time, error=f"channel closed: {why}"))
        state.tx_publishes.clear()

    def _flush_channel(self, state: ChannelState, out: list[Output]) -> None:
        """What still waits on a channel that is gone: reported as it stands (status unknown)."""
        for _, operation in state.requests:
            out.append(operation)
        state.requests.clear()
        for content in list(state.content.values()):
            content.record.truncated |= not content.header_seen
            self._complete(content, state, None, out)
        state.content.clear()
        out += state.unconfirmed.drain()
        out += state.unacked.drain()
        out += state.tx_publishes
        state.tx_publishes.clear()
