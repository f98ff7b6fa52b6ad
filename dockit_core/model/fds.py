"""File descriptor tables, and the count of descriptors naming each socket (so a connection's end is
known the moment its last descriptor goes, in whichever process held it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dockit_core.model.nodes import FileNode, Node, SocketNode


@dataclass(slots=True)
class FdEntry:
    kind: str  # "file", "socket", "pipe", "other"
    node: Node | None
    cloexec: bool = False
    label: str | None = None  # for "other": anon_inode:[eventfd], /dev/pts/2...


class SocketRefs:
    """How many descriptors, in every fd table, name each socket: when the last one goes (close, exit,
    execve's CLOEXEC, dup2 over it), `released` is called, so that a finished connection's decoder is
    closed and its summary object leaves memory.

    It also counts the descriptors of every table that shares it (the model's): past `limit` (a crafted
    log opening millions, or forking a process that holds a million), a new descriptor is not recorded
    but counted in `refused`; a call on it is then known by its `-y` decoration only."""

    __slots__ = ("counts", "released", "entries", "limit", "refused")

    LIMIT = 1 << 18  # descriptors open at once in the whole trace: a quarter million

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.released: Callable[[SocketNode], None] | None = None
        self.entries = 0
        self.limit = self.LIMIT
        self.refused = 0

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
        refs = self.refs
        if old is None and refs is not None:
            if refs.entries >= refs.limit:
                refs.refused += 1
                return
            refs.entries += 1
        super().__setitem__(fd, entry)
        if entry.kind == "file" and isinstance(entry.node, FileNode):
            entry.node.open_fds += 1
        if old is not None and old.kind == "file" and isinstance(old.node, FileNode):
            old.node.open_fds -= 1
        if self.refs is not None:
            if entry.kind == "socket" and isinstance(entry.node, SocketNode):
                self.refs.hold(entry.node)
            if old is not None and old.kind == "socket" and isinstance(old.node, SocketNode):
                self.refs.drop(old.node)

    def __delitem__(self, fd: int) -> None:
        old = self[fd]
        super().__delitem__(fd)
        if self.refs is not None:
            self.refs.entries -= 1
        if old.kind == "file" and isinstance(old.node, FileNode):
            old.node.open_fds -= 1
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
