"""Live runs of programs whose file I/O strace shows in less usual forms: a descriptor of a file already
unlinked (`3</tmp/x>(deleted)`, an O_TMPFILE), and bytes copied inside the kernel (copy_file_range,
which coreutils' cat and cp use, splice through a pipe). Each count is checked against what the
program did."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Summary, run_dockit

pytestmark = pytest.mark.live


def summary_of(tmp_path: Path, name: str, *command: str) -> Summary:
    result = run_dockit("-l", str(tmp_path / name), *command, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return Summary.load(next(tmp_path.glob(f"{name}.strace.*.xml")))


UNLINKED = """
import os, tempfile
fd = os.open("gone.txt", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
os.unlink("gone.txt")
assert os.write(fd, b"dddddd") == 6          # written after the unlink: `3<.../gone.txt>(deleted)`
os.close(fd)
with tempfile.TemporaryFile(dir=".") as scratch:   # O_TMPFILE: a file that never had a name
    scratch.write(b"x" * 1000)
    scratch.flush()
    scratch.seek(0)
    assert len(scratch.read()) == 1000
"""


def test_io_on_an_unlinked_file_is_counted(tmp_path: Path, strace_bin: str) -> None:
    summary = summary_of(tmp_path, "unlinked", "/usr/bin/python3", "-S", "-c", UNLINKED)
    (python,) = summary.processes.values()
    gone = summary.access(str(tmp_path / "gone.txt"), python.pid)
    assert (gone["Writes"], gone["WrittenBytes"], gone["Deleted"]) == ("1", "6", "true")
    # strace names an O_TMPFILE file by its folder and inode: /tmp/.../#1234567
    (scratch,) = [name for name in summary.files if name.startswith(str(tmp_path) + "/#")]
    access = summary.access(scratch, python.pid)
    assert (access["WrittenBytes"], access["ReadBytes"]) == ("1000", "1000")
    assert summary.statistics["UnattributedDataCalls"] == "0"


def test_cat_copying_with_copy_file_range_is_counted(tmp_path: Path, strace_bin: str) -> None:
    source = tmp_path / "source.txt"
    source.write_bytes(b"hi\nthere\n")
    summary = summary_of(tmp_path, "cat", "sh", "-c", "cat source.txt > copy.txt")
    log = next(tmp_path.glob("cat.strace.*.log")).read_text()
    if "copy_file_range(" not in log:
        pytest.skip("this cat does not use copy_file_range (coreutils before 9)")
    (cat,) = summary.by_executable("/usr/bin/cat") or summary.by_executable("/bin/cat")
    assert summary.access(str(source), cat.pid)["ReadBytes"] == "9"
    assert summary.access(str(tmp_path / "copy.txt"), cat.pid)["WrittenBytes"] == "9"


SPLICE = """
import os
src = os.open("from.txt", os.O_RDONLY)
dst = os.open("to.txt", os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o644)
assert os.copy_file_range(src, dst, 100) == 8
os.lseek(src, 0, os.SEEK_SET)
r, w = os.pipe()
assert os.splice(src, w, 100) == 8                   # file -> pipe
spliced = os.open("spliced.txt", os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o644)
assert os.splice(r, spliced, 100) == 8               # pipe -> file
"""


def test_splice_through_a_pipe_is_counted_on_the_file_and_the_pipe(tmp_path: Path, strace_bin: str) -> None:
    (tmp_path / "from.txt").write_bytes(b"12345678")
    summary = summary_of(tmp_path, "splice", "/usr/bin/python3", "-S", "-c", SPLICE)
    (python,) = summary.processes.values()
    source = summary.access(str(tmp_path / "from.txt"), python.pid)
    assert (source["Reads"], source["ReadBytes"]) == ("2", "16")
    assert summary.access(str(tmp_path / "to.txt"), python.pid)["WrittenBytes"] == "8"
    assert summary.access(str(tmp_path / "spliced.txt"), python.pid)["WrittenBytes"] == "8"
    (pipe,) = summary.pipes
    assert pipe["Bytes"] == "8", pipe
