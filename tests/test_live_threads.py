"""Live runs of threaded programs: a thread that runs execve (the kernel gives it the leader's pid and
strace says `<pid changed to N ...>` then `+++ superseded by execve in pid M +++`), and a process's
call count, which includes its threads' calls."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Summary, run_dockit

pytestmark = pytest.mark.live

THREAD_EXEC = """
import os, threading
def run():
    os.execv("/bin/echo", ["echo", "from-thread"])
threading.Thread(target=run).start()
threading.Event().wait(10)
"""


def test_a_thread_that_runs_execve_turns_its_process_into_the_new_program(tmp_path: Path, strace_bin: str) -> None:
    result = run_dockit("-l", str(tmp_path / "texec"), "/usr/bin/python3", "-S", "-c", THREAD_EXEC, cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "from-thread\n"), result.stderr
    summary = Summary.load(next(tmp_path.glob("texec.strace.*.xml")))
    (process,) = summary.processes.values()
    assert (process.executable, process.argv) == ("/bin/echo", ["echo", "from-thread"])
    assert summary.access("/bin/echo")["Process"] == str(process.pid), "executed by the process, not a thread"
    assert summary.statistics["UnparsedLines"] == "0"
    assert summary.statistics["ResumedWithoutStart"] == "0"


THREADS = """
import os, threading
def work(i):
    for _ in range(20):
        os.getppid()
threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
for t in threads: t.start()
for t in threads: t.join()
"""


def test_a_process_call_count_includes_its_threads(tmp_path: Path, strace_bin: str) -> None:
    result = run_dockit("-l", str(tmp_path / "tc"), "--each-call", "/usr/bin/python3", "-S", "-c", THREADS,
                        cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = Summary.load(next(tmp_path.glob("tc.strace.*.xml")))
    (process,) = summary.processes.values()
    assert len(process.threads) == 3
    calls = next(tmp_path.glob("tc.strace.*.txt")).read_text().splitlines()
    assert int(process.attrs["Calls"]) == len(calls), "one record per call in the calls file"
