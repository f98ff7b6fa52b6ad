"""Feed chunks to a decoder and collect what it returns, checking each output against the contract (a
wrong type raises here, in the test, where dockit itself would only report it)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from decoders.api import ChannelInfo, Chunk, Decoder, DecoderOptions
from decoders.records import Annotation, CimObject, Problem, Record, Secret, as_cim
from decoders.testing.chunks import channel as make_channel
from decoders.testing.variants import variants

__all__ = ["Decoded", "assert_never_raises", "assert_same_records", "decode"]


@dataclass
class Decoded:
    """What a decoder made of a conversation (or `replay` of a log): summary records (every `Record`
    already as its `CimObject`), annotations, the calls named as secrets, the problems it reported, and
    (from `replay`) the lines dockit printed about decoders that failed."""

    records: list[CimObject] = field(default_factory=list)
    annotations: list[Annotation] = field(default_factory=list)
    secrets: list[int] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def of(self, cim_class: str) -> list[CimObject]:
        """The records of one summary class."""
        return [r for r in self.records if r.cim_class == cim_class]

    def attrs(self, cim_class: str | None = None) -> list[dict[str, object]]:
        """Each record's attributes as a dict (of one class, or all)."""
        return [dict(r.attrs) for r in self.records if cim_class is None or r.cim_class == cim_class]

    def table(self, *names: str, cim_class: str | None = None) -> list[tuple[object, ...]]:
        """The named attributes of each record, as tuples: easy to compare with what a test expects."""
        return [tuple(row.get(name) for name in names) for row in self.attrs(cim_class)]

    def notes(self) -> list[str]:
        """The annotations' texts, in order."""
        return [a.text for a in self.annotations]


def _instance(
    decoder: type[Decoder] | Decoder, info: ChannelInfo | None, options: DecoderOptions | None
) -> Decoder:
    if isinstance(decoder, Decoder):
        return decoder
    if info is None:
        ports = sorted(getattr(decoder, "ports", ()) or ())
        info = make_channel(ports[0] if ports else 9)
    instance = decoder(info)
    if options is not None:
        instance.options = options
    return instance


def collect(outputs: object, into: Decoded, where: str) -> None:
    if outputs is None:
        return
    if isinstance(outputs, (str, bytes)) or not hasattr(outputs, "__iter__"):
        raise TypeError(
            f"{where} returned {type(outputs).__name__} {outputs!r:.60}, not a sequence of outputs"
        )
    for output in outputs:
        if isinstance(output, Annotation):
            if type(output.call_index) is not int or not isinstance(output.text, str):
                raise TypeError(f"{where} returned {output!r:.80}: an Annotation needs (int, str)")
            into.annotations.append(output)
        elif isinstance(output, Secret):
            if type(output.call_index) is not int:
                raise TypeError(f"{where} returned {output!r:.80}: a Secret needs an int call_index")
            into.secrets.append(output.call_index)
        elif isinstance(output, Problem):
            if output.severity not in ("note", "warning", "error") or not isinstance(output.message, str):
                raise TypeError(f"{where} returned {output!r:.80}: severity must be note, warning or error")
            into.problems.append(output)
        elif isinstance(output, (Record, CimObject)):
            into.records.append(as_cim(output))
        else:
            raise TypeError(
                f"{where} returned {type(output).__name__} {output!r:.60}, which is not an output "
                "(CimObject, Record, Annotation, Secret, Problem)"
            )


def decode(
    decoder: type[Decoder] | Decoder,
    chunks: Iterable[Chunk],
    channel: ChannelInfo | None = None,
    *,
    options: DecoderOptions | None = None,
    close: bool = True,
    end_time: float | None = None,
) -> Decoded:
    """Feed every chunk to `decoder` (a class, made with `channel`, or an instance), then `close` it;
    return what it returned. `channel` defaults to a client of 127.0.0.1 on the decoder's first port.
    A decoder's exception goes through (a test should see it), and so does an output of a wrong type,
    as TypeError."""
    instance = _instance(decoder, channel, options)
    result = Decoded()
    last_time = None
    for item in chunks:
        collect(instance.feed(item), result, f"{type(instance).__name__}.feed")
        last_time = item.time if item.time is not None else last_time
    if close:
        collect(
            instance.close(end_time if end_time is not None else last_time),
            result,
            f"{type(instance).__name__}.close",
        )
    return result


def assert_same_records(
    decoder: type[Decoder],
    chunks: Sequence[Chunk],
    channel: ChannelInfo | None = None,
    *,
    options: DecoderOptions | None = None,
    seeds: Iterable[int] = range(5),
    notes: bool = True,
) -> Decoded:
    """Decode `chunks` whole, byte by byte and in random splits (one seed each); every way must give
    the same records (and annotation texts, unless `notes=False`). Returns the whole decoding."""
    expected = decode(decoder, chunks, channel, options=options)
    for label, variant in variants(chunks, seeds):
        got = decode(decoder, variant, channel, options=options)
        assert got.records == expected.records, (
            f"{label}: records differ from the whole conversation's\n" + _diff(expected.records, got.records)
        )
        if notes:
            assert got.notes() == expected.notes(), (
                f"{label}: annotations differ: {got.notes()} != {expected.notes()}"
            )
    return expected


def _diff(expected: list[CimObject], got: list[CimObject]) -> str:
    lines = []
    for n in range(max(len(expected), len(got))):
        a = expected[n] if n < len(expected) else None
        b = got[n] if n < len(got) else None
        if a != b:
            lines.append(f"  #{n}: expected {a}\n       got      {b}")
    return "\n".join(lines[:5])


def assert_never_raises(
    decoder: type[Decoder], chunk_lists: Iterable[Sequence[Chunk]], channel: ChannelInfo | None = None
) -> None:
    """Feed each list of chunks (garbage, cut conversations...) to a fresh decoder, then close it: no
    exception, and only outputs of the contract's types."""
    for chunks in chunk_lists:
        decode(decoder, chunks, channel)
