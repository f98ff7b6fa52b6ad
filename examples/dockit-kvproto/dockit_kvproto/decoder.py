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

from decoders.api import ChannelInfo, Chunk, Decoder, Direction
from decoders.records import Annotation, CimObject, Output

GREETING = b"KV1"
COMMANDS = frozenset({"GET", "SET", "DEL", "QUIT"})
REPLIES = frozenset({"OK", "VALUE", "ERR"})
MAX_WORD = 32  # the longest command name kept in a record
MAX_LINE = 64 * 1024  # a longer line is kept to this length, marked truncated: memory stays bounded


def is_greeting(line: bytes) -> bool:
    return line.startswith(GREETING) and line[3:4] in (b"", b" ", b"\r", b"\n")


def first_word(data: bytes) -> str:
    return data.split(b" ", 1)[0].split(b"\n", 1)[0].rstrip(b"\r").decode("ascii", "replace")


class LineBuffer:
    """One direction's bytes cut into lines. Each byte is scanned once and consumed bytes are trimmed,
    so a long stream costs linear time, fed whole or one byte at a time."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.scanned = 0  # bytes of `buffer` already known to hold no newline
        self.skipping = False  # drop bytes up to the next newline: the tail of a cut line
        self.lost = False  # that tail was lost by the tracer, so it may end where a call starts

    def feed(self, data: bytes, starts_message: bool) -> list[tuple[bytes, bool]]:
        """The lines `data` completes, each with True when it was cut."""
        if self.skipping:
            if self.lost and starts_message:
                self.skipping = False  # the lost bytes ended on a line boundary: resynchronised
            else:
                newline = data.find(b"\n")
                if newline < 0:
                    return []
                data, self.skipping = data[newline + 1 :], False
        self.buffer += data
        lines, start = [], 0
        while (end := self.buffer.find(b"\n", max(start, self.scanned))) >= 0:
            head = bytes(self.buffer[start : min(end, start + MAX_LINE)]).rstrip(b"\r")
            lines.append((head, end - start > MAX_LINE))
            start = end + 1
        del self.buffer[:start]
        self.scanned = len(self.buffer)
        if self.scanned > MAX_LINE:  # keep the head of an endless line, skip its tail
            lines.append((self.cut(lost=False), True))
        return lines

    def cut(self, lost: bool) -> bytes:
        """End the current line here (decoded as far as it goes) and skip the rest of it."""
        line = bytes(self.buffer[:MAX_LINE]).rstrip(b"\r")
        self.buffer.clear()
        self.scanned = 0
        self.skipping, self.lost = True, lost
        return line


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
        self.lines = {Direction.OUT: LineBuffer(), Direction.IN: LineBuffer()}
        self.client: Direction | None = None  # which direction carries commands, learnt from content
        self.pending: deque[PendingCommand] = deque()

    def feed(self, chunk: Chunk) -> Sequence[Output]:
        lines = self.lines[chunk.direction]
        head = chunk.data[: MAX_WORD + 1]
        starts_message = first_word(head) in COMMANDS | REPLIES or is_greeting(head)
        outputs: list[Output] = []
        for line, cut in lines.feed(chunk.data, starts_message):
            outputs += self._line(line, chunk, truncated=cut)
        if chunk.missing:  # the tracer lost the next `missing` bytes: this line ends here, cut
            line = lines.cut(lost=True)
            if line:
                outputs += self._line(line, chunk, truncated=True)
        return outputs

    def close(self, time: float | None) -> Sequence[Output]:
        """Commands never answered are reported with status "unknown"."""
        outputs = [self._record(command, "unknown", None, None, None) for command in self.pending]
        self.pending.clear()
        return outputs

    # -- one line ----------------------------------------------------------------------------------------
    def _line(self, line: bytes, chunk: Chunk, truncated: bool) -> list[Output]:
        word, _, rest = line.decode("utf-8", "replace").partition(" ")
        if self.client is None:  # roles from content: the server greets and replies, the client commands
            if is_greeting(line) or word in REPLIES:
                self.client = chunk.direction.reverse()
            elif word in COMMANDS:
                self.client = chunk.direction
            else:
                return []
        if chunk.direction is self.client:
            return self._command(word, rest, chunk, truncated)
        return self._reply(word, rest, chunk, truncated)

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
        return CimObject.make(
            "Kv_Command",
            {
                "Command": command.command,
                "Key": command.key,
                "Status": status,
                "Error": error,
                "ValueBytes": value_bytes,
                "Process": command.pid,
                "Server": self.channel.server,
                "Start": command.start,
                "Latency": round(latency, 6) if latency is not None else None,
                "Truncated": "true" if command.truncated else None,
            },
        )
