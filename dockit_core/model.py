"""What the trace says exists: processes, their fd tables, files, sockets and pipes. State only.

The tracker changes these objects; the writers read them. Nothing here parses or prints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from dockit_core.args import port_number
from dockit_core.categories import categorize


@dataclass(slots=True)
class FileAccess:
    """What one process did to one file."""

    opens: int = 0
    reads: int = 0
    read_bytes: int = 0
    writes: int = 0
    written_bytes: int = 0
    created: bool = False
    deleted: bool = False
    renamed_to: str | None = None
    renamed_from: str | None = None
    metadata: int = 0  # stat, access, readlink, chmod...
    executed: bool = False


@dataclass(slots=True)
class FileNode:
    path: str
    category: str = ""
    accesses: dict[int, FileAccess] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.category:
            self.category = categorize(self.path)

    def access(self, pid: int) -> FileAccess:
        found = self.accesses.get(pid)
        if found is None:
            found = self.accesses[pid] = FileAccess()
        return found


@dataclass(slots=True, eq=False)
class SocketNode:
    node_id: int
    family: str | None = None  # AF_INET, AF_INET6, AF_UNIX...
    kind: str = "unknown"  # tcp, tcp6, udp, udp6, unix, netlink, unknown
    local: str | None = None
    remote: str | None = None
    inode: str | None = None
    peer_inode: str | None = None
    listening: bool = False
    accepted: bool = False  # came from accept(): the local end is a server
    bytes_in: int = 0
    bytes_out: int = 0
    pids: set[int] = field(default_factory=set)
    created: float | None = None

    @property
    def local_port(self) -> int | None:
        return _port(self.local)

    @property
    def remote_port(self) -> int | None:
        return _port(self.remote)


@dataclass(slots=True, eq=False)
class PipeNode:
    pipe_id: str  # the kernel inode when the trace shows it, else a synthetic id
    writers: set[int] = field(default_factory=set)
    readers: set[int] = field(default_factory=set)
    holders: set[int] = field(default_factory=set)
    bytes: int = 0  # bytes that crossed the pipe: each counts once, when both its ends are traced
    bytes_written: int = 0
    bytes_read: int = 0
    created_by: int | None = None


Node = FileNode | SocketNode | PipeNode


@dataclass(slots=True)
class FdEntry:
    kind: str  # "file", "socket", "pipe", "other"
    node: Node | None
    cloexec: bool = False
    label: str | None = None  # for "other": anon_inode:[eventfd], /dev/pts/2...


class SocketRefs:
    """How many descriptors, in every fd table, name each socket: when the last one goes (close, exit,
    execve's CLOEXEC, dup2 over it), `released` is called, so that a finished connection's decoder is
    closed and its summary object leaves memory."""

    __slots__ = ("counts", "released")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.released: Callable[[SocketNode], None] | None = None

    def hold(self, node: SocketNode) -> None:
        self.counts[node.node_id] = self.counts.get(node.node_id, 0) + 1

    def drop(self, node: SocketNode) -> None:
        left = self.counts.get(node.node_id, 0) - 1
        if left > 0:
            self.counts[node.node_id] = left
            return
        self.counts.pop(node.node_id, None)
        if self.released is not None:
            self.released(node)


class FdTable(dict[int, FdEntry]):
    """A process's descriptors (shared by its threads): a dict that keeps `SocketRefs` up to date."""

    __slots__ = ("refs", "sharers")

    def __init__(self, refs: SocketRefs | None = None, entries: dict[int, FdEntry] | None = None) -> None:
        super().__init__()
        self.refs = refs
        self.sharers = 0  # other processes (not threads) using this very table: clone(CLONE_FILES)
        for fd, entry in (entries or {}).items():
            self[fd] = entry

    def __setitem__(self, fd: int, entry: FdEntry) -> None:
        old = self.get(fd)
        super().__setitem__(fd, entry)
        if self.refs is not None:
            if entry.kind == "socket" and isinstance(entry.node, SocketNode):
                self.refs.hold(entry.node)
            if old is not None and old.kind == "socket" and isinstance(old.node, SocketNode):
                self.refs.drop(old.node)

    def __delitem__(self, fd: int) -> None:
        old = self[fd]
        super().__delitem__(fd)
        if self.refs is not None and old.kind == "socket" and isinstance(old.node, SocketNode):
            self.refs.drop(old.node)

    def pop(self, fd: int, default: FdEntry | None = None) -> FdEntry | None:  # type: ignore[override]
        if fd not in self:
            return default
        entry = self[fd]
        del self[fd]
        return entry

    def clear(self) -> None:
        for fd in list(self):
            del self[fd]


@dataclass
class Process:
    pid: int
    ppid: int | None = None
    tgid: int | None = None  # the thread group leader when this is a thread
    executable: str | None = None
    argv: list[str] = field(default_factory=list)
    argv_cut: bool = False
    cwd: str | None = None
    start: float | None = None
    end: float | None = None
    exit_code: int | None = None
    signal: str | None = None
    core_dumped: bool = False
    threads: list[int] = field(default_factory=list)
    fds: FdTable = field(default_factory=FdTable)
    calls: int = 0
    seen_from_start: bool = True  # False when the trace attached to it while it ran

    @property
    def is_thread(self) -> bool:
        return self.tgid is not None and self.tgid != self.pid

    @property
    def owner(self) -> int:
        """The process that files, sockets and pipes are attributed to: a thread's group leader, so
        that every `Process=` in the summary names a CIM_Process."""
        return self.tgid if self.tgid is not None else self.pid

    @property
    def command_line(self) -> str:
        return " ".join(self.argv)


class Model:
    """Everything known so far. Lookups by key; the writers iterate in creation order."""

    def __init__(self) -> None:
        self.processes: dict[int, Process] = {}
        self.files: dict[str, FileNode] = {}
        self.sockets: dict[int, SocketNode] = {}  # node_id -> socket, in creation order
        self.pipes: dict[str, PipeNode] = {}
        self.socket_refs = SocketRefs()
        self.root_pid: int | None = None
        self._next_socket = 1
        self._next_pipe = 1

    def process(self, pid: int) -> Process:
        found = self.processes.get(pid)
        if found is None:
            found = self.processes[pid] = Process(pid, fds=FdTable(self.socket_refs))
            if self.root_pid is None:
                self.root_pid = pid
        return found

    def rename_process(self, old: int, new: int) -> None:
        """`old` was a stand-in pid (an unprefixed log's default) for the process whose pid is `new`."""
        process = self.processes.get(old)
        if process is None or new in self.processes:
            if self.root_pid == old:
                self.root_pid = new
            return
        process.pid = new
        self.processes = {(new if pid == old else pid): p for pid, p in self.processes.items()}  # same order
        if self.root_pid == old:
            self.root_pid = new
        for other in self.processes.values():
            if other.ppid == old:
                other.ppid = new
            if other.tgid == old:
                other.tgid = new
            other.threads = [new if tid == old else tid for tid in other.threads]
        for node in self.files.values():
            if old in node.accesses:
                node.accesses[new] = node.accesses.pop(old)
        for socket in self.sockets.values():
            if old in socket.pids:
                socket.pids.discard(old)
                socket.pids.add(new)
        for pipe in self.pipes.values():
            for pids in (pipe.writers, pipe.readers, pipe.holders):
                if old in pids:
                    pids.discard(old)
                    pids.add(new)
            if pipe.created_by == old:
                pipe.created_by = new

    def file(self, path: str) -> FileNode:
        found = self.files.get(path)
        if found is None:
            found = self.files[path] = FileNode(path, categorize(path))
        return found

    def new_socket(self, **fields: object) -> SocketNode:
        node = SocketNode(self._next_socket, **fields)  # type: ignore[arg-type]
        self._next_socket += 1
        self.sockets[node.node_id] = node
        return node

    def retire_socket(self, node: SocketNode) -> None:
        """A finished socket leaves the model (its summary object was written elsewhere)."""
        self.sockets.pop(node.node_id, None)

    def pipe(self, pipe_id: str | None) -> PipeNode:
        if pipe_id is None:
            pipe_id = f"anon{self._next_pipe}"
            self._next_pipe += 1
        found = self.pipes.get(pipe_id)
        if found is None:
            found = self.pipes[pipe_id] = PipeNode(pipe_id)
        return found


def _port(address: str | None) -> int | None:
    if not address or ":" not in address:
        return None
    return port_number(address.rsplit(":", 1)[1])
