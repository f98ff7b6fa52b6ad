"""`RedisDecoder`: detection, the two RESP streams, and commands matched with their replies (in order,
through MULTI/EXEC, pub/sub, MONITOR and RESP3 pushes)."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from decoders.api import ChannelInfo, Chunk, Decoder, Direction
from decoders.records import (
    COUNT,
    DURATION,
    FLAG,
    MESSAGE_DELIVER,
    TEXT,
    TIME,
    Annotation,
    AttrValue,
    BrokerMessage,
    ChildType,
    CimChild,
    CimObject,
    DatabaseSession,
    Duration,
    Output,
    Problem,
    RecordType,
    Secret,
    Time,
    printable_bytes,
)
from decoders.redact import REDACTED
from decoders.redis import commands as c
from protocols import resp

PROTOCOL = "redis"
# Commands awaiting a reply (or queued in a MULTI) are held: past 10,000 of them, or 8 MiB of kept
# arguments, the oldest goes out without its reply (unknown), and its reply, when it comes, is skipped.
MAX_PENDING = 10_000
MAX_HELD_BYTES = 8 * 1024 * 1024
MAX_ARGUMENT_CHILDREN = 64  # <Argument> children per command; `Arguments` says how many there were
KEEP = 256  # bytes of an argument or an error kept

REDIS_COMMAND = RecordType(
    "Dockit_RedisCommand",
    Process=COUNT,
    Session=TEXT,
    Start=TIME,
    Duration=DURATION,
    Command=TEXT,
    Status=TEXT,
    Error=TEXT,
    ReplyType=TEXT,
    ReplySize=COUNT,
    Arguments=COUNT,
    Transaction=TEXT,
    Blocking=FLAG,
    TimedOut=FLAG,
    Truncated=FLAG,
)
ARGUMENT = ChildType("Argument", Index=COUNT, Size=COUNT, Truncated=FLAG)
KEY = ChildType("Key", Name=TEXT, Access=TEXT)

_PUBSUB_REPLIES = {
    b"subscribe": "SUBSCRIBE",
    b"psubscribe": "PSUBSCRIBE",
    b"ssubscribe": "SSUBSCRIBE",
    b"unsubscribe": "UNSUBSCRIBE",
    b"punsubscribe": "PUNSUBSCRIBE",
    b"sunsubscribe": "SUNSUBSCRIBE",
}
_DELIVERIES = frozenset({b"message", b"pmessage", b"smessage"})
_MONITOR_LINE = re.compile(rb'^(\d+\.\d+) \[(\d+) ([^\]]*)\] "((?:[^"\\]|\\.)*)"')
_REQUEST_TYPES = frozenset(b"*")
_REPLY_FIRST = frozenset(b"+-:$_,#!=(%~>|")
_SIZED = frozenset({resp.BULK, resp.VERBATIM, resp.SIMPLE, resp.ARRAY, resp.MAP, resp.SET, resp.PUSH})


@dataclass(frozen=True, slots=True)
class _Tag:
    """Where bytes came from: the call, its time and process."""

    call: int
    time: float | None
    pid: int


@dataclass(slots=True)
class _Request:
    name: str
    args: list[bytes]  # as kept (each cut at KEEP bytes)
    sizes: list[int]  # their real sizes
    count: int  # arguments sent, the command's name included
    start: _Tag
    end: _Tag
    lost: bool
    secret: frozenset[int]
    expected: int | None = 1  # replies it takes (SUBSCRIBE a b: two confirmations; None: until count 0)
    got: int = 0
    queued_at: _Tag | None = None  # its +QUEUED inside a MULTI
    reply: resp.Value | None = None
    reply_end: _Tag | None = None
    reply_lost: bool = False
    transaction: str | None = None
    weight: int = 0  # bytes it holds (its kept arguments)


@dataclass
class _Session:
    user: str | None = None
    database: str | None = None
    version: str | None = None
    connection_id: int | None = None
    extra: dict[str, AttrValue] = field(default_factory=dict)
    start: _Tag | None = None
    commands: int = 0


class RedisDecoder(Decoder):
    """Redis's RESP2 and RESP3, seen from either end."""

    name = "redis"
    ports = frozenset({6379})

    @classmethod
    def score(cls, data: bytes, direction: Direction, channel: ChannelInfo) -> int:
        if data[:1] == b"*":
            match = re.match(rb"\*([0-9]{1,6})\r\n\$([0-9]{1,9})\r\n", data)
            if match is None or int(match.group(1)) == 0:
                return 0
            size = int(match.group(2))
            start = match.end()
            name = data[start : start + size]
            if 0 < size <= 32 and name.replace(b"_", b"").replace(b"-", b"").isalpha():
                if data[start + size : start + size + 2] in (b"\r\n", b"\r", b""):
                    return 90  # an array of bulk strings that begins with a command's name
            return 0
        hinted = any(port in cls.ports for port in channel.ports)
        if hinted:
            word = data.split(b" ", 1)[0].rstrip(b"\r\n").upper()
            if word in (b"PING", b"INFO", b"GET", b"SET", b"AUTH", b"HELLO", b"KEYS", b"MONITOR", b"QUIT"):
                if data.endswith(b"\n"):
                    return 40  # an inline command on Redis's port
        return 0

    def __init__(self, channel: ChannelInfo) -> None:
        super().__init__(channel)
        self._client: Direction | None = None
        self._readers: dict[Direction, resp.RespReader] = {}
        self._pending: deque[_Request] = deque()
        self._multi: list[_Request] | None = None  # commands queued since MULTI
        self._held = 0  # bytes the pending and queued commands hold
        self._orphans = 0  # replies still to come for commands sent out without them
        self._multi_dropped = 0  # queued commands sent out early: EXEC's replies are offset by this
        self._subscriptions = 0  # RESP2: while > 0, arrays may be pushed messages
        self._monitoring = False
        self._resp3 = False
        self._session = _Session()
        self._closed = False
        self._damaged = {Direction.OUT: 0, Direction.IN: 0}

    # --- feeding ----------------------------------------------------------------------------------------

    def feed(self, chunk: Chunk) -> Sequence[Output]:
        if self._closed:
            return ()
        direction = chunk.direction
        if self._client is None:
            if not self._decide_roles(chunk):
                return ()
        reader = self._readers[direction]
        tag = _Tag(chunk.call_index, chunk.time, chunk.pid or self.channel.pid)
        messages = reader.feed(chunk.data, tag)
        if chunk.missing:
            cut = reader.skip(chunk.missing, tag)
            if cut is not None:
                messages.append(cut)
        out: list[Output] = []
        client = direction is self._client
        for message in messages:
            if client:
                self._on_request(message, out)
            else:
                self._on_reply(message, out)
        if reader.damaged != self._damaged[direction]:
            self._damaged[direction] = reader.damaged
            side = "client" if client else "server"
            out.append(
                Problem("warning", f"the {side}'s bytes are not RESP here: resynchronised", chunk.call_index)
            )
        return out

    def reading_since(self) -> int | None:
        starts = [r.reading_start.call for r in self._readers.values() if isinstance(r.reading_start, _Tag)]
        return min(starts) if starts else None

    def close(self, time: float | None) -> Sequence[Output]:
        if self._closed:
            return ()
        self._closed = True
        out: list[Output] = []
        if self._multi is not None:
            for request in self._multi:
                request.transaction = "open"
                out.append(self._record(request))
            self._multi = None
        while self._pending:
            out.append(self._record(self._pending.popleft()))
        if self._session.start is not None:
            out.append(self._session_record())
        return out

    def _decide_roles(self, chunk: Chunk) -> bool:
        data = chunk.data.lstrip(b"\r\n")
        if not data:
            return False
        first = data[0]
        if first in _REQUEST_TYPES or (first not in _REPLY_FIRST and 65 <= (first & 0xDF) <= 90):
            self._client = chunk.direction  # an array (a command) or an inline command's word
        elif first in _REPLY_FIRST:
            self._client = chunk.direction.reverse()
        else:
            return False
        self._readers = {
            d: resp.RespReader(client=d is self._client, keep=KEEP) for d in (Direction.OUT, Direction.IN)
        }
        return True

    # --- client -----------------------------------------------------------------------------------------

    def _on_request(self, message: resp.Message, out: list[Output]) -> None:
        value = message.value
        start, end = message.start, message.end
        assert isinstance(start, _Tag) and isinstance(end, _Tag)
        if value.kind not in (resp.ARRAY, resp.INLINE) or not value.items:
            out.append(Problem("warning", f"a client sent a {value.type_name}, not a command", start.call))
            return
        items = value.items
        args = [item.data for item in items]
        sizes = [item.size for item in items]
        name = c.command_name(args)
        secret = frozenset(c.secret_arguments(args))
        request = _Request(name, args, sizes, value.size, start, end, message.lost or value.truncated and
                           len(items) < value.size, secret)  # fmt: skip
        if name in ("SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE") or (
            name in ("UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE")
        ):
            channels = value.size - 1
            request.expected = channels if channels > 0 else None
        if self._session.start is None:
            self._session.start = start
        self._session.commands += 1
        if secret or name == "AUTH":
            out.append(Secret(start.call))
        out.append(Annotation(start.call, self._note(request)))
        request.weight = sum(len(arg) for arg in args) + 64 * len(args)
        self._held += request.weight
        self._pending.append(request)
        while (len(self._pending) > MAX_PENDING or self._held > MAX_HELD_BYTES) and len(self._pending) > 1:
            oldest = self._pending.popleft()
            self._held -= oldest.weight
            self._orphans += 1
            out.append(self._record(oldest))
        while self._held > MAX_HELD_BYTES and self._multi:
            oldest = self._multi.pop(0)
            self._held -= oldest.weight
            self._multi_dropped += 1
            out.append(self._record(oldest))

    def _note(self, request: _Request) -> str:
        """`redis GET user:1`: the command and its first key (never a secret)."""
        keys = c.keys(request.args)
        if keys and keys[0][0] < len(request.args) and keys[0][0] not in request.secret:
            return f"redis {request.name} {_printable(request.args[keys[0][0]][:64])}"
        return f"redis {request.name}"

    # --- server -----------------------------------------------------------------------------------------

    def _on_reply(self, message: resp.Message, out: list[Output]) -> None:
        value = message.value
        end = message.end
        assert isinstance(end, _Tag)
        items = value.items or []
        head = items[0].data.lower() if items and items[0].kind in (resp.BULK, resp.SIMPLE) else b""
        if value.kind == resp.PUSH or (value.kind == resp.ARRAY and not self._resp3 and self._pushed(head)):
            self._on_push(value, head, message, out)
            return
        if self._monitoring and value.kind == resp.SIMPLE:
            line = _MONITOR_LINE.match(value.data)
            if line is not None:
                self._on_monitored(value, line, message, out)
                return
        if self._orphans:
            self._orphans -= 1  # the reply of a command already sent out without it
            return
        if not self._pending:
            out.append(Problem("warning", f"a {value.type_name} reply to no command", end.call))
            return
        request = self._pending.popleft()
        self._held -= request.weight
        request.reply, request.reply_end, request.reply_lost = value, end, message.lost
        self._after_reply(request, out)

    def _pushed(self, head: bytes) -> bool:
        """Whether a RESP2 array is pub/sub's: a subscription's confirmation (to the command waiting for
        it), or a message while subscribed (then the client may send only pub/sub commands and PING)."""
        if head in _PUBSUB_REPLIES:
            return bool(self._pending) and self._pending[0].name == _PUBSUB_REPLIES[head]
        return self._subscriptions > 0 and head in _DELIVERIES

    def _after_reply(self, request: _Request, out: list[Output]) -> None:
        value = request.reply
        assert value is not None and request.reply_end is not None
        name = request.name
        if c.secret_reply(request.args):
            out.append(Secret(request.reply_end.call))
        if self._multi is not None and name not in ("EXEC", "DISCARD", "MULTI", "WATCH", "RESET"):
            if value.kind == resp.SIMPLE and value.data == b"QUEUED":
                request.queued_at, request.reply, request.reply_end = request.reply_end, None, None
                self._held += request.weight
                self._multi.append(request)
                if len(self._multi) > MAX_PENDING:
                    oldest = self._multi.pop(0)
                    self._held -= oldest.weight
                    self._multi_dropped += 1
                    out.append(self._record(oldest))
                out.append(Annotation(request.queued_at.call, f"redis {name}: queued"))
                return
        ok = not value.is_error
        if name == "EXEC" and self._multi is not None:
            self._exec(value, out)
        elif name in ("DISCARD", "RESET") and self._multi is not None:
            self._end_multi("discarded", out)
            if name == "RESET":
                self._learn(request, value)
        elif name == "MULTI" and ok:
            self._multi = []
        elif ok:
            self._learn(request, value)
        if not ok:  # the calls file notes each command, and the replies that refused one
            out.append(Annotation(request.reply_end.call, f"redis {name}: error {value.text()[:64]}"))
        out.append(self._record(request))

    def _exec(self, value: resp.Value, out: list[Output]) -> None:
        queued = self._multi or []
        dropped, self._multi, self._multi_dropped = self._multi_dropped, None, 0
        self._held -= sum(request.weight for request in queued)
        if value.kind != resp.ARRAY or value.is_null:
            for request in queued:  # a WATCHed key changed (null) or EXECABORT: nothing ran
                request.transaction = "aborted"
                out.append(self._record(request))
            return
        replies = value.items or []
        for index, request in enumerate(queued, start=dropped):
            request.transaction = "exec"
            if index < len(replies):
                request.reply = replies[index]
                request.reply_end = request.queued_at
                if not replies[index].is_error:
                    self._learn(request, replies[index])
            out.append(self._record(request))

    def _end_multi(self, transaction: str, out: list[Output]) -> None:
        for request in self._multi or []:
            request.transaction = transaction
            self._held -= request.weight
            out.append(self._record(request))
        self._multi, self._multi_dropped = None, 0

    def _learn(self, request: _Request, value: resp.Value) -> None:
        """What a successful command tells of the session."""
        name, args, session = request.name, request.args, self._session
        if name == "AUTH":
            session.user = _text(args[1]) if request.count == 3 else "default"
        elif name == "HELLO":
            upper = [a.upper() for a in args]
            for index, word in enumerate(upper):
                if word == b"AUTH" and index + 1 < len(args):
                    session.user = _text(args[index + 1])
                elif word == b"SETNAME" and index + 1 < len(args):
                    session.extra["ClientName"] = _text(args[index + 1])
            if value.kind in (resp.MAP, resp.ARRAY) and value.items:
                for key, item in zip(value.items[::2], value.items[1::2], strict=False):
                    field_name = key.data.decode("utf-8", "replace")
                    if field_name == "version":
                        session.version = item.text()
                    elif field_name == "id":
                        session.connection_id = item.integer()
                    elif field_name == "proto":
                        self._resp3 = item.integer() == 3
                        session.extra["ProtocolVersion"] = item.integer()
                    elif field_name in ("mode", "role"):
                        session.extra["Mode" if field_name == "mode" else "Role"] = item.text()
        elif name == "SELECT" and len(args) > 1:
            session.database = _text(args[1])
        elif name == "CLIENT SETNAME" and len(args) > 2:
            session.extra["ClientName"] = _text(args[2])
        elif name == "CLIENT ID" and value.kind == resp.INTEGER:
            session.connection_id = value.integer()
        elif name == "MONITOR":
            self._monitoring = True
        elif name == "RESET":
            self._monitoring, self._subscriptions, self._resp3 = False, 0, False
            session.database = "0"
            session.extra["ProtocolVersion"] = 2

    # --- pushes -------------------------------------------------------------------------------------------

    def _on_push(self, value: resp.Value, head: bytes, message: resp.Message, out: list[Output]) -> None:
        items = value.items or []
        end = message.end
        assert isinstance(end, _Tag)
        if head in _PUBSUB_REPLIES:
            command = _PUBSUB_REPLIES[head]
            count = items[2].integer() if len(items) > 2 and items[2].kind == resp.INTEGER else None
            if count is not None:
                self._subscriptions = count
            request = next((r for r in self._pending if r.name == command), None)
            if request is None:
                return  # the server ended a subscription on its own
            request.got += 1
            request.reply, request.reply_end, request.reply_lost = value, end, message.lost
            if request.got == request.expected or (request.expected is None and not count):
                self._pending.remove(request)
                self._held -= request.weight
                out.append(Annotation(end.call, f"redis {command}: ok ({request.got} channels)"))
                out.append(self._record(request))
            return
        if head in _DELIVERIES:
            pattern = items[1].text() if head == b"pmessage" and len(items) > 1 else None
            rest = items[2:] if head == b"pmessage" else items[1:]
            channel = rest[0] if rest else None
            payload = rest[1] if len(rest) > 1 else None
            self._message(channel, payload, end, message.lost, out, Pattern=pattern, Kind=head.decode())
            return
        if head == b"invalidate":  # CLIENT TRACKING in RESP3: the keys whose cached values are stale
            keys = items[1] if len(items) > 1 else None
            self._message(None, None, end, message.lost, out, Kind="invalidate",
                          Keys=None if keys is None or keys.is_null else keys.size, channel_name="__redis__:invalidate")  # fmt: skip
            return
        self._message(None, None, end, message.lost, out, Kind=head.decode("utf-8", "replace")[:64] or value.type_name,
                      channel_name=head.decode("utf-8", "replace")[:64] or "push")  # fmt: skip

    def _message(
        self,
        channel: resp.Value | None,
        payload: resp.Value | None,
        end: _Tag,
        lost: bool,
        out: list[Output],
        channel_name: str | None = None,
        **extra: AttrValue,
    ) -> None:
        name = channel_name if channel is None else printable_bytes(channel.data)
        size: int | None = None
        if payload is not None and payload.kind in resp.BLOB_TYPES | resp.LINE_TYPES:
            size = max(payload.size, 0)
        elif payload is not None and payload.items is not None:  # RESP2 invalidations: an array of keys
            extra["Keys"] = payload.size
        out.append(Annotation(end.call, f"redis message on {name[:64]}"))
        out.append(
            BrokerMessage(
                protocol=PROTOCOL,
                process=end.pid,
                session=self.channel.channel_id,
                direction=MESSAGE_DELIVER,
                destination=name or "",
                time=end.time,
                size=size,
                status="unacknowledged",
                truncated=lost,
                extra={"Channel": name, **{k: v for k, v in extra.items() if v is not None}},
            )
        )

    def _on_monitored(
        self, value: resp.Value, line: re.Match[bytes], message: resp.Message, out: list[Output]
    ) -> None:
        """A command another client sent, as MONITOR shows it: its name only (its arguments may hold
        anything, secrets included)."""
        end = message.end
        assert isinstance(end, _Tag)
        out.append(
            BrokerMessage(
                protocol=PROTOCOL,
                process=end.pid,
                session=self.channel.channel_id,
                direction=MESSAGE_DELIVER,
                destination="MONITOR",
                time=end.time,
                size=value.size,
                status="unacknowledged",
                truncated=message.lost,
                extra={
                    "Kind": "monitor",
                    "Command": line.group(4).decode("utf-8", "replace").upper()[:64],
                    "Client": line.group(3).decode("utf-8", "replace")[:128],
                    "Database": int(line.group(2)),
                },
            )
        )

    # --- records --------------------------------------------------------------------------------------------

    def _record(self, request: _Request) -> CimObject:
        """The command's `Dockit_RedisCommand`, built directly as REDIS_COMMAND declares it (the
        declaration's checks cost a third of the decoding; tests/test_redis_decoder.py checks every
        record against it)."""
        value, start, args = request.reply, request.start, request.args
        first = 2 if " " in request.name else 1
        children: list[CimChild] = []
        secret = request.secret
        for index in range(first, min(len(args), first + MAX_ARGUMENT_CHILDREN)):
            position = (("Index", index - first),)
            if index in secret:
                children.append(CimChild("Argument", position, REDACTED))
                continue
            size = request.sizes[index]
            if size > len(args[index]):
                position += (("Size", size), ("Truncated", "true"))
            children.append(CimChild("Argument", position, _printable(args[index])))
        for index, access in c.keys(args):
            if index < len(args) and index not in secret:
                children.append(CimChild("Key", (("Name", _printable(args[index])), ("Access", access))))
        attrs: list[tuple[str, AttrValue]] = [("Process", start.pid), ("Session", self.channel.channel_id)]
        if start.time is not None:
            attrs.append(("Start", Time(start.time)))
        end = request.reply_end
        if value is not None and end is not None:
            if end.time is not None and start.time is not None:
                attrs.append(("Duration", Duration(max(0.0, end.time - start.time))))
            attrs.append(("Command", request.name))
            if value.is_error:
                attrs += (("Status", "error"), ("Error", value.text()))
            else:
                attrs.append(("Status", "ok"))
            attrs.append(("ReplyType", value.type_name))
            if value.kind in _SIZED and value.size >= 0:
                attrs.append(("ReplySize", value.size))
        else:
            attrs += (("Command", request.name), ("Status", "unknown"))
        attrs.append(("Arguments", max(0, request.count - first)))
        if request.transaction is not None:
            attrs.append(("Transaction", request.transaction))
        if c.blocking(args):
            attrs.append(("Blocking", "true"))
            if value is not None and value.is_null:
                attrs.append(("TimedOut", "true"))
        if request.lost or request.reply_lost:
            attrs.append(("Truncated", "true"))
        return CimObject("Dockit_RedisCommand", tuple(attrs), tuple(children))

    def _session_record(self) -> DatabaseSession:
        session = self._session
        start = session.start
        assert start is not None
        extra: dict[str, AttrValue] = {
            "ProtocolVersion": 3 if self._resp3 else 2,
            **session.extra,
            "Encrypted": "true" if self.channel.encrypted else "false",
            "Commands": session.commands,
        }
        return DatabaseSession(
            session_id=self.channel.channel_id,
            protocol=PROTOCOL,
            process=start.pid,
            server=self.channel.server,
            user=session.user,
            database=session.database,
            server_version=session.version,
            connection_id=session.connection_id,
            start=start.time,
            extra=extra,
        )


def _text(data: bytes) -> str:
    return _printable(data[:KEEP])


_NOT_PLAIN = re.compile(rb"[^\x20-\x5b\x5d-\x7e]")  # anything but printable ASCII without a backslash


def _printable(data: bytes) -> str:
    """`printable_bytes`, with the common case (a plain key or value) decoded at once."""
    return printable_bytes(data) if _NOT_PLAIN.search(data) else data.decode("ascii")
