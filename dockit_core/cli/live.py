"""`dockit COMMAND` and `dockit -p PID`: start the tracer, follow its lines while the program runs, write
the outputs when it ends (or when Ctrl-C detaches)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

from dockit_core.cli import procfs
from dockit_core.cli.arguments import make_registry
from dockit_core.cli.options import Options, OutputPaths
from dockit_core.cli.serving import end_serving, serve_if_asked
from dockit_core.ingest import tracers
from dockit_core.ingest.lines import LogReadError
from dockit_core.outputs.atomic import OutputError

# The pipeline's modules (parser, tracker, decoders, summary) are imported where they are used: a live
# run starts the tracer first and loads them while the program already runs.
if TYPE_CHECKING:
    from decoders.registry import Registry
    from dockit_core.cli.session import TraceSession


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
        command = procfs.cmdline(attach_pid)
    # A decoder named on the command line must load before the program runs, so that a mistake in it
    # costs nothing; the built-in ones are looked up when a channel needs them.
    early_registry = options.decode and (options.decoder_references or options.decode_overrides)
    registry = make_registry(options) if early_registry else None
    was_stopped = attach_pid is not None and tracers.is_stopped(attach_pid)
    # Signals that come while the pipeline loads are noted, and handled once it has (see _follow): the
    # guard stays until _follow has its own, so that no Ctrl-C falls between the two.
    with tracers.SignalGuard() as loading:
        if tracer == "ltrace" and attach_pid is None:
            started = tracers.ltrace_runnable(command)  # a script runs through its interpreter
        else:
            started = command
        run = tracers.start(
            tracer,
            command=started if attach_pid is None else None,
            pid=attach_pid,
            echo_stderr=(lambda line: sys.stderr.write(line + "\n")) if options.verbose else None,
        )
        try:
            # The program already runs under the tracer, and the FIFO keeps what it writes meanwhile.
            import dockit_core.cli.session  # noqa: F401 - the parser, the tracker, the decoders' seam, the summary

            if options.pcap:
                import dockit_core.outputs.pcap  # noqa: F401 - scapy takes a moment to load
            return _follow(run, args, options, command, registry, loading.received, was_stopped)
        except BaseException:
            if run.process.poll() is None:
                run.process.kill()
            raise
        finally:
            run.cleanup()  # the FIFO's folder goes on every way out but SIGKILL (the next run removes it)


def _follow(
    run: tracers.TracerRun,
    args: argparse.Namespace,
    options: Options,
    command: list[str],
    registry: Registry | None,
    early_signals: list[int],
    was_stopped: bool = False,
) -> int:
    """Read the started tracer's lines into a session until the program ends, then write the outputs."""
    from dockit_core.cli.session import TraceSession, print_report, write_dockerfile_if_asked
    from dockit_core.ingest.events import Call
    from dockit_core.outputs.ini import write_ini
    from dockit_core.outputs.summary.objects import RunContext

    tracer = args.tracer
    attach_pid = args.pid
    if options.verbose:
        import shlex

        sys.stderr.write(f"dockit: {shlex.join(run.command)}\n")
    context = RunContext.local(tracer, command)
    if attach_pid is not None:
        context.cwd = procfs.cwd(attach_pid) or context.cwd
    # as it was: the .ini and the Dockerfile each leave out what they must, and say which names
    environment = dict(os.environ) if attach_pid is None else procfs.environ(attach_pid)
    if registry is None:
        registry = make_registry(options)
    base = args.log or "dockit"
    paths = OutputPaths(f"{base}.{tracer}.pending{os.getpid()}", options.calls_format, options.summary_format)
    session = TraceSession(options, context, paths, default_pid=attach_pid or 0, registry=registry)
    attached_threads: list[int] = []
    executable = None
    if attach_pid is not None:  # no clone or execve will say what the process and its threads are
        attached_threads = tracers.threads_of(attach_pid)
        executable = procfs.exe(attach_pid)
        session.tracker.attached(attach_pid, attached_threads, executable=executable, argv=command, cwd=context.cwd)
    log = tracers_log(paths.log)
    serving = serve_if_asked(args, session, command, "attach" if attach_pid else "live", tick_when_idle=True)

    unsent: list[int] = []

    def forward(signum: int) -> None:
        try:
            os.kill(session.model.root_pid, signum)
        except OSError:
            pass

    def detach(signum: int) -> None:
        """Ctrl-C or SIGTERM to dockit always ends the tracer (SIGINT, then SIGTERM, then SIGKILL if it
        does not listen: a stuck ltrace), and the outputs are written from what was traced."""
        session.watchdog.hurry()  # a decoder stuck on a chunk must not keep dockit from ending
        if attach_pid is not None:
            run.stop(signal.SIGINT)  # strace and ltrace detach on SIGINT; a second signal hurries it
            return
        if signum != signal.SIGINT:
            # SIGTERM/SIGHUP sent to dockit alone go on to the program, as a wrapper's would (Ctrl-C
            # already reached it: the terminal signals the whole foreground group). One that came
            # before the trace named the program (while dockit loaded) goes when it does.
            if session.model.root_pid:
                forward(signum)
            else:
                unsent.append(signum)
        # The program normally ends of it, and its tracer with it; if not, the tracer is ended.
        run.stop(signal.SIGTERM, delay=tracers.PROGRAM_GRACE_SECONDS)

    top_pid = attach_pid
    with tracers.SignalGuard(detach):
        for signum in early_signals:
            detach(signum)
        lines = _lines_until_exit(run, options.max_line)
        try:
            for line in lines:
                event = session.feed(line)
                if top_pid is None and session.model.root_pid:
                    top_pid = session.model.root_pid
                    while unsent:
                        forward(unsent.pop(0))
                # Only a call completed by this very line tells whether its buffer was a file's.
                if len(line) > 256 and isinstance(event, Call):
                    info = session.tracker.last_info
                    line = tracers.trim_for_log(line, info.file_io, info.keep_elements)
                log.stream.write(line)
        except OutputError:
            # A full disk or a folder gone: the outputs are lost, the program is not. It runs to its
            # end as it would have (killing the tracer would leave its traced calls failing with
            # ENOSYS under --seccomp-bpf); the trace is read and dropped meanwhile.
            log.discard()
            session.abort()
            for _ in lines:
                pass
            run.wait()
            raise
        except BaseException:
            log.discard()
            session.abort()
            run.process.kill()
            raise
        status = run.wait()
    if attach_pid is not None:
        still = tracers.release(attach_pid, was_stopped, run.process.pid)
        if still:
            sys.stderr.write(
                f"dockit: threads {', '.join(map(str, still))} of process {attach_pid} are still stopped or "
                "traced after the tracer ended\n"
            )
    if attach_pid is not None and (session.parser.stats.lines == 0 or run.attach_error):
        failure = tracers.attach_failure(run.stderr_lines, attach_pid)
        if failure and session.parser.stats.lines == 0:
            log.discard()
            session.abort()
            raise tracers.TracerError(failure, 2)
        if failure:  # some threads were traced: what they did is written, and the failure said
            sys.stderr.write(f"dockit: {failure}\n")
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
    try:
        report = session.finish()
    except BaseException:
        session.abort()
        raise
    report.outputs[:0] = [paths.log, paths.ini]
    write_dockerfile_if_asked(session, options, environment, report)
    print_report(report, options.warnings, verbose=options.verbose)
    end_serving(serving, args)
    return exit_status


def tracers_log(path: str):  # type: ignore[no-untyped-def]
    from dockit_core.outputs.atomic import AtomicStream

    return AtomicStream(path, "w", encoding="utf-8", errors="surrogateescape", newline="")


def _lines_until_exit(run: tracers.TracerRun, max_line: int) -> Iterator[str]:
    try:
        yield from run.lines(max_line)
    except (OSError, LogReadError):
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
