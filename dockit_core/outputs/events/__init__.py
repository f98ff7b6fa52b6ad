"""`--events FILE`: what the program did as an event log for process-mining tools.

`source` turns the run (calls, exits, and the decoders' records) into events linked to the objects they
touch; `ocel` writes them as OCEL 2.0 JSON (object-centric: processes, files, sockets, pipes, sessions,
tables and HTTP routes are objects), `flat_csv` as one row per event with a case id chosen by `--case`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dockit_core.outputs.events.source import EventSource

if TYPE_CHECKING:
    from dockit_core.model.channels import ChannelManager
    from dockit_core.model.state import Model
    from dockit_core.outputs.summary.objects import RunContext


def open_event_log(
    path: str, case: str, context: RunContext, model: Model, channels: ChannelManager
) -> EventSource:
    """The event log for one run: CSV when `path` ends in .csv, OCEL 2.0 JSON otherwise."""
    if path.lower().endswith(".csv"):
        from dockit_core.outputs.events.flat_csv import CsvEventLog

        sink = CsvEventLog(path, case)
    else:
        from dockit_core.outputs.events.ocel import OcelLog

        sink = OcelLog(path)  # type: ignore[assignment]
    return EventSource(sink, context, model, channels)
