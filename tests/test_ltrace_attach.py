"""ltrace's weaknesses, handled: attaching to a multi-threaded process, a failed attach, a stuck ltrace,
and signals to dockit that must always end the tracer and leave the traced program running.

ltrace 0.7.3, named a thread with -p, prints "Cannot attach to pid N: ..." and spins with that thread in
tracing stop, deaf to SIGINT and SIGTERM (docs/ltrace.md). The truth each test checks is the target's
own: its threads' state and TracerPid in /proc, and the ticks it goes on writing.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dockit_core.ingest import tracers
from tests.conftest import REPO, Summary

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(shutil.which("ltrace") is None, reason="ltrace is not installed"),
]

# Three threads and the main one, each writing a tick to its own file every 50 ms.
TARGET = """\
import os, threading, time
def tick(name):
    while True:
        with open(name, "a") as stream:
            stream.write("t")
        time.sleep(0.05)
for index in range(3):
    threading.Thread(target=tick, args=(f"thread-{index}.txt",), daemon=True).start()
time.sleep(0.3)
open("ready", "w").close()
tick("main.txt")
"""


@pytest.fixture
def target(tmp_path: Path):  # type: ignore[no-untyped-def]
    process = subprocess.Popen([sys.executable, "-c", TARGET], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "ready").exists():
            assert time.monotonic() < deadline, "the target did not start"
            time.sleep(0.05)
        assert len(os.listdir(f"/proc/{process.pid}/task")) == 4
        yield process
    finally:
        process.kill()
        process.wait()


def ticks(folder: Path) -> int:
    return sum(len(p.read_text()) for p in folder.glob("*.txt"))


def assert_runs_untraced(process: subprocess.Popen, folder: Path) -> None:
    """Every thread of the target runs on: none stopped, none traced, and it still writes its ticks."""
    assert process.poll() is None
    for tid, (state, tracer) in tracers.thread_states(process.pid).items():
        assert state not in ("T", "t") and tracer == 0, (tid, state, tracer)
    before = ticks(folder)
    time.sleep(0.5)
    assert ticks(folder) >= before + 4 * 5  # four writers, every 50 ms


def dockit(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dockit_core.cli", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def test_attach_to_a_multithreaded_process_traces_it(target: subprocess.Popen, tmp_path: Path) -> None:
    """`-t ltrace -p PID`: ltrace -f attaches the threads itself; Ctrl-C detaches within seconds."""
    run = dockit("-t", "ltrace", "-p", str(target.pid), "-l", str(tmp_path / "att"))
    try:
        time.sleep(2.0)
        run.send_signal(signal.SIGINT)
        started = time.monotonic()
        _out, err = run.communicate(timeout=30)
        took = time.monotonic() - started
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, err
    assert took < tracers.STOP_GRACE_SECONDS * 3, took
    assert b"Traceback" not in err
    assert_runs_untraced(target, tmp_path)
    summary = Summary.load(tmp_path / f"att.ltrace.{target.pid}.xml")
    assert target.pid in summary.processes
    assert len(summary.processes[target.pid].threads) == 3
    assert int(summary.statistics["Lines"]) > 0


def test_ltrace_given_a_thread_fails_in_one_line_and_the_process_goes_on(
    target: subprocess.Popen, tmp_path: Path
) -> None:
    """`-t ltrace -p TID` (a thread): ltrace cannot attach and would spin with the thread stopped; dockit
    reads its line, ends it, says why in one line and leaves every thread running."""
    tid = max(int(t) for t in os.listdir(f"/proc/{target.pid}/task"))
    run = dockit("-t", "ltrace", "-p", str(tid), "-l", str(tmp_path / "thread"))
    started = time.monotonic()
    try:
        _out, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    took = time.monotonic() - started
    assert run.returncode == 2, err
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"dockit: ltrace cannot attach to thread {tid} of process {target.pid}: ")
    assert f"give -p {target.pid}" in lines[0]
    assert took < 10, took
    assert_runs_untraced(target, tmp_path)
    assert not list(tmp_path.glob("thread.*"))  # nothing traced, nothing written


def test_a_stuck_ltrace_is_ended_by_sigkill_after_its_grace(target: subprocess.Popen, tmp_path: Path) -> None:
    """The escalation itself, on a real stuck ltrace (run without dockit's failure detection): SIGINT and
    SIGTERM are ignored, SIGKILL ends it, and the thread it held runs again."""
    tid = max(int(t) for t in os.listdir(f"/proc/{target.pid}/task"))
    stuck = subprocess.Popen(
        ["ltrace", "-f", "-p", str(tid), "-o", str(tmp_path / "ltrace.out")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while tracers.thread_states(target.pid).get(tid, ("?", 0))[1] != stuck.pid:
        assert time.monotonic() < deadline, "ltrace never took the thread"
        time.sleep(0.05)
    time.sleep(0.5)
    assert stuck.poll() is None and tracers.thread_states(target.pid)[tid][0] == "t"  # stuck, as described
    run = tracers.TracerRun(stuck, str(tmp_path), "", ["ltrace"], os.open(os.devnull, os.O_RDONLY))
    run.stop(signal.SIGINT, grace=1.0)
    assert stuck.wait(timeout=10) == -signal.SIGKILL
    assert run.signals_sent == [signal.SIGINT, signal.SIGTERM, signal.SIGKILL]
    assert tracers.release(target.pid, was_stopped=False, tracer_pid=stuck.pid) == []
    assert_runs_untraced(target, tmp_path)


def test_sigterm_ends_ltrace_when_the_program_ignores_it(tmp_path: Path) -> None:
    """A live run whose program ignores SIGTERM: dockit passes it on, gives the program its grace, then
    ends ltrace, and writes everything traced until then."""
    program = "import os, signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    program += "open('ready', 'w').write(str(os.getpid()))\n"
    program += "while True:\n    open('alive.txt', 'a').write('x'); time.sleep(0.1)\n"
    (tmp_path / "ignore.py").write_text(program)
    run = subprocess.Popen(
        [sys.executable, "-m", "dockit_core.cli", "-t", "ltrace", "-l", str(tmp_path / "ign"), sys.executable,
         str(tmp_path / "ignore.py")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "ready").exists() or not (tmp_path / "ready").read_text():
            assert time.monotonic() < deadline and run.poll() is None, run.stderr.read() if run.stderr else ""
            time.sleep(0.1)
        time.sleep(0.5)
        run.send_signal(signal.SIGTERM)
        started = time.monotonic()
        _out, err = run.communicate(timeout=60)
        took = time.monotonic() - started
    finally:
        if run.poll() is None:
            run.kill()
        if (tmp_path / "ready").exists() and (tmp_path / "ready").read_text():
            try:
                os.kill(int((tmp_path / "ready").read_text()), signal.SIGKILL)  # it outlived its tracer
            except ProcessLookupError:
                pass
    assert took < tracers.PROGRAM_GRACE_SECONDS + 3 * tracers.STOP_GRACE_SECONDS, took
    assert b"Traceback" not in err
    (xml,) = tmp_path.glob("ign.ltrace.*.xml")
    summary = Summary.load(xml)
    assert int(summary.access(str(tmp_path / "alive.txt"))["Writes"]) >= 3


def test_a_script_runs_through_its_interpreter(tmp_path: Path) -> None:
    """ltrace 0.7.3 starts ELF programs only ("... is not an ELF file"): a `#!` script (Debian's psql is
    a Perl wrapper) is started through its interpreter, as the kernel would run it."""
    script = tmp_path / "write.sh"
    script.write_text("#!/bin/sh\nprintf 'twelve bytes' > out.txt\n")
    script.chmod(0o755)
    result = subprocess.run(
        [sys.executable, "-m", "dockit_core.cli", "-t", "ltrace", "-l", str(tmp_path / "sh"), str(script)],
        cwd=tmp_path, capture_output=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.txt").read_text() == "twelve bytes"
    (xml,) = tmp_path.glob("sh.ltrace.*.xml")
    summary = Summary.load(xml)
    assert summary.access(str(tmp_path / "out.txt"))["WrittenBytes"] == "12"
    (root,) = [p for p in summary.processes.values() if p.ppid is None]
    assert root.argv == [str(script)]  # the command as the user gave it
