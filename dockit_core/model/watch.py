"""The process watch (`dockit -u USER -g GROUP`): which processes the kernel's events are about, whether
they run as a watched user or group, and what the summary keeps of them.

Fed `ProcEvent`s (ingest/proc_events.py) and what /proc says at that moment (through a `ProcReader`, so
tests can give their own), it returns a `Notice` per event worth a line, and fills the model's
processes. A process matches when its real or effective uid is a watched user, or its real or
effective gid a watched group; a fork of a matching process matches; a process that becomes the user
(setuid: su, sudo, a setuid program) matches from then on. Threads are not processes: their events are
skipped. Memory follows the live processes that match, not the machine's activity.
"""

from __future__ import annotations

import grp
import os
import pwd
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from dockit_core.ingest.proc_events import ProcEvent
from dockit_core.model import Model, Process

ANCESTOR_DEPTH = 64  # a parent chain longer than this is cut (a loop in a crafted /proc reader)


@dataclass(frozen=True)
class Ids:
    ruid: int
    euid: int
    rgid: int
    egid: int


@dataclass(frozen=True)
class Snapshot:
    """What /proc said of a process: anything may be None (it exited, or it is not ours to read)."""

    ids: Ids | None = None
    ppid: int | None = None
    executable: str | None = None
    argv: list[str] = field(default_factory=list)
    cwd: str | None = None
    name: str | None = None  # the kernel's 15-character name of its program (still there for a zombie)


class ProcReader:
    """/proc as the watch reads it."""

    def __init__(self, root: str = "/proc") -> None:
        self.root = root

    def snapshot(self, pid: int, full: bool = True) -> Snapshot:
        base = f"{self.root}/{pid}"
        ids, ppid, name = None, None, None
        try:
            with open(f"{base}/status", encoding="utf-8", errors="replace") as stream:
                fields = dict(line.split(":", 1) for line in stream if ":" in line)
            uids, gids = fields["Uid"].split(), fields["Gid"].split()
            ids = Ids(int(uids[0]), int(uids[1]), int(gids[0]), int(gids[1]))
            ppid = int(fields["PPid"])
            name = fields.get("Name", "").strip() or None
        except (OSError, KeyError, ValueError, IndexError):
            pass
        if not full:
            return Snapshot(ids=ids, ppid=ppid, name=name)
        return Snapshot(ids=ids, ppid=ppid, executable=_readlink(f"{base}/exe"), argv=_cmdline(base),
                        cwd=_readlink(f"{base}/cwd"), name=name)  # fmt: skip


def _readlink(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def _cmdline(base: str) -> list[str]:
    try:
        with open(f"{base}/cmdline", "rb") as stream:
            raw = stream.read(256 * 1024)
    except OSError:
        return []
    return [part.decode("utf-8", "surrogateescape") for part in raw.split(b"\0") if part]


@lru_cache(maxsize=4096)
def user_name(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except (KeyError, OverflowError):
        return None


@lru_cache(maxsize=4096)
def group_name(gid: int) -> str | None:
    try:
        return grp.getgrgid(gid).gr_name
    except (KeyError, OverflowError):
        return None


@dataclass(frozen=True, kw_only=True)
class Notice:
    """One line of the watch's output."""

    time: float
    event: str  # fork, exec, exit, uid, gid, sid
    pid: int
    ppid: int | None
    ids: Ids | None
    executable: str | None
    argv: tuple[str, ...]
    exit_code: int | None = None
    signal: str | None = None
    core_dumped: bool = False
    name: str | None = None  # the program's kernel name, when its path could not be read in time


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"SIG{number}"


class ProcessWatch:
    """Applies process events to the model; says which deserve a line."""

    def __init__(
        self,
        model: Model,
        users: set[int],
        groups: set[int],
        reader: ProcReader | None = None,
        on_match: Callable[[Process], None] | None = None,
    ) -> None:
        self.model = model
        self.users = users
        self.groups = groups
        self.reader = reader or ProcReader()
        self.on_match = on_match  # called when a process first matches (`--follow` attaches to it)
        self.live: dict[int, Ids | None] = {}  # matching processes still running -> their ids
        self.events = 0
        self.matched = 0

    def matches(self, ids: Ids | None) -> bool:
        if ids is None:
            return False
        return bool({ids.ruid, ids.euid} & self.users or {ids.rgid, ids.egid} & self.groups)

    def handle(self, event: ProcEvent, time: float) -> Notice | None:
        self.events += 1
        if event.is_thread:
            return None
        handler = getattr(self, f"_{event.kind}", None)
        return handler(event, time) if handler is not None else None

    # -- events -------------------------------------------------------------------------------------
    def _fork(self, event: ProcEvent, time: float) -> Notice | None:
        parent = event.parent_tgid
        inherited = self.live.get(parent) if parent in self.live else None
        snapshot = self.reader.snapshot(event.pid, full=False)
        ids = snapshot.ids or inherited
        if not self.matches(ids):
            return None
        process = self._adopt(event.pid, ids, time, ppid=parent)
        parent_process = self.model.processes.get(parent) if parent is not None else None
        if parent_process is not None and not process.executable:  # a fork runs its parent's program
            process.executable = parent_process.executable
            process.argv = list(parent_process.argv)
            process.cwd = parent_process.cwd
        return self._notice("fork", process, time)

    def _exec(self, event: ProcEvent, time: float) -> Notice | None:
        status = self.reader.snapshot(event.pid, full=False)  # the ids first: most execs are not ours
        ids = status.ids or self.live.get(event.pid)
        if not self.matches(ids) and event.pid not in self.live:
            return None
        snapshot = self.reader.snapshot(event.pid)
        ids = snapshot.ids or ids
        process = self._adopt(event.pid, ids, time, ppid=snapshot.ppid)
        # A new program: what ran before is no longer true. A process that ended before /proc could be
        # read (the events come a little after the fact) keeps only the kernel's name for its program.
        process.executable = snapshot.executable
        process.argv = snapshot.argv
        process.cwd = snapshot.cwd or process.cwd
        return self._notice("exec", process, time, name=snapshot.name)

    def _uid(self, event: ProcEvent, time: float) -> Notice | None:
        return self._id_change(event, time, "uid")

    def _gid(self, event: ProcEvent, time: float) -> Notice | None:
        return self._id_change(event, time, "gid")

    def _id_change(self, event: ProcEvent, time: float, kind: str) -> Notice | None:
        """A process that becomes a watched user counts from then on; one that stops being one is
        still reported, as the change is news about a watched process."""
        before = self.live.get(event.pid)
        snapshot = self.reader.snapshot(event.pid, full=before is None)
        ids = snapshot.ids
        if ids is None and before is not None and event.real_id is not None and event.effective_id is not None:
            if kind == "uid":
                ids = Ids(event.real_id, event.effective_id, before.rgid, before.egid)
            else:
                ids = Ids(before.ruid, before.euid, event.real_id, event.effective_id)
        if not self.matches(ids) and event.pid not in self.live:
            return None
        process = self._adopt(event.pid, ids, time, ppid=snapshot.ppid)
        if snapshot.executable and not process.executable:
            process.executable, process.argv, process.cwd = snapshot.executable, snapshot.argv, snapshot.cwd
        return self._notice(kind, process, time)

    def _sid(self, event: ProcEvent, time: float) -> Notice | None:
        if event.pid not in self.live:
            return None
        return self._notice("sid", self.model.processes[event.pid], time)

    def _exit(self, event: ProcEvent, time: float) -> Notice | None:
        if event.pid not in self.live:
            return None
        ids = self.live.pop(event.pid)
        process = self.model.processes[event.pid]
        process.end = time
        if event.exit_code is not None:
            process.exit_code = event.exit_code
        elif event.signal_number is not None:
            process.signal = signal_name(event.signal_number)
            process.core_dumped = event.core_dumped
        return self._notice("exit", process, time, ids)

    # -- the model ----------------------------------------------------------------------------------
    def _adopt(self, pid: int, ids: Ids | None, time: float, ppid: int | None) -> Process:
        """The model's process for pid, matched now (its ancestors added for the parent chain)."""
        first = pid not in self.live
        self.live[pid] = ids
        process = self.model.process(pid)
        if first and process.watch_role != "matched":
            if process.start is None:
                process.start = time
            process.watch_role = "matched"
            self.matched += 1
        if ppid is not None and process.ppid is None:
            process.ppid = ppid
        if ids is not None:
            process.uid, process.gid = ids.ruid, ids.rgid
            process.user, process.group = user_name(ids.ruid), group_name(ids.rgid)
        if first:
            self._add_ancestors(process)
            if self.on_match is not None:
                self.on_match(process)
        return process

    def _add_ancestors(self, process: Process) -> None:
        """The parent chain of a matched process, as far as /proc still shows it."""
        child = process
        for _ in range(ANCESTOR_DEPTH):
            ppid = child.ppid
            if ppid is None or ppid <= 0 or ppid in self.model.processes:
                return
            snapshot = self.reader.snapshot(ppid)
            ancestor = self.model.process(ppid)
            ancestor.watch_role = "ancestor"
            ancestor.seen_from_start = False
            ancestor.ppid = snapshot.ppid if snapshot.ppid else None
            ancestor.executable, ancestor.argv, ancestor.cwd = snapshot.executable, snapshot.argv, snapshot.cwd
            if snapshot.ids is not None:
                ancestor.uid, ancestor.gid = snapshot.ids.ruid, snapshot.ids.rgid
                ancestor.user, ancestor.group = user_name(snapshot.ids.ruid), group_name(snapshot.ids.rgid)
            child = ancestor

    def _notice(
        self, event: str, process: Process, time: float, ids: Ids | None = None, name: str | None = None
    ) -> Notice:
        return Notice(
            time=time,
            event=event,
            pid=process.pid,
            ppid=process.ppid,
            ids=ids or self.live.get(process.pid) or _ids_of(process),
            executable=process.executable,
            argv=tuple(process.argv),
            exit_code=process.exit_code if event == "exit" else None,
            signal=process.signal if event == "exit" else None,
            core_dumped=process.core_dumped if event == "exit" else False,
            name=name if not process.executable else None,
        )


def _ids_of(process: Process) -> Ids | None:
    if process.uid is None or process.gid is None:
        return None
    return Ids(process.uid, process.uid, process.gid, process.gid)
