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
from dockit_core.outputs.redaction import is_secret_variable, redact_argv, redact_url
from dockit_core.outputs.summary.objects import RunContext

# Characters that end a line for some reader (a `\r` does for Python's universal newlines, editors and
# terminals), or that no text should hold: a value with one is written JSON-quoted, never raw.
_CONTROL = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_DATE = re.compile(r"\d{4}-\d\d-\d\d")
_RELEASE = re.compile(r"[a-z0-9][a-z0-9._+-]*(?::[A-Za-z0-9._+-]+)?")


def read_ini(path: str) -> dict[str, str]:
    """`Key=Value` lines: a line ends at `\n` only (so a `\r` inside a value cannot start another
    key), and a value written JSON-quoted (`"..."`) is read back as the text it stands for."""
    values: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8", errors="replace", newline="\n") as stream:
            for line in stream:
                line = line.strip()
                if not line or line.startswith((";", "#", "[")):
                    continue
                key, equal, value = line.partition("=")
                if equal:
                    values[key.strip()] = _read_value(value.strip())
    except OSError:
        pass
    return values


def _read_value(text: str) -> str:
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            return text
        if isinstance(value, str):
            return value
    return text


def _ini_value(text: str) -> str:
    """A value as one line that `read_ini` reads back whole: JSON-quoted when it holds a control
    character (a directory named with a newline), starts with a quote or ends with a space."""
    if _CONTROL.search(text) or text.startswith('"') or text != text.strip():
        return json.dumps(text)  # (a space at either end too: the reader strips them)
    return text


def context_from_ini(values: dict[str, str]) -> RunContext:
    """What the .ini says of the run; a value that cannot be what its key says (a date that is no
    date, a distribution with spaces: it names a base image) is unknown, as in a log without .ini."""
    release = values.get("OsRelease", "")
    date = values.get("CurrentDate") or None
    return RunContext(
        hostname=values.get("CurrentHostname", ""),
        os_type=values.get("CurrentOSType", "linux"),
        os_release=release if _RELEASE.fullmatch(release) else "",
        kernel=values.get("Kernel", ""),
        date=date if date is not None and _DATE.fullmatch(date) else None,
        machine=values.get("MachineId", ""),
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
    """The environment worth recording: variables named like secrets left out, the credentials inside
    the others' values replaced (`postgres://u:<redacted>@h/db`, `?api_key=<redacted>`), and those whose
    name or value holds a control character left out (a `\r` or a NUL must not make a line of an .ini
    or a Dockerfile)."""
    return dict(environment_parts(environ)[0])


def environment_parts(environ: dict[str, str] | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """(what `safe_environment` keeps, {name: why} of what it leaves out)."""
    environ = dict(os.environ if environ is None else environ)
    kept: dict[str, str] = {}
    left: dict[str, str] = {}
    for name, value in sorted(environ.items()):
        if not _ENV_NAME.fullmatch(name):
            left[_one_line(name)] = "an unusual name"
        elif is_secret_variable(name):
            left[name] = "a secret"
        elif _CONTROL.search(value):
            left[name] = "a control character in its value"
        else:
            kept[name] = redact_url(value)
    return kept, left


def _one_line(text: str) -> str:
    """A comment stays one line: an argument's newline (or any control character) must not start a
    `Key=Value` line; each is written as an escape."""
    return _CONTROL.sub(_escape_control, text) if _CONTROL.search(text) else text


def _escape_control(match: re.Match[str]) -> str:
    char = match.group(0)
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char)
    if named is not None:
        return named
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


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
        out.write(f"CurrentDirectory={_ini_value(context.cwd or '')}\n")
        out.write(f"CurrentDate={_ini_value(context.date or '')}\n")
        out.write(f"CurrentHostname={_ini_value(context.hostname)}\n")
        if context.machine:
            out.write(f"MachineId={_ini_value(context.machine)}\n")
        out.write(f"CurrentOSType={_ini_value(context.os_type)}\n")
        out.write(f"OsRelease={_ini_value(context.os_release)}\n")
        out.write(f"Kernel={_ini_value(context.kernel)}\n")
        out.write(f"Tracer={_ini_value(context.tracer)}\n")
        out.write("CommandLine=" + json.dumps(command) + "\n")
        if executable:
            out.write(f"Executable={_ini_value(executable)}\n")
        if attached_threads:
            out.write("AttachedThreads=" + " ".join(str(t) for t in attached_threads) + "\n")
        if exit_status is not None:
            out.write(f"ExitStatus={exit_status}\n")
        kept, left = environment_parts(environment)
        for key, value in kept.items():
            out.write(f"Env.{key}={_ini_value(value)}\n")
        if left:
            names = ", ".join(f"{name} ({why})" for name, why in left.items())
            out.write(f"; environment left out: {_one_line(names)}\n")


def attached_threads_from_ini(values: dict[str, str]) -> list[int]:
    """The threads a live `-p` attached to (empty for a run that started its program)."""
    pids = (_pid(word) for word in values.get("AttachedThreads", "").split())
    return [pid for pid in pids if pid is not None]


def top_pid_from_ini(values: dict[str, str]) -> int | None:
    return _pid(values.get("TopProcessId", ""))


def _pid(text: str) -> int | None:
    """A pid's digits as an int; None for anything else a damaged .ini may hold (`²`, thousands of digits)."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 10 else None
