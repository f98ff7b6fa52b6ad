"""TCP streams put back together from captured segments, and UDP datagrams grouped by their ends:
the flows a capture holds, as events a channel can be fed from.

TCP: each direction keeps the next sequence number it expects. A segment that starts there is
delivered and the segments held behind it follow; one that starts later waits (out of order); the part
of one that starts earlier is dropped (a retransmission or an overlap: the first copy is kept). Bytes the
capture never saw are delivered as a loss (`FlowData` with no data and a size): when the receiver's ACK
shows it got them, when too much waits behind the hole, or when the flow ends. A flow ends with FIN in
both directions, a RST, the end of the capture, or IDLE_SECONDS without a packet.

Memory is bounded whatever the capture: at most MAX_FLOWS flows open (the longest idle is ended first),
at most MAX_HELD bytes waiting behind a hole in one direction and MAX_HELD_TOTAL in all.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from dockit_core.ingest.pcap.frames import ACK, FIN, RST, SYN, Segment

MAX_FLOWS = 20_000
IDLE_SECONDS = 900.0
MAX_HELD = 1024 * 1024
MAX_HELD_TOTAL = 64 * 1024 * 1024
_MOD = 1 << 32
_MAX_LOSS = 1 << 30  # an ACK further than this past what was seen is a damaged segment's, not a loss


@dataclass(slots=True)
class FlowOpened:
    flow_id: str
    protocol: str  # tcp, tcp6, udp, udp6
    client: str  # the end that opened the connection (sent the SYN), or sent first
    server: str
    time: float
    handshake_seen: bool = False


@dataclass(slots=True)
class FlowData:
    flow_id: str
    from_client: bool
    data: bytes
    size: int  # bytes that crossed; more than len(data) when some were not captured
    time: float


@dataclass(slots=True)
class FlowClosed:
    flow_id: str
    time: float


FlowEvent = FlowOpened | FlowData | FlowClosed


def _distance(seq: int, base: int) -> int:
    """seq - base in 32-bit sequence space, signed."""
    value = (seq - base) % _MOD
    return value - _MOD if value >= _MOD // 2 else value


@dataclass(slots=True)
class _Side:
    next_seq: int | None = None
    held: dict[int, tuple[bytes, int]] = field(default_factory=dict)  # seq -> (data, bytes not captured)
    held_bytes: int = 0
    fin: int | None = None  # the sequence number of the FIN
    closed: bool = False


@dataclass(slots=True, eq=False)
class _Flow:
    flow_id: str
    protocol: str
    client: str
    server: str
    last_seen: float
    syn_seen: bool = False
    opened: bool = False
    sides: dict[str, _Side] = field(default_factory=dict)


class Reassembler:
    """Feed it segments in capture order; it returns the flow events each one completes."""

    def __init__(self) -> None:
        self.flows: OrderedDict[tuple[str, str, str], _Flow] = OrderedDict()
        self.held_total = 0
        self.stats = {"segments": 0, "retransmitted": 0, "lost_bytes": 0, "flows": 0, "evicted": 0}

    # -- input -------------------------------------------------------------------------------------
    def feed(self, segment: Segment, time: float) -> list[FlowEvent]:
        self.stats["segments"] += 1
        out: list[FlowEvent] = []
        self._expire(time, out)
        ends = sorted((segment.source, segment.destination))
        key = (segment.protocol, ends[0], ends[1])
        flow = self.flows.get(key)
        if segment.protocol == "udp":
            if flow is None:
                flow = self._new_flow(key, segment, segment.source, segment.destination, time)
            else:
                self.flows.move_to_end(key)
                flow.last_seen = time
            self._open(flow, time, out)
            out.append(FlowData(flow.flow_id, segment.source == flow.client, segment.payload,
                                len(segment.payload) + segment.cut, time))  # fmt: skip
            return out
        flags = segment.flags
        if flow is not None and flags & SYN and not flags & ACK and flow.syn_seen:
            side = flow.sides[segment.source]
            if side.next_seq is not None and _distance(segment.seq + 1, side.next_seq) != 0:
                self._close(key, flow, time, out)  # the same ends again: a new connection
                flow = None
        if flow is None:
            if not flags & SYN and not segment.payload and not segment.cut:
                return out  # an ACK, FIN or RST of a connection that is over (or began before the capture)
            client, server = _roles(segment)
            flow = self._new_flow(key, segment, client, server, time)
        else:
            self.flows.move_to_end(key)
            flow.last_seen = time
        side = flow.sides[segment.source]
        other = flow.sides[segment.destination]
        if flags & SYN:
            flow.syn_seen = True
            if side.next_seq is None:
                side.next_seq = (segment.seq + 1) % _MOD
            seq = (segment.seq + 1) % _MOD
        else:
            seq = segment.seq
        if flags & ACK and other.next_seq is not None:
            self._acknowledged(flow, segment.destination, other, segment.ack, time, out)
        if segment.payload or segment.cut:
            if side.next_seq is None:
                side.next_seq = seq  # a connection whose start the capture missed
            self._accept(flow, segment.source, side, seq, segment.payload, segment.cut, time, out)
        if flags & FIN:
            side.fin = (seq + len(segment.payload) + segment.cut) % _MOD
            if side.next_seq is None:
                side.next_seq = side.fin
            if side.next_seq == side.fin:
                side.closed = True
        if flags & RST:
            self._close(key, flow, time, out)
        elif all(s.closed for s in flow.sides.values()):
            self._close(key, flow, time, out)
        return out

    def finish(self, time: float) -> list[FlowEvent]:
        """The capture ended: every flow still open ends, with what was missing marked lost."""
        out: list[FlowEvent] = []
        for key, flow in list(self.flows.items()):
            self._close(key, flow, time, out)
        return out

    # -- flows -------------------------------------------------------------------------------------
    def _new_flow(
        self, key: tuple[str, str, str], segment: Segment, client: str, server: str, time: float
    ) -> _Flow:
        protocol = segment.protocol + ("6" if segment.ipv6 else "")
        flow = _Flow(f"{protocol}:{key[1]}-{key[2]}", protocol, client, server, time)
        flow.sides = {segment.source: _Side(), segment.destination: _Side()}
        if segment.source == segment.destination:  # a connection to itself: one side
            flow.sides[segment.source] = _Side()
        self.flows[key] = flow
        return flow

    def _open(self, flow: _Flow, time: float, out: list[FlowEvent]) -> None:
        if not flow.opened:
            flow.opened = True
            self.stats["flows"] += 1
            out.append(FlowOpened(flow.flow_id, flow.protocol, flow.client, flow.server, time, flow.syn_seen))

    def _close(self, key: tuple[str, str, str], flow: _Flow, time: float, out: list[FlowEvent]) -> None:
        for end, side in flow.sides.items():
            while side.held:
                self._skip_to_held(flow, end, side, time, out)
        if flow.opened:
            out.append(FlowClosed(flow.flow_id, time))
        self.flows.pop(key, None)

    def _expire(self, time: float, out: list[FlowEvent]) -> None:
        while self.flows:
            key, flow = next(iter(self.flows.items()))
            if len(self.flows) < MAX_FLOWS and time - flow.last_seen <= IDLE_SECONDS:
                return
            self.stats["evicted"] += 1
            self._close(key, flow, flow.last_seen, out)

    # -- one direction's bytes ---------------------------------------------------------------------
    def _deliver(
        self, flow: _Flow, end: str, data: bytes, size: int, time: float, out: list[FlowEvent]
    ) -> None:
        self._open(flow, time, out)
        out.append(FlowData(flow.flow_id, end == flow.client, data, size, time))
        if size > len(data):
            self.stats["lost_bytes"] += size - len(data)

    def _accept(
        self,
        flow: _Flow,
        end: str,
        side: _Side,
        seq: int,
        data: bytes,
        cut: int,
        time: float,
        out: list[FlowEvent],
    ) -> None:
        assert side.next_seq is not None
        ahead = _distance(seq, side.next_seq)
        if ahead < 0:
            if -ahead >= len(data) + cut:
                self.stats["retransmitted"] += 1
                return
            if -ahead >= len(data):
                cut -= -ahead - len(data)
                data = b""
            else:
                data = data[-ahead:]
            ahead, seq = 0, side.next_seq
        if ahead > 0:
            known = side.held.get(seq)
            if known is not None and len(known[0]) + known[1] >= len(data) + cut:
                self.stats["retransmitted"] += 1
                return
            if known is not None:
                side.held_bytes -= len(known[0])
                self.held_total -= len(known[0])
            side.held[seq] = (data, cut)
            side.held_bytes += len(data)
            self.held_total += len(data)
            while side.held and (side.held_bytes > MAX_HELD or self.held_total > MAX_HELD_TOTAL):
                self._skip_to_held(flow, end, side, time, out)
            return
        self._deliver(flow, end, data, len(data) + cut, time, out)
        side.next_seq = (seq + len(data) + cut) % _MOD
        self._drain(flow, end, side, time, out)

    def _drain(self, flow: _Flow, end: str, side: _Side, time: float, out: list[FlowEvent]) -> None:
        """Deliver what waited behind the hole that just closed."""
        while side.held:
            assert side.next_seq is not None
            ready = [seq for seq in side.held if _distance(seq, side.next_seq) <= 0]
            if not ready:
                break
            for seq in ready:
                data, cut = side.held.pop(seq)
                side.held_bytes -= len(data)
                self.held_total -= len(data)
                assert side.next_seq is not None
                ahead = _distance(seq, side.next_seq)
                if -ahead >= len(data) + cut:
                    self.stats["retransmitted"] += 1
                    continue
                if -ahead >= len(data):
                    cut, data = cut - (-ahead - len(data)), b""
                elif ahead < 0:
                    data = data[-ahead:]
                self._deliver(flow, end, data, len(data) + cut, time, out)
                side.next_seq = (side.next_seq + len(data) + cut) % _MOD
        if side.fin is not None and side.next_seq == side.fin:
            side.closed = True

    def _skip_to_held(self, flow: _Flow, end: str, side: _Side, time: float, out: list[FlowEvent]) -> None:
        """Give up waiting for the hole before the first held segment: its bytes were lost."""
        assert side.next_seq is not None
        base = side.next_seq
        first = min(side.held, key=lambda seq: _distance(seq, base))
        gap = _distance(first, base)
        if gap > 0:
            self._deliver(flow, end, b"", gap, time, out)
            side.next_seq = first
        self._drain(flow, end, side, time, out)

    def _acknowledged(
        self, flow: _Flow, end: str, side: _Side, ack: int, time: float, out: list[FlowEvent]
    ) -> None:
        """The receiver acknowledged up to `ack` what `end` sent: bytes before it that the capture did
        not see were lost by the capture, not by the connection."""
        assert side.next_seq is not None
        beyond = _distance(ack, side.next_seq)
        if side.fin is not None:
            beyond = min(beyond, _distance(side.fin, side.next_seq))
        if beyond <= 0 or beyond > _MAX_LOSS:
            return
        if side.held:
            first = min(side.held, key=lambda seq: _distance(seq, side.next_seq or 0))
            beyond = min(beyond, _distance(first, side.next_seq))
        if beyond > 0:
            self._deliver(flow, end, b"", beyond, time, out)
            side.next_seq = (side.next_seq + beyond) % _MOD
        self._drain(flow, end, side, time, out)


def _roles(segment: Segment) -> tuple[str, str]:
    """(client, server) of a TCP connection first met with this segment."""
    if segment.flags & SYN:
        if segment.flags & ACK:
            return segment.destination, segment.source
        return segment.source, segment.destination
    source_port = int(segment.source.rsplit(":", 1)[1])
    destination_port = int(segment.destination.rsplit(":", 1)[1])
    if source_port < destination_port:
        return segment.destination, segment.source
    return segment.source, segment.destination
