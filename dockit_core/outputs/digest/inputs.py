"""The records of a finished run read back from its XML summary, for `dockit report`: streamed, one
top-level element at a time, so that a summary of a million queries costs one element of memory."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator

from decoders.records import AttrValue, CimChild, CimObject
from dockit_core.outputs.digest.digest import KINDS


class NotASummary(Exception):
    """The file is no dockit XML summary (or is damaged): its message says where."""


def parse_time(text: str) -> float | None:
    """A `Start` as the summary writes it (see summary.objects.format_time) back to seconds: ISO 8601
    with an offset (epoch seconds), without one (the log's date and time of day, read as UTC), or a
    time of day alone (seconds since midnight)."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        hours, _, rest = text.partition(":")
        minutes, _, seconds = rest.partition(":")
        try:
            return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        except ValueError:
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def summary_records(path: str) -> Iterator[CimObject]:
    """The queries, commands and requests of an XML summary, as the run's decoders emitted them (the
    attributes the digest reads: Start as seconds, the rest as text)."""
    depth = 0
    root = None
    try:
        for event, element in ElementTree.iterparse(path, events=("start", "end")):
            if event == "start":
                if root is None:
                    root = element
                    if element.tag != "Dockit":
                        raise NotASummary(f"its root element is <{element.tag[:40]}>, not <Dockit>")
                depth += 1
                continue
            depth -= 1
            if depth != 1:
                continue
            if element.tag in KINDS:
                yield _record(element)
            root.clear()  # type: ignore[union-attr]  # each object forgotten once read
    except ElementTree.ParseError as error:
        raise NotASummary(f"not well-formed XML ({error})") from error
    if root is None:
        raise NotASummary("no XML element in it")


def _record(element: ElementTree.Element) -> CimObject:
    attrs: dict[str, AttrValue] = dict(element.attrib)
    start = attrs.get("Start")
    attrs["Start"] = parse_time(start) if isinstance(start, str) else None
    children = tuple(CimChild(child.tag, tuple(child.attrib.items()), child.text) for child in element)
    return CimObject.make(element.tag, attrs, children)
