"""`-s CLASS[:filters]`: which summary objects the user asked for, read as data (the original dockit
passed this text to Python's exec). Kept apart from the summary so that the command line checks it
before the traced program starts, without loading the summary's machinery."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from decoders.records import CimObject


class SummaryFilterError(ValueError):
    """A `-s` argument that cannot be read."""


@dataclass
class SummaryFilter:
    """`-s 'CIM_DataFile:Category=["Others","Shared libraries"]'`: a class, and attribute values to keep."""

    cim_class: str
    conditions: dict[str, list[str]] = field(default_factory=dict)

    @staticmethod
    def parse(text: str) -> SummaryFilter:
        cim_class, _, rest = text.partition(":")
        cim_class = cim_class.strip()
        if not cim_class.replace("_", "").isalnum():
            raise SummaryFilterError(f"-s {text!r}: {cim_class!r} is not a class name such as CIM_DataFile")
        conditions: dict[str, list[str]] = {}
        for part in _split_conditions(rest):
            key, equal, value = part.partition("=")
            if not equal or not key.strip():
                raise SummaryFilterError(
                    f"-s {text!r}: expected Attribute=value or Attribute=[...] after ':'"
                )
            conditions[key.strip()] = _parse_values(value.strip(), text)
        return SummaryFilter(cim_class, conditions)

    def matches(self, obj: CimObject) -> bool:
        if obj.cim_class != self.cim_class:
            return False
        values = {name: str(value) for name, value in obj.attrs if value is not None}
        values.update(
            {child.tag: child.text for child in obj.children if child.text is not None and not child.attrs}
        )
        return all(values.get(key) in allowed for key, allowed in self.conditions.items())


def _split_conditions(text: str) -> list[str]:
    parts, depth, current = [], 0, []
    for char in text:
        if char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if "".join(current).strip():
        parts.append("".join(current))
    return [p for p in (p.strip() for p in parts) if p]


def _parse_values(value: str, whole: str) -> list[str]:
    """Data, never code: a JSON list or scalar, a Python-style list with single quotes, or a bare word."""
    if value.startswith(("[", "(")):
        body = value.replace("(", "[").replace(")", "]")
        try:
            parsed = json.loads(body)
        except json.JSONDecodeError:
            try:
                parsed = json.loads(body.replace("'", '"'))
            except json.JSONDecodeError as error:
                raise SummaryFilterError(f"-s {whole!r}: cannot read the list {value!r}") from error
        return [str(v) for v in parsed]
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return [value]
