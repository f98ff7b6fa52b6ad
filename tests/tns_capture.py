"""Real Oracle TNS bytes out of the survol strace captures, as the chunks dockit's core would feed.

The client's pipe writes become OUT chunks and its pipe reads IN chunks, in trace order, the pipes of
one process being one duplex channel. `size` is the call's return value, so a buffer strace cut
(`-s`) arrives with its lost byte count, as from the real pipeline.
"""

from __future__ import annotations

import re
from pathlib import Path

from decoders.api import ChannelInfo, Chunk, Direction
from dockit_core.ingest.cstring import literal_bytes

CAPTURES = Path(__file__).resolve().parents[1].parent / "shared/captures/survol"
ORACLE_STRACE = CAPTURES / "dockit_oracle_db_schemas.strace.log"
ORACLE_LTRACE = CAPTURES / "dockit_oracle_db_schemas.ltrace.log"
SQLPLUS_STRACE = CAPTURES / "sqlplus.strace.4401.log"

_CALL = re.compile(
    r"^(?:\[pid\s+(?P<pid>\d+)\]\s+|(?P<pid2>\d+)\s+)?(?P<time>[\d:.]+)\s+(?P<op>read|write)\("
    r"\d+<pipe:\[\d+\]>,\s+(?P<buf>\".*\"(?:\.\.\.)?),\s+\d+\)\s+=\s+(?P<size>\d+)"
)


def _seconds(stamp: str) -> float:
    hours, minutes, seconds = stamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def pipe_chunks(path: Path, pid: int = 1) -> list[Chunk]:
    """The pipe reads and writes of a capture, in order, with the sizes the calls returned."""
    chunks = []
    with path.open(encoding="utf-8", errors="surrogateescape") as log:
        for index, line in enumerate(log):
            match = _CALL.match(line)
            if not match:
                continue
            decoded = literal_bytes(match.group("buf"))
            if decoded is None:
                continue
            data, _cut = decoded
            size = int(match.group("size"))
            direction = Direction.OUT if match.group("op") == "write" else Direction.IN
            chunks.append(
                Chunk(
                    data=data,
                    direction=direction,
                    time=_seconds(match.group("time")),
                    pid=pid,
                    size=size,
                    call_index=index,
                )
            )
    return chunks


def pipe_channel(pid: int = 1) -> ChannelInfo:
    return ChannelInfo(channel_id="pipe-1", kind="pipe", local="pipe:[1]", pid=pid)
