"""The fd table: what each descriptor names (from the table, or from a `-y` decoration, which is
believed over it), and the calls that change it: close, close_range, dup, fcntl."""

from __future__ import annotations

from dockit_core.ingest.args import first_arg, int_arg, parse_fd, split_args
from dockit_core.ingest.decorations import parse_decoration
from dockit_core.ingest.events import Call
from dockit_core.model import FdEntry, FileNode, PipeNode, Process, SocketNode
from dockit_core.model.tracker.base import CallInfo, Handler, TrackerBase


class FdCalls(TrackerBase):
    def _fd_handlers(self) -> dict[str, Handler]:
        handlers: dict[str, Handler] = {"close": self._close, "close_range": self._close_range}
        handlers.update(dict.fromkeys(("dup", "dup2", "dup3", "fcntl", "fcntl64"), self._dup))
        return handlers

    def _node(self, process: Process, fd_arg: str) -> FileNode | SocketNode | PipeNode | None:
        """What an fd argument designates: its decoration if shown, else the fd table."""
        fd, decoration = parse_fd(fd_arg)
        if fd is None:
            return None
        entry = process.fds.get(fd)
        if decoration:
            entry = self._entry_from_decoration(process, fd, decoration, entry)
        return entry.node if entry is not None else None

    def _entry_from_decoration(self, process: Process, fd: int, text: str, entry: FdEntry | None) -> FdEntry:
        deco = parse_decoration(text)
        node = entry.node if entry is not None else None
        if deco.kind == "file":
            if not (isinstance(node, FileNode) and node.path == deco.path):
                assert deco.path is not None
                entry = FdEntry("file", self.model.file(deco.path), entry.cloexec if entry else False)
                process.fds[fd] = entry
            return entry
        if deco.kind == "pipe":
            if not (isinstance(node, PipeNode) and node.pipe_id == deco.pipe_id):
                pipe = self.model.pipe(deco.pipe_id)
                pipe.holders.add(process.owner)
                entry = FdEntry("pipe", pipe, entry.cloexec if entry else False)
                process.fds[fd] = entry
            return entry
        if deco.kind == "socket":
            if (
                not isinstance(node, SocketNode)
                or (deco.inode and node.inode and deco.inode != node.inode)
                or (deco.local and node.local and node.kind != "unix" and not _same_end(node.local, deco.local))
            ):
                node = self.model.new_socket(kind=deco.socket_kind or "unknown", inode=deco.inode)
                entry = FdEntry("socket", node, entry.cloexec if entry else False)
                process.fds[fd] = entry
            assert isinstance(node, SocketNode)
            node.pids.add(process.owner)
            if deco.socket_kind and node.kind == "unknown":
                node.kind = deco.socket_kind
            if deco.local:
                node.local = deco.local
            if deco.remote:
                node.remote = deco.remote
            if deco.inode and not node.inode:
                node.inode = deco.inode
            if deco.peer_inode:
                node.peer_inode = deco.peer_inode
            assert entry is not None
            return entry
        if entry is None or entry.kind != "other" or entry.label != deco.label:
            entry = FdEntry("other", None, entry.cloexec if entry else False, deco.label)
            process.fds[fd] = entry
        return entry

    def _close(self, call: Call, process: Process, info: CallInfo) -> None:
        fd, _ = parse_fd(first_arg(call.args))
        if fd is not None:
            entry = process.fds.pop(fd, None)
            if entry is not None:
                info.target = _label(entry.node)

    def _close_range(self, call: Call, process: Process, info: CallInfo) -> None:
        args = split_args(call.args)
        if len(args) < 2 or not call.ok:
            return
        low, high = int_arg(args[0].split("<")[0]), int_arg(args[1].split("<")[0])
        if low is None or high is None:
            return
        cloexec_only = len(args) > 2 and "CLOSE_RANGE_CLOEXEC" in args[2]
        for fd in [fd for fd in process.fds if low <= fd <= high]:
            if cloexec_only:
                process.fds[fd].cloexec = True  # a key of the table: recorded
            else:
                del process.fds[fd]

    def _dup(self, call: Call, process: Process, info: CallInfo) -> None:
        if not call.ok or call.retval is None:
            return
        name = call.name
        if (name == "fcntl" or name == "fcntl64") and "F_SETFD" not in call.args and "F_DUPFD" not in call.args:
            return  # F_GETFL, F_SETFL, F_GETFD...: nothing to learn, and no need to split the arguments
        args = split_args(call.args)
        if not args:
            return
        if call.name == "fcntl" or call.name == "fcntl64":
            if len(args) < 2:
                return
            command = args[1]
            if command.startswith("F_SETFD"):
                entry = process.fds.get(parse_fd(args[0])[0] or -1)
                if entry is not None:
                    entry.cloexec = len(args) > 2 and "FD_CLOEXEC" in args[2]
                return
            if not command.startswith("F_DUPFD"):
                return
        self._node(process, args[0])
        old = process.fds.get(parse_fd(args[0])[0] or -1)
        if old is None:
            return
        cloexec = "O_CLOEXEC" in call.args or "F_DUPFD_CLOEXEC" in call.args
        process.fds[call.retval] = FdEntry(old.kind, old.node, cloexec, old.label)
        info.target = _label(old.node)


def _label(node: object) -> str | None:
    if isinstance(node, FileNode):
        return node.path
    if isinstance(node, SocketNode):
        if node.local or node.remote:
            return f"{node.kind}:{node.local or '?'}->{node.remote or '?'}"
        return f"{node.kind}:socket{node.node_id}"
    if isinstance(node, PipeNode):
        return f"pipe:[{node.pipe_id}]"
    return None

def _same_end(known: str, shown: str) -> bool:
    """Whether a socket's address as bound and as -yy shows it later can be the same end: a bind to
    port 0 gets its port from the kernel, a bind to a wildcard address serves on a real one."""
    if known == shown:
        return True
    host, _, port = known.rpartition(":")
    shown_host, _, shown_port = shown.rpartition(":")
    return port in ("0", shown_port) and (host == shown_host or host in ("0.0.0.0", "[::]"))
