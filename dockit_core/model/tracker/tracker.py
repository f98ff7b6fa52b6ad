"""Applies events to the model: the process tree, fd tables, files, sockets, pipes; routes their bytes.

Only the calls some part registers a handler for are looked at beyond their name: everything else
(mmap, brk, fstat, futex...) costs one dictionary miss. fd decorations (`-y`), when the log has them,
are believed over the fd table, so a trace attached mid-run still knows what its fds were.

The handlers live in one module per kind of call (`process_calls`, `file_calls`, `fd_calls`,
`socket_calls`, `data_calls`, and `library_sql`/`library_tls` for ltrace's library calls); this module
holds the events that are no system call (exits, signals, attaches) and the dispatch.
"""

from __future__ import annotations

from collections.abc import Callable

from dockit_core.ingest.events import Attach, Call, Event, Exit, Signal
from dockit_core.ingest.strace_parser import PidAlias
from dockit_core.model import Model, Process, SocketNode
from dockit_core.model.channels import ChannelManager
from dockit_core.model.tracker.base import CallInfo, CallSink, Handler, PendingCalls
from dockit_core.model.tracker.data_calls import _READS, _VECTOR_READS, DataCalls
from dockit_core.model.tracker.fd_calls import FdCalls
from dockit_core.model.tracker.file_calls import FileCalls
from dockit_core.model.tracker.library_sql import LibrarySqlCalls
from dockit_core.model.tracker.library_tls import LibraryTlsCalls
from dockit_core.model.tracker.process_calls import ProcessCalls
from dockit_core.model.tracker.socket_calls import SocketCalls


class Tracker(ProcessCalls, FileCalls, FdCalls, SocketCalls, DataCalls):
    def __init__(
        self,
        model: Model,
        channels: ChannelManager,
        *,
        initial_cwd: str | None = None,
        call_sink: CallSink | None = None,
        pending_calls: PendingCalls | None = None,
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
        self._handlers: dict[str, Handler] = self._build_handlers()
        self._dirfds: dict[str, tuple[int | None, str | None, str | None, bool]] = {}  # see _one_path_at
        # Paths the trace showed absent (ENOENT, unlinked, renamed away): an open with O_CREAT of one
        # of them created it. Bounded: past the limit it starts afresh, losing only that evidence.
        self._absent: set[str] = set()
        # Called with a connected socket whose last descriptor is gone, after its channel was closed:
        # the session writes its summary object and drops it from the model (memory stays flat).
        self.socket_retired: Callable[[SocketNode], None] | None = None
        self.ended: list[Process] = []  # processes that exited, retired when the next event comes
        model.socket_refs.released = self._socket_released
        # Set by the session for the --each-call calls file, which shows buffers: calls wait there while
        # a decoder reads a message they carry, so a late Secret still hides them (held_calls.py).
        self.held_calls: Callable[[Call, Process, CallInfo], None] | None = None

    def apply(self, event: Event) -> None:
        if self.ended:
            self.retire_ended()
        if isinstance(event, Call):
            self.apply_call(event)
        elif isinstance(event, Exit):
            process = self.model.processes.get(event.pid) or self._process(event.pid, event.time)
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
            process.exited = True
            if process.pid != self.model.root_pid or process.instance > 1:
                # Its summary object is written, and it leaves memory, before the next event is applied
                # (the session's observers of this exit still find it); a later line of its pid is a new
                # process. The first process stays to the end (a replay completes what it knows).
                self.ended.append(process)
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
            thread.leader_key = leader.key
            thread.seen_from_start = False
            thread.executable, thread.argv, thread.cwd = leader.executable, leader.argv, leader.cwd
            thread.fds = leader.fds
            leader.threads.append(tid)

    def apply_call(self, call: Call) -> None:
        if self.ended:
            self.retire_ended()
        self.calls += 1
        time = call.time
        if time is not None:
            self.last_time = time
            if self.first_time is None:
                self.first_time = time
        process = self.model.processes.get(call.pid)
        if process is None or process.exited:
            process = self._process(call.pid, time)
        process.calls += 1
        if call.library is not None and not self.library_sql.active:
            self.library_sql.activate()
            self.channels.plaintext_visible = True
        handler = self._handlers.get(call.name)
        info = CallInfo()
        self.last_info = info
        if handler is not None:
            if call.partial:
                if call.name in _READS or call.name in _VECTOR_READS:
                    self.unattributed_data_calls += 1
            else:
                handler(call, process, info)
        if self.held_calls is not None:
            self.held_calls(call, process, info)
            return
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

    def retire_ended(self) -> None:
        """The processes whose exit the last event was leave the model (see Model.retire_process)."""
        ended, self.ended = self.ended, []
        for process in ended:
            self.model.retire_process(process)

    def finish(self) -> None:
        """End of trace: processes still alive end at the last time seen; decoders flush."""
        self.retire_ended()
        self.library_tls.finish()
        self.channels.close(self.last_time)
        self.library_sql.finish()
        held_finish = getattr(self.held_calls, "finish", None)
        if held_finish is not None:
            held_finish()  # the decoders are closed: every call they held goes to the calls file

    def _build_handlers(self) -> dict[str, Handler]:
        handlers: dict[str, Handler] = {}
        for part in (
            self._process_handlers,
            self._file_handlers,
            self._fd_handlers,
            self._socket_handlers,
            self._data_handlers,
        ):
            handlers.update(part())
        for name in LibrarySqlCalls.NAMES:
            handlers[name] = self.library_sql.call
        for name in LibraryTlsCalls.NAMES:
            handlers[name] = self.library_tls.call
        return handlers
