"""Calls grouped into logical blocks, per process, as they stream by: the calls file tells a story.

How a call finds its block (docs/blocks.md says the same for users):
- A call on an open descriptor (read, write, fstat, mmap of a file, send, recv, close...) joins the block
  of what that descriptor designates (a file, a socket, a pipe, an eventfd...) in its process. The block
  starts at the call that gave the descriptor (open, socket, accept, pipe...) and ends when the process
  closes its last descriptor on it, execs, or exits. Decoded queries and requests go into it.
- A call that names a path without keeping a descriptor (stat, access, a failed open, unlink, mkdir...)
  joins the current path block of its process when its path is in the same folder, else starts one:
  500 `newfstatat` on files of one folder are one block, and so are `ls -l`'s lstat, lgetxattr and
  getxattr on each file of a folder.
- Calls on no file at all (mmap of memory, brk, futex, rt_sigaction...) join the one block of such calls
  of their process, which counts them by name.
- Process calls (execve, clone, fork, wait4, exit_group, kill...) are blocks of their own.
- When a file or path block ends and the previous finished block of that process had the same shape
  (same kind, same calls in the same order, same folder), the two become one block with a repeat count:
  twelve locale files opened, mapped and closed are one block. A cycle of 2 to 4 blocks that comes
  round again (a loop: clone, wait4, wait4...) folds the same way, each block counting its turns.
- A process that ends with few blocks (64 at most) is folded into its previous sibling when both did the
  same thing, block for block: a shell loop starting `sleep` 347 times gives the blocks of one `sleep`,
  each "in 347 like processes".
- Connections that carried data are never merged: each one keeps its own decoded exchanges.

Memory is bounded by the blocks held at once (per process: its open descriptors, one path block, one
block of other calls, a window of 9 for cycles, up to 65 ended blocks to compare with a sibling; per
parent, one group of like children), never by the length of the log. Blocks
come out when they end; the writer puts them back in order of start (start_order.py).
- A search for one file along a list of folders (the loader trying each folder for a library: failed
  opens of one name, folder after folder, and a stat of each folder) is one `search` block.
"""

from __future__ import annotations

import os.path
from collections.abc import Callable
from dataclasses import dataclass, field

from dockit_core.ingest.args import first_arg, parse_fd, parse_path, split_args
from dockit_core.ingest.decorations import parse_decoration
from dockit_core.ingest.events import Call
from dockit_core.model import FdEntry, FileNode, PipeNode, Process, SocketNode
from dockit_core.model.tracker import CallInfo

MAX_DECODED = 50  # decoded annotations kept per block; the rest are counted
MAX_EXAMPLES = 3  # targets named in a merged block
MAX_CYCLE = 4  # the longest cycle of blocks folded within a process
MAX_PROCESS_BLOCKS = 64  # a process with more blocks streams them out and is not folded with siblings
MAX_FD_SCAN = 256  # above this many open fds, a close ends its block without looking for duplicates
# Descriptors of a process whose block is remembered for their close: past this many open at once (a
# crafted log), a close the tracker no longer knows ends its block by its -y decoration, or not at all.
MAX_FDS_REMEMBERED = 1 << 16

READS = frozenset({"read", "pread64", "pread", "recv", "recvfrom", "readv", "preadv", "preadv2", "recvmsg"})
# Copies whose first descriptor is the source: counted as bytes read from it.
READS = READS | {"copy_file_range", "splice", "tee"}
WRITES = frozenset(
    {"write", "pwrite64", "pwrite", "send", "sendto", "writev", "pwritev", "pwritev2", "sendmsg", "sendfile"}
)
PROCESS_CALLS = frozenset(
    {"execve", "execveat", "clone", "clone3", "fork", "vfork", "exit", "exit_group", "wait4", "waitid"}
    | {"kill", "tgkill", "tkill"}
)
EXIT_CALLS = frozenset({"exit", "exit_group"})
# Calls whose first argument is a descriptor.
FD_FIRST = frozenset(
    READS
    | WRITES
    | {"close", "fstat", "fstat64", "fstatfs", "lseek", "_llseek", "ioctl", "fcntl", "fcntl64"}
    | {"getdents", "getdents64", "fadvise64", "fsync", "fdatasync", "ftruncate", "fchmod", "fchown"}
    | {"flock", "fallocate", "readahead", "fgetxattr", "fsetxattr", "flistxattr", "fchdir", "syncfs"}
    | {"connect", "bind", "listen", "accept", "accept4", "getsockname", "getpeername", "shutdown"}
    | {"setsockopt", "getsockopt", "sendmmsg", "recvmmsg", "splice", "tee", "copy_file_range"}
    | {"epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2", "timerfd_settime", "timerfd_gettime"}
    | {"inotify_add_watch", "inotify_rm_watch", "dup", "dup2", "dup3", "newfstatat", "statx"}
    | {"sync_file_range", "vmsplice"}
)
# Calls that return a new descriptor.
FD_RETURNING = frozenset(
    {"open", "open64", "openat", "openat2", "creat", "socket", "accept", "accept4", "dup", "dup2", "dup3"}
    | {"eventfd", "eventfd2", "epoll_create", "epoll_create1", "timerfd_create", "memfd_create"}
    | {"inotify_init", "inotify_init1", "signalfd", "signalfd4", "pidfd_open", "fanotify_init"}
)
_DIRFD_STATS = frozenset({"newfstatat", "statx"})  # on an fd with "", else on a path
# Path calls: where the path is, for a failed call the tracker gave no target.
_PATH_ARG = {"open": 0, "open64": 0, "creat": 0, "stat": 0, "lstat": 0, "stat64": 0, "lstat64": 0}
_PATH_ARG |= {"access": 0, "readlink": 0, "statfs": 0, "execve": 0, "chdir": 0, "unlink": 0, "rmdir": 0}
_PATH_ARG |= {"mkdir": 0, "truncate": 0, "chmod": 0, "getxattr": 0, "lgetxattr": 0}
_PATH_ARG |= {"openat": 1, "openat2": 1, "newfstatat": 1, "fstatat64": 1, "statx": 1, "faccessat": 1}
_PATH_ARG |= {"faccessat2": 1, "readlinkat": 1, "unlinkat": 1, "mkdirat": 1, "execveat": 1}


# A search: the dynamic loader looking for a library along its path (LD_LIBRARY_PATH, the hwcaps and tls
# subfolders, the system folders), or a program looking for a file in a list of folders (nsswitch's
# modules, Python's imports): a path call that finds nothing, on the same file name in folder after
# folder, with the stat of each folder in between.
_PROBES = frozenset({"open", "open64", "openat", "openat2"})
_STATS = frozenset({"stat", "lstat", "stat64", "lstat64", "newfstatat", "fstatat64", "statx", "access"})
_STATS |= {"faccessat", "faccessat2"}
_MISSING = frozenset({"ENOENT", "ENOTDIR"})
_MISSING_RESULTS = frozenset({-2, -20})  # the same, as ltrace -S shows them: a bare -errno
NOT_A_SEARCH = ""  # Block.search: calls other than probes and stats of folders

_UNKNOWN = object()  # a shape not computed yet


@dataclass(slots=True)
class Block:
    """Consecutive calls of one process that belong together."""

    pid: int
    kind: str  # file, socket, pipe, fd, path, search, calls, process
    target: str | None
    start: float | None = None
    end: float | None = None
    calls: int = 0
    names: dict[str, int] = field(default_factory=dict)  # call name -> count, in order of first use
    errors: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    decoded: list[str] = field(default_factory=list)
    decoded_more: int = 0
    repeat: int = 1  # how many like blocks were merged into this one
    examples: list[str] = field(default_factory=list)  # their targets, the first few
    first_line: int = 0
    last_line: int = 0
    result: str | None = None  # process calls: the result (child pid, exit status)
    folder: str | None = None  # the folder of the first target: repeats are told by it
    last_target: str | None = None  # path blocks: the target of the last call
    one_target: bool = True  # a merged block whose blocks all worked on the same target
    processes: int = 1  # how many like processes (children of one parent) were folded into this block
    # path blocks: the file name its failed probes looked for (None: no probe; NOT_A_SEARCH: other calls)
    search: str | None = None
    probe_folder: str | None = None  # the folder of its last probe
    folders: int = 0  # search blocks: the folders probed (a folder probed twice counts twice)
    # shape() and fold_shape() as last computed; add and merge forget them
    _shape: object = field(default=_UNKNOWN, repr=False, compare=False)
    _fold_shape: object = field(default=_UNKNOWN, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.folder is None and self.target and self.kind in ("file", "path"):
            self.folder = os.path.dirname(self.target) or "."

    @property
    def duration(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return max(0.0, self.end - self.start)

    def add(self, call: Call, name: str, annotations: list[str]) -> None:
        self.calls += 1
        self._shape = self._fold_shape = _UNKNOWN
        names = self.names
        names[name] = names.get(name, 0) + 1
        time = call.time
        if time is not None:
            if self.start is None:
                self.start = time
            self.end = time + (call.duration or 0.0)
        index = call.index
        if not self.first_line:
            self.first_line = index
        self.last_line = index
        retval = call.retval
        if call.errno is not None or (retval is not None and retval < 0):
            self.errors += 1
        elif retval is not None and retval > 0:
            if name in READS:
                if "MSG_PEEK" not in call.args:  # a peek leaves the bytes for the read that follows
                    self.bytes_in += retval
            elif name in WRITES:
                self.bytes_out += retval
        for text in annotations:
            if len(self.decoded) < MAX_DECODED:
                self.decoded.append(text)
            else:
                self.decoded_more += 1

    def shape(self) -> tuple[object, ...] | None:
        """What must be equal for two finished blocks in a row to merge; None: never merges."""
        shape = self._shape
        if shape is _UNKNOWN:
            shape = self._shape = self._compute_shape()
        return shape  # type: ignore[return-value]

    def _compute_shape(self) -> tuple[object, ...] | None:
        if self.kind in ("socket", "pipe", "fd"):
            return None
        if self.kind == "search":
            return None
        if self.kind == "process":  # failed execs of one program along PATH are one block
            return (self.kind, tuple(self.names), "failed" if self.errors == self.calls else self.target)
        return (self.kind, tuple(self.names), self.folder, self.errors == self.calls)

    def fold_shape(self) -> tuple[object, ...] | None:
        """What must be equal to fold the blocks of two sibling processes: a connection that carried
        data never folds; a pipe or an eventfd with the same calls does."""
        shape = self._fold_shape
        if shape is _UNKNOWN:
            shape = self._fold_shape = self._compute_fold_shape()
        return shape  # type: ignore[return-value]

    def _compute_fold_shape(self) -> tuple[object, ...] | None:
        shape = self.shape()
        if shape is not None:
            return shape
        if self.kind == "socket" and (self.decoded or self.bytes_in or self.bytes_out):
            return None
        return (self.kind, tuple(self.names))

    def merge(self, other: Block) -> None:
        self.calls += other.calls
        self._shape = self._fold_shape = _UNKNOWN
        for name, count in other.names.items():
            self.names[name] = self.names.get(name, 0) + count
        self.errors += other.errors
        self.bytes_in += other.bytes_in
        self.bytes_out += other.bytes_out
        for text in other.decoded:
            if len(self.decoded) < MAX_DECODED:
                self.decoded.append(text)
            else:
                self.decoded_more += 1
        self.decoded_more += other.decoded_more
        if self.repeat == 1 and self.target:
            self.examples.append(self.target)
        self.repeat += other.repeat
        self.one_target = self.one_target and other.one_target and self.target == other.target
        for example in other.examples or ([other.target] if other.target else []):
            if len(self.examples) < MAX_EXAMPLES and example not in self.examples:
                self.examples.append(example)
        if other.start is not None and (self.start is None or other.start < self.start):
            self.start = other.start
        if other.end is not None and (self.end is None or other.end > self.end):
            self.end = other.end
        self.last_line = max(self.last_line, other.last_line)


@dataclass
class _ProcessState:
    open: dict[object, Block] = field(default_factory=dict)  # node key -> block
    fds: dict[int, object] = field(default_factory=dict)  # fd -> node key, as this process used it
    path: Block | None = None
    path_key: str | None = None  # the folder of the path block
    other: Block | None = None
    finished: Block | None = None  # waiting to see whether the next finished block repeats it
    ppid: int | None = None
    ended: list[Block] | None = field(default_factory=list)  # all its blocks, while few (None: streamed)
    window: list[Block] = field(default_factory=list)  # the last few done blocks, to find a cycle in
    cycle: int = 0  # the period of the cycle being folded (the window holds one turn of it); 0: none
    turn: int = 0  # where the next block should fall in that cycle


@dataclass
class _ChildGroup:
    """Children of one parent that did the same thing, one after the other: their blocks, merged."""

    signature: tuple[object, ...]
    blocks: list[Block]


class BlockAggregator:
    """A call observer (the tracker's call sink signature) that hands finished blocks to `emit`."""

    def __init__(self, emit: Callable[[Block], None]) -> None:
        self.emit = emit
        self.calls_in = 0
        self.blocks_out = 0
        self._states: dict[int, _ProcessState] = {}
        self._groups: dict[int, _ChildGroup] = {}  # parent pid -> its last children that did the same

    def __call__(self, call: Call, process: Process, info: CallInfo, annotations: list[str]) -> None:
        self.calls_in += 1
        pid = process.pid
        state = self._states.get(pid)
        if state is None:
            state = self._states[pid] = _ProcessState(ppid=process.ppid)
        bare = call.name
        name = bare if call.is_syscall or not call.library else f"{call.library}->{bare}"
        if bare in PROCESS_CALLS:
            self._process_call(state, pid, call, name, info, annotations)
            return
        if bare in _DIRFD_STATS and '""' not in call.args:
            key = None  # a path relative to a directory fd (or no fd at all): a path call
        else:
            key, kind, label = self._descriptor(call, bare, process, info, state)
        if key is not None:
            block = state.open.get(key)
            if block is None:
                block = state.open[key] = Block(pid, kind, label)
            elif label and label != block.target and kind == "socket":
                block.target = label  # a socket's label fills in as it connects
            block.add(call, name, annotations)
            if bare == "close":
                self._after_close(state, call, process, key)
            return
        target = info.target or _failed_path(call, bare)
        if target is not None:
            folder = target[: target.rfind("/") + 1]  # os.path.dirname, inlined: once per path call
            path_key = folder.rstrip("/") or folder or "."  # trailing slashes go, unless all it has
            path_block = state.path
            if path_block is None or state.path_key != path_key:
                self._end_path(state)
                search = state.finished
                if search is not None and search.search and _goes_on(search, call, bare, target, folder):
                    search.add(call, name, annotations)  # the next folder of a search, or its stat
                    return
                path_block = state.path = Block(pid, "path", target, folder=path_key, last_target=target)
                state.path_key = path_key
            elif path_block.last_target != target:
                if not path_block.examples and path_block.target:
                    path_block.examples.append(path_block.target)
                path_block.repeat += 1
                path_block.one_target = False
                path_block.last_target = target
                if len(path_block.examples) < MAX_EXAMPLES:
                    path_block.examples.append(target)
            path_block.add(call, name, annotations)
            if path_block.search != NOT_A_SEARCH:
                _note_probe(path_block, call, bare, target, folder)
            return
        if state.other is None:
            state.other = Block(pid, "calls", None)
        state.other.add(call, name, annotations)

    # -- descriptors -------------------------------------------------------------------------------
    def _descriptor(
        self, call: Call, name: str, process: Process, info: CallInfo, state: _ProcessState
    ) -> tuple[object | None, str, str | None]:
        """The block key of the descriptor a call works on (node identity), its kind and label."""
        if name in _DIRFD_STATS and '""' not in call.args:
            return None, "", None  # a path relative to a directory fd (or no fd at all): a path call
        fd: int | None = None
        if name in FD_RETURNING and call.retval is not None and call.retval >= 0:
            fd = call.retval
        elif name in ("pipe", "pipe2", "socketpair") and call.ok:
            args = split_args(call.args)
            if args:
                fd = parse_fd(args[-1].strip("[]").split(",")[0])[0]
        elif name in ("mmap", "mmap2"):
            if "MAP_ANONYMOUS" not in call.args:
                args = split_args(call.args)
                fd = parse_fd(args[4])[0] if len(args) > 4 else None
        elif name in FD_FIRST:
            fd, _ = parse_fd(first_arg(call.args))
        if fd is None or fd < 0:
            return None, "", None
        entry = process.fds.get(fd)
        if entry is None:
            key = state.fds.get(fd) if name == "close" else None
            if key is None:
                key, kind, label = _decoration_key(call.args)
                if key is None:
                    return None, "", None
                return key, kind, label
            block = state.open.get(key)
            return key, block.kind if block else "fd", info.target
        key, kind, label = _entry_key(entry)
        if len(state.fds) < MAX_FDS_REMEMBERED or fd in state.fds:
            state.fds[fd] = key
        return key, kind, label or info.target

    def _after_close(self, state: _ProcessState, call: Call, process: Process, key: object) -> None:
        fd, _ = parse_fd(first_arg(call.args))
        if fd is not None:
            state.fds.pop(fd, None)
        if len(process.fds) <= MAX_FD_SCAN:
            for entry in process.fds.values():
                if _entry_key(entry)[0] == key:
                    return  # another descriptor of this process still designates it
        block = state.open.pop(key, None)
        if block is not None:
            self._finish(state, block)

    # -- process calls and endings -------------------------------------------------------------------
    def _process_call(
        self, state: _ProcessState, pid: int, call: Call, name: str, info: CallInfo, annotations: list[str]
    ) -> None:
        self._end_other(state)
        self._end_path(state)
        bare = call.name
        if bare in ("execve", "execveat") and call.ok:
            self._end_descriptors(state)
        target = info.target or _failed_path(call, bare)
        if target is None and bare in ("exit", "exit_group", "kill", "tgkill", "tkill"):
            target = f"({call.args})"
        block = Block(pid, "process", target)
        block.result = call.result
        block.add(call, name, annotations)
        self._finish(state, block)
        if bare in EXIT_CALLS:
            self.end_process(pid)

    def end_process(self, pid: int) -> None:
        """Everything of `pid` is finished (it exited, or the trace ended)."""
        state = self._states.pop(pid, None)
        if state is None:
            return
        self._end_other(state)
        self._end_path(state)
        self._end_descriptors(state)
        if state.finished is not None:
            self._out(state, state.finished)
            state.finished = None
        self._flush_window(state)
        group = self._groups.pop(pid, None)  # its children's last group
        if group is not None:
            self._emit_all(group.blocks)
        if state.ended is not None:
            self._fold_child(state.ppid, state.ended)

    def held(self) -> int:
        """Blocks held in memory now (open, or waiting for a repeat): what memory is bounded by."""
        return sum(
            len(state.open)
            + (state.path is not None)
            + (state.other is not None)
            + (state.finished is not None)
            + len(state.ended or ())
            + len(state.window)
            for state in self._states.values()
        ) + sum(len(group.blocks) for group in self._groups.values())

    def finish(self) -> None:
        """The end of the trace: every open block comes out."""
        for pid in list(self._states):
            self.end_process(pid)
        for group in self._groups.values():
            self._emit_all(group.blocks)
        self._groups.clear()

    def _end_descriptors(self, state: _ProcessState) -> None:
        blocks = sorted(state.open.values(), key=lambda b: b.first_line)
        state.open.clear()
        state.fds.clear()
        for block in blocks:
            self._finish(state, block)

    def _end_path(self, state: _ProcessState) -> None:
        if state.path is not None:
            block, state.path, state.path_key = state.path, None, None
            self._finish(state, block)

    def _end_other(self, state: _ProcessState) -> None:
        if state.other is not None:
            block, state.other = state.other, None
            self._finish(state, block)

    def _finish(self, state: _ProcessState, block: Block) -> None:
        previous = state.finished
        if previous is not None:
            if previous.search and block.kind == "path" and _continues_search(previous, block):
                _join_search(previous, block)
                return
            shape = block.shape()
            if shape is not None and shape == previous.shape():
                previous.merge(block)
                return
            self._out(state, previous)
        state.finished = block

    def _out(self, state: _ProcessState, block: Block) -> None:
        """A block that is done: folded into a cycle of 2 to 4 blocks that repeats (a loop: clone, wait4,
        wait4...), else passed on once it has left the window."""
        shape = block.fold_shape()
        window = state.window
        if state.cycle:
            head = window[state.turn]
            if shape is not None and shape == head.fold_shape():
                head.merge(block)
                state.turn = (state.turn + 1) % state.cycle
                return
            state.cycle = state.turn = 0
            self._flush_window(state)
            window = state.window
        window.append(block)
        newest = shape  # the newest block's shape: a cycle must end with a repeat of it
        for period in range(2, MAX_CYCLE + 1):
            if len(window) < 2 * period:
                break
            if newest is None or window[-1 - period].fold_shape() != newest:
                continue  # the pair of newest blocks already differs: the test below would fail
            first, second = window[-2 * period : -period], window[-period:]
            if all(
                a.fold_shape() is not None and a.fold_shape() == b.fold_shape()
                for a, b in zip(first, second, strict=True)
            ):
                for head, repeat in zip(first, second, strict=True):
                    head.merge(repeat)
                for older in window[: -2 * period]:
                    self._hold(state, older)
                state.window = list(first)
                state.cycle, state.turn = period, 0
                return
        if len(window) > 2 * MAX_CYCLE:
            self._hold(state, window.pop(0))

    def _flush_window(self, state: _ProcessState) -> None:
        for block in state.window:
            self._hold(state, block)
        state.window = []

    def _hold(self, state: _ProcessState, block: Block) -> None:
        """A block that is done: kept while the process has few, to fold it with a sibling's."""
        if state.ended is None:
            self._emit(block)
            return
        state.ended.append(block)
        if len(state.ended) > MAX_PROCESS_BLOCKS:
            self._emit_all(state.ended)
            state.ended = None

    def _fold_child(self, ppid: int | None, blocks: list[Block]) -> None:
        """A process ended with all its blocks known: fold it into its previous sibling when they did the
        same thing (a shell loop starting `sleep` again and again), else make it the group to match."""
        signature = tuple(block.fold_shape() for block in blocks)
        group = self._groups.get(ppid) if ppid is not None else None
        if group is not None and group.signature == signature:
            for mine, other in zip(group.blocks, blocks, strict=True):
                mine.merge(other)
                mine.processes += other.processes
            return
        if group is not None:
            del self._groups[ppid]  # type: ignore[arg-type]
            self._emit_all(group.blocks)
        if ppid is None or None in signature or not blocks:
            self._emit_all(blocks)
            return
        self._groups[ppid] = _ChildGroup(signature, blocks)

    def _emit_all(self, blocks: list[Block]) -> None:
        for block in blocks:
            self._emit(block)

    def _emit(self, block: Block) -> None:
        self.blocks_out += 1
        self.emit(block)


def _note_probe(block: Block, call: Call, name: str, target: str, folder: str) -> None:
    """A path call of a path block: an open that found nothing (its file name is what is searched), a
    stat (of a folder on the way: whatever it found), or anything else (then the block is no search)."""
    if name in _PROBES and _missing(call):
        wanted = target[len(folder) :]
        if block.search is None:
            block.search = wanted
        elif block.search != wanted:
            block.search = NOT_A_SEARCH
            return
        block.probe_folder = folder.rstrip("/") or "/"
    elif name not in _STATS:
        block.search = NOT_A_SEARCH


def _missing(call: Call) -> bool:
    return call.errno in _MISSING or (call.errno is None and call.retval in _MISSING_RESULTS)


def _goes_on(search: Block, call: Call, name: str, target: str, folder: str) -> bool:
    """Whether a path call in another folder than the path block before it goes on the search that
    block was (or began): the stat of the folder it just probed, or the same file name missing from
    the next folder (the search grows by a folder)."""
    if name in _STATS:
        return target.rstrip("/") == search.probe_folder
    if name in _PROBES and _missing(call) and target[len(folder) :] == search.search:
        _grow(search, folder.rstrip("/") or "/")
        return True
    return False


def _grow(search: Block, folder: str | None) -> None:
    """One more folder probed: a path block becomes a search block at its second folder."""
    if search.kind != "search":
        search.kind = "search"
        search.folders = 1
        search.examples = [search.probe_folder or search.folder or ""]
        search.target = search.search
        search._shape = search._fold_shape = _UNKNOWN
    search.folders += 1
    search.probe_folder = folder


def _continues_search(search: Block, block: Block) -> bool:
    """Whether a path block that just ended goes on the search before it: a probe for the same file
    name in another folder, or only stats of the folder just probed."""
    if block.search == search.search:
        return True
    if block.search is not None or not block.one_target:
        return False
    if block.calls != sum(count for name, count in block.names.items() if name in _STATS):
        return False
    return ((block.target or "").rstrip("/") or "/") == search.probe_folder


def _join_search(search: Block, block: Block) -> None:
    """A path block that went on the search before it (`_continues_search`): merged into it."""
    if block.search:
        _grow(search, block.probe_folder)
    elif search.kind != "search":
        _grow(search, search.probe_folder)
        search.folders -= 1  # only the stat of the folder it probed: no other folder
    repeat, examples, target = search.repeat, search.examples, search.target
    search.merge(block)
    search.repeat, search.examples, search.target, search.one_target = repeat, examples, target, True


def _entry_key(entry: FdEntry) -> tuple[object, str, str | None]:
    """The block key of what an fd designates (the same for every fd on it), its kind and label."""
    node = entry.node
    if isinstance(node, FileNode):
        return ("file", node.path), "file", node.path
    if isinstance(node, PipeNode):
        return ("pipe", node.pipe_id), "pipe", f"pipe:[{node.pipe_id}]"
    if isinstance(node, SocketNode):
        return ("socket", node.inode or id(node)), "socket", None
    return ("fd", entry.label), "fd", entry.label


def _decoration_key(args: str) -> tuple[object | None, str, str | None]:
    """The key of an fd the tracker no longer (or never) knew, from its `-y` decoration if shown."""
    _fd, decoration = parse_fd(first_arg(args))
    if not decoration:
        return None, "", None
    deco = parse_decoration(decoration)
    if deco.kind == "file" and deco.path:
        return ("file", deco.path), "file", deco.path
    if deco.kind == "pipe" and deco.pipe_id:
        return ("pipe", deco.pipe_id), "pipe", f"pipe:[{deco.pipe_id}]"
    if deco.kind == "socket" and deco.inode:
        return ("socket", deco.inode), "socket", decoration
    return ("fd", decoration), "fd", decoration


def _failed_path(call: Call, name: str) -> str | None:
    """The path of a path call that failed (the tracker names targets of successful calls only)."""
    if call.ok or name not in _PATH_ARG:
        return None
    args = split_args(call.args)
    index = _PATH_ARG[name]
    return parse_path(args[index]) if len(args) > index else None


def human_bytes(count: int) -> str:
    if count >= 1 << 80:  # no float holds some (a damaged log's); nobody reads them as GB anyway
        return f"{count} B"
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


def describe(block: Block) -> str:
    """One line for a person: `read /etc/passwd: 3 calls, 1.2 KB`."""
    text = _describe(block)
    if block.processes > 1:
        text += f" (in {block.processes} like processes, the first {block.pid})"
    return text


def _describe(block: Block) -> str:
    counts = f"{block.calls} call{'s' if block.calls != 1 else ''}"
    data = []
    if block.bytes_in:
        data.append(f"{human_bytes(block.bytes_in)} in")
    if block.bytes_out:
        data.append(f"{human_bytes(block.bytes_out)} out")
    if block.errors:
        data.append(f"{block.errors} failed")
    tail = ", ".join([counts, *data])
    target = block.target or ""
    many = f"{block.repeat} x " if block.repeat > 1 else ""
    if block.kind == "file" and block.one_target:
        return f"{many}{_file_verb(block.names)} {_files(block)}: {tail}"
    names = block.names
    if block.kind == "process":
        first = next(iter(names))
        if not block.one_target:
            return f"{many}{first}: {tail}"
        what = f"{first}{target}" if target.startswith("(") else f"{first} {target}".strip()
        if block.repeat == 1 and block.result is not None:
            what += f" = {block.result}"
        return f"{many}{what}" + (f": {tail}" if block.repeat > 1 else "")
    if block.kind == "search":
        first = block.examples[0] if block.examples else "?"
        tries = f"{block.folders} tr{'ies' if block.folders != 1 else 'y'}"
        where = f"{first} ... {block.probe_folder}" if block.folders > 1 else first
        return f"search {target}, {tries} in {where}: {tail}"
    if block.kind == "calls":
        listed = ", ".join(f"{n} x{c}" if c > 1 else n for n, c in names.items())
        return f"other calls ({listed}): {tail}"
    if block.kind == "path":
        first = ", ".join(names)
        where = (
            f"{many}{first} {target}"
            if block.one_target
            else f"{first} on {block.repeat} paths in {block.folder or target}"
        )
        return f"{where}: {tail}"
    if block.kind == "file":
        return f"{_file_verb(names)} {_files(block)}: {tail}"
    return f"{many}{target or block.kind}: {tail}"


def _files(block: Block) -> str:
    if block.repeat == 1 or block.one_target:
        return block.target or "?"
    return f"{block.repeat} files in {block.folder or block.target}"


def _file_verb(names: dict[str, int]) -> str:
    reads = any(n in READS for n in names)
    writes = any(n in WRITES for n in names)
    if reads and writes:
        return "read+write"
    if writes:
        return "write"
    if reads:
        return "read"
    if "mmap" in names or "mmap2" in names:
        return "map"
    if "getdents64" in names or "getdents" in names:
        return "list"
    return "open" if any(n in ("open", "openat", "open64", "openat2", "creat") for n in names) else "use"
