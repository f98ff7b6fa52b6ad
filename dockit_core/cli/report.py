"""`dockit report LOG_OR_XML...`: the query digest of one or many runs. A saved trace is decoded again
(its sockets and pipes only: no summary or calls file is written); an XML summary is read back. Several
inputs merge into one digest: the same fingerprint in two runs is one entry, `Runs` says in how many."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable

from dockit_core.cli.arguments import UsageError, run_subcommand


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dockit report",
        description="Print the query digest (SQL statements, Redis commands, HTTP requests grouped by "
        "fingerprint) of saved traces or XML summaries; several inputs merge into one digest.",
    )
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="LOG_OR_XML",
        help="a strace or ltrace log (plain or gzip), or an XML summary",
    )
    parser.add_argument("--json", action="store_true", help="one JSON document for a script instead of text")
    parser.add_argument(
        "--top",
        type=int,
        default=50,
        metavar="N",
        help="fingerprints shown in the text (default 50; --json has all)",
    )
    parser.add_argument(
        "--decoder",
        action="append",
        default=[],
        metavar="MODULE:CLASS",
        help="also decode with this decoder class (repeatable), as a run given --decoder would",
    )
    return parser


def main(args: list[str]) -> int:
    options = build_parser().parse_args(args)
    return run_subcommand(lambda: _main(options))


def input_kind(path: str) -> str:
    """ "xml", "log" or "capture", from the file's first bytes; a UsageError when it cannot be read."""
    from dockit_core.ingest.pcap.reader import capture_format

    if not os.path.exists(path):
        raise UsageError(f"{path}: no such file")
    if os.path.isdir(path):
        raise UsageError(f"{path} is a directory, not a log or an XML summary")
    try:
        with open(path, "rb") as stream:
            head = stream.read(64)
    except OSError as error:
        raise UsageError(f"{path}: cannot read: {error.strerror or error}") from error
    if not head:
        raise UsageError(f"{path} is empty: no queries in it")
    if head.lstrip().startswith(b"<"):
        return "xml"
    if head.startswith(b"dockit ") and b" summary" in head.split(b"\n", 1)[0]:
        raise UsageError(
            f"{path} is a TXT summary: give the run's XML summary (dockit -F XML, the default) or its log"
        )
    if capture_format(path):
        return "capture"
    return "log"


def _main(options: argparse.Namespace) -> int:
    from dockit_core.outputs.digest.digest import Digest
    from dockit_core.outputs.digest.render import digest_json, digest_text

    kinds = [input_kind(path) for path in options.inputs]  # every input checked before any is read
    for path, kind in zip(options.inputs, kinds, strict=True):
        if kind == "capture":
            raise UsageError(
                f"{path} is a packet capture: replay it with dockit -i {path}, then report on its XML"
            )
    digest = Digest()
    for run, (path, kind) in enumerate(zip(options.inputs, kinds, strict=True)):
        add: Callable = lambda obj, run=run: digest.add(obj, run)  # noqa: E731
        if kind == "xml":
            _read_summary(path, add)
        else:
            _decode_log(path, add, options.decoder)
    if options.json:
        json.dump(digest_json(digest), sys.stdout, indent=1, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    if not digest:
        sys.stderr.write(
            "dockit: no SQL statement, Redis command or HTTP request in " + " ".join(options.inputs) + "\n"
        )
        return 1
    title = "Query digest" if len(options.inputs) == 1 else f"Query digest of {len(options.inputs)} runs"
    sys.stdout.write(digest_text(digest, title=title, limit=max(1, options.top)))
    return 0


def _read_summary(path: str, add: Callable) -> None:  # type: ignore[type-arg]
    from dockit_core.outputs.digest.inputs import NotASummary, summary_records

    try:
        for record in summary_records(path):
            add(record)
    except NotASummary as error:
        raise UsageError(f"{path} is not a dockit XML summary: {error}") from error
    except OSError as error:
        raise UsageError(f"{path}: cannot read: {error.strerror or error}") from error


def _decode_log(path: str, add: Callable, decoders: list[str]) -> None:  # type: ignore[type-arg]
    """The log's channels through the decoders, as a replay feeds them; each record to the digest."""
    from decoders.registry import DecoderLoadError, Registry
    from dockit_core.cli.replay import default_pid, log_stem, open_log
    from dockit_core.ingest.lines import LogReadError, Overlong, bounded_lines
    from dockit_core.ingest.strace_parser import StraceParser
    from dockit_core.model import Model
    from dockit_core.model.channels import ChannelManager
    from dockit_core.model.tracker import Tracker
    from dockit_core.outputs.ini import read_ini

    try:
        registry = Registry.default(decoders)
    except DecoderLoadError as error:
        raise UsageError(str(error)) from error
    stream = open_log(path)  # one clear line for a missing, empty or unreadable log
    top = default_pid(path, read_ini(log_stem(path) + ".ini"))
    model = Model()
    model.root_pid = top
    manager = ChannelManager(registry, add)
    tracker = Tracker(model, manager)
    parser = StraceParser(top)
    lines = 0
    try:
        with stream:
            for index, line in enumerate(bounded_lines(stream), start=1):
                lines = index
                if type(line) is Overlong:
                    parser.skip(line, index)
                    continue
                event = parser.parse(line, index)
                if event is not None:
                    tracker.apply(event)
    except LogReadError as error:
        raise UsageError(f"{path}: cannot read: {error}") from error
    tracker.finish()
    if lines and parser.stats.unparsed >= 0.9 * lines:
        raise UsageError(f"{path} is neither a strace or ltrace log nor an XML summary")
