"""The seam between the trace and the decoders: socket and pipe bytes, grouped into channels.

A channel is one conversation: a socket connection, or two pipes that one process uses as a duplex
link (an Oracle BEQ client writes one pipe and reads the other). Each byte reaches the channel's decoder
once, even when both ends are traced: for each direction, the first kind of call that shows its bytes
(the sender's write or the receiver's read) is the one kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from decoders.api import ChannelInfo, Chunk, Decoder, DecoderOptions, Direction
from decoders.records import Annotation, CimObject, Output, Record, Secret, as_cim
from decoders.registry import Registry
from dockit_core.model import PipeNode, SocketNode
from dockit_core.model.undecoded import SAMPLE_BYTES, SOCKET_KINDS, undecoded_object

log = logging.getLogger("dockit.channels")

DETECTION_BYTES = 64 * 1024  # a channel nobody claims within this many bytes is left undecoded
DETECTION_CHUNKS = 16


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
    ) -> None:
        self.registry = registry
        self.emit = emit
        self.decoder_options = decoder_options or DecoderOptions()
        self.channels: dict[str, Channel] = {}
        self.annotations: dict[int, list[str]] = {}
        self.secret_calls: set[int] = set()  # calls whose buffers hold credentials (decoders' Secret)
        self.problems: list[str] = []
        self._pipe_channel: dict[str, Channel] = {}
        self._socket_channel: dict[int, tuple[Channel, object]] = {}  # socket node -> (channel, its end)
        self._aliases: dict[str, Channel] = {}
        self._inode_channel: dict[str, Channel] = {}  # unix socket inode -> the channel its end joined
        self._last_pipe_use: dict[int, tuple[Channel, str, str]] = {}  # pid -> (channel, pipe id, op)
        self.stats = {"chunks": 0, "bytes": 0, "duplicate_chunks": 0, "decoded_channels": 0, "channels": 0}
        self.taps: list[ChannelTap] = []
        self.feeding: Channel | None = None  # the channel whose decoder is running (records come from it)

    # -- sockets -----------------------------------------------------------------------------------
    def socket_data(
        self, node: SocketNode, pid: int, op: str, data: bytes, size: int, time: float | None, call_index: int
    ) -> None:
        key, local_marker = self._socket_key(node)
        known = self._socket_channel.get(node.node_id)
        if known is not None:
            # A socket keeps its channel even when -yy later shows more of it (the peer of a unix socket):
            # the better key becomes an alias, so that the peer's socket finds the same channel.
            channel, local_marker = known
            if key not in self._aliases:
                self._aliases[key] = channel
                channel.other_keys.append(key)
            self._deliver_socket(channel, local_marker, op, data, size, time, pid, call_index)
            return
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
        self._deliver_socket(channel, local_marker, op, data, size, time, pid, call_index)

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
        if channel.undecodable or self.registry is None or size <= 0:
            return
        if chunk is None:
            chunk = Chunk(
                data=data, direction=direction, time=time, pid=pid, size=size, call_index=call_index
            )
        decoder = channel.decoder
        if decoder is None:
            self._detect(channel, chunk)
            return
        try:
            outputs = decoder.feed(chunk)
        except Exception as error:  # noqa: BLE001 - reported, and that channel's decoding stops
            self._fail(channel, decoder.name, error)
            return
        if outputs:
            self._collect(outputs)

    def _detect(self, channel: Channel, chunk: Chunk) -> None:
        side = chunk.direction is Direction.IN
        if len(channel.first_bytes[side]) < SAMPLE_BYTES:
            channel.first_bytes[side] = (channel.first_bytes[side] + chunk.data)[:SAMPLE_BYTES]
        channel.pending.append(chunk)
        channel.pending_bytes += len(chunk.data)
        assert self.registry is not None
        # Score what this direction has sent so far, so a greeting split over two calls is still seen.
        seen = b"".join(c.data for c in channel.pending if c.direction is chunk.direction)
        chosen = self.registry.choose(seen, chunk.direction, channel.info)
        if chosen is None:
            if channel.pending_bytes > DETECTION_BYTES or len(channel.pending) > DETECTION_CHUNKS:
                channel.undecodable = True
                channel.pending = []
            return
        channel.claimed = True
        channel.first_bytes = [b"", b""]
        try:
            channel.decoder = chosen(channel.info)
        except Exception as error:  # noqa: BLE001 - a broken decoder must not stop the trace
            self._fail(channel, chosen.name, error)
            return
        channel.decoder.options = self.decoder_options
        self.stats["decoded_channels"] += 1
        pending, channel.pending = channel.pending, []
        for queued in pending:
            self._feed(channel, queued)

    def _feed(self, channel: Channel, chunk: Chunk) -> None:
        decoder = channel.decoder
        assert decoder is not None
        try:
            outputs = decoder.feed(chunk)
        except Exception as error:  # noqa: BLE001 - reported, and that channel's decoding stops
            self._fail(channel, decoder.name, error)
            return
        self._collect(outputs)

    def _fail(self, channel: Channel, name: str, error: Exception) -> None:
        self.problems.append(
            f"decoder {name} failed on {channel.info.channel_id}: {error!r}; channel left undecoded"
        )
        log.debug("decoder failure", exc_info=error)
        channel.decoder = None
        channel.undecodable = True

    def _collect(self, outputs: object) -> None:
        annotations = self.annotations
        for output in outputs or ():  # type: ignore[attr-defined]
            kind = type(output)
            if kind is Annotation:
                notes = annotations.get(output.call_index)
                if notes is None:
                    annotations[output.call_index] = [output.text]
                else:
                    notes.append(output.text)
            elif kind is CimObject:
                self.emit(output)
            elif kind is Secret:
                self.secret_calls.add(output.call_index)
            elif isinstance(output, Annotation):
                annotations.setdefault(output.call_index, []).append(output.text)
            elif isinstance(output, (Record, CimObject)):
                self.emit(as_cim(output))

    def take_secret(self, call_index: int) -> bool:
        """Whether a decoder said this call's bytes hold a credential (asked once per call). A packet
        that began in an earlier call, already written, is known only now: this call, which carries its
        end, is hidden then, and the earlier mark is dropped rather than kept for ever."""
        found = [index for index in self.secret_calls if index <= call_index]
        self.secret_calls.difference_update(found)
        return bool(found)

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
        if channel.decoder is None:
            if not channel.claimed and channel.info.kind in SOCKET_KINDS and any(channel.first_bytes):
                self._report_undecoded(channel)
            return
        decoder, channel.decoder = channel.decoder, None
        channel.undecodable = True  # nothing more is fed to it
        try:
            outputs: list[Output] = list(decoder.close(time))
        except Exception as error:  # noqa: BLE001
            channel.decoder = decoder
            self._fail(channel, decoder.name, error)
            return
        self._collect(outputs)

    def _report_undecoded(self, channel: Channel) -> None:
        """A connection whose bytes no decoder claimed is said so in the summary, once."""
        assert self.registry is not None  # bytes are sampled only while detection runs
        channel.claimed = True
        out, in_ = channel.first_bytes
        channel.first_bytes = [b"", b""]
        counts = (channel.bytes_by_side[0], channel.bytes_by_side[1])
        self.emit(undecoded_object(channel.info, (out, in_), counts, self.registry.names()))
