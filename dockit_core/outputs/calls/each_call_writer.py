"""The calls file: one record per call (pid, time, call, target, arguments, result, duration), with the
decoded query or request beside the call that carried it. TXT for a person; CSV through the csv module
and JSON through json. All three are valid UTF-8 whatever bytes the program used: a byte that was not
UTF-8 (a path's) or a control character shows as `\\xNN`, as in the summary."""

from __future__ import annotations

import csv
import json

from dockit_core.ingest.args import first_arg
from dockit_core.ingest.events import Call
from dockit_core.model import Process
from dockit_core.model.tracker import CallInfo
from dockit_core.outputs.atomic import AtomicStream
from dockit_core.outputs.redaction import redact_call_arguments
from dockit_core.outputs.summary.objects import format_time
from dockit_core.outputs.xmltext import xml_safe

MAX_ARGS = 240
REDACTION_CONTEXT = 4096
COLUMNS = ("pid", "time", "call", "target", "arguments", "result", "duration", "decoded")


def short_arguments(call: Call, secret: bool = False) -> str:
    """The arguments, cut for a person to read, with credentials redacted (the .log keeps them).
    `secret`: a decoder said the call's bytes hold a credential: only its descriptor is shown."""
    if secret:
        return first_arg(call.args) + ", <credentials redacted>"
    if len(call.args) <= MAX_ARGS:
        return redact_call_arguments(call.name, call.args)
    # Redacted before it is cut, with enough after the cut for a secret there to be seen whole (a URL's
    # password cut in its middle would leave its start).
    text = redact_call_arguments(call.name, call.args[: MAX_ARGS + REDACTION_CONTEXT])
    return text[:MAX_ARGS] + "..."


class CallsWriter:
    """Streams call records to `path` (renamed into place at `close`)."""

    def __init__(self, path: str, fmt: str, date: str | None) -> None:
        self.format = fmt.upper()
        self.date = date
        self.file = AtomicStream(path, "w", encoding="utf-8", errors="surrogateescape", newline="")
        self.count = 0
        self._csv = None
        if self.format == "CSV":
            self._csv = csv.writer(self.file.stream)
            self._csv.writerow(COLUMNS)
        elif self.format == "JSON":
            self.file.stream.write("[\n")

    def __call__(self, call: Call, process: Process, info: CallInfo, annotations: list[str]) -> None:
        values = (
            call.pid,
            format_time(call.time, self.date),
            call.name if call.is_syscall else f"{call.library}->{call.name}" if call.library else call.name,
            info.target,
            short_arguments(call, info.secret),
            call.result,
            call.duration,
            " | ".join(annotations) or None,
        )
        self.count += 1
        if self.format == "CSV":
            assert self._csv is not None
            self._csv.writerow(["" if v is None else xml_safe(v) if isinstance(v, str) else v for v in values])
        elif self.format == "JSON":
            record = {
                k: (xml_safe(v) if isinstance(v, str) else v) for k, v in zip(COLUMNS, values, strict=True)
            }
            prefix = "" if self.count == 1 else ",\n"
            self.file.stream.write(prefix + json.dumps(record, ensure_ascii=False))
        else:
            pid, time, name, target, arguments, result, duration, decoded = values
            line = f"{pid:>6} {time or '-'} {name}({arguments}) = {result if result is not None else '?'}"
            if duration is not None:
                line += f" <{duration:.6f}>"
            if target:
                line += f"  [{target}]"
            if decoded:
                line += f"  # {decoded}"
            self.file.stream.write(xml_safe(line) + "\n")

    def close(self) -> None:
        if self.format == "JSON":
            self.file.stream.write("\n]\n")
        self.file.commit()

    def discard(self) -> None:
        self.file.discard()
