"""One real command traced here by strace with every output format a user may have chosen, each log
replayed by dockit: the same facts must come out whatever the flags.

The command, run in an empty folder:
    sh -c 'echo hello > a.txt; cat a.txt | tr a-z A-Z > b.txt; rm a.txt; exit 3'
Facts (what the shell does, known without dockit): sh exits 3; it starts cat, tr and rm; cat reads the 6
bytes of a.txt and writes them into a pipe that tr reads; tr writes 6 bytes into b.txt, which it
creates; rm deletes a.txt, which sh created. Without -f only sh is traced: a.txt, the pipe, exit 3, and
the pids of its three children (from its clone calls).

Old forms that strace 6 cannot write (`[pid N]` with `<... read resumed> ` and a space, `socket:[N]`,
`PF_INET`, ltrace `name@SYS`, `lib->fn`, `<no return ...>`) are covered by test_survol_replay.py.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Summary, run_dockit

pytestmark = pytest.mark.live

SCRIPT = "echo hello > a.txt; cat a.txt | tr a-z A-Z > b.txt; rm a.txt; exit 3"

FORMATS = {
    # name: strace flags (besides -o LOG); "stderr" in the name: no -o, the log is strace's stderr
    "f-ttt-T-yy": ["-f", "-ttt", "-T", "-yy"],
    "f-plain": ["-f"],
    "f-t": ["-f", "-t"],
    "f-tt-y": ["-f", "-tt", "-y"],
    "f-r": ["-f", "-r"],
    "f-T": ["-f", "-T"],
    "f-x-y": ["-f", "-x", "-y"],
    "f-xx-tt": ["-f", "-xx", "-tt"],
    "f-xx-yy-T": ["-f", "-xx", "-yy", "-T"],
    "f-s8": ["-f", "-s", "8", "-tt"],
    "f-stderr-tt": ["-f", "-tt", "stderr"],
    "f-stderr-yy-T": ["-f", "-yy", "-T", "stderr"],
    "nof-tt": ["-tt"],
    "nof-plain": [],
    "nof-yy-ttt": ["-yy", "-ttt"],
}


def record(folder: Path, flags: list[str]) -> Path:
    """Run the script under strace with `flags`; return the log."""
    work = folder / "work"
    work.mkdir()
    log = folder / "trace.log"
    if "stderr" in flags:
        command = ["strace", *[f for f in flags if f != "stderr"], "sh", "-c", SCRIPT]
        with open(log, "wb") as err:
            status = subprocess.run(
                command, cwd=work, stderr=err, stdout=subprocess.DEVNULL, timeout=60
            ).returncode
    else:
        command = ["strace", *flags, "-o", str(log), "sh", "-c", SCRIPT]
        status = subprocess.run(command, cwd=work, stdout=subprocess.DEVNULL, timeout=60).returncode
    assert status == 3
    assert (work / "b.txt").read_text() == "HELLO\n" and not (work / "a.txt").exists()
    return log


@pytest.mark.parametrize("name", list(FORMATS))
def test_same_facts_whatever_the_format(tmp_path: Path, strace_bin: str, name: str) -> None:
    flags = FORMATS[name]
    log = record(tmp_path, flags)
    work = str(tmp_path / "work")
    result = run_dockit("-i", str(log), "-l", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    summary = Summary.load(tmp_path / "out.xml")
    assert summary.statistics["UnparsedLines"] == "0", result.stderr
    assert summary.statistics["ResumedWithoutStart"] == "0"

    roots = [p for p in summary.processes.values() if p.ppid is None]
    assert len(roots) == 1, summary.processes
    sh = roots[0]
    assert sh.exit_status == 3
    if "-y" not in flags and "-yy" not in flags:
        # Without decorations relative paths need the cwd, which only the .ini (absent here) knows.
        a_txt = [path for path in summary.files if path.endswith("a.txt")]
        assert len(a_txt) == 1
        a_txt = a_txt[0]
    else:
        a_txt = f"{work}/a.txt"
    assert summary.access(a_txt, sh.pid).get("Created") == "true"
    pipes = [p for p in summary.pipes if p.get("CreatedBy") == str(sh.pid)]
    assert len(pipes) == 1

    if "-f" not in flags:
        # Only sh is traced, but its clones return its children's pids: known, untraced processes.
        children = [p for p in summary.processes.values() if p.ppid == sh.pid]
        assert len(children) == 3 and len(summary.processes) == 4
        assert all(child.executable == sh.executable for child in children)  # a fork's image
        return
    assert sh.executable == "/usr/bin/sh"
    # strace cuts strings at -s (32 by default): the argument is kept as far as shown, and said cut.
    assert sh.argv[:2] == ["sh", "-c"] and SCRIPT.startswith(sh.argv[2])
    assert (sh.attrs.get("ArgumentsCut") == "true") == (len(sh.argv[2]) < len(SCRIPT))
    children = {p.executable: p for p in summary.processes.values() if p.ppid == sh.pid}
    assert set(children) == {"/usr/bin/cat", "/usr/bin/tr", "/usr/bin/rm"}
    cat, tr, rm = children["/usr/bin/cat"], children["/usr/bin/tr"], children["/usr/bin/rm"]
    assert all(p.exit_status == 0 for p in (cat, tr, rm))
    assert summary.access(a_txt, cat.pid)["ReadBytes"] == "6"
    assert summary.access(a_txt, rm.pid)["Deleted"] == "true"
    b_txt = a_txt[: -len("a.txt")] + "b.txt"
    assert summary.access(b_txt, tr.pid)["WrittenBytes"] == "6"
    assert summary.access(b_txt, tr.pid)["Created"] == "true"
    (pipe,) = pipes
    assert (pipe["Writers"], pipe["Readers"], pipe["Bytes"]) == (str(cat.pid), str(tr.pid), "6")
    if any(flag in flags for flag in ("-t", "-tt", "-ttt", "-r")):
        assert summary.root.find("CIM_Process/CreationDate") is not None


def test_ltrace_system_calls(tmp_path: Path) -> None:
    """ltrace 0.7.3 -S writes system calls as `SYS_name(...)`, library calls as `name(...)`."""
    if shutil.which("ltrace") is None:
        pytest.skip("ltrace is not installed")
    work = tmp_path / "work"
    work.mkdir()
    log = tmp_path / "trace.ltrace.log"
    command = ["ltrace", "-f", "-S", "-tt", "-o", str(log), "sh", "-c", "cat /etc/hostname > out.txt; exit 5"]
    subprocess.run(command, cwd=work, stdout=subprocess.DEVNULL, timeout=120, check=False)  # ltrace exits 0
    assert (work / "out.txt").exists()
    text = log.read_text(errors="replace")
    assert "SYS_" in text and "<... SYS_" in text and "<no return ...>" in text
    result = run_dockit("-i", str(log), "-l", str(tmp_path / "out"))
    assert result.returncode == 0 and "Traceback" not in result.stderr
    summary = Summary.load(tmp_path / "out.xml")
    roots = [p for p in summary.processes.values() if p.ppid is None]
    assert len(roots) == 1 and roots[0].exit_status == 5
    children = [p for p in summary.processes.values() if p.ppid == roots[0].pid]
    assert len(children) == 1 and children[0].exit_status == 0
    assert any(path.endswith("out.txt") for path in summary.files)
