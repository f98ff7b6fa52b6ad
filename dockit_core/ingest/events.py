"""What a trace line means, once parsed: a call, a signal, an exit, an attach.

Both parsers (strace, ltrace) produce these and nothing else, so the tracker never knows which tracer
wrote the log. Calls keep their arguments as raw text: most calls (mmap, brk, fstat...) are never looked
at again, and splitting their arguments would cost more than everything else in a replay.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Call:
    """A system call or a library call, joined when strace split it into unfinished/resumed."""

    index: int  # line number of the call's last line, 1-based, so errors can point into the log
    pid: int
    time: float | None
    name: str
    args: str  # raw argument text between the outer parentheses
    result: str | None  # raw text after "= ", None while unfinished or for "<no return ...>"
    retval: int | None  # numeric return value, None for "?" or unknown
    errno: str | None = None  # "ENOENT" for a failed call
    duration: float | None = None
    ret_decoration: str | None = None  # "/etc/passwd" for `= 3</etc/passwd>`
    partial: bool = False  # resumed without its start (attached mid-call): leading arguments missing
    library: str | None = None  # ltrace: the library or program making a library call
    is_syscall: bool = True
    raw: str = ""  # the log line as read (the last line for a resumed call)

    @property
    def ok(self) -> bool:
        return self.retval is not None and self.retval >= 0 and self.errno is None


@dataclass(slots=True)
class Signal:
    """`--- SIGCHLD {si_signo=...} ---`: delivered to pid."""

    index: int
    pid: int
    time: float | None
    name: str
    details: str


@dataclass(slots=True)
class Exit:
    """`+++ exited with 1 +++` or `+++ killed by SIGKILL (core dumped) +++`."""

    index: int
    pid: int
    time: float | None
    code: int | None
    signal: str | None
    core_dumped: bool = False


@dataclass(slots=True)
class Attach:
    """`strace: Process 123 attached` (or detached): the trace of pid starts or stops here."""

    index: int
    pid: int
    attached: bool


Event = Call | Signal | Exit | Attach
