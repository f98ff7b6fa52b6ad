"""Chunks for tests: built from bytes or from a hex dump, channels made in one line, and the fixture
files `dockit extract --channel ID LOG` writes (one channel's chunks, as a readable hex dump)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from decoders.api import ChannelInfo, Chunk, Direction

__all__ = [
    "Fixture",
    "channel",
    "chunk",
    "conversation",
    "from_hex",
    "hexdump",
    "load_chunks",
    "save_chunks",
]

OUT, IN = Direction.OUT, Direction.IN
FIXTURE_MAGIC = "# dockit chunks 1"


def channel(
    port: int | None = None,
    *,
    server: bool = False,
    kind: str = "tcp",
    channel_id: str = "test",
    pid: int = 1,
    client_port: int = 40000,
) -> ChannelInfo:
    """A channel as dockit would describe it: the traced process is the client of 127.0.0.1:`port`, or
    with `server=True` the server that accepted the connection (then OUT is server to client)."""
    if port is None:
        return ChannelInfo(channel_id=channel_id, kind=kind, pid=pid)
    here, there = (port, client_port) if server else (client_port, port)
    return ChannelInfo(
        channel_id=channel_id,
        kind=kind,
        local=f"127.0.0.1:{here}",
        remote=f"127.0.0.1:{there}",
        local_port=here,
        remote_port=there,
        listening=server,
        pid=pid,
    )


def chunk(
    data: bytes,
    direction: Direction = OUT,
    *,
    time: float | None = None,
    pid: int = 1,
    size: int | None = None,
    call_index: int = 0,
) -> Chunk:
    """One chunk; `size` defaults to len(data) (give more to say the tracer cut the buffer)."""
    return Chunk(
        data=bytes(data),
        direction=direction,
        time=time,
        pid=pid,
        size=len(data) if size is None else size,
        call_index=call_index,
    )


def conversation(
    messages: Iterable[tuple[Direction, bytes]],
    *,
    start: float = 1_700_000_000.0,
    step: float = 0.001,
    pid: int = 1,
    first_call: int = 1,
) -> list[Chunk]:
    """One chunk per (direction, bytes), as one call each: call indexes 1, 2, 3... and times `step`
    seconds apart, so latencies are known: `conversation([(OUT, b"GET k\\n"), (IN, b"VALUE v\\n")])`."""
    return [
        chunk(data, direction, time=start + n * step, pid=pid, call_index=first_call + n)
        for n, (direction, data) in enumerate(messages)
    ]


_OFFSET = re.compile(r"\s*([0-9A-Fa-f]{4,16})(?::\s|\s\s|:?$)")
_LONE_OFFSET = re.compile(r"\s*[0-9A-Fa-f]{4,16}:?\s*")
_HEX_TOKEN = re.compile(r"(?:[0-9A-Fa-f]{2})+")


def from_hex(dump: str) -> bytes:
    """The bytes of a hex dump: plain hex (`16 03 01 00 a5` or `160301`), `xxd`, `hexdump -C`, tshark's
    and Wireshark's hex dumps (offsets and the ASCII column are skipped)."""
    data = bytearray()
    offsets = False  # the dump has offsets: a last line that is only one (hexdump -C's total) is no data
    for line in dump.splitlines():
        if offsets and _LONE_OFFSET.fullmatch(line):
            continue
        offsets = offsets or bool(_OFFSET.match(line) and len(line.strip()) > 16)
        data += _hex_line(line)
    return bytes(data)


def _hex_line(line: str) -> bytes:
    line = line.rstrip()
    match = _OFFSET.match(line)
    has_offset = match is not None and len(line) > match.end()
    rest = line[match.end() :] if has_offset else line  # type: ignore[union-attr]
    found = bytearray()
    position = 0
    for token in re.finditer(r"\S+", rest):
        gap = token.start() - position
        position = token.end()
        text = token.group(0)
        if found and gap >= 3:  # the ASCII column after a short last line
            break
        if not _HEX_TOKEN.fullmatch(text) or (has_offset and len(text) > 8):
            break
        found += bytes.fromhex(text)
        if has_offset and len(found) >= 16:
            break
    return bytes(found)


def hexdump(data: bytes, indent: str = "") -> str:
    """`data` as `hexdump -C` writes it (offset, 16 bytes, the printable ones between bars): what
    `from_hex` reads back."""
    lines = []
    for offset in range(0, len(data), 16):
        row = data[offset : offset + 16]
        hexes = " ".join(f"{b:02x}" for b in row[:8]) + "  " + " ".join(f"{b:02x}" for b in row[8:])
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in row)
        lines.append(f"{indent}{offset:08x}  {hexes:<49} |{text}|")
    return "\n".join(lines)


@dataclass
class Fixture:
    """What a fixture file holds: the channel as the trace described it, and its chunks in order."""

    channel: ChannelInfo
    chunks: list[Chunk]
    source: str | None = None


def _channel_line(info: ChannelInfo) -> str:
    fields = [
        f"kind={info.kind}",
        *(f"local={info.local}" for _ in [1] if info.local),
        *(f"remote={info.remote}" for _ in [1] if info.remote),
        *(f"local_port={info.local_port}" for _ in [1] if info.local_port),
        *(f"remote_port={info.remote_port}" for _ in [1] if info.remote_port),
        f"listening={'true' if info.listening else 'false'}",
        f"pid={info.pid}",
    ]
    return f"channel {_quote(info.channel_id)} " + " ".join(fields)


def _quote(text: str) -> str:
    """A value without spaces or line breaks (unix socket paths may have them): percent-escaped."""
    return re.sub(r"[%\s]", lambda m: f"%{ord(m.group(0)):02x}", text)


def _unquote(text: str) -> str:
    return re.sub(r"%([0-9a-f]{2})", lambda m: chr(int(m.group(1), 16)), text)


def chunk_header(item: Chunk) -> str:
    parts = [item.direction.value]
    if item.time is not None:
        parts.append(f"time={item.time!r}")
    parts += [f"pid={item.pid}", f"call={item.call_index}", f"size={item.size}"]
    return " ".join(parts)


def format_fixture(info: ChannelInfo, chunks: Iterable[Chunk], source: str | None = None) -> Iterable[str]:
    """The fixture file's text, line by line (so a long channel is written as it is read)."""
    yield FIXTURE_MAGIC + "\n"
    if source:
        yield f"# from {_quote(source)}\n"
    yield _channel_line(info) + "\n"
    for item in chunks:
        yield chunk_header(item) + "\n"
        if item.data:
            yield hexdump(item.data, "  ") + "\n"


def save_chunks(
    path: str | Path, info: ChannelInfo, chunks: Sequence[Chunk], source: str | None = None
) -> None:
    """Write a fixture file (the format `dockit extract` writes and `load_chunks` reads)."""
    Path(path).write_text("".join(format_fixture(info, chunks, source)), encoding="ascii")


class FixtureError(ValueError):
    """A fixture file that is not one."""


def load_chunks(path: str | Path) -> Fixture:
    """Read a fixture file written by `dockit extract --channel ID LOG` (or `save_chunks`)."""
    text = Path(path).read_text(encoding="ascii")
    return parse_fixture(text)


def parse_fixture(text: str) -> Fixture:
    lines = text.splitlines()
    if not lines or lines[0].strip() != FIXTURE_MAGIC:
        raise FixtureError(f"not a dockit chunks file (its first line is not {FIXTURE_MAGIC!r})")
    info: ChannelInfo | None = None
    source = None
    chunks: list[Chunk] = []
    header: dict[str, str] | None = None
    direction = OUT
    data = bytearray()

    def finish() -> None:
        if header is None:
            return
        chunks.append(
            Chunk(
                data=bytes(data),
                direction=direction,
                time=float(header["time"]) if "time" in header else None,
                pid=int(header.get("pid", "0")),
                size=int(header.get("size", str(len(data)))),
                call_index=int(header.get("call", "0")),
            )
        )

    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        if line.startswith("# from "):
            source = _unquote(line[7:].strip())
            continue
        if line.startswith("#"):
            continue
        if line.startswith("channel "):
            words = line.split()
            values = dict(word.split("=", 1) for word in words[2:] if "=" in word)
            info = ChannelInfo(
                channel_id=_unquote(words[1]),
                kind=values.get("kind", "unknown"),
                local=_unquote(values["local"]) if "local" in values else None,
                remote=_unquote(values["remote"]) if "remote" in values else None,
                local_port=int(values["local_port"]) if "local_port" in values else None,
                remote_port=int(values["remote_port"]) if "remote_port" in values else None,
                listening=values.get("listening") == "true",
                pid=int(values.get("pid", "0")),
            )
            continue
        if line.startswith(("out", "in")) and not line.startswith(" "):
            finish()
            words = line.split()
            try:
                direction = Direction(words[0])
            except ValueError as error:
                raise FixtureError(f"line {number}: {words[0]!r} is neither out nor in") from error
            header = dict(word.split("=", 1) for word in words[1:] if "=" in word)
            data = bytearray()
            continue
        if header is None:
            raise FixtureError(f"line {number}: bytes before the first 'out' or 'in' line")
        data += _hex_line(line)
    finish()
    if info is None:
        raise FixtureError("no 'channel' line")
    return Fixture(info, chunks, source)
