"""The process watch's lines on stdout, one per event as it happens: text for a person, or one JSON
object a line (`--json`) for a script. Command lines are redacted as in every other output."""

from __future__ import annotations

import json
import shlex
from datetime import UTC, datetime

from dockit_core.model.watch import Notice, group_name, user_name
from dockit_core.outputs.redaction import redact_argv


def _named(number: int | None, name: str | None) -> str:
    if number is None:
        return "?"
    return f"{number}({name})" if name else str(number)


def notice_text(notice: Notice) -> str:
    """`2026-12-03T08:10:01.123456+00:00 exec pid=1234 ppid=1200 uid=1001(bob) gid=1001(bob)
    exe=/usr/bin/id -- id -u`: the command line last, after `--`, quoted as a shell needs it."""
    ids = notice.ids
    parts = [
        datetime.fromtimestamp(notice.time, UTC).isoformat(),
        notice.event,
        f"pid={notice.pid}",
        f"ppid={notice.ppid if notice.ppid is not None else '?'}",
        f"uid={_named(ids.ruid, user_name(ids.ruid)) if ids else '?'}",
        f"gid={_named(ids.rgid, group_name(ids.rgid)) if ids else '?'}",
    ]
    if ids is not None and ids.euid != ids.ruid:
        parts.append(f"euid={_named(ids.euid, user_name(ids.euid))}")
    if ids is not None and ids.egid != ids.rgid:
        parts.append(f"egid={_named(ids.egid, group_name(ids.egid))}")
    if notice.event == "exit":
        if notice.signal is not None:
            parts.append(f"signal={notice.signal}" + (" core" if notice.core_dumped else ""))
        else:
            parts.append(f"status={notice.exit_code if notice.exit_code is not None else '?'}")
    if notice.executable:
        parts.append(f"exe={shlex.quote(notice.executable)}")
    elif notice.name:  # it ended before /proc could tell its path: the kernel's short name
        parts.append(f"comm={shlex.quote(notice.name)}")
    if notice.argv:  # last, after `--`, as a shell would take it
        parts += ["--", shlex.join(redact_argv(list(notice.argv)))]
    return " ".join(parts)


def notice_json(notice: Notice) -> str:
    ids = notice.ids
    record: dict[str, object] = {
        "time": notice.time,
        "event": notice.event,
        "pid": notice.pid,
        "ppid": notice.ppid,
        "uid": ids.ruid if ids else None,
        "user": user_name(ids.ruid) if ids else None,
        "gid": ids.rgid if ids else None,
        "group": group_name(ids.rgid) if ids else None,
        "euid": ids.euid if ids else None,
        "egid": ids.egid if ids else None,
        "executable": notice.executable,
        "argv": redact_argv(list(notice.argv)),
        "comm": notice.name,
    }
    if notice.event == "exit":
        record.update(exit_status=notice.exit_code, signal=notice.signal, core_dumped=notice.core_dumped)
    return json.dumps(record, ensure_ascii=False, default=str)
