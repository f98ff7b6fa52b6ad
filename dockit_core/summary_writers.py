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


def write_xml(objects: Iterable[CimObject], path: str, date: str | None) -> int:
    """Write `<Dockit>` with one element per object; returns how many were written."""
    count = 0
    with atomic_open(path, "wb") as stream, etree.xmlfile(stream, encoding="utf-8") as xml:
        xml.write_declaration()
        with xml.element("Dockit", Version=__version__):
            for obj in objects:
                element = etree.Element(obj.cim_class)
                for name, value in obj.attrs:
                    if value is not None:
                        element.set(name, attribute_text(name, value, date))
                for child in obj.children:
                    sub = etree.SubElement(element, child.tag)
                    for name, value in child.attrs:
                        if value is not None:
                            sub.set(name, attribute_text(name, value, date))
                    if child.text is not None:
                        sub.text = xml_safe(child.text)
                xml.write("\n")
                xml.write(element)
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
