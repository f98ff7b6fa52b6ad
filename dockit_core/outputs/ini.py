"""The .ini beside a log: what was traced, where and when, so a replay knows what the live run knew.

The original dockit's format (`Key=Value` lines, `;` comments) is kept, and extended with the tracer,
the command, the distribution and the environment (secrets left out). Replay never requires it.
"""

from __future__ import annotations

import json
import os
import re
import shlex

from dockit_core.outputs.atomic import atomic_open
from dockit_core.outputs.redaction import redact_argv
from dockit_core.outputs.summary.objects import RunContext

# MYSQL_PWD, PGPASSWORD, AWS_SECRET_ACCESS_KEY, GITHUB_TOKEN...; PWD and OLDPWD are directories.
_SECRET_NAME = re.compile(r"PASS|PWD|SECRET|TOKEN|KEY|CREDENTIAL|AUTH|COOKIE|SESSION", re.I)
_NOT_SECRET = frozenset({"PWD", "OLDPWD"})


def read_ini(path: str) -> dict[str, str]:
    values: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            for line in stream:
                line = line.strip()
                if not line or line.startswith((";", "#", "[")):
                    continue
                key, equal, value = line.partition("=")
                if equal:
                    values[key.strip()] = value.strip()
    except OSError:
        pass
    return values


def context_from_ini(values: dict[str, str]) -> RunContext:
    return RunContext(
        hostname=values.get("CurrentHostname", ""),
        os_type=values.get("CurrentOSType", "linux"),
        os_release=values.get("OsRelease", ""),
        kernel=values.get("Kernel", ""),
        date=values.get("CurrentDate") or None,
        tracer=values.get("Tracer", ""),
        command=_command(values.get("CommandLine", "")),
        cwd=values.get("CurrentDirectory") or None,
    )


def _command(text: str) -> list[str]:
    """The command line: a JSON list (dockit's own .ini) or plain words (other tools')."""
    if not text:
        return []
    try:
        value = json.loads(text)
    except RecursionError:
        return []  # nested too deep to be a command line (a damaged or crafted .ini): unknown
    except json.JSONDecodeError:
        return text.split()
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def environment_from_ini(values: dict[str, str]) -> dict[str, str]:
    return {key[4:]: value for key, value in values.items() if key.startswith("Env.")}


def safe_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment worth recording: secrets left out by name."""
    environ = dict(os.environ if environ is None else environ)
    return {
        k: v
        for k, v in sorted(environ.items())
        if (k in _NOT_SECRET or not _SECRET_NAME.search(k)) and "\n" not in v
    }


def _one_line(text: str) -> str:
    """A comment stays one line: an argument's newline must not start a `Key=Value` line."""
    return text.replace("\n", "\\n").replace("\r", "\\r")


def write_ini(
    path: str,
    context: RunContext,
    top_pid: int | None,
    tracer_command: list[str],
    exit_status: int | None,
    environment: dict[str, str],
    executable: str | None = None,
    attached_threads: list[int] | None = None,
) -> None:
    """`executable`: the top process's program; `attached_threads`: the threads `-p` attached to, so
    that a replay of an attach log knows them as the live run did (no clone in the trace says so)."""
    with atomic_open(path, "w", encoding="utf-8", errors="surrogateescape") as out:
        command = redact_argv(context.command)
        out.write(f"; dockit session: {_one_line(shlex.join(command))}\n")
        tail = len(context.command)
        if tail and tracer_command[-tail:] == context.command:
            tracer_command = tracer_command[:-tail] + command
        out.write(f"; tracer command: {_one_line(shlex.join(tracer_command))}\n")
        out.write(f"TopProcessId={top_pid if top_pid is not None else ''}\n")
        out.write(f"CurrentDirectory={context.cwd or ''}\n")
        out.write(f"CurrentDate={context.date or ''}\n")
        out.write(f"CurrentHostname={context.hostname}\n")
        out.write(f"CurrentOSType={context.os_type}\n")
        out.write(f"OsRelease={context.os_release}\n")
        out.write(f"Kernel={context.kernel}\n")
        out.write(f"Tracer={context.tracer}\n")
        out.write("CommandLine=" + json.dumps(command) + "\n")
        if executable:
            out.write(f"Executable={_one_line(executable)}\n")
        if attached_threads:
            out.write("AttachedThreads=" + " ".join(str(t) for t in attached_threads) + "\n")
        if exit_status is not None:
            out.write(f"ExitStatus={exit_status}\n")
        for key, value in environment.items():
            out.write(f"Env.{key}={value}\n")


def attached_threads_from_ini(values: dict[str, str]) -> list[int]:
    """The threads a live `-p` attached to (empty for a run that started its program)."""
    pids = (_pid(word) for word in values.get("AttachedThreads", "").split())
    return [pid for pid in pids if pid is not None]


def top_pid_from_ini(values: dict[str, str]) -> int | None:
    return _pid(values.get("TopProcessId", ""))


def _pid(text: str) -> int | None:
    """A pid's digits as an int; None for anything else a damaged .ini may hold (`²`, thousands of digits)."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 10 else None
