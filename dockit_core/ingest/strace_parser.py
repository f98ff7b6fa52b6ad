"""strace log lines into events, whatever strace version and flags wrote them.

Handles: a pid column (`-f -o`) or a `[pid N]` prefix or none; `-t`, `-tt`, `-ttt`, `-r` or no time;
`-T` durations; `-y`/`-yy` decorations on returned fds; `<unfinished ...>` joined to its
`<... name resumed>` (strace 6 writes no space before the arguments, 4.x does); resumed calls whose start
was never seen (a trace attached mid-run); signals; exits; `strace: Process N attached`. A line that
fits none of these is counted, never fatal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dockit_core.ingest.accelerator import split_call as _split_call
from dockit_core.ingest.events import Attach, Call, Event, Exit, Signal
from dockit_core.ingest.syscall_names import syscall_name

_HEAD = re.compile(
    r"\s*(?:\[pid\s+(\d+)\]\s*|(\d+)\s+(?=\D|\d+[:.]))?"  # [pid N] prefix, or pid column
    r"(?:(\d\d?):(\d\d):(\d\d)(\.\d+)?\s+|(\d+\.\d+)\s+)?"  # -t/-tt wall clock, or -ttt / -r seconds
)
_CALL_NAME = re.compile(r"([A-Za-z_][\w@.+-]*(?:->[\w@.+-]+)?)\(")
_RESUMED = re.compile(r"<\.\.\. ([\w@.+>-]+) resumed>\s?")
_EXITED = re.compile(
    r"\+\+\+ (?:exited with (-?\d+)|exited \(status (-?\d+)\)|killed by (\w+)( \(core dumped\))?)"
)
_ATTACH = re.compile(r"(?:strace: )?Process (\d+) (attached|detached)")
_SIGNAL = re.compile(r"--- (\w+) ?(.*?) ?---")
_DURATION = re.compile(r"\s+<(\d+\.\d+)>$")
_UNFINISHED = " <unfinished ...>"
# A thread's execve: strace 6 ends its line so, and the call resumes under the thread group leader's pid.
_PID_CHANGED = re.compile(r" <pid changed to (\d+) \.\.\.>$")
_CLOSE_RESULT = re.compile(r"\) +=  ?")
_CLOSE_EQ = re.compile(r"\)\s* = ")
_CLONES = frozenset({"clone", "clone3", "fork", "vfork"})
# A time or a duration beyond this (the year 5962) is a corrupt log's: a time plus a duration must stay a
# date the outputs can write (the last is 9999-12-31). Such a line keeps its call, without that number.
_LAST_SECOND = 126_000_000_000.0


def to_seconds(text: str) -> float | None:
    """A time or duration as strace wrote it; None when no date could hold it."""
    value = float(text)
    return value if value <= _LAST_SECOND else None


def _plain(name: str) -> str:
    """`libc.so.6->recv`, `recv@SYS`, `SYS_recv` -> `recv`: how ltrace names the call when it resumes."""
    name = name.rpartition("->")[2]
    if name.endswith("@SYS"):
        return name[:-4]
    return name[4:] if name.startswith("SYS_") else name


@dataclass(slots=True)
class PidAlias:
    """The process known so far as `placeholder` is really `pid`: every fact about it moves there."""

    index: int
    placeholder: int
    pid: int


# The line most logs are made of, in one match: pid, time, name, args, result, fd decoration, errno,
# duration. Anything else (resumed, unfinished, signals, exits, odd results) takes the general path.
_COMPLETE_CALL = re.compile(
    r"(?:(\d+) +|\[pid +(\d+)\] )?"
    r"(?:(\d\d?):(\d\d):(\d\d(?:\.\d+)?) |(\d+\.\d+) +)?"
    r"([A-Za-z_][\w@]*)\((.*)\) += ((-?\d+|0x[0-9a-f]+|\?)"
    r"(?:<([^<>]*(?:<[^<>]*>)?)>(?:\(deleted\))?)?"
    r"(?: (E[A-Z0-9]+) \([^()]*\)| \([^<]*\))?)"
    r"(?: <(\d+\.\d+)>)?$",
)


# A pid has at most 10 digits (pid_max is 2^22); a longer number in the pid column is a damaged line's.
_PID_DIGITS = 10


def to_int(text: str) -> int | None:
    """A return value: decimal, 0x hex, or ltrace's zero-padded decimal; None if not a number, or not
    one a register holds (a damaged log's hundreds of digits)."""
    try:
        value = int(text, 0)
    except ValueError:
        try:
            value = int(text, 10)
        except ValueError:
            return None
    return value if _LOWEST <= value < _HIGHEST else None


_LOWEST, _HIGHEST = -(2**63), 2**64


def parse_result(text: str) -> tuple[int | None, str | None, str | None, float | None]:
    """`-1 ENOENT (No such file) <0.000010>` -> (retval, errno, fd decoration, duration)."""
    duration = None
    match = _DURATION.search(text)
    if match:
        duration = to_seconds(match.group(1))
        text = text[: match.start()]
    decoration = None
    lt = text.find("<")
    head = text
    if lt > 0 and (lt < text.find(" ") or " " not in text):
        end = text.rfind(">")
        decoration = text[lt + 1 : end] if end > lt else text[lt + 1 :]
        head = text[:lt]
    token, _, rest = head.partition(" ")
    retval = to_int(token)
    errno = None
    if retval is not None and retval < 0 and rest[:1] == "E":
        errno = rest.split(" ", 1)[0]
    return retval, errno, decoration, duration


def split_call_tail(rest: str) -> tuple[str, str | None]:
    """Split `args) = result` into (args, result); result None when the line has no result."""
    position = len(rest)
    for _ in range(8):
        eq = rest.rfind(" = ", 0, position)
        if eq < 0:
            break
        close = rest.rfind(")", 0, eq)
        if close >= 0 and rest[close + 1 : eq].strip() == "":
            return rest[:close], rest[eq + 3 :]
        position = eq
    else:
        # Many ` = ` not after a `)` (a damaged or odd line): one pass from the left, not one search
        # back per ` = `, which took minutes on a line of a million.
        matches = _CLOSE_EQ.findall(rest, 0, position)
        if matches:
            start = rest.rfind(matches[-1], 0, position)
            return rest[:start], rest[start + len(matches[-1]) :]
    # No result: `exit(0) = ?` cut, or a line the tracer never finished.
    if rest.endswith(")"):
        return rest[:-1], None
    return rest, None


@dataclass
class ParseStats:
    """What could not be understood: counted, and the first few kept for the report."""

    lines: int = 0
    unparsed: int = 0
    samples: list[tuple[int, str]] = field(default_factory=list)
    orphan_resumes: int = 0

    def bad(self, index: int, line: str) -> None:
        self.unparsed += 1
        if len(self.samples) < 1000:
            self.samples.append((index, line[:200]))


class StraceParser:
    """Stateful: joins unfinished calls to their resumption, per pid."""

    def __init__(self, default_pid: int = 0) -> None:
        self.default_pid = default_pid
        self.pending: dict[int, tuple[str, float | None, str, str]] = {}
        self.stats = ParseStats()
        self._time_offset = 0.0  # -r: relative times are summed
        self._relative: bool | None = None
        # Logs whose lines are not all prefixed with a pid (strace 4.x -f writing to stderr):
        self._mixed = False
        self._known: set[int] = set()  # pids seen in a prefix or returned by a clone
        self._placeholder: int | None = None  # the unprefixed first process's pid, until confirmed
        self._alias: PidAlias | None = None
        # A call line the traced program's own output cut (strace writing to the terminal or file the
        # program also writes to): `write(2, "abc"..., 4abc` ... then `) = 4` on a later line.
        self._dangling: tuple[int, int, float | None, str, str, str] | None = None
        self._fragment: str | None = None  # the start of a line cut by strace's own message
        # ltrace: library calls whose pending start a nested call's start hid (mysql_real_query ->
        # send): each is pending again once the nested call resumes.
        self._outer: dict[int, list[tuple[str, float | None, str, str]]] = {}

    def parse(self, line: str, index: int) -> Event | tuple[PidAlias, Event] | PidAlias | None:
        """One line in, at most one event out (an unfinished call waits for its resumption); the line
        that reveals the real pid of the unprefixed first process also yields a `PidAlias` first."""
        if self._fragment is None and self._dangling is None and not self._mixed:
            # The usual state, and most often the usual line: `_parse`'s first steps, inlined.
            self.stats.lines += 1
            line = line.rstrip("\r\n")
            if _split_call is not None:
                # The same line in C, or None when it is not sure: then the regex reads it.
                call = _split_call(line, index, -1, True, self._relative is False)
                if call is not None:
                    return call
            fast = _COMPLETE_CALL.match(line)
            if fast is None:
                event = self._parse_other(line, index)
            else:
                event = self._fast_call(fast, index, line)
                if not self._mixed:
                    return event
        else:
            event = self._parse(line, index)
        if self._dangling is not None and event is not None and self._dangling[0] != index:
            event = (self._stale_dangling(), event)  # it never got its `) = N`
        if not self._mixed:
            return event
        if type(event) is Call and event.name in _CLONES and event.retval and event.retval > 0:
            self._known.add(event.retval)
        if self._alias is None:
            return event
        alias, self._alias = self._alias, None
        return (alias, event) if event is not None else alias

    def skip(self, note: str, index: int) -> None:
        """A line that was not read (longer than the limit): counted unparsed, `note` says why."""
        self.stats.lines += 1
        self.stats.bad(index, note)

    def _stale_dangling(self) -> Call:
        index, pid, time, name, args, line = self._dangling  # type: ignore[misc]
        self._dangling = None
        return self._make_call(index, pid, time, name, args, None, line, partial=False)

    def _unprefixed(self) -> int:
        """The pid of a line without one: strace 4.x, writing to stderr, left out `[pid N]` while it
        traced a single process. The first such process gets the default pid (the .ini's, often a
        placeholder such as 12345) until a prefixed line shows its real pid."""
        if not self._mixed:
            self._mixed = True
            if self.default_pid not in self._known:
                self._placeholder = self.default_pid
        return self.default_pid

    def _prefixed(self, pid: int, index: int, line: str = "") -> None:
        """A pid from a prefix, in a log that also has unprefixed lines: is it the first process's?"""
        if pid in self._known:
            return
        self._known.add(pid)
        placeholder = self._placeholder
        if placeholder is None:
            return
        self._placeholder = None
        if pid == placeholder:
            return  # the default pid was the real one
        start = self.pending.get(placeholder)
        resumes = start is not None and f"<... {_plain(start[0])} resumed>" in line
        if not resumes and any(entry[0] in _CLONES for other, entry in self.pending.items() if other != pid):
            self._placeholder = placeholder  # most likely the child of a clone still running
            return
        # A pid never created in the trace, while the unprefixed process has no real pid yet: it is
        # that process (strace 4 printed [pid N] for it as soon as a second process existed).
        self._alias = PidAlias(index, placeholder, pid)
        self.default_pid = pid
        if placeholder in self.pending and pid not in self.pending:
            self.pending[pid] = self.pending.pop(placeholder)

    def _parse(self, line: str, index: int) -> Event | None:
        self.stats.lines += 1
        line = line.rstrip("\r\n")
        if self._fragment is not None:
            line, self._fragment = self._fragment + line, None
        if _split_call is not None:
            # A log that mixes prefixed and unprefixed lines: C takes the unprefixed ones (their pid is
            # the default), the prefixed ones may reveal a pid (`_prefixed`) and stay in Python.
            mixed = self._mixed
            call = _split_call(
                line, index, self.default_pid if mixed else -1, not mixed, self._relative is False
            )
            if call is not None:
                return call
        fast = _COMPLETE_CALL.match(line)
        if fast is not None:
            return self._fast_call(fast, index, line)
        return self._parse_other(line, index)

    def _parse_other(self, line: str, index: int) -> Event | None:
        """A line the common pattern did not match (`_parse` took the line's end off)."""
        cut = line.find("strace: Process ", 1)
        if cut > 0 and _ATTACH.match(line, cut):
            # strace writing to stderr put its own message inside a call line, which goes on in the
            # next line: `clone(child_stack=NULL, ...SIGCHLDstrace: Process 1381 attached`.
            self._fragment = line[:cut]
            return None
        head = _HEAD.match(line)
        pid_text = head.group(1) or head.group(2)
        if pid_text:
            if len(pid_text) > _PID_DIGITS:
                self.stats.bad(index, line)
                return None
            pid = int(pid_text)
            if self._mixed:
                self._prefixed(pid, index, line)
        else:
            pid = self._unprefixed()
        time = self._time(head)
        body = line[head.end() :]
        if not body:
            if line.strip():
                self.stats.bad(index, line)
            return None
        first = body[0]
        if first == ")" and self._dangling is not None:
            close = _CLOSE_RESULT.match(body)  # `) = 46`, or ltrace's `)           = 35`
            if close is not None:
                start_index, start_pid, start_time, name, args, start_line = self._dangling
                self._dangling = None
                return self._make_call(
                    index,
                    start_pid,
                    start_time,
                    name,
                    args,
                    body[close.end() :],
                    start_line,
                    partial=False,
                    end_time=time,
                )
        if first == "<":
            return self._resumed(body, pid, time, index, line)
        if first == "-" and body.startswith("--- "):
            if body.startswith("--- Called exec() ---"):
                # ltrace: a successful execve never returns; this line ends it.
                start = self.pending.get(pid)
                if start is not None and _plain(start[0]) in ("execve", "execveat"):
                    del self.pending[pid]
                    return self._make_call(
                        index, pid, start[1], start[0], start[2], "0", line, partial=False, end_time=time
                    )
                return None
            match = _SIGNAL.match(body)
            if match:
                return Signal(index, pid, time, match.group(1), match.group(2))
        elif first == "+" and body.startswith("+++ "):
            if body.startswith("+++ superseded by execve"):
                return None  # the leader gives way to the thread that ran execve (see _PID_CHANGED)
            match = _EXITED.match(body)
            if match:
                code = match.group(1) or match.group(2)
                return Exit(
                    index,
                    pid,
                    time,
                    to_int(code) if code is not None else None,
                    match.group(3),
                    bool(match.group(4)),
                )
        elif body.startswith(("strace: Process", "Process ")):
            match = _ATTACH.match(body)
            if match and len(match.group(1)) <= _PID_DIGITS:
                return Attach(index, int(match.group(1)), match.group(2) == "attached")
        else:
            match = _CALL_NAME.match(body)
            if match:
                return self._call(match.group(1), body[match.end() :], pid, time, index, line)
        if body.startswith(("strace: ", "[ Process", "ltrace: ")):
            return None  # tracer chatter, not the program's
        self.stats.bad(index, line)
        return None

    def _fast_call(self, match: re.Match[str], index: int, line: str) -> Call | None:
        """The common line, read by one regex: `[pid] [time] name(args) = result [<duration>]`."""
        (
            pid_column,
            pid_prefix,
            hours,
            minutes,
            seconds,
            stamp,
            name,
            args,
            result,
            retval_text,
            decoration,
            errno,
            duration_text,
        ) = match.groups()
        pid_text = pid_column or pid_prefix
        if pid_text:
            if len(pid_text) > _PID_DIGITS:
                self.stats.bad(index, line)
                return None
            pid = int(pid_text)
            if self._mixed:
                self._prefixed(pid, index)
        else:
            pid = self._unprefixed()
        if hours is not None:
            time: float | None = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        elif stamp is not None:
            time = to_seconds(stamp) if self._relative is False else self._stamp(stamp)
        else:
            time = None
        if name.endswith("@SYS"):
            name = name[:-4]
        elif name.startswith("SYS_"):
            name = name[4:]
            if name[:1].isdigit():
                name = syscall_name(name)  # ltrace 0.7.3: `SYS_334(...)`, a call newer than its table
        if retval_text == "?":
            retval = None
        else:
            try:
                retval = int(retval_text, 0)
                if not _LOWEST <= retval < _HIGHEST:
                    retval = None
            except ValueError:
                retval = to_int(retval_text)
        return Call(
            index,
            pid,
            time,
            name,
            args,
            result,
            retval,
            errno if retval is not None and retval < 0 else None,
            to_seconds(duration_text) if duration_text else None,
            decoration if retval is not None else None,
            False,
            None,
            True,
            line,
        )

    def _stamp(self, stamp: str) -> float | None:
        value = to_seconds(stamp)
        if value is None:
            return None
        if self._relative is None:
            self._relative = value < 100_000_000  # -r deltas are small; -ttt is an epoch
        if self._relative:
            if self._time_offset + value > _LAST_SECOND:
                return None
            self._time_offset += value
            return self._time_offset
        return value

    def _time(self, head: re.Match[str]) -> float | None:
        hours = head.group(3)
        if hours is not None:
            return int(hours) * 3600 + int(head.group(4)) * 60 + float(head.group(5) + (head.group(6) or ""))
        stamp = head.group(7)
        if stamp is None:
            return None
        return self._stamp(stamp)

    def _call(self, name: str, rest: str, pid: int, time: float | None, index: int, line: str) -> Call | None:
        if rest.endswith(" <no return ...>"):
            return self._make_call(
                index, pid, time, name, rest[: -len(" <no return ...>")], None, line, partial=False
            )
        if (
            rest.endswith(" ...>")
            and (changed := _PID_CHANGED.search(rest)) is not None
            and len(changed.group(1)) <= _PID_DIGITS
        ):
            # `[pid 7] execve(...) <pid changed to 5 ...>`: the leader 5 is superseded, and the call
            # resumes as `5 <... execve resumed>) = 0`.
            self.pending[int(changed.group(1))] = (name, time, rest[: changed.start()], line)
            return None
        if rest.endswith(_UNFINISHED) or rest.endswith(" <detached ...>"):
            # ltrace: `vfork@SYS(... <unfinished ...>` resumes as `<... vfork resumed>`; the tracker
            # looks for a pending clone by its plain name.
            if name.endswith("@SYS"):
                name = name[:-4]
            elif name.startswith("SYS_"):
                name = name[4:]
            outer = self.pending.get(pid)
            if outer is not None and "->" in outer[0]:
                self._outer.setdefault(pid, []).append(outer)
            self.pending[pid] = (name, time, rest[: rest.rfind(" <")], line)
            return None
        args, result = split_call_tail(rest)
        if result is None:  # its `) = N` may follow the output that cut it; flushed by the next event
            if self._dangling is not None:
                return self._stale_dangling()  # rare: keep the newest one waiting
            self._dangling = (index, pid, time, name, args, line)
            return None
        return self._make_call(index, pid, time, name, args, result, line, partial=False)

    def _resumed(self, body: str, pid: int, time: float | None, index: int, line: str) -> Call | None:
        match = _RESUMED.match(body)
        if match is None:
            self.stats.bad(index, line)
            return None
        name = match.group(1)
        rest = body[match.end() :]
        start = self.pending.pop(pid, None)
        args_tail, result = split_call_tail(rest)
        if rest.endswith(_UNFINISHED):
            # Resumed then interrupted again (rare): keep waiting.
            self.pending[pid] = (
                name,
                start[1] if start else time,
                (start[2] if start else "") + rest[: -len(_UNFINISHED)],
                line,
            )
            return None
        if start is not None and (start[0] == name or _plain(start[0]) == _plain(name)):
            args = f"{start[2]} {args_tail}" if start[2] and args_tail else start[2] + args_tail
            outer = self._outer.get(pid)
            if outer:
                self.pending[pid] = outer.pop()
            return self._make_call(
                index, pid, start[1], start[0], args, result, line, partial=False, end_time=time
            )
        if start is not None:
            self.pending[pid] = start  # another call's resumption: leave the pending one
        self.stats.orphan_resumes += 1
        return self._make_call(index, pid, time, name, args_tail, result, line, partial=True)

    def _make_call(
        self,
        index: int,
        pid: int,
        time: float | None,
        name: str,
        args: str,
        result: str | None,
        line: str,
        *,
        partial: bool,
        end_time: float | None = None,
    ) -> Call:
        library = None
        is_syscall = True
        if "->" in name:
            library, _, name = name.partition("->")
            is_syscall = False
        if name.endswith("@SYS"):
            name = name[:-4]
            is_syscall = True
        elif name.startswith("SYS_"):
            name = name[4:]
        if name[:1].isdigit():
            name = syscall_name(name)  # ltrace 0.7.3: `SYS_334(...)`, a call newer than its table
        if result is None:
            return Call(
                index,
                pid,
                time,
                name,
                args,
                None,
                None,
                partial=partial,
                library=library,
                is_syscall=is_syscall,
                raw=line,
            )
        retval, errno, decoration, duration = parse_result(result)
        if duration is not None:
            result = result[: result.rfind(" <")]
        return Call(
            index,
            pid,
            time,
            name,
            args,
            result,
            retval,
            errno,
            duration,
            decoration,
            partial,
            library,
            is_syscall,
            line,
        )

    def unfinished(self) -> list[tuple[int, str]]:
        """Calls still waiting for their resumption at the end of the log (pid, name)."""
        return [(pid, entry[0]) for pid, entry in self.pending.items()]
