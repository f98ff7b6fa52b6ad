"""Several logs of one run read as one trace: `strace -ff -o PREFIX` writes one file per process
(`PREFIX.PID`, lines without a pid), and a run may have been traced into several logs.

The files are merged by the time each line starts with (a streaming k-way merge: one line of each file
is in memory at a time, never a whole file), and a line that names no pid gets its file's, read from
the `.PID` suffix. A child's first line starts after the clone that made it (strace times a call when it
enters the kernel), so in the merged order the parent's clone, whose return value names the child,
comes first: the tracker links the processes as it does in a `-f` log.
"""

from __future__ import annotations

import heapq
import os
import re
from collections.abc import Iterable, Iterator
from typing import TextIO

# `-ttt` (seconds since the epoch) or `-tt`/`-t` (time of day), after an optional pid column or prefix.
_TIME = re.compile(r"\s*(?:\[pid\s+\d+\]\s*|\d+\s+(?=\d))?(?:(\d\d?):(\d\d):(\d\d(?:\.\d+)?)|(\d+\.\d+))\s")
_HAS_PID = re.compile(r"\s*(?:\[pid\s+\d+\]|\d+\s+(?:\d|[A-Za-z_<+-]))")
_PID_SUFFIX = re.compile(r"\.(\d{1,10})(?:\.gz)?$")


def per_process_files(prefix: str) -> list[str]:
    """The files `strace -ff -o PREFIX` wrote: `PREFIX.PID`, ordered by pid."""
    folder = os.path.dirname(prefix) or "."
    base = os.path.basename(prefix)
    found: list[tuple[int, str]] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    for name in names:
        if name.startswith(base + "."):
            rest = name[len(base) + 1 :]
            if rest.endswith(".gz"):
                rest = rest[:-3]
            if rest.isdigit() and len(rest) <= 10 and rest.isascii():
                found.append((int(rest), os.path.join(folder, name)))
    return [path for _, path in sorted(found)]


def file_pid(path: str) -> int | None:
    match = _PID_SUFFIX.search(path)
    return int(match.group(1)) if match else None


def line_time(line: str) -> float | None:
    """The time a line starts with, in seconds (since the epoch, or since midnight for `-t`/`-tt`)."""
    match = _TIME.match(line)
    if match is None:
        return None
    if match.group(4) is not None:
        return float(match.group(4))
    return int(match.group(1)) * 3600 + int(match.group(2)) * 60 + float(match.group(3))


def _keyed(stream: Iterable[str], rank: int, pid: int | None) -> Iterator[tuple[float, int, int, str]]:
    """(time, file rank, line number, line) for the merge: a line without a time (a log written
    without -t, or a continuation) keeps the time of the line before it, so its file's order holds."""
    last = 0.0
    for number, line in enumerate(stream):
        if pid is not None and not _HAS_PID.match(line):
            line = f"{pid} {line}"
        time = line_time(line)
        if time is not None:
            last = time
        yield last, rank, number, line


def merged_lines(streams: list[TextIO], paths: list[str]) -> Iterator[str]:
    """The lines of every stream in time order. A file named `X.PID` gives its pid to lines that
    have none (`strace -ff`); a log whose lines carry their pid keeps them."""
    keyed = [
        _keyed(stream, rank, file_pid(path))
        for rank, (stream, path) in enumerate(zip(streams, paths, strict=True))
    ]
    for _time, _rank, _number, line in heapq.merge(*keyed):
        yield line


def first_pid(paths: list[str]) -> int | None:
    """The pid of the file whose first line is the earliest: the process the run started with."""
    best: tuple[float, int] | None = None
    for path in paths:
        pid = file_pid(path)
        if pid is None:
            continue
        try:
            opener = _open_any(path)
            with opener as stream:
                first = next(iter(stream), "")
        except (OSError, EOFError):
            continue
        time = line_time(first)
        key = (time if time is not None else float("inf"), pid)
        if best is None or key < best:
            best = key
    return best[1] if best else None


def _open_any(path: str) -> TextIO:
    import gzip

    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8", errors="surrogateescape", newline="\n")
    return open(path, encoding="utf-8", errors="surrogateescape", newline="\n")
