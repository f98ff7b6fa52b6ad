"""Live runs: when does an open with O_CREAT create a file? The trace says so when it showed the path
absent before (a failed stat, an unlink) or present (a stat that worked); O_EXCL always creates. And a
renameat2(RENAME_EXCHANGE) swaps two files: each is renamed to the other."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Summary, run_dockit

pytestmark = pytest.mark.live

PROGRAM = """
import ctypes, os
assert not os.path.exists("appended.log")      # stat: ENOENT
with open("appended.log", "a") as out:          # O_CREAT|O_APPEND, no O_TRUNC: created, as the stat showed
    out.write("x")
os.stat("existing.txt")                         # there
with open("existing.txt", "w") as out:          # O_CREAT|O_TRUNC of a file that was there: not created
    out.write("y")
os.close(os.open("exclusive.txt", os.O_CREAT | os.O_EXCL | os.O_WRONLY))  # O_EXCL: created
os.unlink("exclusive.txt")
with open("exclusive.txt", "a"):                # absent since the unlink: created again
    pass
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
assert libc.renameat2(AT_FDCWD, b"left.txt", AT_FDCWD, b"right.txt", RENAME_EXCHANGE) == 0
"""


def test_created_follows_what_the_trace_showed(tmp_path: Path, strace_bin: str) -> None:
    for name in ("existing.txt", "left.txt", "right.txt"):
        (tmp_path / name).write_text(name)
    result = run_dockit("-l", str(tmp_path / "create"), "/usr/bin/python3", "-S", "-c", PROGRAM, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "left.txt").read_text() == "right.txt"  # swapped indeed
    summary = Summary.load(next(tmp_path.glob("create.strace.*.xml")))

    def access(name: str) -> dict[str, str]:
        return summary.access(str(tmp_path / name))

    assert access("appended.log").get("Created") == "true"
    assert access("existing.txt").get("Created") is None
    assert access("existing.txt").get("WrittenBytes") == "1"
    assert (access("exclusive.txt").get("Created"), access("exclusive.txt").get("Deleted")) == ("true", "true")
    left, right = access("left.txt"), access("right.txt")
    assert (left.get("RenamedTo"), left.get("RenamedFrom")) == (str(tmp_path / "right.txt"),) * 2
    assert (right.get("RenamedTo"), right.get("RenamedFrom")) == (str(tmp_path / "left.txt"),) * 2
