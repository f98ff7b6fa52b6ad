"""NATS connections (nats-server, JetStream included): the session, every message published and
delivered, subscriptions, and JetStream API calls with their replies.

One decoder per connection, fed both directions. Roles come from content: INFO, MSG, HMSG, +OK and
-ERR come from the server; CONNECT, PUB, HPUB, SUB and UNSUB from the client
(`ChannelInfo.listening` only when nothing has told yet). Each direction is read as control lines,
and after PUB, HPUB, MSG or HMSG a payload of the size the line names, then CRLF: bytes the tracer
lost inside a payload are skipped exactly; elsewhere the stream takes up again at the next line that
starts with an operation.

What comes out:
- `BrokerSession` at close: the server's name, id and version and whether it offers JetStream (INFO),
  the client's name, language and version, the user and which kinds of credentials it sent (never
  their values: the call carrying a CONNECT with pass, auth_token, sig or jwt is a `Secret`), the last
  -ERR, and how many of each operation crossed the connection.
- `BrokerMessage` per PUB or HPUB (`publish`) and per MSG or HMSG (`deliver`): subject, reply subject,
  payload size, headers (redacted by name). A publish with a reply subject settles when the reply
  comes: a JetStream publish acknowledgement (`{"stream":..,"seq":..}`, `Ack="pub-ack"`, with Stream
  and Sequence), a JetStream error, the server's `503` no-responders status, or any other reply
  (`Ack="reply"`). A message delivered by a JetStream consumer (reply subject `$JS.ACK...`) carries its
  stream, consumer and sequences, and settles when the client acknowledges it (+ACK, -NAK, +TERM;
  +WPI only records progress). Without either, core NATS asks no acknowledgement: `unacknowledged`
  (or settled by the server's +OK / -ERR when the client asked for `verbose`).
- `BrokerOperation` per SUB and UNSUB (`sent`: core NATS answers nothing), per JetStream API request
  (`$JS.API.STREAM.CREATE.<stream>`...: Operation `STREAM.CREATE`, the stream and consumer, the
  request's JSON summarised into `Argument`s, the reply's into `Result`s, its error code and
  description), and per -ERR that answers nothing pending.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

from decoders.api import ChannelInfo, Chunk, Decoder, Direction
from decoders.messaging import (
    STATUS_ERROR,
    STATUS_OK,
    STATUS_SENT,
    STATUS_UNACKNOWLEDGED,
    Pending,
    settle,
)
from decoders.records import (
    MESSAGE_DELIVER,
    MESSAGE_PUBLISH,
    Annotation,
    BrokerMessage,
    BrokerOperation,
    BrokerSession,
    Output,
    Secret,
    named_values,
)
from protocols import nats as p

MAX_KEEP = 64 * 1024  # payload bytes kept: headers and JetStream JSON; the rest is only counted
MAX_LINE = 64 * 1024  # a control line longer than this is not one (nats-server's limit is 4 KiB)
PORTS = frozenset({4222})
CONTROL_PREFIXES = ("$JS.FC.",)  # flow-control replies a client sends for JetStream: not messages


class _Item:
    """One operation: its control line, what it says, and the head of its payload."""

    __slots__ = ("line", "op", "payload", "cut", "cut_at", "time", "pid", "call_index", "end_time")

    def __init__(self, line: bytes, op: p.Op | None, at: tuple[float | None, int, int]) -> None:
        self.line = line
        self.op = op
        self.payload = bytearray()
        self.cut = False  # bytes of its line or kept payload were lost
        self.cut_at: int | None = None  # payload bytes read before the loss
        self.time, self.pid, self.call_index = at
        self.end_time = self.time

    def headers_cut(self) -> bool:
        """Whether the loss reached its header block (a message's payload itself is never shown)."""
        return self.cut and (self.cut_at is None or self.op is None or self.cut_at < self.op.header_size)


class OperationStream:
    """Control lines and payloads out of one direction's bytes."""

    def __init__(self) -> None:
        self.buf = bytearray()  # a control line still incomplete
        self.start: tuple[float | None, int, int] = (None, 0, 0)
        self.item: _Item | None = None  # an operation whose payload is being read
        self.need = 0  # its payload bytes and CRLF still to come
        self.keep = 0  # of which still to keep
        self.synced = True
        self.resyncs = 0

    def feed(self, data: bytes, missing: int, time: float | None, pid: int, call_index: int) -> list[_Item]:
        out: list[_Item] = []
        at = (time, pid, call_index)
        pos = 0
        if not self.synced:
            found = _resync_point(data)
            if found is None:
                return out
            self.synced, pos = True, found
        size = len(data)
        while pos < size:
            item = self.item
            if item is not None:
                take = min(self.need, size - pos)
                if self.keep:
                    kept = min(self.keep, take)
                    item.payload += data[pos : pos + kept]
                    self.keep -= kept
                pos += take
                self.need -= take
                if not self.need:
                    item.end_time = time
                    out.append(item)
                    self.item = None
                continue
            newline = data.find(b"\n", pos)
            if newline < 0:
                if not self.buf:
                    self.start = at
                self.buf += data[pos:]
                if len(self.buf) > MAX_LINE:
                    self._out_of_step()
                break
            if self.buf:
                line, start = bytes(self.buf) + data[pos:newline], self.start
                self.buf.clear()
            else:
                line, start = data[pos:newline], at
            pos = newline + 1
            line = line.rstrip(b"\r")
            if not line:
                continue
            op = p.parse_line(line)
            item = _Item(line, op, start)
            if op is not None and op.has_payload:
                self.item, self.need, self.keep = item, op.size + 2, min(op.size, MAX_KEEP)
            else:
                item.end_time = time
                out.append(item)
        if missing:
            self._lose(missing, out, time)
        return out

    def reading_since(self) -> int | None:
        """The call where the operation still being read began, or None."""
        if self.item is not None:
            return self.item.call_index
        if self.buf:
            return self.start[2]
        return None

    def _lose(self, missing: int, out: list[_Item], time: float | None) -> None:
        item = self.item
        if item is not None:
            lost_kept = min(missing, self.keep)
            if lost_kept:
                item.cut, item.cut_at = True, len(item.payload)
                self.keep -= lost_kept
            if missing <= self.need:
                self.need -= missing
                if not self.need:
                    item.end_time = time
                    out.append(item)
                    self.item = None
                return
            item.end_time = time
            out.append(item)
            self.item = None
        elif self.buf:  # a control line cut: say what it was, as far as it goes
            item = _Item(bytes(self.buf), p.parse_line(bytes(self.buf).rstrip(b"\r")), self.start)
            item.cut = True
            if item.op is not None and item.op.has_payload:
                item.op = None  # its size may be cut short: the payload cannot be trusted
            out.append(item)
        self._out_of_step()

    def _out_of_step(self) -> None:
        self.synced = False
        self.resyncs += 1
        self.buf.clear()
        self.item = None
        self.need = self.keep = 0


def _resync_point(data: bytes) -> int | None:
    """Where a stream out of step takes up again: this call's first byte if it starts an operation,
    else the first line after a newline that does."""
    if p.starts_operation(data):
        return 0
    pos = data.find(b"\n")
    while pos >= 0:
        if p.starts_operation(data[pos + 1 : pos + 9]) and pos + 1 < len(data):
            return pos + 1
        pos = data.find(b"\n", pos + 1)
    return None


class NatsDecoder(Decoder):
    name = "nats"
    ports = PORTS

    def __init__(self, channel: ChannelInfo) -> None:
        super().__init__(channel)
        self.streams = {d: OperationStream() for d in Direction}
        self.client: Direction | None = None
        self.session = BrokerSession(
            session_id=channel.channel_id, protocol="nats", process=channel.pid, server=channel.server
        )
        self.started = False
        self.verbose = False
        self.awaiting_ok: deque[BrokerMessage | BrokerOperation | None] = deque()  # verbose: in order
        self.replies: Pending[str, BrokerMessage | BrokerOperation] = Pending()  # by reply subject
        self.js_acks: Pending[str, BrokerMessage] = Pending()  # JetStream deliveries by ack subject
        self.pulls: Pending[tuple[str | None, str | None], BrokerOperation] = Pending()  # MSG.NEXT
        self.pull_inboxes: Pending[str, tuple[str | None, str | None]] = Pending()  # reply -> pull key
        self.sids: Pending[str, tuple[str | None, str | None]] = Pending()  # sid -> (subject, queue)
        self.done = False

    @classmethod
    def score(cls, data: bytes, direction: Direction, channel: ChannelInfo) -> int:
        head = data[:9].upper()
        if head.startswith((b"INFO {", b"CONNECT {")):
            return 100
        if not any(port in PORTS for port in channel.ports):
            return 0  # a line such as `PUB x 1` is evidence on NATS's port only
        newline = data.find(b"\n")
        if newline > 0 and p.parse_line(data[:newline].rstrip(b"\r")) is not None:
            return 40
        return 0

    def feed(self, chunk: Chunk) -> Sequence[Output]:
        if self.done:
            return ()
        if not self.started:
            self.started = True
            self.session.process, self.session.start = chunk.pid, chunk.time
        out: list[Output] = []
        for item in self.streams[chunk.direction].feed(
            chunk.data, chunk.missing, chunk.time, chunk.pid, chunk.call_index
        ):
            self._item(item, chunk.direction, out)
        return out

    def _item(self, item: _Item, direction: Direction, out: list[Output]) -> None:
        op = item.op
        commands = self.session.commands
        name = op.name if op is not None else "unknown"
        commands[name] = commands.get(name, 0) + 1
        if op is None:
            return
        if self.client is None:
            if op.name in p.CLIENT_OPERATIONS:
                self.client = direction
            elif op.name in p.SERVER_OPERATIONS:
                self.client = direction.reverse()
        out.append(Annotation(item.call_index, _annotation(op)))
        if op.name == "INFO":
            self._info(op)
        elif op.name == "CONNECT":
            self._connect(op, item, out)
        elif op.name in ("PUB", "HPUB"):
            self._publish(op, item, out)
        elif op.name in ("MSG", "HMSG"):
            self._deliver(op, item, out)
        elif op.name in ("SUB", "UNSUB"):
            self._subscription(op, item, out)
        elif op.name == "+OK":
            if self.awaiting_ok:
                record = self.awaiting_ok.popleft()
                if record is not None:
                    out.append(settle(record, STATUS_OK, item.time, ack="+OK"))
        elif op.name == "-ERR":
            self._error(op, item, out)

    # -- session ---------------------------------------------------------------------------------------
    def _info(self, op: p.Op) -> None:
        fields, session = op.fields, self.session
        session.server_product = "nats-server"
        if isinstance(fields.get("version"), str):
            session.server_version = fields["version"]
        if "proto" in fields:
            session.protocol_version = str(fields["proto"])
        for key, attribute in (
            ("server_name", "ServerName"),
            ("server_id", "ServerId"),
            ("jetstream", "JetStream"),
            ("max_payload", "MaxPayload"),
            ("headers", "Headers"),
            ("auth_required", "AuthRequired"),
            ("tls_required", "TlsRequired"),
        ):
            value = fields.get(key)
            if isinstance(value, bool):
                session.extra[attribute] = "true" if value else "false"
            elif isinstance(value, (str, int)):
                session.extra[attribute] = value

    def _connect(self, op: p.Op, item: _Item, out: list[Output]) -> None:
        fields, session = op.fields, self.session
        shown = p.connect_summary(fields)
        if isinstance(shown.get("user"), str):
            session.user = shown["user"]
        if isinstance(shown.get("name"), str):
            session.client_id = shown["name"]
        for key, attribute in (
            ("lang", "ClientLanguage"),
            ("version", "ClientVersion"),
            ("protocol", "ClientProtocol"),
        ):
            if key in shown:
                session.extra[attribute] = shown[key]
        for key, attribute in (("verbose", "Verbose"), ("echo", "Echo"), ("headers", "ClientHeaders")):
            if isinstance(shown.get(key), bool):
                session.extra[attribute] = "true" if shown[key] else "false"
        kinds = [
            kind
            for key, kind in (("pass", "password"), ("auth_token", "token"), ("jwt", "jwt"), ("nkey", "nkey"))
            if fields.get(key)
        ]
        if kinds:
            session.extra["Auth"] = ",".join(kinds)
        if p.carries_credentials(fields) or item.cut:
            out.append(Secret(item.call_index))
        self.verbose = fields.get("verbose") is True
        if self.verbose:
            self.awaiting_ok.append(None)  # the CONNECT's own +OK

    def _error(self, op: p.Op, item: _Item, out: list[Output]) -> None:
        self.session.extra["LastError"] = op.text
        if self.verbose and self.awaiting_ok:
            record = self.awaiting_ok.popleft()
            if record is not None:
                out.append(settle(record, STATUS_ERROR, item.time, ack="-ERR", error=op.text))
                return
        out.append(
            BrokerOperation(
                protocol="nats",
                process=item.pid,
                session=self.session.session_id,
                operation="-ERR",
                time=item.time,
                status=STATUS_ERROR,
                error=op.text,
            )
        )

    # -- client operations -----------------------------------------------------------------------------
    def _publish(self, op: p.Op, item: _Item, out: list[Output]) -> None:
        subject = op.subject or ""
        payload = bytes(item.payload)
        headers = p.parse_headers(payload[: op.header_size]) if op.header_size else None
        body = payload[op.header_size :]
        if subject.startswith("$JS.ACK."):
            self._js_ack(subject, body, item, out)
            self._await_ok(None)
            return
        if subject.startswith(CONTROL_PREFIXES):
            self._await_ok(None)
            return
        api = p.js_api(subject)
        if api is not None:
            self._api_request(api, op, body, item, out)
            return
        record = BrokerMessage(
            protocol="nats",
            process=item.pid,
            session=self.session.session_id,
            direction=MESSAGE_PUBLISH,
            destination=subject,
            time=item.time,
            size=op.size - op.header_size,
            truncated=item.headers_cut(),
            extra={"ReplyTo": op.reply} if op.reply else {},
            headers=headers.items if headers else [],
        )
        self.session.published += 1
        if op.reply:
            out += self._expire(self.replies.add(op.reply, record))
            self._await_ok(None)
        elif self.verbose:
            self._await_ok(record)
        else:
            out.append(settle(record, STATUS_UNACKNOWLEDGED, None))

    def _await_ok(self, record: BrokerMessage | BrokerOperation | None) -> None:
        if self.verbose:
            self.awaiting_ok.append(record)
            if len(self.awaiting_ok) > 10_000:
                self.awaiting_ok.popleft()

    def _api_request(self, api: p.JsApi, op: p.Op, body: bytes, item: _Item, out: list[Output]) -> None:
        operation = BrokerOperation(
            protocol="nats",
            process=item.pid,
            session=self.session.session_id,
            operation=api.operation,
            time=item.time,
            truncated=item.cut,
            extra={
                "Api": "jetstream",
                "Subject": op.subject,
                "Stream": api.stream,
                "Consumer": api.consumer,
                "Domain": api.domain,
            },
            arguments=p.summarise_js_request(api.operation, body),
        )
        if api.operation == "CONSUMER.MSG.NEXT":  # settled by the messages it brings, or a status
            operation.extra["Messages"] = 0
            out += self._expire(self.pulls.add((api.stream, api.consumer), operation))
            if op.reply:
                self.pull_inboxes.add(op.reply, (api.stream, api.consumer))
            self._await_ok(None)
            return
        if op.reply:
            out += self._expire(self.replies.add(op.reply, operation))
            self._await_ok(None)
        elif self.verbose:
            self._await_ok(operation)
        else:
            out.append(settle(operation, STATUS_SENT, None))

    def _expire(self, records: list[BrokerMessage | BrokerOperation]) -> list[Output]:
        """Records let go of a pending map (a reused reply subject, or too many waiting): a pull request
        that got messages is done; the others stand as they are."""
        for record in records:
            if isinstance(record, BrokerOperation) and record.extra.get("Messages"):
                record.status = STATUS_OK
        return list(records)

    def _js_ack(self, subject: str, body: bytes, item: _Item, out: list[Output]) -> None:
        kind = p.js_ack_kind(body)
        record = self.js_acks.items.get(subject)
        if record is None or kind is None:
            return
        if kind == "in-progress":
            record.ack = kind
            return
        self.js_acks.pop(subject)
        if kind in ("ack", "ack-next"):
            out.append(settle(record, STATUS_OK, item.time, ack=kind))
        else:
            out.append(
                settle(record, STATUS_ERROR, item.time, ack=kind, error=f"the client refused it ({kind})")
            )

    def _subscription(self, op: p.Op, item: _Item, out: list[Output]) -> None:
        extra: dict[str, Any] = {"Sid": op.sid}
        if op.name == "SUB":
            extra.update({"Subject": op.subject, "Queue": op.queue})
            if op.sid is not None:
                self.sids.add(op.sid, (op.subject, op.queue))
        else:
            subject, queue = self.sids.items.get(op.sid or "", (None, None))
            extra.update({"Subject": subject, "Queue": queue, "Max": op.max_messages})
            if op.max_messages is None and op.sid is not None:
                self.sids.pop(op.sid)
        operation = BrokerOperation(
            protocol="nats",
            process=item.pid,
            session=self.session.session_id,
            operation=op.name,
            time=item.time,
            truncated=item.cut,
            extra={k: v for k, v in extra.items() if v is not None},
        )
        if self.verbose:
            self._await_ok(operation)
        else:
            out.append(settle(operation, STATUS_SENT, None))

    # -- server operations -----------------------------------------------------------------------------
    def _deliver(self, op: p.Op, item: _Item, out: list[Output]) -> None:
        subject = op.subject or ""
        payload = bytes(item.payload)
        headers = p.parse_headers(payload[: op.header_size]) if op.header_size else None
        body = payload[op.header_size :]
        body_size = op.size - op.header_size
        waiting = self.replies.items.get(subject)
        if waiting is not None and self._reply(waiting, subject, headers, body, body_size, item, out):
            return
        if headers is not None and headers.status is not None and body_size == 0:
            self._status(headers, subject, item, out)  # a pull's end, an idle heartbeat, flow control
            return
        js = p.js_ack_subject(op.reply)
        subscription, queue = self.sids.items.get(op.sid or "", (None, None))
        extra: dict[str, Any] = {
            "Sid": op.sid,
            "Subscription": subscription,
            "Queue": queue,
            "ReplyTo": op.reply,
        }
        if js is not None:
            extra.update(
                {
                    "Stream": js.stream,
                    "Consumer": js.consumer,
                    "StreamSequence": js.stream_sequence,
                    "ConsumerSequence": js.consumer_sequence,
                    "Delivered": js.delivered,
                    "Pending": js.pending,
                }
            )
            del extra["ReplyTo"]
        record = BrokerMessage(
            protocol="nats",
            process=item.pid,
            session=self.session.session_id,
            direction=MESSAGE_DELIVER,
            destination=subject,
            time=item.time,
            size=body_size,
            truncated=item.headers_cut(),
            extra={k: v for k, v in extra.items() if v is not None},
            headers=headers.items if headers else [],
        )
        self.session.delivered += 1
        if js is not None and op.reply:
            pull = self.pulls.items.get((js.stream, js.consumer))
            if pull is not None:
                pull.extra["Messages"] = int(pull.extra.get("Messages") or 0) + 1
                if pull.extra["Messages"] >= dict(pull.arguments).get("batch", 1):  # type: ignore[operator]
                    self.pulls.pop((js.stream, js.consumer))
                    out.append(settle(pull, STATUS_OK, item.time))
            out += self.js_acks.add(op.reply, record)
            return
        out.append(settle(record, STATUS_UNACKNOWLEDGED, None))

    def _reply(
        self,
        waiting: BrokerMessage | BrokerOperation,
        subject: str,
        headers: p.Headers | None,
        body: bytes,
        body_size: int,
        item: _Item,
        out: list[Output],
    ) -> bool:
        """A MSG on the reply subject of a request still waiting: settle the request. Returns whether
        the MSG was only that (a JetStream reply or a status), not a message of its own."""
        status = headers.status if headers is not None else None
        self.replies.pop(subject)
        if status == 503 and body_size == 0:
            out.append(settle(waiting, STATUS_ERROR, item.time, ack="503", error="no responders"))
            return True
        reply = p.parse_js_reply(body) if not item.cut else None
        if isinstance(waiting, BrokerOperation):
            if reply is None:
                out.append(settle(waiting, STATUS_OK, item.time))
                return False
            waiting.children = named_values("Result", reply.fields)
            if reply.ok:
                out.append(settle(waiting, STATUS_OK, item.time))
            else:
                waiting.extra["ErrorCode"] = reply.error_code
                waiting.extra["JsErrorCode"] = reply.error_name
                out.append(settle(waiting, STATUS_ERROR, item.time, error=reply.description))
            return True
        if reply is not None and (reply.stream is not None or not reply.ok):
            if reply.ok:
                waiting.extra["Stream"] = reply.stream
                waiting.extra["Sequence"] = reply.sequence
                if reply.duplicate:
                    waiting.extra["Duplicate"] = "true"
                out.append(settle(waiting, STATUS_OK, item.time, ack="pub-ack"))
            else:
                waiting.extra["ErrorCode"] = reply.error_code
                waiting.extra["JsErrorCode"] = reply.error_name
                out.append(settle(waiting, STATUS_ERROR, item.time, ack="pub-ack", error=reply.description))
            return True
        out.append(settle(waiting, STATUS_OK, item.time, ack="reply"))
        return False  # an ordinary reply: a message delivered too

    def _status(self, headers: p.Headers, subject: str, item: _Item, out: list[Output]) -> None:
        """A status message with no payload: the end of a pull request (404 no messages, 408 request
        timeout, 409...) on its reply subject; else a heartbeat or flow control, counted only."""
        if headers.status not in (404, 408, 409):
            return
        key = self.pull_inboxes.items.get(subject)
        pull = self.pulls.pop(key) if key is not None else None
        if pull is None:
            return
        pull.extra["End"] = f"{headers.status} {headers.description or ''}".strip()
        out.append(settle(pull, STATUS_OK, item.time))

    def reading_since(self) -> int | None:
        """Where an unfinished operation began: a CONNECT split across writes is still hidden whole."""
        calls = [c for c in (s.reading_since() for s in self.streams.values()) if c is not None]
        return min(calls) if calls else None

    def close(self, time: float | None) -> Sequence[Output]:
        if self.done:
            return ()
        self.done = True
        out: list[Output] = []
        out += self._expire(self.replies.drain())
        out += self._expire(self.pulls.drain())
        out += self.js_acks.drain()
        out += [record for record in self.awaiting_ok if record is not None]
        self.awaiting_ok.clear()
        resyncs = sum(stream.resyncs for stream in self.streams.values())
        if resyncs:
            self.session.extra["Resyncs"] = resyncs
        if self.session.commands:
            out.append(self.session)
        return out


def _annotation(op: p.Op) -> str:
    parts = [f"nats {op.name}"]
    if op.subject:
        parts.append(op.subject)
    if op.reply:
        parts.append(f"reply={op.reply}")
    if op.sid:
        parts.append(f"sid={op.sid}")
    if op.has_payload:
        parts.append(f"({op.size} B)")
    if op.text:
        parts.append(op.text)
    if op.name == "INFO" and isinstance(op.fields.get("version"), str):
        parts.append(f"server {op.fields['version']}")
    if op.name == "CONNECT" and isinstance(op.fields.get("name"), str):
        parts.append(f"name={op.fields['name']}")
    return " ".join(parts)[:200]
