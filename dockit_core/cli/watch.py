"""`dockit -u USER -g GROUP`: watch the machine for processes of a user or group, with the kernel's
process connector (no ptrace), print a line per event as it happens, and write the summary of every
process seen when Ctrl-C or `--duration` ends the watch. `--follow` traces each new matching process as
`-p` would, so its files, sockets and queries join the same summary; `--watch-dir` reports what appears
in a folder. The only module of the watch that starts processes and opens files.
"""

from __future__ import annotations

import argparse
import grp
import os
import pwd
import select
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dockit_core.cli.arguments import UsageError, make_registry
from dockit_core.cli.options import Options, OutputPaths
from dockit_core.cli.serving import end_serving, serve_if_asked
from dockit_core.ingest import tracers

if TYPE_CHECKING:
    from dockit_core.cli.session import TraceSession
    from dockit_core.ingest.inotify import DirectoryWatch
    from dockit_core.ingest.proc_events import ProcConnector
    from dockit_core.model import Process


def resolve_ids(values: list[str], lookup_name, lookup_id, what: str) -> set[int]:  # type: ignore[no-untyped-def]
    """User or group names or numeric ids; an unknown name is a usage error, an unknown id is taken as
    it is (a user may be created after the watch starts)."""
    ids: set[int] = set()
    for value in values:
        for item in (v.strip() for v in value.split(",")):
            if not item:
                continue
            if item.isascii() and item.isdigit():
                ids.add(int(item))
                continue
            try:
                ids.add(lookup_name(item))
            except KeyError:
                raise UsageError(f"no {what} named {item!r}") from None
    return ids


def watch_requested(args: argparse.Namespace) -> bool:
    return bool(args.user or args.group or args.watch_dir)


@dataclass
class Followed:
    """A tracer attached to one matching process, and its FIFO read line by line without blocking."""

    pid: int
    run: tracers.TracerRun
    partial: bytes = b""
    opened: bool = False
    done: bool = False
    lines: list[str] = field(default_factory=list)

    def read(self) -> list[str]:
        try:
            data = os.read(self.run.fd, 1 << 20)
        except BlockingIOError:
            return []
        except OSError:
            data = b""
        if not data:
            if self.opened or self.run.process.poll() is not None:
                self.done = True  # the tracer closed the FIFO: its process ended or it detached
                if self.partial:
                    rest, self.partial = self.partial, b""
                    return [rest.decode("utf-8", "surrogateescape") + "\n"]
            return []
        self.opened = True
        data = self.partial + data
        cut = data.rfind(b"\n") + 1
        self.partial = data[cut:]
        return data[:cut].decode("utf-8", "surrogateescape").splitlines(keepends=True)

    def close(self) -> None:
        if not self.run._fd_taken:
            self.run._fd_taken = True
            os.close(self.run.fd)
        self.run.wait()


class Watcher:
    """One watch: the connector, the folders, the followed tracers, the session they all feed."""

    def __init__(
        self,
        args: argparse.Namespace,
        options: Options,
        session: TraceSession,
        connector: ProcConnector,
        users: set[int],
        groups: set[int],
    ) -> None:
        from dockit_core.model.watch import ProcessWatch

        self.args = args
        self.options = options
        self.session = session
        self.users = users
        self.groups = groups
        self.connector = connector
        self.followed: dict[int, Followed] = {}
        self.refused_follow: set[int] = set()
        self.log = None
        self.dirs: DirectoryWatch | None = None
        self.dir_events: list[tuple[float, str, str]] = []
        self.watch = ProcessWatch(session.model, self.users, self.groups, on_match=self._matched)
        # The connector stamps events with the monotonic clock; the summary speaks epoch seconds.
        self.clock_offset = time.time() - time.monotonic()
        self.stop_requested = False

    def open_dirs(self) -> None:
        from dockit_core.ingest.inotify import DirectoryWatch

        if not self.args.watch_dir:
            return
        self.dirs = DirectoryWatch()
        for folder in self.args.watch_dir:
            try:
                self.dirs.add(os.path.abspath(folder))
            except OSError as error:
                raise UsageError(f"--watch-dir {error.strerror or error}") from error

    # -- following ---------------------------------------------------------------------------------
    def _matched(self, process: Process) -> None:
        if not self.args.follow or process.pid in self.followed or process.pid in self.refused_follow:
            return
        if self._traced_by_us(process.pid):
            return  # a child of a followed process: its tracer (-f) has it already
        active = sum(1 for f in self.followed.values() if not f.done)
        if active >= self.args.follow_max:
            self.refused_follow.add(process.pid)
            sys.stderr.write(
                f"dockit: --follow-max {self.args.follow_max} reached: process {process.pid} is listed, not traced\n"
            )
            return
        try:
            run = tracers.start(self.args.tracer, pid=process.pid)
        except (OSError, tracers.TracerError) as error:
            sys.stderr.write(f"dockit: cannot follow process {process.pid}: {error}\n")
            return
        self.followed[process.pid] = Followed(process.pid, run)
        threads = tracers.threads_of(process.pid)
        self.session.tracker.attached(
            process.pid, threads, executable=process.executable, argv=process.argv, cwd=process.cwd
        )
        if self.options.verbose:
            sys.stderr.write(f"dockit: following process {process.pid}: {' '.join(run.command)}\n")

    def _traced_by_us(self, pid: int) -> bool:
        tracer = tracers._tracer_of(pid)
        return tracer != 0 and any(f.run.process.pid == tracer for f in self.followed.values())

    # -- the loop ----------------------------------------------------------------------------------
    def run(self, deadline: float | None) -> None:
        from dockit_core.outputs.watch_lines import notice_json, notice_text

        write = notice_json if self.args.json else notice_text
        while not self.stop_requested:
            if deadline is not None and time.monotonic() >= deadline:
                break
            sources = [self.connector.fileno()]
            if self.dirs is not None:
                sources.append(self.dirs.fileno())
            sources += [f.run.fd for f in self.followed.values() if not f.done]
            timeout = 0.2 if deadline is None else max(0.0, min(0.2, deadline - time.monotonic()))
            try:
                ready, _, _ = select.select(sources, [], [], timeout)
            except InterruptedError:
                continue
            if self.connector.fileno() in ready:
                for event in self.connector.read():
                    notice = self.watch.handle(event, self.clock_offset + event.timestamp_ns / 1e9)
                    if notice is not None:
                        sys.stdout.write(write(notice) + "\n")
                        sys.stdout.flush()
            if self.dirs is not None and self.dirs.fileno() in ready:
                self._dir_events(write is notice_json)
            self._pump_tracers()

    def _dir_events(self, as_json: bool) -> None:
        import json

        assert self.dirs is not None
        for path, event in self.dirs.read():
            now = time.time()
            if len(self.dir_events) < 100_000:  # the summary lists that many; the lines show them all
                self.dir_events.append((now, event.kind, path))
            if as_json:
                line = json.dumps({"time": now, "event": f"file-{event.kind}", "path": path}, ensure_ascii=False)
            else:
                line = f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(now))} file-{event.kind} path={path!r}"
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def _pump_tracers(self) -> None:
        for followed in list(self.followed.values()):
            if followed.done:
                continue
            for line in followed.read():
                self._feed(line)
            if followed.done:
                followed.close()

    def _feed(self, line: str) -> None:
        from dockit_core.ingest.events import Call

        event = self.session.feed(line)
        if self.log is not None:
            if len(line) > 256 and isinstance(event, Call):
                info = self.session.tracker.last_info
                line = tracers.trim_for_log(line, info.file_io, info.keep_elements)
            self.log.stream.write(line)

    def stop(self) -> None:
        """Detach every tracer (the processes go on), read what they still wrote, stop listening."""
        for followed in self.followed.values():
            if not followed.done and followed.run.process.poll() is None:
                followed.run.process.send_signal(signal.SIGINT)
        end = time.monotonic() + 10
        while any(not f.done for f in self.followed.values()) and time.monotonic() < end:
            fds = [f.run.fd for f in self.followed.values() if not f.done]
            select.select(fds, [], [], 0.2)
            self._pump_tracers()
        for followed in self.followed.values():
            if not followed.done:
                followed.run.process.kill()
                followed.done = True
                followed.close()
        if self.dirs is not None:
            self.dirs.close()


def watch(args: argparse.Namespace, options: Options) -> int:
    """Watch until Ctrl-C, SIGTERM or --duration, then write the summary."""
    from dockit_core.ingest.proc_events import ConnectorUnavailable, ProcConnector

    users = resolve_ids(args.user, lambda n: pwd.getpwnam(n).pw_uid, pwd.getpwuid, "user")
    groups = resolve_ids(args.group, lambda n: grp.getgrnam(n).gr_gid, grp.getgrgid, "group")
    if args.follow:
        tracers.require_tracer(args.tracer)
    # Listening first: whether the kernel lets dockit is the first thing to know, before any output.
    try:
        connector = ProcConnector()
    except ConnectorUnavailable as error:
        raise tracers.TracerError(str(error), 2) from error
    try:
        return _watch(args, options, connector, users, groups)
    finally:
        connector.close()


def _watch(
    args: argparse.Namespace, options: Options, connector: ProcConnector, users: set[int], groups: set[int]
) -> int:
    from dockit_core.cli.session import TraceSession, print_report
    from dockit_core.outputs.atomic import AtomicStream
    from dockit_core.outputs.summary.objects import RunContext

    command = ["dockit", *sys.argv[1:]]
    context = RunContext.local(args.tracer if args.follow else "watch", command)
    prefix = f"{args.log or 'dockit'}.watch.{os.getpid()}"
    options.write_calls = bool(args.follow)
    paths = OutputPaths(prefix, options.calls_format, options.summary_format)
    registry = make_registry(options) if args.follow else None
    session = TraceSession(options, context, paths, registry=registry)
    watcher = Watcher(args, options, session, connector, users, groups)
    try:
        watcher.open_dirs()
    except BaseException:
        session.abort()
        raise
    if args.follow:
        watcher.log = AtomicStream(paths.log, "w", encoding="utf-8", errors="surrogateescape", newline="")
    deadline = time.monotonic() + args.duration if args.duration else None
    serving = serve_if_asked(args, session, command, "watch", tick_when_idle=True)

    def stop(signum: int) -> None:
        watcher.stop_requested = True

    sys.stderr.write(
        f"dockit: watching processes of {describe(watcher.users, watcher.groups, args.watch_dir)}; "
        "Ctrl-C ends the watch\n"
    )
    try:
        with tracers.SignalGuard(stop):
            watcher.run(deadline)
            watcher.stop()
    except BaseException:
        if watcher.log is not None:
            watcher.log.discard()
        session.abort()
        raise
    for moment, kind, path in watcher.dir_events:
        session.spool.add(directory_event_object(moment, kind, path, session))
    report = session.finish()
    if watcher.log is not None:
        watcher.log.commit()
        report.outputs.insert(0, paths.log)
    if watcher.connector.lost:
        report.problems.append(
            f"the kernel dropped {watcher.connector.lost} batches of process events (dockit read too slowly)"
        )
    sys.stderr.write(
        f"dockit: watch: {watcher.watch.events} process events, {watcher.watch.matched} processes matched, "
        f"{len(watcher.followed)} followed\n"
    )
    print_report(report, options.warnings)
    end_serving(serving, args)
    return 0


def describe(users: set[int], groups: set[int], folders: list[str]) -> str:
    parts = [f"user {pwd_name(uid)}" for uid in sorted(users)] + [f"group {grp_name(gid)}" for gid in sorted(groups)]
    if folders:
        parts.append("files in " + ", ".join(folders))
    return ", ".join(parts) or "nobody"


def pwd_name(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} ({uid})"
    except KeyError:
        return str(uid)


def grp_name(gid: int) -> str:
    try:
        return f"{grp.getgrgid(gid).gr_name} ({gid})"
    except KeyError:
        return str(gid)


def directory_event_object(moment: float, kind: str, path: str, session: TraceSession):  # type: ignore[no-untyped-def]
    """`Dockit_DirectoryEvent`: what appeared in a watched folder, and the followed processes whose
    trace touched that path."""
    from decoders.records import CimObject
    from dockit_core.outputs.summary.objects import format_time

    node = session.model.files.get(path)
    processes = " ".join(str(pid) for pid in sorted(node.accesses)) if node is not None else ""
    return CimObject.make(
        "Dockit_DirectoryEvent",
        {"Path": path, "Event": kind, "Time": format_time(moment, None), "Processes": processes or None},
    )
