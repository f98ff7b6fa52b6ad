"""Plaintext of TLS connections, from OpenSSL's `SSL_write`/`SSL_read` as ltrace shows them.

On the socket a TLS connection carries records the decoders cannot read (the TLS decoder reports the
handshake). OpenSSL's API carries the plaintext: `SSL_write(ssl, buf, n)`, `SSL_read(ssl, buf, n)` (the
count is the return value) and the `_ex` forms (the count is in their last argument, printed on return).
`SSL_set_fd(ssl, fd)` ties an `SSL*` to its socket.

The plaintext goes to a channel of its own, one per `SSL*` (the socket's channel keeps the ciphertext),
described like its socket (ends, ports, server side), so the usual decoders find HTTP, MySQL... in it.
An `SSL*` never tied to an fd (a program using memory BIOs) is still decoded, without endpoints.
"""

from __future__ import annotations

import re

from dockit_core.ingest.events import Call
from dockit_core.ingest.ltrace_buffers import argument, decode_buffer
from dockit_core.model import Process, SocketNode
from dockit_core.model.channels import ChannelManager

_COUNT = re.compile(r"\[\s*(\d+)\s*\]")
# name -> (direction of the data: "write" or "read", whether the count is the last argument)
_CALLS = {
    "SSL_write": ("write", False),
    "SSL_read": ("read", False),
    "SSL_write_ex": ("write", True),
    "SSL_read_ex": ("read", True),
}


class LibraryTlsCalls:
    """Tracker handler for SSL_set_fd and the SSL read/write calls."""

    NAMES = ("SSL_set_fd", *_CALLS)

    def __init__(self, channels: ChannelManager, node_of_fd) -> None:  # type: ignore[no-untyped-def]
        self.channels = channels
        self.node_of_fd = node_of_fd  # (process, fd text) -> the node the tracker knows, or None
        self._plain: dict[tuple[int, str], SocketNode] = {}  # (process, SSL*) -> its plaintext channel's node
        self._next_id = -1  # plaintext nodes are not sockets of the model: ids below zero

    def call(self, call: Call, process: Process, _info: object) -> None:
        ssl = (argument(call.args, 0) or "").strip()
        owner = process.owner
        if call.name == "SSL_set_fd":
            if call.retval == 1:
                socket = self.node_of_fd(process, argument(call.args, 1) or "")
                self._plain[(owner, ssl)] = self._node(socket if isinstance(socket, SocketNode) else None)
            return
        op, count_last = _CALLS[call.name]
        size = self._count(call, count_last)
        if size <= 0:
            return
        printed = argument(call.args, 1)
        buffer = decode_buffer(printed, size) if printed is not None else None
        if buffer is None:
            return  # a raw pointer: ltrace had no prototype for it
        node = self._plain.get((owner, ssl))
        if node is None:
            node = self._plain[(owner, ssl)] = self._node(None)
        if op == "read":
            node.bytes_in += size
        else:
            node.bytes_out += size
        self.channels.socket_data(node, process.pid, op, buffer.data[:size], size, call.time, call.index)

    @staticmethod
    def _count(call: Call, count_last: bool) -> int:
        if call.retval is None or call.retval <= 0:
            return 0
        if not count_last:
            return call.retval
        last = call.args.rsplit(",", 1)[-1] if "," in call.args else ""
        match = _COUNT.search(last)
        return int(match.group(1)) if match else 0

    def _node(self, socket: SocketNode | None) -> SocketNode:
        node = SocketNode(self._next_id, kind="tls")
        self._next_id -= 1
        if socket is not None:
            node.family = socket.family
            node.local, node.remote = socket.local, socket.remote
            node.listening, node.accepted = socket.listening, socket.accepted
        return node
