"""The summary XML is written by hand for speed: it must parse, and say exactly what lxml's own
serialization of the same objects says, whatever characters paths, arguments and decoded text hold."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from decoders.records import CimChild, CimObject
from dockit_core.outputs.summary.objects import format_time
from dockit_core.outputs.summary.writers import element_markup, write_xml, xml_name
from dockit_core.outputs.xmltext import xml_safe

# Any text, surrogates (bytes that were not UTF-8) and control characters included.
TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=40)
NAMES = st.sampled_from(["Name", "Value", "Process", "Category", "Text", "Argument"])


def lxml_markup(obj: CimObject) -> bytes:
    element = etree.Element(obj.cim_class)
    for name, value in obj.attrs:
        if value is not None:
            element.set(name, xml_safe(str(value)))
    for child in obj.children:
        sub = etree.SubElement(element, child.tag)
        for name, value in child.attrs:
            if value is not None:
                sub.set(name, xml_safe(str(value)))
        if child.text is not None:
            sub.text = xml_safe(child.text)
    return etree.tostring(element, encoding="utf-8")


@settings(max_examples=400, deadline=None)
@given(
    attrs=st.dictionaries(NAMES, TEXT, max_size=4),
    children=st.lists(
        st.tuples(NAMES, st.dictionaries(NAMES, TEXT, max_size=2), st.none() | TEXT), max_size=4
    ),
)
def test_hand_written_element_is_what_lxml_writes(attrs: dict, children: list) -> None:
    obj = CimObject.make(
        "CIM_DataFile",
        attrs,
        [CimChild(tag, tuple(child_attrs.items()), text) for tag, child_attrs, text in children],
    )
    assert element_markup(obj, None).encode("utf-8") == lxml_markup(obj)


def test_odd_names_from_a_plugin_still_give_valid_xml(tmp_path: Path) -> None:
    assert xml_name("Kv_Command") == "Kv_Command"
    assert xml_name("my class") == "my_class" and xml_name("1st") == "_1st" and xml_name("xmlns") == "_xmlns"
    obj = CimObject.make("my class", {"bad name": "v", "9": 1}, [CimChild("a b", text="t")])
    path = tmp_path / "s.xml"
    write_xml([obj], str(path), None)
    (element,) = etree.parse(str(path)).getroot()
    assert element.tag == "my_class" and element.get("bad_name") == "v" and element.get("_9") == "1"
    assert element[0].tag == "a_b" and element[0].text == "t"


@given(st.floats(min_value=172_801, max_value=4_102_444_800, allow_nan=False) | st.integers(172_801, 4_102_444_800).map(lambda s: s + 0.9999995))
@settings(max_examples=2000, deadline=None)
def test_epoch_times_are_written_as_datetime_writes_them(value: float) -> None:
    """Start times are formatted with a per-second cache: to the microsecond (rounded half to even,
    carries into the next second included) what `datetime.isoformat` gives."""
    expected = dt.datetime.fromtimestamp(value, dt.UTC).isoformat(timespec="microseconds")
    assert format_time(value, None) == expected
