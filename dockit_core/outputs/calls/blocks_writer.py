"""The calls file as blocks (see dockit_core/outputs/calls/blocks.py): TXT for a person, CSV through the csv module,
JSON as an array with one block object per line, so a tool can stream it line by line as well as load it.

`BlocksWriter` has the interface of `CallsWriter` (call it per call, `close`, `discard`, `file.path`), so
the session can use either."""

from __future__ import annotations

import csv
import json

from dockit_core.ingest.events import Call
from dockit_core.model import Process
from dockit_core.model.tracker import CallInfo
from dockit_core.outputs.atomic import AtomicStream
from dockit_core.outputs.calls.blocks import Block, BlockAggregator, describe
from dockit_core.outputs.calls.start_order import StartOrder
from dockit_core.outputs.summary.objects import format_time
from dockit_core.outputs.xmltext import xml_safe

COLUMNS = (
    "pid",
    "start",
    "end",
    "duration",
    "kind",
    "target",
    "summary",
    "calls",
    "repeat",
    "processes",
    "bytes_in",
    "bytes_out",
    "errors",
    "call_counts",
    "first_line",
    "last_line",
    "decoded",
)


def block_record(block: Block, date: str | None) -> dict[str, object]:
    """A block as plain values: the same fields in CSV and JSON."""
    return {
        "pid": block.pid,
        "start": format_time(block.start, date),
        "end": format_time(block.end, date),
        "duration": round(block.duration, 6) if block.duration is not None else None,
        "kind": block.kind,
        "target": block.folder if block.repeat > 1 and block.folder else block.target,
        "summary": describe(block),
        "calls": block.calls,
        "repeat": block.repeat,
        "processes": block.processes,
        "bytes_in": block.bytes_in,
        "bytes_out": block.bytes_out,
        "errors": block.errors,
        "call_counts": dict(block.names),
        "first_line": block.first_line,
        "last_line": block.last_line,
        "decoded": list(block.decoded) + ([f"... {block.decoded_more} more"] if block.decoded_more else []),
    }


class BlocksWriter:
    """Aggregates calls into blocks and streams them to `path` (renamed into place at `close`)."""

    def __init__(self, path: str, fmt: str, date: str | None) -> None:
        self.format = fmt.upper()
        self.date = date
        self.file = AtomicStream(path, "w", encoding="utf-8", errors="surrogateescape", newline="")
        self.order = StartOrder(self._write)  # blocks end in any order: written in the order they started
        self.aggregator = BlockAggregator(self.order.push)
        self._written = 0
        self._csv = None
        self._flushed = False
        if self.format == "CSV":
            self._csv = csv.writer(self.file.stream)
            self._csv.writerow(COLUMNS)
        elif self.format == "JSON":
            self.file.stream.write("[\n")

    @property
    def calls_in(self) -> int:
        return self.aggregator.calls_in

    @property
    def blocks_out(self) -> int:
        return self.aggregator.blocks_out

    def __call__(self, call: Call, process: Process, info: CallInfo, annotations: list[str]) -> None:
        self.aggregator(call, process, info, annotations)

    def _write(self, block: Block) -> None:
        self._written += 1
        if self.format != "CSV" and self.format != "JSON":
            self.file.stream.write(xml_safe(_txt(block, self.date)))
            return
        record = block_record(block, self.date)
        if self.format == "CSV":
            assert self._csv is not None
            row = []
            for column in COLUMNS:
                value = record[column]
                if column == "call_counts":
                    value = " ".join(f"{name}={count}" for name, count in block.names.items())
                elif column == "decoded":
                    value = " | ".join(record["decoded"])  # type: ignore[arg-type]
                row.append("" if value is None else xml_safe(value) if isinstance(value, str) else value)
            self._csv.writerow(row)
        elif self.format == "JSON":
            prefix = "" if self._written == 1 else ",\n"
            self.file.stream.write(prefix + json.dumps(_json_safe(record), ensure_ascii=False))

    def flush_blocks(self) -> None:
        """End every open block (the trace is over); idempotent."""
        if not self._flushed:
            self._flushed = True
            self.aggregator.finish()
            self.order.flush()

    def close(self) -> None:
        self.flush_blocks()
        if self.format == "JSON":
            self.file.stream.write("\n]\n")
        self.file.commit()

    def discard(self) -> None:
        self.file.discard()


def _json_safe(value: object) -> object:
    if isinstance(value, str):
        return xml_safe(value)
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def _txt(block: Block, date: str | None) -> str:
    """A block for a person: the fields of `block_record` that TXT shows, and only those (once per block:
    the end time, the rounded duration and the copied counts of a record are not needed here)."""
    start = format_time(block.start, date) or "-"
    duration = f"{block.duration:.6f}s" if block.duration is not None else "-"
    line = f"{block.pid:>6} {start} {duration:>11}  {describe(block)}"
    names = block.names
    if block.kind not in ("calls", "process") and (len(names) > 1 or block.repeat > 1):
        line += "  [" + ", ".join(f"{n} {c}" for n, c in names.items()) + "]"
    lines = [line]
    if block.repeat > 1 and block.examples and not block.one_target:
        lines.append(" " * 8 + "e.g. " + ", ".join(block.examples))
    decoded = block.decoded
    if decoded or block.decoded_more:
        lines.extend(" " * 8 + "# " + text.replace("\n", " ") for text in decoded)
        if block.decoded_more:
            lines.append(" " * 8 + "# " + f"... {block.decoded_more} more")
    return "\n".join(lines) + "\n"
