"""Record the project's captures with dockit itself: real programs, run here, traced live.

    python captures/record.py            # all captures
    python captures/record.py pipeline   # some of them
    python captures/record.py --out DIR killed   # elsewhere (tests/test_captures.py does this)

Each capture runs in its own empty folder under /tmp/dockit-captures/<name> (so the paths in the log
are stable), with a small fixed environment (so the .ini records nothing of the recorder's shell), and
leaves `captures/<name>.strace.<pid>.log` and `.ini` here; dockit's other outputs are dropped. The
facts each capture must yield are in FACTS.md and checked by tests/test_captures.py, which replays the
committed logs. The live path is proven separately (tests/test_live.py), so recording again only changes
pids and times, never the facts.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = Path("/tmp/dockit-captures")
ENVIRONMENT = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}
TCP_PORT = 47613
MAX_BYTES = 300_000


@dataclass
class Capture:
    name: str
    command: list[str]
    expected_status: int
    setup: list[list[str]] = field(default_factory=list)  # run (untraced) in the work folder first


def python() -> str:
    """The system interpreter for the traced programs (stdlib only): short, stable paths in the log.
    Never a pyenv shim, whose exec chain would clutter the trace."""
    return (
        "/usr/bin/python3.11" if os.path.exists("/usr/bin/python3.11") else os.path.realpath(sys.executable)
    )


def captures() -> list[Capture]:
    return [
        Capture("pipeline", ["sh", "-c", "ls / | wc -l > out.txt"], 0),
        Capture(
            "forkexec",
            ["./forkexec"],
            0,
            setup=[["gcc", "-O1", "-pthread", "-o", "forkexec", str(HERE / "forkexec.c")]],
        ),
        Capture("pyconfig", [python(), "-S", "-E", str(HERE / "pyconfig.py")], 0),
        Capture("tcp_pair", [python(), "-S", "-E", str(HERE / "tcp_pair.py"), str(TCP_PORT)], 0),
        Capture("killed", ["sh", "-c", "echo before > before.txt; kill -9 $$"], 128 + 9),
        Capture("failing", ["sh", "-c", "cat no-such-file; exit 3"], 3),
    ]


def record(capture: Capture, out: Path = HERE) -> Path:
    folder = WORK / capture.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for step in capture.setup:
        subprocess.run(step, cwd=folder, check=True, env=ENVIRONMENT)
    for old in glob.glob(str(out / f"{capture.name}.strace.*")):
        os.unlink(old)
    prefix = str(out / capture.name)
    dockit = [sys.executable, "-m", "dockit_core.cli", "-l", prefix, *capture.command]
    environment = dict(ENVIRONMENT)
    if os.environ.get("DOCKIT_SOURCE"):  # another checkout of dockit; else the installed one
        environment["PYTHONPATH"] = os.environ["DOCKIT_SOURCE"]
    # The program's stdout and stderr go to files of its folder: stable paths in the log, whatever
    # terminal or job runner records the captures.
    with open(folder / "stdout.txt", "wb") as stdout, open(folder / "stderr.txt", "wb") as stderr:
        result = subprocess.run(
            dockit,
            cwd=folder,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            check=False,
        )
    return collect_log(out, capture.name, folder, result.returncode, capture.expected_status)


def collect_log(out: Path, name: str, folder: Path, status: int, expected_status: int) -> Path:
    """The one .log (and its .ini) a recording left in `out`, its other outputs removed; a recording
    that did not exit as expected, or whose log is too large for the repository, stops here."""
    if status != expected_status:
        sys.stderr.write((folder / "stderr.txt").read_text(errors="replace"))
        raise SystemExit(f"{name}: exit status {status}, expected {expected_status}")
    logs = glob.glob(str(out / f"{name}.strace.*.log"))
    if len(logs) != 1:
        raise SystemExit(f"{name}: expected one log, found {logs}")
    for extra in glob.glob(str(out / f"{name}.strace.*.xml")) + glob.glob(str(out / f"{name}.strace.*.txt")):
        os.unlink(extra)
    log = Path(logs[0])
    if log.stat().st_size > MAX_BYTES:
        raise SystemExit(f"{log}: {log.stat().st_size} bytes, more than {MAX_BYTES}")
    return log


def main(args: list[str]) -> int:
    out = HERE
    if args[:1] == ["--out"]:
        out, args = Path(args[1]).resolve(), args[2:]
        out.mkdir(parents=True, exist_ok=True)
    chosen = [c for c in captures() if not args or c.name in args]
    for capture in chosen:
        log = record(capture, out)
        print(f"{capture.name}: {log} ({log.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
