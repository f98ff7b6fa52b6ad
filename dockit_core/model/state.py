"""Everything the trace showed so far, by key: processes, files, sockets, pipes. State only.

The tracker changes these objects; the writers read them. Nothing here parses or prints.
"""

from __future__ import annotations

import heapq
import itertools
import mmap
from collections.abc import Callable, Iterator

from dockit_core.model.categories import categorize
from dockit_core.model.fds import FdTable, SocketRefs
from dockit_core.model.nodes import FileAccess, FileNode, PipeNode, SocketNode, access_state, merge_access
from dockit_core.model.processes import Process, ProcessKey
from dockit_core.model.resolved import ResolvedNames
from dockit_core.model.spill import SortedRuns


class PidHistory:
    """How many processes each pid has named so far in the trace, in bounded memory: one byte a pid
    below 2^22 (the kernel's largest pid_max) in an anonymous mapping, whose pages cost memory only
    once a pid in them is used; a dict for the rest (a crafted log's pids, a count past 254)."""

    _SMALL = 1 << 22
    _LARGE_LIMIT = 1 << 16  # past this many odd pids, their counts start afresh (only numbering suffers)

    def __init__(self) -> None:
        self._small: mmap.mmap | None = None
        self._large: dict[int, int] = {}

    def next(self, pid: int) -> int:
        """Count one more process with `pid`; its number (1 for the first)."""
        if 0 <= pid < self._SMALL:
            if self._small is None:
                self._small = mmap.mmap(-1, self._SMALL)
            seen = self._small[pid]
            if seen < 255:
                self._small[pid] = seen + 1
                return seen + 1
        count = self._large.get(pid, 255 if 0 <= pid < self._SMALL else 0) + 1
        if len(self._large) >= self._LARGE_LIMIT and pid not in self._large:
            self._large.clear()
        self._large[pid] = count
        return count


class Model:
    """Everything known so far. Lookups by key; the writers iterate in creation order.

    A process that has ended is handed to `process_retired` and leaves `processes` (the session writes
    its summary object then: memory follows the processes alive, not all those the trace showed), but
    for the first one (the root), which stays until its pid is used again."""

    def __init__(self) -> None:
        self.processes: dict[int, Process] = {}  # pid -> the process it names now
        self.files: dict[str, FileNode] = {}
        self.sockets: dict[int, SocketNode] = {}  # node_id -> socket, in creation order
        self.pipes: dict[str, PipeNode] = {}
        self.socket_refs = SocketRefs()
        self.root_pid: int | None = None
        self.resolved = ResolvedNames()  # addresses the program looked up by name (DNS answers)
        self.pid_history = PidHistory()
        self.process_retired: Callable[[Process], None] | None = None
        # pid -> its parent's key, for a child seen before its parent's clone returned (it may even have
        # ended by then): the clone's return is that child, not a new process with the pid.
        self.early_children: dict[int, int] = {}
        self._next_socket = 1
        self._next_pipe = 1
        self._next_seq = 0
        self._spilled_files: SortedRuns[_SpilledAccess] | None = None

    def process(self, pid: int) -> Process:
        """The process `pid` names now (made when the trace shows it for the first time)."""
        found = self.processes.get(pid)
        if found is None:
            found = self.new_process(pid)
        return found

    def new_process(self, pid: int) -> Process:
        """A new process with `pid`: the one it named before (which has exited) is retired."""
        previous = self.processes.get(pid)
        if previous is not None:
            self.retire_process(previous)
        instance = self.pid_history.next(pid)
        found = Process(pid, fds=FdTable(self.socket_refs), key=ProcessKey.make(pid, instance),
                        instance=instance, seq=self._next_seq)  # fmt: skip
        self._next_seq += 1
        self.processes[pid] = found
        if self.root_pid is None:
            self.root_pid = pid
        return found

    def retire_process(self, process: Process) -> None:
        """`process` has ended: a thread's calls go to its leader, a process's summary object to
        `process_retired`; either way it leaves the model."""
        if self.processes.get(process.pid) is process:
            del self.processes[process.pid]
        if process.is_thread:
            leader = self.processes.get(process.tgid) if process.tgid is not None else None
            if leader is not None and leader.key == process.owner:
                leader.ended_threads_calls += process.calls
            return
        if self.process_retired is not None:
            self.process_retired(process)

    def note_early_child(self, pid: int, parent_key: int) -> None:
        if len(self.early_children) >= 4096:  # clones that never returned (a log cut, or crafted)
            self.early_children.clear()
        self.early_children[pid] = parent_key

    def calls_with_threads(self, process: Process) -> int:
        """A process's calls and its threads' (each thread is a Process of the model while it runs)."""
        processes = self.processes
        calls = process.calls + process.ended_threads_calls
        for tid in process.threads:
            thread = processes.get(tid)
            if thread is not None and thread.tgid == process.pid and thread.owner == process.key:
                calls += thread.calls
        return calls

    def rename_process(self, old: int, new: int) -> None:
        """`old` was a stand-in pid (an unprefixed log's default) for the process whose pid is `new`."""
        process = self.processes.get(old)
        if process is None or new in self.processes:
            if self.root_pid == old:
                self.root_pid = new
            return
        process.pid = new
        if process.key == old:
            process.key = new
            self.pid_history.next(new)
        self.processes = {(new if pid == old else pid): p for pid, p in self.processes.items()}  # same order
        if self.root_pid == old:
            self.root_pid = new
        for other in self.processes.values():
            if other.ppid == old:
                other.ppid = new
            if other.tgid == old:
                other.tgid = new
            if other.leader_key == old:
                other.leader_key = new
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
            if len(self.files) >= self.FILES_IN_MEMORY:
                self._spill_files()
            found = self.files[path] = FileNode(path, categorize(path), crowded=self._crowded)
        return found

    # A trace naming a million files keeps this many in memory; the oldest half of those no
    # descriptor holds goes to disk when it is reached, and comes back, merged, at the end. A file
    # named again after it went is a new node whose accesses add to the old one's then: the summary is
    # the same. (What is lost: `Created` takes an open of a file that went as an open of a file never
    # seen, as it does past the tracker's other bounded memories.)
    FILES_IN_MEMORY = 65536

    # What goes to disk is one item per access: (path, flag, order, category, process key, access
    # state), sorted by (path, flag, order). `flag` is 0 for the access of a process still alive (it
    # may add to it later: a second part of the same access), 1 for a final one. At the end, a file
    # whose items are all final is streamed in order; one with a part to merge is gathered first.
    def _crowded(self, node: FileNode) -> None:
        """A file many processes used (every program reads /etc/ld.so.cache): the accesses of those
        that ended go to disk, to come back at the end."""
        ended = [(key, access) for key, access in node.accesses.items() if not self._alive(key)]
        if ended:
            spill = self._spill()
            for key, access in ended:
                del node.accesses[key]
                spill.add((node.path, 1, access.order, node.category, key, access_state(access)))
        node.crowded_at = max(64, 2 * len(node.accesses))

    def _alive(self, key: int) -> bool:
        """Whether the process of `key` can still do something: it has not ended."""
        process = self.processes.get(key.pid if isinstance(key, ProcessKey) else key)
        return process is not None and process.key == key and not process.exited

    def _spill(self) -> SortedRuns[_SpilledAccess]:
        if self._spilled_files is None:
            self._spilled_files = SortedRuns(key=_access_place)
        return self._spilled_files

    def _spill_files(self) -> None:
        spill = self._spill()
        goal = len(self.files) - self.FILES_IN_MEMORY // 2
        gone = []
        for path, node in self.files.items():
            if node.open_fds <= 0:
                gone.append(path)
                if len(gone) >= goal:
                    break
        for path in gone:
            node = self.files.pop(path)
            if not node.accesses:
                spill.add((path, 1, 0, node.category, None, None))
            for key, access in node.accesses.items():
                spill.add((path, 0 if self._alive(key) else 1, access.order, node.category, key, access_state(access)))
        spill.flush()

    @property
    def spilled(self) -> bool:
        """Whether some files went to disk (see FILES_IN_MEMORY)."""
        return self._spilled_files is not None

    def file_entries(self) -> Iterator[tuple[str, str, Iterator[tuple[int, FileAccess]]]]:
        """Every file the trace named, by path, as (path, category, its accesses in the order they
        began): those written to disk merged back with those in memory. The accesses of a file are
        streamed when it can be (a file read by 100,000 processes is not gathered): consume them before
        asking for the next file."""
        if self._spilled_files is None:
            for path, node in sorted(self.files.items()):
                yield path, node.category, iter(list(node.accesses.items()))
            return
        in_memory = self._memory_items()
        merged = heapq.merge(self._spilled_files, in_memory, key=_access_place)
        for path, items in itertools.groupby(merged, key=_path_of):
            first = next(items)
            category = first[3]
            if first[1] == 0:  # a part to merge: the file's accesses are gathered, then put in order
                gathered: dict[int, FileAccess] = {}
                for item in itertools.chain((first,), items):
                    if item[4] is not None:
                        gathered[item[4]] = merge_access(gathered.get(item[4]), item[5])
                yield path, category, iter(sorted(gathered.items(), key=_order_of))
            else:
                yield path, category, _streamed(itertools.chain((first,), items))  # noqa: B031 - see docstring

    def _memory_items(self) -> list[_SpilledAccess]:
        items: list[_SpilledAccess] = []
        for path, node in self.files.items():
            if not node.accesses:
                items.append((path, 1, 0, node.category, None, None))
            for key, access in node.accesses.items():
                items.append((path, 1, access.order, node.category, key, access_state(access)))
        items.sort(key=_access_place)
        return items

    def all_files(self) -> Iterator[tuple[str, FileNode]]:
        """Every file the trace named, by path, each a FileNode with all its accesses (the Dockerfile
        reads these; the summary streams `file_entries`)."""
        for path, category, accesses in self.file_entries():
            node = FileNode(path, category)
            node.accesses = dict(accesses)
            yield path, node

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


_SpilledAccess = tuple[str, int, int, str, "int | None", "tuple[object, ...] | None"]


def _access_place(item: _SpilledAccess) -> tuple[str, int, int]:
    return item[0], item[1], item[2]


def _path_of(item: _SpilledAccess) -> str:
    return item[0]


def _order_of(item: tuple[int, FileAccess]) -> int:
    return item[1].order


def _streamed(items: Iterator[_SpilledAccess]) -> Iterator[tuple[int, FileAccess]]:
    for item in items:
        if item[4] is not None:
            yield item[4], FileAccess(*item[5])  # type: ignore[misc]
