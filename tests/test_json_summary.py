"""`-F JSON`: the XML summary's objects as one JSON document (`P.summary.json`) or, with `--stream`,
JSON Lines (`P.summary.jsonl`), valid against the published docs/summary.schema.json.

Committed captures (MySQL, PostgreSQL, HTTP, a pipeline of processes and files, DNS) are replayed three
times, -F XML, -F JSON and -F JSON --stream: every object, attribute and child must be the XML's, in
the same order, with values typed (an integer attribute is a JSON number)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import run_dockit

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is a test extra (pip install jsonschema)")

REPO = Path(__file__).resolve().parents[1]
CAPTURES = REPO / "captures"
SCHEMA = json.loads((REPO / "docs" / "summary.schema.json").read_text())
LOGS = [
    "mysql_cli.strace.25968.log",
    "pg_psql_tcp.strace.527.log",
    "http_curl.strace.26002.log",
    "pipeline.strace.24957.log",
    "dns_resolved.strace.23.log.gz",
]


def validator() -> jsonschema.protocols.Validator:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    return jsonschema.Draft202012Validator(SCHEMA)


def as_xml_text(value: object) -> str:
    """A JSON attribute value as the XML writes it."""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6f}"
    return str(value)


def xml_objects(path: Path) -> list[dict]:
    out = []
    for element in etree.parse(str(path)).getroot():
        out.append(
            {
                "class": element.tag,
                "attributes": dict(element.attrib),
                "children": [
                    {"tag": c.tag, "attributes": dict(c.attrib), **({"text": c.text} if c.text else {})}
                    for c in element
                ],
            }
        )
    return out


def textual(obj: dict) -> dict:
    """A JSON object with its values as the XML's text (what the XML comparison needs)."""
    return {
        "class": obj["class"],
        "attributes": {k: as_xml_text(v) for k, v in obj["attributes"].items()},
        "children": [
            {
                "tag": c["tag"],
                "attributes": {k: as_xml_text(v) for k, v in c["attributes"].items()},
                **({"text": c["text"]} if c.get("text") else {}),
            }
            for c in obj["children"]
        ],
    }


def replay_as(tmp_path: Path, log: str, *format_args: str) -> Path:
    prefix = tmp_path / (log.split(".")[0] + "-" + "-".join(a.strip("-") for a in format_args))
    result = run_dockit("-i", str(CAPTURES / log), "-l", str(prefix), *format_args)
    assert result.returncode == 0, result.stderr[-2000:]
    [summary] = [
        p
        for p in tmp_path.glob(prefix.name + ".*")
        if p.name.endswith((".xml", ".summary.json", ".summary.jsonl"))
    ]
    return summary


@pytest.mark.parametrize("log", LOGS)
def test_json_summary_is_the_xml_summary(tmp_path, log: str) -> None:
    xml = replay_as(tmp_path, log, "-F", "XML")
    document = replay_as(tmp_path, log, "-F", "JSON")
    lines = replay_as(tmp_path, log, "-F", "JSON", "--stream")
    assert (xml.suffix, document.name.endswith(".summary.json"), lines.name.endswith(".summary.jsonl")) == (
        ".xml",
        True,
        True,
    )

    parsed = json.loads(document.read_text(encoding="utf-8"))
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator().iter_errors(parsed)]
    assert errors == []
    assert parsed["Version"] == etree.parse(str(xml)).getroot().get("Version")
    streamed = [json.loads(line) for line in lines.read_text(encoding="utf-8").splitlines()]
    for obj in streamed:
        assert list(validator().iter_errors({"Version": parsed["Version"], "objects": [obj]})) == []
    assert streamed == parsed["objects"]

    expected = xml_objects(xml)
    assert len(parsed["objects"]) == len(expected) > 0
    for got, want in zip(parsed["objects"], expected, strict=True):
        assert textual(got) == want


def test_json_values_are_typed(tmp_path) -> None:
    """Counts are numbers, durations numbers of seconds, times strings: what jq compares without casts.
    The MySQL CLI capture's numbers are those tests/test_protocol_captures.py states for it."""
    document = replay_as(tmp_path, "mysql_cli.strace.25968.log", "-F", "JSON")
    objects = json.loads(document.read_text())["objects"]
    tables = {
        o["attributes"]["Name"]: (o["attributes"]["Reads"], o["attributes"]["Writes"])
        for o in objects
        if o["class"] == "Dockit_SqlTable"
    }
    assert tables == {
        "dockit_capture.customers": (2, 3),
        "dockit_capture.orders": (1, 0),
        "dockit_capture.no_such_table": (1, 0),
    }
    queries = [o for o in objects if o["class"] == "Dockit_SqlQuery"]
    assert all(isinstance(q["attributes"]["Process"], int) for q in queries)
    assert all(isinstance(q["attributes"].get("Duration", 0.0), float) for q in queries)
    assert all(isinstance(q["attributes"]["Start"], str) for q in queries)


def test_schema_rejects_a_wrong_summary(tmp_path) -> None:
    """The schema is not a blank cheque: a negative row count, an unknown status, a count as a string
    and a child without its tag are each rejected."""
    document = replay_as(tmp_path, "mysql_cli.strace.25968.log", "-F", "JSON")
    parsed = json.loads(document.read_text())
    breakages = (
        ("query", "Rows", -1),
        ("query", "Status", "fine"),
        ("table", "Reads", "2"),
        ("query", "tag", None),
    )
    for target, key, value in breakages:
        broken = json.loads(json.dumps(parsed))
        query = next(
            o for o in broken["objects"] if o["class"] == "Dockit_SqlQuery" and "Rows" in o["attributes"]
        )
        table = next(o for o in broken["objects"] if o["class"] == "Dockit_SqlTable")
        found = query if target == "query" else table
        if key == "tag":
            found["children"][0].pop("tag")
        else:
            found["attributes"][key] = value
        assert list(validator().iter_errors(broken)), f"the schema let {target} {key}={value!r} through"


def test_stream_needs_json(tmp_path) -> None:
    result = run_dockit("-i", str(CAPTURES / LOGS[0]), "-l", str(tmp_path / "x"), "--stream")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "--stream" in result.stderr and "-F JSON" in result.stderr
    assert not list(tmp_path.iterdir())
