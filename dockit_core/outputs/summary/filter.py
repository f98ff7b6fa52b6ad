"""`-s CLASS[:filters]`: which summary objects the user asked for, read as data (the original dockit
passed this text to Python's exec). Kept apart from the summary so that the command line checks it
before the traced program starts, without loading the summary's machinery."""

from __future__ import annotations

import difflib
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
    text: str = ""  # as the user wrote it, for messages
    matched: int = 0  # objects it kept: none at the end of a run is said, not left silent

    def unmatched_note(self, classes: set[str]) -> str:
        """Why this filter kept nothing, given the classes the summary had."""
        shown = _shown(self.text or self.cim_class)
        if self.cim_class not in classes:
            close = difflib.get_close_matches(self.cim_class, sorted(classes), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            return (
                f"-s {shown}: the summary has no object of class {self.cim_class}{hint} "
                f"(its classes: {', '.join(sorted(classes))})"
            )
        return f"-s {shown}: no {self.cim_class} has those attribute values"

    @staticmethod
    def parse(text: str) -> SummaryFilter:
        cim_class, _, rest = text.partition(":")
        cim_class = cim_class.strip()
        if not cim_class.replace("_", "").isalnum():
            raise SummaryFilterError(
                f"-s {_shown(text)}: {_shown(cim_class)} is not a class name such as CIM_DataFile"
            )
        conditions: dict[str, list[str]] = {}
        for part in _split_conditions(rest):
            key, equal, value = part.partition("=")
            if not equal or not key.strip():
                raise SummaryFilterError(
                    f"-s {_shown(text)}: expected Attribute=value or Attribute=[...] after ':'"
                )
            conditions[key.strip()] = _parse_values(value.strip(), text)
        return SummaryFilter(cim_class, conditions, text)

    def matches(self, obj: CimObject) -> bool:
        if obj.cim_class != self.cim_class:
            return False
        values = {name: str(value) for name, value in obj.attrs if value is not None}
        if type(obj.children) is tuple:  # streamed children (a large file's Access) carry no text
            values.update(
                {child.tag: child.text for child in obj.children if child.text is not None and not child.attrs}
            )
        if all(values.get(key) in allowed for key, allowed in self.conditions.items()):
            self.matched += 1
            return True
        return False


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


def _json(text: str) -> object:
    """JSON, where nesting too deep for the decoder (100,000 `[`) is one more unreadable list."""
    try:
        return json.loads(text)
    except RecursionError as error:
        raise ValueError("nested too deep") from error


def _shown(text: str) -> str:
    """The user's text in a message: quoted, and cut when long (a message stays one readable line)."""
    shown = repr(text)  # escapes count: one character can be ten (`'\U0010ffff'`)
    return shown if len(shown) <= 80 else shown[:60] + f"... ({len(text)} characters)"


def _parse_values(value: str, whole: str) -> list[str]:
    """Data, never code: a JSON list or scalar, a Python-style list with single quotes, or a bare word."""
    if value.startswith(("[", "(")):
        body = value.replace("(", "[").replace(")", "]")
        try:
            parsed = _json(body)
        except ValueError:
            try:
                parsed = _json(body.replace("'", '"'))
            except ValueError as error:
                raise SummaryFilterError(f"-s {_shown(whole)}: cannot read the list {_shown(value)}") from error
        if not isinstance(parsed, list):
            parsed = [parsed]
        if any(isinstance(v, (list, dict)) for v in parsed):
            raise SummaryFilterError(f"-s {_shown(whole)}: a value is a word or a number, not a list")
        return [str(v) for v in parsed]
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return [value]
