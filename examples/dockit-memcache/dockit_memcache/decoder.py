"""memcached's text protocol (protocol.txt of the memcached sources), decoded from either end.

Decoded: storage commands (set, add, replace, append, prepend, cas) with their data block's length,
retrieval (get, gets, gat, gats) with the keys asked and the values found, delete, incr, decr, touch,
and the other one-line commands (version, stats, flush_all, verbosity, quit...), each matched in order
to its reply (STORED, NOT_STORED, EXISTS, NOT_FOUND, DELETED, TOUCHED, a number, VALUE...END, STAT...END,
ERROR, CLIENT_ERROR, SERVER_ERROR). `noreply` commands get no reply and are reported at once.
Not decoded: the binary protocol, meta commands (mg, ms...). Values are never kept, only their length.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from decoders import framing
from decoders.api import ChannelInfo, Chunk, Decoder, Direction
from decoders.records import (
    COUNT,
    DURATION,
    FLAG,
    TEXT,
    TIME,
    Annotation,
    CimObject,
    Output,
    Problem,
    RecordType,
)

STORAGE = frozenset({"set", "add", "replace", "append", "prepend", "cas"})
RETRIEVAL = frozenset({"get", "gets", "gat", "gats"})
OTHER = frozenset({"delete", "incr", "decr", "touch", "version", "stats", "flush_all", "verbosity", "quit",
                   "shutdown", "cache_memlimit", "lru_crawler", "slabs", "watch", "misbehave"})  # fmt: skip
COMMANDS = STORAGE | RETRIEVAL | OTHER
ONE_LINE_REPLIES = frozenset({"STORED", "NOT_STORED", "EXISTS", "NOT_FOUND", "DELETED", "TOUCHED", "OK", "ERROR",
                              "CLIENT_ERROR", "SERVER_ERROR", "VERSION", "RESET"})  # fmt: skip
MAX_LINE = 8 * 1024  # a key is at most 250 bytes; a longer line is kept cut

MEMCACHE_COMMAND = RecordType(
    "Memcache_Command",
    Command=TEXT,
    Key=TEXT,
    Keys=COUNT,
    Hits=COUNT,
    Status=TEXT,
    Error=TEXT,
    ValueBytes=COUNT,
    Process=COUNT,
    Server=TEXT,
    Start=TIME,
    Latency=DURATION,
    NoReply=FLAG,
    Truncated=FLAG,
)


def _words(line: bytes) -> list[str]:
    return line.decode("utf-8", "replace").split()


def command_block(line: bytes) -> int:
    """The data block a client line announces: `set k flags exptime bytes [noreply]` is followed by
    `bytes` bytes and CRLF."""
    words = line.split()
    if len(words) >= 5 and words[0].decode("ascii", "replace") in STORAGE and words[4].isdigit():
        return int(words[4]) + 2
    return 0


def reply_block(line: bytes) -> int:
    """`VALUE key flags bytes [cas]` is followed by `bytes` bytes and CRLF."""
    words = line.split()
    if len(words) >= 4 and words[0] == b"VALUE" and words[3].isdigit():
        return int(words[3]) + 2
    return 0


def starts_message(data: bytes) -> bool:
    word = data.split(b" ", 1)[0].split(b"\r", 1)[0].decode("ascii", "replace")
    return word in COMMANDS or word in ONE_LINE_REPLIES or word in ("VALUE", "END", "STAT") or word.isdigit()


@dataclass
class Pending:
    command: str
    key: str | None
    keys: int
    value_bytes: int | None
    start: Chunk
    truncated: bool
    hits: int = 0
    found_bytes: int = 0
    stats: bool = False
    values: list[int] = field(default_factory=list)


class MemcacheDecoder(Decoder):
    name = "memcache"
    ports = frozenset({11211})

    @classmethod
    def score(cls, data: bytes, direction: Direction, channel: ChannelInfo) -> int:
        """A command line with CRLF is good evidence (`get k\\r\\n`, `set k 0 0 5\\r\\n`); the port helps."""
        line, crlf, _ = data.partition(b"\r\n")
        if not crlf:
            return 0
        words = line.split()
        if not words:
            return 0
        word = words[0].decode("ascii", "replace")
        if word in STORAGE and len(words) >= 5 and all(w.isdigit() for w in words[2:5]):
            return 90
        if word in RETRIEVAL and len(words) >= 2:
            return 60
        if word in ("version", "stats") and len(words) <= 2:
            return 40
        return 0

    def __init__(self, channel: ChannelInfo) -> None:
        super().__init__(channel)
        self.readers: dict[Direction, framing.LineReader] = {}
        self.client: Direction | None = None
        self.pending: deque[Pending] = deque()

    def _reader(self, direction: Direction) -> framing.LineReader:
        reader = self.readers.get(direction)
        if reader is None:
            client = direction is self.client
            reader = self.readers[direction] = framing.LineReader(
                b"\r\n", max_line=MAX_LINE, starts_message=starts_message,
                block_size=command_block if client else reply_block,
            )  # fmt: skip
        return reader

    def feed(self, chunk: Chunk) -> Sequence[Output]:
        if self.client is None:
            if not chunk.data:
                return []
            # The client speaks first in memcached: the first bytes seen are its command, unless they
            # look like a reply (a trace attached mid-conversation).
            word = chunk.data.split(b" ", 1)[0].split(b"\r", 1)[0].decode("ascii", "replace")
            replyish = word in ONE_LINE_REPLIES or word in ("VALUE", "END", "STAT")
            self.client = chunk.direction.reverse() if replyish else chunk.direction
        out: list[Output] = []
        for frame in self._reader(chunk.direction).feed(chunk):
            if chunk.direction is self.client:
                out += self._command(frame)
            else:
                out += self._reply(frame)
        return out

    def reading_since(self) -> int | None:
        return framing.reading_since(*self.readers.values())

    def close(self, time: float | None) -> Sequence[Output]:
        out = [self._record(p, "unknown", None, None) for p in self.pending]
        self.pending.clear()
        return out

    def _command(self, frame: framing.Frame) -> list[Output]:
        words = _words(frame.data)
        if not words:
            return []
        command = words[0][:32]
        noreply = words[-1] == "noreply" and command not in RETRIEVAL
        keys = words[1:] if command in RETRIEVAL else words[1:2]
        if command in ("gat", "gats"):
            keys = words[2:]
        value_bytes = None
        if command in STORAGE and frame.block is not None and not frame.truncated:
            value_bytes = len(frame.block) - 2
        pending = Pending(
            command, keys[0] if keys else None, len(keys), value_bytes, frame.start, frame.truncated
        )
        note = Annotation(frame.start.call_index, f"memcache: {command} {' '.join(keys[:3])}".rstrip())
        if noreply:
            return [self._record(pending, "sent", None, None, noreply=True), note]
        self.pending.append(pending)
        return [note]

    def _reply(self, frame: framing.Frame) -> list[Output]:
        words = _words(frame.data)
        word = words[0] if words else ""
        if not self.pending:
            return [Problem("warning", f"a reply ({word[:32]!r}) to no command", frame.end.call_index)]
        pending = self.pending[0]
        pending.truncated |= frame.truncated
        if word == "VALUE":
            pending.hits += 1
            if frame.block is not None and not frame.truncated:
                pending.found_bytes += len(frame.block) - 2
            return []
        if word == "STAT":
            pending.stats = True
            return []
        self.pending.popleft()
        latency = None
        if frame.end.time is not None and pending.start.time is not None:
            latency = frame.end.time - pending.start.time
        if word == "END":
            status = "hit" if pending.hits else "miss"
            if pending.command not in RETRIEVAL:
                status = "ok"
            return [self._record(pending, status, None, latency), self._note(frame, word, pending)]
        if word in ("ERROR", "CLIENT_ERROR", "SERVER_ERROR"):
            message = " ".join(words[1:]) or word
            return [self._record(pending, "error", message, latency), self._note(frame, word, pending)]
        if word in ONE_LINE_REPLIES or word.isdigit():
            status = word.lower() if not word.isdigit() else "ok"
            return [self._record(pending, status, None, latency), self._note(frame, word, pending)]
        return [
            self._record(pending, "unknown", None, latency),
            Problem("warning", f"{word[:32]!r} is no memcached reply", frame.end.call_index),
        ]

    def _note(self, frame: framing.Frame, word: str, pending: Pending) -> Annotation:
        return Annotation(frame.end.call_index, f"memcache: {word} to {pending.command}")

    def _record(self, pending: Pending, status: str, error: str | None, latency: float | None,
                noreply: bool = False) -> CimObject:  # fmt: skip
        value_bytes = pending.value_bytes
        if pending.command in RETRIEVAL and pending.hits:
            value_bytes = pending.found_bytes if not pending.truncated else None
        return MEMCACHE_COMMAND(
            Command=pending.command,
            Key=pending.key,
            Keys=pending.keys if pending.keys > 1 else None,
            Hits=pending.hits if pending.command in RETRIEVAL else None,
            Status=status,
            Error=error,
            ValueBytes=value_bytes,
            Process=pending.start.pid,
            Server=self.channel.server,
            Start=pending.start.time,
            Latency=latency,
            NoReply=noreply,
            Truncated=pending.truncated,
        )
