"""`dockit -i capture.pcap`: a packet capture (pcap or pcapng, plain or gzip) read as a trace without
processes: each TCP connection and UDP flow becomes a channel for the same decoders, so a tcpdump
capture gets the summary's queries, sessions and HTTP exchanges. There is no calls file (a capture
holds no calls), and the summary says that no process is known."""

from __future__ import annotations

import argparse
import os
import sys
import zlib

from dockit_core.cli.arguments import UsageError, make_registry
from dockit_core.cli.options import Options, OutputPaths
from dockit_core.cli.serving import end_serving, serve_if_asked

NO_PROCESS_NOTE = "a packet capture shows no processes: Process is 0 on what was decoded"


def replay_capture(path: str, stem: str, args: argparse.Namespace, options: Options) -> int:
    from decoders.records import CimObject
    from dockit_core.cli.session import TraceSession, print_report
    from dockit_core.ingest.pcap.frames import parse_frame
    from dockit_core.ingest.pcap.reader import CaptureError, capture_format, read_frames
    from dockit_core.ingest.pcap.reassembly import Reassembler
    from dockit_core.model.captured import CapturedFlows
    from dockit_core.outputs.summary.objects import RunContext

    if options.dockerfile:
        raise UsageError("-D needs a trace: a packet capture shows no files or programs")
    options.write_calls = False
    for suffix in (".pcapng", ".pcap", ".cap"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    context = RunContext(tracer="pcap", os_type="")
    paths = OutputPaths(args.log or stem, options.calls_format, options.summary_format)
    session = TraceSession(options, context, paths, registry=make_registry(options))
    serving = serve_if_asked(args, session, [path], "capture", tick_when_idle=False)
    flows = CapturedFlows(session.model, session.channels, session._retire_socket)
    reassembler = Reassembler()
    frames = other = 0
    time = 0.0
    try:
        for frame in read_frames(path):
            frames += 1
            time = frame.time
            segment = parse_frame(frame.linktype, frame.data, frame.wire_length)
            if segment is None:
                other += 1
                continue
            for event in reassembler.feed(segment, frame.time):
                flows.apply(event)
            if session.live is not None and not frames & 0xFFF:
                session.live.tick()
        for event in reassembler.finish(time):
            flows.apply(event)
        flows.finish()
    except CaptureError as error:
        session.abort()
        raise UsageError(f"{path}: {error}") from error
    except (OSError, EOFError, zlib.error) as error:
        session.abort()
        raise UsageError(f"{path}: cannot read: {error}") from error
    except BaseException:
        session.abort()
        raise
    session.tracker.last_time = time
    stats = reassembler.stats
    session.spool.add(
        CimObject.make(
            "Dockit_Capture",
            {
                "File": os.path.abspath(path),
                "Format": capture_format(path),
                "Frames": frames,
                "OtherFrames": other,
                "Flows": stats["flows"],
                "Retransmitted": stats["retransmitted"],
                "LostBytes": stats["lost_bytes"],
                "Processes": "none: a packet capture shows no processes",
            },
        )
    )
    report = session.finish()
    sys.stderr.write(
        f"dockit: {path}: {frames} frames, {stats['flows']} flows ({other} frames carried no TCP or UDP), "
        f"{stats['lost_bytes']} bytes lost by the capture\n"
        f"dockit: {NO_PROCESS_NOTE}\n"
    )
    print_report(report, options.warnings)
    end_serving(serving, args)
    return 0
