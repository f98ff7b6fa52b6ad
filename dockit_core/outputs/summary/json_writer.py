"""The summary as JSON (`-F JSON`): the XML summary's objects, for scripts (jq) rather than XML tools.

One object is `{"class": "Dockit_SqlQuery", "attributes": {...}, "children": [{"tag": "Table",
"attributes": {...}, "text": "..."}]}`: the XML element's name, attributes and child elements, in the
same order. Values keep their type where JSON has one: integers are numbers, durations are numbers of
seconds, booleans are true/false, times are the XML's ISO 8601 strings, every other value the XML's
text (made valid the same way: a byte that was not UTF-8 or a control character as `\\xNN`). The
contract is docs/summary.schema.json.

Two layouts: one document, `{"Version": "...", "objects": [...]}` (`P.summary.json`), or JSON Lines
(`--stream`, `P.summary.jsonl`), one object a line. Both are written when the run ends, from the
summary's spool (objects rendered as they came, kept on disk): memory does not grow with the number of
objects, and an object whose children are streamed (a file's accesses) is written a slice at a time.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable

from decoders.records import AttrValue, CimChild, CimObject, Duration, Time
from dockit_core import __version__
from dockit_core.outputs.atomic import atomic_open
from dockit_core.outputs.summary.objects import Rendered, format_time
from dockit_core.outputs.xmltext import xml_safe

LEGACY_TIME_ATTRIBUTES = frozenset(
    {"Start", "End"}
)  # as writers.py: an untyped float under these names is a time
_SLICE = 1024  # children of a streamed object written at once

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def json_value(name: str, value: AttrValue, date: str | None) -> object:
    """An attribute's value, typed where JSON can say it."""
    kind = type(value)
    if kind is int or kind is bool:
        return value
    if kind is Time:
        return format_time(value, date)  # type: ignore[arg-type]
    if kind is Duration:
        return round(float(value), 6)  # type: ignore[arg-type]
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return format_time(value, date) if name in LEGACY_TIME_ATTRIBUTES else round(value, 6)
    return xml_safe(str(value))


def _attributes(attrs: Iterable[tuple[str, AttrValue]], date: str | None) -> dict[str, object]:
    return {name: json_value(name, value, date) for name, value in attrs if value is not None}


def _child(child: CimChild, date: str | None) -> dict[str, object]:
    found: dict[str, object] = {"tag": child.tag, "attributes": _attributes(child.attrs, date)}
    if child.text is not None:
        found["text"] = xml_safe(child.text)
    return found


def json_object(obj: CimObject, date: str | None) -> str:
    """One object as one line of JSON."""
    return _encode(
        {
            "class": obj.cim_class,
            "attributes": _attributes(obj.attrs, date),
            "children": [_child(child, date) for child in obj.children],
        }
    )


def json_renderer(date: str | None) -> Callable[[CimObject], str]:
    return lambda obj: json_object(obj, date)


def _write_streamed(write: Callable[[str], object], obj: CimObject, date: str | None) -> None:
    """An object whose children are made as they are read, a slice of children at a time."""
    head = json_object(CimObject(obj.cim_class, obj.attrs), date)
    write(head[: -len("[]}")] + "[")
    children = iter(obj.children)
    first = True
    while piece := list(itertools.islice(children, _SLICE)):
        text = ",".join(_encode(_child(child, date)) for child in piece)
        write(text if first else "," + text)
        first = False
    write("]}")


def write_json(objects: Iterable[CimObject | Rendered], path: str, date: str | None, lines: bool) -> int:
    """Write the summary as one JSON document, or as JSON Lines when `lines`; returns the objects written."""
    count = 0
    with atomic_open(path, "w", encoding="utf-8", newline="") as stream:
        write = stream.write
        if not lines:
            write('{"Version":' + _encode(__version__) + ',"objects":[')
        for obj in objects:
            if count and not lines:
                write(",")
            if not lines:
                write("\n")
            if type(obj) is not Rendered and type(obj.children) is not tuple:  # type: ignore[union-attr]
                _write_streamed(write, obj, date)  # type: ignore[arg-type]
            else:
                write(obj.text if type(obj) is Rendered else json_object(obj, date))  # type: ignore[union-attr,arg-type]
            if lines:
                write("\n")
            count += 1
        if not lines:
            write("\n]}\n")
    return count
