"""The things a trace names: files (with what each process did to them), sockets and pipes.

State only: the tracker fills them in, the writers read them.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable
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
    order: int = 0  # when it began, over the whole trace: a file's accesses are listed so


_ACCESS_ORDER = itertools.count(1)


@dataclass(slots=True)
class FileNode:
    path: str
    category: str = ""
    accesses: dict[int, FileAccess] = field(default_factory=dict)
    open_fds: int = 0  # descriptors naming it in every fd table: one held open is never spilled (state.py)
    # Called when `accesses` reaches `crowded_at` (a file every process reads): the model moves out
    # those of processes that ended, so that memory follows the processes alive (state.py).
    crowded: Callable[[FileNode], None] | None = None
    crowded_at: int = 64

    def __post_init__(self) -> None:
        if not self.category:
            self.category = categorize(self.path)

    def access(self, pid: int) -> FileAccess:
        found = self.accesses.get(pid)
        if found is None:
            found = self.accesses[pid] = FileAccess(order=next(_ACCESS_ORDER))
            if len(self.accesses) >= self.crowded_at and self.crowded is not None:
                self.crowded(self)
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

_ACCESS_FIELDS = FileAccess.__slots__
access_state: Callable[[FileAccess], tuple[object, ...]] = operator.attrgetter(*_ACCESS_FIELDS)
"""A FileAccess as a plain tuple (what is written when a file leaves memory, see state.py)."""


def merge_access(into: FileAccess | None, state: tuple[object, ...]) -> FileAccess:
    """What a process did to a file: `state` (a later part of it, from access_state) added to `into`
    (None: nothing yet). Counts add up, flags stay once set, the last rename wins, the first order."""
    if into is None:
        return FileAccess(*state)  # type: ignore[arg-type]
    for name, value in zip(_ACCESS_FIELDS, state, strict=True):
        if value is None or value is False or value == 0:
            continue
        if name == "order":
            into.order = min(into.order, value) if into.order else value  # type: ignore[type-var, assignment]
        elif isinstance(value, bool | str):
            setattr(into, name, value)
        else:
            setattr(into, name, getattr(into, name) + value)
    return into


def _port(address: str | None) -> int | None:
    if not address or ":" not in address:
        return None
    return port_number(address.rsplit(":", 1)[1])
