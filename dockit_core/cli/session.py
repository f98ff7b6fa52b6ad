"""One run of the pipeline, live or replayed: lines in, model and decoded records built as they come,
outputs written at the end. Nothing here spawns a process or knows where the lines come from."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

from decoders.api import DecoderOptions
from decoders.records import CimObject
from decoders.registry import Registry
from dockit_core.cli.options import Options, OutputPaths
from dockit_core.ingest import accelerator
from dockit_core.ingest.events import Call, Event
from dockit_core.ingest.lines import Overlong
from dockit_core.ingest.strace_parser import PidAlias, StraceParser
from dockit_core.model import Model, Process, SocketNode, SocketRefs
from dockit_core.model.channels import ChannelManager
from dockit_core.model.held_calls import HeldCalls
from dockit_core.model.tracker import Tracker
from dockit_core.model.watchdog import Watchdog
from dockit_core.outputs.bridges import open_bridges
from dockit_core.outputs.calls.blocks_writer import BlocksWriter
from dockit_core.outputs.calls.each_call_writer import CallsWriter
from dockit_core.outputs.digest.digest import Digest
from dockit_core.outputs.digest.render import digest_text
from dockit_core.outputs.summary.json_writer import write_json
from dockit_core.outputs.summary.objects import (
    OrderedSpool,
    RecordSpool,
    RunContext,
    keep_filter,
    process_object,
    socket_object,
    summary_objects,
)
from dockit_core.outputs.summary.writers import renderer, write_txt, write_xml

if TYPE_CHECKING:  # --serve's publisher (sqlite) is loaded only when asked for
    from dockit_core.outputs.live.publisher import LivePublisher


@dataclass
class Report:
    """What a run saw and could not understand; printed at the end, and in the summary."""

    lines: int = 0
    calls: int = 0
    unparsed: int = 0
    unparsed_samples: list[tuple[int, str]] = field(default_factory=list)
    orphan_resumes: int = 0
    unattributed_data_calls: int = 0
    unfinished_at_end: int = 0
    problems: list[str] = field(default_factory=list)
    tracebacks: list[str] = field(default_factory=list)  # of the decoder problems, shown with -v
    records: dict[str, int] = field(default_factory=dict)
    channels: int = 0
    decoded_channels: int = 0
    duplicate_chunks: int = 0
    tls_without_plaintext: int = 0  # TLS connections whose plaintext the trace did not show
    plaintext_visible: bool = False  # the trace has library calls (ltrace)
    blocks: int | None = None  # blocks written to the calls file (None: one record per call)
    descriptors_not_tracked: int = 0  # descriptors past the model's limit (SocketRefs.LIMIT)
    outputs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # said whatever -w is: what the user asked went wrong

    def statistics_object(self) -> CimObject:
        return CimObject.make(
            "Dockit_Statistics",
            {
                "Lines": self.lines,
                "Calls": self.calls,
                "UnparsedLines": self.unparsed,
                "ResumedWithoutStart": self.orphan_resumes,
                "UnattributedDataCalls": self.unattributed_data_calls,
                "UnfinishedAtEnd": self.unfinished_at_end,
                "Channels": self.channels,
                "DecodedChannels": self.decoded_channels,
                "DuplicateChunks": self.duplicate_chunks,
                "DecoderProblems": len(self.problems),
                "Blocks": self.blocks,
                "DescriptorsNotTracked": self.descriptors_not_tracked or None,
            },
        )


class TraceSession:
    """Feed it lines; `finish` writes the summary and the calls file."""

    def __init__(
        self,
        options: Options,
        context: RunContext,
        paths: OutputPaths,
        *,
        default_pid: int = 0,
        registry: Registry | None = None,
        call_observers: list[Callable] | None = None,
    ) -> None:
        self.options = options
        self.context = context
        self.paths = paths
        self.model = Model()
        if default_pid:
            self.model.root_pid = default_pid
        self.digest = Digest() if options.digest and options.decode else None
        self.spool = RecordSpool(
            renderer(options.summary_format, context.date), keep_filter(options.filters), self.digest
        )
        self.spool.resolved = self.model.resolved  # DNS answers name the sockets that connect to them
        if registry is None and options.decode:
            registry = Registry.default(options.decoder_references, options.decode_overrides)
        self.registry = registry
        self.watchdog = Watchdog(options.decoder_timeout)
        if registry is not None:
            self.watchdog.start()  # a no-op outside the main thread (a test driving a session from a thread)
        self.channels = ChannelManager(
            registry, self.spool.add, DecoderOptions(rows=options.rows, proto=options.proto), watchdog=self.watchdog
        )
        self.parser = StraceParser(default_pid)
        self.calls_writer: CallsWriter | BlocksWriter | None = None
        if options.write_calls:
            writer = CallsWriter if options.each_call else BlocksWriter
            self.calls_writer = writer(paths.calls, options.calls_format, context.date)
        self.observers = list(call_observers or [])
        self.event_observers: list[Callable[[Event], None]] = []  # exits, signals: what is no call
        # --pcap and --events: outputs that watch every chunk, call and exit as they come
        self.bridges = open_bridges(
            options.pcap, options.events, options.case, context, self.model, self.channels, self.observers,
            self.event_observers,
        )  # fmt: skip
        sink = self._dispatch if (self.calls_writer or self.observers) else None
        if isinstance(self.calls_writer, BlocksWriter) and not self.observers:
            sink = self.calls_writer.aggregator  # the only consumer: called directly, once per call
        self.tracker = Tracker(
            self.model,
            self.channels,
            initial_cwd=context.cwd,
            call_sink=sink,
            pending_calls=lambda: self.parser.pending,
        )
        # Finished connections are written as they end, not kept: memory does not grow with them.
        self.retired_sockets = RecordSpool(
            renderer(options.summary_format, context.date), keep_filter(options.filters)
        )
        self.tracker.socket_retired = self._retire_socket
        if isinstance(self.calls_writer, CallsWriter) and self.registry is not None:
            # One record per call shows buffers: calls wait while a decoder reads a message they carry.
            self.held_calls = HeldCalls(self.channels, sink)  # type: ignore[arg-type]
            self.tracker.held_calls = self.held_calls
        # Processes that ended likewise: written then, listed in the order they began.
        self.retired_processes = OrderedSpool(
            renderer(options.summary_format, context.date), keep_filter(options.filters)
        )
        self.model.process_retired = self._retire_process
        self._index = 0
        self.live: LivePublisher | None = None  # `--serve`: objects published as they change
        self.lock = threading.Lock()  # held while the model changes, when `--serve` ticks from a thread

    def serve(self, publisher: LivePublisher) -> None:
        """Publish the objects to a live store as the run goes (`--serve`)."""
        self.live = publisher
        add = self.spool.add

        def add_and_publish(obj: CimObject) -> None:
            add(obj)
            publisher.record(obj)

        self.spool.add = add_and_publish  # type: ignore[method-assign]
        self.channels.emit = add_and_publish

    def _retire_socket(self, node: SocketNode) -> None:
        obj = socket_object(node)
        self.retired_sockets.add(obj)
        if self.live is not None:
            self.live.retired_socket(node, obj)
        self.model.retire_socket(node)

    def _retire_process(self, process: Process) -> None:
        calls = self.model.calls_with_threads(process)
        obj = process_object(process, self.context.date, calls)
        self.retired_processes.add(process.seq, obj)
        if self.live is not None:
            self.live.retired_process(process, obj)

    def _dispatch(self, call, process, info, annotations) -> None:  # type: ignore[no-untyped-def]
        if self.calls_writer is not None:
            self.calls_writer(call, process, info, annotations)
        for observer in self.observers:
            observer(call, process, info, annotations)

    def feed(self, line: str) -> Event | tuple[PidAlias, Event] | PidAlias | None:
        """One line; returns what the parser made of it (None for an unfinished call, chatter or an
        unparsed line; a PidAlias, alone or with the line's event, when it names the first process)."""
        self._index += 1
        if type(line) is Overlong:
            self.parser.skip(line, self._index)
            return None
        if self.live is not None:
            with self.lock:
                event = self.parser.parse(line, self._index)
                if event is not None:
                    self.tracker.apply(event)
                if not self._index & 0xFF:
                    self.live.tick()
            return event
        event = self.parser.parse(line, self._index)
        if event is not None:
            self.tracker.apply(event)
            if self.event_observers and type(event) is not Call:
                for observer in self.event_observers:
                    observer(event)
        return event

    def feed_lines(self, lines, progress: Callable[[int], None] | None = None) -> None:  # type: ignore[no-untyped-def]
        parse = self.parser.parse
        apply = self.tracker.apply
        apply_call = self.tracker.apply_call
        index = self._index
        for line in lines:
            index += 1
            if type(line) is Overlong:
                self.parser.skip(line, index)
                continue
            event = parse(line, index)
            if type(event) is Call:
                apply_call(event)
            elif event is not None:
                apply(event)
                for observer in self.event_observers:
                    observer(event)
            if not index & 0xFFF:
                if self.live is not None:
                    self.live.tick()
                if progress is not None and not index & 0xFFFF:
                    progress(index)
        self._index = index

    def report(self) -> Report:
        stats = self.parser.stats
        return Report(
            lines=stats.lines,
            calls=self.tracker.calls,
            unparsed=stats.unparsed,
            unparsed_samples=list(stats.samples),
            orphan_resumes=stats.orphan_resumes,
            unattributed_data_calls=self.tracker.unattributed_data_calls,
            unfinished_at_end=len(self.parser.pending),
            problems=list(self.channels.problems) + (self.registry.problems if self.registry else []),
            tracebacks=list(self.channels.tracebacks) + (self.registry.tracebacks if self.registry else []),
            records=dict(self.spool.counts),
            channels=self.channels.stats["channels"],
            decoded_channels=self.channels.stats["decoded_channels"],
            duplicate_chunks=self.channels.stats["duplicate_chunks"],
            tls_without_plaintext=self.channels.stats.get("tls_without_plaintext", 0),
            plaintext_visible=self.channels.plaintext_visible,
            descriptors_not_tracked=self.model.socket_refs.refused,
        )

    def finish(self) -> Report:
        """Flush the decoders and write the summary and the calls file (atomically)."""
        try:
            if self.live is not None:  # the decoders' last records, and the digest they feed, are not
                with self.lock:  # read by `--serve`'s idle tick half-way
                    self.tracker.finish()
            else:
                self.tracker.finish()
        finally:
            self.watchdog.stop()
        report = self.report()
        if isinstance(self.calls_writer, BlocksWriter):
            self.calls_writer.flush_blocks()
            report.blocks = self.calls_writer.blocks_out
        if self.live is not None:
            with self.lock:
                self.live.finish(self.spool.table_objects(), report.statistics_object(), self.spool.digest_objects())
        classes = self.retired_processes.classes | set(self.retired_sockets.counts)
        objects = summary_objects(
            self.model,
            self.context,
            self.spool,
            report.statistics_object(),
            self.options.filters,
            self.retired_sockets,
            classes,
            self.retired_processes,
        )
        if self.options.summary_format == "XML":
            write_xml(objects, self.paths.summary, self.context.date)
        elif self.options.summary_format in ("JSON", "JSONL"):
            write_json(
                objects, self.paths.summary, self.context.date, lines=self.options.summary_format == "JSONL"
            )
        else:
            # The answers first: the digest on top, then the processes, files and records. In TXT the
            # Dockit_QueryDigest objects are that section; the objects' own blocks are not repeated.
            answers = digest_text(self.digest, self.context.date) if self.digest else ""
            objects = (obj for obj in objects if not answers or obj.cim_class != "Dockit_QueryDigest")
            write_txt(objects, self.paths.summary, self.context.date, answers)
        report.outputs.append(self.paths.summary)
        report.notes += [f.unmatched_note(classes) for f in self.options.filters if not f.matched]
        if self.calls_writer is not None:
            self.calls_writer.close()
            report.outputs.append(self.paths.calls)
        for bridge in self.bridges:
            report.outputs.append(bridge.commit())
        return report

    def abort(self) -> None:
        self.watchdog.stop()
        if self.calls_writer is not None:
            self.calls_writer.discard()
        for bridge in self.bridges:
            bridge.discard()


def print_report(report: Report, warnings: int, stream: TextIO | None = None, verbose: int = 0) -> None:
    """The end-of-run lines: counts always, each unparsed line and problem with -w."""
    stream = stream or sys.stderr
    decoded = ", ".join(f"{count} {name}" for name, count in sorted(report.records.items()))
    if report.lines or not decoded:
        stream.write(
            f"dockit: {report.lines} lines, {report.calls} calls"
            + (f", decoded: {decoded}" if decoded else "")
            + "\n"
        )
    else:  # a packet capture: no lines, no calls
        stream.write(f"dockit: decoded: {decoded}\n")
    if verbose and report.lines:
        stream.write(f"dockit: lines read by {accelerator.STATE}\n")
    if report.blocks is not None:
        ratio = f" ({report.calls / report.blocks:.1f} calls per block)" if report.blocks else ""
        stream.write(f"dockit: calls file: {report.calls} calls in, {report.blocks} blocks out{ratio}\n")
    if report.tls_without_plaintext and not report.plaintext_visible:
        stream.write(
            f"dockit: {report.tls_without_plaintext} TLS connection(s) whose plaintext crosses no system call: "
            "-t ltrace decodes it (OpenSSL, GnuTLS)\n"
        )
    if report.unparsed:
        stream.write(
            f"dockit: {report.unparsed} line(s) could not be parsed"
            + ("" if warnings else " (-w lists them)")
            + "\n"
        )
        if warnings:
            for index, line in report.unparsed_samples:
                stream.write(f"dockit: unparsed line {index}: {line}\n")
    if warnings and report.orphan_resumes:
        stream.write(
            f"dockit: {report.orphan_resumes} call(s) resumed without their start (trace attached mid-run)\n"
        )
    if warnings and report.unattributed_data_calls:
        stream.write(f"dockit: {report.unattributed_data_calls} data call(s) whose fd was not in the trace\n")
    for problem in report.problems:
        if warnings or "failed" in problem or "skipped" in problem or "stopped" in problem or "returned" in problem:
            stream.write(f"dockit: {problem}\n")
    if verbose:
        for text in report.tracebacks:
            stream.write("".join(f"dockit:   {line}\n" for line in text.rstrip("\n").split("\n")))
    if report.descriptors_not_tracked:
        stream.write(
            f"dockit: {report.descriptors_not_tracked} descriptor(s) opened past the {SocketRefs.LIMIT} held at "
            "once were not tracked (their calls are known by their -y decoration only)\n"
        )
    for note in report.notes:
        stream.write(f"dockit: {note}\n")
    for output in report.outputs:
        stream.write(f"dockit: wrote {output}\n")


def write_dockerfile_if_asked(
    session: TraceSession, options: Options, environment: dict[str, str], report: Report
) -> None:
    if not options.dockerfile:
        return
    try:
        from dockit_core.outputs.docker.dockerfile import write_dockerfile
    except ImportError:
        sys.stderr.write("dockit: -D: the Dockerfile writer is not available in this version\n")
        return
    written = write_dockerfile(
        session.model, session.context, session.paths.docker_dir, environment, options.copy_from_host
    )
    report.outputs.append(written)
