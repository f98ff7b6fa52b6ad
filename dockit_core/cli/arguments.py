"""The command line's grammar: options, their checks, and the `Options` they make. Light imports only:
the tracer starts before the pipeline loads."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from dockit_core import __version__
from dockit_core.cli.options import Options
from dockit_core.ingest.lines import DEFAULT_MAX_LINE, parse_size
from dockit_core.outputs.summary.filter import SummaryFilter, SummaryFilterError

if TYPE_CHECKING:
    from decoders.registry import Registry

EPILOG = """\
outputs (PREFIX is -l, or the replayed log's name without .log):
  live or attach:  PREFIX.<tracer>.<pid>.log  .ini  .txt|.csv|.json  .xml|.summary.txt|.summary.json[l]  [.docker/]
  replay of X.log: X.txt|.csv|.json  X.xml|X.summary.txt|X.summary.json[l]  [X.docker/]   (or PREFIX.<ext> with -l)
  watch (-u/-g):   PREFIX.watch.<dockit's pid>.xml|.summary.txt  (--follow: also .log and .txt|.csv|.json)

examples:
  dockit -l /tmp/run curl -s http://127.0.0.1:8000/
  dockit -p 1234                        # attach; Ctrl-C detaches and writes the outputs
  dockit -i /tmp/run.strace.4242.log -F TXT -s 'Dockit_SqlQuery'
  dockit --decode 3307=mysql -i app.log.gz
  dockit -u www-data --follow           # watch www-data's new processes, trace each one
  dockit decoders                       # the decoders installed, where from, and why any failed to load
  dockit extract --channel ID LOG       # one channel's chunks as a test fixture (decoders.testing)
  dockit report A.log B.xml [--json]    # the query digest of runs: statements by fingerprint, merged
  dockit -i trace                       # strace -ff -o trace wrote trace.PID files
  dockit -i capture.pcapng              # a packet capture: connections and what crossed them
  dockit --pcap run.pcapng --events run.csv --case session python3 app.py

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
    parser.add_argument(
        "--copy-from-host",
        action="store_true",
        help="with -D on a replay: copy the files the log names from this machine, although the log does "
        "not show it was recorded here (no .ini, another host or machine)",
    )
    parser.add_argument(
        "-p", "--pid", type=int, action=Once, help="attach to the running process PID (all its threads)"
    )
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
        choices=["TXT", "XML", "JSON"],
        help="format of the summary (default XML): XML (P.xml), TXT (P.summary.txt), JSON (P.summary.json, "
        "the XML's objects; docs/summary.schema.json)",
    )
    parser.add_argument(
        "--stream",
        action="store_true",
        help="with -F JSON: JSON Lines, one object a line (P.summary.jsonl), instead of one document",
    )
    parser.add_argument(
        "-i",
        "--input",
        metavar="LOGFILE",
        nargs="+",
        action="extend",
        help="replay a saved strace or ltrace log (plain or gzip; its .ini is optional), several logs of one "
        "run merged by time, strace -ff's PREFIX.PID files given as PREFIX, or a packet capture (pcap, pcapng)",
    )
    parser.add_argument(
        "-l",
        "--log",
        action=Once,
        metavar="PREFIX",
        help="prefix of the output files (a folder, or a name ending with /, puts them in that folder)",
    )
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
    parser.add_argument(
        "--proto",
        action="append",
        default=[],
        metavar="FILE",
        help="a protobuf schema (.proto, or a descriptor set from protoc -o) naming gRPC messages' fields "
        "(repeatable)",
    )
    parser.add_argument("--no-decode", action="store_true", help="do not decode socket and pipe payloads")
    parser.add_argument(
        "--no-digest",
        action="store_true",
        help="leave the query digest (statements grouped by fingerprint) out of the summary",
    )
    parser.add_argument(
        "--pcap",
        metavar="FILE",
        help="also write every channel's bytes (TCP, UDP, unix sockets, pipes) as a pcapng file for Wireshark",
    )
    parser.add_argument(
        "--events",
        metavar="FILE",
        help="also write an event log for process mining: OCEL 2.0 JSON, or a flat CSV when FILE ends in .csv",
    )
    parser.add_argument(
        "--case",
        default="process",
        choices=["process", "session", "connection"],
        help="the case id of the --events CSV (default process)",
    )
    parser.add_argument(
        "--serve",
        metavar="[HOST:]PORT",
        help="serve the run's objects over HTTP while it goes: a page at http://HOST:PORT/ and a JSON API "
        "(HOST defaults to 127.0.0.1, this machine only; another address must be named, e.g. "
        "0.0.0.0:8765; port 0 picks a free one)",
    )
    parser.add_argument(
        "--serve-after",
        action="store_true",
        help="with --serve: keep serving when the run is over, until Ctrl-C, so it can be browsed",
    )
    parser.add_argument(
        "--max-line",
        type=line_limit,
        default=DEFAULT_MAX_LINE,
        metavar="SIZE",
        help="the longest trace line read (default 64M; K, M, G suffixes): a longer one is skipped and "
        "counted as unparsed, never held in memory",
    )
    watch = parser.add_argument_group(
        "watch mode (no COMMAND, -p or -i)",
        "  watch the whole machine for the processes of a user or group with the kernel's process\n"
        "  connector (root or CAP_NET_ADMIN): one line per fork, exec, uid/gid or session change and exit,\n"
        "  then the summary of every process seen when Ctrl-C, SIGTERM or --duration ends the watch",
    )
    watch.add_argument(
        "-u", "--user", action="append", default=[], metavar="USER",
        help="watch processes running as USER (a name or a uid; repeatable, or comma-separated)",
    )  # fmt: skip
    watch.add_argument(
        "-g", "--group", action="append", default=[], metavar="GROUP",
        help="watch processes running with GROUP as real or effective group (a name or a gid; repeatable)",
    )  # fmt: skip
    watch.add_argument("--json", action="store_true", help="print one JSON object a line instead of text")
    watch.add_argument(
        "--duration", type=seconds, metavar="SECONDS", help="end the watch after SECONDS (default: Ctrl-C)"
    )
    watch.add_argument(
        "--follow", action="store_true",
        help="trace each new matching process as -p would (with -t's tracer): its files, sockets and "
        "queries join the summary",
    )  # fmt: skip
    watch.add_argument(
        "--follow-max", type=row_count, default=8, metavar="N",
        help="trace at most N processes at once with --follow (default 8); past it, processes are listed only",
    )  # fmt: skip
    watch.add_argument(
        "--watch-dir", action="append", default=[], metavar="DIR",
        help="also report the files created, written, moved in or deleted in DIR (inotify; repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--decoder-timeout",
        type=seconds_or_zero,
        default=10.0,
        metavar="SECONDS",
        help="stop a decoder that spends longer than this on one chunk and leave its channel undecoded "
        "(default 10; 0: never)",
    )
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


def run_subcommand(body: Callable[[], int]) -> int:
    """A subcommand's body with the command line's endings: a usage error is one line and status 2,
    Ctrl-C status 130, a closed pipe (`dockit report ... | head`) status 141, never a traceback."""
    try:
        return body()
    except UsageError as error:
        sys.stderr.write(f"dockit: {error}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("dockit: interrupted\n")
        return 130
    except BrokenPipeError:
        return 141


class Once(argparse.Action):
    """An option that takes one value: given twice (`-l a -l b`), the run stops instead of taking b
    alone without a word. (`-i a -i b` replays both logs as one run.)"""

    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[no-untyped-def]
        if getattr(namespace, self.dest, None) is not None:
            namespace.repeated_option = option_string
        setattr(namespace, self.dest, values)


def check_arguments(args: argparse.Namespace) -> None:
    """What argparse cannot say: an option given twice, `--` before the command, `-l` naming a folder."""
    repeated = getattr(args, "repeated_option", None)
    if repeated:
        raise UsageError(f"{repeated} was given twice: give it once")
    if args.command and args.command[0] == "--":
        args.command = args.command[1:]  # `dockit -l X -- prog`: `--` ends the options, it is no program
    if args.log is not None:
        if not args.log.strip():
            raise UsageError("-l '': give a prefix for the output files, such as /tmp/run")
        if args.log.endswith("/") or os.path.isdir(args.log):
            # a folder: the outputs go inside it under their usual name, never as hidden `.xml`, `.txt`
            name = "dockit"
            if args.input:
                name = os.path.basename(args.input[0])
                for suffix in (".gz", ".log"):
                    name = name.removesuffix(suffix)
            args.log = os.path.join(args.log, name)


def parse_overrides(values: list[str]) -> dict[int, str]:
    overrides: dict[int, str] = {}
    for value in values:
        port, equal, name = value.partition("=")
        if not equal or not port.strip().isdigit() or not name.strip():
            raise UsageError(f"--decode {value!r}: expected PORT=NAME, e.g. 3307=mysql")
        overrides[int(port)] = name.strip()
    return overrides


def seconds(text: str) -> float:
    """`--duration SECONDS`: a positive number."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def row_count(text: str) -> int:
    """`--rows N`: a count, 0 or more."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of rows (0 or more)")
    return int(text)


def seconds_or_zero(text: str) -> float:
    """`--decoder-timeout S`: seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0 or more)")
    return value


def line_limit(text: str) -> int:
    """`--max-line SIZE`: characters, at least 1K (a line of a trace is rarely shorter than 100)."""
    size = parse_size(text)
    if size is None or size < 1024:
        raise argparse.ArgumentTypeError(f"{text!r} is not a line length (a size of 1K or more: 64M, 1G)")
    return size


def make_options(args: argparse.Namespace) -> Options:
    from dockit_core.cli.protos import load_proto

    try:
        filters = [SummaryFilter.parse(text) for text in args.summary]
    except SummaryFilterError as error:
        raise UsageError(str(error)) from error
    if args.stream and args.summary_format != "JSON":
        raise UsageError("--stream writes the summary as JSON Lines: it needs -F JSON")
    return Options(
        calls_format=args.format,
        summary_format="JSONL" if args.stream else args.summary_format,
        filters=filters,
        decode=not args.no_decode,
        digest=not args.no_digest,
        decoder_references=list(args.decoder),
        decode_overrides=parse_overrides(args.decode),
        rows=args.rows,
        proto=tuple(load_proto(path) for path in args.proto),
        warnings=args.warning,
        verbose=args.verbose,
        dockerfile=args.dockerfile,
        copy_from_host=args.copy_from_host,
        each_call=args.each_call,
        decoder_timeout=args.decoder_timeout,
        pcap=args.pcap,
        events=args.events,
        case=args.case,
        max_line=args.max_line,
    )


def make_registry(options: Options) -> Registry | None:
    from decoders.registry import DecoderLoadError, Registry

    if not options.decode:
        return None
    try:
        return Registry.default(options.decoder_references, options.decode_overrides)
    except DecoderLoadError as error:
        raise UsageError(str(error)) from error
