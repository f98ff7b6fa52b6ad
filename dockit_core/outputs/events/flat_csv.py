"""The events as a flat CSV (one row per event: case id, activity, timestamp, resource, object), the
input every process-mining tool takes. `--case` chooses what a case is: a process (every event, by the
process that did it), a session (queries and logins by database session, HTTP requests by connection)
or a connection (what crossed one socket connection or pipe). Events with no such case are left out.
Written row by row as the run goes."""

from __future__ import annotations

import csv

from dockit_core.outputs.atomic import AtomicStream
from dockit_core.outputs.events.source import LogEvent

COLUMNS = ["case_id", "activity", "timestamp", "resource", "object"]


class CsvEventLog:
    def __init__(self, path: str, case: str) -> None:
        self.path = path
        self.case = case
        self.file = AtomicStream(path, "w", encoding="utf-8", newline="")
        self.writer = csv.writer(self.file.stream)
        self.writer.writerow(COLUMNS)
        self.rows = 0

    def event(self, event: LogEvent) -> None:
        if self.case == "process":
            case = str(event.pid) if event.pid else None
        elif self.case == "session":
            case = event.session
        else:
            case = event.connection
        if case is None:
            return
        target = next((ref.object_id for ref in event.objects if ref.object_type != "process"), "")
        self.writer.writerow([case, event.activity, event.time, event.resource or "", _clean(target)])
        self.rows += 1

    def declare(self, *args: object, **kwargs: object) -> None:
        return  # a flat log has no objects

    def update(self, *args: object) -> None:
        return

    def commit(self) -> str:
        self.file.commit()
        return self.path

    def discard(self) -> None:
        self.file.discard()


def _clean(text: str) -> str:
    """A value any CSV reader takes: no NUL, no lone surrogate from a path's undecodable bytes."""
    return text.replace("\0", "").encode("utf-8", "backslashreplace").decode("utf-8")
