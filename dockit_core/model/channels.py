"""The seam between the trace and the decoders: socket and pipe bytes, grouped into channels.

A channel is one conversation: a socket connection, or two pipes that one process uses as a duplex
link (an Oracle BEQ client writes one pipe and reads the other). Each byte reaches the channel's decoder
once, even when both ends are traced: for each direction, the first kind of call that shows its bytes
(the sender's write or the receiver's read) is the one kept.

A decoder is someone else's code: whatever it does, the trace goes on. What it raises, or returns that
is not an output, is reported in one line (its traceback kept for `-v`) and as a
`Dockit_DecoderProblem` object tied to the channel; after a failure its `close` still runs, so what it
had pending comes out; a decoder stuck on one chunk is stopped by the watchdog (watchdog.py).

A connection that turns to TLS keeps its channel: its socket's bytes go to the TLS decoder of its
`TlsLayer` (tls_layer.py), and the plaintext that library calls show (`tls_data`) to the same decoder
that read the conversation's clear start, so a MySQL login inside TLS belongs to the greeting before it.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

from decoders.api import ChannelInfo, Chunk, Decoder, DecoderOptions, Direction
from decoders.records import (
    COUNT,
    SEVERITIES,
    TEXT,
    TIME,
    Annotation,
    CimObject,
    Problem,
    Record,
    RecordType,
    Secret,
    StartTls,
)
from decoders.registry import Registry
from dockit_core.model import PipeNode, SocketNode
from dockit_core.model.tls_layer import TlsLayer
from dockit_core.model.undecoded import SAMPLE_BYTES, SOCKET_KINDS, undecoded_object
from dockit_core.model.watchdog import DecoderStuck, Watchdog
from protocols.tls import looks_like_client_hello

MAX_REMEMBERED_SECRETS = 65536
log = logging.getLogger("dockit.channels")

DETECTION_BYTES = 64 * 1024  # a channel nobody claims within this many bytes is left undecoded
DETECTION_CHUNKS = 16
TLS_DECODER = "tls"  # the decoder of TLS records, which an encrypted channel keeps beside its plaintext's
MAX_PROBLEMS_PER_CHANNEL = 20  # Dockit_DecoderProblem objects per channel; the rest are counted
MAX_RECENT_CALLS = 4096  # calls of one channel remembered while its decoder reads one message
ANNOTATION_MAX = 1000  # characters of one annotation

DECODER_PROBLEM = RecordType(
    "Dockit_DecoderProblem",
    Decoder=TEXT,
    Channel=TEXT,
    Severity=TEXT,
    Message=TEXT,
    Process=COUNT,
    Line=COUNT,
    Time=TIME,
)

# Characters a terminal acts on, or that reorder text (bidi controls): a peer's bytes must not reach a
# person's terminal through an annotation in the calls file.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape_control(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_annotation(text: str) -> str:
    """An annotation as the calls file may show it: control characters escaped, length capped."""
    if len(text) > ANNOTATION_MAX:
        text = text[:ANNOTATION_MAX] + "..."
    return _CONTROL.sub(_escape_control, text) if _CONTROL.search(text) else text


@dataclass(eq=False)
class Channel:
    info: ChannelInfo
    local_marker: object  # which end is "local": a socket's local address, or a pipe's role
    pipe_directions: dict[str, Direction] = field(default_factory=dict)  # pipe id -> direction
    decoder: Decoder | None = None
    undecodable: bool = False
    pending: list[Chunk] = field(default_factory=list)
    pending_bytes: int = 0
    duplicates: int = 0
    # Per direction, indexed by `direction is Direction.IN` (0 out, 1 in): an Enum hashes slowly, and
    # these are touched by every chunk. `sources` and `bytes` give them keyed by Direction.
    source_by_side: list[str | None] = field(default_factory=lambda: [None, None])  # "read" or "write"
    bytes_by_side: list[int] = field(default_factory=lambda: [0, 0])
    claimed: bool = False  # a decoder was chosen for it (even one that failed later)
    first_bytes: list[bytes] = field(default_factory=lambda: [b"", b""])  # out, in: while unclaimed
    open_ends: int = 0  # sockets of this channel whose descriptors are not all closed yet
    other_keys: list[str] = field(default_factory=list)  # its entries in the alias and inode maps
    holds: bool = False  # its decoder says where an unfinished message began (reading_since)
    recent: deque[tuple[int, bool]] = field(default_factory=deque)  # (call index, side) fed lately
    problems: int = 0  # Dockit_DecoderProblem objects for this channel
    decoder_name: str | None = None
    tls: TlsLayer | None = None  # the connection turned to TLS: its socket's bytes are records

    @property
    def sources(self) -> dict[Direction, str]:
        """direction -> "read" or "write": the kind of call whose bytes are kept."""
        out, in_ = self.source_by_side
        return {d: s for d, s in ((Direction.OUT, out), (Direction.IN, in_)) if s is not None}

    @property
    def bytes(self) -> dict[Direction, int]:
        return {Direction.OUT: self.bytes_by_side[0], Direction.IN: self.bytes_by_side[1]}


class ChannelTap(Protocol):
    """An output that sees every chunk of every channel once (the pcap and event-log writers), after
    the channel's decoder had it: `channel.decoder` says which protocol claimed the channel."""

    def chunk(self, channel: Channel, chunk: Chunk) -> None: ...

    def closed(self, channel: Channel, time: float | None) -> None: ...


class ChannelManager:
    """Routes bytes to decoders and collects what they return."""

    def __init__(
        self,
        registry: Registry | None,
        emit: Callable[[CimObject], None],
        decoder_options: DecoderOptions | None = None,
        watchdog: Watchdog | None = None,
    ) -> None:
        self.registry = registry
        self.emit = emit
        self.decoder_options = decoder_options or DecoderOptions()
        self.watchdog = watchdog or Watchdog()
        self.watchdog.safe_code.update(
            f.__code__ for f in (ChannelManager._feed, ChannelManager._detect, ChannelManager._close_channel)
        )
        self.channels: dict[str, Channel] = {}
        self.annotations: dict[int, list[str]] = {}
        self.secret_calls: set[int] = set()  # calls whose buffers hold credentials (decoders' Secret)
        self.secrets_seen: set[int] = set()  # the same marks, kept (bounded) for outputs that hold chunks
        self._secrets_order: deque[int] = deque()
        self.problems: list[str] = []
        self.tracebacks: list[str] = []  # for -v: what each failure raised, or where a wrong output came from
        # The --each-call calls file holds calls back while a decoder reads an unfinished message
        # (calls.held.HeldCalls): `reading` is where each such channel's message began, and
        # `released_up_to` the last call written, so a Secret naming a written call is known to be late.
        self.holding_calls = False
        self.reading: dict[Channel, int] = {}
        self.released_up_to = 0
        self._reported: set[tuple[str, str]] = set()  # (decoder, kind of mistake) already reported
        self._pipe_channel: dict[str, Channel] = {}
        self._socket_channel: dict[int, tuple[Channel, object]] = {}  # socket node -> (channel, its end)
        self._aliases: dict[str, Channel] = {}
        self._inode_channel: dict[str, Channel] = {}  # unix socket inode -> the channel its end joined
        self._last_pipe_use: dict[int, tuple[Channel, str, str]] = {}  # pid -> (channel, pipe id, op)
        self.stats = {"chunks": 0, "bytes": 0, "duplicate_chunks": 0, "decoded_channels": 0, "channels": 0}
        self.taps: list[ChannelTap] = []
        self.feeding: Channel | None = None  # the channel whose decoder is running (records come from it)
        self.plaintext_visible = False  # the trace has library calls (ltrace): TLS plaintext could show

    # -- sockets -----------------------------------------------------------------------------------
    def socket_data(
        self, node: SocketNode, pid: int, op: str, data: bytes, size: int, time: float | None, call_index: int
    ) -> None:
        channel, local_marker = self._socket_channel_of(node, pid)
        self._deliver_socket(channel, local_marker, op, data, size, time, pid, call_index)

    def _socket_channel_of(self, node: SocketNode, pid: int) -> tuple[Channel, object]:
        """The socket's channel and which end of it the socket is; made at the socket's first bytes."""
        key, local_marker = self._socket_key(node)
        known = self._socket_channel.get(node.node_id)
        if known is not None:
            # A socket keeps its channel even when -yy later shows more of it (the peer of a unix socket):
            # the better key becomes an alias, so that the peer's socket finds the same channel.
            channel, local_marker = known
            if key not in self._aliases:
                self._aliases[key] = channel
                channel.other_keys.append(key)
            return channel, local_marker
        channel = self.channels.get(key) or self._aliases.get(key) or self._unix_peer_channel(node)
        if channel is None:
            info = ChannelInfo(
                channel_id=key,
                kind=node.kind,
                local=node.local,
                remote=node.remote,
                local_port=node.local_port,
                remote_port=node.remote_port,
                listening=node.accepted or node.listening,
                pid=pid,
            )
            channel = self.channels[key] = Channel(info, local_marker)
            self.stats["channels"] += 1
        self._socket_channel[node.node_id] = (channel, local_marker)
        channel.open_ends += 1
        if node.inode:
            self._inode_channel[node.inode] = channel
            channel.other_keys.append(node.inode)
            if node.peer_inode and node.peer_inode not in self._inode_channel:
                self._inode_channel[node.peer_inode] = channel
                channel.other_keys.append(node.peer_inode)
        return channel, local_marker

    # -- TLS plaintext -------------------------------------------------------------------------------
    def tls_data(
        self,
        node: SocketNode | None,
        key: str,
        pid: int,
        op: str,
        data: bytes,
        size: int,
        time: float | None,
        call_index: int,
    ) -> None:
        """Plaintext of the TLS connection on the socket `node` (a library's SSL_write/SSL_read): it goes
        on with that socket's conversation. A TLS object tied to no known socket (memory BIOs, an fd
        opened before an attach) has a channel of its own, named `key`. Taps (pcap, event logs) see the
        socket's bytes only."""
        if node is not None:
            channel, local_marker = self._socket_channel_of(node, pid)
        else:
            channel = self.channels.get(key)
            if channel is None:
                info = ChannelInfo(channel_id=key, kind="tls", pid=pid)
                channel = self.channels[key] = Channel(info, key)
                self.stats["channels"] += 1
            local_marker = key
        layer = channel.tls or self._start_tls(channel)
        mine = channel.local_marker == local_marker
        direction = Direction.OUT if (op == "write") == mine else Direction.IN
        side = direction is Direction.IN
        source = layer.plain_source_by_side[side]
        if source is None:
            layer.plain_source_by_side[side] = op
        elif source != op:  # both ends traced: the other end's call showed these bytes already
            channel.duplicates += 1
            self.stats["duplicate_chunks"] += 1
            return
        layer.plain_bytes[side] += size
        if channel.undecodable or self.registry is None or size <= 0:
            return
        self.feeding = channel
        chunk = Chunk(data=data, direction=direction, time=time, pid=pid, size=size, call_index=call_index)
        if channel.decoder is None:
            self._detect(channel, chunk)
        else:
            self._feed(channel, chunk)

    def _start_tls(self, channel: Channel, cipher: Decoder | None = None) -> TlsLayer:
        """The channel's socket bytes are TLS records from now on."""
        if channel.decoder is not None and channel.decoder.name == TLS_DECODER:
            # Detection gave the records to the TLS decoder before any plaintext showed: it reads the
            # records still, and the plaintext is detected on its own.
            cipher, channel.decoder = channel.decoder, None
            channel.claimed = False
            channel.decoder_name = None
        inner = channel.decoder.name if channel.decoder is not None else None
        layer = channel.tls = TlsLayer(channel.info, cipher, inner)
        channel.info = replace(channel.info, encrypted=True)
        if channel.decoder is None and channel.pending:
            # Bytes no decoder claimed before the plaintext showed (a STARTTLS this dockit cannot read, or
            # records): the TLS decoder takes what is TLS in them; detection starts again on the plaintext.
            pending, channel.pending = channel.pending, []
            channel.pending_bytes = 0
            channel.first_bytes = [b"", b""]
            for queued in pending:
                layer.feed_cipher(queued)
        return layer

    def _tls_first(self, channel: Channel, chosen: type[Decoder] | None) -> None:
        """A connection that is TLS from its first byte (a ClientHello, or the records after it). Its
        records go to the TLS decoder; its plaintext, if the trace shows it, is decoded as any channel's
        first bytes are."""
        if chosen is None:
            chosen = self.registry.by_name(TLS_DECODER) if self.registry is not None else None
        try:
            cipher = chosen(channel.info) if chosen is not None else None
        except Exception as error:  # noqa: BLE001
            self._fail(channel, TLS_DECODER, error, None)
            return
        self._start_tls(channel, cipher)

    def socket_closed(self, node: SocketNode, time: float | None) -> None:
        """The socket's last descriptor is gone. When its channel has no open socket left, the
        connection is over: its decoder flushes what it holds, and the channel is forgotten (a server
        traced for days keeps only its open connections in memory, and its records come in order)."""
        known = self._socket_channel.pop(node.node_id, None)
        if known is None:
            return
        channel = known[0]
        channel.open_ends -= 1
        if channel.open_ends > 0:
            return
        for tap in self.taps:
            tap.closed(channel, time)
        self._close_channel(channel, time)
        if self.channels.get(channel.info.channel_id) is channel:
            del self.channels[channel.info.channel_id]
        for key in channel.other_keys:
            if self._aliases.get(key) is channel:
                del self._aliases[key]
            if self._inode_channel.get(key) is channel:
                del self._inode_channel[key]

    def channel_of(self, node: SocketNode | PipeNode) -> Channel | None:
        """The channel a socket's or a pipe's bytes went to (None before its first bytes)."""
        if isinstance(node, SocketNode):
            known = self._socket_channel.get(node.node_id)
            return known[0] if known is not None else None
        return self._pipe_channel.get(node.pipe_id)

    def ignores(self, node: SocketNode | PipeNode) -> bool:
        """Whether nothing will read the next bytes of this socket or pipe: its channel was given up as
        undecodable (see `_decode`) and no bridge copies bytes. Its bytes are then only counted, so the
        tracker need not unescape them (on a pipe of 900 MB, half the replay)."""
        if self.taps:
            return False
        channel = self.channel_of(node)
        return channel is not None and channel.undecodable and channel.tls is None

    def _unix_peer_channel(self, node: SocketNode) -> Channel | None:
        """The channel of the other end of a unix socket, when that end came first under another key:
        a client's decoration names no peer until the server has accepted (`4<UNIX-STREAM:[56234]>`),
        while the server's does (`5<UNIX-STREAM:[57267->56234,"/run/app.sock"]>`). Both ends traced
        must still make one channel, so that each message is decoded once. (Socket inodes come from the
        kernel's ever-increasing inode counter, so an inode met again within a trace is the same socket.)"""
        if node.kind != "unix" or not node.inode:
            return None
        return self._inode_channel.get(node.peer_inode or "") or self._inode_channel.get(node.inode)

    def _deliver_socket(
        self,
        channel: Channel,
        local_marker: object,
        op: str,
        data: bytes,
        size: int,
        time: float | None,
        pid: int,
        call_index: int,
    ) -> None:
        mine = channel.local_marker == local_marker
        direction = Direction.OUT if (op == "write") == mine else Direction.IN
        self._deliver(channel, direction, op, data, size, time, pid, call_index)

    @staticmethod
    def _socket_key(node: SocketNode) -> tuple[str, object]:
        if node.local and node.remote and node.kind in ("tcp", "tcp6", "udp", "udp6"):
            ends = sorted((node.local, node.remote))
            return f"{node.kind}:{ends[0]}-{ends[1]}", node.local
        if node.inode and node.peer_inode:
            ends = sorted((node.inode, node.peer_inode))
            return f"unix:{ends[0]}-{ends[1]}", node.inode
        return f"socket:{node.node_id}", node.node_id

    # -- pipes -------------------------------------------------------------------------------------
    def pipe_data(
        self,
        node: PipeNode,
        fd: int,
        pid: int,
        op: str,
        data: bytes,
        size: int,
        time: float | None,
        call_index: int,
    ) -> None:
        channel = self._pipe_channel.get(node.pipe_id)
        if channel is None:
            channel = self._pair(node.pipe_id, fd, pid, op)
        direction = channel.pipe_directions[node.pipe_id]
        if fd > 2:
            self._last_pipe_use[pid] = (channel, node.pipe_id, op)
        self._deliver(channel, direction, op, data, size, time, pid, call_index)

    def _pair(self, pipe_id: str, fd: int, pid: int, op: str) -> Channel:
        """A new pipe joins the single-pipe channel this process last used the other way round."""
        last = self._last_pipe_use.get(pid)
        if fd > 2 and last is not None:
            channel, other_pipe, other_op = last
            if other_op != op and len(channel.pipe_directions) == 1:
                channel.pipe_directions[pipe_id] = channel.pipe_directions[other_pipe].reverse()
                self._pipe_channel[pipe_id] = channel
                return channel
        key = f"pipe:{pipe_id}"
        info = ChannelInfo(channel_id=key, kind="pipe", local=f"pipe:[{pipe_id}]", pid=pid)
        channel = self.channels[key] = Channel(info, pipe_id)
        self.stats["channels"] += 1
        channel.pipe_directions[pipe_id] = Direction.OUT if op == "write" else Direction.IN
        self._pipe_channel[pipe_id] = channel
        return channel

    # -- chunks that come from no trace (a fixture file, a packet capture: decoders.testing) ---------
    def feed_chunk(self, info: ChannelInfo, chunk: Chunk) -> None:
        """Deliver a chunk of the channel `info` describes, as the trace would have: the same detection,
        isolation and collection. OUT chunks count as the local end's writes, IN as its reads."""
        channel = self.channels.get(info.channel_id)
        if channel is None:
            channel = self.channels[info.channel_id] = Channel(info, info.channel_id)
            self.stats["channels"] += 1
        op = "write" if chunk.direction is Direction.OUT else "read"
        self._deliver(channel, chunk.direction, op, chunk.data, chunk.size, chunk.time, chunk.pid, chunk.call_index)

    # -- delivery ------------------------------------------------------------------------------------
    def _deliver(
        self,
        channel: Channel,
        direction: Direction,
        op: str,
        data: bytes,
        size: int,
        time: float | None,
        pid: int,
        call_index: int,
    ) -> None:
        side = direction is Direction.IN
        source = channel.source_by_side[side]
        stats = self.stats
        if source is None:
            channel.source_by_side[side] = op
        elif source != op:
            channel.duplicates += 1
            stats["duplicate_chunks"] += 1
            return
        channel.bytes_by_side[side] += size
        stats["chunks"] += 1
        stats["bytes"] += size
        self.feeding = channel
        if not self.taps:
            self._decode(channel, direction, data, size, time, pid, call_index)
            return
        chunk = Chunk(data=data, direction=direction, time=time, pid=pid, size=size, call_index=call_index)
        self._decode(channel, direction, data, size, time, pid, call_index, chunk)
        for tap in self.taps:
            tap.chunk(channel, chunk)

    def _decode(
        self,
        channel: Channel,
        direction: Direction,
        data: bytes,
        size: int,
        time: float | None,
        pid: int,
        call_index: int,
        chunk: Chunk | None = None,
    ) -> None:
        if self.registry is None or size <= 0:
            return
        if chunk is None:
            chunk = Chunk(
                data=data, direction=direction, time=time, pid=pid, size=size, call_index=call_index
            )
        if channel.tls is not None:  # the socket's bytes of an encrypted connection: TLS records
            channel.tls.feed_cipher(chunk)
            return
        if channel.undecodable:
            return
        if channel.decoder is None:
            self._detect(channel, chunk)
        else:
            self._feed(channel, chunk)

    def _detect(self, channel: Channel, chunk: Chunk) -> None:
        side = chunk.direction is Direction.IN
        if len(channel.first_bytes[side]) < SAMPLE_BYTES:
            channel.first_bytes[side] = (channel.first_bytes[side] + chunk.data)[:SAMPLE_BYTES]
        channel.pending.append(chunk)
        channel.pending_bytes += len(chunk.data)
        assert self.registry is not None
        # Score what this direction has sent so far, so a greeting split over two calls is still seen.
        seen = b"".join(c.data for c in channel.pending if c.direction is chunk.direction)
        watchdog = self.watchdog
        self.registry.classes  # noqa: B018 - the first use imports the decoders: not a decoder's time
        if channel.tls is None and looks_like_client_hello(seen):
            self._tls_first(channel, None)
            return
        info = channel.info if channel.tls is None else channel.tls.plaintext_info(channel.info)
        try:
            watchdog.busy = chunk
            chosen = self.registry.choose(seen, chunk.direction, info)
            watchdog.busy = None
        except DecoderStuck as error:  # a score() that never returned: nobody decodes this channel
            watchdog.busy = None
            self._fail(channel, "(scoring)", error, chunk)
            return
        if chosen is not None and chosen.name == TLS_DECODER and channel.tls is None:
            self._tls_first(channel, chosen)  # records seen after the ClientHello: TLS all the same
            return
        if chosen is None:
            if channel.pending_bytes > DETECTION_BYTES or len(channel.pending) > DETECTION_CHUNKS:
                channel.undecodable = True
                channel.pending = []
            return
        channel.claimed = True
        channel.first_bytes = [b"", b""]
        channel.decoder_name = chosen.name
        try:
            watchdog.busy = chunk
            decoder = chosen(info)
            watchdog.busy = None
        except (Exception, DecoderStuck) as error:  # noqa: BLE001 - a broken decoder must not stop the trace
            watchdog.busy = None
            self._fail(channel, chosen.name, error, chunk)
            return
        decoder.options = self.decoder_options
        channel.decoder = decoder
        channel.holds = type(decoder).reading_since is not Decoder.reading_since
        if channel.tls is not None:
            channel.tls.inner = chosen.name
        self.stats["decoded_channels"] += 1
        pending, channel.pending = channel.pending, []
        layer = channel.tls
        for queued in pending:
            if channel.tls is not layer:  # the decoder said the rest is TLS: these are its records
                channel.tls.feed_cipher(queued)  # type: ignore[union-attr]
            elif channel.decoder is not None:
                self._feed(channel, queued)

    def _feed(self, channel: Channel, chunk: Chunk) -> None:
        decoder = channel.decoder
        assert decoder is not None
        watchdog = self.watchdog
        try:
            watchdog.busy = chunk
            outputs = decoder.feed(chunk)
            if outputs and type(outputs) is not list and type(outputs) is not tuple:
                outputs = self._as_list(channel, outputs)  # a generator runs (and may raise) here
            watchdog.busy = None
        except (Exception, DecoderStuck) as error:  # noqa: BLE001 - reported, and that channel's decoding stops
            watchdog.busy = None
            self._fail(channel, decoder.name, error, chunk)
            return
        if self.holding_calls:
            channel.recent.append((chunk.call_index, chunk.direction is Direction.IN))
            if outputs:
                self._collect(channel, outputs, chunk)
            self._note_call(channel, decoder)
        elif outputs:
            self._collect(channel, outputs, chunk)

    def _as_list(self, channel: Channel, outputs: object) -> list[object]:
        if isinstance(outputs, (str, bytes, bytearray)) or not hasattr(outputs, "__iter__"):
            self._wrong(channel, "a sequence of outputs", outputs)
            return []
        return list(outputs)  # type: ignore[call-overload]

    def _note_call(self, channel: Channel, decoder: Decoder) -> None:
        """Remember which calls of this channel may still hide a credential (a Secret marks them all,
        from the call it names to the last fed), and where the message its decoder is reading began (so
        that the calls file waits for it). Called after the chunk's outputs were collected."""
        recent = channel.recent
        since = None
        if channel.holds:
            try:
                since = decoder.reading_since()
            except Exception as error:  # noqa: BLE001
                self._wrong(channel, "reading_since() to return a call index", error)
            if since is not None and type(since) is not int:
                self._wrong(channel, "reading_since() to return an int or None", since)
                since = None
        if since is None:
            self.reading.pop(channel, None)
            while len(recent) > 8:
                recent.popleft()
        else:
            self.reading[channel] = since
            while recent and (recent[0][0] < since or len(recent) > MAX_RECENT_CALLS):
                recent.popleft()

    def held_from(self) -> int | None:
        """The earliest call a decoder still reads an unfinished message from, or None."""
        reading = self.reading
        if not reading:
            return None
        return min(reading.values()) if len(reading) > 1 else next(iter(reading.values()))

    def _fail(self, channel: Channel, name: str, error: BaseException, chunk: Chunk | None) -> None:
        """A decoder raised (or was stopped): one line, its traceback for -v, a Dockit_DecoderProblem;
        its close() still runs, so the requests it had pending come out; then the channel is left
        undecoded."""
        what = "was stopped" if isinstance(error, DecoderStuck) else "failed"
        self.problems.append(
            f"decoder {name} {what} on {channel.info.channel_id}: {error if isinstance(error, DecoderStuck) else repr(error)}; "
            "channel left undecoded"
        )
        self.tracebacks.append("".join(traceback.format_exception(error)))
        log.debug("decoder failure", exc_info=error)
        self._problem_object(channel, name, "error", f"decoder {what}: {error!r}", chunk)
        decoder, channel.decoder = channel.decoder, None
        channel.undecodable = True
        channel.pending = []
        self.reading.pop(channel, None)
        if decoder is not None and chunk is not None:
            self._run_close(channel, decoder, chunk.time)

    def _wrong(self, channel: Channel, expected: str, got: object, detail: str = "") -> None:
        """A decoder returned something that is not what the contract says: ignored, reported once per
        decoder and kind of mistake."""
        name = channel.decoder_name or "?"
        kind = f"{expected}:{type(got).__name__}"
        self.stats["wrong_outputs"] = self.stats.get("wrong_outputs", 0) + 1
        if (name, kind) in self._reported:
            return
        self._reported.add((name, kind))
        self.problems.append(
            f"decoder {name} returned {type(got).__name__} {got!r:.60} on {channel.info.channel_id}, "
            f"expected {expected}{detail}: ignored"
        )
        decoder_class = type(channel.decoder) if channel.decoder is not None else None
        where = ""
        if decoder_class is not None:
            import inspect

            try:
                feed = decoder_class.feed
                where = f"  {decoder_class.__module__}.{decoder_class.__qualname__}.feed at {inspect.getsourcefile(feed)}:{feed.__code__.co_firstlineno}\n"
            except (TypeError, AttributeError):
                where = ""
        self.tracebacks.append(f"decoder {name} returned {got!r:.200}, expected {expected}\n{where}")

    def _problem_object(
        self,
        channel: Channel,
        name: str,
        severity: str,
        message: str,
        chunk: Chunk | None,
        line: int | None = None,
    ) -> None:
        channel.problems += 1
        if channel.problems > MAX_PROBLEMS_PER_CHANNEL:
            return
        self.stats["problem_objects"] = self.stats.get("problem_objects", 0) + 1
        if line is None and chunk is not None:
            line = chunk.call_index or None
        self.emit(
            DECODER_PROBLEM(
                Decoder=name,
                Channel=channel.info.channel_id,
                Severity=severity,
                Message=message[:ANNOTATION_MAX],
                Process=(chunk.pid if chunk is not None else channel.info.pid) or None,
                Line=line,
                Time=chunk.time if chunk is not None else None,
            )
        )

    def _collect(self, channel: Channel, outputs: object, chunk: Chunk | None) -> None:
        annotations = self.annotations
        for output in outputs:  # type: ignore[attr-defined]
            kind = type(output)
            if kind is Annotation:
                index, text = output.call_index, output.text
                if type(index) is not int or type(text) is not str:
                    self._wrong(channel, "Annotation(int, str)", output)
                    continue
                text = safe_annotation(text)
                notes = annotations.get(index)
                if notes is None:
                    annotations[index] = [text]
                else:
                    notes.append(text)
            elif kind is CimObject:
                self._emit(channel, output)
            elif kind is Secret:
                self._secret(channel, output, chunk)
            elif kind is Problem:
                self._reported_problem(channel, output, chunk)
            elif kind is StartTls:
                if channel.tls is None:
                    self._start_tls(channel)
            elif isinstance(output, Record):
                try:
                    cim = output.to_cim()
                except Exception as error:  # noqa: BLE001
                    self._wrong(channel, "a Record whose to_cim() works", error)
                    continue
                self._emit(channel, cim)
            elif isinstance(output, (CimObject, Annotation, Secret, Problem)):  # subclasses
                self._collect(channel, [_plain(output)], chunk)
            else:
                self._wrong(channel, "an output (CimObject, Record, Annotation, Secret, Problem)", output)

    def _emit(self, channel: Channel, cim: object) -> None:
        if type(cim) is not CimObject:
            self._wrong(channel, "a CimObject from to_cim()", cim)
            return
        if channel.tls is not None and cim.cim_class == "Dockit_DatabaseSession":
            cim = channel.tls.enrich(cim)  # an encrypted session says so, and what its TLS showed
        try:
            self.emit(cim)
        except Exception as error:  # noqa: BLE001 - an object the summary cannot write (attrs not pairs...)
            self._wrong(channel, "a CimObject the summary can write", cim, f" ({type(error).__name__}: {error})")

    def _reported_problem(self, channel: Channel, problem: Problem, chunk: Chunk | None) -> None:
        if not isinstance(problem.message, str) or problem.severity not in SEVERITIES:
            self._wrong(channel, f"Problem(severity in {SEVERITIES}, message: str)", problem)
            return
        line = problem.call_index if type(problem.call_index) is int else None
        self._problem_object(
            channel, channel.decoder_name or "?", problem.severity, problem.message, chunk, line
        )

    def _secret(self, channel: Channel, secret: Secret, chunk: Chunk | None) -> None:
        """Hide the named call, and the later calls of this channel in that call's direction up to this
        one: a credential split across writes is in each of them."""
        first = secret.call_index
        if type(first) is not int:
            self._wrong(channel, "Secret(call_index: int)", secret)
            return
        marks = set()
        marks.add(first)
        recent = channel.recent
        side = next((s for index, s in recent if index == first), None)
        if side is None and chunk is not None and chunk.call_index == first:
            side = chunk.direction is Direction.IN
        for index, call_side in recent:
            if index > first and (side is None or call_side == side):
                marks.add(index)
        late = self.holding_calls and first <= self.released_up_to
        if late and chunk is not None:
            marks.add(chunk.call_index)
        self.secret_calls |= marks
        self._remember_secrets(marks)
        if late:
            # Too late for the call it names: that call is written. The one that completed the message
            # is hidden; tell the decoder's author how to avoid this.
            name = channel.decoder_name or "?"
            if (name, "late secret") not in self._reported:
                self._reported.add((name, "late secret"))
                self.problems.append(
                    f"decoder {name} named call {first} as holding a credential after the calls file had "
                    "written it: its reading_since() must say where an unfinished message began"
                )

    def _remember_secrets(self, marks: set[int]) -> None:
        """Outputs that hold a channel's chunks while its decoder reads a message (the pcap writer) ask
        `secret_seen` when they write them: unlike `secret_calls`, nobody takes from it. Bounded."""
        seen, order = self.secrets_seen, self._secrets_order
        for index in marks:
            if index not in seen:
                seen.add(index)
                order.append(index)
        while len(order) > MAX_REMEMBERED_SECRETS:
            seen.discard(order.popleft())

    def take_secret(self, call_index: int) -> bool:
        """Whether a decoder said this call's bytes hold a credential (asked once per call, in order).
        Without calls held back (the blocks file, which shows no buffer), a mark for an earlier call is
        dropped here rather than kept for ever."""
        marks = self.secret_calls
        if call_index in marks:
            marks.discard(call_index)
            if not self.holding_calls:
                marks.difference_update([index for index in marks if index < call_index])
            return True
        if not self.holding_calls and marks:
            marks.difference_update([index for index in marks if index < call_index])
        return False

    def take_annotations(self, call_index: int) -> list[str]:
        """Annotations for this call. A decoder that understood a message only when its last bytes came
        (a greeting read in two calls) names the call where the message began, which is already written:
        those go with this call, the one that completed the message on the same channel."""
        if not self.annotations:
            return []
        found: list[str] = []
        for index in sorted(i for i in self.annotations if i <= call_index):
            found += self.annotations.pop(index)
        return found

    def close(self, time: float | None) -> None:
        """The trace ended: every decoder flushes what it holds."""
        for channel in self.channels.values():
            for tap in self.taps:
                tap.closed(channel, time)
            self._close_channel(channel, time)

    def _close_channel(self, channel: Channel, time: float | None) -> None:
        self.feeding = channel
        self.reading.pop(channel, None)
        if channel.problems > MAX_PROBLEMS_PER_CHANNEL:
            extra = channel.problems - MAX_PROBLEMS_PER_CHANNEL
            channel.problems = MAX_PROBLEMS_PER_CHANNEL - 1  # room for this last one
            self._problem_object(channel, channel.decoder_name or "?", "note",
                                 f"{extra} more problem(s) on this channel not listed", None)  # fmt: skip
        if channel.decoder is None:
            if not channel.claimed and channel.info.kind in SOCKET_KINDS and any(channel.first_bytes):
                self._report_undecoded(channel)
        else:
            decoder, channel.decoder = channel.decoder, None
            channel.undecodable = True  # nothing more is fed to it
            self._run_close(channel, decoder, time)
        layer, channel.tls = channel.tls, None
        if layer is not None:
            if layer.plain_source_by_side == [None, None]:
                self.stats["tls_without_plaintext"] = self.stats.get("tls_without_plaintext", 0) + 1
            self._collect(channel, layer.close(time, self.plaintext_visible), None)

    def _run_close(self, channel: Channel, decoder: Decoder, time: float | None) -> None:
        watchdog = self.watchdog
        try:
            watchdog.busy = decoder
            outputs = decoder.close(time)
            if outputs and type(outputs) is not list and type(outputs) is not tuple:
                outputs = self._as_list(channel, outputs)
            watchdog.busy = None
        except (Exception, DecoderStuck) as error:  # noqa: BLE001
            watchdog.busy = None
            self.problems.append(
                f"decoder {decoder.name} failed to close {channel.info.channel_id}: {error!r}"
            )
            self.tracebacks.append("".join(traceback.format_exception(error)))
            self._problem_object(channel, decoder.name, "error", f"close failed: {error!r}", None)
            return
        if outputs:
            self._collect(channel, outputs, None)

    def _report_undecoded(self, channel: Channel) -> None:
        """A connection whose bytes no decoder claimed is said so in the summary, once."""
        assert self.registry is not None  # bytes are sampled only while detection runs
        channel.claimed = True
        out, in_ = channel.first_bytes
        channel.first_bytes = [b"", b""]
        counts = (channel.bytes_by_side[0], channel.bytes_by_side[1])
        self.emit(undecoded_object(channel.info, (out, in_), counts, self.registry.names()))


def _plain(output: object) -> object:
    """A subclass of an output class as the class itself (the fast paths compare exact types)."""
    if isinstance(output, CimObject):
        return CimObject(output.cim_class, output.attrs, output.children)
    if isinstance(output, Annotation):
        return Annotation(output.call_index, output.text)
    if isinstance(output, Secret):
        return Secret(output.call_index)
    assert isinstance(output, Problem)
    return Problem(output.severity, output.message, output.call_index)
