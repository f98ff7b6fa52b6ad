"""Bytes: reads and writes on files (counted), sockets and pipes (counted and routed to the channels,
where the protocol decoders get them), vectored and multi-message calls, and in-kernel copies."""

from __future__ import annotations

import re

from dockit_core.ingest import ltrace_buffers
from dockit_core.ingest.args import (
    buffer_arg,
    decimal,
    first_arg,
    iov_bytes,
    parse_fd,
    parse_sockaddr,
    split_args,
)
from dockit_core.ingest.cstring import literal_bytes
from dockit_core.ingest.events import Call
from dockit_core.model import FileNode, PipeNode, Process, SocketNode
from dockit_core.model.tracker.base import CallInfo, Handler, TrackerBase
from dockit_core.model.tracker.fd_calls import _label

_MSG_LEN = re.compile(r"msg_len=(\d+)")  # sendmmsg/recvmmsg, strace 5+

_MSG_LEN_OLD = re.compile(
    r"msg_flags=[^{}]*\}, (\d+)\}"
)  # strace 4.x: `{{msg_name(0)=..., msg_flags=0}, 43}`

_READS = frozenset({"read", "pread64", "pread", "recv", "recvfrom"})

_WRITES = frozenset({"write", "pwrite64", "pwrite", "send", "sendto"})

_VECTOR_READS = frozenset({"readv", "preadv", "preadv2", "recvmsg"})

_VECTOR_WRITES = frozenset({"writev", "pwritev", "pwritev2", "sendmsg"})

_TRANSFER_ARGS = {
    "sendfile": (1, 0),
    "sendfile64": (1, 0),
    "copy_file_range": (0, 2),
    "splice": (0, 2),
    "tee": (0, 1),
}


def _destination(name: str, args: str) -> str | None:
    """The address a sendto or sendmsg names (`{sa_family=AF_INET, sin_port=htons(53), ...}`), if any."""
    if name == "sendto":
        parts = split_args(args)
        text = parts[4] if len(parts) > 4 else ""
    elif name == "sendmsg" and "msg_name={" in args:
        text = args[args.index("msg_name={") :]
    else:
        return None
    return parse_sockaddr(text)[1] if text.startswith(("{", "msg_name={")) else None


def _datagrams(args: str, count: int) -> list[tuple[bytes, int]] | None:
    """sendmmsg/recvmmsg's messages one by one, (bytes, msg_len) each (strace 5+'s `{msg_hdr=...,
    msg_len=N}`), or None when the text does not split cleanly (strace 4.x, a cut line, a buffer that
    holds the separator): the caller then takes them together as before."""
    parts = args.split("{msg_hdr=")[1:]
    if len(parts) < count or count < 1:
        return None
    found = []
    for part in parts[:count]:
        lengths = _MSG_LEN.findall(part)
        data, cut = iov_bytes(part)
        size = decimal(lengths[-1]) if lengths else None
        if size is None or len(data) > size or (len(data) < size and not cut):
            return None
        found.append((data, size))
    return found


class DataCalls(TrackerBase):
    def _data_handlers(self) -> dict[str, Handler]:
        handlers: dict[str, Handler] = dict.fromkeys(
            _READS | _WRITES | _VECTOR_READS | _VECTOR_WRITES, self._data
        )
        handlers.update(dict.fromkeys(_TRANSFER_ARGS, self._transfer))
        handlers["sendmmsg"] = handlers["recvmmsg"] = self._mmsg
        return handlers

    def _data(self, call: Call, process: Process, info: CallInfo) -> None:
        name = call.name
        args_text = call.args
        ltrace = call.library is not None or ltrace_buffers.is_ltrace_syscall(call)
        if (
            ltrace
            and call.library is None
            and ltrace_buffers.inside_wrapping_call(call.pid, self.pending_calls())
        ):
            return  # ltrace: the library call around this system call shows and counts the same bytes
        fd_arg = first_arg(args_text)
        node = self._node(process, fd_arg)
        if node is None:
            return
        info.target = _label(node)
        size = call.retval if call.retval is not None and call.retval > 0 else 0
        reading = name in _READS or name in _VECTOR_READS
        if isinstance(node, FileNode):
            info.file_io = True
            access = node.access(process.owner)
            if reading:
                access.reads += 1
                access.read_bytes += size
            else:
                access.writes += 1
                access.written_bytes += size
            return
        if not call.ok:
            info.file_io = ltrace  # ltrace prints a failed recv's stale buffer, -A bytes of it: trimmed
            return
        if reading and "MSG_PEEK" in args_text:
            return  # a peek leaves the bytes in the socket: the read that follows carries them
        op = "read" if reading else "write"
        if ltrace:
            if isinstance(node, SocketNode):
                self.library_tls.socket_io(call.pid, process, node, self.pending_calls())
            buffer = ltrace_buffers.call_bytes(call)
            if buffer is not None and op == "write" and self.library_tls.seen_ciphertext_heads:
                if isinstance(node, SocketNode):
                    self.library_tls.socket_write(process, node, buffer.data)
            if buffer is None:  # a raw pointer: bytes counted, no decoder fed a chunk of nothing
                self._route(node, process, op, b"", size, call, deliver=False)
            else:
                self._route(node, process, op, buffer.data, size, call)
            return
        if self.channels.registry is None and not self.channels.taps:
            data = b""  # --no-decode: the bytes are counted, never read, so not unescaped either
        elif self.channels.ignores(node):
            data = b""  # no decoder wants this channel's bytes (and no bridge copies them): not unescaped
        elif name in _READS or name in _WRITES:
            decoded = buffer_arg(args_text, fd_arg)
            if decoded is None:
                args = split_args(args_text)
                decoded = literal_bytes(args[1]) if len(args) > 1 else None
            data = decoded[0] if decoded else b""
        else:
            data, _cut = iov_bytes(args_text)
        if len(data) > size:
            data = data[:size]
        if (
            not reading
            and isinstance(node, SocketNode)
            and node.remote is None
            and node.kind in ("udp", "udp6")
            and not node.bytes_in
        ):
            node.remote = _destination(name, args_text)  # an unconnected UDP client: where it first sent
        self._route(node, process, op, data, size, call)

    def _route(
        self,
        node: SocketNode | PipeNode,
        process: Process,
        op: str,
        data: bytes,
        size: int,
        call: Call,
        deliver: bool = True,
        fd_arg: str | None = None,
    ) -> None:
        """`fd_arg`: the argument naming the descriptor, when it is not the call's first."""
        time = call.time
        if op == "read" and time is not None and call.duration is not None:
            time += call.duration  # a read's bytes came when it returned: a blocking read waited for them
        if isinstance(node, SocketNode):
            if op == "read":
                node.bytes_in += size
            else:
                node.bytes_out += size
            if deliver:
                self.channels.socket_data(node, process.owner, op, data, size, time, call.index)
        else:
            if op == "read":
                node.bytes_read += size
            else:
                node.bytes_written += size
            node.bytes = max(node.bytes_read, node.bytes_written)
            (node.readers if op == "read" else node.writers).add(process.owner)
            if deliver:
                fd, _ = parse_fd(fd_arg if fd_arg is not None else first_arg(call.args))
                self.channels.pipe_data(node, fd or 0, process.owner, op, data, size, time, call.index)

    def _mmsg(self, call: Call, process: Process, info: CallInfo) -> None:
        """sendmmsg/recvmmsg (glibc's DNS resolver): several datagrams in one call; the return value
        is how many, each one's length is its msg_len."""
        node = self._node(process, first_arg(call.args))
        if node is None:
            return
        info.target = _label(node)
        if not call.ok or not call.retval or isinstance(node, FileNode):
            return
        op = "read" if call.name == "recvmmsg" else "write"
        datagrams = _datagrams(call.args, call.retval)
        if datagrams is not None:  # each datagram is a message of its own (a DNS query, its answer)
            for data, size in datagrams:
                self._route(node, process, op, data, size, call)
            return
        lengths = _MSG_LEN.findall(call.args) or _MSG_LEN_OLD.findall(call.args)
        size = sum(decimal(length) or 0 for length in lengths[: call.retval])
        data, _cut = iov_bytes(call.args)
        self._route(node, process, op, data if len(data) == size else b"", size, call)

    def _transfer(self, call: Call, process: Process, info: CallInfo) -> None:
        """sendfile, copy_file_range, splice, tee: bytes moved from one descriptor to another inside the
        kernel (coreutils' cp and cat use copy_file_range), counted on both; the bytes are never shown."""
        source_at, target_at = _TRANSFER_ARGS[call.name]
        args = split_args(call.args)
        if len(args) <= max(source_at, target_at):
            return
        in_node, out_node = self._node(process, args[source_at]), self._node(process, args[target_at])
        size = call.retval if call.retval is not None and call.retval > 0 else 0
        if isinstance(in_node, FileNode):
            access = in_node.access(process.owner)
            access.reads += 1
            access.read_bytes += size
        elif isinstance(in_node, (SocketNode, PipeNode)) and size and call.name != "tee":  # tee leaves them
            # a decoder learns that bytes went by unseen
            self._route(in_node, process, "read", b"", size, call, fd_arg=args[source_at])
        if isinstance(out_node, FileNode):
            access = out_node.access(process.owner)
            access.writes += 1
            access.written_bytes += size
        elif isinstance(out_node, (SocketNode, PipeNode)) and size:
            self._route(out_node, process, "write", b"", size, call, fd_arg=args[target_at])
        info.target = _label(out_node)
