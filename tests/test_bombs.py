"""A crafted log must not make dockit's memory follow a size it claims (issue 17, "Bombs and growth").

Peak memory is read from the replaying process itself (its own ru_maxrss), with margins of several
times what a fixed dockit needs: these tests catch a bomb (hundreds of MB, or more), they are no
benchmark (bench/run.py measures the growth cases)."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, Summary, run_dockit

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
