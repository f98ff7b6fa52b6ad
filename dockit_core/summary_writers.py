"""The summary rendered: XML (lxml, streamed) for tools, TXT for a person. Both take CimObjects."""

from __future__ import annotations

from collections.abc import Iterable

from lxml import etree

from decoders.records import AttrValue, CimObject
from dockit_core import __version__
from dockit_core.atomic import atomic_open
from dockit_core.summary import format_time
from dockit_core.xmltext import xml_safe

TIME_ATTRIBUTES = frozenset({"Start", "End"})


def attribute_text(name: str, value: AttrValue, date: str | None) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if name in TIME_ATTRIBUTES:
            return format_time(value, date) or ""
        return f"{value:.6f}"
    return xml_safe(str(value))


def attributes(attrs: Iterable[tuple[str, AttrValue]], date: str | None) -> dict[str, str]:
    """The attributes of one element, in order, as `attribute_text` writes them (with shortcuts for
    the common exact str and int values: a summary of a directory walk has tens of thousands)."""
    result = {}
    for name, value in attrs:
        if value is None:
            continue
        kind = type(value)
        if kind is str:
            result[name] = xml_safe(value)  # type: ignore[arg-type]
        elif kind is int:
            result[name] = str(value)
        else:
            result[name] = attribute_text(name, value, date)
    return result


def write_xml(objects: Iterable[CimObject], path: str, date: str | None) -> int:
    """Write `<Dockit>` with one element per object; returns how many were written."""
    count = 0
    with atomic_open(path, "wb") as stream, etree.xmlfile(stream, encoding="utf-8") as xml:
        xml.write_declaration()
        with xml.element("Dockit", Version=__version__):
            write, new_element, sub_element = xml.write, etree.Element, etree.SubElement
            for obj in objects:
                element = new_element(obj.cim_class, attributes(obj.attrs, date))
                for child in obj.children:
                    sub = sub_element(element, child.tag, attributes(child.attrs, date))
                    if child.text is not None:
                        sub.text = xml_safe(child.text)
                write("\n")
                write(element)
                count += 1
            xml.write("\n")
    return count


def write_txt(objects: Iterable[CimObject], path: str, date: str | None) -> int:
    """The same objects for a person: one block per object, grouped by class."""
    count = 0
    last_class = None
    with atomic_open(path, "w", encoding="utf-8", errors="surrogateescape") as out:
        out.write(f"dockit {__version__} summary\n")
        for obj in objects:
            if obj.cim_class != last_class:
                out.write(f"\n== {obj.cim_class} ==\n")
                last_class = obj.cim_class
            attrs = "  ".join(
                f"{name}={attribute_text(name, value, date)}"
                for name, value in obj.attrs
                if value is not None
            )
            out.write(f"{attrs}\n")
            for child in obj.children:
                child_attrs = " ".join(
                    f"{name}={attribute_text(name, value, date)}"
                    for name, value in child.attrs
                    if value is not None
                )
                text = f" {xml_safe(child.text)}" if child.text is not None else ""
                out.write(
                    f"    {child.tag}{':' if text or child_attrs else ''}{' ' + child_attrs if child_attrs else ''}{text}\n"
                )
            count += 1
    return count
