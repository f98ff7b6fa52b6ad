"""Tag1Decoder: TAG1 conversations as orders, cancels and logons in dockit's summary.

Fields are framed by `decoders.framing.LineReader` with SOH as the terminator (TAG1 ends a message
with a field, `10=NNN`, not with a fixed byte string), and grouped into messages here. Requests are
matched to replies by client order id, else in order. The logon's password is never kept: the record
says one was there (`SECRET`) and the calls that carried it are named with `Secret`.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

from decoders import framing
from decoders.api import ChannelInfo, Chunk, Decoder, Direction
from decoders.records import (
    COUNT,
    DECIMAL,
    DURATION,
    FLAG,
    SECRET,
    TEXT,
    TIME,
    Annotation,
    Output,
    Problem,
    RecordType,
    Secret,
)

SOH = b"\x01"
MAX_FIELD = 4096  # a longer field is kept to its head and the message marked truncated
MAX_FIELDS = 256  # a message with more fields is cut there
MAX_PENDING = 1024  # requests awaiting an answer; past it the oldest is reported unanswered
MAX_NOTE = 80  # characters of a peer's text kept in a calls-file note

CLIENT_TYPES = frozenset({"D", "F"})
SERVER_TYPES = frozenset({"8", "9"})
SIDES = {"1": "buy", "2": "sell"}
ORDER_STATUS = {"0": "new", "1": "partially filled", "2": "filled", "4": "cancelled", "8": "rejected"}
CANCEL_STATUSES = frozenset({"4", "6"})  # an execution report answering a cancel

TAG1_ORDER = RecordType(
    "Tag1_Order",
    ClOrdId=TEXT, OrderId=TEXT, Symbol=TEXT, Side=TEXT, Quantity=COUNT, Price=DECIMAL, Status=TEXT,
    Text=TEXT, Process=COUNT, Server=TEXT, Start=TIME, Latency=DURATION, Truncated=FLAG,
)  # fmt: skip
TAG1_CANCEL = RecordType(
    "Tag1_Cancel",
    ClOrdId=TEXT, OrigClOrdId=TEXT, OrderId=TEXT, Status=TEXT, Text=TEXT, Process=COUNT, Server=TEXT,
    Start=TIME, Latency=DURATION, Truncated=FLAG,
)  # fmt: skip
TAG1_LOGON = RecordType(
    "Tag1_Logon",
    User=TEXT, Password=SECRET, Status=TEXT, Text=TEXT, Process=COUNT, Server=TEXT, Start=TIME,
    Latency=DURATION, Truncated=FLAG,
)  # fmt: skip

_FIRST_FIELD = re.compile(rb"35=[0-9A-Za-z]\x01")
_CHECKSUM_FIELD = re.compile(rb"\x0110=(\d{3})\x01")


def starts_message(data: bytes) -> bool:
    """Whether a call's bytes begin a TAG1 message (its first field is the type)."""
    return _FIRST_FIELD.match(data) is not None


@dataclass
class Message:
    """A message being assembled from its fields, in one direction."""

    start: Chunk
    fields: dict[bytes, bytes] = field(default_factory=dict)
    count: int = 0
    byte_sum: int = 0  # of every byte before the checksum field, separators included
    truncated: bool = False

    def text(self, tag: bytes) -> str | None:
        value = self.fields.get(tag)
        return None if value is None else value.decode("utf-8", "replace")

    @property
    def type(self) -> str | None:
        return self.text(b"35")


@dataclass
class Pending:
    """A request waiting for its answer."""

    kind: str  # "logon", "order", "cancel", "logout"
    message: Message
    key: str | None  # the client order id the answer will carry (None when unknown)


class Tag1Decoder(Decoder):
    """TAG1 over TCP: one record per order, cancel and logon, a problem per bad checksum."""

    name = "tag1"
    ports = frozenset({9878})
    # Name each call of a logon as a secret when it is fed, not only the first one once the logon is
    # whole: dockit's --pcap writes a call as soon as it is fed, and ignores `reading_since`, so a
    # password split over calls would reach the pcapng (test_tag1_end_to_end.py shows it).
    eager_secrets: bool = True

    @classmethod
    def score(cls, data: bytes, direction: Direction, channel: ChannelInfo) -> int:
        if not isinstance(data, bytes | bytearray) or not starts_message(data):
            return 0
        end = _CHECKSUM_FIELD.search(data)
        if end and int(end.group(1)) == sum(data[: end.start() + 1]) % 256:
            return 100  # a whole message with its checksum right: proof
        return 60

    def __init__(self, channel: ChannelInfo) -> None:
        super().__init__(channel)
        self.readers = {
            d: framing.LineReader(SOH, max_line=MAX_FIELD, strip_cr=False, starts_message=starts_message)
            for d in Direction
        }
        self.assembling: dict[Direction, Message | None] = dict.fromkeys(Direction)
        self.skipping: dict[Direction, bool] = dict.fromkeys(Direction, False)
        self.client: Direction | None = None
        self.pending: deque[Pending] = deque()

    def reading_since(self) -> int | None:
        starts = [m.start.call_index for m in self.assembling.values() if m is not None]
        half_field = framing.reading_since(*self.readers.values())
        if half_field is not None:
            starts.append(half_field)
        return min(starts) if starts else None

    def feed(self, chunk: Chunk) -> list[Output]:
        outputs: list[Output] = []
        in_logon = self._reading_logon(chunk.direction)
        for frame in self.readers[chunk.direction].feed(chunk):
            outputs += self._field(chunk.direction, frame)
        if self.eager_secrets and (in_logon or self._reading_logon(chunk.direction) or _has_secret(outputs)):
            if not any(isinstance(o, Secret) and o.call_index == chunk.call_index for o in outputs):
                outputs.append(Secret(chunk.call_index))
        return outputs

    def _reading_logon(self, direction: Direction) -> bool:
        """Whether a client's logon (it holds the password) is half-read in this direction."""
        message = self.assembling[direction]
        return message is not None and message.type == "A" and self.client in (None, direction)

    def close(self, time: float | None) -> list[Output]:
        outputs: list[Output] = []
        for direction, message in self.assembling.items():
            if message is not None and message.type is not None:
                message.truncated = True  # the connection ended before its checksum
                outputs += self._message(direction, message, message.start)
        self.assembling = dict.fromkeys(Direction)
        while self.pending:
            outputs += self._unanswered(self.pending.popleft())
        return outputs

    # -- fields into messages -------------------------------------------------------------------------

    def _field(self, direction: Direction, frame: framing.Frame) -> list[Output]:
        data = frame.data
        message = self.assembling[direction]
        tag, sep, value = data.partition(b"=")
        if tag == b"35" and sep and not frame.truncated:
            self.skipping[direction] = False
            if message is not None:  # the previous message lost its end
                message.truncated = True
                outputs = self._message(direction, message, message.start)
                self.assembling[direction] = None
                return outputs + self._field(direction, frame)
        if self.skipping[direction]:
            return []
        if message is None:
            message = self.assembling[direction] = Message(start=frame.start)
        if frame.truncated:
            # The tracer lost bytes (or the field was too long): decode what came, then wait for the
            # next message's first field.
            message.truncated = True
            self.assembling[direction] = None
            self.skipping[direction] = True
            return self._message(direction, message, frame.end) if message.type else []
        if tag == b"10" and sep:
            self.assembling[direction] = None
            return self._checked(direction, message, value, frame)
        message.count += 1
        message.byte_sum += sum(data) + 1
        if sep and tag.isdigit():
            message.fields[tag] = value
        if message.count >= MAX_FIELDS:
            message.truncated = True
            self.assembling[direction] = None
            self.skipping[direction] = True
            problem = Problem(
                "warning", f"a message of more than {MAX_FIELDS} fields: cut", frame.end.call_index
            )
            return [problem, *self._message(direction, message, frame.end)] if message.type else [problem]
        return []

    def _checked(
        self, direction: Direction, message: Message, value: bytes, frame: framing.Frame
    ) -> list[Output]:
        outputs: list[Output] = []
        kind = message.type or "?"
        if not (len(value) == 3 and value.isdigit()):
            outputs.append(
                Problem(
                    "warning", f"malformed checksum {value[:8]!r} on a {kind} message", frame.end.call_index
                )
            )
        elif int(value) != message.byte_sum % 256:
            outputs.append(Problem(
                "error",
                f"bad checksum on a {kind} message: it says {value.decode()}, its bytes sum to "
                f"{message.byte_sum % 256:03d}",
                frame.end.call_index,
            ))  # fmt: skip
        if message.type is None:
            return [*outputs, Problem("warning", "a message without a type (35)", frame.end.call_index)]
        return outputs + self._message(direction, message, frame.end)

    # -- messages into records ------------------------------------------------------------------------

    def _message(self, direction: Direction, message: Message, end: Chunk) -> list[Output]:
        if self.client is None:
            self.client = self._client_direction(direction, message)
            if self.client is None:
                return []
        if direction == self.client:
            return self._request(message)
        return self._reply(message, end)

    def _client_direction(self, direction: Direction, message: Message) -> Direction | None:
        kind = message.type
        if kind in CLIENT_TYPES or (kind == "A" and (b"553" in message.fields or b"554" in message.fields)):
            return direction
        if kind in SERVER_TYPES:
            return direction.reverse()
        # A bare logon or a logout says nothing: the side that accepted the connection is the server.
        return Direction.IN if self.channel.listening else Direction.OUT

    def _request(self, message: Message) -> list[Output]:
        kind = message.type
        at = message.start.call_index
        outputs: list[Output] = []
        if kind == "A":
            outputs.append(Secret(at))  # the password's bytes, wherever they were cut
            user = message.text(b"553")
            outputs.append(Annotation(at, f"tag1: logon {_short(user)}"))
            pending = Pending("logon", message, None)
        elif kind == "D":
            key = message.text(b"11")
            side = SIDES.get(message.text(b"54") or "", message.text(b"54"))
            note = f"tag1: new order {_short(key)}: {side} {message.text(b'38')} {message.text(b'55')} @ {message.text(b'44')}"
            outputs.append(Annotation(at, note[: MAX_NOTE * 3]))
            pending = Pending("order", message, key)
        elif kind == "F":
            key = message.text(b"11")
            outputs.append(Annotation(at, f"tag1: cancel {_short(message.text(b'41'))}"))
            pending = Pending("cancel", message, key)
        elif kind == "5":
            outputs.append(Annotation(at, "tag1: logout"))
            pending = Pending("logout", message, None)
        else:
            return [Annotation(at, f"tag1: message 35={_short(kind)}")]
        if len(self.pending) >= MAX_PENDING:
            outputs += self._unanswered(self.pending.popleft())
        self.pending.append(pending)
        return outputs

    def _reply(self, message: Message, end: Chunk) -> list[Output]:
        kind = message.type
        at = message.start.call_index
        status = message.text(b"39")
        if kind == "A":
            request = self._take("logon", None)
            if request is None:
                return [Annotation(at, "tag1: logon accepted")]
            return [Annotation(at, "tag1: logon accepted"), self._logon(request, message, end, "accepted")]
        if kind == "5":
            request = self._take("logon", None)  # a logout in answer to a logon refuses it
            if request is not None:
                return [Annotation(at, "tag1: logon refused"), self._logon(request, message, end, "refused")]
            self._take("logout", None)
            return [Annotation(at, "tag1: logout")]
        if kind == "8" and status not in CANCEL_STATUSES:
            key = message.text(b"11")
            request = self._take("order", key)
            note = Annotation(at, f"tag1: order {_short(key)} {ORDER_STATUS.get(status or '', status)}")
            if request is None:
                return [
                    note,
                    Problem("warning", f"an execution report for no known order ({_short(key)})", at),
                ]
            return [note, self._order(request, message, end)]
        if kind in ("8", "9"):
            key = message.text(b"11")
            request = self._take("cancel", key)
            state = "cancelled" if kind == "8" else "rejected"
            note = Annotation(at, f"tag1: cancel {_short(message.text(b'41') or key)} {state}")
            if request is None:
                return [note, Problem("warning", f"a cancel answer for no known cancel ({_short(key)})", at)]
            return [note, self._cancel(request, message, end, state)]
        return [Annotation(at, f"tag1: message 35={_short(kind)}")]

    def _take(self, kind: str, key: str | None) -> Pending | None:
        """The request this answer is for: the one with its id, else the oldest one of its kind."""
        oldest = None
        for pending in self.pending:
            if pending.kind != kind:
                continue
            if key is not None and pending.key == key:
                self.pending.remove(pending)
                return pending
            if oldest is None and (key is None or pending.key is None or pending.message.truncated):
                oldest = pending
        if oldest is not None:
            self.pending.remove(oldest)
        return oldest

    # -- records --------------------------------------------------------------------------------------

    def _common(self, request: Pending, reply: Message | None, end: Chunk | None) -> dict:
        start = request.message.start
        latency = None
        if end is not None and start.time is not None and end.time is not None:
            latency = max(end.time - start.time, 0.0)
        return {
            "Process": start.pid,
            "Server": self.channel.server,
            "Start": start.time,
            "Latency": latency,
            "Truncated": request.message.truncated or (reply is not None and reply.truncated),
            "Text": reply.text(b"58") if reply is not None else None,
        }

    def _logon(self, request: Pending, reply: Message | None, end: Chunk | None, status: str):
        return TAG1_LOGON(
            User=request.message.text(b"553"),
            Password=True if b"554" in request.message.fields else None,
            Status=status,
            **self._common(request, reply, end),
        )

    def _order(self, request: Pending, reply: Message | None, end: Chunk | None):
        order = request.message
        status = reply.text(b"39") if reply is not None else None
        return TAG1_ORDER(
            ClOrdId=order.text(b"11") or (reply.text(b"11") if reply is not None else None),
            OrderId=reply.text(b"37") if reply is not None else None,
            Symbol=order.text(b"55"),
            Side=SIDES.get(order.text(b"54") or "", order.text(b"54")),
            Quantity=_count(order.text(b"38")),
            Price=_decimal(order.text(b"44")),
            Status=ORDER_STATUS.get(status or "", status) if reply is not None else "unknown",
            **self._common(request, reply, end),
        )

    def _cancel(self, request: Pending, reply: Message | None, end: Chunk | None, status: str):
        cancel = request.message
        return TAG1_CANCEL(
            ClOrdId=cancel.text(b"11"),
            OrigClOrdId=cancel.text(b"41") or (reply.text(b"41") if reply is not None else None),
            OrderId=reply.text(b"37") if reply is not None else None,
            Status=status,
            **self._common(request, reply, end),
        )

    def _unanswered(self, request: Pending) -> list[Output]:
        if request.kind == "logon":
            return [self._logon(request, None, None, "unknown")]
        if request.kind == "order":
            return [self._order(request, None, None)]
        if request.kind == "cancel":
            return [self._cancel(request, None, None, "unknown")]
        return []


def _has_secret(outputs: list[Output]) -> bool:
    return any(isinstance(output, Secret) for output in outputs)


def _count(text: str | None) -> int | None:
    """A quantity as an int, when it is one (a peer may send anything)."""
    if text is None or not (0 < len(text) <= 18 and text.isascii() and text.isdigit()):
        return None
    return int(text)


def _decimal(text: str | None) -> str | None:
    """A price exactly as sent, when it is a number (a peer may send anything)."""
    return text if DECIMAL.accepts(text) else None


def _short(text: str | None) -> str:
    """A peer's text, cut to fit a calls-file note."""
    if text is None:
        return "?"
    return text if len(text) <= MAX_NOTE else text[:MAX_NOTE] + "..."
