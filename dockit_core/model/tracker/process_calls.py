"""Process life: clone/fork, execve, exit, wait, chdir. Who is whose child, runs what, ends how."""

from __future__ import annotations

import re

from dockit_core.ingest.args import decimal, first_arg, int_arg, parse_path, parse_string_array, split_args
from dockit_core.ingest.events import Call
from dockit_core.model import FdEntry, FdTable, FileNode, PipeNode, Process
from dockit_core.model.tracker.base import CallInfo, Handler, TrackerBase

CLONE_CALLS = frozenset({"clone", "clone3", "fork", "vfork"})

_WAIT_STATUS = re.compile(r"WEXITSTATUS\(s\) == (\d+)|WTERMSIG\(s\) == (\w+)( && WCOREDUMP\(s\))?")


class ProcessCalls(TrackerBase):
    def _process_handlers(self) -> dict[str, Handler]:
        handlers: dict[str, Handler] = dict.fromkeys(CLONE_CALLS, self._clone)
        handlers["execve"] = handlers["execveat"] = self._execve
        handlers["exit_group"] = handlers["exit"] = self._exit_call
        handlers["wait4"] = handlers["waitpid"] = self._wait_call
        handlers["chdir"] = handlers["fchdir"] = self._chdir
        return handlers

    def _process(self, pid: int, time: float | None) -> Process:
        """The process a line of `pid` is about: a new one when the trace shows that pid for the first
        time, or again after its process exited (the kernel gave the pid to another)."""
        process = self.model.processes.get(pid)
        if process is not None and not process.exited:
            return process
        process = self.model.new_process(pid)
        process.start = time
        parent_pid, flags = self._pending_parent()
        if parent_pid is not None and parent_pid != pid:
            parent = self.model.process(parent_pid)
            self._adopt(parent, process, flags)
            self.model.note_early_child(pid, parent.key)
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
            leader_pid = parent.tgid or parent.pid
            leader = self.model.processes.get(leader_pid) or self.model.process(leader_pid)
            child.tgid = leader_pid
            child.leader_key = leader.key
            leader.threads.append(child.pid)
            child.ppid = leader.ppid
        else:
            child.ppid = parent.key
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
                    entry.node.holders.add(child.key)

    def _clone(self, call: Call, process: Process, info: CallInfo) -> None:
        if call.retval is None or call.retval <= 0:
            return
        child = self.model.processes.get(call.retval)
        flags = call.args if call.name in ("clone", "clone3") else ""
        if call.name == "clone3" and "CLONE_" not in flags:
            flags = _clone3_flags(flags)
        if self.model.early_children.pop(call.retval, None) == process.key:
            return  # the child began (and may have ended) before this clone returned: adopted then
        if child is None or (child.exited and child.ppid is not None):
            child = self.model.new_process(call.retval)  # a pid the kernel gave again
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
                self.model.file(resolved).access(process.owner).executed = True
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
        owner = process
        if process.is_thread and process.tgid is not None:
            owner = self.model.processes.get(process.tgid) or process
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


_CLONE_FLAG_BITS = {"CLONE_VM": 0x100, "CLONE_FILES": 0x400, "CLONE_VFORK": 0x4000, "CLONE_THREAD": 0x10000}


def _clone3_flags(args: str) -> str:
    """ltrace prints clone3's `struct clone_args` as the number its prototype asks for, its first field
    (`SYS_435([ 0x3d0f00 ], 88)`): the flags the tracker reads, by name."""
    start, end = args.find("[ "), args.find(" ]")
    if start < 0 or end < start:
        return args
    try:
        value = int(args[start + 2 : end].strip(), 0)
    except ValueError:
        return args
    return "|".join(name for name, bit in _CLONE_FLAG_BITS.items() if value & bit)
