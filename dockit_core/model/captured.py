"""A packet capture's flows applied to the model: each TCP connection or UDP flow becomes a socket,
seen from its client's end, and its bytes go to the channels and their decoders as a trace's socket
calls' do. A capture shows no process: the chunks carry pid 0."""

from __future__ import annotations

from collections.abc import Callable

from dockit_core.ingest.pcap.reassembly import FlowClosed, FlowData, FlowEvent, FlowOpened
from dockit_core.model.channels import ChannelManager
from dockit_core.model.nodes import SocketNode
from dockit_core.model.state import Model

NO_PROCESS = 0


class CapturedFlows:
    def __init__(
        self,
        model: Model,
        channels: ChannelManager,
        retired: Callable[[SocketNode], None] | None = None,
    ) -> None:
        self.model = model
        self.channels = channels
        self.retired = retired
        self.sockets: dict[str, SocketNode] = {}
        self.chunks = 0
        self.first_time: float | None = None
        self.last_time: float | None = None

    def apply(self, event: FlowEvent) -> None:
        if self.first_time is None:
            self.first_time = event.time
        self.last_time = event.time
        if type(event) is FlowData:
            node = self.sockets.get(event.flow_id)
            if node is None:
                return
            self.chunks += 1
            if event.from_client:
                node.bytes_out += event.size
            else:
                node.bytes_in += event.size
            op = "write" if event.from_client else "read"
            channels = self.channels
            channels.socket_data(node, NO_PROCESS, op, event.data, event.size, event.time, self.chunks)
            # No calls file to show them: what decoders said of this chunk for one goes now.
            if channels.annotations:
                channels.annotations.clear()
            if channels.secret_calls:
                channels.secret_calls.clear()
        elif type(event) is FlowOpened:
            node = self.model.new_socket(kind=event.protocol, local=event.client, remote=event.server,
                                         created=event.time)  # fmt: skip
            self.sockets[event.flow_id] = node
        elif type(event) is FlowClosed:
            node = self.sockets.pop(event.flow_id, None)
            if node is None:
                return
            self.channels.socket_closed(node, event.time)
            if self.retired is not None:
                self.retired(node)

    def finish(self) -> None:
        for flow_id in list(self.sockets):
            self.apply(FlowClosed(flow_id, self.last_time or 0.0))
