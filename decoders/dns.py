"""DNS lookups seen on one channel, client or server side: each query matched to its response, one
`Dockit_DnsQuery` per question asked.

Over UDP each chunk is one datagram (the tracker hands each datagram of sendmmsg/recvmmsg over as a
chunk of its own), so each chunk is one message. Over TCP, and over TLS (DoT, port 853, when the TLS
plaintext is fed), each message has a 2-byte length before it (`decoders.framing.LengthPrefixed`).

A query is matched with the response that has its id, name and type, from the other direction (so the
A and AAAA queries glibc sends together, with one socket, pair correctly whatever order the answers come
in). A query sent again before its answer (a retry) is counted, not recorded twice. Roles come from the
QR bit: the side that sends queries is the client.

What comes out per query: Name, Type, Rcode, the answers (name, type, value: an address, a name, MX's
or SRV's fields, TXT's text; and TTL), Duration, Server (the DNS server's address), Process, Side,
Id, whether the answer was authoritative or truncated (TC: the client should ask again over TCP), and
`Truncated` when the tracer cut the bytes. Queries never answered come out at close with status unknown.
Pending queries are bounded (MAX_PENDING; the oldest goes out unanswered).
"""

from __future__ import annotations

from collections.abc import Sequence

from construct import Int16ub, Struct

from decoders import framing
from decoders.api import ChannelInfo, Chunk, Decoder, Direction
from decoders.records import COUNT, DURATION, FLAG, TEXT, TIME, Annotation, ChildType, Output, RecordType
from protocols import dns

MAX_PENDING = 256
MAX_ANSWERS_SHOWN = 32
PORTS = frozenset({53, 853})
_TCP_HEADER = Struct("length" / Int16ub)

DNS_QUERY = RecordType(
    "Dockit_DnsQuery",
    Name=TEXT,
    Type=TEXT,
    Class=TEXT,
    Rcode=TEXT,
    Status=TEXT,
    Answers=COUNT,
    Addresses=TEXT,
    Server=TEXT,
    Transport=TEXT,
    Side=TEXT,
    Process=COUNT,
    Session=TEXT,
    Id=COUNT,
    Start=TIME,
    Duration=DURATION,
    Retries=COUNT,
    Authoritative=FLAG,
    AnswerTruncated=FLAG,
    Truncated=FLAG,
)
ANSWER = ChildType("Answer", Name=TEXT, Type=TEXT, Value=TEXT, Ttl=COUNT, Section=TEXT)


def _datagram(kind: str) -> bool:
    return kind in ("udp", "udp6")


def _tcp_message(data: bytes) -> bytes | None:
    """The first message of a TCP stream that starts with it whole, else None."""
    if len(data) < 2:
        return None
    length = int.from_bytes(data[:2], "big")
    return data[2 : 2 + length] if len(data) >= 2 + length else None


class _Query:
    __slots__ = ("message", "question", "start", "pid", "call_index", "retries", "truncated")

    def __init__(
        self, message: dns.Message, question: dns.Question, chunk_time: float | None, pid: int, call: int
    ):
        self.message = message
        self.question = question
        self.start = chunk_time
        self.pid = pid
        self.call_index = call
        self.retries = 0
        self.truncated = not message.complete


class DnsDecoder(Decoder):
    name = "dns"
    ports = PORTS

    def __init__(self, channel: ChannelInfo) -> None:
        super().__init__(channel)
        self.datagrams = _datagram(channel.kind)
        self.readers = {d: framing.LengthPrefixed(_TCP_HEADER, max_keep=65535) for d in Direction}
        self.client: Direction | None = None
        self.pending: dict[tuple[int, str, int], _Query] = {}
        self.closed = False

    @classmethod
    def score(cls, data: bytes, direction: Direction, channel: ChannelInfo) -> int:
        message = bytes(data) if _datagram(channel.kind) else _tcp_message(bytes(data))
        if message is None:
            return 0
        if dns.looks_like_query(message):
            return 60
        if dns.looks_like_response(message):
            return 40
        return 0

    @property
    def transport(self) -> str:
        if getattr(self.channel, "encrypted", False):
            return "tls"
        return "udp" if self.datagrams else "tcp"

    def feed(self, chunk: Chunk) -> Sequence[Output]:
        if self.closed:
            return ()
        out: list[Output] = []
        if self.datagrams:
            message = dns.parse(chunk.data)
            if message is not None:
                if chunk.missing:
                    message.complete = False
                self._message(message, chunk.direction, chunk.time, chunk.pid, chunk.call_index, out)
            return out
        for frame in self.readers[chunk.direction].feed(chunk):
            message = dns.parse(frame.data)
            if message is not None:
                if frame.truncated:
                    message.complete = False
                end = frame.end
                time = frame.start.time if not message.response else end.time
                self._message(message, chunk.direction, time, frame.start.pid, frame.start.call_index, out)
        return out

    def reading_since(self) -> int | None:
        return None if self.datagrams else framing.reading_since(*self.readers.values())

    def _message(
        self,
        message: dns.Message,
        direction: Direction,
        time: float | None,
        pid: int,
        call: int,
        out: list[Output],
    ) -> None:
        if self.client is None:
            self.client = direction.reverse() if message.response else direction
        if not message.response:
            for question in message.questions[:4]:
                key = (message.id, question.name.lower(), question.type)
                known = self.pending.get(key)
                if known is not None:
                    known.retries += 1
                    continue
                if len(self.pending) >= MAX_PENDING:
                    oldest = next(iter(self.pending))
                    out.append(self._record(self.pending.pop(oldest), None, None))
                self.pending[key] = _Query(message, question, time, pid, call)
                out.append(Annotation(call, f"dns {dns.type_name(question.type)} {question.name}"))
            return
        question = message.question
        if question is None:  # cut before its question: its id says which query it answers
            key = next((k for k in self.pending if k[0] == message.id), None)
            if key is None or message.complete:
                return
            question = self.pending[key].question
        query = self.pending.pop((message.id, question.name.lower(), question.type), None)
        if query is None:
            # a response to a query not seen (a trace begun in between): recorded without its start
            query = _Query(message, question, None, pid, call)
        addresses = [r.value for r in message.answers if r.type in (1, 28) and r.value]
        summary = ", ".join(addresses[:4]) or dns.rcode_name(message.rcode)
        out.append(Annotation(call, f"dns {question.name} {dns.type_name(question.type)}: {summary}"))
        out.append(self._record(query, message, time))

    def _record(self, query: _Query, response: dns.Message | None, time: float | None) -> object:
        question = query.question
        duration = None
        if response is not None and query.start is not None and time is not None:
            duration = max(0.0, time - query.start)
        children = []
        status = "unknown"
        rcode = None
        addresses = None
        if response is not None:
            rcode = dns.rcode_name(response.rcode)
            status = "ok" if response.rcode == 0 else "error"
            children = [
                ANSWER(Name=r.name, Type=dns.type_name(r.type), Value=r.value, Ttl=r.ttl, Section="answer")
                for r in response.answers[:MAX_ANSWERS_SHOWN]
            ]
            found = [r.value for r in response.answers if r.type in (1, 28) and r.value]
            addresses = " ".join(found) or None
        return DNS_QUERY(
            children,
            Name=question.name,
            Type=dns.type_name(question.type),
            Class=None
            if question.qclass == 1
            else dns.CLASS_NAMES.get(question.qclass, str(question.qclass)),
            Rcode=rcode,
            Status=status,
            Answers=len(response.answers) if response is not None else None,
            Addresses=addresses,
            Server=self.channel.server,
            Transport=self.transport,
            Side="client" if self.client is Direction.OUT else "server",
            Process=query.pid,
            Session=self.channel.channel_id,
            Id=query.message.id,
            Start=query.start,
            Duration=duration,
            Retries=query.retries or None,
            Authoritative=bool(response and response.authoritative),
            AnswerTruncated=bool(response and response.truncated),
            Truncated=query.truncated or bool(response is not None and not response.complete),
        )

    def close(self, time: float | None) -> Sequence[Output]:
        if self.closed:
            return ()
        self.closed = True
        out: list[Output] = [self._record(query, None, None) for query in self.pending.values()]
        self.pending.clear()
        return out
