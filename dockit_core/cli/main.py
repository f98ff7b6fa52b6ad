"""`dockit`: the command line's entry point. It chooses between a live run, an attach and a replay, and
turns every failure into one line and an exit status."""

from __future__ import annotations

import gc
import importlib
import sys

from dockit_core.cli.arguments import UsageError, build_parser, check_arguments, make_options
from dockit_core.ingest import tracers
from dockit_core.ingest.tracers import Terminated
from dockit_core.outputs.atomic import OutputError

# `dockit NAME ARGS...` runs one of dockit's own tools instead of tracing a program: NAME -> the
# "module:function" that takes ARGS and returns the exit status, imported only when asked for. A
# program with such a name is traced when given by its path (`dockit ./report`) or after `--`.
SUBCOMMANDS: dict[str, str] = {
    "decoders": "dockit_core.cli.decoders_list:main",
    "extract": "dockit_core.cli.extract:main",
    "report": "dockit_core.cli.report:main",
}


def run_subcommand(name: str, args: list[str]) -> int:
    module_name, _, function = SUBCOMMANDS[name].partition(":")
    return int(getattr(importlib.import_module(module_name), function)(args))


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] in SUBCOMMANDS:
        return run_subcommand(argv[0], argv[1:])
    # A trace makes many small objects and few cycles: collecting the young generation every 700
    # allocations only costs time (about 4% of a decoded replay).
    gc.set_threshold(100_000, 50, 100)
    parser = build_parser()
    args = parser.parse_args(argv)
    # Each mode's modules are loaded once the mode is known: `--version` and `--help` load none of them.
    from dockit_core.cli.live import trace
    from dockit_core.cli.replay import replay
    from dockit_core.cli.watch import watch, watch_requested

    try:
        if args.serve_after and not args.serve:
            raise UsageError("--serve-after keeps the --serve server up: give --serve [HOST:]PORT with it")
        check_arguments(args)
        options = make_options(args)
        if args.input:
            if args.command or args.pid is not None or watch_requested(args):
                raise UsageError("-i replays a log: give no COMMAND, -p, -u, -g or --watch-dir with it")
            with tracers.TerminateOnSignals():
                return replay(args, options)
        if watch_requested(args):
            if args.command or args.pid is not None:
                raise UsageError("-u, -g and --watch-dir watch the machine: give no COMMAND and no -p with them")
            return watch(args, options)
        watch_only = [name for name, value in (("--json", args.json), ("--duration", args.duration),
                      ("--follow", args.follow), ("--follow-max", args.follow_max != 8)) if value]  # fmt: skip
        if watch_only:
            raise UsageError(f"{watch_only[0]} belongs to the watch mode: give -u USER or -g GROUP with it")
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
    except OutputError as error:
        sys.stderr.write(f"dockit: {error}\n")
        return 2
    except Terminated as signal_received:
        sys.stderr.write(f"dockit: stopped by {signal_received}: no output written\n")
        return 128 + signal_received.signum
    except tracers.TracerError as error:
        sys.stderr.write(f"dockit: {error}\n")
        return error.status
    except KeyboardInterrupt:
        sys.stderr.write("dockit: interrupted\n")
        return 130
    except BrokenPipeError:
        return 141
    except OSError as error:  # what the summary keeps on disk meanwhile (model/spill.py: a full /tmp)
        where = f": {error.filename}" if error.filename else ""
        sys.stderr.write(f"dockit: cannot write {error.strerror or error}{where}\n")
        return 2

