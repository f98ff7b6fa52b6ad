"""Plaintext of TLS connections, from the calls of OpenSSL and GnuTLS as ltrace shows them.

On the socket a TLS connection carries records (the TLS decoder reads what its handshake shows). The
libraries' calls carry the plaintext:
- OpenSSL: `SSL_write(ssl, buf, n)`, `SSL_read(ssl, buf, n)` (the count is the return value) and the
  `_ex` forms (the count is behind their last argument, printed on return); `SSL_set_fd`,
  `SSL_set_rfd`, `SSL_set_wfd` and `SSL_get_fd` tie an `SSL*` to its socket.
- GnuTLS: `gnutls_record_send(session, buf, n)`, `gnutls_record_recv(session, buf, n)` (count returned);
  `gnutls_transport_set_int2(session, recv_fd, send_fd)` (what the `gnutls_transport_set_int` macro
  calls) and `gnutls_transport_set_ptr(session, fd)` tie a session to its socket.
- Without a tie (curl's own BIO, `BIO_new_socket`), a socket read or write made inside one of the TLS
  object's calls (a handshake, `SSL_write`...) ties it: the ciphertext of a TLS call goes to its socket.
- Memory BIOs (`SSL_set_bio(ssl, rbio, wbio)`: Python's asyncio and `ssl.SSLObject`): the program
  itself moves the ciphertext, reading it out of `wbio` (`BIO_read`, hooked where Python's `_ssl` calls
  it) and writing it to a socket. The socket whose write begins with the bytes last read out of an
  object's `wbio` is that object's. Until then its plaintext waits (at most MEMORY_BIO_WAIT chunks):
  the first bytes of a conversation must reach the socket's decoder first.

The plaintext continues the socket's own channel (`ChannelManager.tls_data`): a MySQL connection whose
greeting and SSL request crossed in clear goes on, in the same decoder, with the login and the queries
that only the plaintext shows. A TLS object tied to no known socket (memory BIOs, a trace attached after
the tie) has a channel of its own, `tls:<pid>:<object>`, without endpoints.
"""

from __future__ import annotations

import re

from dockit_core.ingest.events import Call
from dockit_core.ingest.ltrace_buffers import argument, decode_buffer
from dockit_core.model import Process, SocketNode
from dockit_core.model.channels import ChannelManager
from dockit_core.model.tracker.base import CallInfo

_COUNT = re.compile(r"\[\s*(\d+)\s*\]")
# name -> (direction of the data: "write" or "read", whether the count is the last argument)
_DATA_CALLS = {
    "SSL_write": ("write", False),
    "SSL_read": ("read", False),
    "SSL_write_ex": ("write", True),
    "SSL_read_ex": ("read", True),
    "gnutls_record_send": ("write", False),
    "gnutls_record_recv": ("read", False),
}
# name -> (index of the fd argument, or None for the return value; whether success is a return of 1)
_TIE_CALLS = {
    "SSL_set_fd": (1, True),
    "SSL_set_rfd": (1, True),
    "SSL_set_wfd": (1, True),
    "SSL_get_fd": (None, False),
    "gnutls_transport_set_int2": (1, False),
    "gnutls_transport_set_ptr": (1, False),
    "gnutls_transport_set_ptr2": (1, False),
}


# calls that move ciphertext on the socket from inside (a handshake, a read or a write): a socket read or
# write made while one of them runs ties its TLS object to that socket
_INNER_IO_CALLS = frozenset(
    {*_DATA_CALLS, "SSL_connect", "SSL_accept", "SSL_do_handshake", "gnutls_handshake"}
)


MEMORY_BIO_WAIT = 64  # plaintext chunks of a memory-BIO object kept while its socket is not known
MAX_TIES = 4096  # TLS objects remembered per trace (the oldest go first: a server runs for days)
_HEAD = 32  # bytes of ciphertext that tell a socket write as the one that carried them


class LibraryTlsCalls:
    """Tracker handler for the TLS libraries' ties (object to fd) and their plaintext reads and writes."""

    NAMES = (*_TIE_CALLS, *_DATA_CALLS, "SSL_set_bio", "BIO_read")

    def __init__(self, channels: ChannelManager, node_of_fd) -> None:  # type: ignore[no-untyped-def]
        self.channels = channels
        self.node_of_fd = node_of_fd  # (process, fd text) -> the node the tracker knows, or None
        self._sockets: dict[tuple[int, str], SocketNode] = {}  # (process, SSL* or session) -> its socket
        self._write_bios: dict[tuple[int, str], str] = {}  # (process, wbio) -> its SSL*
        self._waiting: dict[tuple[int, str], list[tuple]] = {}  # memory-BIO SSL* -> its plaintext so far
        self._heads: dict[int, dict[bytes, str]] = {}  # process -> {ciphertext read out of a wbio: SSL*}
        self.seen_ciphertext_heads = False

    def call(self, call: Call, process: Process, info: CallInfo) -> None:
        handle = (argument(call.args, 0) or "").strip()
        owner = process.owner
        tie = _TIE_CALLS.get(call.name)
        if tie is not None:
            self._tie(call, process, (owner, handle), *tie)
            return
        if call.name == "SSL_set_bio":
            self._memory_bio(call, owner, handle)
            return
        if call.name == "BIO_read":
            self._ciphertext_out(call, owner, handle)
            return
        op, count_last = _DATA_CALLS[call.name]
        size = self._count(call, count_last)
        if size <= 0:
            # A failed read prints its whole stale buffer (`retval` elements, and retval is -1): the
            # saved log keeps 32 of them, as for a file's read.
            info.file_io = op == "read"
            return
        if count_last and op == "read":
            info.keep_elements = (
                size  # SSL_read_ex prints the whole buffer it was given: the log keeps the count
            )
        printed = argument(call.args, 1)
        buffer = decode_buffer(printed, size) if printed is not None else None
        if buffer is None:
            return  # a raw pointer: ltrace had no prototype for it
        time = call.time
        if op == "read" and time is not None and call.duration is not None:
            time += call.duration  # the plaintext came when the read returned
        key = (owner, handle)
        socket = self._sockets.get(key)
        chunk = (op, buffer.data[:size], size, time, call.index)
        waiting = self._waiting.get(key)
        if socket is None and waiting is not None:
            if len(waiting) < MEMORY_BIO_WAIT:
                waiting.append(chunk)
                return
            self._flush(key, None)  # no socket found for it: its plaintext is decoded on its own
        self.channels.tls_data(socket, f"tls:{owner}:{handle}", owner, *chunk)

    def _memory_bio(self, call: Call, owner: int, ssl: str) -> None:
        """SSL_set_bio(ssl, rbio, wbio): the program may move the ciphertext itself (memory BIOs)."""
        wbio = (argument(call.args, 2) or "").strip()
        if not wbio:
            return
        self._sockets.pop((owner, ssl), None)  # an object's address used again: a new connection
        if len(self._write_bios) > MAX_TIES:
            self._write_bios.clear()
        self._write_bios[(owner, wbio)] = ssl
        if len(self._waiting) < MAX_TIES:
            self._waiting.setdefault((owner, ssl), [])

    def _ciphertext_out(self, call: Call, owner: int, bio: str) -> None:
        """BIO_read(wbio, buf, n): ciphertext the program takes out to send; its head names the socket."""
        ssl = self._write_bios.get((owner, bio))
        if ssl is None or (owner, ssl) in self._sockets or call.retval is None or call.retval <= 0:
            return
        printed = argument(call.args, 1)
        buffer = decode_buffer(printed, call.retval) if printed is not None else None
        if buffer is None or not buffer.data:
            return
        heads = self._heads.setdefault(owner, {})
        if len(heads) > 256:
            heads.clear()  # bounded: writes that never came
        heads[bytes(buffer.data[:_HEAD])] = ssl
        self.seen_ciphertext_heads = True

    def socket_write(self, process: Process, socket: SocketNode, data: bytes) -> None:
        """A write on `socket`: when it begins with ciphertext a memory-BIO object put out, the object is
        tied to that socket, and its waiting plaintext goes to the socket's conversation."""
        heads = self._heads.get(process.owner)
        if not heads or not data:
            return
        ssl = heads.pop(bytes(data[:_HEAD]), None)
        if ssl is None:
            return
        key = (process.owner, ssl)
        self._remember(key, socket)
        self._flush(key, socket)

    def _remember(self, key: tuple[int, str], socket: SocketNode) -> None:
        """Tie an object to its socket; memory stays bounded whatever the number of connections."""
        sockets = self._sockets
        sockets.pop(key, None)
        sockets[key] = socket  # the newest last: dicts keep their insertion order
        if len(sockets) > MAX_TIES:
            for old in list(sockets)[: MAX_TIES // 4]:
                del sockets[old]

    def _flush(self, key: tuple[int, str], socket: SocketNode | None) -> None:
        for chunk in self._waiting.pop(key, None) or ():
            self.channels.tls_data(socket, f"tls:{key[0]}:{key[1]}", key[0], *chunk)

    def finish(self) -> None:
        """End of the trace: plaintext still waiting for its socket is decoded on its own channel."""
        for key in list(self._waiting):
            self._flush(key, None)

    def socket_io(self, pid: int, process: Process, socket: SocketNode, pending: dict) -> None:  # type: ignore[type-arg]
        """A read or write on `socket` by `pid`: when it happens inside a TLS call, that call's object
        reads and writes this socket (curl's own BIO, a BIO made with BIO_new_socket: no SSL_set_fd)."""
        entry = pending.get(pid)
        if entry is None or "->" not in entry[0]:
            return
        if entry[0].rpartition("->")[2] not in _INNER_IO_CALLS:
            return
        handle = (argument(entry[2], 0) or "").strip()
        if handle:
            self._remember((process.owner, handle), socket)  # the object's I/O says its socket, always

    def _tie(self, call: Call, process: Process, key: tuple[int, str], fd_at: int | None, one: bool) -> None:
        if fd_at is None:  # SSL_get_fd: the fd is the result
            if call.retval is None or call.retval < 0 or key in self._sockets:
                return
            fd_text = str(call.retval)
        else:
            if one and call.retval != 1:
                return  # SSL_set_fd failed
            fd_text = (argument(call.args, fd_at) or "").strip()
            if fd_text.startswith("0x"):  # gnutls_transport_set_ptr: the fd cast to a pointer
                try:
                    fd_text = str(int(fd_text, 16))
                except ValueError:
                    return
        socket = self.node_of_fd(process, fd_text)
        if isinstance(socket, SocketNode):
            self._remember(key, socket)

    @staticmethod
    def _count(call: Call, count_last: bool) -> int:
        if call.retval is None or call.retval <= 0:
            return 0
        if not count_last:
            return call.retval
        last = call.args.rsplit(",", 1)[-1] if "," in call.args else ""
        match = _COUNT.search(last)
        return int(match.group(1)) if match else 0
