"""The summary rendered: XML (streamed, escaped as lxml does) for tools, TXT for a person. Both take CimObjects."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable

from decoders.records import AttrValue, CimChild, CimObject, Duration, Time
from dockit_core import __version__
from dockit_core.outputs.atomic import atomic_open
from dockit_core.outputs.summary.objects import Rendered, format_time
from dockit_core.outputs.xmltext import xml_safe

# Untyped objects only (`CimObject.make` with a plain float, as decoders wrote before typed records):
# a float under one of these names is a time. A `Time` or `Duration` value is written by its type,
# whatever its name; the built-in records and every `RecordType` give typed values.
LEGACY_TIME_ATTRIBUTES = frozenset({"Start", "End"})


def attribute_text(name: str, value: AttrValue, date: str | None) -> str:
    kind = type(value)
    if kind is Time:
        return format_time(value, date) or ""  # type: ignore[arg-type]
    if kind is Duration:
        return f"{value:.6f}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if name in LEGACY_TIME_ATTRIBUTES:
            return format_time(value, date) or ""
        return f"{value:.6f}"
    return xml_safe(str(value))


# What libxml2 (lxml's serializer) escapes, and how: in attribute values, and in text. Every value went
# through xml_safe, so no character XML cannot hold is left.
_ATTRIBUTE_SPECIALS = re.compile('[&<>"\n\r\t]')
_ATTRIBUTE_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}
)
_TEXT_SPECIALS = re.compile("[&<>\r]")
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})


_NAME = re.compile(r"[A-Za-z_][\w.-]*\Z")
_checked_names: dict[str, str] = {}


def xml_name(name: str) -> str:
    """An element or attribute name as XML allows it: a third-party decoder's odd name (a space, a
    leading digit) is written with those characters replaced, never as broken XML."""
    found = _checked_names.get(name)
    if found is None:
        found = name if _NAME.match(name) and not name.lower().startswith("xml") else _fix_name(name)
        _checked_names[name] = found
    return found


def _fix_name(name: str) -> str:
    fixed = re.sub(r"[^\w.-]", "_", name, flags=re.ASCII) or "_"
    return fixed if re.match(r"[A-Za-z_]", fixed) and not fixed.lower().startswith("xml") else "_" + fixed


_attribute_opening: dict[str, str] = {}  # "Name" -> ' Name="'


# A value with none of these needs neither xml_safe nor escaping: one search instead of two.
_ATTRIBUTE_PLAIN_BREAKERS = re.compile('[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff&<>"\n\r\t]')


def _tag_with_attributes(tag: str, attrs: Iterable[tuple[str, AttrValue]], date: str | None) -> str:
    """`<tag a="..."` with the attributes as `attribute_text` writes them, escaped as libxml2 does, in one
    pass: an int is written as it is (digits have nothing to escape), a plain str too; anything else is
    made XML-safe, then escaped."""
    values = {}
    for name, value in attrs:
        if value is None:
            continue
        kind = type(value)
        if kind is int:
            values[name] = str(value)
        elif kind is str and not _ATTRIBUTE_PLAIN_BREAKERS.search(value):  # type: ignore[arg-type]
            values[name] = value
        else:
            text = xml_safe(value) if kind is str else attribute_text(name, value, date)  # type: ignore[arg-type]
            if _ATTRIBUTE_SPECIALS.search(text):
                text = text.translate(_ATTRIBUTE_ESCAPES)
            values[name] = text
    parts = ["<", _checked_names.get(tag) or xml_name(tag)]
    openings = _attribute_opening
    for name, text in values.items():
        opening = openings.get(name)
        if opening is None:
            opening = openings[name] = f' {xml_name(name)}="'
        parts += (opening, text, '"')
    return "".join(parts)


_last_child: list[object] = [None, None, ""]  # the last child written, its date and its markup


def element_markup(obj: CimObject, date: str | None) -> str:
    """One object as lxml would serialize it (`<Tag a="1"><Child/>...</Tag>`), written by hand:
    building lxml elements cost more than the rest of the summary for a directory walk's 50k files."""
    markup = _tag_with_attributes(obj.cim_class, obj.attrs, date)
    if not obj.children:
        return markup + "/>"
    parts = [markup, ">"]
    _children_markup(parts, obj.children, date)
    parts += ("</", _checked_names.get(obj.cim_class) or xml_name(obj.cim_class), ">")
    return "".join(parts)


def _children_markup(parts: list[str], children: Iterable[CimChild], date: str | None) -> None:
    last = _last_child
    for child in children:
        if child is last[0] and date == last[1]:
            parts.append(last[2])  # the same (immutable) child as the last one: a file's usual Access
            continue
        child_markup = _tag_with_attributes(child.tag, child.attrs, date)
        if child.text is None:
            child_markup += "/>"
        else:
            text = xml_safe(child.text)
            if _TEXT_SPECIALS.search(text):
                text = text.translate(_TEXT_ESCAPES)
            child_markup += f">{text}</{_checked_names.get(child.tag) or xml_name(child.tag)}>"
        last[:] = (child, date, child_markup)
        parts.append(child_markup)


_STREAMED_SLICE = 1024  # children of a streamed object rendered and written at once


def _write_streamed_xml(write: Callable[[str], object], obj: CimObject, date: str | None) -> None:
    """An object whose children are made as they are read (see StreamedChildren): written a slice of
    children at a time, so that its markup is never whole in memory."""
    write("\n" + _tag_with_attributes(obj.cim_class, obj.attrs, date))
    if not obj.children:
        write("/>")
        return
    write(">")
    children = iter(obj.children)
    while piece := list(itertools.islice(children, _STREAMED_SLICE)):
        parts: list[str] = []
        _children_markup(parts, piece, date)
        write("".join(parts))
    write(f"</{_checked_names.get(obj.cim_class) or xml_name(obj.cim_class)}>")


def renderer(summary_format: str, date: str | None) -> Callable[[CimObject], str]:
    """What a summary object becomes in the chosen format, made as soon as a decoder emits it: the
    spool keeps text, not objects to pickle and unpickle (that cost more than rendering)."""
    if summary_format == "XML":
        return lambda obj: element_markup(obj, date)
    if summary_format in ("JSON", "JSONL"):
        from dockit_core.outputs.summary.json_writer import json_renderer

        return json_renderer(date)
    return lambda obj: txt_block(obj, date)


def write_xml(objects: Iterable[CimObject | Rendered], path: str, date: str | None) -> int:
    """Write `<Dockit>` with one element per object, one per line; returns how many were written."""
    count = 0
    with atomic_open(path, "w", encoding="utf-8", newline="") as stream:
        write = stream.write
        write(f"<?xml version='1.0' encoding='utf-8'?>\n{_tag_with_attributes('Dockit', (('Version', __version__),), None)}>")
        for obj in objects:
            if type(obj) is not Rendered and type(obj.children) is not tuple:  # type: ignore[union-attr]
                _write_streamed_xml(write, obj, date)  # type: ignore[arg-type]
            else:
                write("\n" + (obj.text if type(obj) is Rendered else element_markup(obj, date)))  # type: ignore[union-attr,arg-type]
            count += 1
        write("\n</Dockit>")
    return count


def txt_block(obj: CimObject, date: str | None) -> str:
    """One object for a person: its attributes on a line, then one indented line per child."""
    attrs = "  ".join(
        f"{name}={attribute_text(name, value, date)}" for name, value in obj.attrs if value is not None
    )
    lines = [f"{attrs}\n"]
    lines += (_txt_child(child, date) for child in obj.children)
    return "".join(lines)


def _txt_child(child: CimChild, date: str | None) -> str:
    child_attrs = " ".join(
        f"{name}={attribute_text(name, value, date)}" for name, value in child.attrs if value is not None
    )
    if child.tag == "Row" and child.text is not None:
        # A sampled row as `mariadb --batch` writes it, byte for byte (the file is written with
        # surrogateescape: a byte that was not UTF-8 comes out as it came in)
        return f"    Row: {child.text}\n"
    text = f" {xml_safe(child.text)}" if child.text is not None else ""
    return f"    {child.tag}{':' if text or child_attrs else ''}{' ' + child_attrs if child_attrs else ''}{text}\n"


def write_txt(objects: Iterable[CimObject | Rendered], path: str, date: str | None, answers: str = "") -> int:
    """The same objects for a person: `answers` first (the query digest), then one block per object,
    grouped by class."""
    count = 0
    last_class = None
    with atomic_open(path, "w", encoding="utf-8", errors="surrogateescape") as out:
        out.write(f"dockit {__version__} summary\n")
        if answers:
            out.write("\n" + answers)
        for obj in objects:
            if obj.cim_class != last_class:
                out.write(f"\n== {obj.cim_class} ==\n")
                last_class = obj.cim_class
            if type(obj) is not Rendered and type(obj.children) is not tuple:  # type: ignore[union-attr]
                out.write(txt_block(CimObject(obj.cim_class, obj.attrs), date))  # type: ignore[arg-type]
                for child in obj.children:  # type: ignore[union-attr]
                    out.write(_txt_child(child, date))
            else:
                out.write(obj.text if type(obj) is Rendered else txt_block(obj, date))  # type: ignore[union-attr,arg-type]
            count += 1
    return count
