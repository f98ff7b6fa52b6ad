"""`dockit`: the command line. The only module that opens the user's files and starts processes."""

from __future__ import annotations

import argparse
import gc
import gzip
import io
import os
import re
import signal
import sys
import time
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from dockit_core import __version__, tracers
from dockit_core.options import Options, OutputPaths
from dockit_core.summary_filter import SummaryFilter, SummaryFilterError

# The pipeline's modules (parser, tracker, decoders, summary) are imported where they are used: a live
# run starts the tracer first and loads them while the program already runs.
if TYPE_CHECKING:
    from decoders.registry import Registry
    from dockit_core.session import Report, TraceSession

EPILOG = """\
outputs (PREFIX is -l, or the replayed log's name without .log):
  live or attach:  PREFIX.<tracer>.<pid>.log  .ini  .txt|.csv|.json  .xml|.summary.txt  [.docker/]
  replay of X.log: X.txt|.csv|.json  X.xml|X.summary.txt  [X.docker/]   (or PREFIX.<ext> with -l)

examples:
  dockit -l /tmp/run curl -s http://127.0.0.1:8000/
  dockit -p 1234                        # attach; Ctrl-C detaches and writes the outputs
  dockit -i /tmp/run.strace.4242.log -F TXT -s 'Dockit_SqlQuery'
  dockit --decode 3307=mysql -i app.log.gz

exit status: the traced program's (128+N when it died of signal N); 127 when COMMAND is not found,
126 when it is not executable;
2 for a usage error, a missing tracer, an unreadable log or a refused attach."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dockit",
        description="Run COMMAND under strace (or ltrace), attach to a running process, or replay a saved "
        "trace log, and tell what the program did: its processes, files, sockets, pipes, and the SQL "
        "queries and HTTP requests that crossed them.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more detail on stderr; -v prints the exact tracer command",
    )
    parser.add_argument(
        "-w",
        "--warning",
        action="count",
        default=0,
        help="report each unparsed line and anomaly (cumulative)",
    )
    parser.add_argument(
        "-s",
        "--summary",
        action="append",
        default=[],
        metavar="CLASS[:filters]",
        help="restrict the summary to CLASS, e.g. 'CIM_DataFile:Category=[\"Others\"]' "
        "(repeatable; read as data, never evaluated)",
    )
    parser.add_argument(
        "-D",
        "--dockerfile",
        action="store_true",
        help="also write PREFIX.docker/Dockerfile rebuilding the program's environment",
    )
    parser.add_argument("-p", "--pid", type=int, help="attach to the running process PID (all its threads)")
    parser.add_argument(
        "-f",
        "--format",
        default="TXT",
        type=str.upper,
        choices=["TXT", "CSV", "JSON"],
        help="format of the calls file (default TXT)",
    )
    parser.add_argument(
        "--each-call",
        action="store_true",
        help="write one record per call in the calls file instead of logical blocks",
    )
    parser.add_argument(
        "-F",
        "--summary-format",
        default="XML",
        type=str.upper,
        choices=["TXT", "XML"],
        help="format of the summary (default XML)",
    )
    parser.add_argument(
        "-i",
        "--input",
        metavar="LOGFILE",
        help="replay a saved strace or ltrace log (plain or gzip); its .ini is optional",
    )
    parser.add_argument("-l", "--log", metavar="PREFIX", help="prefix of the output files")
    parser.add_argument(
        "-t",
        "--tracer",
        default="strace",
        choices=["strace", "ltrace"],
        help="tracer for live runs and attach (default strace)",
    )
    parser.add_argument(
        "--decoder",
        action="append",
        default=[],
        metavar="MODULE:CLASS",
        help="add a protocol decoder class (repeatable)",
    )
    parser.add_argument(
        "--decode",
        action="append",
        default=[],
        metavar="PORT=NAME",
        help="decode traffic on PORT with the decoder NAME, e.g. 3307=mysql",
    )
    parser.add_argument(
        "--rows",
        type=row_count,
        default=0,
        metavar="N",
        help="keep the first N rows of each SQL result set in the summary (default 0: row values may be "
        "personal data)",
    )
    parser.add_argument("--no-decode", action="store_true", help="do not decode socket and pipe payloads")
    parser.add_argument("--version", action="version", version=f"dockit {__version__}")
    parser.add_argument(
        "command",
        nargs=argparse.REMAINDER,
        metavar="COMMAND [ARGS...]",
        help="the program to run under the tracer",
    )
    return parser


class UsageError(Exception):
    """A problem with what the user asked: one line, exit status 2."""


def parse_overrides(values: list[str]) -> dict[int, str]:
    overrides: dict[int, str] = {}
    for value in values:
        port, equal, name = value.partition("=")
        if not equal or not port.strip().isdigit() or not name.strip():
            raise UsageError(f"--decode {value!r}: expected PORT=NAME, e.g. 3307=mysql")
        overrides[int(port)] = name.strip()
    return overrides


def row_count(text: str) -> int:
    """`--rows N`: a count, 0 or more."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of rows (0 or more)")
    return int(text)


def make_options(args: argparse.Namespace) -> Options:
    try:
        filters = [SummaryFilter.parse(text) for text in args.summary]
    except SummaryFilterError as error:
        raise UsageError(str(error)) from error
    return Options(
        calls_format=args.format,
        summary_format=args.summary_format,
        filters=filters,
        decode=not args.no_decode,
        decoder_references=list(args.decoder),
        decode_overrides=parse_overrides(args.decode),
        rows=args.rows,
        warnings=args.warning,
        verbose=args.verbose,
        dockerfile=args.dockerfile,
        each_call=args.each_call,
    )


def make_registry(options: Options) -> Registry | None:
    from decoders.registry import DecoderLoadError, Registry

    if not options.decode:
        return None
    try:
        return Registry.default(options.decoder_references, options.decode_overrides)
    except DecoderLoadError as error:
        raise UsageError(str(error)) from error


# -- replay -------------------------------------------------------------------------------------------------
def open_log(path: str) -> io.TextIOWrapper:
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such file")
    if os.path.isdir(path):
        raise UsageError(f"{path} is a directory, not a trace log")
    if os.path.getsize(path) == 0:
        raise UsageError(f"{path} is empty: nothing to replay")
    raw = open(path, "rb")  # noqa: SIM115 - closed by the TextIOWrapper
    magic = raw.read(2)
    raw.seek(0)
    binary = gzip.GzipFile(fileobj=raw) if magic == b"\x1f\x8b" else raw
    return io.TextIOWrapper(binary, encoding="utf-8", errors="surrogateescape", newline="\n")


def log_stem(path: str) -> str:
    stem = path
    for suffix in (".gz", ".log"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    return stem


def default_pid(path: str, ini: dict[str, str]) -> int:
    from dockit_core.ini import top_pid_from_ini

    top = top_pid_from_ini(ini)
    if top is not None:
        return top
    match = re.search(r"\.(\d+)(?:\.log)?(?:\.gz)?$", path)
    return int(match.group(1)) if match else 1


def replay(args: argparse.Namespace, options: Options) -> int:
    from dockit_core.ini import attached_threads_from_ini, context_from_ini, environment_from_ini, read_ini
    from dockit_core.session import TraceSession, print_report

    stream = open_log(args.input)
    ini = read_ini(log_stem(args.input) + ".ini")
    context = context_from_ini(ini)
    if not context.tracer:
        context.tracer = "ltrace" if ".ltrace" in os.path.basename(args.input) else "strace"
    paths = OutputPaths(args.log or log_stem(args.input), options.calls_format, options.summary_format)
    registry = make_registry(options)
    top_pid = default_pid(args.input, ini)
    session = TraceSession(options, context, paths, default_pid=top_pid, registry=registry)
    threads = attached_threads_from_ini(ini)
    if threads:  # an attach log: what the live run knew of the process from /proc, the .ini says
        session.tracker.attached(top_pid, threads, executable=ini.get("Executable"), argv=context.command,
                                 cwd=context.cwd)  # fmt: skip
    size = os.path.getsize(args.input)
    progress = Progress(size, stream, enabled=options.verbose > 0 or sys.stderr.isatty())
    try:
        with stream:
            session.feed_lines(stream, progress.update)
    except (OSError, EOFError, zlib.error) as error:  # a gzip that is not one or is cut, a read error
        session.abort()
        raise UsageError(f"{args.input}: cannot read: {error}") from error
    except BaseException:
        session.abort()
        raise
    progress.done()
    root = session.model.processes.get(top_pid)
    if root is not None and not root.argv and context.command:
        # ltrace never shows the first execve: the live run named the command it started, as here.
        root.argv = list(context.command)
        root.executable = root.executable or ini.get("Executable")
    report = session.finish()
    write_dockerfile_if_asked(session, options, environment_from_ini(ini), report)
    print_report(report, options.warnings)
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


# -- live and attach --------------------------------------------------------------------------------------
def trace(args: argparse.Namespace, options: Options) -> int:
    tracer = args.tracer
    tracers.require_tracer(tracer)
    attach_pid = args.pid
    if attach_pid is None:
        tracers.resolve_command(args.command[0])
        command = list(args.command)
    else:
        if not os.path.exists(f"/proc/{attach_pid}"):
            raise tracers.TracerError(f"no process {attach_pid}", 2)
        command = _cmdline(attach_pid)
    # A decoder named on the command line must load before the program runs, so that a mistake in it
    # costs nothing; the built-in ones are looked up when a channel needs them.
    early_registry = options.decode and (options.decoder_references or options.decode_overrides)
    registry = make_registry(options) if early_registry else None
    # Signals that come while the pipeline loads are noted, and handled once it has (see _follow).
    with tracers.SignalGuard() as loading:
        run = tracers.start(
            tracer,
            command=command if attach_pid is None else None,
            pid=attach_pid,
            echo_stderr=(lambda line: sys.stderr.write(line + "\n")) if options.verbose else None,
        )
        try:
            # The program already runs under the tracer, and the FIFO keeps what it writes meanwhile.
            import dockit_core.session  # noqa: F401 - the parser, the tracker, the decoders' seam, the summary
        except BaseException:
            run.process.kill()
            raise
    try:
        return _follow(run, args, options, command, registry, loading.received)
    except BaseException:
        if run.process.poll() is None:
            run.process.kill()
        raise


def _follow(
    run: tracers.TracerRun,
    args: argparse.Namespace,
    options: Options,
    command: list[str],
    registry: Registry | None,
    early_signals: list[int],
) -> int:
    """Read the started tracer's lines into a session until the program ends, then write the outputs."""
    from dockit_core.events import Call
    from dockit_core.ini import safe_environment, write_ini
    from dockit_core.session import TraceSession, print_report
    from dockit_core.summary import RunContext

    tracer = args.tracer
    attach_pid = args.pid
    if options.verbose:
        import shlex

        sys.stderr.write(f"dockit: {shlex.join(run.command)}\n")
    context = RunContext.local(tracer, command)
    if attach_pid is not None:
        context.cwd = _cwd(attach_pid) or context.cwd
    environment = safe_environment() if attach_pid is None else safe_environment(_environ(attach_pid))
    if registry is None:
        registry = make_registry(options)
    base = args.log or "dockit"
    paths = OutputPaths(f"{base}.{tracer}.pending{os.getpid()}", options.calls_format, options.summary_format)
    session = TraceSession(options, context, paths, default_pid=attach_pid or 0, registry=registry)
    attached_threads: list[int] = []
    executable = None
    if attach_pid is not None:  # no clone or execve will say what the process and its threads are
        attached_threads = tracers.threads_of(attach_pid)
        executable = _exe(attach_pid)
        session.tracker.attached(attach_pid, attached_threads, executable=executable, argv=command, cwd=context.cwd)
    log = tracers_log(paths.log)

    def detach(signum: int) -> None:
        if attach_pid is not None:
            if run.process.poll() is None:
                run.process.send_signal(signal.SIGINT)
        elif signum != signal.SIGINT and session.model.root_pid:
            # SIGTERM/SIGHUP sent to dockit alone go on to the program, as a wrapper's would (Ctrl-C
            # already reached it: the terminal signals the whole foreground group).
            try:
                os.kill(session.model.root_pid, signum)
            except OSError:
                pass

    top_pid = attach_pid
    with tracers.SignalGuard(detach):
        for signum in early_signals:
            detach(signum)
        try:
            for line in _lines_until_exit(run):
                event = session.feed(line)
                if top_pid is None and session.model.root_pid:
                    top_pid = session.model.root_pid
                # Only a call completed by this very line tells whether its buffer was a file's.
                if len(line) > 256 and isinstance(event, Call) and session.tracker.last_info.file_io:
                    line = tracers.trim_file_buffer(line)
                log.stream.write(line)
        except BaseException:
            log.discard()
            session.abort()
            run.process.kill()
            raise
        status = run.wait()
    if attach_pid is not None and session.parser.stats.lines == 0:
        failure = tracers.attach_failure(run.stderr_lines, attach_pid)
        if failure:
            log.discard()
            session.abort()
            raise tracers.TracerError(failure, 2)
    top_pid = top_pid or session.model.root_pid or 0
    root = session.model.processes.get(top_pid)
    if attach_pid is None and root is not None and not root.argv:
        # ltrace never shows the first execve: the command dockit started is the root's.
        root.argv = list(command)
        root.executable = root.executable or tracers.resolve_command(command[0])
    if root is not None:
        executable = root.executable or executable
    final_prefix = f"{base}.{tracer}.{top_pid}"
    paths.prefix = final_prefix
    if session.calls_writer is not None:
        session.calls_writer.file.path = paths.calls
    log.path = paths.log
    log.commit()
    exit_status = 0 if attach_pid is not None else program_status(session, top_pid, status)
    write_ini(
        paths.ini,
        context,
        top_pid,
        run.command,
        exit_status if attach_pid is None else None,
        environment,
        executable=executable,
        attached_threads=attached_threads,
    )
    report = session.finish()
    report.outputs[:0] = [paths.log, paths.ini]
    write_dockerfile_if_asked(session, options, environment, report)
    print_report(report, options.warnings)
    return exit_status


def tracers_log(path: str):  # type: ignore[no-untyped-def]
    from dockit_core.atomic import AtomicStream

    return AtomicStream(path, "w", encoding="utf-8", errors="surrogateescape", newline="")


def _lines_until_exit(run: tracers.TracerRun) -> Iterator[str]:
    try:
        yield from run.lines()
    except OSError:
        return


def program_status(session: TraceSession, top_pid: int, tracer_status: int) -> int:
    """The traced program's exit status as a shell reports it."""
    process = session.model.processes.get(top_pid)
    if process is not None and process.signal:
        number = getattr(signal.Signals, process.signal, None)
        return 128 + int(number) if number is not None else 128
    if process is not None and process.exit_code is not None:
        return process.exit_code
    return 128 - tracer_status if tracer_status < 0 else tracer_status


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as stream:
            return [part.decode("utf-8", "surrogateescape") for part in stream.read().split(b"\0") if part]
    except OSError:
        return []


def _exe(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def _cwd(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


def _environ(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as stream:
            pairs = [
                item.decode("utf-8", "surrogateescape").partition("=") for item in stream.read().split(b"\0")
            ]
    except OSError:
        return {}
    return {key: value for key, _, value in pairs if key}


def write_dockerfile_if_asked(
    session: TraceSession, options: Options, environment: dict[str, str], report: Report
) -> None:
    if not options.dockerfile:
        return
    try:
        from dockit_core.dockerfile import write_dockerfile
    except ImportError:
        sys.stderr.write("dockit: -D: the Dockerfile writer is not available in this version\n")
        return
    written = write_dockerfile(session.model, session.context, session.paths.docker_dir, environment)
    report.outputs.append(written)


def main(argv: list[str] | None = None) -> int:
    # A trace makes many small objects and few cycles: collecting the young generation every 700
    # allocations only costs time (about 4% of a decoded replay).
    gc.set_threshold(100_000, 50, 100)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        options = make_options(args)
        if args.input:
            if args.command or args.pid is not None:
                raise UsageError("-i replays a log: give no COMMAND and no -p with it")
            return replay(args, options)
        if args.pid is None and not args.command:
            raise UsageError(
                "nothing to do: give a COMMAND to run, -p PID to attach, or -i LOGFILE to replay"
            )
        if args.pid is not None and args.command:
            raise UsageError("-p attaches to a running process: give no COMMAND with it")
        return trace(args, options)
    except UsageError as error:
        sys.stderr.write(f"dockit: {error}\n")
        return 2
    except tracers.TracerError as error:
        sys.stderr.write(f"dockit: {error}\n")
        return error.status
    except KeyboardInterrupt:
        sys.stderr.write("dockit: interrupted\n")
        return 130
    except BrokenPipeError:
        return 141


if __name__ == "__main__":
    sys.exit(main())
