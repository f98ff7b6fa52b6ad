"""A traced process or thread: identity, program, life span and fd table.

A pid names one process at a time: when it exits, the kernel may give the same pid to another one, and
a trace that runs long enough shows it (pid 200 running prog0, then prog1). Each is a `Process` of its
own, told apart by its `key`: the pid itself for the first process with that pid in the trace (so
nothing changes for a trace without reuse), a `ProcessKey` for the second and later ones. The key is
what files, sockets, pipes and records name as their process; it is an int (it sorts and hashes as
one) that is written `PID.N` (`200.2`: the second process with pid 200).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dockit_core.model.fds import FdTable

_INSTANCE_UNIT = 1 << 40  # above any pid (a pid has 10 digits at most, see ingest's _PID_DIGITS)


class ProcessKey(int):
    """The key of the Nth (N >= 2) process with a pid: `PID.N` when written."""

    __slots__ = ()

    @staticmethod
    def make(pid: int, instance: int) -> int:
        return pid if instance <= 1 else ProcessKey(pid + instance * _INSTANCE_UNIT)

    @property
    def pid(self) -> int:
        return int(self) % _INSTANCE_UNIT

    @property
    def instance(self) -> int:
        return int(self) // _INSTANCE_UNIT

    def __str__(self) -> str:
        return f"{self.pid}.{self.instance}"

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __reduce__(self) -> tuple[type, tuple[int]]:
        return ProcessKey, (int(self),)


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
    key: int = -1  # what other objects name it by (see ProcessKey); the pid unless the pid was reused
    instance: int = 1  # the Nth process with this pid in the trace
    seq: int = 0  # creation order: the summary lists processes so, wherever each one was kept
    exited: bool = False  # its `+++ exited` (or killed) line came: a later line of its pid is another process
    leader_key: int | None = None  # a thread's: its group leader's key
    ended_threads_calls: int = 0  # the calls of its threads that ended and left the model
    # Who it ran as, when known (the process watch, `-u`/`-g`): real ids and their names then.
    uid: int | None = None
    gid: int | None = None
    user: str | None = None
    group: str | None = None
    watch_role: str | None = None  # the watch's "matched" process, or an "ancestor" of one

    def __post_init__(self) -> None:
        if self.key == -1:
            self.key = self.pid

    @property
    def is_thread(self) -> bool:
        return self.tgid is not None and self.tgid != self.pid

    @property
    def owner(self) -> int:
        """The process that files, sockets and pipes are attributed to: a thread's group leader, so
        that every `Process=` in the summary names a CIM_Process."""
        if self.tgid is None:
            return self.key
        return self.leader_key if self.leader_key is not None else self.tgid

    @property
    def command_line(self) -> str:
        return " ".join(self.argv)
