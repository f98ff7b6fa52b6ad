"""Applies events to the model: the process tree, fd tables, files, sockets, pipes; routes their bytes.

Only the calls listed in `_HANDLERS` are looked at beyond their name: everything else (mmap, brk,
fstat, futex...) costs one dictionary miss. fd decorations (`-y`), when the log has them, are believed
over the fd table, so a trace attached mid-run still knows what its fds were.
"""

from __future__ import annotations

import os.path
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from dockit_core import ltrace_buffers
from dockit_core.args import (
    buffer_arg,
    decimal,
    first_arg,
    int_arg,
    iov_bytes,
    parse_fd,
    parse_path,
    parse_sockaddr,
    parse_string_array,
    split_args,
)
from dockit_core.channels import ChannelManager
from dockit_core.cstring import literal_bytes, parse_quoted
from dockit_core.decorations import parse_decoration
from dockit_core.events import Attach, Call, Event, Exit, Signal
from dockit_core.library_sql import LibrarySqlCalls
from dockit_core.library_tls import LibraryTlsCalls
from dockit_core.model import FdEntry, FdTable, FileNode, Model, PipeNode, Process, SocketNode
from dockit_core.strace_parser import PidAlias

CLONE_CALLS = frozenset({"clone", "clone3", "fork", "vfork"})
_MSG_LEN = re.compile(r"msg_len=(\d+)")  # sendmmsg/recvmmsg, strace 5+
_MSG_LEN_OLD = re.compile(
    r"msg_flags=[^{}]*\}, (\d+)\}"
)  # strace 4.x: `{{msg_name(0)=..., msg_flags=0}, 43}`
_WAIT_STATUS = re.compile(r"WEXITSTATUS\(s\) == (\d+)|WTERMSIG\(s\) == (\w+)( && WCOREDUMP\(s\))?")
_READS = frozenset({"read", "pread64", "pread", "recv", "recvfrom"})
_WRITES = frozenset({"write", "pwrite64", "pwrite", "send", "sendto"})
_VECTOR_READS = frozenset({"readv", "preadv", "preadv2", "recvmsg"})
_VECTOR_WRITES = frozenset({"writev", "pwritev", "pwritev2", "sendmsg"})
_METADATA = frozenset(
    {
        "stat",
        "lstat",
        "stat64",
        "lstat64",
        "access",
        "readlink",
        "statfs",
        "chmod",
        "chown",
        "lchown",
        "truncate",
        "getxattr",
        "lgetxattr",
        "listxattr",
        "llistxattr",
        "utime",
        "utimes",
        "setxattr",
        "lsetxattr",
        "mknod",
    }
)
_METADATA_AT = frozenset(
    {
        "newfstatat",
        "fstatat64",
        "statx",
        "faccessat",
        "faccessat2",
        "readlinkat",
        "fchmodat",
        "fchownat",
        "utimensat",
        "futimesat",
        "mknodat",
    }
)
_ONE_PATH_AT = _METADATA_AT | {"unlinkat", "mkdirat"}
_SPECIAL_NAMES = frozenset({"", ".", ".."})
# Calls that move bytes between two descriptors in the kernel: (source argument, target argument).
_TRANSFER_ARGS = {
    "sendfile": (1, 0),
    "sendfile64": (1, 0),
    "copy_file_range": (0, 2),
    "splice": (0, 2),
    "tee": (0, 1),
}


@lru_cache(maxsize=1024)
def _is_normal_folder(path: str) -> bool:
    """An absolute path that normpath leaves as it is (the kernel's -y decorations always are)."""
    return path == "/" or (path.startswith("/") and not path.endswith("/") and os.path.normpath(path) == path)


def _join_normal(base: str, name: str) -> str:
    """normpath(join(base, name)) without its cost in the common case: one plain name in a normal
    folder (a directory walk stats every entry relative to the folder's fd)."""
    if "/" not in name and name not in _SPECIAL_NAMES and _is_normal_folder(base):
        return base + "/" + name if base != "/" else "/" + name
    return os.path.normpath(os.path.join(base, name))


def _quoted_text(text: str, quote: int) -> str | None:
    """The literal at `text[quote]` as text (surrogateescape), or None: a plain ASCII literal without
    escapes, the usual path, is taken as it is, without the regex and the round trip through bytes."""
    end = text.find('"', quote + 1)
    if end > 0:
        body = text[quote + 1 : end]
        if body.isascii() and "\\" not in body:
            return body
    parsed = parse_quoted(text, quote)
    return parsed[0].decode("utf-8", "surrogateescape") if parsed is not None else None


_TWO_PATHS = frozenset({"rename", "link", "symlink", "renameat", "renameat2", "linkat", "symlinkat"})
_AT_FIRST_PATH = _ONE_PATH_AT | {"openat", "openat2"}  # (dirfd, path, ...)
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


@dataclass(slots=True)
class CallInfo:
    """What the tracker learnt about a call, for the calls file."""

    target: str | None = None  # the file, socket or pipe the call worked on
    file_io: bool = False  # a read/write on a regular file: its buffer is not worth keeping in full
    secret: bool = False  # a decoder found a credential in its bytes: the calls file hides them


CallSink = Callable[[Call, Process, CallInfo, list[str]], None]


class Tracker:
    def __init__(
        self,
        model: Model,
        channels: ChannelManager,
        *,
        initial_cwd: str | None = None,
        call_sink: CallSink | None = None,
        pending_calls: Callable[[], dict[int, tuple[str, float | None, str, str]]] | None = None,
    ) -> None:
        self.model = model
        self.channels = channels
        self.initial_cwd = initial_cwd
        self.call_sink = call_sink
        self.pending_calls = pending_calls or dict
        self.last_time: float | None = None
        self.first_time: float | None = None
        self.unattributed_data_calls = 0
        self.calls = 0
        self.last_info = CallInfo()
        self.library_sql = LibrarySqlCalls(channels)
        self.library_tls = LibraryTlsCalls(channels, self._node)
        self._handlers: dict[str, Callable[[Call, Process, CallInfo], None]] = self._build_handlers()
        self._dirfds: dict[str, tuple[int | None, str | None, str | None, bool]] = {}  # see _one_path_at
        # Paths the trace showed absent (ENOENT, unlinked, renamed away): an open with O_CREAT of one
        # of them created it. Bounded: past the limit it starts afresh, losing only that evidence.
        self._absent: set[str] = set()
        # Called with a connected socket whose last descriptor is gone, after its channel was closed:
        # the session writes its summary object and drops it from the model (memory stays flat).
        self.socket_retired: Callable[[SocketNode], None] | None = None
        model.socket_refs.released = self._socket_released

    # -- events --------------------------------------------------------------------------------------
    def apply(self, event: Event) -> None:
        if isinstance(event, Call):
            self.apply_call(event)
        elif isinstance(event, Exit):
            process = self._process(event.pid, event.time)
            process.exit_code = event.code
            process.signal = event.signal
            process.core_dumped = event.core_dumped
            process.end = event.time if event.time is not None else self.last_time
            if event.time is not None:
                self.last_time = event.time
            if not process.is_thread:
                if process.fds.sharers:  # clone(CLONE_FILES): the other processes keep the table
                    process.fds.sharers -= 1
                else:
                    process.fds.clear()  # the kernel closes them all: sockets held by no one else end
        elif isinstance(event, Signal):
            self._process(event.pid, event.time)
        elif isinstance(event, Attach):
            if event.attached:
                process = self._process(event.pid, None)
                if process.calls == 0 and process.ppid is None and process.tgid is None:
                    process.seen_from_start = False  # not a child whose clone the trace showed
        elif isinstance(event, PidAlias):
            self.model.rename_process(event.placeholder, event.pid)
        elif isinstance(event, tuple):  # (PidAlias, the line's own event)
            for part in event:
                if part is not None:
                    self.apply(part)

    def attached(
        self,
        pid: int,
        threads: list[int],
        *,
        executable: str | None = None,
        argv: list[str] | None = None,
        cwd: str | None = None,
    ) -> None:
        """A live attach (`-p`): pid and its threads ran before the trace began, so no clone or execve
        will say what they are. The caller knows it from /proc; call this before the first line."""
        leader = self.model.process(pid)
        leader.seen_from_start = False
        leader.executable = leader.executable or executable
        leader.argv = leader.argv or list(argv or [])
        leader.cwd = leader.cwd or cwd
        for tid in threads:
            if tid == pid or tid in leader.threads:
                continue
            thread = self.model.process(tid)
            thread.tgid = pid
            thread.seen_from_start = False
            thread.executable, thread.argv, thread.cwd = leader.executable, leader.argv, leader.cwd
            thread.fds = leader.fds
            leader.threads.append(tid)

    def apply_call(self, call: Call) -> None:
        self.calls += 1
        time = call.time
        if time is not None:
            self.last_time = time
            if self.first_time is None:
                self.first_time = time
        process = self.model.processes.get(call.pid)
        if process is None:
            process = self._process(call.pid, time)
        process.calls += 1
        if call.library is not None and not self.library_sql.active:
            self.library_sql.activate()
        handler = self._handlers.get(call.name)
        info = CallInfo()
        self.last_info = info
        if handler is not None:
            if call.partial:
                if call.name in _READS or call.name in _VECTOR_READS:
                    self.unattributed_data_calls += 1
            else:
                handler(call, process, info)
        annotations = self.channels.take_annotations(call.index) if self.channels.annotations else []
        if self.channels.secret_calls:
            info.secret = self.channels.take_secret(call.index)
        if self.call_sink is not None:
            self.call_sink(call, process, info, annotations)

    def _socket_released(self, node: SocketNode) -> None:
        """The socket's last descriptor is gone (close, exit, execve): its conversation is over."""
        self.channels.socket_closed(node, self.last_time)
        if self.socket_retired is not None and not node.listening and (node.remote or node.accepted):
            self.socket_retired(node)

    def finish(self) -> None:
        """End of trace: processes still alive end at the last time seen; decoders flush."""
        self.channels.close(self.last_time)
        self.library_sql.finish()

    # -- processes -----------------------------------------------------------------------------------
    def _process(self, pid: int, time: float | None) -> Process:
        process = self.model.processes.get(pid)
        if process is not None:
            return process
        process = self.model.process(pid)
        process.start = time
        parent_pid, flags = self._pending_parent()
        if parent_pid is not None and parent_pid != pid:
            self._adopt(self.model.process(parent_pid), process, flags)
        elif pid == self.model.root_pid:
            process.cwd = self.initial_cwd
        return process

    def _pending_parent(self) -> tuple[int | None, str]:
        """A process seen before its parent's clone returned: the parent is the one inside clone."""
        cloning = [(pid, entry) for pid, entry in self.pending_calls().items() if entry[0] in CLONE_CALLS]
        if not cloning:
            return None, ""
        pid, entry = cloning[-1]
        return pid, entry[2]

    def _adopt(self, parent: Process, child: Process, flags: str) -> None:
        if child.ppid is not None or child.tgid is not None:
            return
        child.seen_from_start = True  # its creation is in the trace ("Process N attached" under -f)
        if "CLONE_THREAD" in flags:
            leader = parent.tgid or parent.pid
            child.tgid = leader
            self.model.process(leader).threads.append(child.pid)
            child.ppid = self.model.process(leader).ppid
        else:
            child.ppid = parent.pid
        child.executable = parent.executable
        child.argv = list(parent.argv)
        child.cwd = parent.cwd
        if "CLONE_FILES" in flags or "CLONE_THREAD" in flags:
            child.fds = parent.fds  # one table, shared
            if "CLONE_THREAD" not in flags:
                child.fds.sharers += 1  # a process of its own: its exit leaves the table to the others
        else:
            child.fds = FdTable(
                self.model.socket_refs, {fd: FdEntry(e.kind, e.node, e.cloexec, e.label) for fd, e in parent.fds.items()}
            )
            for entry in child.fds.values():
                if isinstance(entry.node, PipeNode):
                    entry.node.holders.add(child.pid)

    def _clone(self, call: Call, process: Process, info: CallInfo) -> None:
        if call.retval is None or call.retval <= 0:
            return
        child = self.model.processes.get(call.retval)
        flags = call.args if call.name in ("clone", "clone3") else ""
        if child is None:
            child = self.model.process(call.retval)
            child.start = call.time
        self._adopt(process, child, flags)

    def _execve(self, call: Call, process: Process, info: CallInfo) -> None:
        args = split_args(call.args)
        path_index = 1 if call.name == "execveat" else 0
        if not call.ok and call.retval is not None:
            return
        if len(args) > path_index:
            path = parse_path(args[path_index])
            if path:
                resolved = self._resolve(process, path)
                process.executable = resolved
                self.model.file(resolved).access(process.pid).executed = True
                info.target = resolved
        if len(args) > path_index + 1:
            process.argv = parse_string_array(args[path_index + 1])
            process.argv_cut = '"...' in args[path_index + 1] or '..."' in args[path_index + 1]
        if process.tgid is None or process.tgid == process.pid:
            for fd in [fd for fd, entry in process.fds.items() if entry.cloexec]:
                del process.fds[fd]

    def _exit_call(self, call: Call, process: Process, info: CallInfo) -> None:
        """exit_group(N): the status, for logs without `+++ exited with N +++` (strace 4 with -qq,
        ltrace). A `+++` line, when there is one, still has the last word."""
        if call.name == "exit" and process.is_thread:
            return  # a thread's exit ends the thread only
        owner = self.model.process(process.owner)
        code = int_arg(first_arg(call.args).strip())
        if code is not None and owner.exit_code is None and owner.signal is None:
            owner.exit_code = code & 0xFF
        if owner.end is None:
            owner.end = call.time

    def _wait_call(self, call: Call, process: Process, info: CallInfo) -> None:
        """wait4/waitpid returning a child's pid with its status: the child's exit code or signal."""
        if call.retval is None or call.retval <= 0:
            return
        child = self.model.processes.get(call.retval)
        if child is None or child.exit_code is not None or child.signal is not None:
            return
        match = _WAIT_STATUS.search(call.args)
        if match is None:
            return
        if match.group(1) is not None:
            child.exit_code = decimal(match.group(1))
        else:
            child.signal = match.group(2)
            child.core_dumped = match.group(3) is not None

    def _chdir(self, call: Call, process: Process, info: CallInfo) -> None:
        if not call.ok:
            return
        if call.name == "chdir":
            path = parse_path(first_arg(call.args))
            if path:
                process.cwd = self._resolve(process, path)
        else:
            node = self._node(process, first_arg(call.args))
            if isinstance(node, FileNode):
                process.cwd = node.path

    # -- paths ----------------------------------------------------------------------------------------
    def _resolve(self, process: Process, path: str, dirfd: int | None = None) -> str:
        if path.startswith("/"):
            return os.path.normpath(path) if "/." in path or "//" in path else path
        base = process.cwd
        if dirfd is not None and dirfd >= 0:
            entry = process.fds.get(dirfd)
            if entry is not None and isinstance(entry.node, FileNode):
                base = entry.node.path
        if not base:
            return path
        return _join_normal(base, path)

    def _resolve_at(self, process: Process, path: str, dir_arg: str) -> str:
        """A path of an *at() call, relative to its dirfd argument (`AT_FDCWD`, `3</srv/x>`...)."""
        if path.startswith("/") and (process.cwd is not None or not dir_arg.startswith("AT_FDCWD<")):
            return self._resolve(process, path)
        fd, decoration = parse_fd(dir_arg)
        return self._resolve_in(process, path, fd, decoration)

    def _resolve_in(self, process: Process, path: str, fd: int | None, decoration: str | None) -> str:
        """With -y the dirfd's decoration names the folder; `AT_FDCWD</home/x>` is the process's
        current directory, learnt even when the trace never showed a chdir."""
        absolute = path.startswith("/")
        if decoration and (not absolute or (fd == -100 and process.cwd is None)):
            deco = parse_decoration(decoration)
            if deco.kind == "file" and deco.path:
                if fd == -100:
                    process.cwd = deco.path
                if not absolute:
                    return _join_normal(deco.path, path)
        return self._resolve(process, path, fd)

    def _open(self, call: Call, process: Process, info: CallInfo) -> None:
        if not call.ok or call.retval is None:
            if call.errno == "ENOENT":
                self._note_absent(call, process)
            return
        args = split_args(call.args)
        if call.name in ("openat", "openat2"):
            dir_arg = args[0] if args else None
            path_arg, flags = (args[1] if len(args) > 1 else ""), (args[2] if len(args) > 2 else "")
        else:
            dir_arg = None
            path_arg, flags = (args[0] if args else ""), (args[1] if len(args) > 1 else "")
        decorated = parse_decoration(call.ret_decoration) if call.ret_decoration else None
        if decorated is not None and decorated.kind == "file" and decorated.path:
            path = decorated.path
        else:
            raw = parse_path(path_arg)
            if raw is None:
                return
            path = self._resolve(process, raw) if dir_arg is None else self._resolve_at(process, raw, dir_arg)
        known = path in self.model.files
        node = self.model.file(path)
        access = node.access(process.owner)
        access.opens += 1
        if call.name == "creat" or "O_CREAT" in flags:
            if self._creates(call.name, flags, path, known):
                access.created = True
        if self._absent:
            self._absent.discard(path)  # it exists now
        process.fds[call.retval] = FdEntry("file", node, "O_CLOEXEC" in flags)
        info.target = path

    def _creates(self, name: str, flags: str, path: str, known: bool) -> bool:
        """Whether an open with O_CREAT (or creat) made the file. Sure with O_EXCL, or when the trace
        showed the path absent; not when it showed the file there (opened, read, stat'ed). Without
        evidence, O_TRUNC and creat are taken as making a new file, plain O_CREAT (an append) not."""
        if "O_EXCL" in flags or path in self._absent:
            return True
        if known:
            return False
        return name == "creat" or "O_TRUNC" in flags

    def _note_absent(self, call: Call, process: Process) -> None:
        """A call failed with ENOENT: the path it named did not exist then."""
        args = split_args(call.args)
        if call.name in _AT_FIRST_PATH:
            if len(args) < 2:
                return
            raw = parse_path(args[1])
            path = self._resolve_at(process, raw, args[0]) if raw else None
        else:
            raw = parse_path(args[0]) if args else None
            path = self._resolve(process, raw) if raw else None
        if path:
            self._absent_add(path)

    def _absent_add(self, path: str) -> None:
        if len(self._absent) >= 100_000:
            self._absent.clear()
        self._absent.add(path)

    def _path_call(self, call: Call, process: Process, info: CallInfo) -> None:
        """stat, access, unlink, rename, mkdir...: calls that name a path (one-path *at() calls take
        `_one_path_at`)."""
        if not call.ok:
            if call.errno == "ENOENT" and call.name not in _TWO_PATHS:
                self._note_absent(call, process)
            return
        name = call.name
        args = split_args(call.args) if name in _TWO_PATHS else []
        paths: list[str] = []
        if name in ("rename", "link", "symlink"):
            paths = [p for p in (parse_path(a) for a in args[:2]) if p]
            paths = [self._resolve(process, p) for p in paths]
        elif name in ("renameat", "renameat2", "linkat"):
            if len(args) >= 4:
                src, dst = parse_path(args[1]), parse_path(args[3])
                if src and dst:
                    paths = [
                        self._resolve_at(process, src, args[0]),
                        self._resolve_at(process, dst, args[2]),
                    ]
        elif name == "symlinkat":
            if len(args) >= 3:
                dst = parse_path(args[2])
                if dst:
                    paths = [self._resolve_at(process, dst, args[1])]
        else:
            path = _quoted_text(call.args, 0) if call.args.startswith('"') else None
            if path:
                paths = [self._resolve(process, path)]
        if not paths:
            return
        info.target = paths[-1]
        if name in ("unlink", "unlinkat", "rmdir"):
            self.model.file(paths[0]).access(process.owner).deleted = True
            self._absent_add(paths[0])
        elif name in ("rename", "renameat", "renameat2") and len(paths) == 2:
            source, target = paths
            self.model.file(source).access(process.owner).renamed_to = target
            self.model.file(target).access(process.owner).renamed_from = source
            if "RENAME_EXCHANGE" in call.args:  # both stay, each with the other's content
                self.model.file(target).access(process.owner).renamed_to = source
                self.model.file(source).access(process.owner).renamed_from = target
            else:
                self._absent_add(source)
                self._absent.discard(target)
        elif name in ("mkdir", "mkdirat", "link", "linkat", "symlink", "symlinkat"):
            self.model.file(paths[-1]).access(process.owner).created = True
            self._absent.discard(paths[-1])
        else:
            self.model.file(paths[0]).access(process.owner).metadata += 1
            if self._absent:
                self._absent.discard(paths[0])

    def _one_path_at(self, call: Call, process: Process, info: CallInfo) -> None:
        """newfstatat, readlinkat, unlinkat...: one path relative to a dirfd, the bulk of a directory
        walk, so they have a handler of their own, and what their dirfd argument says (fd, decoration,
        the folder it names) is read once per distinct argument text."""
        retval = call.retval
        if retval is None or retval < 0 or call.errno is not None:  # not call.ok
            if call.errno == "ENOENT":
                self._note_absent(call, process)
            return
        args = call.args
        quote = args.find('"')
        if quote <= 0:
            return
        end = args.find('"', quote + 1)
        path: str | None = args[quote + 1 : end] if end > 0 else None
        if path is None or not path.isascii() or "\\" in path:
            path = _quoted_text(args, quote)
            if path is None:
                return
        head = args[: args.rfind(",", 0, quote)]
        dirfd = self._dirfds.get(head)
        if dirfd is None:
            dirfd = self._dirfd(head)
        fd, decoration, folder, normal = dirfd
        if folder is not None and path and path[0] != "/":
            # _resolve_in's decorated relative case: the folder the decoration names, then the name
            if fd == -100:
                process.cwd = folder
            if normal and "/" not in path and path not in _SPECIAL_NAMES:
                target = folder + "/" + path if folder != "/" else "/" + path
            else:
                target = os.path.normpath(os.path.join(folder, path))
        else:
            if path == "" and decoration:  # AT_EMPTY_PATH on an fd
                path = parse_decoration(decoration).path or ""
            if not path:
                return
            target = self._resolve_in(process, path, fd, decoration)
        info.target = target
        node = self.model.files.get(target)
        if node is None:
            node = self.model.file(target)
        owner = process.tgid if process.tgid is not None else process.pid  # process.owner
        access = node.accesses.get(owner)
        if access is None:
            access = node.access(owner)
        name = call.name
        if name == "unlinkat":
            access.deleted = True
            self._absent_add(target)
        elif name == "mkdirat":
            access.created = True
        else:
            access.metadata += 1
            if self._absent:
                self._absent.discard(target)

    def _dirfd(self, head: str) -> tuple[int | None, str | None, str | None, bool]:
        """The dirfd argument of a one-path *at() call: (fd, decoration, the folder the decoration
        names when it names a file, else None, whether that folder is normal); kept for the calls that
        follow (a few thousand at most)."""
        fd, decoration = parse_fd(head)
        folder = None
        if decoration:
            deco = parse_decoration(decoration)
            if deco.kind == "file" and deco.path:
                folder = deco.path
        if len(self._dirfds) >= 4096:
            self._dirfds.clear()
        normal = folder is not None and _is_normal_folder(folder)
        found = self._dirfds[head] = (fd, decoration, folder, normal)
        return found

    # -- descriptors ----------------------------------------------------------------------------------
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
                process.fds[fd].cloexec = True
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
        process.fds[call.retval] = FdEntry("socket", node, len(args) > 1 and "SOCK_CLOEXEC" in args[1])
        if call.ret_decoration:
            self._entry_from_decoration(process, call.retval, call.ret_decoration, process.fds[call.retval])
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
        process.fds[call.retval] = FdEntry("socket", node, "SOCK_CLOEXEC" in call.args)
        if call.ret_decoration:
            self._entry_from_decoration(process, call.retval, call.ret_decoration, process.fds[call.retval])
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
                process.fds[fd] = FdEntry("socket", node, "SOCK_CLOEXEC" in call.args)
                if decoration:
                    self._entry_from_decoration(process, fd, decoration, process.fds[fd])
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

    # -- data -------------------------------------------------------------------------------------------
    def _data(self, call: Call, process: Process, info: CallInfo) -> None:
        name = call.name
        args_text = call.args
        ltrace = call.library is not None or ltrace_buffers.is_ltrace_syscall(call)
        if (
            ltrace
            and call.library is None
            and ltrace_buffers.inside_wrapping_call(call.pid, self.pending_calls())
        ):
            return  # ltrace: the library call around this system call shows and counts the same bytes
        fd_arg = first_arg(args_text)
        node = self._node(process, fd_arg)
        if node is None:
            return
        info.target = _label(node)
        size = call.retval if call.retval is not None and call.retval > 0 else 0
        reading = name in _READS or name in _VECTOR_READS
        if isinstance(node, FileNode):
            info.file_io = True
            access = node.access(process.owner)
            if reading:
                access.reads += 1
                access.read_bytes += size
            else:
                access.writes += 1
                access.written_bytes += size
            return
        if not call.ok:
            info.file_io = ltrace  # ltrace prints a failed recv's stale buffer, -A bytes of it: trimmed
            return
        if reading and "MSG_PEEK" in args_text:
            return  # a peek leaves the bytes in the socket: the read that follows carries them
        op = "read" if reading else "write"
        if ltrace:
            buffer = ltrace_buffers.call_bytes(call)
            if buffer is None:  # a raw pointer: bytes counted, no decoder fed a chunk of nothing
                self._route(node, process, op, b"", size, call, deliver=False)
            else:
                self._route(node, process, op, buffer.data, size, call)
            return
        if self.channels.registry is None:
            data = b""  # --no-decode: the bytes are counted, never read, so not unescaped either
        elif name in _READS or name in _WRITES:
            decoded = buffer_arg(args_text, fd_arg)
            if decoded is None:
                args = split_args(args_text)
                decoded = literal_bytes(args[1]) if len(args) > 1 else None
            data = decoded[0] if decoded else b""
        else:
            data, _cut = iov_bytes(args_text)
        if len(data) > size:
            data = data[:size]
        self._route(node, process, op, data, size, call)

    def _route(
        self,
        node: SocketNode | PipeNode,
        process: Process,
        op: str,
        data: bytes,
        size: int,
        call: Call,
        deliver: bool = True,
        fd_arg: str | None = None,
    ) -> None:
        """`fd_arg`: the argument naming the descriptor, when it is not the call's first."""
        time = call.time
        if op == "read" and time is not None and call.duration is not None:
            time += call.duration  # a read's bytes came when it returned: a blocking read waited for them
        if isinstance(node, SocketNode):
            if op == "read":
                node.bytes_in += size
            else:
                node.bytes_out += size
            if deliver:
                self.channels.socket_data(node, process.owner, op, data, size, time, call.index)
        else:
            if op == "read":
                node.bytes_read += size
            else:
                node.bytes_written += size
            node.bytes = max(node.bytes_read, node.bytes_written)
            (node.readers if op == "read" else node.writers).add(process.owner)
            if deliver:
                fd, _ = parse_fd(fd_arg if fd_arg is not None else first_arg(call.args))
                self.channels.pipe_data(node, fd or 0, process.owner, op, data, size, time, call.index)

    def _mmsg(self, call: Call, process: Process, info: CallInfo) -> None:
        """sendmmsg/recvmmsg (glibc's DNS resolver): several datagrams in one call; the return value
        is how many, each one's length is its msg_len."""
        node = self._node(process, first_arg(call.args))
        if node is None:
            return
        info.target = _label(node)
        if not call.ok or not call.retval or isinstance(node, FileNode):
            return
        lengths = _MSG_LEN.findall(call.args) or _MSG_LEN_OLD.findall(call.args)
        size = sum(decimal(length) or 0 for length in lengths[: call.retval])
        data, _cut = iov_bytes(call.args)
        op = "read" if call.name == "recvmmsg" else "write"
        self._route(node, process, op, data if len(data) == size else b"", size, call)

    def _transfer(self, call: Call, process: Process, info: CallInfo) -> None:
        """sendfile, copy_file_range, splice, tee: bytes moved from one descriptor to another inside the
        kernel (coreutils' cp and cat use copy_file_range), counted on both; the bytes are never shown."""
        source_at, target_at = _TRANSFER_ARGS[call.name]
        args = split_args(call.args)
        if len(args) <= max(source_at, target_at):
            return
        in_node, out_node = self._node(process, args[source_at]), self._node(process, args[target_at])
        size = call.retval if call.retval is not None and call.retval > 0 else 0
        if isinstance(in_node, FileNode):
            access = in_node.access(process.owner)
            access.reads += 1
            access.read_bytes += size
        elif isinstance(in_node, (SocketNode, PipeNode)) and size and call.name != "tee":  # tee leaves them
            # a decoder learns that bytes went by unseen
            self._route(in_node, process, "read", b"", size, call, fd_arg=args[source_at])
        if isinstance(out_node, FileNode):
            access = out_node.access(process.owner)
            access.writes += 1
            access.written_bytes += size
        elif isinstance(out_node, (SocketNode, PipeNode)) and size:
            self._route(out_node, process, "write", b"", size, call, fd_arg=args[target_at])
        info.target = _label(out_node)

    def _build_handlers(self) -> dict[str, Callable[[Call, Process, CallInfo], None]]:
        handlers: dict[str, Callable[[Call, Process, CallInfo], None]] = {}
        for name in CLONE_CALLS:
            handlers[name] = self._clone
        handlers["execve"] = handlers["execveat"] = self._execve
        handlers["exit_group"] = handlers["exit"] = self._exit_call
        handlers["wait4"] = handlers["waitpid"] = self._wait_call
        handlers["chdir"] = handlers["fchdir"] = self._chdir
        for name in ("open", "openat", "openat2", "creat", "open64"):
            handlers[name] = self._open
        for name in (
            _METADATA
            | _METADATA_AT
            | {
                "unlink",
                "unlinkat",
                "rmdir",
                "rename",
                "renameat",
                "renameat2",
                "mkdir",
                "mkdirat",
                "link",
                "linkat",
                "symlink",
                "symlinkat",
            }
        ):
            handlers[name] = self._path_call
        for name in _ONE_PATH_AT:
            handlers[name] = self._one_path_at
        handlers["close"] = self._close
        handlers["close_range"] = self._close_range
        for name in ("dup", "dup2", "dup3", "fcntl", "fcntl64"):
            handlers[name] = self._dup
        handlers["socket"] = self._socket
        for name in ("connect", "bind", "listen", "getsockname", "getpeername"):
            handlers[name] = self._address_call
        handlers["accept"] = handlers["accept4"] = self._accept
        handlers["pipe"] = handlers["pipe2"] = handlers["socketpair"] = self._pipe
        for name in _READS | _WRITES | _VECTOR_READS | _VECTOR_WRITES:
            handlers[name] = self._data
        for name in _TRANSFER_ARGS:
            handlers[name] = self._transfer
        handlers["sendmmsg"] = handlers["recvmmsg"] = self._mmsg
        for name in LibrarySqlCalls.NAMES:
            handlers[name] = self.library_sql.call
        for name in LibraryTlsCalls.NAMES:
            handlers[name] = self.library_tls.call
        return handlers


def _sockaddr(call: Call, arg: str) -> tuple[str | None, str | None, int | None]:
    """strace's `{sa_family=AF_INET, ...}`, or the bytes ltrace printed (a char array)."""
    if ", [ '" in call.args[:24]:
        found = ltrace_buffers.sockaddr(call)
        if found is not None:
            return found
    return parse_sockaddr(arg)


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
