"""The things a trace names: files (with what each process did to them), sockets and pipes.

State only: the tracker fills them in, the writers read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dockit_core.ingest.args import port_number
from dockit_core.model.categories import categorize


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
    remote_name: str | None = None  # the name a DNS lookup gave for the remote address

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


def _port(address: str | None) -> int | None:
    if not address or ":" not in address:
        return None
    return port_number(address.rsplit(":", 1)[1])
