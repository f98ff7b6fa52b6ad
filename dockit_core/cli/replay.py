"""`dockit -i LOG`: replay a saved strace or ltrace log (plain or gzip), with its .ini when there is one."""

from __future__ import annotations

import argparse
import gzip
import io
import itertools
import os
import re
import sys
import time
from typing import TYPE_CHECKING

from dockit_core.cli.arguments import UsageError, make_registry
from dockit_core.cli.options import Options, OutputPaths
from dockit_core.cli.serving import end_serving, serve_if_asked
from dockit_core.ingest import multilog
from dockit_core.ingest.lines import LogReadError, bounded_lines
from dockit_core.ingest.pcap.reader import capture_format

if TYPE_CHECKING:
    from dockit_core.cli.session import TraceSession


def open_log(path: str) -> io.TextIOWrapper:
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such file")
    if os.path.isdir(path):
        raise UsageError(f"{path} is a directory, not a trace log")
    if os.path.getsize(path) == 0:
        raise UsageError(f"{path} is empty: nothing to replay")
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed by the TextIOWrapper
        magic = raw.read(2)
        raw.seek(0)
    except OSError as error:
        raise UsageError(f"{path}: cannot read: {error.strerror or error}") from error
    binary = gzip.GzipFile(fileobj=raw) if magic == b"\x1f\x8b" else raw
    return io.TextIOWrapper(binary, encoding="utf-8", errors="surrogateescape", newline="\n")


def log_stem(path: str) -> str:
    stem = path
    for suffix in (".gz", ".log"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    return stem


def default_pid(path: str, ini: dict[str, str]) -> int:
    from dockit_core.outputs.ini import top_pid_from_ini

    top = top_pid_from_ini(ini)
    if top is not None:
        return top
    match = re.search(r"\.(\d+)(?:\.log)?(?:\.gz)?$", path)
    return int(match.group(1)) if match else 1


def resolve_inputs(inputs: list[str]) -> tuple[list[str], str]:
    """The files to read and the prefix the outputs take after them: one log, `strace -ff`'s
    `PREFIX.PID` files when PREFIX itself is no file, or several logs of one run."""
    if len(inputs) == 1 and not os.path.exists(inputs[0]):
        files = multilog.per_process_files(inputs[0])
        if files:
            return files, inputs[0]
        raise UsageError(
            f"{inputs[0]}: no such file (nor {os.path.basename(inputs[0])}.PID files of strace -ff)"
        )
    for path in inputs:
        open_log(path).close()  # each one exists, is a file and is not empty
    if len(inputs) == 1:
        return inputs, log_stem(inputs[0])
    stems = {re.sub(r"\.\d{1,10}$", "", log_stem(path)) for path in inputs}
    return inputs, stems.pop() if len(stems) == 1 else log_stem(inputs[0])


# Lines read before deciding whether the input is a trace at all.
FIRST_LINES = 1000
_COUNT_TABLE = re.compile(r"\s*% time\s+seconds\s+usecs/call\s+calls\b|-{6} -{11} ")


def not_a_trace(path: str, session: TraceSession) -> None:
    """A UsageError when nine in ten of the first lines are no trace line (a real log has a handful at
    most: a line cut by the program's own output): an input that is no trace (random bytes, where a
    line now and then happens to read as a call, a `strace -c` table) says so, instead of replaying
    into an empty summary."""
    stats = session.parser.stats
    if not stats.unparsed or stats.unparsed < 0.9 * stats.lines:
        return
    if any(_COUNT_TABLE.match(line) for _, line in stats.samples):
        raise UsageError(
            f"{path} is a table of call counts (strace -c or ltrace -c), not a trace: nothing to replay"
        )
    read = stats.lines - stats.unparsed
    raise UsageError(
        f"{path} is not a strace or ltrace log: {read or 'none'} of its first {stats.lines} line(s) "
        f"read{'s' if read == 1 else ''} as a trace line"
    )


def replay(args: argparse.Namespace, options: Options) -> int:
    from dockit_core.cli.session import TraceSession, print_report, write_dockerfile_if_asked
    from dockit_core.outputs.ini import (
        attached_threads_from_ini,
        context_from_ini,
        environment_from_ini,
        read_ini,
        top_pid_from_ini,
    )

    files, stem = resolve_inputs(args.input)
    if len(files) == 1 and capture_format(files[0]):
        from dockit_core.cli.capture import replay_capture

        return replay_capture(files[0], stem, args, options)
    for path in files:
        if capture_format(path):
            raise UsageError(f"{path} is a packet capture: replay it alone (-i {path})")
    streams = [open_log(path) for path in files]
    stream = streams[0]
    ini = read_ini(stem + ".ini")
    context = context_from_ini(ini)
    if not context.tracer:
        context.tracer = "ltrace" if ".ltrace" in os.path.basename(files[0]) else "strace"
    paths = OutputPaths(args.log or stem, options.calls_format, options.summary_format)
    registry = make_registry(options)
    top_pid = default_pid(files[0], ini)
    if len(files) > 1 and top_pid_from_ini(ini) is None:
        top_pid = multilog.first_pid(files) or top_pid
    session = TraceSession(options, context, paths, default_pid=top_pid, registry=registry)
    threads = attached_threads_from_ini(ini)
    if threads:  # an attach log: what the live run knew of the process from /proc, the .ini says
        session.tracker.attached(top_pid, threads, executable=ini.get("Executable"), argv=context.command,
                                 cwd=context.cwd)  # fmt: skip
    serving = serve_if_asked(args, session, context.command or list(files), "replay", tick_when_idle=False)
    size = sum(os.path.getsize(path) for path in files)
    progress = Progress(
        size, stream, enabled=len(files) == 1 and (options.verbose > 0 or sys.stderr.isatty())
    )
    bounded = [bounded_lines(each, options.max_line) for each in streams]
    lines = bounded[0] if len(files) == 1 else multilog.merged_lines(bounded, files)
    try:
        session.feed_lines(itertools.islice(lines, FIRST_LINES), progress.update)
        not_a_trace(files[0] if len(files) == 1 else stem, session)
        session.feed_lines(lines, progress.update)
    except LogReadError as error:  # a gzip that is not one or is cut, a read error
        session.abort()
        raise UsageError(f"{' '.join(files) if len(files) < 4 else stem}: cannot read: {error}") from error
    except BaseException:
        session.abort()
        raise
    finally:
        for each in streams:
            each.close()
    progress.done()
    root = session.model.processes.get(top_pid)
    if root is not None and not root.argv and context.command:
        # ltrace never shows the first execve: the live run named the command it started, as here.
        root.argv = list(context.command)
        root.executable = root.executable or ini.get("Executable")
    try:
        report = session.finish()
    except BaseException:
        session.abort()
        raise
    write_dockerfile_if_asked(session, options, environment_from_ini(ini), report)
    print_report(report, options.warnings, verbose=options.verbose)
    end_serving(serving, args)
    return 0


class Progress:
    """A line on stderr every second or so during a long replay."""

    def __init__(self, total: int, stream: io.TextIOWrapper, enabled: bool) -> None:
        self.total = total
        self.raw = stream.buffer
        self.enabled = enabled and total > 20 * 1024 * 1024
        self.last = time.monotonic()
        self.shown = False

    def update(self, lines: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last < 1.0:
            return
        self.last = now
        try:
            position = getattr(self.raw, "fileobj", self.raw).tell()  # gzip: compressed position
        except (OSError, ValueError):
            return
        percent = 100.0 * position / self.total if self.total else 0.0
        sys.stderr.write(f"\rdockit: {lines} lines, {percent:5.1f}% of {self.total / 1e6:.0f} MB")
        sys.stderr.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
