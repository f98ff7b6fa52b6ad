"""The dockit decoder for KV1: one `Kv_Command` summary object per command, with its reply and latency.

Decoded: GET, SET, DEL and QUIT with their key, the reply (OK, VALUE, ERR and its message), the time
from the call that sent the command to the call that carried its reply, pipelined commands (replies are
matched first in, first out), and buffers the tracer cut (the command is kept, marked truncated).
Not decoded: values. A value may be a secret, so a record says how long it was, never what it was.

Sans-IO: the decoder never reads a socket or a trace; it is fed `Chunk`s and returns outputs, so its
tests are bytes in, records out (tests/test_kvproto_decoder.py).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

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

GREETING = b"KV1"
COMMANDS = frozenset({"GET", "SET", "DEL", "QUIT"})
REPLIES = frozenset({"OK", "VALUE", "ERR"})
MAX_WORD = 32  # the longest command name kept in a record
MAX_LINE = 64 * 1024  # a longer line is kept to this length, marked truncated: memory stays bounded

# The summary class, declared once: each attribute's type says how it is written (Start as a date,
# Latency with six decimals), whatever its name.
KV_COMMAND = RecordType(
    "Kv_Command",
    Command=TEXT,
    Key=TEXT,
    Status=TEXT,
    Error=TEXT,
    ValueBytes=COUNT,
    Process=COUNT,
    Server=TEXT,
    Start=TIME,
    Latency=DURATION,
    Truncated=FLAG,
)


def is_greeting(line: bytes) -> bool:
    return line.startswith(GREETING) and line[3:4] in (b"", b" ", b"\r", b"\n")


def first_word(data: bytes) -> str:
    return data.split(b" ", 1)[0].split(b"\n", 1)[0].rstrip(b"\r").decode("ascii", "replace")


def starts_message(data: bytes) -> bool:
    """Whether a chunk begins with a KV1 message: after the tracer lost the tail of a line, such a
    chunk is where the stream takes up again."""
    return first_word(data[: MAX_WORD + 1]) in COMMANDS | REPLIES or is_greeting(data)


@dataclass
class PendingCommand:
    """A command sent and not yet answered."""

    command: str
    key: str | None
    value_bytes: int | None
    start: float | None
    pid: int
    truncated: bool


class KvDecoder(Decoder):
    """KV1 on one connection: commands from the client, matched to the server's replies in order."""

    name = "kvproto"
    ports = frozenset({7379})  # a hint: the registry adds a bonus, the greeting is the proof

    @classmethod
    def score(cls, data: bytes, direction: Direction, channel: ChannelInfo) -> int:
        """The server's greeting is certain; anything else is not claimed (use `--decode PORT=kvproto`)."""
        return 100 if is_greeting(data) else 0

    def __init__(self, channel: ChannelInfo) -> None:
        super().__init__(channel)
        # One line reader per direction (decoders.framing): each byte scanned once, lines capped at
        # MAX_LINE, a line the tracer cut given as truncated, and the stream taken up again at the next
        # chunk that starts with a message.
        self.lines = {
            direction: framing.LineReader(max_line=MAX_LINE, starts_message=starts_message)
            for direction in Direction
        }
        self.client: Direction | None = None  # which direction carries commands, learnt from content
        self.pending: deque[PendingCommand] = deque()

    def feed(self, chunk: Chunk) -> Sequence[Output]:
        outputs: list[Output] = []
        for line in self.lines[chunk.direction].feed(chunk):
            outputs += self._line(line.data, line.start, line.end, truncated=line.truncated)
        return outputs

    def reading_since(self) -> int | None:
        """Where an unfinished line began, so that dockit's calls file waits for it (see Secret)."""
        return framing.reading_since(*self.lines.values())

    def close(self, time: float | None) -> Sequence[Output]:
        """Commands never answered are reported with status "unknown"."""
        outputs = [self._record(command, "unknown", None, None, None) for command in self.pending]
        self.pending.clear()
        return outputs

    # -- one line ----------------------------------------------------------------------------------------
    def _line(self, line: bytes, start: Chunk, end: Chunk, truncated: bool) -> list[Output]:
        """One line: `start` is the chunk that carried its first byte (its call gets the annotation, its
        time is the command's start), `end` the chunk that completed it (a reply's time)."""
        word, _, rest = line.decode("utf-8", "replace").partition(" ")
        if self.client is None:  # roles from content: the server greets and replies, the client commands
            if is_greeting(line) or word in REPLIES:
                self.client = start.direction.reverse()
            elif word in COMMANDS:
                self.client = start.direction
            else:
                return []
        if start.direction is self.client:
            return self._command(word, rest, start, truncated)
        if word not in REPLIES and not is_greeting(line):
            return [
                Problem(
                    "warning", f"the server sent {word[:MAX_WORD]!r}, which is no KV1 reply", end.call_index
                )
            ]
        return self._reply(word, rest, end, truncated)

    def _command(self, word: str, rest: str, chunk: Chunk, truncated: bool) -> list[Output]:
        # Every line gets one reply, even a command the server does not know: keep them all in line.
        key, _, value = rest.partition(" ")
        word = word[:MAX_WORD]
        self.pending.append(
            PendingCommand(
                command=word,
                key=key or None,
                value_bytes=len(value.encode()) if word == "SET" and not truncated else None,
                start=chunk.time,
                pid=chunk.pid,
                truncated=truncated,
            )
        )
        return [Annotation(chunk.call_index, f"kvproto: {word} {key}".rstrip())]

    def _reply(self, word: str, rest: str, chunk: Chunk, truncated: bool) -> list[Output]:
        if word not in REPLIES or not self.pending:
            return []  # the greeting, garbage, or the answer to a command sent before the trace began
        command = self.pending.popleft()
        command.truncated |= truncated
        latency = chunk.time - command.start if chunk.time is not None and command.start is not None else None
        status = "error" if word == "ERR" else "ok"
        value_bytes = command.value_bytes
        if word == "VALUE":
            value_bytes = None if truncated else len(rest.encode())
        record = self._record(command, status, rest if word == "ERR" else None, latency, value_bytes)
        return [
            record,
            Annotation(
                chunk.call_index, f"kvproto: {word} to {command.command} {command.key or ''}".rstrip()
            ),
        ]

    def _record(
        self,
        command: PendingCommand,
        status: str,
        error: str | None,
        latency: float | None,
        value_bytes: int | None,
    ) -> CimObject:
        return KV_COMMAND(
            Command=command.command,
            Key=command.key,
            Status=status,
            Error=error,
            ValueBytes=value_bytes,
            Process=command.pid,
            Server=self.channel.server,
            Start=command.start,
            Latency=round(latency, 6) if latency is not None else None,
            Truncated=command.truncated,
        )
