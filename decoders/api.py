"""The contract between dockit's trace pipeline and protocol decoders.

A decoder is sans-IO, like h11: it is fed the bytes of one channel (a socket connection, or a pair of
pipes used as one duplex link), one chunk at a time, each with its direction and time, and returns what
it understood. It never reads a file, a trace or a socket, so it can be tested with bytes alone and used
outside strace (a pcap, a proxy).

The pipeline guarantees:
- one decoder instance per channel, created when its `score` wins on the channel's first bytes;
- each byte is fed once, even when both ends of a loopback connection or pipe are traced;
- chunks arrive in trace order; `Chunk.size` is what the system call really moved: when it is larger
  than `len(data)` the tracer cut the buffer and `size - len(data)` bytes are lost (`truncated`);
- a decoder that raises is reported and switched off for that channel; the trace goes on;
- `close` is called once: when a socket connection's last descriptor is closed, otherwise (pipes,
  connections still open) at the end of the trace; and after `feed` raised, so what was pending comes
  out (as `unknown`) before the channel is left undecoded;
- a decoder that spends more than the watchdog's limit (`--decoder-timeout`, 10 s) on one chunk is
  stopped and its channel left undecoded, so Ctrl-C and SIGTERM always end a live run.

A third-party decoder is a subclass of `Decoder` registered under the `dockit.decoders` entry-point
group (`[project.entry-points."dockit.decoders"] mine = "mypkg:MyDecoder"`) or named on the command
line with `--decoder module:Class`.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from decoders.records import Output

__all__ = [
    "ChannelInfo",
    "Chunk",
    "Decoder",
    "DecoderOptions",
    "Direction",
]


class Direction(enum.Enum):
    """Which way bytes went, seen from the channel's local end (`ChannelInfo.local`)."""

    OUT = "out"
    IN = "in"

    def reverse(self) -> Direction:
        return Direction.IN if self is Direction.OUT else Direction.OUT


@dataclass(frozen=True, kw_only=True)
class ChannelInfo:
    """What the trace knows about a channel when its first bytes arrive."""

    channel_id: str
    kind: str  # "tcp", "tcp6", "udp", "udp6", "unix", "pipe", "unknown"
    local: str | None = None  # "127.0.0.1:36632", a unix path, "pipe:[5648149]"
    remote: str | None = None  # "127.0.0.1:3306"
    local_port: int | None = None
    remote_port: int | None = None
    listening: bool = False  # the local end accepted this connection (a server)
    pid: int = 0  # the traced process on the local end
    encrypted: bool = False  # the bytes are the plaintext of a TLS connection (ltrace's SSL_read/SSL_write)
    alpn: str | None = None  # the application protocol TLS negotiated (ALPN: "h2", "http/1.1"), when known

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(p for p in (self.remote_port, self.local_port) if p)

    @property
    def server(self) -> str | None:
        """The server's address: the remote end for a client, the local end for a server."""
        return self.local if self.listening else self.remote


@dataclass(frozen=True, kw_only=True)
class Chunk:
    """Bytes moved by one system call (or library call)."""

    data: bytes
    direction: Direction
    time: float | None  # seconds since the epoch (or since midnight when the log has no date)
    pid: int
    size: int  # bytes the call really moved; > len(data) when the tracer cut the buffer
    call_index: int = 0  # index of the call in the trace, so outputs can point back to it

    @property
    def truncated(self) -> bool:
        return self.size > len(self.data)

    @property
    def missing(self) -> int:
        return max(0, self.size - len(self.data))


@dataclass(frozen=True, kw_only=True)
class DecoderOptions:
    """What the user asked of every decoder on the command line."""

    rows: int = 0  # `--rows N`: rows of each result set kept in the summary (0: none, they may be personal data)
    proto: tuple[bytes, ...] = ()  # `--proto FILE`: protobuf FileDescriptorSets, for gRPC messages' field names


class Decoder(ABC):
    """One stateful decoder per channel. Subclasses set `name` and implement `score` and `feed`.

    `options` holds the user's `DecoderOptions`; the pipeline sets it on each new decoder before the
    first `feed` (a decoder built by hand, as in a test, has the defaults)."""

    name: ClassVar[str]  # the protocol's short name, as in `--decode 3306=mysql`
    ports: ClassVar[frozenset[int]] = frozenset()  # well-known ports: a hint, never proof
    # ALPN protocol ids (RFC 7301: "h2", "http/1.1"): a TLS connection that negotiated one of them is
    # this decoder's, whatever its first bytes score (the peers agreed on it).
    alpn: ClassVar[frozenset[str]] = frozenset()
    options: DecoderOptions = DecoderOptions()

    def __init__(self, channel: ChannelInfo) -> None:
        self.channel = channel

    @classmethod
    @abstractmethod
    def score(cls, data: bytes, direction: Direction, channel: ChannelInfo) -> int:
        """How sure this decoder is that a channel starting with `data` is its protocol.

        Below 1: not mine. 100: certain (a MySQL greeting, an HTTP request line). The registry adds a
        bonus when the channel uses one of `ports`; the highest score wins.
        """

    @abstractmethod
    def feed(self, chunk: Chunk) -> Sequence[Output]:
        """Take one chunk; return the records and annotations it completes."""

    def close(self, time: float | None) -> Sequence[Output]:
        """The connection ended (its last descriptor was closed) or the trace did: flush what is
        pending, marked unfinished. The decoder is fed nothing after this."""
        return ()

    def reading_since(self) -> int | None:
        """The call (`Chunk.call_index`) where the message this decoder is still reading began, or None
        when it holds no unfinished message. The `--each-call` calls file waits for that call and the
        ones after it until the message is complete, so a `Secret` returned then still hides every call
        that carried it (a password split across two writes). The readers of `decoders.framing` know
        it: `return framing.reading_since(*self.readers.values())`. Asked after each chunk: keep it cheap."""
        return None
