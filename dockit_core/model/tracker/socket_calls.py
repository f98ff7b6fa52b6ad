"""Sockets and pipes come and go: socket, connect/bind/listen and the address calls, accept, pipe,
socketpair. Their bytes are the data calls' job."""

from __future__ import annotations

from dockit_core.ingest import ltrace_buffers
from dockit_core.ingest.args import parse_fd, parse_sockaddr, split_args
from dockit_core.ingest.decorations import parse_decoration
from dockit_core.ingest.events import Call
from dockit_core.model import FdEntry, Process, SocketNode
from dockit_core.model.tracker.base import CallInfo, Handler, TrackerBase
from dockit_core.model.tracker.fd_calls import _label, _same_end

_FAMILY_KINDS = {
    "AF_INET": "tcp",
    "PF_INET": "tcp",
    "AF_INET6": "tcp6",
    "PF_INET6": "tcp6",
    "AF_UNIX": "unix",
    "AF_LOCAL": "unix",
    "PF_LOCAL": "unix",
    "PF_UNIX": "unix",
    "AF_NETLINK": "netlink",
    "PF_NETLINK": "netlink",
}


class SocketCalls(TrackerBase):
    def _socket_handlers(self) -> dict[str, Handler]:
        handlers: dict[str, Handler] = {"socket": self._socket}
        handlers.update(dict.fromkeys(("connect", "bind", "listen", "getsockname", "getpeername"), self._address_call))
        handlers["accept"] = handlers["accept4"] = self._accept
        handlers["pipe"] = handlers["pipe2"] = handlers["socketpair"] = self._pipe
        return handlers

    def _socket(self, call: Call, process: Process, info: CallInfo) -> None:
        if not call.ok or call.retval is None:
            return
        args = split_args(call.args)
        family = args[0] if args else None
        kind = _FAMILY_KINDS.get(family or "", "unknown")
        if len(args) > 1 and "SOCK_DGRAM" in args[1] and kind in ("tcp", "tcp6"):
            kind = "udp" if kind == "tcp" else "udp6"
        node = self.model.new_socket(family=family, kind=kind, created=call.time)
        node.pids.add(process.owner)
        entry = process.fds[call.retval] = FdEntry("socket", node, len(args) > 1 and "SOCK_CLOEXEC" in args[1])
        if call.ret_decoration:
            self._entry_from_decoration(process, call.retval, call.ret_decoration, entry)
        info.target = _label(node)

    def _address_call(self, call: Call, process: Process, info: CallInfo) -> None:
        """connect, bind, listen, getsockname, getpeername: endpoints of a socket."""
        args = split_args(call.args)
        if not args:
            return
        node = self._node(process, args[0])
        if not isinstance(node, SocketNode):
            return
        info.target = _label(node)
        if call.name == "listen":
            node.listening = call.ok
            return
        if call.errno not in (None, "EINPROGRESS") or len(args) < 2:
            return
        family, address, _port = _sockaddr(call, args[1])
        if family and not node.family:
            node.family = family
        if address is None:
            return
        if call.name in ("connect", "getpeername"):
            node.remote = node.remote or address
            if node.remote_name is None:
                node.remote_name = self.model.resolved.name_of(address)
        elif call.name in ("bind", "getsockname"):
            if node.local is None or (node.local != address and _same_end(node.local, address)):
                node.local = address  # getsockname tells the port a bind to port 0 got
            if call.name == "bind" and call.ok and family == "AF_UNIX" and not address.startswith("@"):
                # bind makes the socket's file (an abstract @name makes none)
                self.model.file(self._resolve(process, address)).access(process.owner).created = True
        info.target = _label(node)

    def _accept(self, call: Call, process: Process, info: CallInfo) -> None:
        if not call.ok or call.retval is None:
            return
        args = split_args(call.args)
        listener = self._node(process, args[0]) if args else None
        node = self.model.new_socket(accepted=True, created=call.time)
        if isinstance(listener, SocketNode):
            node.family, node.kind, node.local = listener.family, listener.kind, listener.local
        if len(args) > 1:
            _family, address, _port = _sockaddr(call, args[1])
            node.remote = address
        node.pids.add(process.owner)
        entry = process.fds[call.retval] = FdEntry("socket", node, "SOCK_CLOEXEC" in call.args)
        if call.ret_decoration:
            self._entry_from_decoration(process, call.retval, call.ret_decoration, entry)
        info.target = _label(node)

    def _pipe(self, call: Call, process: Process, info: CallInfo) -> None:
        if not call.ok:
            return
        args = split_args(call.args)
        if not args:
            return
        fds = [a.strip() for a in args[0 if call.name != "socketpair" else -1].strip("[]").split(",")]
        if len(fds) != 2:
            return
        cloexec = "O_CLOEXEC" in call.args
        if call.name == "socketpair":
            # Two connected sockets, one per end (the kernel's two inodes, as -yy shows them), like
            # the two ends of a TCP connection on the loopback.
            parsed = [parse_fd(a.strip()) for a in args[-1].strip("[]").split(",")]
            node = None
            for fd, decoration in parsed:
                if fd is None:
                    continue
                node = self.model.new_socket(family=args[0], kind="unix", created=call.time)
                node.pids.add(process.owner)
                entry = process.fds[fd] = FdEntry("socket", node, "SOCK_CLOEXEC" in call.args)
                if decoration:
                    self._entry_from_decoration(process, fd, decoration, entry)
            info.target = _label(node)
            return
        parsed = [parse_fd(a) for a in fds]
        pipe_id = None
        if parsed[0][1]:
            pipe_id = parse_decoration(parsed[0][1]).pipe_id
        pipe = self.model.pipe(pipe_id)
        pipe.created_by = process.owner
        pipe.holders.add(process.owner)
        for fd, _deco in parsed:
            if fd is not None:
                process.fds[fd] = FdEntry("pipe", pipe, cloexec)
        info.target = _label(pipe)


def _sockaddr(call: Call, arg: str) -> tuple[str | None, str | None, int | None]:
    """strace's `{sa_family=AF_INET, ...}`, or the bytes ltrace printed (a char array)."""
    if ", [ '" in call.args[:24]:
        found = ltrace_buffers.sockaddr(call)
        if found is not None:
            return found
    return parse_sockaddr(arg)
