"""strace -ff logs: `dockit -i PREFIX` reads the PREFIX.PID files strace wrote, and `dockit -i A B C`
several logs of one run, merged by time into one trace whose processes are linked by their clone
returns. The same program traced into one -f log is the reference."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Summary, run_dockit

pytestmark = [pytest.mark.live, pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")]

FLAGS = ["-ttt", "-T", "-yy", "-s", "4096", "-e", "trace=process,file,desc,network,ipc"]
PROGRAM = ["sh", "-c", "ls / | wc -l > /dev/null; printf 'x' > out.txt; exit 3"]


def shape(summary: Summary) -> dict[str, object]:
    """What does not depend on the run's pids: each program, its parent program, its exit status."""
    programs = {pid: (p.executable or "?") for pid, p in summary.processes.items()}
    return {
        "processes": sorted(
            (programs[pid], programs.get(p.ppid) if p.ppid else None, p.exit_status)  # type: ignore[arg-type]
            for pid, p in summary.processes.items()
        ),
        "written": sorted(
            path for path, accesses in summary.files.items() if any("Writes" in a for a in accesses)
        ),
    }


@pytest.fixture
def ff_logs(tmp_path: Path) -> tuple[Path, list[Path], Path]:
    prefix = tmp_path / "ff" / "trace"
    prefix.parent.mkdir()
    subprocess.run(["strace", "-ff", *FLAGS, "-o", str(prefix), *PROGRAM], cwd=tmp_path, check=False,
                   capture_output=True)  # fmt: skip
    files = sorted(prefix.parent.glob("trace.*"))
    assert len(files) == 3, files  # sh, ls, wc
    single = tmp_path / "single.log"
    subprocess.run(["strace", "-f", *FLAGS, "-o", str(single), *PROGRAM], cwd=tmp_path, check=False,
                   capture_output=True)  # fmt: skip
    return prefix, files, single


def read(tmp_path: Path, name: str, *inputs: str) -> Summary:
    result = run_dockit("-i", *inputs, "-l", str(tmp_path / name))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return Summary.load(tmp_path / f"{name}.xml")


def test_prefix_reads_every_process_file(tmp_path: Path, ff_logs) -> None:  # type: ignore[no-untyped-def]
    prefix, files, single = ff_logs
    merged = read(tmp_path, "merged", str(prefix))
    reference = read(tmp_path, "reference", str(single))
    assert shape(merged) == shape(reference)
    sh = merged.by_executable("/usr/bin/sh")
    assert len(sh) == 1 and sh[0].exit_status == 3 and sh[0].ppid is None
    children = {p.executable for p in merged.processes.values() if p.ppid == sh[0].pid}
    assert children == {"/usr/bin/ls", "/usr/bin/wc"}
    assert sh[0].pid == int(files[0].name.split(".")[-1])  # the first process is the run's root
    assert not merged.dangling_references()
    assert merged.statistics["UnparsedLines"] == "0"
    # the pipe between ls and wc is one pipe, written by one and read by the other
    pipes = [p for p in merged.pipes if p.get("Writers") and p.get("Readers")]
    ls, wc = merged.by_executable("/usr/bin/ls")[0], merged.by_executable("/usr/bin/wc")[0]
    assert any(p["Writers"] == str(ls.pid) and p["Readers"] == str(wc.pid) for p in pipes), merged.pipes


def test_several_files_named_one_by_one(tmp_path: Path, ff_logs) -> None:  # type: ignore[no-untyped-def]
    prefix, files, _single = ff_logs
    by_prefix = read(tmp_path, "prefix", str(prefix))
    in_reverse = read(tmp_path, "listed", *[str(f) for f in reversed(files)])
    assert shape(in_reverse) == shape(by_prefix)
    assert set(in_reverse.processes) == set(by_prefix.processes)


def test_repeated_i_keeps_every_log(tmp_path: Path, ff_logs) -> None:  # type: ignore[no-untyped-def]
    _prefix, files, _single = ff_logs
    result = run_dockit(*[arg for f in files for arg in ("-i", str(f))], "-l", str(tmp_path / "repeated"))
    assert result.returncode == 0, result.stderr
    assert len(Summary.load(tmp_path / "repeated.xml").processes) == 3


def test_missing_prefix_is_one_line(tmp_path: Path) -> None:
    result = run_dockit("-i", str(tmp_path / "pp"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"dockit: {tmp_path / 'pp'}: no such file (nor pp.PID files of strace -ff)"
    ]
