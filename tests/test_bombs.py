"""A crafted log must not make dockit's memory follow a size it claims (issue 17, "Bombs and growth").

Peak memory is read from the replaying process itself (its own ru_maxrss), with margins of several
times what a fixed dockit needs: these tests catch a bomb (hundreds of MB, or more), they are no
benchmark (bench/run.py measures the growth cases)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

from lxml import etree

from bench.growth import write_case
from tests.conftest import CAPTURES, REPO, Summary, run_dockit

START = '4242 1700000000.000001 execve("/usr/bin/cat", ["cat"], 0x7ffd /* 4 vars */) = 0 <0.000100>\n'
EXIT = "4242 1700000000.000009 +++ exited with 0 +++\n"
MEASURED = (
    "import resource, sys\n"
    "from dockit_core.cli.main import main\n"
    "status = main(sys.argv[1:])\n"
    "sys.stderr.write(f'peak-rss-kb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\\n')\n"
    "sys.exit(status)\n"
)


def measured_dockit(*args: str, timeout: float = 600) -> tuple[subprocess.CompletedProcess[str], int]:
    """`dockit ARGS` and its peak resident memory in MB."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, "-c", MEASURED, *args], capture_output=True, text=True,
                            timeout=timeout, env=env, check=False)  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    peak = [line for line in result.stderr.splitlines() if line.startswith("peak-rss-kb=")]
    assert peak, result.stderr[-3000:]
    return result, int(peak[-1].split("=")[1]) // 1024


def test_a_line_without_end_is_never_held(tmp_path: Path) -> None:
    """A gzip of 512 MiB of NUL without a newline between two good lines (512 KB on disk): the line is
    skipped and counted, memory stays near the 64 MiB limit, and the lines around it are read."""
    log = tmp_path / "bomb.log.gz"
    with gzip.open(log, "wb", compresslevel=9) as out:
        out.write(START.encode())
        zeros = b"\0" * (1 << 20)
        for _ in range(512):
            out.write(zeros)
        out.write(b"\n" + EXIT.encode())
    assert log.stat().st_size < 1_000_000
    result, peak = measured_dockit("-w", "-i", str(log), "-l", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert peak < 350, f"{peak} MB"
    assert "a line of 536870912 characters, over the limit of 67108864 (--max-line): skipped" in result.stderr
    summary = Summary.load(tmp_path / "out.xml")
    assert summary.processes[4242].exit_status == 0
    assert summary.statistics["UnparsedLines"] == "1"


def test_max_line_is_configurable(tmp_path: Path) -> None:
    log = tmp_path / "long.log"
    read = '4242 1700000000.000003 read(0</dev/null>, "' + "x" * 5000 + '", 5000) = 5000 <0.000010>\n'
    log.write_text(START + read + EXIT)
    result, _ = measured_dockit("-i", str(log), "--max-line", "4K", "-l", str(tmp_path / "cut"))
    assert result.returncode == 0, result.stderr
    assert Summary.load(tmp_path / "cut.xml").statistics["UnparsedLines"] == "1"
    result, _ = measured_dockit("-i", str(log), "-l", str(tmp_path / "whole"))
    assert Summary.load(tmp_path / "whole.xml").statistics["UnparsedLines"] == "0"
    result = run_dockit("-i", str(log), "--max-line", "lots", "-l", str(tmp_path / "bad"))
    assert result.returncode == 2 and "--max-line: 'lots' is not a line length" in result.stderr


def xml_processes(path: Path) -> list[dict[str, str | None]]:
    root = etree.parse(str(path)).getroot()
    found = []
    for element in root.iter("CIM_Process"):
        found.append(
            {
                "Handle": element.get("Handle"),
                "Instance": element.get("Instance"),
                "ExecutablePath": element.findtext("ExecutablePath"),
                "ParentProcessId": element.findtext("ParentProcessId"),
                "ExitStatus": element.findtext("ExitStatus"),
            }
        )
    return found


def test_a_reused_pid_is_a_new_process(tmp_path: Path) -> None:
    """pid 200 runs prog0, exits, and is given again to prog1 then prog2: three processes, each with
    its program, exit status, files; a child that ends before its parent's clone returns is one."""
    lines = ['100 1700000001.000 execve("/bin/sh", ["sh"], 0x1 /* 1 vars */) = 0\n']
    for number in range(3):
        t = 1700000002 + number
        lines += [
            f"100 {t}.001 clone(child_stack=NULL, flags=SIGCHLD) = 200\n",
            f'200 {t}.002 execve("/usr/bin/prog{number}", ["prog{number}"], 0x1 /* 1 vars */) = 0\n',
            f'200 {t}.003 openat(AT_FDCWD, "/etc/p{number}.conf", O_RDONLY) = 3</etc/p{number}.conf>\n',
            f'200 {t}.004 read(3</etc/p{number}.conf>, "x", 10) = 1\n',
            f"200 {t}.005 close(3</etc/p{number}.conf>) = 0\n",
            f'200 {t}.006 openat(AT_FDCWD, "/etc/shared", O_RDONLY) = 3</etc/shared>\n',
            f"200 {t}.007 close(3</etc/shared>) = 0\n",
            f"200 {t}.008 exit_group({number}) = ?\n",
            f"200 {t}.009 +++ exited with {number} +++\n",
            f"100 {t}.010 wait4(-1, [{{WIFEXITED(s) && WEXITSTATUS(s) == {number}}}], 0, NULL) = 200\n",
        ]
    lines += [  # the child runs and ends before the clone returns: pid 200 a fourth time, one process
        "100 1700000006.001 clone(child_stack=NULL, flags=SIGCHLD <unfinished ...>\n",
        '200 1700000006.002 execve("/usr/bin/quick", ["quick"], 0x1 /* 1 vars */) = 0\n',
        "200 1700000006.003 +++ exited with 7 +++\n",
        "100 1700000006.004 <... clone resumed>) = 200\n",
        "100 1700000007.000 +++ exited with 0 +++\n",
    ]
    log = tmp_path / "reuse.strace.100.log"
    log.write_text("".join(lines))
    result, _ = measured_dockit("-i", str(log), "-l", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    processes = xml_processes(tmp_path / "out.xml")
    assert [(p["Handle"], p["Instance"], p["ExecutablePath"], p["ExitStatus"]) for p in processes] == [
        ("100", None, "/bin/sh", "0"),
        ("200", None, "/usr/bin/prog0", "0"),
        ("200", "2", "/usr/bin/prog1", "1"),
        ("200", "3", "/usr/bin/prog2", "2"),
        ("200", "4", "/usr/bin/quick", "7"),
    ]
    assert {p["ParentProcessId"] for p in processes[1:]} == {"100"}
    summary = Summary.load(tmp_path / "out.xml")
    assert [a["Process"] for a in summary.files["/etc/p0.conf"]] == ["200"]
    assert [a["Process"] for a in summary.files["/etc/p1.conf"]] == ["200.2"]
    assert [a["Process"] for a in summary.files["/etc/p2.conf"]] == ["200.3"]
    assert [a["Process"] for a in summary.files["/etc/shared"]] == ["200", "200.2", "200.3"]
    assert [a["Process"] for a in summary.files["/usr/bin/prog1"]] == ["200.2"]


SMALL_MEMORY = (
    "import sys\n"
    "from dockit_core.model.spill import SortedRuns\n"
    "from dockit_core.model.state import Model\n"
    "SortedRuns.RUN, SortedRuns.CHUNK, SortedRuns.FAN_IN = 7, 3, 3\n"
    "Model.FILES_IN_MEMORY = 50\n"
    "from dockit_core.cli.main import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def test_what_goes_to_disk_comes_back_as_it_was(tmp_path: Path) -> None:
    """Processes that ended, files past the memory's budget and the accesses of crowded files are
    written to disk and merged back: with a budget of 50 files and runs of 7 items, the summary (XML,
    TXT and JSON, whose crowded files' accesses are written a slice at a time) is byte for byte the one made in memory, on a capture and on logs of many processes and
    files."""
    logs = [write_case("processes", 400, tmp_path / "processes.log"), write_case("files", 700, tmp_path / "files.log")]
    (capture,) = sorted(CAPTURES.glob("pipeline.strace.*.log"))
    logs.append(capture)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    for log in logs:
        for fmt in ("XML", "TXT", "JSON"):
            outputs = []
            for name, command in (("memory", ["-m", "dockit_core.cli"]), ("disk", ["-c", SMALL_MEMORY])):
                prefix = tmp_path / f"{log.stem}-{fmt}-{name}"
                done = subprocess.run([sys.executable, *command, "-i", str(log), "-F", fmt, "-l", str(prefix)],
                                      capture_output=True, text=True, env=env, timeout=300, check=False)  # fmt: skip
                assert done.returncode == 0, done.stderr
                suffix = {"XML": "xml", "TXT": "summary.txt", "JSON": "summary.json"}[fmt]
                outputs.append(Path(f"{prefix}.{suffix}").read_bytes())
            assert outputs[0] == outputs[1], f"{log.name} {fmt}"
            if fmt == "JSON":
                assert json.loads(outputs[1])["objects"]  # streamed children written as valid JSON
