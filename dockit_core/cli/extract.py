"""`dockit extract LOG`: the channels of a saved trace (id, kind, ends, bytes, which decoder claims
it); with `--channel ID`, that channel's chunks as a fixture file for a decoder's tests
(`decoders.testing.load_chunks`, `replay`): the bytes exactly as dockit would feed them (each byte
once, directions from the traced process's end, times, pids, calls, bytes the tracer lost).
`--decoder MODULE:CLASS` adds a class to those that may claim a channel in the listing, as a run given
`--decoder` would: a plugin being written, not installed yet, shows its name."""

from __future__ import annotations

import argparse
import re
import sys
from typing import IO

from decoders.api import ChannelInfo, Chunk, Decoder, Direction
from decoders.registry import DecoderLoadError, Registry
from decoders.testing.chunks import chunk_header, format_fixture, hexdump
from dockit_core.cli.arguments import UsageError, run_subcommand


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dockit extract",
        description="List the channels (socket connections, pipe links) of a saved trace, or write one "
        "channel's chunks as a fixture file that decoders.testing loads.",
    )
    parser.add_argument("log", metavar="LOG", help="a strace or ltrace log (plain or gzip)")
    parser.add_argument(
        "--channel", metavar="ID", help="the channel to write (as `dockit extract LOG` lists it)"
    )
    parser.add_argument(
        "--decoder",
        action="append",
        default=[],
        metavar="MODULE:CLASS",
        help="also let this decoder class claim channels in the listing, as a run given --decoder would "
        "(repeatable): a plugin not installed yet shows its name",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="where to write the fixture (default: LOGSTEM.CHANNEL.chunks beside the log; - for stdout)",
    )
    return parser


class _Seen:
    """What extraction knows of one channel."""

    def __init__(self, info: ChannelInfo) -> None:
        self.info = info
        self.chunks = 0
        self.bytes = {Direction.OUT: 0, Direction.IN: 0}
        self.first: dict[Direction, bytes] = {Direction.OUT: b"", Direction.IN: b""}


def _recorder(
    wanted: str | None, seen: dict[str, _Seen], write: IO[str] | None, source: str
) -> type[Decoder]:
    """A decoder that claims every channel and keeps what extraction needs (the wanted channel's chunks
    go straight to the file: memory does not grow with the channel)."""

    class Recorder(Decoder):
        name = "extract"

        @classmethod
        def score(cls, data: bytes, direction: Direction, channel: ChannelInfo) -> int:
            return 100

        def __init__(self, channel: ChannelInfo) -> None:
            super().__init__(channel)
            self.seen = seen.setdefault(channel.channel_id, _Seen(channel))
            self.writing = write is not None and channel.channel_id == wanted
            if self.writing:
                assert write is not None
                write.writelines(format_fixture(channel, (), source))

        def feed(self, chunk: Chunk) -> list:
            seen = self.seen
            seen.chunks += 1
            seen.bytes[chunk.direction] += chunk.size
            if len(seen.first[chunk.direction]) < 48:
                seen.first[chunk.direction] = (seen.first[chunk.direction] + chunk.data)[:48]
            if self.writing:
                assert write is not None
                write.write(chunk_header(chunk) + "\n")
                if chunk.data:
                    write.write(hexdump(chunk.data, "  ") + "\n")
            return []

    return Recorder


def _run(log_path: str, registry: Registry) -> None:
    from dockit_core.cli.replay import default_pid, log_stem, open_log
    from dockit_core.ingest.strace_parser import StraceParser
    from dockit_core.model import Model
    from dockit_core.model.channels import ChannelManager
    from dockit_core.model.tracker import Tracker
    from dockit_core.outputs.ini import read_ini

    ini = read_ini(log_stem(log_path) + ".ini")
    top = default_pid(log_path, ini)
    model = Model()
    model.root_pid = top
    manager = ChannelManager(registry, lambda _record: None)
    tracker = Tracker(model, manager)
    parser = StraceParser(top)
    with open_log(log_path) as stream:
        for index, line in enumerate(stream, start=1):
            event = parser.parse(line, index)
            if event is not None:
                tracker.apply(event)
    tracker.finish()


def _claimer(info: _Seen, real: Registry) -> str:
    for direction in (Direction.OUT, Direction.IN):
        data = info.first[direction]
        if data:
            chosen = real.choose(data, direction, info.info)
            if chosen is not None:
                return chosen.name
    return "-"


def table(rows: list[tuple[str, ...]]) -> str:
    """Rows as aligned columns (the last one left as it is)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1] + "\n"
        for row in rows
    )


def default_output(log_path: str, channel_id: str) -> str:
    from dockit_core.cli.replay import log_stem

    return f"{log_stem(log_path)}.{re.sub(r'[^A-Za-z0-9.-]+', '_', channel_id).strip('_')}.chunks"


def main(args: list[str]) -> int:
    options = build_parser().parse_args(args)
    return run_subcommand(lambda: _main(options))


def _main(options: argparse.Namespace) -> int:
    from dockit_core.cli.replay import open_log
    from dockit_core.outputs.atomic import AtomicStream

    open_log(options.log).close()  # one clear line for a missing, empty or unreadable log
    try:
        real = Registry.default(options.decoder)  # a wrong --decoder is a usage error before the log is read
    except DecoderLoadError as error:
        raise UsageError(str(error)) from error
    seen: dict[str, _Seen] = {}
    if options.channel is None:
        _run(options.log, Registry([_recorder(None, seen, None, options.log)]))
        rows = [("CHANNEL", "KIND", "DECODER", "CHUNKS", "BYTES-OUT", "BYTES-IN", "LOCAL -> REMOTE")]
        for channel_id, info in seen.items():
            rows.append(
                (
                    channel_id,
                    info.info.kind,
                    _claimer(info, real),
                    str(info.chunks),
                    str(info.bytes[Direction.OUT]),
                    str(info.bytes[Direction.IN]),
                    f"{info.info.local or '?'} -> {info.info.remote or '?'}",
                )
            )
        sys.stdout.write(table(rows))
        if not seen:
            sys.stderr.write("dockit: no socket or pipe carried data in this trace\n")
        return 0
    target = options.output or default_output(options.log, options.channel)
    if target == "-":
        _run(options.log, Registry([_recorder(options.channel, seen, sys.stdout, options.log)]))
    else:
        stream = AtomicStream(target, "w", encoding="ascii", newline="\n")
        try:
            _run(options.log, Registry([_recorder(options.channel, seen, stream.stream, options.log)]))
        except BaseException:
            stream.discard()
            raise
        if options.channel in seen:
            stream.commit()
        else:
            stream.discard()
    if options.channel not in seen:
        known = ", ".join(seen) or "none carried data"
        raise UsageError(f"no channel {options.channel!r} in {options.log} (channels: {known})")
    if target != "-":
        info = seen[options.channel]
        sys.stderr.write(f"dockit: wrote {target} ({info.chunks} chunks)\n")
    return 0
