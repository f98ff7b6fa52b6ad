"""Everything the trace showed so far, by key: processes, files, sockets, pipes. State only.

The tracker changes these objects; the writers read them. Nothing here parses or prints.
"""

from __future__ import annotations

from dockit_core.model.categories import categorize
from dockit_core.model.fds import FdTable, SocketRefs
from dockit_core.model.nodes import FileNode, PipeNode, SocketNode
from dockit_core.model.processes import Process
from dockit_core.model.resolved import ResolvedNames


class Model:
    """Everything known so far. Lookups by key; the writers iterate in creation order."""

    def __init__(self) -> None:
        self.processes: dict[int, Process] = {}
        self.files: dict[str, FileNode] = {}
        self.sockets: dict[int, SocketNode] = {}  # node_id -> socket, in creation order
        self.pipes: dict[str, PipeNode] = {}
        self.socket_refs = SocketRefs()
        self.root_pid: int | None = None
        self.resolved = ResolvedNames()  # addresses the program looked up by name (DNS answers)
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
