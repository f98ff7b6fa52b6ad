"""`--pcap FILE`: every channel's bytes as a pcapng file that Wireshark and tshark read, written with
scapy as the trace goes (constant memory) and renamed into place at the end.

- A TCP connection is written as TCP: handshake, data segments with their sequence numbers, FIN, with
  the addresses and ports the trace showed. A UDP flow is written as datagrams.
- A unix socket, a pipe used as a channel, or a socket whose addresses the trace never showed is written
  as a TCP connection between synthetic loopback addresses (127.1.x.x unix, 127.2.x.x pipes, 127.3.x.x
  other sockets), the server's port being the well-known port of the decoder that claimed the channel
  (3306 for MySQL, 80 for HTTP...), so that Wireshark's dissectors pick it up; port 9 when none did. The
  real path or pipe is in the comment of its first packet.
- Times are the trace's; each data packet's comment names the process (pid and command line, secrets
  redacted) that moved its bytes.
- A buffer the tracer cut is written as what was seen; the sequence numbers then jump over the bytes
  not seen (Wireshark reports them as not captured) and the packet's comment says how many.
- Bytes that a decoder marked as a credential (a login's auth data) are left out as a cut buffer's
  are (the sequence numbers jump over them), with a comment saying so: only the raw .log keeps them.
"""

from __future__ import annotations

import ipaddress
import logging
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)  # its start-up chatter is no news here

from scapy.layers.inet import IP, TCP, UDP  # noqa: E402
from scapy.layers.inet6 import IPv6  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402
from scapy.packet import Raw  # noqa: E402
from scapy.utils import PcapNgWriter  # noqa: E402

from decoders.api import Chunk, Direction  # noqa: E402
from dockit_core.model.channels import Channel, ChannelManager  # noqa: E402
from dockit_core.outputs.atomic import AtomicStream  # noqa: E402

MAX_SEGMENT = 65000  # payload bytes in one TCP segment or UDP datagram (an IPv4 packet holds 65535)
NO_DECODER_PORT = 9  # the discard port: a channel no decoder claimed
HOLD_CHUNKS = 16  # a synthetic channel waits this long for a decoder before it is written on port 9
HOLD_BYTES = 64 * 1024
SYNTHETIC_NETS = {"unix": 1, "pipe": 2}  # 127.N.x.x; other sockets without addresses: 3
_CLIENT_MAC = "02:00:00:00:00:01"
_SERVER_MAC = "02:00:00:00:00:02"


@dataclass(eq=False)
class _Stream:
    """One channel as a connection in the file."""

    tcp: bool
    listening: bool = False  # the traced end accepted the connection: OUT goes from the server
    client: tuple[str, int] | None = None  # (address, port), known once the server's port is
    server: tuple[str, int] | None = None
    client_seq: int = 1000
    server_seq: int = 5000
    opened: bool = False
    note: str | None = None  # the real path or pipe, for the first packet's comment
    synthetic_index: int = 0
    synthetic_net: int = 0
    held: list[tuple[Chunk, bool]] = field(
        default_factory=list
    )  # (chunk, a credential) until a port is known
    held_bytes: int = 0
    last_time: float = 0.0
    waiting: list[Chunk] = field(default_factory=list)  # while the decoder reads an unfinished message


class PcapOutput:
    """A channel tap (see ChannelManager.taps) writing pcapng."""

    def __init__(
        self, path: str, channels: ChannelManager, describe: Callable[[int], str] | None = None
    ) -> None:
        self._layers = (Ether, IP, IPv6, TCP, UDP, Raw)
        self.path = path
        self.channels = channels
        self.describe = describe or (lambda pid: f"pid {pid}")
        self.file = AtomicStream(path, "wb")
        self.file.stream.close()  # scapy opens the temporary by name
        self.writer = PcapNgWriter(self.file.temporary)
        self.writer.linktype = 1  # Ethernet, even for a file with no packet
        self.streams: dict[Channel, _Stream] = {}
        self.packets = 0
        self._synthetic = 0
        self._last_time = 0.0

    # -- the tap -----------------------------------------------------------------------------------
    def chunk(self, channel: Channel, chunk: Chunk) -> None:
        """A chunk, after the channel's decoder had it. While that decoder reads an unfinished message
        (`Decoder.reading_since`), the chunks wait: a `Secret` for a credential split across calls comes
        when the message is complete, and must hide every part of it."""
        stream = self.streams.get(channel)
        if stream is None:
            stream = self.streams[channel] = self._new_stream(channel)
        waiting = stream.waiting
        if channel in self.channels.reading:
            waiting.append(chunk)
            if len(waiting) > HOLD_CHUNKS:  # too long a message to wait for: its start goes, hidden
                self._emit(channel, stream, waiting.pop(0), True)
            return
        for held in waiting:
            self._emit(channel, stream, held, held.call_index in self.channels.secrets_seen)
        waiting.clear()
        self._emit(channel, stream, chunk, chunk.call_index in self.channels.secrets_seen)

    def _emit(self, channel: Channel, stream: _Stream, chunk: Chunk, secret: bool) -> None:
        if stream.server is None:
            port = self._claimed_port(channel, stream)
            if port is None:
                stream.held.append((chunk, secret))
                stream.held_bytes += len(chunk.data)
                return
            self._place(stream, port)
        self._write_chunk(stream, chunk, secret)

    def closed(self, channel: Channel, time: float | None) -> None:
        stream = self.streams.pop(channel, None)
        if stream is None:
            return
        for held in stream.waiting:  # the connection ended mid-message: what the decoder said stands
            self._emit(channel, stream, held, held.call_index in self.channels.secrets_seen)
        stream.waiting.clear()
        if stream.server is None:
            self._place(stream, self._claimed_port(channel, stream, final=True) or NO_DECODER_PORT)
        if not stream.opened:
            return
        self._close(stream, time if time is not None else stream.last_time)

    # -- output ------------------------------------------------------------------------------------
    def commit(self) -> str:
        for channel in list(self.streams):
            self.closed(channel, None)
        self.writer.close()
        self.file.commit()
        return self.path

    def discard(self) -> None:
        self.writer.close()
        self.file.discard()

    # -- streams -----------------------------------------------------------------------------------
    def _new_stream(self, channel: Channel) -> _Stream:
        info = channel.info
        tcp = not info.kind.startswith("udp")
        stream = _Stream(tcp=tcp, listening=info.listening)
        local, remote = _endpoint(info.local), _endpoint(info.remote)
        if info.kind in ("tcp", "tcp6", "udp", "udp6") and local and remote:
            stream.client, stream.server = (remote, local) if info.listening else (local, remote)
            return stream
        self._synthetic += 1
        stream.synthetic_index = self._synthetic
        stream.synthetic_net = SYNTHETIC_NETS.get(info.kind, 3)
        if info.kind == "pipe":
            stream.note = f"{info.local or info.channel_id}"
        elif info.kind == "unix":
            path = info.remote if info.remote and not info.listening else info.local
            stream.note = f"unix socket {path or '(unnamed)'} ({info.channel_id})"
        else:
            stream.note = f"{info.kind} socket, addresses not in the trace ({info.channel_id})"
        return stream

    def _claimed_port(self, channel: Channel, stream: _Stream, final: bool = False) -> int | None:
        """The server port a synthetic stream is written on, or None while detection goes on."""
        decoder = channel.decoder
        if decoder is not None:
            ports = sorted(type(decoder).ports)
            return ports[0] if ports else NO_DECODER_PORT
        if channel.undecodable or final:
            return NO_DECODER_PORT
        if len(stream.held) >= HOLD_CHUNKS or stream.held_bytes >= HOLD_BYTES:
            return NO_DECODER_PORT  # detection gave up (or never runs: --no-decode)
        return None

    def _place(self, stream: _Stream, port: int) -> None:
        index, net = stream.synthetic_index, stream.synthetic_net
        stream.server = (f"127.{net}.0.1", port)
        number = index + 1  # 127.N.0.1 is the server's
        stream.client = (f"127.{net}.{(number >> 8) & 255}.{number & 255}", 10000 + (number >> 16) % 50000)
        held, stream.held = stream.held, []
        stream.held_bytes = 0
        for chunk, secret in held:
            self._write_chunk(stream, chunk, secret)

    def _write_chunk(self, stream: _Stream, chunk: Chunk, secret: bool) -> None:
        time = chunk.time if chunk.time is not None else self._last_time
        self._last_time = stream.last_time = time
        if not stream.opened:
            self._open(stream, time)
        # OUT is the local end's: the client's unless the local end accepted the connection.
        from_client = (chunk.direction is Direction.OUT) != stream.listening
        comment = self.describe(chunk.pid)
        data = chunk.data
        missing = chunk.missing
        if secret and data:
            data, missing = b"", chunk.size
            comment += f"; {missing} bytes left out: a credential (only the raw .log keeps it)"
        elif missing:
            comment += (
                f"; {missing} bytes crossed unseen"
                if not data
                else f"; the tracer cut this buffer: {missing} of its {chunk.size} bytes not seen"
            )
        if not stream.tcp:
            for start in range(0, max(len(data), 1), MAX_SEGMENT):
                self._udp(stream, from_client, data[start : start + MAX_SEGMENT], time, comment)
                comment = None  # type: ignore[assignment]
            return
        for start in range(0, len(data), MAX_SEGMENT):
            piece = data[start : start + MAX_SEGMENT]
            self._tcp(stream, from_client, "PA", piece, time, comment)
            comment = None  # type: ignore[assignment]
            if from_client:
                stream.client_seq += len(piece)
            else:
                stream.server_seq += len(piece)
        if missing:
            if from_client:
                stream.client_seq += missing
            else:
                stream.server_seq += missing
            if not data:  # nothing to carry the comment: an ACK after the hole does
                self._tcp(stream, from_client, "A", b"", time, comment)

    def _open(self, stream: _Stream, time: float) -> None:
        stream.opened = True
        if not stream.tcp:
            return
        note = stream.note
        self._tcp(stream, True, "S", b"", time, note, seq=stream.client_seq - 1, ack=0)
        self._tcp(stream, False, "SA", b"", time, None, seq=stream.server_seq - 1)
        self._tcp(stream, True, "A", b"", time, None)

    def _close(self, stream: _Stream, time: float) -> None:
        if not stream.tcp:
            return
        self._tcp(stream, True, "FA", b"", time, None)
        stream.client_seq += 1
        self._tcp(stream, False, "FA", b"", time, None)
        stream.server_seq += 1
        self._tcp(stream, True, "A", b"", time, None)

    # -- packets -----------------------------------------------------------------------------------
    def _ip(self, stream: _Stream, from_client: bool):  # type: ignore[no-untyped-def]
        ether, ip, ipv6 = self._layers[0], self._layers[1], self._layers[2]
        assert stream.client is not None and stream.server is not None
        source, destination = (
            (stream.client, stream.server) if from_client else (stream.server, stream.client)
        )
        v6 = ":" in source[0]
        macs = (_CLIENT_MAC, _SERVER_MAC) if from_client else (_SERVER_MAC, _CLIENT_MAC)
        layer = (ipv6 if v6 else ip)(src=source[0], dst=destination[0])
        return ether(src=macs[0], dst=macs[1]) / layer, source[1], destination[1]

    def _tcp(
        self,
        stream: _Stream,
        from_client: bool,
        flags: str,
        payload: bytes,
        time: float,
        comment: str | None,
        seq: int | None = None,
        ack: int | None = None,
    ) -> None:
        tcp, raw = self._layers[3], self._layers[5]
        base, sport, dport = self._ip(stream, from_client)
        if seq is None:
            seq = stream.client_seq if from_client else stream.server_seq
        if ack is None:
            ack = stream.server_seq if from_client else stream.client_seq
        packet = base / tcp(sport=sport, dport=dport, seq=seq % (1 << 32), ack=ack % (1 << 32), flags=flags,
                            window=65535)  # fmt: skip
        if payload:
            packet = packet / raw(payload)
        self._write(packet, time, comment)

    def _udp(
        self, stream: _Stream, from_client: bool, payload: bytes, time: float, comment: str | None
    ) -> None:
        udp, raw = self._layers[4], self._layers[5]
        base, sport, dport = self._ip(stream, from_client)
        self._write(base / udp(sport=sport, dport=dport) / raw(payload), time, comment)

    def _write(self, packet, time: float, comment: str | None) -> None:  # type: ignore[no-untyped-def]
        packet.time = time
        if comment:
            packet.comments = [comment.encode("utf-8", "replace")]
        self.writer.write(packet)
        self.packets += 1


def _endpoint(address: str | None) -> tuple[str, int] | None:
    """ "127.0.0.1:3306" or "[::1]:80" -> (address, port); None when it is not an IP address and port."""
    if not address or ":" not in address:
        return None
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if not port.isdigit() or not port.isascii() or int(port) > 65535:
        return None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return host, int(port)


def process_description(processes: dict, redact: Callable[[list[str]], list[str]]) -> Callable[[int], str]:  # type: ignore[type-arg]
    """pid -> "pid 1234: mariadb -h 127.0.0.1 -u root" (secrets redacted, at most 200 characters)."""

    def describe(pid: int) -> str:
        process = processes.get(pid)
        if process is None or not process.argv:
            return f"pid {pid}" if pid else "no process (a packet capture)"
        text = f"pid {pid}: {shlex.join(redact(process.argv))}"
        return text if len(text) <= 200 else text[:197] + "..."

    return describe
