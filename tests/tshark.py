"""tshark, the independent check of the pcap bridges: it reads the files dockit writes, captures the
loopback while real clients run, and its dissectors say what crossed."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from lxml import etree

needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="needs tshark (apt package tshark)")


def fields(capture: Path, *names: str, display_filter: str | None = None) -> list[list[str]]:
    """One row per frame (frames where every field is empty are left out), as tshark dissects them."""
    command = ["tshark", "-r", str(capture), "-T", "fields", "-E", "occurrence=a", "-E", "separator=\t"]
    if display_filter:
        command += ["-Y", display_filter]
    for name in names:
        command += ["-e", name]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    return [row for row in rows if any(row)]


def column(capture: Path, name: str, display_filter: str | None = None) -> list[str]:
    """Every value of one field, in frame order (a frame with two MySQL queries gives both)."""
    values: list[str] = []
    for row in fields(capture, name, display_filter=display_filter):
        values += [value for value in row[0].split(",") if value] if name != "mysql.query" else [row[0]]
    return values


def mysql_queries(capture: Path) -> list[str]:
    """The statements tshark's MySQL dissector found, in order: each COM_QUERY's text, and each
    COM_INIT_DB as the `USE db` dockit's summary shows it as."""
    found = []
    for command, query, schema in fields(capture, "mysql.command", "mysql.query", "mysql.schema",
                                         display_filter="mysql.command == 3 || mysql.command == 2"):  # fmt: skip
        found.append(query if command == "3" else f"USE {schema}")
    return found


@contextmanager
def loopback_capture(path: Path, capture_filter: str, *extra: str) -> Iterator[Path]:
    """tshark capturing the loopback into `path` while the block runs."""
    process = subprocess.Popen(
        ["tshark", "-i", "lo", "-f", capture_filter, "-w", str(path), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # "Capturing on 'Loopback: lo'"
            line = process.stderr.readline()
            if "Capturing on" in line or not line:
                break
        time.sleep(0.5)
        yield path
        time.sleep(1.0)  # the last packets reach the file
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def summary_queries(xml: Path) -> list[str]:
    root = etree.parse(str(xml)).getroot()
    return [q.findtext("Text") for q in root.iter("Dockit_SqlQuery")]


def summary_requests(xml: Path) -> list[tuple[str | None, str | None, str | None]]:
    root = etree.parse(str(xml)).getroot()
    return [(r.get("Method"), r.get("Url"), r.get("Status")) for r in root.iter("Dockit_HttpRequest")]
