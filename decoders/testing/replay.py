"""`replay(path, decoder=...)`: the records a decoder makes of a saved trace, a fixture file or a packet
capture, through dockit's own pipeline (detection by score, each byte once, isolation of a failing
decoder, held calls for late secrets), without writing any file."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from decoders.api import ChannelInfo, Decoder, DecoderOptions, Direction
from decoders.records import Annotation, CimObject, Problem
from decoders.registry import Registry, load_reference
from decoders.testing.chunks import FIXTURE_MAGIC, load_chunks
from decoders.testing.pcap import is_capture, read_capture
from decoders.testing.run import Decoded

__all__ = ["replay"]

PROBLEM_CLASS = "Dockit_DecoderProblem"


class _Forced(Registry):
    """Every channel goes to the first decoder, whatever its score says (a capture that began after the
    greeting, a protocol with no greeting)."""

    def choose(self, data: bytes, direction: Direction, channel: ChannelInfo) -> type[Decoder] | None:
        return self.classes[0] if self.classes else None


def _classes(decoder: object) -> list[type[Decoder]]:
    if decoder is None:
        return []
    items = decoder if isinstance(decoder, (list, tuple)) else [decoder]
    return [load_reference(item) if isinstance(item, str) else item for item in items]  # type: ignore[misc]


def replay(
    path: str | Path,
    decoder: type[Decoder] | str | Iterable[type[Decoder] | str] | None = None,
    *,
    builtins: bool = False,
    force: bool = False,
    decode: dict[int, str] | None = None,
    rows: int = 0,
) -> Decoded:
    """The outputs of `decoder` (a class, a "module:Class" reference, or a list of them) on a saved
    strace/ltrace log (plain or gzip), a fixture file from `dockit extract`, or a pcap/pcapng capture.

    Channels are claimed by score as in a real run; `builtins=True` lets the built-in decoders compete
    too, `force=True` gives every channel to `decoder` without scoring, and `decode={port: name}` is
    `--decode`. `rows` is `--rows`. The result's `records` are the summary objects (as CimObjects),
    `annotations` the calls-file notes (on the call each lands on), `secrets` the calls the
    `--each-call` file hides, `problems` the `Problem`s reported and `failures` dockit's lines about
    decoders that raised, returned wrong outputs or were stopped."""
    classes = _classes(decoder)
    if force:
        if not classes:
            raise ValueError("force=True needs a decoder")
        registry: Registry = _Forced(classes)
    elif builtins:
        registry = Registry.default(
            [f"{c.__module__}:{c.__qualname__}" for c in classes], decode, plugins=False
        )
    else:
        registry = Registry(classes, decode)
    path = Path(path)
    with open(path, "rb") as stream:
        head = stream.read(len(FIXTURE_MAGIC))
    if head == FIXTURE_MAGIC.encode():
        return _replay_chunks([load_chunks(path)], registry, rows)
    if is_capture(path):
        return _replay_chunks(read_capture(path), registry, rows)
    return _replay_log(path, registry, rows)


def _result(records: list[CimObject], manager, registry: Registry) -> Decoded:  # type: ignore[no-untyped-def]
    result = Decoded()
    for record in records:
        if record.cim_class == PROBLEM_CLASS:
            attrs = dict(record.attrs)
            result.problems.append(
                Problem(str(attrs.get("Severity")), str(attrs.get("Message")), attrs.get("Line"))  # type: ignore[arg-type]
            )
        else:
            result.records.append(record)
    result.failures = list(manager.problems) + list(registry.problems)
    return result


def _replay_chunks(fixtures, registry: Registry, rows: int) -> Decoded:  # type: ignore[no-untyped-def]
    from dockit_core.model.channels import ChannelManager

    records: list[CimObject] = []
    manager = ChannelManager(registry, records.append, DecoderOptions(rows=rows))
    manager.holding_calls = True  # a Secret marks every call of its message, as --each-call hides them
    annotations: list[Annotation] = []
    for fixture in fixtures:
        for chunk in fixture.chunks:
            manager.feed_chunk(fixture.channel, chunk)
    manager.close(None)
    for index in sorted(manager.annotations):
        annotations += [Annotation(index, text) for text in manager.annotations[index]]
    result = _result(records, manager, registry)
    result.annotations = annotations
    result.secrets = sorted(manager.secret_calls)
    return result


def _replay_log(path: Path, registry: Registry, rows: int) -> Decoded:
    from dockit_core.cli.replay import default_pid, log_stem, open_log
    from dockit_core.ingest.strace_parser import StraceParser
    from dockit_core.model import Model
    from dockit_core.model.channels import ChannelManager
    from dockit_core.model.held_calls import HeldCalls
    from dockit_core.model.tracker import Tracker
    from dockit_core.outputs.ini import read_ini

    records: list[CimObject] = []
    manager = ChannelManager(registry, records.append, DecoderOptions(rows=rows))
    annotations: list[Annotation] = []
    secrets: list[int] = []

    def sink(call, process, info, notes) -> None:  # type: ignore[no-untyped-def]
        annotations.extend(Annotation(call.index, text) for text in notes)
        if info.secret:
            secrets.append(call.index)

    ini = read_ini(log_stem(str(path)) + ".ini")
    top = default_pid(str(path), ini)
    model = Model()
    model.root_pid = top
    tracker = Tracker(model, manager, call_sink=sink)
    tracker.held_calls = HeldCalls(manager, sink)
    parser = StraceParser(top)
    with open_log(str(path)) as stream:
        for index, line in enumerate(stream, start=1):
            event = parser.parse(line, index)
            if event is not None:
                tracker.apply(event)
    tracker.finish()
    result = _result(records, manager, registry)
    result.annotations = annotations
    result.secrets = secrets
    return result
