"""A traced process or thread: identity, program, life span and fd table."""

from __future__ import annotations

from dataclasses import dataclass, field

from dockit_core.model.fds import FdTable


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
    # Who it ran as, when known (the process watch, `-u`/`-g`): real ids and their names then.
    uid: int | None = None
    gid: int | None = None
    user: str | None = None
    group: str | None = None
    watch_role: str | None = None  # the watch's "matched" process, or an "ancestor" of one

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
